//! The download step's only way out. The step runs with no network at all
//! (`none`: only its own loopback); its pip talks to a forwarder on that
//! loopback, which joins each connection to a unix socket in a volume the
//! step shares with this proxy. The proxy (`egress.py`, code of ours, not
//! the project's) has the host's network and opens CONNECT tunnels to the
//! package index's hosts and to nothing else: not Postgres, not the app,
//! not the engine's API, not the LAN. It works on engines without a bridge
//! network, and for a remote engine too (the volume lives beside it).

use std::{collections::HashMap, time::Duration};

use futures_util::StreamExt;

use crate::{
    config::DependencyBuildConfig,
    engine::{BuilderSpec, Engine},
};

/// The proxy's script.
pub const SCRIPT: &str = include_str!("egress.py");
/// Where download steps mount the proxy's volume, read-only: its socket
/// alone.
pub const NET_DIR: &str = "/var/cache/te-net";
/// Where the proxy mounts it: a folder the runner image gives uid 1000, so
/// the volume's first mount makes it the proxy's.
const PROXY_DIR: &str = "/var/cache/te-pip";
/// The port of the forwarder on a download step's own loopback.
pub const FORWARD_PORT: u16 = 3128;
/// How long the proxy may take to listen.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// The `HOST:PORT` pairs the proxy admits: the configured index, extra
/// indexes and link pages (`pip-default` stands for pip's own default
/// index, read from pip inside the proxy), and `DEPS_ALLOWED_HOSTS`.
pub fn targets(settings: &DependencyBuildConfig) -> Vec<String> {
    let mut targets = Vec::new();
    let index = settings.pip_index_url.as_deref().filter(|v| !v.is_empty());
    match index {
        Some(url) => targets.extend(host_port(url)),
        None => targets.push("pip-default".to_owned()),
    }
    let listed = [&settings.pip_extra_index_url, &settings.pip_find_links];
    for urls in listed.into_iter().flatten() {
        targets.extend(urls.split_whitespace().filter_map(host_port));
    }
    targets.extend(
        settings
            .deps_allowed_hosts
            .split_whitespace()
            .map(|target| {
                let target = target.to_lowercase();
                // a host alone means its TLS port
                if target
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                {
                    target
                } else {
                    format!("{target}:443")
                }
            }),
    );
    targets.sort();
    targets.dedup();
    targets
}

/// `host:port` of an `http(s)://` URL (credentials left out), `None` for a
/// path.
fn host_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default = match scheme.to_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_port = host_port.to_lowercase();
    Some(if has_port {
        host_port
    } else {
        format!("{host_port}:{default}")
    })
}

/// Follows the proxy's output until it says it listens; what it said
/// otherwise (or the timeout) is the error.
async fn wait_ready(engine: &Engine, proxy: &str) -> Result<(), String> {
    let mut output = engine.follow_logs(proxy);
    let ready = async {
        let mut seen = String::new();
        while let Some(Ok(chunk)) = output.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            if seen.contains("te-egress: ready") {
                return Ok(());
            }
            if seen.len() > 64 * 1024 {
                break;
            }
        }
        Err(seen.trim().to_owned())
    };
    match tokio::time::timeout(READY_WITHIN, ready).await {
        Ok(answer) => answer,
        Err(_) => Err(format!(
            "it did not listen within {} s",
            READY_WITHIN.as_secs()
        )),
    }
}

/// A running proxy and the volume of its socket.
pub struct Egress {
    pub volume: String,
    proxy: String,
}

impl Egress {
    /// Starts the proxy in `volume` (made here) and waits until it listens.
    pub async fn start(
        engine: &Engine,
        base: &str,
        (name, volume): (&str, &str),
        targets: &[String],
        labels: &HashMap<String, String>,
    ) -> anyhow::Result<Egress> {
        engine.remove(name).await?;
        engine.remove_volume(volume).await?;
        engine.create_volume(volume, labels.clone()).await?;
        let socket = format!("{PROXY_DIR}/proxy.sock");
        let mut cmd = vec![
            "python3".to_owned(),
            "-c".to_owned(),
            SCRIPT.to_owned(),
            "proxy".to_owned(),
            socket,
        ];
        cmd.extend(targets.iter().cloned());
        let created = engine
            .create_builder(BuilderSpec {
                name,
                image: base.to_owned(),
                user: "1000:1000",
                caps: &[],
                cmd,
                env: Vec::new(),
                network: "host",
                volumes: vec![(volume, PROXY_DIR, false)],
                read_only_with_tmp_mib: Some(16),
                labels: labels.clone(),
                memory_bytes: 256 << 20,
                nano_cpus: 1_000_000_000,
                pids_limit: 64,
            })
            .await;
        let egress = Egress {
            volume: volume.to_owned(),
            proxy: name.to_owned(),
        };
        if let Err(err) = created {
            egress.stop(engine).await;
            return Err(err);
        }
        if let Err(err) = engine.start(&egress.proxy).await {
            egress.stop(engine).await;
            return Err(err);
        }
        match wait_ready(engine, &egress.proxy).await {
            Ok(()) => Ok(egress),
            Err(why) => {
                egress.stop(engine).await;
                anyhow::bail!("the download proxy did not start: {why}")
            }
        }
    }

    /// What the proxy refused (a line each), for the build's log.
    pub async fn refusals(&self, engine: &Engine) -> Vec<String> {
        let _ = engine.kill(&self.proxy).await;
        let mut output = engine.follow_logs(&self.proxy);
        let mut text = String::new();
        let read = async {
            while let Some(Ok(chunk)) = output.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                if text.len() > 256 * 1024 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
        text.lines()
            .filter(|l| l.starts_with("te-egress: refused"))
            .take(50)
            .map(str::to_owned)
            .collect()
    }

    /// Removes the proxy and its volume.
    pub async fn stop(self, engine: &Engine) {
        if let Err(err) = engine.remove(&self.proxy).await {
            tracing::warn!("removing the download proxy: {err:#}");
        }
        if let Err(err) = engine.remove_volume(&self.volume).await {
            tracing::warn!("removing the download proxy's volume: {err:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_hosts_are_targets() {
        let mut settings = DependencyBuildConfig::from_env();
        settings.pip_index_url = Some("https://user:secret@Index.Example/simple".into());
        settings.pip_extra_index_url = Some("http://extra.example:8080/simple".into());
        settings.pip_find_links = Some("/opt/wheels https://links.example/w/".into());
        settings.deps_allowed_hosts = "files.example".into();
        assert_eq!(
            targets(&settings),
            [
                "extra.example:8080",
                "files.example:443",
                "index.example:443",
                "links.example:443"
            ]
        );
        settings.pip_index_url = None;
        settings.pip_extra_index_url = None;
        settings.pip_find_links = None;
        settings.deps_allowed_hosts = String::new();
        assert_eq!(targets(&settings), ["pip-default"]);
    }
}
