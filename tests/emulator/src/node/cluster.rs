//! Forming a cluster of emulated nodes: volumes, configs, a healthy etcd and Kubernetes-like data.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use super::etcd_api::EtcdClient;
use super::etcd_service::EtcdStart;
use super::machine_config::{self, MachineType};
use super::volumes::dir_is_empty;
use super::{Directory, Node, NodeSetup};

/// Where `/var/lib/etcd` lives, as the node's `VolumeStatuses.block.talos.dev` `ETCD` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdVolume {
    /// Volume ETCD of type directory on EPHEMERAL: the default since Talos v1.10.
    Directory,
    /// Volume ETCD of type partition (a VolumeConfig gave it one): wiping EPHEMERAL leaves it.
    Partition,
    /// No ETCD volume, as before Talos v1.10: etcd's data is a plain folder on EPHEMERAL, the
    /// VolumeStatus `ETCD` does not exist and Reset refuses the label.
    Absent,
}

#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Control-plane nodes.
    pub nodes: usize,
    pub workers: usize,
    /// Node i gets `base_ip + i` (workers after the control plane).
    pub base_ip: Ipv4Addr,
    pub state_dir: PathBuf,
    /// Give the first control-plane node machine type `init`.
    pub init_node: bool,
    pub etcd_volume: EtcdVolume,
    /// Nodes whose etcd data lives elsewhere than `etcd_volume` says, by hostname (`cp-2`).
    pub etcd_volume_on: BTreeMap<String, EtcdVolume>,
    /// Kubernetes-like keys written once the cluster is healthy.
    pub seed_keys: usize,
    /// etcd's `--quota-backend-bytes`; `None` keeps etcd's default.
    pub etcd_quota_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("etcd: {0}")]
    Etcd(String),
    #[error("invalid cluster spec: {0}")]
    InvalidSpec(String),
    #[error("etcd did not become healthy on {0} within {1:?}")]
    NotHealthy(String, Duration),
}

const CLUSTER_NAME: &str = "talos-emulator";
const HEALTHY_WITHIN: Duration = Duration::from_secs(40);

/// Starts every node, forms a healthy etcd cluster (a static member list for speed), seeds it and
/// returns once every control-plane member passes its health check.
pub async fn start_cluster(spec: &ClusterSpec) -> Result<Vec<Node>, NodeError> {
    if spec.nodes == 0 {
        return Err(NodeError::InvalidSpec(
            "field nodes must be at least 1 (a cluster needs a control plane)".to_string(),
        ));
    }
    let total = spec.nodes + spec.workers;
    if u32::from(spec.base_ip).checked_add(total as u32).is_none() {
        return Err(NodeError::InvalidSpec(format!(
            "field base_ip {} leaves no room for {total} nodes",
            spec.base_ip
        )));
    }
    let hostnames: Vec<String> = (0..total).map(|i| hostname_of(i, spec.nodes)).collect();
    if let Some(unknown) = spec.etcd_volume_on.keys().find(|h| !hostnames.contains(h)) {
        return Err(NodeError::InvalidSpec(format!(
            "field etcd_volume_on names {unknown:?}, which is not a node (nodes are {})",
            hostnames.join(", ")
        )));
    }
    let directory: Directory = Arc::new(Mutex::new(Vec::new()));
    let endpoint_ip = spec.base_ip;
    let mut nodes = Vec::with_capacity(total);
    let mut initial_cluster = Vec::new();
    for i in 0..total {
        let ip = Ipv4Addr::from(u32::from(spec.base_ip) + i as u32);
        let hostname = hostname_of(i, spec.nodes);
        let machine_type = if i >= spec.nodes {
            MachineType::Worker
        } else if i == 0 && spec.init_node {
            MachineType::Init
        } else {
            MachineType::ControlPlane
        };
        if machine_type.is_control_plane() {
            initial_cluster.push(format!("{hostname}={}", format_args!("http://{ip}:2380")));
        }
        let root = spec.state_dir.join("nodes").join(&hostname);
        let etcd_volume = spec
            .etcd_volume_on
            .get(&hostname)
            .copied()
            .unwrap_or(spec.etcd_volume);
        let config =
            machine_config::generate(machine_type, &hostname, ip, CLUSTER_NAME, endpoint_ip);
        nodes.push(Node::create(NodeSetup {
            ip,
            hostname,
            root,
            etcd_volume,
            config,
            directory: directory.clone(),
            etcd_quota_bytes: spec.etcd_quota_bytes,
        })?);
    }
    let fresh = nodes[..spec.nodes]
        .iter()
        .all(|n| dir_is_empty(&n.inner.volumes.etcd_data()));
    let initial_cluster = initial_cluster.join(",");
    for node in &nodes {
        node.boot(if fresh {
            EtcdStart::InitialCluster(initial_cluster.clone())
        } else {
            EtcdStart::Boot
        });
    }
    for node in &nodes[..spec.nodes] {
        wait_healthy(node, HEALTHY_WITHIN).await?;
    }
    if fresh && spec.seed_keys > 0 {
        seed(&nodes[0].inner.local_etcd, spec.seed_keys).await?;
        // A linearizable read on every member waits until it has applied the seed, so a
        // snapshot taken from any member right away holds every seeded key.
        for node in &nodes[..spec.nodes] {
            node.inner
                .local_etcd
                .quorum_read_health(Duration::from_secs(10))
                .await
                .map_err(|e| NodeError::Etcd(e.message().to_string()))?;
        }
    }
    Ok(nodes)
}

/// Control-plane nodes are `cp-1`, `cp-2`, ...; workers after them `worker-1`, ...
fn hostname_of(index: usize, control_plane: usize) -> String {
    if index < control_plane {
        format!("cp-{}", index + 1)
    } else {
        format!("worker-{}", index - control_plane + 1)
    }
}

/// Polls the node's etcd service health (as ServiceList shows it) until it is healthy.
pub async fn wait_healthy(node: &Node, within: Duration) -> Result<(), NodeError> {
    let deadline = tokio::time::Instant::now() + within;
    while !node.etcd_healthy() {
        if tokio::time::Instant::now() >= deadline {
            return Err(NodeError::NotHealthy(node.hostname(), within));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

const NAMESPACES: [&str; 3] = ["default", "kube-system", "monitoring"];
/// Share of the seeded keys per resource kind (out of 100).
const KINDS: [(&str, &str, usize); 6] = [
    ("pods", "Pod", 30),
    ("deployments", "Deployment", 10),
    ("configmaps", "ConfigMap", 20),
    ("secrets", "Secret", 15),
    ("leases", "Lease", 10),
    ("events", "Event", 15),
];

/// Writes `total` Kubernetes-like keys; lease objects are attached to a few real etcd leases.
pub(crate) async fn seed(client: &EtcdClient, total: usize) -> Result<(), NodeError> {
    let etcd = |e: tonic::Status| NodeError::Etcd(format!("seeding failed: {}", e.message()));
    let mut leases = Vec::new();
    for _ in 0..3 {
        leases.push(client.lease_grant(3600).await.map_err(etcd)?);
    }
    let mut keys: Vec<(String, String, i64)> = Vec::with_capacity(total);
    for ns in NAMESPACES.iter().take(total.min(NAMESPACES.len())) {
        keys.push((format!("/registry/namespaces/{ns}"), format!("{{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{ns}\"}}}}"), 0));
    }
    let remaining = total - keys.len();
    let mut i = 0usize;
    while keys.len() < total {
        let (resource, kind, share) = KINDS[i % KINDS.len()];
        // Walk the kinds in proportion to their share.
        let n = i / KINDS.len();
        i += 1;
        if n * 100 >= remaining * share {
            if i > total * 20 {
                break;
            }
            continue;
        }
        let ns = NAMESPACES[n % NAMESPACES.len()];
        let name = format!("{}-{n:05}", kind.to_lowercase());
        let lease = if resource == "leases" {
            leases[n % leases.len()]
        } else {
            0
        };
        let value = format!(
            "{{\"kind\":\"{kind}\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\",\"uid\":\"{:08x}-7d2f-4c1e-9a3b-{:012x}\"}},\"spec\":{{\"replicas\":1}}}}",
            n * 7919,
            n
        );
        keys.push((format!("/registry/{resource}/{ns}/{name}"), value, lease));
    }
    let mut writes = futures::stream::iter(keys.into_iter().map(|(key, value, lease)| {
        let client = client.clone();
        async move { client.put(&key, value.as_bytes(), lease).await }
    }))
    .buffer_unordered(16);
    while let Some(result) = writes.next().await {
        result.map_err(etcd)?;
    }
    Ok(())
}
