//! Access to the Talos API. Protobuf types stop here: everything above this module works with
//! `talos_dr_shared` types through the `TalosApi` trait, so tests can use a fake.

pub mod client;
pub mod credentials;
mod kernel_log;
mod mapping;
pub mod talosconfig;

use async_trait::async_trait;
use futures::stream::BoxStream;
use talos_dr_shared::recovery::EtcdDataVolume;
use talos_dr_shared::{EtcdAlarm, EtcdMember, EtcdMemberStatus, EtcdService, MachineType};

pub use client::{TalosClient, TalosClientError};
pub use talosconfig::{TalosContext, TalosEndpoint, TalosconfigError};

/// The read calls the health poller makes against one node of a cluster. Every method targets
/// the node named by `node` (an IP or host name, no port), as talosctl's `-n` does.
#[async_trait]
pub trait TalosApi: Send + Sync + 'static {
    /// `Version`: the Talos version tag, e.g. `v1.11.2`.
    async fn version(&self, node: &str) -> Result<String, TalosError>;
    /// COSI `MachineTypes.config.talos.dev` `machine-type` in namespace `config`.
    async fn machine_type(&self, node: &str) -> Result<MachineType, TalosError>;
    /// The `etcd` entry of `ServiceList`; `None` when the node runs no etcd service.
    async fn etcd_service(&self, node: &str) -> Result<Option<EtcdService>, TalosError>;
    /// `EtcdMemberList` with `query_local`: the member list as this node's etcd sees it.
    async fn etcd_members(&self, node: &str) -> Result<Vec<EtcdMember>, TalosError>;
    /// `EtcdStatus` of the node's local member.
    async fn etcd_status(&self, node: &str) -> Result<EtcdMemberStatus, TalosError>;
    /// `EtcdAlarmList` through the node's local member.
    async fn etcd_alarms(&self, node: &str) -> Result<Vec<EtcdAlarm>, TalosError>;
    /// `EtcdSnapshot`: the node's etcd snapshot (bbolt image plus sha256 trailer), as it streams.
    /// Clients that cannot take snapshots answer `Refused`.
    async fn etcd_snapshot(&self, node: &str) -> Result<ByteStream, TalosError> {
        let _ = node;
        Err(TalosError::Refused(
            "snapshots are not supported by this client".into(),
        ))
    }
    /// COSI `MachineConfigs.config.talos.dev` `v1alpha1` in namespace `config`: the node's
    /// active machine configuration, exactly as submitted (all YAML documents). The resource is
    /// sensitive, so only `os:admin` credentials get it.
    async fn machine_config(&self, node: &str) -> Result<Vec<u8>, TalosError> {
        let _ = node;
        Err(TalosError::Refused(
            "machine config reads are not supported by this client".into(),
        ))
    }
    /// COSI `VolumeStatuses.block.talos.dev` `ETCD` in namespace `runtime`: where the node keeps
    /// etcd's data (non-sensitive, so `os:reader` may read it). `Absent` when the node has no such
    /// volume (Talos before v1.10). Never `Unreadable`: a failed read is an error, which the
    /// caller words for the plan.
    async fn etcd_data_volume(&self, node: &str) -> Result<EtcdDataVolume, TalosError> {
        let _ = node;
        Err(TalosError::Refused(
            "volume reads are not supported by this client".into(),
        ))
    }
    /// `Read`: the raw bytes of one file on the node, as they stream.
    async fn read_file(&self, node: &str, path: &str) -> Result<ByteStream, TalosError> {
        let _ = (node, path);
        Err(TalosError::Refused(
            "file reads are not supported by this client".into(),
        ))
    }
}

/// What `Reset` does to a node. The recovery only ever sends `graceful: false, reboot: true`
/// with a non-empty wipe list: an empty list would make Talos wipe the whole STATE disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetOptions {
    pub graceful: bool,
    pub reboot: bool,
    /// `system_partitions_to_wipe` labels, e.g. `["EPHEMERAL"]` or `["ETCD"]`.
    pub wipe_labels: Vec<String>,
}

/// `Bootstrap`: start a new etcd cluster on this node, from the snapshot uploaded with
/// `EtcdRecover` when `recover_etcd` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootstrapOptions {
    pub recover_etcd: bool,
    pub recover_skip_hash_check: bool,
}

/// How `ApplyConfiguration` applies a config. The recovery only stages (the machine type can
/// only change across a reboot), so the modes that reboot or apply at once are not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    Staged,
}

/// One kernel-log line from `Dmesg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLogLine {
    /// As the node sent it, without the trailing newline.
    pub text: String,
}

/// Kernel-log lines as they arrive; an error ends the stream.
pub type KernelLogStream = BoxStream<'static, Result<KernelLogLine, TalosError>>;

/// The state-changing calls of a recovery. Each one changes a node and must be sent at most once
/// per approved step; nothing here retries on its own.
#[async_trait]
pub trait TalosRecoveryApi: TalosApi {
    /// `Reset` with the given options; returns once the node accepted the request. An empty
    /// `wipe_labels` is refused here, without a call.
    async fn reset(&self, node: &str, options: &ResetOptions) -> Result<(), TalosError>;
    /// `Bootstrap`; Talos answers before the restore runs, so success means "accepted".
    async fn bootstrap(&self, node: &str, options: BootstrapOptions) -> Result<(), TalosError>;
    /// `EtcdRecover`: streams the snapshot to the node (stored at `/var/lib/etcd.snapshot`).
    /// `progress` is called with the bytes sent so far. Not bounded by the per-call timeout (the
    /// node answers after the last byte); an error from `snapshot` cancels the upload, so the
    /// node never keeps a truncated file.
    async fn etcd_recover(
        &self,
        node: &str,
        snapshot: ByteStream,
        progress: Box<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), TalosError>;
    /// `ApplyConfiguration` of `config` (all YAML documents) in `mode`.
    async fn apply_configuration(
        &self,
        node: &str,
        config: Vec<u8>,
        mode: ApplyMode,
    ) -> Result<(), TalosError>;
    /// `Reboot` in the default mode.
    async fn reboot(&self, node: &str) -> Result<(), TalosError>;
    /// The node's boot id (`Read` of `/proc/sys/kernel/random/boot_id`): it changes on every
    /// boot, which tells whether a reset or reboot took effect.
    async fn boot_id(&self, node: &str) -> Result<String, TalosError>;
    /// `Dmesg`: the kernel log, the last `tail_lines` lines (all of them when negative, none when
    /// zero) and then, with `follow`, new lines as they come. Lines are whole even when the node
    /// splits them across messages. Errors reaching the node come back here; once following, a
    /// broken stream ends with one `Err` item.
    async fn dmesg(
        &self,
        node: &str,
        follow: bool,
        tail_lines: i32,
    ) -> Result<KernelLogStream, TalosError>;
}

/// File bytes from a node, chunk by chunk; an error ends the stream.
pub type ByteStream = BoxStream<'static, Result<bytes::Bytes, TalosError>>;

/// A failed Talos call. `Display` is worded for the console: short, and never the raw status
/// text of the node (that is logged where the call is made).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TalosError {
    /// The node's Talos API could not be reached (connection refused, TLS handshake failed...).
    #[error("{0}")]
    Unreachable(String),
    /// The call did not finish within the per-call timeout.
    #[error("deadline exceeded")]
    Timeout,
    /// The node answered, with an error.
    #[error("{0}")]
    Refused(String),
    /// The node answered something this console cannot use.
    #[error("unexpected reply: {0}")]
    BadReply(String),
}

impl TalosError {
    /// Whether the node's Talos API answered at all.
    pub fn node_answered(&self) -> bool {
        matches!(self, Self::Refused(_) | Self::BadReply(_))
    }
}
