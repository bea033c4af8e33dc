//! Talos service records: state, the last 64 events and health, as ServiceList shows them,
//! plus the machine event bus (`Events` RPC) the state changes are published on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use prost::Message;
use talos_api::machine;
use tokio::sync::broadcast;

use super::clock::timestamp;
use super::kmsg::KernelLog;
use super::lock;

/// `MaxEventsToKeep` in Talos.
const MAX_EVENTS_TO_KEEP: usize = 64;
const MACHINE_EVENTS_TO_KEEP: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    Initialized,
    Preparing,
    Waiting,
    Running,
    Stopping,
    Finished,
    Failed,
    #[expect(
        dead_code,
        reason = "part of Talos' state set; no emulated service is skipped"
    )]
    Skipped,
    Starting,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initialized => "Initialized",
            Self::Preparing => "Preparing",
            Self::Waiting => "Waiting",
            Self::Running => "Running",
            Self::Stopping => "Stopping",
            Self::Finished => "Finished",
            Self::Failed => "Failed",
            Self::Skipped => "Skipped",
            Self::Starting => "Starting",
        }
    }

    fn action(self) -> machine::service_state_event::Action {
        use machine::service_state_event::Action;
        match self {
            Self::Initialized => Action::Initialized,
            Self::Preparing => Action::Preparing,
            Self::Waiting => Action::Waiting,
            Self::Running => Action::Running,
            Self::Stopping => Action::Stopping,
            Self::Finished => Action::Finished,
            Self::Failed => Action::Failed,
            Self::Skipped => Action::Skipped,
            Self::Starting => Action::Starting,
        }
    }
}

#[derive(Debug, Clone)]
struct ServiceEvent {
    message: String,
    state: ServiceState,
    at: SystemTime,
}

#[derive(Debug, Clone, Default)]
struct Health {
    /// None until the first check ran.
    healthy: Option<bool>,
    last_message: String,
    last_change: Option<SystemTime>,
}

#[derive(Debug, Clone)]
pub struct ServiceRecord {
    id: String,
    state: ServiceState,
    events: VecDeque<ServiceEvent>,
    health: Health,
}

impl ServiceRecord {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            state: ServiceState::Initialized,
            events: VecDeque::new(),
            health: Health::default(),
        }
    }

    fn to_info(&self) -> machine::ServiceInfo {
        machine::ServiceInfo {
            id: self.id.clone(),
            state: self.state.as_str().to_string(),
            events: Some(machine::ServiceEvents {
                events: self
                    .events
                    .iter()
                    .map(|e| machine::ServiceEvent {
                        msg: e.message.clone(),
                        state: e.state.as_str().to_string(),
                        ts: Some(timestamp(e.at)),
                    })
                    .collect(),
            }),
            health: Some(self.health_proto()),
        }
    }

    fn health_proto(&self) -> machine::ServiceHealth {
        machine::ServiceHealth {
            unknown: self.health.healthy.is_none(),
            healthy: self.health.healthy.unwrap_or(false),
            last_message: self.health.last_message.clone(),
            last_change: self.health.last_change.map(timestamp),
        }
    }
}

/// Every service of one boot of the node, and the machine event stream.
pub struct Services {
    /// machined logs every service transition to the kernel log (`[talos] service[id](State): msg`).
    kmsg: Arc<KernelLog>,
    records: Mutex<Vec<ServiceRecord>>,
    events: Mutex<VecDeque<machine::Event>>,
    live: broadcast::Sender<machine::Event>,
    next_event: Mutex<u64>,
}

impl Services {
    pub fn new(kmsg: Arc<KernelLog>) -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            kmsg,
            records: Mutex::new(Vec::new()),
            events: Mutex::new(VecDeque::new()),
            live,
            next_event: Mutex::new(0),
        }
    }

    /// A boot registers services afresh: old events are gone.
    pub fn reset(&self) {
        lock(&self.records).clear();
    }

    pub fn register(&self, id: &str) {
        let mut records = lock(&self.records);
        records.retain(|r| r.id != id);
        records.push(ServiceRecord::new(id));
        records.sort_by(|a, b| a.id.cmp(&b.id));
    }

    pub fn set_state(&self, id: &str, state: ServiceState, message: impl Into<String>) {
        let message = message.into();
        let health = {
            let mut records = lock(&self.records);
            let Some(record) = records.iter_mut().find(|r| r.id == id) else {
                return;
            };
            record.state = state;
            if !matches!(state, ServiceState::Running) {
                // Talos drops the health status whenever the service leaves Running.
                record.health = Health::default();
            }
            record.events.push_back(ServiceEvent {
                message: message.clone(),
                state,
                at: SystemTime::now(),
            });
            while record.events.len() > MAX_EVENTS_TO_KEEP {
                record.events.pop_front();
            }
            record.health_proto()
        };
        tracing::debug!(service = id, state = state.as_str(), %message, "service state");
        self.publish_service_event(id, state, message, health);
    }

    /// Health results only make an event when health flips, like Talos.
    pub fn set_health(&self, id: &str, healthy: bool, message: &str) {
        let changed = {
            let mut records = lock(&self.records);
            let Some(record) = records.iter_mut().find(|r| r.id == id) else {
                return;
            };
            if record.state != ServiceState::Running {
                return;
            }
            let flipped = record.health.healthy != Some(healthy);
            record.health.last_message = message.to_string();
            if flipped {
                record.health.healthy = Some(healthy);
                record.health.last_change = Some(SystemTime::now());
                let text = if healthy {
                    "Health check successful".to_string()
                } else {
                    format!("Health check failed: {message}")
                };
                record.events.push_back(ServiceEvent {
                    message: text.clone(),
                    state: ServiceState::Running,
                    at: SystemTime::now(),
                });
                while record.events.len() > MAX_EVENTS_TO_KEEP {
                    record.events.pop_front();
                }
                Some((text, record.health_proto()))
            } else {
                None
            }
        };
        if let Some((text, health)) = changed {
            self.publish_service_event(id, ServiceState::Running, text, health);
        }
    }

    pub fn state(&self, id: &str) -> Option<ServiceState> {
        lock(&self.records)
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.state)
    }

    pub fn is_healthy(&self, id: &str) -> bool {
        lock(&self.records).iter().any(|r| {
            r.id == id && r.state == ServiceState::Running && r.health.healthy == Some(true)
        })
    }

    pub fn list(&self) -> Vec<machine::ServiceInfo> {
        lock(&self.records)
            .iter()
            .map(ServiceRecord::to_info)
            .collect()
    }

    fn publish_service_event(
        &self,
        id: &str,
        state: ServiceState,
        message: String,
        health: machine::ServiceHealth,
    ) {
        self.kmsg
            .talos(format!("service[{id}]({}): {message}", state.as_str()));
        let payload = machine::ServiceStateEvent {
            service: id.to_string(),
            action: state.action() as i32,
            message,
            health: Some(health),
        };
        self.publish("machine.ServiceStateEvent", payload.encode_to_vec(), "");
    }

    pub fn publish_sequence(&self, sequence: &str, start: bool, actor_id: &str) {
        use machine::sequence_event::Action;
        let payload = machine::SequenceEvent {
            sequence: sequence.to_string(),
            action: if start { Action::Start } else { Action::Stop } as i32,
            error: None,
        };
        self.publish("machine.SequenceEvent", payload.encode_to_vec(), actor_id);
    }

    fn publish(&self, message_name: &str, value: Vec<u8>, actor_id: &str) {
        let id = {
            let mut next = lock(&self.next_event);
            *next += 1;
            // Talos event ids are xids (sortable); a zero-padded counter sorts the same way.
            format!("{:020}", *next)
        };
        let event = machine::Event {
            metadata: None,
            data: Some(prost_types::Any {
                type_url: format!("talos/runtime/{message_name}"),
                value,
            }),
            id,
            actor_id: actor_id.to_string(),
        };
        {
            let mut events = lock(&self.events);
            events.push_back(event.clone());
            while events.len() > MACHINE_EVENTS_TO_KEEP {
                events.pop_front();
            }
        }
        let _ = self.live.send(event);
    }

    /// Past events chosen by the request's tail options, plus a live receiver.
    pub fn open_events(
        &self,
        tail_events: i32,
        tail_id: &str,
    ) -> (Vec<machine::Event>, broadcast::Receiver<machine::Event>) {
        let events = lock(&self.events);
        let history: Vec<machine::Event> = if !tail_id.is_empty() {
            events
                .iter()
                .filter(|e| e.id.as_str() > tail_id)
                .cloned()
                .collect()
        } else if tail_events < 0 {
            events.iter().cloned().collect()
        } else {
            let n = tail_events as usize;
            events
                .iter()
                .skip(events.len().saturating_sub(n))
                .cloned()
                .collect()
        };
        (history, self.live.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_64_events_oldest_first_and_logs_transitions() {
        let kmsg = Arc::new(KernelLog::new());
        let services = Services::new(kmsg.clone());
        services.register("etcd");
        for i in 0..70 {
            services.set_state("etcd", ServiceState::Waiting, format!("event {i}"));
        }
        let info = services.list().remove(0);
        let events = info.events.expect("events").events;
        assert_eq!(events.len(), 64);
        assert_eq!(events[0].msg, "event 6");
        assert_eq!(events[63].msg, "event 69");
        assert!(
            kmsg.lines()
                .iter()
                .any(|l| l == "[talos] service[etcd](Waiting): event 69")
        );
    }

    #[test]
    fn health_is_unknown_until_checked_and_events_only_on_flips() {
        let services = Services::new(Arc::new(KernelLog::new()));
        services.register("etcd");
        services.set_state(
            "etcd",
            ServiceState::Running,
            "Started task etcd (PID 1) for container etcd",
        );
        assert!(
            services.list()[0]
                .health
                .as_ref()
                .is_some_and(|h| h.unknown)
        );
        services.set_health("etcd", true, "");
        services.set_health("etcd", true, "");
        services.set_health("etcd", false, "context deadline exceeded");
        let info = services.list().remove(0);
        let messages: Vec<String> = info
            .events
            .expect("events")
            .events
            .into_iter()
            .map(|e| e.msg)
            .collect();
        assert_eq!(
            messages[1..],
            [
                "Health check successful".to_string(),
                "Health check failed: context deadline exceeded".to_string()
            ]
        );
        assert!(!services.is_healthy("etcd"));
        // Leaving Running drops the health status.
        services.set_state("etcd", ServiceState::Waiting, "Error running");
        assert!(
            services.list()[0]
                .health
                .as_ref()
                .is_some_and(|h| h.unknown)
        );
    }

    #[test]
    fn events_tail_and_follow() {
        let services = Services::new(Arc::new(KernelLog::new()));
        services.register("etcd");
        services.set_state("etcd", ServiceState::Starting, "Starting service");
        services.set_state("etcd", ServiceState::Preparing, "Running pre state");
        let (all, _) = services.open_events(-1, "");
        assert_eq!(all.len(), 2);
        let (last, _) = services.open_events(1, "");
        assert_eq!(last.len(), 1);
        let (after, _) = services.open_events(0, &all[0].id);
        assert_eq!(after.len(), 1);
        let payload = machine::ServiceStateEvent::decode(
            last[0].data.as_ref().expect("data").value.as_slice(),
        )
        .expect("decode");
        assert_eq!(
            payload.action,
            machine::service_state_event::Action::Preparing as i32
        );
    }
}
