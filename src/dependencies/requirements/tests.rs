//! The requirement lines accepted and refused.

use super::super::declared::tests::project;
use super::*;

#[test]
fn names_extras_versions_markers_and_hashes_are_accepted() {
    for line in [
        "pytest",
        "requests[socks,security] >= 2.8.1, == 2.8.*",
        "Django~=4.2; python_version >= \"3.8\"",
        "pywin32 ; sys_platform == 'win32'",
        "name (>=1.0)",
        "six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
    ] {
        assert!(check(line).is_ok(), "{line}: {:?}", check(line));
    }
}

#[test]
fn options_paths_and_urls_are_refused() {
    for line in [
        "-e /etc",
        "--index-url http://127.0.0.1:9/simple",
        "--extra-index-url=http://127.0.0.1:9/simple",
        "-f /tmp/wheels",
        "file:///etc/passwd",
        "./local/pkg",
        "/abs/pkg.whl",
        "pkg @ https://example.invalid/pkg.whl",
        "pkg; python_version > '3' --index-url http://127.0.0.1:9/",
        "pkg==${PIP_INDEX_URL}",
        "../other",
        "pkg/sub",
        "evil==1.0 ; os_name=='posix' --hash=sha256:ab '--global-option=x'",
        "evil==1.0 --hash=sha256:ab --config-settings=x=y",
        "evil==1.0\t--index-url=http://127.0.0.1:9/",
    ] {
        assert!(check(line).is_err(), "{line} was accepted");
    }
}

#[test]
fn a_refused_line_is_named_with_its_file_and_number() {
    let p = project(&[(
        "requirements.txt",
        "# pinned\nsix==1.16.0\n\n--index-url http://127.0.0.1:9/simple\n",
    )]);
    let err = Requirements::of_files(&p).unwrap_err();
    assert_eq!(err.origin, "requirements.txt line 4");
    assert_eq!(err.line, "--index-url http://127.0.0.1:9/simple");
    assert!(err.to_string().starts_with(
        "requirements.txt line 4: `--index-url http://127.0.0.1:9/simple` is refused: "
    ));
}

#[test]
fn inclusions_stay_inside_the_project_and_are_checked_too() {
    let p = project(&[
        (
            "requirements.txt",
            "-r requirements/test.txt\n-c constraints.txt\nsix\n",
        ),
        ("requirements/test.txt", "pytest-mock \\\n  >=3\n"),
        ("constraints.txt", "six<2\n"),
    ]);
    let got = Requirements::of_files(&p).unwrap();
    assert_eq!(got.install, ["pytest-mock >=3", "six"]);
    assert_eq!(got.constraints, ["six<2"]);

    let p = project(&[("requirements.txt", "-r ../other/requirements.txt\n")]);
    let err = Requirements::of_files(&p).unwrap_err();
    assert!(err.why.contains("leaves the project"), "{err}");

    let p = project(&[("requirements.txt", "-r /etc/passwd\n")]);
    assert!(Requirements::of_files(&p).is_err());

    let p = project(&[("requirements.txt", "-r docs.txt\n")]);
    let err = Requirements::of_files(&p).unwrap_err();
    assert!(err.why.contains("not a requirements file"), "{err}");
}

#[test]
fn a_comment_ending_in_a_backslash_does_not_swallow_the_next_line() {
    let p = project(&[("requirements.txt", "# pinned \\\nsix\n")]);
    assert_eq!(Requirements::of_files(&p).unwrap().install, ["six"]);
}

#[test]
fn an_inclusion_loop_ends() {
    let p = project(&[
        ("requirements.txt", "-r requirements-dev.txt\nsix\n"),
        ("requirements-dev.txt", "-r requirements.txt\ntoolz\n"),
    ]);
    let got = Requirements::of_files(&p).unwrap();
    assert_eq!(got.install, ["toolz", "six"]);
}
