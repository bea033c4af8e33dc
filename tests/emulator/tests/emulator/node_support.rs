//! Helpers for the per-node tests: clusters on their own loopback addresses, stream collection,
//! polling with deadlines and etcdctl calls.

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use futures::StreamExt;
use talos_api::common;
use talos_emulator::node::{ClusterSpec, EtcdVolume, Node, RpcStream, start_cluster};
use tempfile::TempDir;

pub struct TestCluster {
    pub nodes: Vec<Node>,
    // Kept for the lifetime of the cluster; removed on drop.
    pub dir: TempDir,
}

impl TestCluster {
    pub async fn start(
        base_ip: Ipv4Addr,
        nodes: usize,
        workers: usize,
        init_node: bool,
        etcd_volume: EtcdVolume,
        seed_keys: usize,
    ) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = ClusterSpec {
            nodes,
            workers,
            base_ip,
            state_dir: dir.path().to_path_buf(),
            init_node,
            etcd_volume,
            etcd_volume_on: Default::default(),
            seed_keys,
            etcd_quota_bytes: None,
        };
        let nodes = start_cluster(&spec).await.expect("cluster starts");
        TestCluster { nodes, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub async fn shutdown(&self) {
        futures::future::join_all(self.nodes.iter().map(Node::shutdown)).await;
    }
}

pub async fn collect(stream: RpcStream<common::Data>) -> Result<Vec<u8>, tonic::Status> {
    let mut stream = stream;
    let mut bytes = Vec::new();
    while let Some(message) = stream.next().await {
        bytes.extend_from_slice(&message?.bytes);
    }
    Ok(bytes)
}

/// Uploads `bytes` as talosctl does (4 KiB messages).
pub fn upload(bytes: Vec<u8>) -> RpcStream<common::Data> {
    let chunks: Vec<Result<common::Data, tonic::Status>> = bytes
        .chunks(4096)
        .map(|c| {
            Ok(common::Data {
                metadata: None,
                bytes: c.to_vec(),
            })
        })
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

/// Polls `check` until it is true or panics naming `what` after `within`.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn etcdctl(args: &[&str]) -> Output {
    std::process::Command::new("etcdctl")
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .expect("etcdctl runs")
}

pub fn etcdctl_ok(args: &[&str]) -> String {
    let output = etcdctl(args);
    assert!(
        output.status.success(),
        "etcdctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn put(node: &Node, key: &str, value: &str) {
    etcdctl_ok(&[
        "--endpoints",
        &node.etcd_client_url(),
        "--command-timeout=3s",
        "put",
        key,
        value,
    ]);
}

/// Linearizable read of one key's value (None when absent).
pub fn get(node: &Node, key: &str) -> Option<String> {
    let out = etcdctl_ok(&[
        "--endpoints",
        &node.etcd_client_url(),
        "--command-timeout=3s",
        "get",
        "--print-value-only",
        key,
    ]);
    let value = out.trim_end_matches('\n');
    (!value.is_empty()).then(|| value.to_string())
}

pub fn count_prefix(node: &Node, prefix: &str) -> usize {
    let out = etcdctl_ok(&[
        "--endpoints",
        &node.etcd_client_url(),
        "--command-timeout=3s",
        "get",
        "--prefix",
        "--keys-only",
        prefix,
    ]);
    out.lines().filter(|l| !l.trim().is_empty()).count()
}

pub fn snapshot_status(path: &Path) -> serde_json::Value {
    let out = etcdctl_ok(&[
        "snapshot",
        "status",
        "-w",
        "json",
        path.to_str().expect("utf-8 path"),
    ]);
    serde_json::from_str(&out).expect("status json")
}

pub async fn wait_state(node: &Node, state: &str, within: Duration) {
    wait_until(
        &format!("etcd on {} to be {state}", node.hostname()),
        within,
        || async { node.etcd_service_state() == Some(state) },
    )
    .await;
}

pub async fn wait_healthy(node: &Node, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while !node.etcd_healthy() {
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out after {within:?} waiting for etcd on {} to be healthy\n{}",
                node.hostname(),
                diagnostics(node).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The etcd service events, the kernel log and the tail of etcd's own log, for failure messages.
pub async fn diagnostics(node: &Node) -> String {
    let mut text = String::new();
    if let Ok(services) = node.service_list().await {
        for service in services
            .messages
            .iter()
            .flat_map(|m| &m.services)
            .filter(|s| s.id == "etcd")
        {
            for event in service.events.iter().flat_map(|e| &e.events) {
                text.push_str(&format!("  [{}] {}\n", event.state, event.msg));
            }
            text.push_str(&format!("  health: {:?}\n", service.health));
        }
    }
    for line in node.kernel_log() {
        text.push_str(&format!("  kmsg: {line}\n"));
    }
    if let Some(root) = node
        .host_path("/system/state")
        .and_then(|p| p.parent().map(|p| p.join("etcd.log")))
    {
        let log = std::fs::read_to_string(root).unwrap_or_default();
        for line in log
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            text.push_str(&format!("  etcd: {line}\n"));
        }
    }
    text
}
