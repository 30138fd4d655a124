//! A run's services (`[[services]]` of its project's `test-executor.toml`):
//! one fresh container per service, started once the run's container is
//! (whose network namespace they join: `container:<run>`, so the tests
//! reach `db:5432` on their shared loopback and nothing else reaches them),
//! with the run's labels and limits; their `ready` ports are waited for
//! from inside the run's container before its files are sent. A service
//! that stops, or whose port stays shut past `SERVICE_READY_TIMEOUT_SECS`,
//! ends the run `error`, naming it, with its last lines. They are removed
//! when the run ends (the reconciler removes what a crash leaves).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::{
    dependencies::declaration::Service,
    engine::{ServiceSpec, LABEL_INSTANCE, LABEL_RUN},
    store::lifecycle::ClaimedRun,
};

/// How often the services are asked whether they still run while the
/// readiness probe waits.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// A service's last lines given in the run's reason.
const LAST_LINES: usize = 12;
/// Tries each port on the loopback until all accept a connection; prints
/// `ready PORT` for each; exits 1 when the time (argv[1], seconds) is up.
const PROBE: &str = "import socket, sys, time
end = time.monotonic() + float(sys.argv[1])
left = sorted(set(int(p) for p in sys.argv[2:]))
while left and time.monotonic() < end:
    for port in list(left):
        try:
            socket.create_connection(('127.0.0.1', port), 0.5).close()
        except OSError:
            continue
        left.remove(port)
        print('ready', port, flush=True)
    if left:
        time.sleep(0.1)
sys.exit(1 if left else 0)
";

/// The service containers of this process's runs, by run.
#[derive(Default)]
pub struct Running(Mutex<HashMap<i64, Vec<String>>>);

impl Running {
    /// The service containers of a run (for the sampler).
    pub fn of(&self, run_id: i64) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .get(&run_id)
            .cloned()
            .unwrap_or_default()
    }

    fn add(&self, run_id: i64, container: String) {
        self.0
            .lock()
            .unwrap()
            .entry(run_id)
            .or_default()
            .push(container);
    }

    fn take(&self, run_id: i64) -> Vec<String> {
        self.0.lock().unwrap().remove(&run_id).unwrap_or_default()
    }
}

/// A service's container: beside its run's, named after it.
pub fn container_name(run_container: &str, service: &str) -> String {
    format!("{run_container}-svc-{service}")
}

/// `/etc/hosts` lines of the run's container: each service by its name.
pub fn hosts(services: &[Service]) -> Vec<String> {
    services
        .iter()
        .map(|s| format!("{}:127.0.0.1", s.name))
        .collect()
}

/// Starts the services in the (started) run container's network namespace
/// and waits until their `ready` ports accept connections; the error is the
/// run's reason. Returns early, without error, on a cancel (the run's
/// follow then ends it).
pub async fn start(
    shared: &Shared,
    run: &ClaimedRun,
    run_container: &str,
    services: &[Service],
    cancel: &CancellationToken,
) -> Result<(), String> {
    for service in services {
        create_one(shared, run, run_container, service).await?;
    }
    let timeout = Duration::from_secs(shared.config.dependencies.service_ready_timeout_secs);
    tokio::select! {
        ready = wait_ready(shared, run_container, services, timeout) => ready,
        stopped = watch(shared, run_container, services) => Err(stopped),
        _ = cancel.cancelled() => Ok(()),
    }
}

async fn create_one(
    shared: &Shared,
    run: &ClaimedRun,
    run_container: &str,
    service: &Service,
) -> Result<(), String> {
    let what = format!("service {} ({})", service.name, service.image);
    let image = shared
        .config
        .dependencies
        .service_images
        .image(&service.image)
        .ok_or_else(|| format!("{what}: this server no longer offers that image"))?;
    let engine = &shared.engine;
    let trouble = |err: anyhow::Error| {
        tracing::warn!(error = format!("{err:#}"), "starting a service");
        format!("{what} could not be started: {err:#}")
    };
    let facts = engine
        .service_image(image)
        .await
        .map_err(trouble)?
        .ok_or_else(|| {
            format!("{what}: its image {image} is missing (`scripts/run` builds the offered ones)")
        })?;
    let name = container_name(run_container, &service.name);
    shared.services.add(run.id, name.clone());
    let spec = ServiceSpec {
        name: &name,
        image: &facts,
        env: service
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        labels: HashMap::from([
            (LABEL_INSTANCE.to_string(), shared.instance.clone()),
            (LABEL_RUN.to_string(), run.id.to_string()),
        ]),
        limits: &run.limits,
        run_container,
    };
    engine.create_service(spec).await.map_err(trouble)?;
    engine.start(&name).await.map_err(trouble)
}

/// Probes the `ready` ports from inside the run's container (it shares
/// their loopback); the error names the first service not ready.
async fn wait_ready(
    shared: &Shared,
    run_container: &str,
    services: &[Service],
    timeout: Duration,
) -> Result<(), String> {
    let ports: Vec<String> = services
        .iter()
        .filter_map(|s| s.ready_port.map(|p| p.to_string()))
        .collect();
    if ports.is_empty() {
        return Ok(());
    }
    let mut cmd = vec![
        "python3".to_owned(),
        "-c".to_owned(),
        PROBE.to_owned(),
        timeout.as_secs().to_string(),
    ];
    cmd.extend(ports);
    let within = timeout + Duration::from_secs(10);
    let (code, output) = match shared.engine.exec(run_container, cmd, within).await {
        Ok(answer) => answer,
        Err(err) => return Err(format!("waiting for the services: {err:#}")),
    };
    if code == 0 {
        return Ok(());
    }
    let ready: Vec<&str> = output
        .lines()
        .filter_map(|l| l.strip_prefix("ready "))
        .collect();
    let late = services.iter().find(|s| {
        s.ready_port
            .is_some_and(|p| !ready.contains(&p.to_string().as_str()))
    });
    let Some(late) = late else {
        return Err(format!(
            "waiting for the services failed (exit {code}): {}",
            output.trim()
        ));
    };
    let why = format!(
        "service {} ({}) did not accept a connection on port {} within {} s",
        late.name,
        late.image,
        late.ready_port.unwrap_or_default(),
        timeout.as_secs()
    );
    Err(with_last_lines(shared, run_container, late, why).await)
}

/// Waits until a service stops (while the probe runs); the run's reason.
async fn watch(shared: &Shared, run_container: &str, services: &[Service]) -> String {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        for service in services {
            let name = container_name(run_container, &service.name);
            let state = match shared.engine.inspect(&name).await {
                Ok(state) => state,
                Err(err) => {
                    tracing::debug!(error = format!("{err:#}"), "asking about a service");
                    continue;
                }
            };
            if state.is_some_and(|s| s.running) {
                continue;
            }
            let code = state
                .and_then(|s| s.exit_code)
                .map_or("gone".to_owned(), |c| format!("exit code {c}"));
            let why = format!(
                "service {} ({}) stopped before it was ready ({code})",
                service.name, service.image
            );
            return with_last_lines(shared, run_container, service, why).await;
        }
    }
}

/// `why` and the service's last lines, each cut to 300 characters.
async fn with_last_lines(
    shared: &Shared,
    run_container: &str,
    service: &Service,
    why: String,
) -> String {
    let name = container_name(run_container, &service.name);
    let mut read = shared.engine.last_lines(&name, LAST_LINES).await;
    // A loaded engine may not have stored what a stopped container printed
    // last yet.
    for _ in 0..3 {
        if !matches!(&read, Ok(text) if text.trim().is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        read = shared.engine.last_lines(&name, LAST_LINES).await;
    }
    match read {
        Ok(text) if !text.trim().is_empty() => {
            let lines: Vec<String> = text
                .lines()
                .map(|l| l.trim_end().chars().take(300).collect())
                .collect();
            format!("{why}; its last lines:\n{}", lines.join("\n"))
        }
        Ok(_) => format!("{why}; it printed nothing"),
        Err(err) => format!("{why} (its output could not be read: {err:#})"),
    }
}

/// Removes the run's services (running or not), at once: they hold memory.
pub async fn remove(shared: &Shared, run_id: i64) {
    for name in shared.services.take(run_id) {
        if let Err(err) = shared.engine.remove(&name).await {
            tracing::warn!(
                container = name,
                error = format!("{err:#}"),
                "removing a service container; the reconciler will retry"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_named_after_the_run_and_reached_on_the_loopback() {
        assert_eq!(container_name("te-i-run-7", "db"), "te-i-run-7-svc-db");
        let db = Service {
            name: "db".into(),
            image: "postgres".into(),
            env: Default::default(),
            ready_port: Some(5432),
        };
        assert_eq!(hosts(&[db]), ["db:127.0.0.1"]);
    }
}
