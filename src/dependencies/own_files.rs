//! The development install the server writes for a tree whose metadata is
//! static (`static_meta.rs`), in place of pip running the tree's build: a
//! path `.pth` to where each run unpacks the tree, the `dist-info`
//! (`importlib.metadata` finds the name, version and entry points) and the
//! console scripts. Every value in them was checked; the paths are made
//! here from checked names only.

use super::{
    static_meta::{normalized, ImportRoot, StaticMeta},
    RUNTIME_ROOT, VENV,
};

/// A file for the venv: `site-packages/…` or `bin/…`, its bytes and mode.
pub type OwnFile = (String, Vec<u8>, u32);

/// The files, relative to the venv's `site-packages` (`site-packages/…`)
/// or its `bin` (`bin/…`).
pub fn files(meta: &StaticMeta) -> Vec<OwnFile> {
    let own = normalized(&meta.name);
    let dist_info = format!("{own}-{}.dist-info", meta.version.replace('-', "_"));
    let root = match meta.import_root {
        ImportRoot::Root => RUNTIME_ROOT.to_owned(),
        ImportRoot::Src => format!("{RUNTIME_ROOT}/src"),
    };
    let mut site = vec![
        (format!("_te_tree_{own}.pth"), format!("{root}\n")),
        (
            format!("{dist_info}/METADATA"),
            format!(
                "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
                meta.name, meta.version
            ),
        ),
        (format!("{dist_info}/INSTALLER"), "test-executor\n".into()),
        (
            format!("{dist_info}/direct_url.json"),
            format!(
                "{{\"url\": \"file://{RUNTIME_ROOT}\", \"dir_info\": {{\"editable\": true}}}}\n"
            ),
        ),
    ];
    if !meta.entry_points.is_empty() {
        site.push((
            format!("{dist_info}/entry_points.txt"),
            entry_points_txt(meta),
        ));
    }
    let record: String = site
        .iter()
        .map(|(path, _)| format!("{path},,\n"))
        .chain([format!("{dist_info}/RECORD,,\n")])
        .collect();
    site.push((format!("{dist_info}/RECORD"), record));
    let mut out: Vec<OwnFile> = site
        .into_iter()
        .map(|(path, text)| (format!("site-packages/{path}"), text.into_bytes(), 0o644))
        .collect();
    for (group, name, value) in &meta.entry_points {
        if group == "console_scripts" || group == "gui_scripts" {
            out.push((format!("bin/{name}"), script(value).into_bytes(), 0o755));
        }
    }
    out
}

fn entry_points_txt(meta: &StaticMeta) -> String {
    let mut text = String::new();
    let mut group_now = None;
    let mut sorted = meta.entry_points.clone();
    sorted.sort();
    for (group, name, value) in &sorted {
        if group_now != Some(group) {
            if group_now.is_some() {
                text.push('\n');
            }
            text.push_str(&format!("[{group}]\n"));
            group_now = Some(group);
        }
        text.push_str(&format!("{name} = {value}\n"));
    }
    text
}

/// A console script as pip writes one: imports the object and exits with
/// what it returns.
fn script(object_ref: &str) -> String {
    let (module, attr) = object_ref.split_once(':').unwrap_or((object_ref, ""));
    let (import, call) = match attr.split_once('.') {
        _ if attr.is_empty() => (format!("import {module} as _m"), "_m".to_owned()),
        Some((head, _)) => (format!("from {module} import {head}"), attr.to_owned()),
        None => (format!("from {module} import {attr}"), attr.to_owned()),
    };
    format!("#!{VENV}/bin/python\nimport sys\n{import}\nsys.exit({call}())\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(entry_points: &[(&str, &str, &str)], import_root: ImportRoot) -> StaticMeta {
        StaticMeta {
            name: "Math.Pkg".into(),
            version: "1.2-3".into(),
            requires: Vec::new(),
            entry_points: entry_points
                .iter()
                .map(|(g, n, v)| ((*g).into(), (*n).into(), (*v).into()))
                .collect(),
            import_root,
        }
    }

    #[test]
    fn the_install_is_a_pth_to_the_runs_tree_and_a_dist_info() {
        let files = files(&meta(&[], ImportRoot::Src));
        let find = |path: &str| {
            files
                .iter()
                .find(|(p, _, _)| p == path)
                .map(|(_, b, _)| String::from_utf8(b.clone()).unwrap())
        };
        assert_eq!(
            find("site-packages/_te_tree_math_pkg.pth").unwrap(),
            "/tmp/work/src\n"
        );
        let metadata = find("site-packages/math_pkg-1.2_3.dist-info/METADATA").unwrap();
        assert!(
            metadata.contains("Name: Math.Pkg\nVersion: 1.2-3\n"),
            "{metadata}"
        );
        assert!(find("site-packages/math_pkg-1.2_3.dist-info/RECORD").is_some());
        assert!(files.iter().all(|(p, _, _)| !p.contains("..")));
        let root = super::files(&meta(&[], ImportRoot::Root));
        assert_eq!(root[0].1, b"/tmp/work\n");
    }

    #[test]
    fn entry_points_are_listed_and_scripts_written() {
        let files = files(&meta(
            &[
                ("console_scripts", "mathy", "math_pkg.cli:main"),
                ("pytest11", "mathplug", "math_pkg.plugin"),
            ],
            ImportRoot::Root,
        ));
        let text = |path: &str| {
            let (_, bytes, _) = files.iter().find(|(p, _, _)| p == path).unwrap();
            String::from_utf8(bytes.clone()).unwrap()
        };
        assert_eq!(
            text("site-packages/math_pkg-1.2_3.dist-info/entry_points.txt"),
            "[console_scripts]\nmathy = math_pkg.cli:main\n\n[pytest11]\nmathplug = math_pkg.plugin\n"
        );
        let script = text("bin/mathy");
        assert!(script.contains("from math_pkg.cli import main\nsys.exit(main())"));
        assert!(!files.iter().any(|(p, _, _)| p == "bin/mathplug"));
        assert_eq!(
            super::script("a.b:C.run"),
            format!("#!{VENV}/bin/python\nimport sys\nfrom a.b import C\nsys.exit(C.run())\n")
        );
    }
}
