//! What a project declares its tests need beyond Python packages, in
//! `test-executor.toml` at its root or as `[tool.test-executor]` in its
//! `pyproject.toml` (the same table): `[env]` variables, `[[services]]`
//! (name, image, env, ready) and `[build] system_packages`. The file is the
//! project's, so hostile: every key is checked, an unknown one is refused
//! by name, and the whole is bounded.

use std::collections::BTreeMap;

use serde::Serialize;

/// The file at a project's root (it marks a project, `catalog`).
pub const FILE: &str = crate::catalog::DECLARATION;
/// Variables the runner and the sandbox set, which a project may not.
const RESERVED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONDONTWRITEBYTECODE",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
];
/// Prefixes of the runner's own variables.
const RESERVED_PREFIXES: &[&str] = &["TE_", "PIP_", "PYTHON", "PYTEST_", "LD_"];
const MAX_VARIABLES: usize = 100;
const MAX_VALUE: usize = 4096;
const MAX_SERVICES: usize = 4;
const MAX_PACKAGES: usize = 50;

/// A project's declaration; empty when it declares nothing.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Declaration {
    pub env: BTreeMap<String, String>,
    pub services: Vec<Service>,
    pub system_packages: Vec<String>,
}

/// A service container beside the run's (a database, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// The host name the tests reach it by.
    pub name: String,
    /// A short name the operators map to an engine image.
    pub image: String,
    pub env: BTreeMap<String, String>,
    /// The port that must accept a connection before the tests start.
    pub ready_port: Option<u16>,
}

/// What is wrong, naming the key (`services[0].image`, `env.PATH`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {why}")]
pub struct Invalid {
    pub file: String,
    pub key: String,
    pub why: String,
}

/// Reads the declaration from the files' texts; `offered` are the service
/// images this server offers.
pub fn parse(
    own_file: Option<&str>,
    pyproject: Option<&str>,
    offered: &[String],
) -> Result<Declaration, Invalid> {
    match table(own_file, pyproject)? {
        Some((file, table)) => Reader { file: &file }.declaration(&table, offered),
        None => Ok(Declaration::default()),
    }
}

/// The Debian packages alone (`None` when the declaration is invalid).
pub fn system_packages(own_file: Option<&str>, pyproject: Option<&str>) -> Option<Vec<String>> {
    let (file, table) = table(own_file, pyproject).ok()??;
    match table.get("build") {
        Some(build) => Reader { file: &file }.build(build).ok(),
        None => Some(Vec::new()),
    }
}

/// The declaration's table and the file it is in, if there is one.
fn table(
    own_file: Option<&str>,
    pyproject: Option<&str>,
) -> Result<Option<(String, toml::Table)>, Invalid> {
    match (own_file, pyproject) {
        (Some(text), _) => Ok(Some((FILE.to_owned(), parse_toml(FILE, text)?))),
        (None, Some(text)) => {
            let file = "pyproject.toml [tool.test-executor]";
            let whole = parse_toml("pyproject.toml", text)?;
            match whole.get("tool").and_then(|t| t.get("test-executor")) {
                Some(toml::Value::Table(table)) => Ok(Some((file.to_owned(), table.clone()))),
                Some(_) => Err(invalid(file, "tool.test-executor", "must be a table")),
                None => Ok(None),
            }
        }
        (None, None) => Ok(None),
    }
}

fn parse_toml(file: &str, text: &str) -> Result<toml::Table, Invalid> {
    toml::from_str(text).map_err(|e| invalid(file, "(file)", &format!("not valid TOML: {e}")))
}

fn invalid(file: &str, key: &str, why: &str) -> Invalid {
    Invalid {
        file: file.to_owned(),
        key: key.to_owned(),
        why: why.to_owned(),
    }
}

struct Reader<'a> {
    file: &'a str,
}

impl Reader<'_> {
    fn err(&self, key: &str, why: &str) -> Invalid {
        invalid(self.file, key, why)
    }

    fn declaration(&self, table: &toml::Table, offered: &[String]) -> Result<Declaration, Invalid> {
        let mut out = Declaration::default();
        for (key, value) in table {
            match key.as_str() {
                "env" => out.env = self.env("env", value)?,
                "services" => out.services = self.services(value, offered)?,
                "build" => out.system_packages = self.build(value)?,
                _ => {
                    return Err(self.err(key, "unknown key (known: env, services, build)"));
                }
            }
        }
        Ok(out)
    }

    fn env(&self, at: &str, value: &toml::Value) -> Result<BTreeMap<String, String>, Invalid> {
        let table = value
            .as_table()
            .ok_or_else(|| self.err(at, "must be a table of NAME = \"value\""))?;
        if table.len() > MAX_VARIABLES {
            return Err(self.err(at, &format!("more than {MAX_VARIABLES} variables")));
        }
        let mut env = BTreeMap::new();
        for (name, value) in table {
            let key = format!("{at}.{name}");
            let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && name.len() <= 128;
            if !valid_name {
                return Err(self.err(&key, "a variable's name is letters, digits and _"));
            }
            if RESERVED.contains(&name.as_str())
                || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
            {
                return Err(self.err(
                    &key,
                    "reserved: the runner sets it (reserved: PATH, HOME, USER, VIRTUAL_ENV, \
                     PYTHON*, PYTEST_*, LD_*, TE_*, PIP_*)",
                ));
            }
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return Err(self.err(&key, "must be a string, a number or a boolean")),
            };
            if text.len() > MAX_VALUE || text.contains('\0') {
                return Err(self.err(&key, &format!("at most {MAX_VALUE} bytes, no NUL")));
            }
            env.insert(name.clone(), text);
        }
        Ok(env)
    }

    fn services(&self, value: &toml::Value, offered: &[String]) -> Result<Vec<Service>, Invalid> {
        let list = value
            .as_array()
            .ok_or_else(|| self.err("services", "must be an array of tables ([[services]])"))?;
        if list.len() > MAX_SERVICES {
            return Err(self.err("services", &format!("more than {MAX_SERVICES} services")));
        }
        let mut services: Vec<Service> = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let at = format!("services[{i}]");
            let table = item
                .as_table()
                .ok_or_else(|| self.err(&at, "must be a table"))?;
            let service = self.service(&at, table, offered)?;
            if services.iter().any(|s| s.name == service.name) {
                return Err(self.err(&format!("{at}.name"), "two services have this name"));
            }
            services.push(service);
        }
        Ok(services)
    }

    fn service(
        &self,
        at: &str,
        table: &toml::Table,
        offered: &[String],
    ) -> Result<Service, Invalid> {
        let text = |key: &str| -> Result<String, Invalid> {
            table
                .get(key)
                .and_then(toml::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| self.err(&format!("{at}.{key}"), "required, a string"))
        };
        if let Some(key) = table
            .keys()
            .find(|k| !["name", "image", "env", "ready"].contains(&k.as_str()))
        {
            return Err(self.err(
                &format!("{at}.{key}"),
                "unknown key (known: name, image, env, ready)",
            ));
        }
        let name = text("name")?;
        let host_like = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !host_like || name == "localhost" {
            return Err(self.err(
                &format!("{at}.name"),
                "a host name: lowercase letters, digits and -, starting with a letter",
            ));
        }
        let image = text("image")?;
        if !offered.contains(&image) {
            let offers = if offered.is_empty() {
                "none yet (services are not supported by this version)".to_owned()
            } else {
                offered.join(", ")
            };
            return Err(self.err(
                &format!("{at}.image"),
                &format!(
                    "\"{image}\" is not a service image this server offers: it offers {offers}"
                ),
            ));
        }
        let env = match table.get("env") {
            Some(value) => self.env(&format!("{at}.env"), value)?,
            None => BTreeMap::new(),
        };
        let ready_port = match table.get("ready") {
            None => None,
            Some(_) => {
                let ready = text("ready")?;
                let port = ready
                    .strip_prefix("tcp:")
                    .and_then(|p| p.parse::<u16>().ok())
                    .filter(|p| *p > 0);
                Some(port.ok_or_else(|| self.err(&format!("{at}.ready"), "\"tcp:PORT\""))?)
            }
        };
        Ok(Service {
            name,
            image,
            env,
            ready_port,
        })
    }

    fn build(&self, value: &toml::Value) -> Result<Vec<String>, Invalid> {
        let table = value
            .as_table()
            .ok_or_else(|| self.err("build", "must be a table"))?;
        let mut packages = Vec::new();
        for (key, value) in table {
            if key != "system_packages" {
                return Err(self.err(
                    &format!("build.{key}"),
                    "unknown key (known: system_packages)",
                ));
            }
            let list = value
                .as_array()
                .ok_or_else(|| self.err("build.system_packages", "must be a list of names"))?;
            if list.len() > MAX_PACKAGES {
                return Err(self.err(
                    "build.system_packages",
                    &format!("more than {MAX_PACKAGES} packages"),
                ));
            }
            for (i, item) in list.iter().enumerate() {
                let key = format!("build.system_packages[{i}]");
                let name = item.as_str().unwrap_or_default();
                let debian = name.len() >= 2
                    && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
                if !debian {
                    return Err(self.err(&key, "a Debian package name"));
                }
                packages.push(name.to_owned());
            }
        }
        Ok(packages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered() -> Vec<String> {
        vec!["postgres".into(), "redis".into()]
    }

    #[test]
    fn the_issues_example_is_read() {
        let text = r#"
[env]
DB_DATABASE_HOST = "db"
DJANGO_SETTINGS_MODULE = "app.settings"

[[services]]
name = "db"
image = "postgres"
env = { POSTGRES_PASSWORD = "secret", POSTGRES_DB = "app" }
ready = "tcp:5432"

[build]
system_packages = ["libpq-dev", "gcc"]
"#;
        let d = parse(Some(text), None, &offered()).unwrap();
        assert_eq!(d.env["DB_DATABASE_HOST"], "db");
        assert_eq!(d.services[0].name, "db");
        assert_eq!(d.services[0].env["POSTGRES_DB"], "app");
        assert_eq!(d.services[0].ready_port, Some(5432));
        assert_eq!(d.system_packages, ["libpq-dev", "gcc"]);
    }

    #[test]
    fn the_pyproject_table_is_read_and_its_absence_declares_nothing() {
        let text = "[tool.test-executor.env]\nAPP_MODE = \"test\"\n";
        let d = parse(None, Some(text), &offered()).unwrap();
        assert_eq!(d.env["APP_MODE"], "test");
        let none = parse(None, Some("[project]\nname = 'x'\n"), &offered()).unwrap();
        assert_eq!(none, Declaration::default());
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        for (text, key) in [
            ("[envs]\nA = '1'\n", "envs"),
            ("[env]\nPATH = '/evil'\n", "env.PATH"),
            ("[env]\nTE_RECORD = 'x'\n", "env.TE_RECORD"),
            ("[env]\nPYTHONUSERBASE = 'x'\n", "env.PYTHONUSERBASE"),
            ("[env]\nLD_AUDIT = 'x'\n", "env.LD_AUDIT"),
            ("[env]\n'A-B' = '1'\n", "env.A-B"),
            (
                "[[services]]\nname = 'db'\nimage = 'mysql'\n",
                "services[0].image",
            ),
            (
                "[[services]]\nname = 'Db'\nimage = 'postgres'\n",
                "services[0].name",
            ),
            (
                "[[services]]\nname = 'db'\nimage = 'postgres'\nready = 'http:80'\n",
                "services[0].ready",
            ),
            (
                "[[services]]\nname = 'db'\nimage = 'postgres'\nports = [1]\n",
                "services[0].ports",
            ),
            (
                "[build]\nsystem_packages = ['gcc; rm -rf /']\n",
                "build.system_packages[0]",
            ),
            ("not toml = = =", "(file)"),
        ] {
            let err = parse(Some(text), None, &offered()).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
        }
        let err = parse(
            Some("[[services]]\nname='db'\nimage='postgres'\n"),
            None,
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("offers none yet"), "{err}");
    }
}
