//! `talos-dr snapshot ...` as a standalone program, for benchmarks and manual checks.

use clap::Parser;

#[derive(Parser)]
#[command(name = "talos-dr-snapshot")]
struct Args {
    #[command(subcommand)]
    cmd: talos_dr_snapshot::cli::SnapshotCommand,
}

fn main() -> std::process::ExitCode {
    talos_dr_snapshot::cli::run(Args::parse().cmd)
}
