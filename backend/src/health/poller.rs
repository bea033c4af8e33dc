//! The health poller: every interval, all control-plane nodes at once, every call with a timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use talos_dr_shared::{CallFailure, ClusterHealth, EtcdMember, NodeHealth, VerdictLevel};
use tokio::time::MissedTickBehavior;

use super::hub::{HealthHub, HealthPublisher, health_channel};
use crate::talos::{TalosApi, TalosError};

/// What one cluster's poller needs to know.
#[derive(Debug, Clone)]
pub struct PollSettings {
    pub cluster: String,
    /// Control-plane nodes as the Talos API targets them (IP or name, no port).
    pub nodes: Vec<String>,
    pub interval: Duration,
    pub call_timeout: Duration,
}

/// Starts polling in the background and returns the hub it publishes to. The poller stops on its
/// own once the hub and every subscriber are dropped. Needs a running tokio runtime.
pub fn spawn_poller(settings: PollSettings, talos: Arc<dyn TalosApi>) -> HealthHub {
    let (publisher, hub) = health_channel();
    tokio::spawn(run(settings, talos, publisher));
    hub
}

async fn run(settings: PollSettings, talos: Arc<dyn TalosApi>, publisher: HealthPublisher) {
    let mut remembered: Vec<EtcdMember> = Vec::new();
    let mut last_level: Option<VerdictLevel> = None;
    let mut ticker = tokio::time::interval(settings.interval);
    // A slow poll delays the next one rather than firing a burst to catch up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = publisher.unwatched() => break,
            _ = ticker.tick() => {}
        }
        let health = tokio::select! {
            () = publisher.unwatched() => break,
            health = poll_cluster(&settings, talos.as_ref(), &remembered) => health,
        };
        if health.verdict.quorum.holds() {
            remembered = health.members.iter().map(|m| m.member.clone()).collect();
        }
        if last_level != Some(health.verdict.level) {
            if health.verdict.level == VerdictLevel::Healthy {
                tracing::info!(cluster = %settings.cluster, summary = %health.verdict.summary, "cluster health changed");
            } else {
                tracing::warn!(cluster = %settings.cluster, summary = %health.verdict.summary, reasons = ?health.verdict.reasons, "cluster health changed");
            }
            last_level = Some(health.verdict.level);
        }
        publisher.publish(health);
    }
    tracing::debug!(cluster = %settings.cluster, "health poller stopped: nobody is watching");
}

/// One poll of the whole cluster: every node at once, then the shared verdict.
/// `remembered` is the member list last seen while quorum held.
pub async fn poll_cluster(
    settings: &PollSettings,
    talos: &dyn TalosApi,
    remembered: &[EtcdMember],
) -> ClusterHealth {
    let polls = settings
        .nodes
        .iter()
        .map(|node| poll_node(talos, node, settings.call_timeout));
    let nodes = futures::future::join_all(polls).await;
    ClusterHealth::build(settings.cluster.clone(), now_ms(), nodes, remembered)
}

/// Everything the console asks one node, all calls at once, each bounded by `timeout`.
pub async fn poll_node(talos: &dyn TalosApi, node: &str, timeout: Duration) -> NodeHealth {
    let started = Instant::now();
    let polled_at_ms = now_ms();
    let (version, machine_type, service, members, status, alarms) = tokio::join!(
        bounded(timeout, talos.version(node)),
        bounded(timeout, talos.machine_type(node)),
        bounded(timeout, talos.etcd_service(node)),
        bounded(timeout, talos.etcd_members(node)),
        bounded(timeout, talos.etcd_status(node)),
        bounded(timeout, talos.etcd_alarms(node)),
    );
    let mut outcome = Outcome {
        node,
        answered: false,
        failures: Vec::new(),
    };
    let talos_version = outcome.take("Version", version);
    let machine_type = outcome.take("MachineType", machine_type);
    let etcd_service = match outcome.take("ServiceList", service) {
        Some(Some(service)) => Some(service),
        Some(None) => {
            outcome.failures.push(CallFailure {
                call: "ServiceList".into(),
                message: "no etcd service on this node".into(),
            });
            None
        }
        None => None,
    };
    let members = outcome.take("EtcdMemberList", members);
    let etcd_status = outcome.take("EtcdStatus", status);
    let alarms = outcome.take("EtcdAlarmList", alarms).unwrap_or_default();
    NodeHealth {
        node: node.to_string(),
        reachable: outcome.answered,
        talos_version,
        machine_type,
        etcd_service,
        members,
        etcd_status,
        alarms,
        failures: outcome.failures,
        polled_at_ms,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

struct Outcome<'a> {
    node: &'a str,
    /// Whether any call got an answer from the node's Talos API, good or bad.
    answered: bool,
    failures: Vec<CallFailure>,
}

impl Outcome<'_> {
    fn take<T>(&mut self, call: &str, result: Result<T, TalosError>) -> Option<T> {
        match result {
            Ok(value) => {
                self.answered = true;
                Some(value)
            }
            Err(e) => {
                self.answered |= e.node_answered();
                tracing::debug!(node = %self.node, call, error = %e, "Talos call failed");
                self.failures.push(CallFailure {
                    call: call.to_string(),
                    message: e.to_string(),
                });
                None
            }
        }
    }
}

async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, TalosError>>,
) -> Result<T, TalosError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(TalosError::Timeout))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
