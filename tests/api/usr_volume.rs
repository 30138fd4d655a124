//! The runner image's `/usr` comes from a read-only volume filled from that
//! image (`engine/usr_volume.rs`): filled once even when several processes
//! prepare it at once, and removed when an executor starts once its image is
//! gone.

use std::{process::Command, time::Duration};

use test_executor::engine::{usr_volume_name, Engine};

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

fn runner_image() -> String {
    std::env::var("RUNNER_IMAGE").unwrap_or("test-executor-runner:latest".into())
}

/// Whether the volume holds the filler's marker (and so a whole copy).
fn complete(volume: &str) -> bool {
    let mount = format!("{volume}:/v:ro");
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        "--entrypoint",
        "test",
        &runner_image(),
        "-e",
        "/v/.te-complete",
        "-a",
        "-x",
        "/v/bin/python3",
    ])
    .0
}

#[tokio::test]
async fn a_run_reads_usr_from_a_read_only_volume_of_its_image() {
    let app = TestApp::spawn_with(&[("usr/test_usr.py", USR_PROBE)], |_| {}).await;
    // The volume is prepared in the background: the first runs of a fresh
    // image may read /usr from the image.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let run = app.create_run(8, &["usr/test_usr.py"]).await;
        let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
        if run["status"] == "success" {
            break;
        }
        let logs = app.log_text(id(&run)).await.join("\n");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no run read /usr from a volume within 90 s: {run}\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, image_id) = docker(&["image", "inspect", "-f", "{{.Id}}", &runner_image()]);
    let volume = usr_volume_name(&image_id);
    let (found, labelled) = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{index .Labels \"te.usr-of\"}}",
        &volume,
    ]);
    assert!(found, "no volume {volume}");
    assert_eq!(labelled, image_id);
    assert!(complete(&volume), "{volume} has no marker or no python3");
}

#[tokio::test]
async fn two_preparations_at_once_fill_a_new_volume_once_and_both_succeed() {
    // A new image id (the runner image with one more label), so its volume
    // starts empty.
    let tag = format!("te-test-usr:{:016x}", rand::random::<u64>());
    let (made, container) = docker(&["create", "--network", "none", &runner_image()]);
    assert!(made);
    let label = format!("LABEL te.test={tag}");
    let (committed, image_id) = docker(&["commit", "--change", &label, &container, &tag]);
    docker(&["rm", &container]);
    assert!(committed);

    let engine = Engine::connect().unwrap();
    let (a, b) = tokio::join!(
        engine.prepare_usr_volume(&image_id),
        engine.prepare_usr_volume(&image_id)
    );
    let volume = usr_volume_name(&image_id);
    let filled = complete(&volume);
    docker(&["rmi", "-f", &tag]);
    docker(&["volume", "rm", &volume]);
    assert_eq!(a.unwrap(), volume);
    assert_eq!(b.unwrap(), volume);
    assert!(filled, "{volume} has no marker or no python3");
}

#[tokio::test]
async fn the_usr_volume_of_an_image_that_is_gone_is_removed_at_start() {
    let gone = format!("sha256:{:032x}{:032x}", rand::random::<u128>(), 0);
    let volume = usr_volume_name(&gone);
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

#[tokio::test]
async fn a_filler_another_process_just_made_survives_an_executor_starting() {
    // "created" until its process starts it: the start-up sweep of another
    // executor (here, called directly) must leave it alone.
    let name = format!("te-test-young-filler-{:016x}", rand::random::<u64>());
    let (made, _) = docker(&[
        "create",
        "--name",
        &name,
        "--network",
        "none",
        "--label",
        "te.usr-filler=sha256:test",
        &runner_image(),
    ]);
    assert!(made);
    Engine::connect()
        .unwrap()
        .remove_orphan_usr_volumes()
        .await
        .unwrap();
    let (still_there, _) = docker(&["inspect", &name]);
    docker(&["rm", "-f", &name]);
    assert!(still_there, "a young filler was removed");
}
