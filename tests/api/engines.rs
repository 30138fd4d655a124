//! A second, real Docker engine for the tests of several workers: a dockerd
//! of the test's own (its data-root, exec-root and socket in a temp folder,
//! no bridge, no iptables) holding a copy of the runner image, removed when
//! dropped — also when the test fails. And processes of the real binary in
//! a role (`web`, `worker`), killed when dropped.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A test CA, a server certificate for 127.0.0.1 and a client certificate
/// it signed (`ca.pem`, `cert.pem`, `key.pem`: the names `DOCKER_CERT_PATH`
/// is read with), valid for two days.
const MAKE_CERTS: &str = "set -e
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=te-test-ca -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server-key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -out server-cert.pem -extfile server.ext 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=te-test-client -keyout key.pem -out client.csr 2>/dev/null
printf 'extendedKeyUsage=clientAuth\\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -out cert.pem -extfile client.ext 2>/dev/null
";

pub fn runner_image() -> String {
    std::env::var("RUNNER_IMAGE").unwrap_or_else(|_| "test-executor-runner:latest".into())
}

pub struct SecondEngine {
    pub dir: PathBuf,
    child: Option<Child>,
    /// More `dockerd` arguments (a TLS listener), kept for a restart.
    extra: Vec<String>,
}

/// A TLS endpoint of the second engine, as the docker CLI (and bollard)
/// reach one: `DOCKER_HOST`, `DOCKER_TLS_VERIFY=1`, and `DOCKER_CERT_PATH`
/// holding `ca.pem`, `cert.pem` and `key.pem` for a client.
pub struct Tls {
    pub host: String,
    pub cert_path: PathBuf,
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.cert_path);
    }
}

impl SecondEngine {
    /// Starts the engine and copies the runner image into it; `Err` says why
    /// it cannot run here (the test then says so and skips).
    pub fn start() -> Result<SecondEngine, String> {
        SecondEngine::start_with(Vec::new())
    }

    /// The engine listening on TCP with mutual TLS besides its socket: it
    /// accepts only clients whose certificate its own test CA signed.
    pub fn start_with_tls() -> Result<(SecondEngine, Tls), String> {
        let certs = std::env::temp_dir().join(format!("te-certs-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&certs).map_err(|e| e.to_string())?;
        let made = Command::new("sh")
            .current_dir(&certs)
            .arg("-c")
            .arg(MAKE_CERTS)
            .output()
            .map_err(|e| format!("running openssl: {e}"))?;
        if !made.status.success() {
            return Err(format!(
                "making the test certificates with openssl: {}",
                String::from_utf8_lossy(&made.stderr)
            ));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| e.to_string())?
            .local_addr()
            .map_err(|e| e.to_string())?
            .port();
        let host = format!("tcp://127.0.0.1:{port}");
        let file = |name: &str| certs.join(name).display().to_string();
        let extra = vec![
            "-H".to_owned(),
            host.clone(),
            "--tlsverify".to_owned(),
            "--tlscacert".to_owned(),
            file("ca.pem"),
            "--tlscert".to_owned(),
            file("server-cert.pem"),
            "--tlskey".to_owned(),
            file("server-key.pem"),
        ];
        let engine = SecondEngine::start_with(extra)?;
        Ok((
            engine,
            Tls {
                host,
                cert_path: certs,
            },
        ))
    }

    fn start_with(extra: Vec<String>) -> Result<SecondEngine, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("starting a dockerd needs root, and these tests do not run as root".into());
        }
        let dockerd = Command::new("sh")
            .args(["-c", "command -v dockerd"])
            .output()
            .map_err(|e| e.to_string())?;
        if !dockerd.status.success() {
            return Err("no `dockerd` on PATH".into());
        }
        let driver = Command::new("docker")
            .args(["info", "--format", "{{.Driver}}"])
            .output()
            .map_err(|e| format!("asking the host's engine for its storage driver: {e}"))?;
        let driver = String::from_utf8_lossy(&driver.stdout).trim().to_owned();
        if driver.is_empty() {
            return Err("the host's Docker engine does not answer `docker info`".into());
        }
        let dir = std::env::temp_dir().join(format!("te-engine-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("config.json"), "{}").map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
        let mut engine = SecondEngine {
            dir,
            child: None,
            extra,
        };
        engine.child = Some(
            Command::new("dockerd")
                .arg("--config-file")
                .arg(engine.dir.join("config.json"))
                .args(["--storage-driver", &driver])
                .arg("--data-root")
                .arg(engine.dir.join("data"))
                .arg("--exec-root")
                .arg(engine.dir.join("exec"))
                .args(["-H", &engine.host()])
                .arg("--pidfile")
                .arg(engine.dir.join("dockerd.pid"))
                .args(["--bridge", "none", "--iptables=false", "--ip-masq=false"])
                .args(&engine.extra)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("starting dockerd: {e}"))?,
        );
        engine.wait_up()?;
        let copied = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker save {} | docker -H {} load",
                runner_image(),
                engine.host()
            ))
            .output()
            .map_err(|e| e.to_string())?;
        if !copied.status.success() {
            return Err(format!(
                "copying the runner image into the second engine: {}",
                String::from_utf8_lossy(&copied.stderr)
            ));
        }
        Ok(engine)
    }

    fn wait_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.docker(&["info", "--format", "{{.ID}}"]).is_some() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" / ");
                return Err(format!("dockerd exited ({status}): {tail}"));
            }
            if Instant::now() > deadline {
                return Err("dockerd did not answer within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `DOCKER_HOST` for this engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// Runs `docker -H <this engine> args`; its stdout if it succeeded.
    pub fn docker(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("docker")
            .args(["-H", &self.host()])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The engine dies at once (SIGKILL), as with a host that goes away.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Its containerd and the containers' shims outlive it: they go
        // too, each by its pid (their command lines name this engine's folder).
        for pid in pids_naming(&self.dir) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }

    /// Starts the engine again on the same data.
    pub fn restart(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.join("dockerd.log")).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(self.dir.join("dockerd.pid"));
        let driver = Command::new("docker")
            .args(["info", "--format", "{{.Driver}}"])
            .output()
            .map_err(|e| e.to_string())?;
        let driver = String::from_utf8_lossy(&driver.stdout).trim().to_owned();
        self.child = Some(
            Command::new("dockerd")
                .arg("--config-file")
                .arg(self.dir.join("config.json"))
                .args(["--storage-driver", &driver])
                .arg("--data-root")
                .arg(self.dir.join("data"))
                .arg("--exec-root")
                .arg(self.dir.join("exec"))
                .args(["-H", &self.host()])
                .arg("--pidfile")
                .arg(self.dir.join("dockerd.pid"))
                .args(["--bridge", "none", "--iptables=false", "--ip-masq=false"])
                .args(&self.extra)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("starting dockerd again: {e}"))?,
        );
        self.wait_up()
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Its containers first, then the engine (SIGTERM: it unmounts).
            if let Some(ids) = self.docker(&["ps", "-aq"]) {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f"];
                    args.extend(ids);
                    self.docker(&args);
                }
            }
            let mut child = self.child.take().unwrap();
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Anything fuse-mounted under it must go before the files.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
                self.dir.display()
            ))
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The processes whose command line names `dir`.
fn pids_naming(dir: &std::path::Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

/// A process of the real binary in a role, killed (SIGKILL) when dropped.
pub struct Process {
    child: Option<Child>,
    pub address: String,
}

impl Process {
    /// Starts `test-executor <role>` with the environment given (on top of
    /// the test's database, tests folder and runner image).
    pub async fn start(
        role: &str,
        database_url: &str,
        tests_dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_test-executor"));
        command
            .arg(role)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("TESTS_DIR", tests_dir)
            .env("RUNNER_IMAGE", runner_image())
            .env("OPERATOR_TOKEN", "operator-secret")
            .env("MAX_PARALLEL_RUNS", "2")
            .env("WARM_POOL", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let process = Process {
            child: Some(command.spawn().expect("starting the binary")),
            address: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{}/healthz", process.address))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "{role} did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        process
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
