use super::*;

const STATIC: &str = r#"
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "math-proj"
version = "0.3.1"
dependencies = ["iniconfig==2.0.0"]

[project.optional-dependencies]
tests = ["math-proj[extra]", "packaging>=20"]
extra = ["six"]
docs = ["sphinx"]

[project.scripts]
mathy = "mathpkg.cli:main"
"#;

fn static_read(text: &str) -> Result<Option<StaticMeta>, String> {
    read(text, false, None, ImportRoot::Src)
}

#[test]
fn fully_static_metadata_is_read_with_the_test_extras_and_their_own_extras() {
    let meta = static_read(STATIC).unwrap().unwrap();
    assert_eq!(meta.name, "math-proj");
    assert_eq!(meta.version, "0.3.1");
    assert_eq!(meta.requires, ["iniconfig==2.0.0", "packaging>=20", "six"]);
    assert_eq!(
        meta.entry_points,
        [(
            "console_scripts".to_owned(),
            "mathy".to_owned(),
            "mathpkg.cli:main".to_owned()
        )]
    );
}

#[test]
fn dynamic_fields_setup_files_unknown_backends_and_hooks_are_not_static() {
    let dynamic = STATIC.replace("version = \"0.3.1\"", "dynamic = [\"version\"]");
    assert_eq!(static_read(&dynamic), Ok(None));
    let readme_only = STATIC.replace(
        "version = \"0.3.1\"",
        "version = \"1\"\ndynamic = [\"readme\"]",
    );
    assert!(static_read(&readme_only).unwrap().is_some());
    for layout in [
        "[tool.setuptools]\npackage-dir = {\"\" = \"src\"}\n",
        "[tool.setuptools.packages.find]\nwhere = [\"src\"]\n",
        "[tool.hatch.build.targets.wheel]\npackages = [\"src/pkg\", \"pkg2\"]\n",
        "[tool.poetry]\npackages = [{include = \"pkg\", from = \"src\"}]\n",
        "[tool.poetry]\npackages = [{include = \"pkg\"}]\n",
    ] {
        let text = format!("{STATIC}\n{layout}");
        assert!(static_read(&text).unwrap().is_some(), "{layout}");
    }
    assert_eq!(read(STATIC, true, None, ImportRoot::Root), Ok(None));
    let cfg = "[metadata]\nname = x\n";
    assert_eq!(read(STATIC, false, Some(cfg), ImportRoot::Root), Ok(None));
    let pytest_cfg = "[tool:pytest]\naddopts = -q\n";
    assert!(read(STATIC, false, Some(pytest_cfg), ImportRoot::Root)
        .unwrap()
        .is_some());
    for changed in [
        STATIC.replace("hatchling.build", "maturin"),
        STATIC.replace(
            "build-backend = \"hatchling.build\"",
            "build-backend = \"hatchling.build\"\nbackend-path = [\".\"]",
        ),
        format!("{STATIC}\n[tool.hatch.build.hooks.custom]\n"),
        format!("{STATIC}\n[tool.hatch.build.targets.wheel.hooks.custom]\n"),
        STATIC.replace("version = \"0.3.1\"\n", ""),
        format!("{STATIC}\n[tool.setuptools]\npackage-dir = {{\"\" = \"lib\"}}\n"),
        format!("{STATIC}\n[tool.hatch.build.targets.wheel]\npackages = [\"lib/pkg\"]\n"),
        format!("{STATIC}\n[tool.poetry]\npackages = [{{include = \"pkg\", from = \"lib\"}}]\n"),
        "[tool.pytest.ini_options]\n".to_owned(),
        "not toml [".to_owned(),
    ] {
        assert_eq!(static_read(&changed), Ok(None), "{changed}");
    }
}

#[test]
fn hostile_names_versions_entry_points_and_requirements_are_refused_by_key() {
    for (from, to, named) in [
        ("name = \"math-proj\"", "name = \"../../etc\"", "name"),
        ("name = \"math-proj\"", "name = \"a\\nVersion: 9\"", "name"),
        ("version = \"0.3.1\"", "version = \"1/../../x\"", "version"),
        (
            "version = \"0.3.1\"",
            "version = \"1\\nName: y\"",
            "version",
        ),
        ("version = \"0.3.1\"", "version = 3", "version"),
        (
            "\"mathpkg.cli:main\"",
            "\"os; import os\"",
            "console_scripts.mathy",
        ),
        ("mathy =", "\"../bin/sh\" =", "entry point"),
        ("mathy =", "python3 =", "venv's own"),
        (
            "\"six\"",
            "\"six @ https://example.invalid/six.whl\"",
            "six",
        ),
        ("\"iniconfig==2.0.0\"", "\"-e .\"", "-e"),
    ] {
        let text = STATIC.replace(from, to);
        assert_ne!(text, STATIC, "{from}");
        let refused = static_read(&text).unwrap_err();
        assert!(refused.contains(named), "{to}: {refused}");
        assert!(!refused.contains('\n'), "{refused}");
    }
    let many: Vec<String> = (0..300).map(|i| format!("s{i} = \"m:f\"")).collect();
    let text = format!("{STATIC}{}\n", many.join("\n"));
    assert!(static_read(&text).unwrap_err().contains("entry points"));
}

#[test]
fn names_are_normalized_as_importlib_metadata_compares_them() {
    assert_eq!(normalized("Math.Proj--X_y"), "math_proj_x_y");
    assert_eq!(declared_name(STATIC).as_deref(), Some("math-proj"));
    assert!(object_ref("a.b:c.d"));
    assert!(object_ref("a_b"));
    for bad in ["a b", "a:", ":b", "a..b", "1a:b", "a:b()", "a:b [x]"] {
        assert!(!object_ref(bad), "{bad}");
    }
}
