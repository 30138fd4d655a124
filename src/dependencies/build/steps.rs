//! The steps of one build (see the parent module), each a container, and
//! what a failed one says.

use std::{collections::HashMap, time::Duration};

use tokio::time::Instant;

mod system;

use super::{failure_line, infra, Owner};
use super::{LABEL_DATABASE, LABEL_INSTALLATION, LABEL_KEY, LABEL_PROJECT};
use crate::{
    config::DependencyBuildConfig,
    dependencies::{
        context::{self, DOWNLOADS_RO, FETCH_DIR, KEPT_RO, KEPT_RW},
        egress::{self, Egress},
        requirements::Requirements,
        step::{self, BoundedLog, Ended, Live},
        ProjectSource,
    },
    engine::{BuilderSpec, Engine},
};

/// Builder containers are named `te-depbuild-<database>-<key>-<step>`.
pub const BUILDER_PREFIX: &str = "te-depbuild-";
const BUILDER_MEMORY: i64 = 2 * 1024 * 1024 * 1024;
const BUILDER_PIDS: i64 = 1024;
/// The download steps' `/tmp` (pip unpacks source archives there).
const FETCH_TMP_MIB: u64 = 1024;
/// Lines of a failed attempt with the kept wheels shown in the log.
const ATTEMPT_TAIL: usize = 3;

/// The state of one build across its steps.
pub(super) struct Build<'a> {
    engine: &'a Engine,
    settings: &'a DependencyBuildConfig,
    /// The runner image, or the image of it with the project's Debian
    /// packages (`system.rs`).
    pub(super) base: String,
    project: &'a ProjectSource,
    /// `te-depbuild-<database>-<key16>`: each step's container and volume
    /// adds its own suffix.
    name: String,
    pub(super) labels: HashMap<String, String>,
    pub(super) deadline: Instant,
    log: BoundedLog,
    /// The output as it comes, for the runs waiting (`step::Live`).
    live: Live,
    egress: Option<Egress>,
    /// Whether the kept wheels' volume exists (it is not made read-only
    /// first: its first mount gives it its owner).
    kept: bool,
    /// Whether this build's own downloads volume was filled.
    downloads: bool,
    project_args: Vec<String>,
    /// The project's declared `[env]`, for the steps that run its code.
    pub(super) env: Vec<String>,
}

impl<'a> Build<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        settings: &'a DependencyBuildConfig,
        base: &'a str,
        project: &'a ProjectSource,
        owner: &Owner<'_>,
        live: Live,
    ) -> Build<'a> {
        // Named by installation (database) and key: two installations sharing an
        // engine never take each other's builder for a stale one.
        let database: String = owner
            .database
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .take(40)
            .collect();
        let labels = HashMap::from([
            (LABEL_KEY.to_owned(), owner.key.to_owned()),
            (LABEL_PROJECT.to_owned(), project.name.clone()),
            (LABEL_DATABASE.to_owned(), database.clone()),
            (LABEL_INSTALLATION.to_owned(), owner.installation.to_owned()),
        ]);
        Build {
            engine,
            settings,
            base: base.to_owned(),
            project,
            name: format!("{BUILDER_PREFIX}{database}-{}", &owner.key[..16]),
            labels,
            deadline: Instant::now() + Duration::from_secs(settings.deps_build_timeout_secs),
            log: BoundedLog::default(),
            live,
            egress: None,
            kept: false,
            downloads: false,
            project_args: project.project_args().unwrap_or_default(),
            env: Vec::new(),
        }
    }

    /// Runs the steps; returns the container of the successful install.
    pub(super) async fn steps(&mut self, reqs: &mut Requirements) -> Result<String, String> {
        // Left by a process that died building this key: start afresh.
        for volume in ["dl", "fetch", "fetch-src", system::LISTS, system::CACHE] {
            let volume = format!("{}-{volume}", self.name);
            self.engine
                .remove_volume(&volume)
                .await
                .map_err(|e| infra(e, "removing a stale build volume").reason)?;
        }
        self.kept = self
            .engine
            .volume_exists(&self.settings.deps_pip_cache_volume)
            .await
            .map_err(|e| infra(e, "looking for the kept wheels").reason)?;
        if self.kept {
            self.log.line("==> installing with the kept wheels alone");
            let mut attempt = BoundedLog::default();
            if let Some(id) = self.install(reqs, &mut attempt).await? {
                self.log.push(attempt.text().as_bytes());
                return Ok(id);
            }
            let text = attempt.text();
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(ATTEMPT_TAIL)..] {
                self.log.line(line);
            }
            self.log.line("==> not all kept: downloading");
        }
        self.fetch(reqs).await?;
        if !self.project_args.is_empty() {
            let requires = self.metadata(reqs).await?;
            if !requires.is_empty() {
                reqs.add("the project's metadata (Requires-Dist)", &requires)
                    .map_err(|r| r.to_string())?;
                self.fetch(reqs).await?;
            }
        }
        let mut log = std::mem::take(&mut self.log);
        let installed = self.install(reqs, &mut log).await;
        self.log = log;
        match installed? {
            Some(id) => Ok(id),
            None => Err(self.failure("the dependency install failed")),
        }
    }

    /// The install step: `Some(container)` when it succeeded (to commit),
    /// `None` when pip failed (the container is removed).
    async fn install(
        &mut self,
        reqs: &Requirements,
        log: &mut BoundedLog,
    ) -> Result<Option<String>, String> {
        let (id, ended) = self.project_step("install", reqs, log).await?;
        match ended {
            Ended::Exited(0) => Ok(Some(id)),
            Ended::Exited(_) => {
                self.remove(&id).await;
                Ok(None)
            }
            other => {
                self.remove(&id).await;
                Err(self.ended_badly(other))
            }
        }
    }

    /// The metadata step: the project's own requirements, as it printed them.
    async fn metadata(&mut self, reqs: &Requirements) -> Result<Vec<String>, String> {
        let mut log = BoundedLog::default();
        let (id, ended) = self.project_step("metadata", reqs, &mut log).await?;
        self.remove(&id).await;
        let text = log.text();
        self.log.push(text.as_bytes());
        match ended {
            Ended::Exited(0) => Ok(text
                .lines()
                .filter_map(|l| l.strip_prefix("te-requires: "))
                .map(str::to_owned)
                .collect()),
            Ended::Exited(_) => Err(self.failure("reading the project's metadata failed")),
            other => Err(self.ended_badly(other)),
        }
    }

    /// A step that runs the project's code: no network, no pip settings,
    /// the wheels read-only, a writable root (the install is committed).
    async fn project_step(
        &mut self,
        which: &str,
        reqs: &Requirements,
        log: &mut BoundedLog,
    ) -> Result<(String, Ended), String> {
        let files = context::build_context(self.project, reqs, &self.project_args)
            .map_err(|e| format!("could not prepare the dependency build: {e:#}"))?;
        let name = format!("{}-{which}", self.name);
        let downloads = format!("{}-dl", self.name);
        let mut volumes = Vec::new();
        if self.kept {
            volumes.push((self.settings.deps_pip_cache_volume.as_str(), KEPT_RO, true));
        }
        if self.downloads {
            volumes.push((downloads.as_str(), DOWNLOADS_RO, true));
        }
        let cmd = vec![
            "sh".to_owned(),
            format!("{}/build.sh", context::BUILD_DIR),
            which.to_owned(),
        ];
        let mut spec = self.spec(&name, cmd, "none", volumes, None);
        spec.env = self.env.clone();
        step::run(
            self.engine,
            spec,
            Some(("/", files)),
            self.deadline,
            log,
            &self.live,
        )
        .await
        .map_err(|e| infra(e, "starting a build step").reason)
    }

    /// The download step: wheels into the kept wheels; failing that, source
    /// archives too, into this build's own volume.
    async fn fetch(&mut self, reqs: &Requirements) -> Result<(), String> {
        if reqs.install.is_empty() {
            return Ok(());
        }
        if self.egress.is_none() {
            let targets = egress::targets(self.settings);
            let names = (format!("{}-proxy", self.name), format!("{}-net", self.name));
            let started = Egress::start(
                self.engine,
                &self.base,
                (&names.0, &names.1),
                &targets,
                &self.labels,
            )
            .await
            .map_err(|e| infra(e, "starting the download proxy").reason)?;
            self.egress = Some(started);
        }
        let prepare = |credentials| {
            context::fetch_context(reqs, self.settings, credentials)
                .map_err(|e| format!("could not prepare the download: {e:#}"))
        };
        let files = prepare(true)?;
        let kept = self.settings.deps_pip_cache_volume.clone();
        let net = self
            .egress
            .as_ref()
            .map(|e| e.volume.clone())
            .unwrap_or_default();
        let own = format!("{}-fetch", self.name);
        let volumes = vec![
            (kept.as_str(), KEPT_RW, false),
            (own.as_str(), FETCH_DIR, false),
            (net.as_str(), egress::NET_DIR, true),
        ];
        let upload = Some((FETCH_DIR, files));
        let fetched = self.fetch_step("wheels", volumes, upload).await?;
        self.kept = true;
        if fetched {
            return Ok(());
        }
        self.log
            .line("==> some requirement has no wheel: downloading source archives");
        // Third-party code may run here: it writes only this build's
        // downloads and its own files (no index credentials among them),
        // and reads the kept wheels.
        let downloads = format!("{}-dl", self.name);
        let own_sources = format!("{}-fetch-src", self.name);
        let volumes = vec![
            (downloads.as_str(), KEPT_RW, false),
            (kept.as_str(), KEPT_RO, true),
            (own_sources.as_str(), FETCH_DIR, false),
            (net.as_str(), egress::NET_DIR, true),
        ];
        let upload = Some((FETCH_DIR, prepare(false)?));
        let fetched = self.fetch_step("sources", volumes, upload).await?;
        self.downloads = true;
        if fetched {
            Ok(())
        } else {
            Err(self.failure("the download of the dependencies failed"))
        }
    }

    /// One download container; whether pip succeeded.
    async fn fetch_step(
        &mut self,
        which: &str,
        volumes: Vec<(&str, &str, bool)>,
        files: Option<(&str, Vec<u8>)>,
    ) -> Result<bool, String> {
        let name = format!("{}-fetch-{which}", self.name);
        let cmd = vec![
            "sh".to_owned(),
            format!("{FETCH_DIR}/fetch.sh"),
            which.to_owned(),
        ];
        let spec = self.spec(&name, cmd, "none", volumes, Some(FETCH_TMP_MIB));
        let (id, ended) = step::run(
            self.engine,
            spec,
            files,
            self.deadline,
            &mut self.log,
            &self.live,
        )
        .await
        .map_err(|e| infra(e, "starting a download step").reason)?;
        self.remove(&id).await;
        match ended {
            Ended::Exited(code) => Ok(code == 0),
            other => Err(self.ended_badly(other)),
        }
    }

    fn spec<'s>(
        &self,
        name: &'s str,
        cmd: Vec<String>,
        network: &'s str,
        volumes: Vec<(&'s str, &'s str, bool)>,
        read_only_with_tmp_mib: Option<u64>,
    ) -> BuilderSpec<'s>
    where
        'a: 's,
    {
        BuilderSpec {
            name,
            image: self.base.clone(),
            user: "1000:1000",
            caps: &[],
            cmd,
            env: Vec::new(),
            network,
            volumes,
            read_only_with_tmp_mib,
            labels: self.labels.clone(),
            memory_bytes: BUILDER_MEMORY,
            nano_cpus: (self.settings.deps_build_cpus * 1e9) as i64,
            pids_limit: BUILDER_PIDS,
        }
    }

    /// pip's own line when it said why, else `fallback` with the last line.
    fn failure(&self, fallback: &str) -> String {
        let log = self.log.text();
        failure_line(&log).unwrap_or_else(|| {
            let last = log
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            format!("{fallback}: {}", last.trim())
                .chars()
                .take(500)
                .collect()
        })
    }

    fn ended_badly(&self, ended: Ended) -> String {
        match ended {
            Ended::TimedOut => format!(
                "the dependency build took longer than {} s (DEPS_BUILD_TIMEOUT_SECS)",
                self.settings.deps_build_timeout_secs
            ),
            Ended::Lost(why) => format!("the dependency build was lost: {why}"),
            Ended::Exited(code) => format!("the dependency build failed (exit {code})"),
        }
    }

    async fn remove(&self, id: &str) {
        if let Err(err) = self.engine.remove(id).await {
            tracing::warn!("{err:#}");
        }
    }

    /// Stops the proxy (its refusals go into the log), removes the build's
    /// containers and volumes; returns the log.
    pub(super) async fn finish(mut self) -> String {
        if let Some(egress) = self.egress.take() {
            for line in egress.refusals(self.engine).await {
                self.log.line(&line);
            }
            egress.stop(self.engine).await;
        }
        for step in [
            "install",
            "metadata",
            "fetch-wheels",
            "fetch-sources",
            system::DOWNLOAD,
            system::INSTALL,
        ] {
            self.remove(&format!("{}-{step}", self.name)).await;
        }
        for volume in ["dl", "fetch", "fetch-src", system::LISTS, system::CACHE] {
            let volume = format!("{}-{volume}", self.name);
            if let Err(err) = self.engine.remove_volume(&volume).await {
                tracing::warn!("{err:#}");
            }
        }
        self.log.text()
    }
}
