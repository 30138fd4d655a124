//! What a run's container receives on stdin: a tar holding `.te/meta.json`
//! (run id, environment, the record token, the files to run, the folders to
//! import from) and the files themselves: a project's whole tree, with the
//! files relative to its root, or the chosen files and the conftest files
//! above them. No host path is ever mounted into a sandbox.

use std::collections::{BTreeMap, HashSet};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::{
    catalog::{Catalog, FileContent, Selection},
    dependencies::declaration::{Declaration, Service},
    environment_id::EnvironmentId,
    store::lifecycle::ClaimedRun,
};

#[derive(Serialize)]
pub struct Meta<'a> {
    pub run_id: i64,
    pub environment_id: EnvironmentId,
    pub token: &'a str,
    pub files: &'a [String],
    /// Folders (relative to the work folder) put first on `sys.path`: a
    /// project's root, and its `src/` for a src layout, as a development
    /// install would make them importable.
    pub sys_path: &'a [String],
    /// The run's time limit: the runner ends its container this long (and
    /// a grace) after it read this, should no executor be watching by then.
    pub deadline_secs: i64,
    /// The project's declared `[env]` (checked: no name the runner sets).
    pub env: &'a BTreeMap<String, String>,
    /// Only these tests (pytest node ids within `files`), when the run names
    /// them; the runner checks each against `files` again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_ids: Option<&'a [String]>,
    /// A shard of a sharded run: its tests come one at a time on stdin.
    pub shard: bool,
}

impl<'a> Meta<'a> {
    fn of(
        run: &'a ClaimedRun,
        files: &'a [String],
        sys_path: &'a [String],
        env: &'a BTreeMap<String, String>,
    ) -> Meta<'a> {
        Meta {
            run_id: run.id,
            environment_id: run.environment_id,
            token: &run.record_token,
            files,
            sys_path,
            deadline_secs: run.limits.timeout_secs.into(),
            env,
            node_ids: run.node_ids.as_deref(),
            shard: run.shard_of.is_some(),
        }
    }
}

/// A run's payload and, for a project, the hash of the tree in it and the
/// services it declares.
pub struct Prepared {
    pub tar: Vec<u8>,
    pub tree_sha256: Option<String>,
    pub services: Vec<Service>,
}

/// Reads what the run needs from the catalog; an error here is the run's
/// (a file or the project vanished, the tree outgrew its cap) and is shown
/// as its reason. The run's files are resolved again, whoever wrote its row:
/// each must be a catalog file of the run's project (or of none), and each
/// file sent is read from under the tests folder without following a symlink.
/// `offered` are the service images this server offers.
pub fn for_run(catalog: &Catalog, run: &ClaimedRun, offered: &[String]) -> Result<Prepared> {
    let selection = resolve_again(catalog, run)?;
    let files: Vec<String> = selection
        .files
        .iter()
        .map(|f| f.as_str().to_owned())
        .collect();
    let Some(project) = selection.project else {
        let contents = catalog
            .read_for_run(&selection.files)
            .context("could not read the test files")?;
        let tar = build(&Meta::of(run, &files, &[], &BTreeMap::new()), &contents)?;
        return Ok(Prepared {
            tar,
            tree_sha256: None,
            services: Vec::new(),
        });
    };
    let tree = catalog.load_tree(&project).map_err(anyhow::Error::new)?;
    let sent: HashSet<&str> = tree.files.iter().map(|f| f.path.as_str()).collect();
    let files: Vec<String> = files
        .iter()
        .map(|f| match project.relative(f) {
            Some(relative) if sent.contains(relative) => Ok(relative.to_owned()),
            _ => Err(anyhow!(
                "{f} is not in the tree of project {}",
                project.name
            )),
        })
        .collect::<Result<_>>()?;
    let sys_path = import_roots(&tree.files);
    let declared = declared(&tree.files, offered)?;
    let meta = Meta::of(run, &files, &sys_path, &declared.env);
    let tar = build(&meta, &tree.files)?;
    Ok(Prepared {
        tar,
        tree_sha256: Some(tree.sha256),
        services: declared.services,
    })
}

/// What the project's tree declares (its `test-executor.toml`, or its
/// `pyproject.toml`'s `[tool.test-executor]`), checked again.
fn declared(files: &[FileContent], offered: &[String]) -> Result<Declaration> {
    let text = |path: &str| {
        files
            .iter()
            .find(|f| f.path == path)
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
    };
    let declared = crate::dependencies::declaration::parse(
        text(crate::dependencies::declaration::FILE).as_deref(),
        text("pyproject.toml").as_deref(),
        offered,
    )
    .map_err(|e| anyhow!("the project's declaration: {e}"))?;
    Ok(declared)
}

/// The run's files checked against the catalog as it is now.
fn resolve_again(catalog: &Catalog, run: &ClaimedRun) -> Result<Selection> {
    let selection = catalog
        .listing_blocking()?
        .resolve(&run.files)
        .map_err(|e| anyhow!("refusing the run's files: {e}"))?;
    let found = selection.project.as_ref().map(|p| p.name.as_str());
    if found != run.project.as_deref() {
        let name = |p: Option<&str>| p.map_or("no project".into(), |p| format!("project {p}"));
        bail!(
            "refusing the run's files: {:?} is in {}, the run names {}",
            selection.files[0].as_str(),
            name(found),
            name(run.project.as_deref()),
        );
    }
    Ok(selection)
}

/// The root, and `src` when the tree has a src layout (a `src/` folder that
/// is not itself a package).
fn import_roots(files: &[FileContent]) -> Vec<String> {
    let mut roots = vec![".".to_owned()];
    let has_src = files.iter().any(|f| f.path.starts_with("src/"));
    let src_is_package = files.iter().any(|f| f.path == "src/__init__.py");
    if has_src && !src_is_package {
        roots.push("src".to_owned());
    }
    roots
}

pub fn build(meta: &Meta, contents: &[FileContent]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let meta_json = serde_json::to_vec(meta)?;
    append(&mut tar, ".te/meta.json", &meta_json)?;
    for file in contents {
        append(&mut tar, &file.path, &file.bytes)?;
    }
    tar.into_inner().context("finishing the payload tar")
}

fn append(tar: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_uid(1000);
    header.set_gid(1000);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, bytes)
        .with_context(|| format!("adding {path} to the payload"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_comes_first_then_the_files() {
        let files = vec!["a/test_x.py".to_string()];
        let meta = Meta {
            run_id: 7,
            environment_id: EnvironmentId::try_from(3).unwrap(),
            token: "t",
            files: &files,
            sys_path: &[],
            deadline_secs: 60,
            env: &BTreeMap::new(),
            node_ids: None,
            shard: false,
        };
        let contents = vec![FileContent {
            path: "a/test_x.py".into(),
            bytes: b"def test(): pass\n".to_vec(),
        }];
        let bytes = build(&meta, &contents).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [".te/meta.json", "a/test_x.py"]);
    }

    #[test]
    fn a_src_layout_is_importable_from_src_and_a_flat_one_from_its_root() {
        let file = |path: &str| FileContent {
            path: path.into(),
            bytes: vec![],
        };
        let src = [file("pyproject.toml"), file("src/pkg/__init__.py")];
        assert_eq!(import_roots(&src), [".", "src"]);
        let flat = [file("setup.py"), file("six.py")];
        assert_eq!(import_roots(&flat), ["."]);
        let src_package = [file("src/__init__.py"), file("src/a.py")];
        assert_eq!(import_roots(&src_package), ["."]);
    }
}
