use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use talos_dr::config::{Config, ServeArgs};
use talos_dr_snapshot::cli::SnapshotCommand;
use tracing_subscriber::EnvFilter;

/// Console for Talos clusters whose etcd is in trouble.
#[derive(Debug, Parser)]
#[command(name = "talos-dr", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web console.
    Serve(ServeArgs),
    /// Check and inspect etcd snapshot files, without a browser.
    Snapshot {
        #[command(subcommand)]
        cmd: SnapshotCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Snapshot { cmd } => talos_dr_snapshot::cli::run(cmd),
        Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info")),
                )
                .init();
            let result = tokio::runtime::Runtime::new()
                .context("cannot start the async runtime")
                .and_then(|runtime| runtime.block_on(serve(args)));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("talos-dr: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args)?;
    let state = talos_dr::watch_clusters(&config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "console listening");
    tokio::select! {
        served = talos_dr::run(listener, state) => served.context("the console stopped serving")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
    }
    Ok(())
}
