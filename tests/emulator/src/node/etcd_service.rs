//! The etcd service of a control-plane node: pre stage (join, bootstrap, recover), the running
//! etcd process with Talos' restart wrapper, health checks and learner promotion.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::etcd_process::{self, ClusterFlags};
use super::machine_config::MachineType;
use super::service::ServiceState;
use super::volumes::dir_is_empty;
use super::{ETCD, NodeInner, recover};

const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
const HEALTH_TIMEOUT: Duration = Duration::from_millis(1500);
/// Talos repeats the "waiting to join" notice every 30 s; shorter here.
const JOIN_NOTICE_INTERVAL: Duration = Duration::from_secs(3);
const JOIN_POLL: Duration = Duration::from_millis(300);
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Why the etcd service is being started.
#[derive(Debug, Clone)]
pub enum EtcdStart {
    /// A normal boot: existing data is used; an empty data dir waits to join (or, on an
    /// `init` node, creates a new cluster).
    Boot,
    /// Forming a brand-new cluster with a static member list (`name=url,...`).
    InitialCluster(String),
    /// Started by the Bootstrap API.
    Bootstrap {
        recover: bool,
        skip_hash_check: bool,
    },
}

struct Prepared {
    flags: ClusterFlags,
    /// Member id to promote once this member, added as a learner, has caught up.
    learner: Option<u64>,
}

pub async fn run(node: Arc<NodeInner>, start: EtcdStart, mut stop: watch::Receiver<bool>) {
    let services = &node.services;
    services.set_state(ETCD, ServiceState::Starting, "Starting service");
    services.set_state(
        ETCD,
        ServiceState::Waiting,
        "Waiting for service \"cri\" to be \"up\", time sync, network, etcd spec",
    );
    if sleep_or_stop(&mut stop, Duration::from_millis(100)).await {
        return;
    }
    services.set_state(ETCD, ServiceState::Preparing, "Running pre state");
    let prepared = tokio::select! {
        prepared = pre_stage(&node, start) => prepared,
        () = stopped(&mut stop) => return,
    };
    let mut prepared = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            // Talos does not retry a failed pre stage.
            services.set_state(
                ETCD,
                ServiceState::Failed,
                format!("Failed to run pre stage: {error}"),
            );
            return;
        }
    };
    services.set_state(ETCD, ServiceState::Preparing, "Creating service runner");
    run_process(&node, &mut prepared, &mut stop).await;
}

async fn pre_stage(node: &Arc<NodeInner>, start: EtcdStart) -> Result<Prepared, String> {
    let data_dir = node.volumes.etcd_data();
    let single = |node: &NodeInner| Prepared {
        flags: ClusterFlags::Initial {
            cluster: format!("{}={}", node.hostname, node.peer_url()),
            existing: false,
        },
        learner: None,
    };
    if !dir_is_empty(&data_dir) {
        return Ok(Prepared {
            flags: ClusterFlags::FromDataDir,
            learner: None,
        });
    }
    let is_init = node.machine_type() == Some(MachineType::Init);
    match start {
        EtcdStart::InitialCluster(cluster) => Ok(Prepared {
            flags: ClusterFlags::Initial {
                cluster,
                existing: false,
            },
            learner: None,
        }),
        // An init node never looks at the bootstrap/recover flags: it always creates a new cluster.
        _ if is_init => Ok(single(node)),
        EtcdStart::Bootstrap {
            recover: true,
            skip_hash_check,
        } => {
            recover::restore_snapshot(node, skip_hash_check).await?;
            Ok(Prepared {
                flags: ClusterFlags::FromDataDir,
                learner: None,
            })
        }
        EtcdStart::Bootstrap { recover: false, .. } => Ok(single(node)),
        EtcdStart::Boot => Ok(join_cluster(node).await),
    }
}

/// Waits (in Preparing) until another control-plane member is healthy, then joins as a learner.
async fn join_cluster(node: &Arc<NodeInner>) -> Prepared {
    let mut last_notice: Option<tokio::time::Instant> = None;
    loop {
        if last_notice.is_none_or(|at| at.elapsed() >= JOIN_NOTICE_INTERVAL) {
            node.kmsg.talos(
                "etcd is waiting to join the cluster, if this node is the first node in the cluster, please run `talosctl bootstrap` against one of the following IPs:",
            );
            node.kmsg.talos(format!("[{}]", node.ip));
            last_notice = Some(tokio::time::Instant::now());
        }
        for peer in node.healthy_peers() {
            match add_as_learner(node, &peer).await {
                Ok(prepared) => return prepared,
                Err(error) => {
                    tracing::debug!(node = %node.hostname, peer = %peer.hostname, %error, "joining etcd failed, retrying")
                }
            }
        }
        tokio::time::sleep(JOIN_POLL).await;
    }
}

async fn add_as_learner(node: &NodeInner, peer: &NodeInner) -> Result<Prepared, tonic::Status> {
    let client = &peer.local_etcd;
    let peer_url = node.peer_url();
    // A stale member of this node (same name or URL) would clash with the new one: Talos removes it.
    for member in client.member_list().await?.members {
        if member.name == node.hostname || member.peer_ur_ls.contains(&peer_url) {
            client.member_remove(member.id).await?;
            node.kmsg.talos(format!(
                "removed stale etcd member {:016x} of this node",
                member.id
            ));
        }
    }
    let added = client.member_add_learner(&peer_url).await?;
    let own_id = added.member.as_ref().map(|m| m.id).unwrap_or_default();
    let mut cluster = Vec::new();
    for member in &added.members {
        let name = if member.id == own_id {
            node.hostname.clone()
        } else if member.name.is_empty() {
            format!("member-{:016x}", member.id)
        } else {
            member.name.clone()
        };
        for url in &member.peer_ur_ls {
            cluster.push(format!("{name}={url}"));
        }
    }
    node.kmsg.talos(format!(
        "added etcd member {own_id:016x} as a learner through {}",
        peer.hostname
    ));
    Ok(Prepared {
        flags: ClusterFlags::Initial {
            cluster: cluster.join(","),
            existing: true,
        },
        learner: Some(own_id),
    })
}

enum Outcome {
    Exited(std::io::Result<std::process::ExitStatus>),
    Stop,
}

/// Runs etcd with Talos' "restart forever" wrapper until the service is stopped.
async fn run_process(
    node: &Arc<NodeInner>,
    prepared: &mut Prepared,
    stop: &mut watch::Receiver<bool>,
) {
    let services = &node.services;
    loop {
        while node.etcd_held_down() {
            tokio::select! {
                () = node.etcd_release.notified() => {}
                () = stopped(stop) => return,
            }
        }
        let mut child = match etcd_process::spawn(node, &prepared.flags) {
            Ok(child) => child,
            Err(error) => {
                services.set_state(
                    ETCD,
                    ServiceState::Failed,
                    format!("Failed to create task: {error}"),
                );
                return;
            }
        };
        let pid = child.id().unwrap_or_default();
        node.set_etcd_pid(Some(pid));
        services.set_state(
            ETCD,
            ServiceState::Running,
            format!("Started task etcd (PID {pid}) for container etcd"),
        );
        let outcome = tokio::select! {
            status = child.wait() => Outcome::Exited(status),
            () = health_checks(node) => Outcome::Stop,
            () = promote_learner(node, &mut prepared.learner) => Outcome::Stop,
            () = stopped(stop) => Outcome::Stop,
        };
        match outcome {
            Outcome::Stop => {
                services.set_state(
                    ETCD,
                    ServiceState::Stopping,
                    format!("Sending SIGTERM to task etcd (PID {pid}, container etcd)"),
                );
                etcd_process::stop(&mut child).await;
                node.set_etcd_pid(None);
                return;
            }
            Outcome::Exited(status) => {
                // Restarts use the data the first start wrote. A start that died before writing
                // its WAL (e.g. it could not reach its peers) must be retried with the same
                // cluster flags: etcd creates `member/snap` before it fails, so only the WAL counts.
                if !dir_is_empty(&node.volumes.etcd_data().join("member/wal")) {
                    prepared.flags = ClusterFlags::FromDataDir;
                }
                let text = match status {
                    Ok(status) => etcd_process::exit_text(status),
                    Err(error) => error.to_string(),
                };
                services.set_state(
                    ETCD,
                    ServiceState::Waiting,
                    format!("Error running Containerd(etcd), going to restart forever: task \"etcd\" failed: {text}"),
                );
                // Cleared after the state, so whoever waits for the pid to go sees Waiting too.
                node.set_etcd_pid(None);
                if !node.etcd_held_down() && sleep_or_stop(stop, RESTART_DELAY).await {
                    return;
                }
            }
        }
    }
}

/// Talos' etcd health check: a quorum read of key `health` through the local member.
async fn health_checks(node: &NodeInner) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    loop {
        let pause = match node.local_etcd.quorum_read_health(HEALTH_TIMEOUT).await {
            Ok(()) => {
                node.services.set_health(ETCD, true, "");
                HEALTH_INTERVAL
            }
            Err(status) => {
                // Talos reports Go's context error for a check that ran out of time.
                let message = if status.code() == tonic::Code::DeadlineExceeded
                    || status.message().contains("Timeout expired")
                {
                    "context deadline exceeded"
                } else {
                    status.message()
                };
                node.services.set_health(ETCD, false, message);
                // Retry sooner while unhealthy so recovery shows up quickly.
                HEALTH_INTERVAL / 4
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// Promotes this member once it has caught up with the leader, then idles.
async fn promote_learner(node: &NodeInner, learner: &mut Option<u64>) {
    if let Some(id) = *learner {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut promoted = false;
            for peer in node.healthy_peers() {
                match peer.local_etcd.member_promote(id).await {
                    Ok(_) => {
                        promoted = true;
                        break;
                    }
                    Err(status) if status.message().contains("not a learner") => {
                        promoted = true;
                        break;
                    }
                    Err(status) => {
                        tracing::debug!(node = %node.hostname, error = %status.message(), "promotion not possible yet")
                    }
                }
            }
            if promoted {
                node.kmsg
                    .talos(format!("promoted etcd member {id:016x} to a voting member"));
                *learner = None;
                break;
            }
        }
    }
    std::future::pending::<()>().await;
}

/// Resolves once a stop was requested (or the requester is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// True when the stop came first.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => false,
        () = stopped(stop) => true,
    }
}
