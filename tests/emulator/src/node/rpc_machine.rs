//! Machine-level RPCs: Version, ServiceList, Events, Bootstrap, Reset, Reboot
//! (ApplyConfiguration is in `rpc_config`).

use talos_api::machine;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::calls::{Attempt, RecoveryCall};
use super::etcd_service::EtcdStart;
use super::service::ServiceState;
use super::volumes::{dir_is_empty, wipe_contents};
use super::{EtcdVolume, Node, RpcStream, lock, new_boot_id};

pub const TALOS_VERSION: &str = "v1.11.5";

impl Node {
    pub async fn version(&self) -> Result<machine::VersionResponse, Status> {
        let configured = lock(&self.inner.state).active_config.is_some();
        Ok(machine::VersionResponse {
            messages: vec![machine::Version {
                metadata: None,
                version: Some(machine::VersionInfo {
                    tag: TALOS_VERSION.to_string(),
                    sha: "5c8e9a2d".to_string(),
                    built: String::new(),
                    go_version: "go1.24.9".to_string(),
                    os: "linux".to_string(),
                    arch: "amd64".to_string(),
                }),
                platform: Some(machine::PlatformInfo {
                    name: "metal".to_string(),
                    mode: "metal".to_string(),
                }),
                features: configured.then_some(machine::FeaturesInfo { rbac: true }),
            }],
        })
    }

    pub async fn service_list(&self) -> Result<machine::ServiceListResponse, Status> {
        Ok(machine::ServiceListResponse {
            messages: vec![machine::ServiceList {
                metadata: None,
                services: self.inner.services.list(),
            }],
        })
    }

    pub async fn events(
        &self,
        request: machine::EventsRequest,
    ) -> Result<RpcStream<machine::Event>, Status> {
        let (history, mut live) = self
            .inner
            .services
            .open_events(request.tail_events, &request.tail_id);
        let actor = request.with_actor_id;
        let keep = move |event: &machine::Event| actor.is_empty() || event.actor_id == actor;
        let keep_live = keep.clone();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            for event in history.into_iter().filter(|e| keep(e)) {
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            loop {
                match live.recv().await {
                    Ok(event) if keep_live(&event) => {
                        if tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    /// Talos' Bootstrap checks, in Talos' order, then a new etcd service instance; returns at once.
    pub async fn bootstrap(
        &self,
        request: machine::BootstrapRequest,
    ) -> Result<machine::BootstrapResponse, Status> {
        let mut attempt = self.attempt(RecoveryCall::Bootstrap).await;
        let result = self.bootstrap_checked(request, &mut attempt).await;
        attempt.finish(result)
    }

    async fn bootstrap_checked(
        &self,
        request: machine::BootstrapRequest,
        attempt: &mut Attempt,
    ) -> Result<machine::BootstrapResponse, Status> {
        if self.inner.services.state("cri") != Some(ServiceState::Running) {
            return Err(Status::failed_precondition(
                "bootstrap is not available yet",
            ));
        }
        self.require_control_plane("bootstrap")?;
        let has_etcd_ca = lock(&self.inner.state)
            .active_config
            .as_ref()
            .is_some_and(|c| c.has_etcd_ca);
        if !has_etcd_ca {
            return Err(Status::invalid_argument(
                "etcd is not configured, bootstrap is not possible",
            ));
        }
        if !dir_is_empty(&self.inner.volumes.etcd_data()) {
            return Err(Status::already_exists("etcd data directory is not empty"));
        }
        attempt.act();
        // Accepted: the new etcd service is set up even if the caller goes away meanwhile.
        let node = self.clone();
        tokio::spawn(async move {
            node.stop_etcd_service(ServiceState::Finished, "Bootstrap requested")
                .await;
            if !dir_is_empty(&node.inner.volumes.etcd_data()) {
                return Err(Status::unknown("etcd data directory is not empty"));
            }
            node.inner.kmsg.talos(if request.recover_etcd {
                "bootstrapping etcd from a snapshot"
            } else {
                "bootstrapping etcd"
            });
            node.spawn_etcd_service(EtcdStart::Bootstrap {
                recover: request.recover_etcd,
                skip_hash_check: request.recover_skip_hash_check,
            });
            Ok(())
        })
        .await
        .map_err(|e| Status::internal(format!("bootstrap failed: {e}")))??;
        Ok(machine::BootstrapResponse {
            messages: vec![machine::Bootstrap { metadata: None }],
        })
    }

    /// Validates like Talos, then stops services, wipes and reboots (or powers off) in the background.
    pub async fn reset(
        &self,
        request: machine::ResetRequest,
    ) -> Result<machine::ResetResponse, Status> {
        let mut attempt = self.attempt(RecoveryCall::Reset).await;
        let result = self.reset_checked(request, &mut attempt);
        attempt.finish(result)
    }

    fn reset_checked(
        &self,
        request: machine::ResetRequest,
        attempt: &mut Attempt,
    ) -> Result<machine::ResetResponse, Status> {
        use machine::reset_request::WipeMode;
        let mode = WipeMode::try_from(request.mode)
            .map_err(|_| Status::invalid_argument(format!("unknown wipe mode {}", request.mode)))?;
        if !request.user_disks_to_wipe.is_empty() && mode == WipeMode::SystemDisk {
            return Err(Status::invalid_argument(
                "user disks to wipe can't be specified with wipe mode system disk",
            ));
        }
        if !request.system_partitions_to_wipe.is_empty() && mode == WipeMode::UserDisks {
            return Err(Status::invalid_argument(
                "system partitions to wipe can't be specified with wipe mode user disks",
            ));
        }
        if let Some(disk) = request.user_disks_to_wipe.first() {
            return Err(Status::invalid_argument(format!(
                "user disk {disk} does not exist"
            )));
        }
        let labels: Vec<&str> = request
            .system_partitions_to_wipe
            .iter()
            .filter(|p| p.wipe)
            .map(|p| p.label.as_str())
            .collect();
        for spec in &request.system_partitions_to_wipe {
            if !self.inner.volumes.has_label(&spec.label) {
                return Err(Status::unknown(format!(
                    "failed to get volume status with label {:?}: resource VolumeStatuses.block.talos.dev(runtime/{}@undefined) doesn't exist",
                    spec.label, spec.label
                )));
            }
            // A directory-backed ETCD volume can only go together with the volume it lives on.
            if spec.label == "ETCD"
                && self.inner.volumes.etcd_volume == EtcdVolume::Directory
                && !labels.contains(&"EPHEMERAL")
            {
                return Err(Status::unknown("volume \"ETCD\" is not located"));
            }
        }
        let whole_disk =
            request.system_partitions_to_wipe.is_empty() && mode != WipeMode::UserDisks;
        let wipe_ephemeral = whole_disk || labels.contains(&"EPHEMERAL");
        let wipe_etcd = whole_disk || labels.contains(&"ETCD");
        let wipe_state = whole_disk || labels.contains(&"STATE");
        let actor_id = new_boot_id();
        let node = self.clone();
        let actor = actor_id.clone();
        let reboot = request.reboot;
        let graceful = request.graceful;
        attempt.act();
        tokio::spawn(async move {
            let _guard = node.inner.lifecycle.lock().await;
            node.inner.services.publish_sequence("reset", true, &actor);
            node.inner.kmsg.talos("reset sequence started");
            if graceful && node.machine_type().is_some_and(|t| t.is_control_plane()) {
                // A graceful reset leaves etcd first, which needs a healthy cluster: without one
                // the sequence fails and the node stays as it is (why recovery uses graceful=false).
                if let Err(status) = node
                    .etcd_leave_cluster(machine::EtcdLeaveClusterRequest {})
                    .await
                {
                    node.inner.kmsg.talos(format!(
                        "reset failed: failed to leave etcd cluster: {}",
                        status.message()
                    ));
                    node.inner.services.publish_sequence("reset", false, &actor);
                    return;
                }
            }
            node.stop_services().await;
            let volumes = &node.inner.volumes;
            let mut targets = Vec::new();
            if wipe_ephemeral {
                targets.push(volumes.ephemeral());
            }
            if wipe_etcd && volumes.etcd_volume == EtcdVolume::Partition {
                targets.push(volumes.etcd_data());
            }
            if wipe_state {
                targets.push(volumes.state());
            }
            for target in targets {
                if let Err(error) = wipe_contents(&target) {
                    tracing::error!(node = %node.inner.hostname, path = %target.display(), %error, "wipe failed");
                }
            }
            node.inner.services.publish_sequence("reset", false, &actor);
            if reboot {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                node.boot(EtcdStart::Boot);
            } else {
                lock(&node.inner.state).powered_on = false;
            }
        });
        Ok(machine::ResetResponse {
            messages: vec![machine::Reset {
                metadata: None,
                actor_id,
            }],
        })
    }

    /// Stops services and boots again with a new boot id, picking up a staged config.
    pub async fn reboot(
        &self,
        _request: machine::RebootRequest,
    ) -> Result<machine::RebootResponse, Status> {
        let mut attempt = self.attempt(RecoveryCall::Reboot).await;
        attempt.act();
        Ok(self.start_reboot())
    }

    pub(super) fn start_reboot(&self) -> machine::RebootResponse {
        let actor_id = new_boot_id();
        let node = self.clone();
        let actor = actor_id.clone();
        tokio::spawn(async move {
            let _guard = node.inner.lifecycle.lock().await;
            node.inner.services.publish_sequence("reboot", true, &actor);
            node.inner.kmsg.talos("reboot sequence started");
            node.stop_services().await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            node.inner
                .services
                .publish_sequence("reboot", false, &actor);
            node.boot(EtcdStart::Boot);
        });
        machine::RebootResponse {
            messages: vec![machine::Reboot {
                metadata: None,
                actor_id,
            }],
        }
    }
}
