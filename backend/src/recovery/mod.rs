//! The staged recovery on the server: incidents and their plans in the database, the guard rails
//! re-checked on every action (`talos_dr_shared::recovery` rules), the executor that sends each
//! Talos call at most once, and what a restarted console learns from the nodes.
//!
//! - [`store`]: the tables; every step move is one transaction with its timeline line.
//! - [`actions`]: what people do (open, override, choose the snapshot, request, approve, run,
//!   resolve, note, close); [`api`] puts them on HTTP, [`stream`] and [`report`] read them.
//! - [`precheck`] and [`nodes`]: what the latest health says about the cluster and each target.
//! - [`executor`]: automatic steps and approved destructive steps, claim → call → sent → effect.
//! - [`evidence`]: on start, every open incident is resumed; a step found in flight is judged
//!   from the node, and a destructive call is never sent again on its own.
//! - [`feeders`]: health changes and new snapshots go into the timeline of an open incident.

pub mod actions;
pub mod api;
pub mod auto_steps;
pub mod candidates;
pub mod checks;
pub mod destructive;
pub mod errors;
pub mod evidence;
pub mod executor;
pub mod failpoints;
pub mod feeders;
pub mod kernel_log;
pub mod machine_config;
pub mod nodes;
pub mod precheck;
pub mod report;
pub mod resume;
mod rows;
pub mod step_actions;
pub mod store;
pub mod stream;
mod watchers;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::storage::{ChangeRelay, Replicas, Storage, Topic};
use talos_dr_shared::recovery::{ApprovalPolicy, IncidentView};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

pub use errors::RecoveryError;
pub use failpoints::{FailPoint, FailPointError, FailPoints};

use crate::presence::PresenceHub;
use store::{NewEvent, RecoveryStore, StoredStep};

/// Where the console reads the time: passed in, so tests can move it.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The wall clock, shifted by an offset tests can move forward.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset_ms: AtomicI64,
}

impl ShiftedClock {
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for ShiftedClock {
    fn now_ms(&self) -> i64 {
        crate::clock::now_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }
}

/// How recoveries run: the approval policy, how long waits may take, the crash-test stops.
#[derive(Debug, Clone)]
pub struct RecoverySettings {
    pub policy: ApprovalPolicy,
    /// How long a wait (etcd Preparing, healthy, a node coming back) may take before it fails.
    pub wait_deadline: Duration,
    /// After a restart: how long a step found `claimed` is watched for an effect before it is
    /// marked uncertain.
    pub resume_grace: Duration,
    pub failpoints: FailPoints,
    pub clock: Arc<dyn Clock>,
}

pub const DEFAULT_WAIT_DEADLINE: Duration = Duration::from_secs(10 * 60);
pub const DEFAULT_RESUME_GRACE: Duration = Duration::from_secs(30);

impl Default for RecoverySettings {
    fn default() -> Self {
        Self {
            policy: ApprovalPolicy::default(),
            wait_deadline: DEFAULT_WAIT_DEADLINE,
            resume_grace: DEFAULT_RESUME_GRACE,
            failpoints: FailPoints::default(),
            clock: Arc::new(ShiftedClock::default()),
        }
    }
}

/// The recovery side of the console state: the store, the change hub, who watches what, and
/// which steps this process is working on. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct RecoveryService {
    pub store: RecoveryStore,
    settings: RecoverySettings,
    /// Ids of incidents that changed; every stream of that incident sends a fresh view.
    changes: broadcast::Sender<String>,
    /// Tells the other replicas' streams too.
    relay: ChangeRelay,
    pub replicas: Replicas,
    watchers: Mutex<HashMap<String, PresenceHub>>,
    /// Names this console process in `claimed_by`.
    instance: String,
    busy: Mutex<HashSet<String>>,
    feeders: Mutex<HashMap<String, Vec<AbortHandle>>>,
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_id() -> String {
    random_hex(8)
}

impl RecoveryService {
    /// `instance` names this console process in `claimed_by` and among the replicas.
    pub fn new(storage: &Storage, settings: RecoverySettings, instance: String) -> Self {
        let (changes, _) = broadcast::channel(256);
        Self {
            store: RecoveryStore::new(storage.pool.clone()),
            settings,
            changes,
            relay: storage.relay(&instance),
            replicas: storage.replicas(&instance),
            watchers: Mutex::new(HashMap::new()),
            instance,
            busy: Mutex::new(HashSet::new()),
            feeders: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &RecoverySettings {
        &self.settings
    }

    pub fn policy(&self) -> ApprovalPolicy {
        self.settings.policy
    }

    pub fn now_ms(&self) -> i64 {
        self.settings.clock.now_ms()
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// What sends this process's changes to the other replicas.
    pub fn relay(&self) -> &ChangeRelay {
        &self.relay
    }

    /// Tells every stream of the incident, on every replica, to send a fresh view.
    pub fn notify(&self, incident_id: &str) {
        self.notify_here(incident_id);
        self.relay.publish(Topic::Incident, incident_id);
    }

    /// Tells this process's streams of every incident (the link to the other replicas was lost
    /// and found again: anything may have changed).
    pub fn notify_all_here(&self) {
        let ids: Vec<String> = {
            let map = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
            map.keys().cloned().collect()
        };
        for id in ids {
            self.notify_here(&id);
        }
    }

    /// Tells this process's streams only (a change another replica made).
    pub fn notify_here(&self, incident_id: &str) {
        let _ = self.changes.send(incident_id.to_string());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    pub fn watchers(&self, incident_id: &str) -> PresenceHub {
        let mut map = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hub) = map.get(incident_id) {
            return hub.clone();
        }
        let hub = PresenceHub::default();
        map.insert(incident_id.to_string(), hub.clone());
        if self.replicas.shared() {
            watchers::share(
                self.store.pool().clone(),
                self.relay.clone(),
                self.instance.clone(),
                incident_id.to_string(),
                hub.clone(),
            );
        }
        hub
    }

    /// Everyone watching the incident: through this process, and on PostgreSQL through the
    /// other live replicas.
    async fn all_watchers(&self, incident_id: &str) -> Vec<String> {
        let mut names = self.watchers(incident_id).usernames();
        if self.replicas.shared() {
            match watchers::elsewhere(self.store.pool(), &self.instance, incident_id).await {
                Ok(more) => names.extend(more),
                Err(e) => {
                    tracing::warn!(incident = incident_id, error = %e, "cannot read who watches through the other replicas")
                }
            }
            names.sort();
            names.dedup();
        }
        names
    }

    /// Marks a step as worked on by this process; false when it already is.
    pub fn take_step(&self, step_id: &str) -> bool {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.insert(step_id.to_string())
    }

    pub fn release_step(&self, step_id: &str) {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.remove(step_id);
    }

    pub fn add_feeder(&self, incident_id: &str, handle: AbortHandle) {
        let mut feeders = self.feeders.lock().unwrap_or_else(|e| e.into_inner());
        feeders
            .entry(incident_id.to_string())
            .or_default()
            .push(handle);
    }

    pub fn has_feeders(&self, incident_id: &str) -> bool {
        let feeders = self.feeders.lock().unwrap_or_else(|e| e.into_inner());
        feeders.contains_key(incident_id)
    }

    /// Stops the timeline feeders of a closed incident.
    pub fn stop_feeders(&self, incident_id: &str) {
        let mut feeders = self.feeders.lock().unwrap_or_else(|e| e.into_inner());
        for handle in feeders.remove(incident_id).unwrap_or_default() {
            handle.abort();
        }
    }

    /// The whole incident as the browser sees it.
    pub async fn view(&self, incident_id: &str) -> Result<IncidentView, RecoveryError> {
        let (incident, steps, timeline) = self
            .store
            .snapshot(incident_id)
            .await?
            .ok_or_else(|| RecoveryError::NotFound(incident_id.to_string()))?;
        Ok(IncidentView {
            incident,
            steps: steps.into_iter().map(|s| s.step).collect(),
            timeline,
            watchers: self.all_watchers(incident_id).await,
        })
    }

    pub async fn stored_steps(&self, incident_id: &str) -> Result<Vec<StoredStep>, RecoveryError> {
        Ok(self.store.steps(incident_id).await?)
    }

    /// A timeline line on its own; failures are logged (the line is information, not state).
    pub async fn log_event(&self, incident_id: &str, event: NewEvent) {
        match self.store.append(incident_id, &event).await {
            Ok(()) => self.notify(incident_id),
            Err(e) => {
                tracing::error!(incident = incident_id, error = %e, "cannot write a timeline line")
            }
        }
    }
}
