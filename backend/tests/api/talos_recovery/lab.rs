//! One emulated node per test, a Talos client for it, and what the tests wait for.

use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use talos_dr::talos::{
    ByteStream, KernelLogStream, ResetOptions, TalosClient, TalosError, talosconfig,
};
use talos_emulator::{CallCounts, Emulator, EmulatorOptions, Role};
use tempfile::TempDir;

/// Restarting etcd from a snapshot on a busy two-core machine takes a while.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Lab {
    pub emulator: Emulator,
    pub ip: Ipv4Addr,
    pub node: String,
    _dir: TempDir,
}

pub async fn lab(ip: Ipv4Addr, init_node: bool, seed_keys: usize) -> Lab {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = EmulatorOptions::new(1, ip, dir.path().join("cluster"));
    opts.init_node = init_node;
    opts.seed_keys = seed_keys;
    let emulator = Emulator::start(opts)
        .await
        .expect("the emulated cluster starts");
    Lab {
        emulator,
        ip,
        node: ip.to_string(),
        _dir: dir,
    }
}

impl Lab {
    pub fn client(&self, role: Role, call_timeout: Duration) -> TalosClient {
        let ctx = talosconfig::load(&self.emulator.talosconfig_path(role), None)
            .expect("the emulator's talosconfig loads");
        TalosClient::new(&ctx, call_timeout).expect("a Talos client")
    }

    pub fn executed(&self) -> CallCounts {
        self.emulator.calls(self.ip).expect("a node of the lab")
    }

    pub fn refused(&self) -> CallCounts {
        self.emulator
            .refused_calls(self.ip)
            .expect("a node of the lab")
    }

    /// Keys under `prefix`, read straight from the node's etcd.
    pub fn count_keys(&self, prefix: &str) -> usize {
        let endpoint = self.emulator.node(self.ip).expect("node").etcd_client_url();
        let output = std::process::Command::new("etcdctl")
            .args([
                "--endpoints",
                &endpoint,
                "--command-timeout=5s",
                "get",
                "--prefix",
                "--keys-only",
                prefix,
            ])
            .env("ETCDCTL_API", "3")
            .output()
            .expect("etcdctl runs");
        assert!(
            output.status.success(),
            "etcdctl get: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }

    pub fn put(&self, key: &str, value: &str) {
        let endpoint = self.emulator.node(self.ip).expect("node").etcd_client_url();
        let output = std::process::Command::new("etcdctl")
            .args([
                "--endpoints",
                &endpoint,
                "--command-timeout=5s",
                "put",
                key,
                value,
            ])
            .env("ETCDCTL_API", "3")
            .output()
            .expect("etcdctl runs");
        assert!(
            output.status.success(),
            "etcdctl put {key}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

pub fn wipe(labels: &[&str]) -> ResetOptions {
    ResetOptions {
        graceful: false,
        reboot: true,
        wipe_labels: labels.iter().map(|l| l.to_string()).collect(),
    }
}

/// `bytes` as a stream of small chunks, like a snapshot read back from the store.
pub fn byte_stream(bytes: Vec<u8>) -> ByteStream {
    let chunks: Vec<Result<bytes::Bytes, TalosError>> = bytes
        .chunks(1000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads the followed log until a line contains `needle`.
pub async fn wait_for_line(log: &mut KernelLogStream, needle: &str) -> String {
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = log.next().await {
            let line = line.expect("the followed kernel log keeps streaming");
            if line.text.contains(needle) {
                return Some(line.text);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(line)) => line,
        Ok(None) => panic!("the followed kernel log ended before {needle:?}"),
        Err(_) => panic!("no kernel-log line with {needle:?} within {PATIENCE:?}"),
    }
}
