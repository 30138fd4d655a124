//! What a run's container receives on stdin: a tar holding `.te/meta.json`
//! (run id, environment, the record token, the files to run, the folders to
//! import from) and the files themselves: a project's whole tree, with the
//! files relative to its root, or the chosen files and the conftest files
//! above them. No host path is ever mounted into a sandbox.

use anyhow::{Context, Result};
use serde::Serialize;

use super::store::ClaimedRun;
use crate::catalog::{Catalog, FileContent};

#[derive(Serialize)]
pub struct Meta<'a> {
    pub run_id: i64,
    pub environment_id: i32,
    pub token: &'a str,
    pub files: &'a [String],
    /// Folders (relative to the work folder) put first on `sys.path`: a
    /// project's root, and its `src/` for a src layout, as a development
    /// install would make them importable.
    pub sys_path: &'a [String],
}

/// A run's payload and, for a project, the hash of the tree in it.
pub struct Prepared {
    pub tar: Vec<u8>,
    pub tree_sha256: Option<String>,
}

/// Reads what the run needs from the catalog; an error here is the run's
/// (the project vanished or outgrew its cap) and is shown as its reason.
pub fn for_run(catalog: &Catalog, run: &ClaimedRun) -> Result<Prepared> {
    let Some(name) = &run.project else {
        let contents = catalog
            .read_for_run(&run.files)
            .context("could not read the test files")?;
        let meta = Meta {
            run_id: run.id,
            environment_id: run.environment_id,
            token: &run.record_token,
            files: &run.files,
            sys_path: &[],
        };
        let tar = build(&meta, &contents)?;
        return Ok(Prepared {
            tar,
            tree_sha256: None,
        });
    };
    let project = catalog
        .project(name)?
        .with_context(|| format!("project {name} is no longer under the tests folder"))?;
    let tree = catalog.load_tree(&project).map_err(anyhow::Error::new)?;
    let files: Vec<String> = run
        .files
        .iter()
        .map(|f| {
            project
                .relative(f)
                .map(str::to_owned)
                .with_context(|| format!("{f} is not in project {name}"))
        })
        .collect::<Result<_>>()?;
    let sys_path = import_roots(&tree.files);
    let meta = Meta {
        run_id: run.id,
        environment_id: run.environment_id,
        token: &run.record_token,
        files: &files,
        sys_path: &sys_path,
    };
    let tar = build(&meta, &tree.files)?;
    Ok(Prepared {
        tar,
        tree_sha256: Some(tree.sha256),
    })
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
            environment_id: 3,
            token: "t",
            files: &files,
            sys_path: &[],
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
