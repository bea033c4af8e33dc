//! One emulated Talos node: its volumes on disk, its services (a real etcd member on control-plane
//! nodes) and the per-node answers to the Talos machine and COSI APIs.
//!
//! The RPC handlers live in `rpc_*` modules as further `impl Node` blocks; this module holds the
//! node itself and its boot/stop lifecycle; `fault_hooks` has the fault injection and `calls` the
//! per-node call counters and holds.

mod block;
mod calls;
mod clock;
pub mod cluster;
mod etcd_api;
mod etcd_process;
mod etcd_service;
mod fault_hooks;
mod kmsg;
mod machine_config;
mod recover;
mod rpc_config;
mod rpc_cosi;
mod rpc_etcd;
mod rpc_files;
mod rpc_machine;
mod service;
mod volumes;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tonic::Status;

pub use calls::{CallCounts, RecoveryCall};
pub use cluster::{ClusterSpec, EtcdVolume, NodeError, start_cluster};
pub use machine_config::MachineType;

use calls::CallLedger;
use etcd_api::EtcdClient;
use etcd_service::EtcdStart;
use kmsg::KernelLog;
use machine_config::MachineConfig;
use service::{ServiceState, Services};
use volumes::NodeVolumes;

pub type RpcStream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

const ETCD: &str = "etcd";
/// Services besides etcd that a configured node runs; they are always up in the emulator.
const NODE_SERVICES: [&str; 4] = ["apid", "cri", "kubelet", "machined"];

/// Control-plane nodes of one emulated cluster, so an empty member can find a healthy one to join.
pub(crate) type Directory = Arc<Mutex<Vec<Weak<NodeInner>>>>;

/// Poison only means another thread panicked mid-update; the data is still usable for an emulator.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

pub(crate) struct NodeInner {
    ip: Ipv4Addr,
    hostname: String,
    volumes: NodeVolumes,
    directory: Directory,
    kmsg: Arc<KernelLog>,
    services: Services,
    local_etcd: EtcdClient,
    etcd_quota_bytes: Option<u64>,
    state: Mutex<NodeState>,
    /// Wakes an etcd service held down by `kill_etcd`.
    etcd_release: Notify,
    /// Reboot/reset/shutdown run one at a time.
    lifecycle: tokio::sync::Mutex<()>,
    /// Recovery calls acted on or refused, and armed holds; survives reboots.
    calls: Mutex<CallLedger>,
}

#[derive(Default)]
struct NodeState {
    boot_id: String,
    powered_on: bool,
    active_config: Option<MachineConfig>,
    /// Bumped on every config change so COSI versions move like Talos'.
    config_version: u64,
    etcd_task: Option<EtcdTask>,
    etcd_pid: Option<u32>,
    etcd_held_down: bool,
    snapshot_cut: Option<SnapshotCut>,
}

struct EtcdTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

#[derive(Debug, Clone, Copy)]
struct SnapshotCut {
    after_bytes: u64,
    with_error: bool,
}

impl NodeInner {
    fn client_url(&self) -> String {
        format!("http://{}:2379", self.ip)
    }
    fn peer_url(&self) -> String {
        format!("http://{}:2380", self.ip)
    }
    fn machine_type(&self) -> Option<MachineType> {
        lock(&self.state)
            .active_config
            .as_ref()
            .map(|c| c.machine_type)
    }
    fn etcd_held_down(&self) -> bool {
        lock(&self.state).etcd_held_down
    }
    fn set_etcd_pid(&self, pid: Option<u32>) {
        lock(&self.state).etcd_pid = pid;
    }
    /// Other control-plane nodes whose etcd passes its health check.
    fn healthy_peers(&self) -> Vec<Arc<NodeInner>> {
        lock(&self.directory)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|peer| peer.hostname != self.hostname && peer.services.is_healthy(ETCD))
            .collect()
    }
}

/// What the cluster builder hands over to create a node.
pub(crate) struct NodeSetup {
    pub ip: Ipv4Addr,
    pub hostname: String,
    pub root: std::path::PathBuf,
    pub etcd_volume: EtcdVolume,
    pub config: String,
    pub directory: Directory,
    pub etcd_quota_bytes: Option<u64>,
}

impl Node {
    /// Lays out the node's volumes and writes its config unless STATE already has one.
    pub(crate) fn create(setup: NodeSetup) -> Result<Node, NodeError> {
        let volumes = NodeVolumes::new(setup.root, setup.etcd_volume);
        volumes.create_layout().map_err(|source| NodeError::Io {
            path: volumes.root.clone(),
            source,
        })?;
        let config_file = volumes.config_file();
        if !config_file.exists() {
            std::fs::write(&config_file, setup.config.as_bytes()).map_err(|source| {
                NodeError::Io {
                    path: config_file.clone(),
                    source,
                }
            })?;
        }
        let local_etcd = EtcdClient::new(&format!("http://{}:2379", setup.ip))
            .map_err(|e| NodeError::Etcd(e.message().to_string()))?;
        let kmsg = Arc::new(KernelLog::new());
        let inner = Arc::new(NodeInner {
            ip: setup.ip,
            hostname: setup.hostname,
            volumes,
            directory: setup.directory,
            services: Services::new(kmsg.clone()),
            kmsg,
            local_etcd,
            etcd_quota_bytes: setup.etcd_quota_bytes,
            state: Mutex::new(NodeState::default()),
            etcd_release: Notify::new(),
            lifecycle: tokio::sync::Mutex::new(()),
            calls: Mutex::new(CallLedger::default()),
        });
        lock(&inner.directory).push(Arc::downgrade(&inner));
        Ok(Node { inner })
    }

    pub fn ip(&self) -> Ipv4Addr {
        self.inner.ip
    }

    pub fn hostname(&self) -> String {
        self.inner.hostname.clone()
    }

    /// The node's current boot id (changes on every reboot).
    pub fn boot_id(&self) -> String {
        lock(&self.inner.state).boot_id.clone()
    }

    /// The machine type of the active config; `None` in maintenance mode (no config).
    pub fn machine_type(&self) -> Option<MachineType> {
        self.inner.machine_type()
    }

    /// False after a reset without reboot or after `shutdown`.
    pub fn is_powered_on(&self) -> bool {
        lock(&self.inner.state).powered_on
    }

    /// Kernel-log messages of the current boot, oldest first (without the Dmesg prefix).
    pub fn kernel_log(&self) -> Vec<String> {
        self.inner.kmsg.lines()
    }

    /// The etcd service state string as ServiceList shows it (`None` where etcd is not a service).
    pub fn etcd_service_state(&self) -> Option<&'static str> {
        self.inner.services.state(ETCD).map(ServiceState::as_str)
    }

    pub fn etcd_healthy(&self) -> bool {
        self.inner.services.is_healthy(ETCD)
    }

    /// The host folder behind a Talos absolute path, e.g. `/var/lib/etcd`.
    pub fn host_path(&self, talos_path: &str) -> Option<std::path::PathBuf> {
        self.inner.volumes.resolve(talos_path)
    }

    /// The node's etcd client URL (`http://<ip>:2379`).
    pub fn etcd_client_url(&self) -> String {
        self.inner.client_url()
    }

    /// Powers the node on: new boot id, config loaded from STATE, services started.
    pub(crate) fn boot(&self, etcd_start: EtcdStart) {
        let inner = &self.inner;
        if let Err(error) = inner.volumes.create_layout() {
            tracing::error!(node = %inner.hostname, %error, "cannot lay out volumes");
        }
        let config = std::fs::read(inner.volumes.config_file()).ok().and_then(|raw| match MachineConfig::parse(&raw) {
            Ok(config) => Some(config),
            Err(error) => {
                tracing::warn!(node = %inner.hostname, %error, "stored machine config is invalid; booting into maintenance");
                None
            }
        });
        let machine_type = config.as_ref().map(|c| c.machine_type);
        {
            let mut state = lock(&inner.state);
            state.boot_id = new_boot_id();
            state.powered_on = true;
            state.active_config = config;
            state.config_version += 1;
            state.etcd_held_down = false;
            state.etcd_pid = None;
        }
        inner.kmsg.clear();
        inner
            .kmsg
            .kernel("notice", "Linux version 6.12.57-talos (emulated)");
        inner.kmsg.talos(format!(
            "setting hostname {} and address {}",
            inner.hostname, inner.ip
        ));
        inner.services.reset();
        inner.services.register("apid");
        inner.services.register("machined");
        let mut running: Vec<&str> = vec!["apid", "machined"];
        match machine_type {
            Some(t) => {
                inner.kmsg.talos(format!(
                    "machine type {} loaded from {}",
                    t.as_str(),
                    volumes::CONFIG_PATH
                ));
                for id in NODE_SERVICES {
                    inner.services.register(id);
                }
                running = NODE_SERVICES.to_vec();
                if t.is_control_plane() {
                    inner.services.register("trustd");
                    running.push("trustd");
                    inner.services.register(ETCD);
                }
            }
            None => inner
                .kmsg
                .talos("entering maintenance mode: no machine configuration"),
        }
        for id in running {
            inner
                .services
                .set_state(id, ServiceState::Starting, "Starting service");
            inner
                .services
                .set_state(id, ServiceState::Running, "Service started as goroutine");
            inner.services.set_health(id, true, "");
        }
        if machine_type.is_some_and(MachineType::is_control_plane) {
            self.spawn_etcd_service(etcd_start);
        }
    }

    fn spawn_etcd_service(&self, start: EtcdStart) {
        let (stop, stop_rx) = watch::channel(false);
        let handle = tokio::spawn(etcd_service::run(self.inner.clone(), start, stop_rx));
        let previous = lock(&self.inner.state)
            .etcd_task
            .replace(EtcdTask { stop, handle });
        if let Some(previous) = previous {
            previous.handle.abort();
        }
    }

    /// Stops the etcd service (SIGTERM, then SIGKILL) and records its final state.
    async fn stop_etcd_service(&self, final_state: ServiceState, message: &str) {
        let task = lock(&self.inner.state).etcd_task.take();
        let Some(task) = task else { return };
        let _ = task.stop.send(true);
        let mut handle = task.handle;
        if tokio::time::timeout(Duration::from_secs(10), &mut handle)
            .await
            .is_err()
        {
            handle.abort();
        }
        self.inner.set_etcd_pid(None);
        self.inner.services.set_state(ETCD, final_state, message);
    }

    /// Stops every service, as the reboot/reset/shutdown sequences do.
    async fn stop_services(&self) {
        self.stop_etcd_service(ServiceState::Finished, "Service finished successfully")
            .await;
        for info in self.inner.services.list() {
            if info.id != ETCD && info.state == ServiceState::Running.as_str() {
                self.inner
                    .services
                    .set_state(&info.id, ServiceState::Stopping, "Stopping service");
                self.inner.services.set_state(
                    &info.id,
                    ServiceState::Finished,
                    "Service finished successfully",
                );
            }
        }
        self.inner.kmsg.talos("all services stopped");
    }

    /// Powers the node off: etcd is stopped gracefully.
    pub async fn shutdown(&self) {
        let _guard = self.inner.lifecycle.lock().await;
        self.stop_services().await;
        lock(&self.inner.state).powered_on = false;
    }
}

fn new_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            format!(
                "{:08x}-0000-4000-8000-{:012x}",
                (nanos >> 64) as u32,
                nanos as u64 & 0xffff_ffff_ffff
            )
        })
}
