use std::time::Duration;

use crate::helpers::{id, TestApp};

/// Probes run inside the container, as a test file would (the dependency
/// images' tests run them too).
pub const PROBES: &str = r#"
import errno, os, socket, threading, time

def test_no_route_off_loopback():
    with open("/proc/net/route") as f:
        routes = f.read().splitlines()[1:]
    assert routes == [], routes
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("1.1.1.1", 53))
        raise AssertionError("connected off the machine")
    except OSError as e:
        assert e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH), e

def test_root_filesystem_is_read_only():
    for path in ("/probe", "/usr/probe", "/opt/te/probe"):
        try:
            open(path, "w")
            raise AssertionError(f"wrote {path}")
        except OSError as e:
            assert e.errno in (errno.EROFS, errno.EACCES), e

def test_not_root_and_no_capabilities():
    assert os.getuid() != 0 and os.geteuid() != 0
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f)
    assert int(status["CapEff"].strip(), 16) == 0
    assert status["NoNewPrivs"].strip() == "1"

def test_no_docker_socket_and_no_secrets():
    assert not os.path.exists("/var/run/docker.sock")
    assert not os.path.exists("/run/docker.sock")
    for key in os.environ:
        assert "DATABASE" not in key and "OPERATOR" not in key and "TOKEN" not in key, key
    assert os.environ["TE_RUN_ID"].isdigit()

def test_process_count_is_limited():
    stop = threading.Event()
    threads = []
    try:
        for _ in range(400):
            t = threading.Thread(target=stop.wait)
            t.start()
            threads.append(t)
        raise AssertionError("started 400 threads")
    except RuntimeError:
        pass
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert 100 < len(threads) < 256, len(threads)

def test_scratch_space_is_writable():
    with open("/tmp/scratch.txt", "w") as f:
        f.write("ok")
"#;

#[tokio::test]
async fn the_sandbox_has_no_network_no_privileges_no_secrets_and_limited_processes() {
    let app = TestApp::spawn_with(&[("probes/test_sandbox.py", PROBES)], |_| {}).await;
    let run = app.create_run(7, &["probes/test_sandbox.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    assert!(logs.contains("6 passed"), "{logs}");
}
