use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use talos_dr::audit::{ChainReport, NewAuditEntry};
use talos_dr::auth::SessionSettings;
use talos_dr::auth::users::add_user;
use talos_dr::config::{Config, RecoveryConfig, ServeArgs};
use talos_dr::machine_configs::ConfigBackupKey;
use talos_dr::snapshot_s3::{S3Flags, open_checked_s3};
use talos_dr::snapshots::SnapshotSettings;
use talos_dr::storage::DEFAULT_DATA_DIR;
use talos_dr::{AccessSettings, AppState, Storage};
use talos_dr_shared::Role;
use talos_dr_snapshot::cli::SnapshotCommand;
use tower_sessions::session_store::ExpiredDeletion;
use tracing_subscriber::EnvFilter;

/// Console for Talos clusters whose etcd is in trouble.
#[derive(Debug, Parser)]
#[command(name = "talos-dr", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start; the size of the serve flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web console.
    Serve(ServeArgs),
    /// Check and inspect etcd snapshot files, without a browser.
    Snapshot {
        #[command(subcommand)]
        cmd: SnapshotCommand,
    },
    /// Manage console users.
    User {
        #[command(subcommand)]
        cmd: UserCommand,
    },
    /// Check the audit trail.
    Audit {
        #[command(subcommand)]
        cmd: AuditCommand,
    },
}

#[derive(Debug, Args)]
struct DataDirArg {
    /// Directory holding the console's database.
    #[arg(long, env = "TALOS_DR_DATA_DIR", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The PostgreSQL database the consoles share, when they use one.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
}

impl DataDirArg {
    async fn open(&self) -> anyhow::Result<Storage> {
        Ok(Storage::connect(&self.data_dir, self.database_url.as_deref()).await?)
    }
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. Prints a generated password unless one is read from standard input.
    Add {
        /// The username.
        name: String,
        /// A role: viewer, operator, approver or admin; repeat for several.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// Read the password from standard input (first line) instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataDirArg,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain of the audit trail; names the first broken entry.
    Verify {
        #[command(flatten)]
        data: DataDirArg,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("{s:?} is not a role: use viewer, operator, approver or admin"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Command::Snapshot { cmd } => return talos_dr_snapshot::cli::run(cmd),
        other => other,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            runtime.block_on(async {
                match command {
                    Command::Serve(args) => serve(args).await,
                    Command::User { cmd } => user(cmd).await,
                    Command::Audit { cmd } => audit(cmd).await,
                    Command::Snapshot { .. } => Ok(ExitCode::SUCCESS),
                }
            })
        });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("talos-dr: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Read first: a bad key file is a typo to fix before anything else starts.
    let config_backup_key = args
        .config_backup_key_file
        .as_deref()
        .map(ConfigBackupKey::from_file)
        .transpose()?;
    let config = Config::load(&args)?;
    let recovery = recovery_settings(&args)?;
    // Before anything else starts: a provider that cannot be discovered stops the console.
    let oidc = match talos_dr::config::load_oidc(&args)? {
        Some(settings) => Some(talos_dr::auth::oidc::OidcProvider::discover(settings).await?),
        None => None,
    };
    let clusters = talos_dr::watch_clusters(&config)?;
    let storage = Storage::connect(
        &config.data_dir,
        config.database_url.as_ref().map(|url| url.expose()),
    )
    .await?;
    tracing::info!(database = storage.place(), "database open");
    create_first_admin(&storage).await?;
    tokio::spawn(
        storage
            .sessions
            .clone()
            .continuously_delete_expired(tokio::time::Duration::from_secs(300)),
    );
    let access = AccessSettings {
        sessions: SessionSettings {
            secure_cookies: config.secure_cookies,
            ..SessionSettings::default()
        },
        metrics_token: config.metrics_token.clone(),
    };
    let mut snapshots = SnapshotSettings::in_data_dir(&config.data_dir);
    if let Some(dir) = &args.snapshot_dir {
        snapshots.root = dir.clone();
    }
    if let Some(limit) = args.snapshot_size_limit {
        snapshots.size_limit = limit;
    }
    if let Some(free) = args.snapshot_min_free_space {
        snapshots.min_free_bytes = free;
    }
    let s3 = S3Flags {
        endpoint: args.snapshot_s3_endpoint.clone(),
        bucket: args.snapshot_s3_bucket.clone(),
        region: args.snapshot_s3_region.clone(),
        access_key_id: args.snapshot_s3_access_key_id.clone(),
        secret_file: args.snapshot_s3_secret_file.clone(),
    }
    .settings()?;
    let mut state = AppState::new(clusters, storage, access).with_recovery(recovery);
    if let Some(oidc) = oidc {
        state = state.with_oidc(oidc);
    }
    let mut state = match s3 {
        Some(s3) => {
            let staging = config.data_dir.join("snapshot-staging");
            let store = open_checked_s3(&s3, &staging).await?;
            tracing::info!(store = store.description(), "snapshots go to S3");
            state.with_snapshot_store(snapshots, store)
        }
        None => state.with_snapshots(snapshots),
    };
    match config_backup_key {
        Some(key) => state = state.with_config_backup_key(key),
        None => {
            tracing::info!("no --config-backup-key-file: machine config backups are turned off")
        }
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, data_dir = %config.data_dir.display(), "console listening");
    tokio::select! {
        served = talos_dr::run(listener, state) => served.context("the console stopped serving")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The recovery policy from the config layers, and the crash-test stops from the environment
/// (an unknown stop refuses the start, naming it).
fn recovery_settings(args: &ServeArgs) -> anyhow::Result<talos_dr::recovery::RecoverySettings> {
    let failpoints = talos_dr::recovery::FailPoints::from_env()?;
    if !failpoints.is_empty() {
        tracing::warn!(
            "recovery failpoints are armed: this console stops for good when one is reached"
        );
    }
    let config = RecoveryConfig::load(args)?;
    let ttl_ms = i64::try_from(config.approval_ttl.as_millis()).unwrap_or(i64::MAX);
    Ok(talos_dr::recovery::RecoverySettings {
        policy: talos_dr_shared::recovery::ApprovalPolicy {
            approvals_required: config.approvals_required,
            approval_ttl_ms: ttl_ms,
            break_glass_allowed: config.break_glass_allowed,
        },
        wait_deadline: config.wait_deadline,
        failpoints,
        ..Default::default()
    })
}

/// With no user at all, nobody could sign in: create `admin` and show its password once.
async fn create_first_admin(storage: &Storage) -> anyhow::Result<()> {
    if storage.users.count().await? > 0 {
        return Ok(());
    }
    let password = add_user(&storage.users, "admin", &[Role::Admin], None)
        .await?
        .context("a generated password")?;
    storage
        .audit
        .record(system_entry("user_create", "admin", "admin", "first start"))
        .await;
    tracing::warn!(
        "no users yet: created user \"admin\" (role admin); its password is printed once on standard output"
    );
    println!("talos-dr: created the first user: admin / {password}  (shown once; keep it safe)");
    Ok(())
}

fn system_entry(action: &str, target: &str, roles: &str, reason: &str) -> NewAuditEntry {
    NewAuditEntry {
        actor: format!(
            "(local: {})",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        ),
        roles: Vec::new(),
        action: action.to_string(),
        cluster: None,
        target: Some(target.to_string()),
        parameters: [
            ("roles".to_string(), roles.to_string()),
            ("via".to_string(), reason.to_string()),
        ]
        .into(),
        outcome: "ok".to_string(),
        client: None,
    }
}

async fn user(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Add {
            name,
            roles,
            password_stdin,
            data,
        } => {
            let password = if password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the password from standard input")?;
                let line = text.lines().next().unwrap_or("").to_string();
                Some(line)
            } else {
                None
            };
            let storage = data.open().await?;
            let generated = add_user(&storage.users, &name, &roles, password).await?;
            let role_names: Vec<&str> = roles.iter().map(Role::as_str).collect();
            storage
                .audit
                .record(system_entry(
                    "user_create",
                    &name,
                    &role_names.join(","),
                    "talos-dr user add",
                ))
                .await;
            match generated {
                Some(password) => println!("{password}"),
                None => eprintln!("talos-dr: user {name:?} added"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { data } => {
            let storage = data.open().await?;
            match storage.audit.verify().await? {
                ChainReport::Intact { entries } => {
                    println!("audit trail intact: {entries} entries, hash chain verified");
                    Ok(ExitCode::SUCCESS)
                }
                ChainReport::Broken { seq, problem } => {
                    println!("audit trail BROKEN at entry {seq}: {problem}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
