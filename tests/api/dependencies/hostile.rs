//! Hostile projects against the dependency build: their build backend (the
//! project's code) and a source archive they require (third-party code, run
//! by the download step) probe the host's ports, the proxy and every cache,
//! and try to plant a wheel another project would install.

use std::{net::TcpListener, process::Command, time::Duration};

use super::DepsFixture;
use test_executor::dependencies;

/// Python that probes and then fails with what it saw, in one line:
/// `probe done: 5432=closed …; /var/cache/te-wheels=refused …`.
fn probe(ports: &[u16], planted: &str) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!(
        r#"
import os, socket, zipfile

def _connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), 2).close()
        return "OPEN"
    except OSError as e:
        return "closed"

def _via_proxy(target):
    try:
        s = socket.create_connection(("127.0.0.1", 3128), 2)
        s.sendall(f"CONNECT {{target}} HTTP/1.1\r\n\r\n".encode())
        answer = s.recv(100).split(b"\r\n")[0].decode()
        return "OPEN" if " 200 " in answer else "refused"
    except OSError as e:
        return "closed:" + e.__class__.__name__

def _plant(folder):
    name = os.path.join(folder, "{planted}-1.0-py3-none-any.whl")
    try:
        with zipfile.ZipFile(name, "w") as z:
            z.writestr("{planted}/__init__.py", "PLANTED = True\n")
            z.writestr("{planted}-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: {planted}\nVersion: 1.0\n")
            z.writestr("{planted}-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
            z.writestr("{planted}-1.0.dist-info/RECORD", "")
        return "WRITTEN"
    except OSError:
        return "refused"

def probe():
    seen = [f"{{p}}={{_connect(p)}}" for p in ({ports},)]
    seen += [f"proxy:{{p}}={{_via_proxy(f'127.0.0.1:{{p}}')}}" for p in ({ports},)]
    for folder in ["/var/cache/te-wheels/wheels", "/var/cache/te-wheels", "/var/cache/te-dl",
                   "/var/cache/te-pip/wheels", "/var/cache/te-pip", "/var/cache/te-net",
                   "/var/cache/te-fetch", "/var/cache/te-fetch/find-links"]:
        seen.append(f"{{folder}}={{_plant(folder)}}")
    secrets = sorted(k for k in os.environ if k in ("PIP_INDEX_URL", "PIP_CERT", "PIP_PROXY"))
    seen.append("secrets=" + (",".join(secrets) or "none"))
    raise RuntimeError("probe done: " + " ".join(seen))
"#,
        ports = ports.join(", ")
    )
}

/// Ports on the host: Postgres, a listener standing for the app, the
/// engine's TCP ports.
fn host_ports(app: &TcpListener) -> Vec<u16> {
    vec![5432, app.local_addr().unwrap().port(), 2375, 2376]
}

/// `own` are the folders the step may write: a download step's own volumes
/// (removed with the build), or in a project step its own root's folder
/// (no volume is there; it ends in the project's image, nowhere else).
fn assert_all_closed(log: &str, planted: &str, own: &[&str]) {
    let line = log
        .lines()
        .rfind(|l| l.contains("probe done:"))
        .unwrap_or_else(|| panic!("the probe did not run:\n{log}"));
    assert!(!line.contains("OPEN"), "{line}");
    let written: Vec<&str> = line
        .split_whitespace()
        .filter_map(|seen| seen.strip_suffix("=WRITTEN"))
        .collect();
    assert_eq!(written, own, "{line}");
    assert!(!log.contains(&format!("Successfully installed {planted}")));
}

async fn build_log(fixture: &DepsFixture) -> (String, String) {
    let failure = fixture
        .ensure()
        .await
        .expect_err("the hostile build failed");
    let key = failure.key.clone().expect("the failure names its key");
    let row = dependencies::store::get(&fixture.db, &key)
        .await
        .unwrap()
        .expect("the build is recorded");
    (failure.reason, row.log)
}

/// The second project asks for the wheel the first tried to plant: it is
/// nowhere to be had.
async fn planted_wheel_is_not_installed(planted: &str) {
    let second = DepsFixture::new("wants-planted").await;
    second.write("requirements.txt", &format!("{planted}==1.0\n"));
    let failure = second
        .ensure()
        .await
        .expect_err("no planted wheel to install");
    assert!(
        failure.reason.contains(planted) && failure.reason.contains("No matching distribution"),
        "{}",
        failure.reason
    );
}

#[tokio::test]
async fn an_in_tree_build_backend_finds_no_port_no_writable_cache_and_no_pip_settings() {
    let fixture = DepsFixture::new("hostile-backend").await;
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    app.set_nonblocking(true).unwrap();
    let planted = format!("te_planted_{:08x}", rand::random::<u32>());
    fixture.write(
        "pyproject.toml",
        "[build-system]\nrequires = []\nbuild-backend = \"probe_backend\"\nbackend-path = [\".\"]\n\n[project]\nname = \"hostile\"\nversion = \"1.0\"\n",
    );
    let backend = format!(
        "{}\ndef get_requires_for_build_editable(config_settings=None):\n    probe()\n\n\
         def get_requires_for_build_wheel(config_settings=None):\n    probe()\n\n\
         def build_editable(*a, **k):\n    probe()\n\ndef build_wheel(*a, **k):\n    probe()\n",
        probe(&host_ports(&app), &planted)
    );
    fixture.write("probe_backend.py", &backend);
    let (reason, log) = build_log(&fixture).await;
    assert!(reason.contains("probe done:"), "its own message: {reason}");
    // In a project step no volume is writable: /var/cache/te-pip is its own
    // root's folder, committed into its own image at most.
    assert_all_closed(&log, &planted, &["/var/cache/te-pip"]);
    assert!(
        log.contains("secrets=none"),
        "no pip settings in a project step"
    );
    assert!(app.accept().is_err(), "nothing reached the host's listener");
    planted_wheel_is_not_installed(&planted).await;
}

#[tokio::test]
async fn a_source_archive_run_by_the_download_step_reaches_only_the_index() {
    let mut fixture = DepsFixture::new("hostile-sdist").await;
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    app.set_nonblocking(true).unwrap();
    let planted = format!("te_planted_{:08x}", rand::random::<u32>());
    let package = format!("te_probe_sdist_{:08x}", rand::random::<u32>());
    // A source archive only a local link folder offers: pip runs its
    // setup.py in the download step to read its metadata.
    let links = fixture.root.with_extension("links");
    let source = links.join(format!("{package}-1.0"));
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(
        source.join("setup.py"),
        format!("{}\nprobe()\n", probe(&host_ports(&app), &planted)),
    )
    .unwrap();
    std::fs::write(
        source.join("PKG-INFO"),
        format!("Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n"),
    )
    .unwrap();
    let status = Command::new("tar")
        .arg("-czf")
        .arg(links.join(format!("{package}-1.0.tar.gz")))
        .arg("-C")
        .arg(&links)
        .arg(format!("{package}-1.0"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(&source).unwrap();
    fixture.settings.pip_find_links = Some(links.to_string_lossy().into_owned());
    fixture.write("requirements.txt", &format!("{package}==1.0\n"));

    let (reason, log) = build_log(&fixture).await;
    assert!(
        log.contains("downloading source archives"),
        "the sources pass ran: {log}"
    );
    // Its tunnels through the proxy to the host's ports were not opened
    // (`proxy:PORT=` is never OPEN); the proxy itself is tested alone below.
    // Its writable folders are this build's downloads and the sources pass's
    // own files (no credentials among them), both removed with the build.
    assert_all_closed(
        &log,
        &planted,
        &["/var/cache/te-pip", "/var/cache/te-fetch/find-links"],
    );
    assert!(!reason.is_empty());
    assert!(app.accept().is_err(), "nothing reached the host's listener");
    std::fs::remove_dir_all(&links).unwrap();
    planted_wheel_is_not_installed(&planted).await;
}

#[tokio::test]
async fn requirement_lines_that_are_not_requirements_are_refused_by_name() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let index = format!("--index-url http://127.0.0.1:{port}/simple");
    for line in [
        "-e /etc",
        index.as_str(),
        "file:///etc/passwd",
        "-r ../other/requirements.txt",
    ] {
        let fixture = DepsFixture::new("refused-line").await;
        fixture.write("requirements.txt", &format!("iniconfig\n{line}\n"));
        let started = std::time::Instant::now();
        let failure = fixture.ensure().await.expect_err(line);
        assert!(
            failure
                .reason
                .starts_with(&format!("requirements.txt line 2: `{line}` is refused")),
            "{line}: {}",
            failure.reason
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "refused before any step"
        );
    }
    assert!(
        listener.accept().is_err(),
        "no request reached the index named"
    );
}

/// The proxy alone, as a download step reaches it (a network-less
/// container, its socket on a read-only mount): the index's hosts are
/// tunnelled, Postgres, the app's port and an IP literal are refused.
#[tokio::test]
async fn the_download_proxy_tunnels_to_the_index_hosts_only() {
    let fixture = DepsFixture::new("egress").await;
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    app.set_nonblocking(true).unwrap();
    let app_port = app.local_addr().unwrap().port();
    let name = format!("te-egress-test-{:08x}", rand::random::<u32>());
    let volume = format!("{name}-net");
    let egress = dependencies::egress::Egress::start(
        &fixture.engine,
        &fixture.base,
        (&name, &volume),
        &["pip-default".to_owned()],
        &Default::default(),
    )
    .await
    .unwrap();
    let script = format!(
        r#"
import glob, socket, sys
sys.path.insert(0, sorted(glob.glob("/usr/share/python-wheels/pip-*.whl"))[-1])
from pip._internal.models.index import PyPI
for target in ["127.0.0.1:5432", "127.0.0.1:{app_port}", "localhost:2375", "host.invalid:443",
               f"{{PyPI.netloc}}:443"]:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect("/var/cache/te-net/proxy.sock")
    s.sendall(f"CONNECT {{target}} HTTP/1.1\r\n\r\n".encode())
    print(target.replace(PyPI.netloc, "INDEX"), s.recv(100).split(b"\r\n")[0].decode())
"#
    );
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--user",
            "1000:1000",
        ])
        .args(["--cap-drop", "ALL", "--mount"])
        .arg(format!(
            "type=volume,src={volume},dst=/var/cache/te-net,readonly"
        ))
        .args([&fixture.base, "python3", "-c", &script])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let refusals = egress.refusals(&fixture.engine).await;
    egress.stop(&fixture.engine).await;
    assert!(said.contains("127.0.0.1:5432 HTTP/1.1 403"), "{said}");
    assert!(
        said.contains(&format!("127.0.0.1:{app_port} HTTP/1.1 403")),
        "{said}"
    );
    assert!(said.contains("localhost:2375 HTTP/1.1 403"), "{said}");
    assert!(said.contains("host.invalid:443 HTTP/1.1 403"), "{said}");
    assert!(said.contains("INDEX:443 HTTP/1.1 200"), "{said}");
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    assert!(app.accept().is_err(), "nothing reached the app's port");
}
