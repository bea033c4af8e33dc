//! The `talos-dr serve` flags, each also readable from its environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{ClusterConfig, CredentialFlag, parse_duration};
use crate::auth::oidc::OidcArgs;

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

/// `talos-dr serve` options. Each flag can also come from the environment variable named here.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// YAML config file (listen address, intervals, clusters).
    #[arg(long, env = "TALOS_DR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to serve the console on [default: 127.0.0.1:8080].
    #[arg(long, env = "TALOS_DR_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// A cluster to watch; repeat for several.
    #[arg(long = "cluster", value_name = "NAME=TALOSCONFIG[#CONTEXT]")]
    pub clusters: Vec<ClusterConfig>,
    /// Time between health polls, e.g. `2s` or `500ms` [default: 1s].
    #[arg(long, env = "TALOS_DR_POLL_INTERVAL", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub poll_interval: Option<Duration>,
    /// Timeout of one Talos call, e.g. `3s` [default: 3s].
    #[arg(long, env = "TALOS_DR_CALL_TIMEOUT", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub call_timeout: Option<Duration>,
    /// A talosconfig for one Talos role (reader, etcd_backup, admin) of a cluster; repeat for
    /// several. The poller reads with the reader one, else with the cluster's talosconfig.
    #[arg(
        long = "cluster-credential",
        value_name = "NAME:ROLE=TALOSCONFIG[#CONTEXT]"
    )]
    pub credentials: Vec<CredentialFlag>,
    /// Directory for the database (users, sessions, audit trail) [default: ./talos-dr-data].
    #[arg(long, env = "TALOS_DR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL database for users, sessions, audit trail, snapshot history and incidents,
    /// shared by every console replica (postgres://user:password@host/db) [default: SQLite in
    /// the data directory].
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Mark the session cookie Secure (needed when users reach the console over HTTPS).
    #[arg(long, env = "TALOS_DR_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Bearer token Prometheus must send to /metrics; without it only loopback clients scrape.
    #[arg(
        long,
        env = "TALOS_DR_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// Directory for stored etcd snapshots [default: <data-dir>/snapshots].
    #[arg(long, env = "TALOS_DR_SNAPSHOT_DIR", value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// Largest snapshot file accepted, in bytes (taken or uploaded) [default: 9 GiB].
    #[arg(long, env = "TALOS_DR_SNAPSHOT_SIZE_LIMIT", value_name = "BYTES")]
    pub snapshot_size_limit: Option<u64>,
    /// Free space that must stay on the snapshot store's disk; a snapshot that would eat into it
    /// is refused as "disk full", in bytes [default: 256 MiB].
    #[arg(long, env = "TALOS_DR_SNAPSHOT_MIN_FREE_SPACE", value_name = "BYTES")]
    pub snapshot_min_free_space: Option<u64>,
    /// File holding the 32-byte key (64 hex digits or base64) that machine config backups are
    /// encrypted with; without it, machine config backups are refused.
    #[arg(long, env = "TALOS_DR_CONFIG_BACKUP_KEY_FILE", value_name = "PATH")]
    pub config_backup_key_file: Option<PathBuf>,
    /// Approvals each destructive recovery step needs, from people other than the requester
    /// [default: 1].
    #[arg(long, env = "TALOS_DR_APPROVALS_REQUIRED", value_name = "N")]
    pub approvals_required: Option<u32>,
    /// How long an approval stands, e.g. `15m` [default: 15m].
    #[arg(long, env = "TALOS_DR_APPROVAL_TTL", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub approval_ttl: Option<Duration>,
    /// Whether an admin may approve their own request when nobody else can (true or false)
    /// [default: true].
    #[arg(long, env = "TALOS_DR_BREAK_GLASS", value_name = "BOOL")]
    pub break_glass: Option<bool>,
    /// How long a recovery wait (etcd Preparing, healthy, a node rebooting) may take [default: 10m].
    #[arg(long, env = "TALOS_DR_RECOVERY_WAIT_DEADLINE", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub recovery_wait_deadline: Option<Duration>,
    /// S3-compatible endpoint for snapshots (http:// or https://); the local directory otherwise.
    #[arg(long, env = "TALOS_DR_SNAPSHOT_S3_ENDPOINT", value_name = "URL")]
    pub snapshot_s3_endpoint: Option<String>,
    /// Bucket for snapshots (with --snapshot-s3-endpoint).
    #[arg(long, env = "TALOS_DR_SNAPSHOT_S3_BUCKET", value_name = "NAME")]
    pub snapshot_s3_bucket: Option<String>,
    /// Region of the bucket [default: us-east-1].
    #[arg(long, env = "TALOS_DR_SNAPSHOT_S3_REGION", value_name = "REGION")]
    pub snapshot_s3_region: Option<String>,
    /// Access key id for the bucket.
    #[arg(long, env = "TALOS_DR_SNAPSHOT_S3_ACCESS_KEY_ID", value_name = "ID")]
    pub snapshot_s3_access_key_id: Option<String>,
    /// File holding the secret access key for the bucket.
    #[arg(long, env = "TALOS_DR_SNAPSHOT_S3_SECRET_FILE", value_name = "PATH")]
    pub snapshot_s3_secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub oidc: OidcArgs,
}
