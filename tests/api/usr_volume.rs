//! The runner image's `/usr` comes from a read-only volume filled from that
//! image (`engine/usr_volume.rs`), and volumes of images that are gone are
//! removed when an executor starts.

use std::{process::Command, time::Duration};

use crate::helpers::{id, TestApp};

const USR_PROBE: &str = r#"
import errno

def test_usr_is_its_own_read_only_mount():
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split() for line in f]
    usr = [m for m in mounts if m[4] == "/usr"]
    assert usr, "no mount at /usr"
    assert "ro" in usr[-1][5].split(","), usr[-1]
    for path in ("/usr/probe", "/usr/lib/python3/dist-packages/pytest/probe.py"):
        try:
            open(path, "w")
            raise AssertionError(f"wrote {path}")
        except OSError as e:
            assert e.errno in (errno.EROFS, errno.EACCES), e
"#;

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

#[tokio::test]
async fn a_run_reads_usr_from_a_read_only_volume_of_its_image() {
    let app = TestApp::spawn_with(&[("usr/test_usr.py", USR_PROBE)], |_| {}).await;
    let run = app.create_run(8, &["usr/test_usr.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    assert!(logs.contains("1 passed"), "{logs}");

    let image = std::env::var("RUNNER_IMAGE").unwrap_or("test-executor-runner:latest".into());
    let (_, image_id) = docker(&["image", "inspect", "-f", "{{.Id}}", &image]);
    let volume = test_executor::engine::usr_volume_name(&image_id);
    let (found, labelled) = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{index .Labels \"te.usr-of\"}}",
        &volume,
    ]);
    assert!(found, "no volume {volume}");
    assert_eq!(labelled, image_id);
}

#[tokio::test]
async fn the_usr_volume_of_an_image_that_is_gone_is_removed_at_start() {
    let gone = format!("sha256:{:064x}", rand::random::<u64>());
    let volume = test_executor::engine::usr_volume_name(&gone);
    let label = format!("te.usr-of={gone}");
    let (created, _) = docker(&["volume", "create", "--label", &label, &volume]);
    assert!(created);
    let _app = TestApp::spawn().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while docker(&["volume", "inspect", &volume]).0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{volume} still there after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
