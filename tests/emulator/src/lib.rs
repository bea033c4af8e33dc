//! An emulated Talos cluster for tests and demos: per-node apid-like gRPC
//! endpoints (mTLS, roles, `node` routing) in front of real etcd members, plus
//! talosconfigs for every role and a loopback control interface for faults.

pub mod client;
pub mod control;
mod fault_api;
mod faults;
pub mod node;
pub mod pki;
pub mod role;
pub mod server;
pub mod talosconfig;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use talos_api::cosi::resource::state_client::StateClient;
use talos_api::machine::machine_service_client::MachineServiceClient;
use tonic::transport::Channel;

pub use client::ClientError;
pub use control::ControlError;
pub use faults::{FaultError, NodeStatus};
pub use node::{CallCounts, ClusterSpec, EtcdVolume, Node, NodeError, RecoveryCall};
pub use pki::{CertAndKey, ClusterPki, PkiError};
pub use role::Role;
pub use server::ServerError;
pub use talosconfig::{DEFAULT_API_PORT, TalosConfigError};

use control::ControlServer;
use faults::Faults;
use server::ApiServers;

/// File written into the state dir once every endpoint accepts connections.
pub const READY_FILE: &str = "ready";

#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Control-plane nodes.
    pub nodes: usize,
    pub workers: usize,
    /// First node IP; the others follow (127.0.0.2, 127.0.0.3, ...).
    pub base_ip: Ipv4Addr,
    /// Port every node's API listens on (talosctl's default is 50000).
    pub api_port: u16,
    pub state_dir: PathBuf,
    /// Make the first node an `init` node instead of `controlplane`.
    pub init_node: bool,
    pub etcd_volume: EtcdVolume,
    /// Nodes whose etcd data lives elsewhere than `etcd_volume` says, by hostname (`cp-2`).
    pub etcd_volume_on: BTreeMap<String, EtcdVolume>,
    /// Keys written into etcd after formation, so snapshots have content.
    pub seed_keys: usize,
    /// Control interface port on 127.0.0.1; 0 picks a free one.
    pub control_port: u16,
    /// etcd's `--quota-backend-bytes`; a small quota lets `raise_nospace` fill it quickly.
    pub etcd_quota_bytes: Option<u64>,
}

impl EmulatorOptions {
    /// Defaults: no workers, port 50000, controlplane nodes, etcd data as a directory, no seed keys.
    pub fn new(nodes: usize, base_ip: Ipv4Addr, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            nodes,
            workers: 0,
            base_ip,
            api_port: DEFAULT_API_PORT,
            state_dir: state_dir.into(),
            init_node: false,
            etcd_volume: EtcdVolume::Directory,
            etcd_volume_on: BTreeMap::new(),
            seed_keys: 0,
            control_port: 0,
            etcd_quota_bytes: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("the cluster needs at least one control-plane node")]
    NoNodes,
    #[error("creating state dir {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("forming the cluster: {0}")]
    Cluster(#[from] NodeError),
    #[error("cluster PKI: {0}")]
    Pki(#[from] PkiError),
    #[error(transparent)]
    TalosConfig(#[from] TalosConfigError),
    #[error("node API: {0}")]
    Server(#[from] ServerError),
    #[error("control interface: {0}")]
    Control(#[from] ControlError),
    #[error(transparent)]
    Fault(#[from] FaultError),
    #[error("client: {0}")]
    Client(#[from] ClientError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A running emulated cluster. Dropping it stops the endpoints and the etcd members.
pub struct Emulator {
    faults: Arc<Faults>,
    control: tokio::sync::Mutex<ControlServer>,
    control_addr: SocketAddr,
    pki: Arc<ClusterPki>,
    clients: BTreeMap<Role, CertAndKey>,
    talosconfigs: BTreeMap<Role, PathBuf>,
    state_dir: PathBuf,
    api_port: u16,
    control_plane: Vec<Ipv4Addr>,
}

impl Emulator {
    /// Forms the cluster, writes PKI and talosconfigs into the state dir, opens every
    /// node's API and the control interface, then writes `<state-dir>/ready`.
    pub async fn start(opts: EmulatorOptions) -> Result<Emulator, EmulatorError> {
        if opts.nodes == 0 {
            return Err(EmulatorError::NoNodes);
        }
        std::fs::create_dir_all(&opts.state_dir).map_err(|source| EmulatorError::StateDir {
            path: opts.state_dir.clone(),
            source,
        })?;
        // A stale marker from an earlier run must not announce this one early.
        let ready = opts.state_dir.join(READY_FILE);
        let _ = std::fs::remove_file(&ready);

        let spec = ClusterSpec {
            nodes: opts.nodes,
            workers: opts.workers,
            base_ip: opts.base_ip,
            state_dir: opts.state_dir.clone(),
            init_node: opts.init_node,
            etcd_volume: opts.etcd_volume,
            etcd_volume_on: opts.etcd_volume_on.clone(),
            seed_keys: opts.seed_keys,
            etcd_quota_bytes: opts.etcd_quota_bytes,
        };
        let nodes = node::start_cluster(&spec).await?;
        match Self::serve(opts, nodes.clone()).await {
            Ok(emulator) => {
                write(&ready, b"ready\n")?;
                Ok(emulator)
            }
            Err(err) => {
                for node in &nodes {
                    node.shutdown().await;
                }
                Err(err)
            }
        }
    }

    async fn serve(opts: EmulatorOptions, nodes: Vec<Node>) -> Result<Emulator, EmulatorError> {
        let mut control_plane: Vec<Ipv4Addr> = nodes
            .iter()
            .filter(|node| node.machine_type().is_some_and(|t| t.is_control_plane()))
            .map(Node::ip)
            .collect();
        if control_plane.is_empty() {
            // No config active yet: the first `nodes` entries are the control plane by construction.
            control_plane = nodes.iter().take(opts.nodes).map(Node::ip).collect();
        }
        let endpoints: Vec<String> = control_plane
            .iter()
            .map(|ip| talosconfig::endpoint(*ip, opts.api_port))
            .collect();
        let node_targets: Vec<String> = control_plane.iter().map(Ipv4Addr::to_string).collect();

        let pki = Arc::new(ClusterPki::generate()?);
        let pki_dir = opts.state_dir.join("pki");
        pki.write_ca(&pki_dir)?;
        let mut clients = BTreeMap::new();
        for role in Role::ALL {
            let pair = pki.issue_client(&[role.as_str()])?;
            pki::write_cert_and_key(&pki_dir, &format!("client-{}", role.short_name()), &pair)?;
            clients.insert(role, pair);
        }
        let talosconfigs = talosconfig::write_all(
            &opts.state_dir,
            &endpoints,
            &node_targets,
            &pki.ca_pem(),
            &clients,
        )?;

        let servers = ApiServers::new(&nodes, opts.api_port, pki.clone(), endpoints)?;
        if let Err(err) = servers.start_all().await {
            servers.stop_all().await;
            return Err(err.into());
        }
        let faults = Arc::new(Faults::new(nodes, servers.clone()));
        let control =
            match ControlServer::start(faults.clone(), opts.control_port, &opts.state_dir).await {
                Ok(control) => control,
                Err(err) => {
                    servers.stop_all().await;
                    return Err(err.into());
                }
            };
        Ok(Emulator {
            faults,
            control_addr: control.addr(),
            control: tokio::sync::Mutex::new(control),
            pki,
            clients,
            talosconfigs,
            state_dir: opts.state_dir,
            api_port: opts.api_port,
            control_plane,
        })
    }

    pub fn nodes(&self) -> &[Node] {
        self.faults.nodes()
    }

    pub fn node(&self, ip: Ipv4Addr) -> Option<&Node> {
        self.faults.node(ip).ok()
    }

    /// Every node's IP, control plane first, in cluster order.
    pub fn node_ips(&self) -> Vec<Ipv4Addr> {
        self.nodes().iter().map(Node::ip).collect()
    }

    pub fn control_plane_ips(&self) -> &[Ipv4Addr] {
        &self.control_plane
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    pub fn api_addr(&self, ip: Ipv4Addr) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(ip, self.api_port))
    }

    /// `<state-dir>/talosconfig.<role>` (single context `emulated-<role>`).
    pub fn talosconfig_path(&self, role: Role) -> PathBuf {
        self.talosconfigs
            .get(&role)
            .cloned()
            .unwrap_or_else(|| self.state_dir.join(talosconfig::file_name(role)))
    }

    /// `<state-dir>/talosconfig` with every role's context, current `emulated-admin`.
    pub fn combined_talosconfig_path(&self) -> PathBuf {
        self.state_dir.join("talosconfig")
    }

    pub fn ca_pem(&self) -> String {
        self.pki.ca_pem()
    }

    pub fn pki(&self) -> &ClusterPki {
        &self.pki
    }

    /// The client certificate and key (Talos label) issued for `role`.
    pub fn identity(&self, role: Role) -> &CertAndKey {
        // Every role gets an identity in `serve`, so the map is total.
        &self.clients[&role]
    }

    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    pub fn status(&self) -> Vec<NodeStatus> {
        self.faults.status()
    }

    /// A TLS channel to `endpoint` authenticated as `role`.
    pub async fn channel(&self, role: Role, endpoint: Ipv4Addr) -> Result<Channel, EmulatorError> {
        Ok(client::connect(
            &self.ca_pem(),
            Some(self.identity(role)),
            endpoint,
            self.api_port,
        )
        .await?)
    }

    pub async fn client(
        &self,
        role: Role,
        endpoint: Ipv4Addr,
    ) -> Result<MachineServiceClient<Channel>, EmulatorError> {
        Ok(client::machine_client(self.channel(role, endpoint).await?))
    }

    pub async fn state_client(
        &self,
        role: Role,
        endpoint: Ipv4Addr,
    ) -> Result<StateClient<Channel>, EmulatorError> {
        Ok(client::state_client(self.channel(role, endpoint).await?))
    }

    /// Stops the control interface, every node API and every etcd member.
    pub async fn shutdown(&self) {
        self.control.lock().await.stop().await;
        self.faults.servers().stop_all().await;
        for node in self.nodes() {
            node.shutdown().await;
        }
        let _ = std::fs::remove_file(self.state_dir.join(READY_FILE));
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.faults.servers().cancel_all();
        if let Ok(control) = self.control.try_lock() {
            control.cancel();
        }
        // etcd children are also killed when their handles drop (kill_on_drop, PDEATHSIG);
        // this only gives them an orderly stop when a runtime is still around.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            for node in self.nodes().to_vec() {
                runtime.spawn(async move { node.shutdown().await });
            }
        }
    }
}

fn write(path: &Path, contents: &[u8]) -> Result<(), EmulatorError> {
    std::fs::write(path, contents).map_err(|source| EmulatorError::Write {
        path: path.to_owned(),
        source,
    })
}
