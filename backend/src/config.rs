//! Console settings, layered: defaults, then the config file, then environment and flags.
//!
//! Flags and their environment variables are declared once, with clap (`ServeArgs`), so every
//! option works either way. The config file is YAML:
//!
//! ```yaml
//! listen: 127.0.0.1:8080
//! poll_interval: 1s
//! call_timeout: 3s
//! clusters:
//!   - name: prod
//!     talosconfig: /etc/talos-dr/prod.talosconfig
//!     context: prod            # optional: the file's current context otherwise
//!     nodes: [10.0.0.10, 10.0.0.11, 10.0.0.12]   # optional: the context's nodes, else endpoints
//!     talosconfigs:            # optional: one talosconfig per Talos role; `talosconfig` otherwise
//!       reader: {talosconfig: /etc/talos-dr/prod-reader.talosconfig}
//!       etcd_backup: {talosconfig: /etc/talos-dr/prod-backup.talosconfig, context: prod}
//!       admin: {talosconfig: /etc/talos-dr/prod-admin.talosconfig}
//! data_dir: /var/lib/talos-dr  # the database (users, sessions, audit trail)
//! recovery:                    # optional: staged recoveries (defaults shown)
//!   approvals_required: 1      # approvals a destructive step needs, from others than the requester
//!   approval_ttl: 15m          # how long an approval stands
//!   break_glass: true          # an admin may approve their own request, loudly
//!   wait_deadline: 10m         # how long a wait (Preparing, healthy, a reboot) may take
//! secure_cookies: true         # when users reach the console over HTTPS
//! metrics_token_file: /etc/talos-dr/metrics-token
//! oidc:                        # optional: sign-in through an OpenID Connect provider
//!   issuer: https://login.example.com/realms/sre   # see auth::oidc::settings for every key
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::auth::oidc::{OidcConfigError, OidcFileSection, OidcSettings};
use crate::storage::DEFAULT_DATA_DIR;
use crate::talos::credentials::TalosRole;

mod args;
mod recovery;

pub use args::ServeArgs;
pub use recovery::RecoveryConfig;
use recovery::RecoveryFile;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Viewers must see a change within 2 s; a change takes one interval plus the reply time of the
/// node that reports it (a refused call, as from a dead etcd, answers at once).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The settings the console runs with, after every layer is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// Time between the start of two health polls of a cluster.
    pub poll_interval: Duration,
    /// Upper bound for one Talos call; a node that does not answer in time counts as unreachable.
    pub call_timeout: Duration,
    pub clusters: Vec<ClusterConfig>,
    /// Where the SQLite database and the files that are not rows live (created readable by its
    /// owner only).
    pub data_dir: PathBuf,
    /// A PostgreSQL database instead of SQLite, so several console replicas serve one team.
    pub database_url: Option<Secret>,
    /// Mark the session cookie Secure: set it when users reach the console over HTTPS.
    pub secure_cookies: bool,
    /// Bearer token for `/metrics`; without one, only loopback clients may scrape.
    pub metrics_token: Option<Secret>,
}

impl Config {
    /// The defaults for everything but the clusters.
    pub fn with_clusters(clusters: Vec<ClusterConfig>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            poll_interval: DEFAULT_POLL_INTERVAL,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            clusters,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            secure_cookies: false,
            metrics_token: None,
        }
    }
}

/// A secret setting: kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A talosconfig (and optionally one of its contexts) for one Talos role of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleTalosconfig {
    pub talosconfig: PathBuf,
    #[serde(default)]
    pub context: Option<String>,
}

/// `--cluster-credential NAME:ROLE=TALOSCONFIG[#CONTEXT]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFlag {
    pub cluster: String,
    pub role: TalosRole,
    pub talosconfig: RoleTalosconfig,
}

impl FromStr for CredentialFlag {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConfigError::CredentialFlag(s.to_string());
        let (target, rest) = s.split_once('=').ok_or_else(bad)?;
        let (cluster, role) = target.split_once(':').ok_or_else(bad)?;
        let role = TalosRole::parse(role).ok_or_else(bad)?;
        let (path, context) = match rest.rsplit_once('#') {
            Some((path, context)) => (path, Some(context)),
            None => (rest, None),
        };
        if cluster.is_empty() || path.is_empty() || context.is_some_and(str::is_empty) {
            return Err(bad());
        }
        Ok(Self {
            cluster: cluster.to_string(),
            role,
            talosconfig: RoleTalosconfig {
                talosconfig: PathBuf::from(path),
                context: context.map(str::to_string),
            },
        })
    }
}

/// One cluster to watch: which talosconfig and context reach it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    pub talosconfig: PathBuf,
    /// The talosconfig context; its current context when absent.
    #[serde(default)]
    pub context: Option<String>,
    /// The control-plane nodes to poll; the context's `nodes`, else its `endpoints`, when absent.
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
    /// Talosconfigs for single Talos roles; `talosconfig` serves every role not listed.
    #[serde(default)]
    pub talosconfigs: BTreeMap<TalosRole, RoleTalosconfig>,
}

impl FromStr for ClusterConfig {
    type Err = ConfigError;

    /// Parses the `--cluster NAME=TALOSCONFIG[#CONTEXT]` form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConfigError::ClusterFlag(s.to_string());
        let (name, rest) = s.split_once('=').ok_or_else(bad)?;
        let (path, context) = match rest.rsplit_once('#') {
            Some((path, context)) => (path, Some(context)),
            None => (rest, None),
        };
        if name.is_empty() || path.is_empty() || context.is_some_and(str::is_empty) {
            return Err(bad());
        }
        Ok(Self {
            name: name.to_string(),
            talosconfig: PathBuf::from(path),
            context: context.map(str::to_string),
            nodes: None,
            talosconfigs: BTreeMap::new(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: field \"{field}\": {message}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("--cluster {0:?}: expected NAME=TALOSCONFIG or NAME=TALOSCONFIG#CONTEXT")]
    ClusterFlag(String),
    #[error(
        "--cluster-credential {0:?}: expected NAME:ROLE=TALOSCONFIG[#CONTEXT] with ROLE reader, etcd_backup or admin"
    )]
    CredentialFlag(String),
    #[error("--cluster-credential for cluster {0:?}: no such cluster is configured")]
    CredentialForUnknownCluster(String),
    #[error("OIDC settings (--oidc-* flags): {0}")]
    Oidc(#[from] OidcConfigError),
    #[error("--database-url (DATABASE_URL): {0}")]
    DatabaseUrl(String),
    #[error("cluster {0:?} is configured twice")]
    DuplicateCluster(String),
    #[error("recovery.approvals_required (--approvals-required) must be at least 1")]
    NoApprovals,
    #[error("cluster {0:?}: its node list is empty")]
    EmptyNodeList(String),
    #[error(
        "no cluster to watch: pass --cluster NAME=TALOSCONFIG[#CONTEXT] or list clusters in the config file"
    )]
    NoClusters,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<String>,
    poll_interval: Option<String>,
    call_timeout: Option<String>,
    #[serde(default)]
    clusters: Vec<ClusterConfig>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    secure_cookies: Option<bool>,
    metrics_token_file: Option<PathBuf>,
    oidc: Option<OidcFileSection>,
    #[serde(default)]
    recovery: Option<RecoveryFile>,
}

/// Sign-in through an OpenID Connect provider: the config file's `oidc` section, then the
/// `--oidc-*` flags; `None` when no issuer is set (local passwords only).
pub fn load_oidc(args: &ServeArgs) -> Result<Option<OidcSettings>, ConfigError> {
    let section = match &args.config {
        Some(path) => read_file(path)?.oidc.map(|section| (path.clone(), section)),
        None => None,
    };
    let (path, section) = match section {
        Some((path, section)) => (Some(path), Some(section)),
        None => (None, None),
    };
    crate::auth::oidc::settings::resolve(section, &args.oidc).map_err(|e| match path {
        Some(path) => ConfigError::Parse {
            path,
            message: e.to_string(),
        },
        None => ConfigError::Oidc(e),
    })
}

impl Config {
    /// Applies the layers: defaults, the config file (if any), then flags/environment.
    pub fn load(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => Some((path.as_path(), read_file(path)?)),
            None => None,
        };
        Self::from_layers(file, args)
    }

    fn from_layers(
        file: Option<(&Path, ConfigFile)>,
        args: &ServeArgs,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::with_clusters(Vec::new());
        if let Some((path, file)) = file {
            let field_error = |field: &str, message: String| ConfigError::Field {
                path: path.to_path_buf(),
                field: field.to_string(),
                message,
            };
            if let Some(listen) = &file.listen {
                config.listen = listen.parse().map_err(|_| {
                    field_error(
                        "listen",
                        format!("{listen:?} is not an address like {DEFAULT_LISTEN}"),
                    )
                })?;
            }
            if let Some(v) = &file.poll_interval {
                config.poll_interval =
                    parse_duration(v).map_err(|m| field_error("poll_interval", m))?;
            }
            if let Some(v) = &file.call_timeout {
                config.call_timeout =
                    parse_duration(v).map_err(|m| field_error("call_timeout", m))?;
            }
            config.clusters = file.clusters;
            if let Some(dir) = file.data_dir {
                config.data_dir = dir;
            }
            if let Some(url) = file.database_url {
                check_database_url(&url).map_err(|m| field_error("database_url", m))?;
                config.database_url = Some(Secret::new(url));
            }
            if let Some(secure) = file.secure_cookies {
                config.secure_cookies = secure;
            }
            if let Some(token_file) = &file.metrics_token_file {
                let token = std::fs::read_to_string(token_file).map_err(|e| {
                    field_error(
                        "metrics_token_file",
                        format!("cannot read {}: {e}", token_file.display()),
                    )
                })?;
                config.metrics_token = Some(Secret::new(token.trim()));
            }
        }
        if let Some(listen) = args.listen {
            config.listen = listen;
        }
        if let Some(v) = args.poll_interval {
            config.poll_interval = v;
        }
        if let Some(v) = args.call_timeout {
            config.call_timeout = v;
        }
        config.clusters.extend(args.clusters.iter().cloned());
        if let Some(dir) = &args.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &args.database_url {
            check_database_url(url).map_err(ConfigError::DatabaseUrl)?;
            config.database_url = Some(Secret::new(url.clone()));
        }
        config.secure_cookies |= args.secure_cookies;
        if let Some(token) = &args.metrics_token {
            config.metrics_token = Some(Secret::new(token.clone()));
        }
        for flag in &args.credentials {
            let cluster = config
                .clusters
                .iter_mut()
                .find(|c| c.name == flag.cluster)
                .ok_or_else(|| ConfigError::CredentialForUnknownCluster(flag.cluster.clone()))?;
            cluster
                .talosconfigs
                .insert(flag.role, flag.talosconfig.clone());
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.clusters.is_empty() {
            return Err(ConfigError::NoClusters);
        }
        for (i, c) in self.clusters.iter().enumerate() {
            if self.clusters[..i].iter().any(|other| other.name == c.name) {
                return Err(ConfigError::DuplicateCluster(c.name.clone()));
            }
            if c.nodes.as_ref().is_some_and(Vec::is_empty) {
                return Err(ConfigError::EmptyNodeList(c.name.clone()));
            }
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Parses durations written like `2s`, `500ms`, `1m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a duration like 2s, 500ms or 1m");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

/// Only PostgreSQL URLs: SQLite is the default and lives in the data directory. The message never
/// repeats the URL, which may hold a password.
fn check_database_url(url: &str) -> Result<(), String> {
    match url.split_once("://") {
        Some(("postgres" | "postgresql", rest)) if !rest.is_empty() => Ok(()),
        Some((scheme, _)) => Err(format!(
            "scheme {scheme:?} is not supported: give a postgres:// URL, or leave it out for SQLite in the data directory"
        )),
        None => Err("not a URL: expected postgres://user:password@host:port/database".into()),
    }
}
