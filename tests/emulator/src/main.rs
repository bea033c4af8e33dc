//! `talos-emulator up`: an emulated Talos cluster in front of real etcd, for demos and tests.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use talos_emulator::{Emulator, EmulatorOptions, EtcdVolume, Role};

#[derive(Debug, Parser)]
#[command(
    name = "talos-emulator",
    about = "Emulated Talos nodes in front of real etcd members"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The control interface, as `up --help` shows it.
const CONTROL_HELP: &str = "\
Control interface (HTTP JSON on 127.0.0.1, address in <state-dir>/control.addr):
  GET  /cluster                     every node: ip, hostname, machine_type, powered_on, api_up,
                                    delay_ms, etcd_state, etcd_healthy, and per recovery call
                                    (reset, bootstrap, etcd_recover, apply_configuration, reboot):
                                    calls (executed), refused_calls, calls_in_hold, armed_holds_ms
  POST /nodes/{ip}/api/stop|start   close or reopen the node's Talos API
  POST /nodes/{ip}/etcd/kill|start|corrupt|nospace|split
  POST /nodes/{ip}/slow             {\"delay_ms\": N}: delay every answer
  POST /nodes/{ip}/snapshot/cut     {\"after_bytes\": N, \"with_error\": bool}
  POST /nodes/{ip}/hold             {\"rpc\": \"reset\", \"ms\": N}: the next such call (reset, bootstrap,
                                    etcd_recover, apply_configuration, reboot) waits N ms before it
                                    acts; if the caller disconnects meanwhile the call is dropped,
                                    not executed and not counted

A call counts as executed once the node acts on it; one answered with an error before acting
counts as refused.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Form the cluster, serve the Talos API on every node and wait for SIGINT/SIGTERM.
    #[command(after_long_help = CONTROL_HELP)]
    Up(UpArgs),
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Control-plane nodes.
    #[arg(long)]
    nodes: usize,
    /// Worker nodes (no etcd).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Where node volumes, PKI, talosconfigs and the control address are written.
    #[arg(long)]
    state_dir: PathBuf,
    /// First node IP; the next nodes take the following addresses.
    #[arg(long, default_value = "127.0.0.2")]
    base_ip: Ipv4Addr,
    /// Port of every node's Talos API.
    #[arg(long, default_value_t = talos_emulator::DEFAULT_API_PORT)]
    api_port: u16,
    /// Make the first node an `init` node, which the recovery procedure must convert first.
    #[arg(long)]
    init_node: bool,
    /// Whether etcd data sits in a directory on EPHEMERAL, on its own ETCD partition, or in no
    /// ETCD volume at all (Talos before v1.10).
    #[arg(long, value_enum, default_value_t = VolumeArg::Directory)]
    etcd_volume: VolumeArg,
    /// A node whose etcd data lives elsewhere than --etcd-volume says, e.g. `cp-2=partition`;
    /// repeat for more nodes.
    #[arg(long, value_name = "HOSTNAME=VOLUME", value_parser = parse_volume_on)]
    etcd_volume_on: Vec<(String, EtcdVolume)>,
    /// Keys written into etcd once the cluster is formed.
    #[arg(long, default_value_t = 3000)]
    seed_keys: usize,
    /// Port of the fault-injection interface on 127.0.0.1 (0 = any free port); see --help.
    #[arg(long, default_value_t = 0)]
    control_port: u16,
    /// etcd's --quota-backend-bytes on every member (etcd's default when absent).
    #[arg(long)]
    etcd_quota_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VolumeArg {
    Directory,
    Partition,
    Absent,
}

impl From<VolumeArg> for EtcdVolume {
    fn from(value: VolumeArg) -> Self {
        match value {
            VolumeArg::Directory => EtcdVolume::Directory,
            VolumeArg::Partition => EtcdVolume::Partition,
            VolumeArg::Absent => EtcdVolume::Absent,
        }
    }
}

fn parse_volume_on(text: &str) -> Result<(String, EtcdVolume), String> {
    let (hostname, volume) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected HOSTNAME=VOLUME, e.g. cp-2=partition"))?;
    let volume = VolumeArg::from_str(volume, true).map_err(|_| {
        format!("{text:?}: volume {volume:?} is not one of directory, partition, absent")
    })?;
    Ok((hostname.to_string(), volume.into()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => up(args).await,
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let options = EmulatorOptions {
        nodes: args.nodes,
        workers: args.workers,
        base_ip: args.base_ip,
        api_port: args.api_port,
        state_dir: args.state_dir.clone(),
        init_node: args.init_node,
        etcd_volume: args.etcd_volume.into(),
        etcd_volume_on: args.etcd_volume_on.into_iter().collect(),
        seed_keys: args.seed_keys,
        control_port: args.control_port,
        etcd_quota_bytes: args.etcd_quota_bytes,
    };
    let emulator = Emulator::start(options).await.with_context(|| {
        format!(
            "starting the emulated cluster in {}",
            args.state_dir.display()
        )
    })?;

    println!("nodes:");
    for status in emulator.status() {
        let kind = status.machine_type.as_deref().unwrap_or("unconfigured");
        println!("  {} {} ({kind})", status.ip, status.hostname);
    }
    println!(
        "talosconfig: {}",
        emulator.combined_talosconfig_path().display()
    );
    for role in Role::ALL {
        println!(
            "talosconfig ({role}): {}",
            emulator.talosconfig_path(role).display()
        );
    }
    println!("control: http://{}", emulator.control_addr());
    println!(
        "ready: {}",
        emulator
            .state_dir()
            .join(talos_emulator::READY_FILE)
            .display()
    );

    wait_for_signal().await?;
    tracing::info!("stopping the emulated cluster");
    emulator.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
