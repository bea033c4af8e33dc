//! The emulated three-node cluster with real etcd, its data, and what each node counted.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use talos_emulator::node::{CallCounts, RecoveryCall};
use talos_emulator::{Emulator, EmulatorOptions, Node, Role};

/// Written before the snapshot: must be there after the recovery.
pub const KEPT_KEY: &str = "/registry/configmaps/default/before-snapshot";
/// Written after the snapshot: must be gone after the recovery.
pub const LOST_KEY: &str = "/registry/configmaps/default/after-snapshot";

pub struct FaultCluster {
    pub emulator: Emulator,
}

impl FaultCluster {
    pub async fn start(base_ip: Ipv4Addr, state_dir: &Path) -> Self {
        let mut opts = EmulatorOptions::new(3, base_ip, state_dir);
        opts.seed_keys = 100;
        let emulator = Emulator::start(opts)
            .await
            .expect("the emulated cluster starts");
        Self { emulator }
    }

    pub fn talosconfig(&self) -> std::path::PathBuf {
        self.emulator.talosconfig_path(Role::Admin)
    }

    pub fn ip(&self, i: usize) -> Ipv4Addr {
        self.emulator.control_plane_ips()[i]
    }

    pub fn ips(&self) -> Vec<Ipv4Addr> {
        self.emulator.control_plane_ips().to_vec()
    }

    pub fn node(&self, ip: Ipv4Addr) -> &Node {
        self.emulator.node(ip).expect("a node of the cluster")
    }

    /// The calls `ip` acted on so far.
    pub fn executed(&self, ip: Ipv4Addr) -> CallCounts {
        self.node(ip).calls()
    }

    pub fn executed_on(&self, ip: Ipv4Addr, call: RecoveryCall) -> u64 {
        self.executed(ip).get(call)
    }

    pub fn in_hold(&self, ip: Ipv4Addr, call: RecoveryCall) -> u64 {
        self.node(ip).calls_in_hold().get(call)
    }

    pub fn hold_next(&self, ip: Ipv4Addr, call: RecoveryCall, hold: Duration) {
        self.node(ip).hold_next(call, hold);
    }

    /// Every node's counters, for failure messages and the final check.
    pub fn counters(&self) -> String {
        self.ips()
            .into_iter()
            .map(|ip| {
                let n = self.node(ip);
                format!(
                    "{ip}: executed {:?} refused {:?} in_hold {:?}",
                    n.calls(),
                    n.refused_calls(),
                    n.calls_in_hold()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every node's etcd as the emulator sees it, e.g. `127.0.90.2 Running healthy`.
    pub fn etcd_states(&self) -> String {
        self.emulator
            .status()
            .iter()
            .map(|s| {
                format!(
                    "{} {} {}",
                    s.ip,
                    s.etcd_state.as_deref().unwrap_or("-"),
                    if s.etcd_healthy {
                        "healthy"
                    } else {
                        "unhealthy"
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Waits until etcd runs healthy on every node (the emulator's own view).
    pub async fn wait_all_etcd_healthy(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let status = self.emulator.status();
            if status.len() == 3
                && status
                    .iter()
                    .all(|s| s.etcd_state.as_deref() == Some("Running") && s.etcd_healthy)
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "etcd not running healthy on every node within {within:?}: {}",
                self.etcd_states()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Kills etcd on the last two nodes: quorum is gone.
    pub async fn break_etcd(&self) {
        for ip in [self.ip(1), self.ip(2)] {
            self.emulator.kill_etcd(ip).await.expect("kill etcd");
        }
    }
}

pub async fn etcdctl(endpoint: Ipv4Addr, args: &[&str]) -> String {
    let endpoints = format!("http://{endpoint}:2379");
    let out = tokio::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoints, "--command-timeout=5s"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("etcdctl runs");
    assert!(
        out.status.success(),
        "etcdctl {args:?} on {endpoint}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The key's value, read through `endpoint`; empty when absent.
pub async fn value_of(endpoint: Ipv4Addr, key: &str) -> String {
    etcdctl(endpoint, &["get", "--print-value-only", key])
        .await
        .trim()
        .to_string()
}
