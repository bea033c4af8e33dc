//! Snapshot transfers in flight (take, raw copy, upload): who started them, from which node,
//! how many bytes are in and how many are expected. Every browser on a cluster's snapshots page
//! sees them through `GET /api/clusters/{cluster}/snapshots/transfers/stream`.
//!
//! The byte count is an atomic the ingest loop bumps per chunk; watchers are told at most every
//! [`NOTIFY_EVERY`] (and at every phase change), so a 1 KiB-message stream does not wake every
//! open page a million times.
//!
//! On PostgreSQL every replica also shows the transfers the others run ([`elsewhere`]), so a
//! browser sees the progress bar whichever replica serves it.

mod elsewhere;

pub use elsewhere::{TransfersNoteError, share};

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use talos_dr_shared::snapshots::{
    SnapshotEntryKind, SnapshotTransfer, SnapshotTransfers, TransferPhase,
};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use crate::auth::CurrentUser;
use crate::clock::now_ms;
use crate::error::ApiResult;
use crate::state::AppState;

/// The most often watchers hear about growing byte counts.
pub const NOTIFY_EVERY: Duration = Duration::from_millis(200);

/// How often an idle stream gets a comment line, so proxies keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One transfer's fixed facts plus its live byte count.
#[derive(Debug)]
struct Running {
    cluster: String,
    transfer: SnapshotTransfer,
    received: AtomicU64,
    verifying: AtomicBool,
}

#[derive(Debug, Default)]
struct Registry {
    running: Vec<Arc<Running>>,
    finished: HashMap<String, u64>,
    /// What the other replicas last said they run, by (replica, cluster).
    elsewhere: HashMap<(String, String), elsewhere::Heard>,
}

/// Every transfer in flight, for all clusters.
#[derive(Debug)]
pub struct SnapshotTransfersHub {
    registry: Mutex<Registry>,
    /// Bumped on every change worth telling; watchers rebuild their cluster's view.
    changed: watch::Sender<u64>,
    /// Tells the other console replicas that a cluster's history changed.
    relay: std::sync::OnceLock<crate::storage::ChangeRelay>,
}

impl Default for SnapshotTransfersHub {
    fn default() -> Self {
        Self {
            registry: Mutex::new(Registry::default()),
            changed: watch::Sender::new(0),
            relay: std::sync::OnceLock::new(),
        }
    }
}

/// What is known when a transfer starts.
#[derive(Debug, Clone)]
pub struct TransferStart {
    pub cluster: String,
    pub id: String,
    pub kind: SnapshotEntryKind,
    pub node: Option<String>,
    pub started_by: String,
    pub expected_bytes: Option<u64>,
}

impl SnapshotTransfersHub {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Registers a transfer; it is listed until the returned guard is dropped.
    pub fn start(&self, start: TransferStart) -> TransferGuard<'_> {
        let running = Arc::new(Running {
            cluster: start.cluster,
            transfer: SnapshotTransfer {
                id: start.id,
                kind: start.kind,
                node: start.node,
                started_by: start.started_by,
                started_at_ms: now_ms(),
                received_bytes: 0,
                expected_bytes: start.expected_bytes,
                phase: TransferPhase::Receiving,
            },
            received: AtomicU64::new(0),
            verifying: AtomicBool::new(false),
        });
        self.registry().running.push(running.clone());
        self.notify();
        TransferGuard {
            hub: self,
            running,
            last_told: Instant::now(),
        }
    }

    /// The cluster's transfers as of now, this replica's and the others'.
    pub fn view(&self, cluster: &str) -> SnapshotTransfers {
        let registry = self.registry();
        let mut in_flight = local(&registry, cluster);
        in_flight.extend(elsewhere::live(&registry, cluster));
        in_flight.sort_by_key(|t| t.started_at_ms);
        SnapshotTransfers {
            cluster: cluster.to_string(),
            in_flight,
            finished: registry.finished.get(cluster).copied().unwrap_or(0),
        }
    }

    /// This replica's own transfers, by cluster (what it tells the others).
    fn local_by_cluster(&self) -> HashMap<String, Vec<SnapshotTransfer>> {
        let registry = self.registry();
        let mut by_cluster: HashMap<String, Vec<SnapshotTransfer>> = HashMap::new();
        for r in &registry.running {
            by_cluster
                .entry(r.cluster.clone())
                .or_default()
                .push(snapshot_of(r));
        }
        by_cluster
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Ended transfers are also told to the other replicas through `relay`.
    pub fn relay_to(&self, relay: crate::storage::ChangeRelay) {
        let _ = self.relay.set(relay);
    }

    /// A transfer of `cluster` ended on another replica: this one's watchers refetch the history.
    pub fn finished_elsewhere(&self, cluster: &str) {
        *self
            .registry()
            .finished
            .entry(cluster.to_string())
            .or_default() += 1;
        self.notify();
    }

    /// After the link to the other replicas was lost: every cluster's history may have changed.
    pub fn finished_elsewhere_all(&self) {
        for count in self.registry().finished.values_mut() {
            *count += 1;
        }
        self.notify();
    }
}

fn snapshot_of(r: &Running) -> SnapshotTransfer {
    SnapshotTransfer {
        received_bytes: r.received.load(Ordering::Relaxed),
        phase: if r.verifying.load(Ordering::Relaxed) {
            TransferPhase::Verifying
        } else {
            TransferPhase::Receiving
        },
        ..r.transfer.clone()
    }
}

fn local(registry: &Registry, cluster: &str) -> Vec<SnapshotTransfer> {
    registry
        .running
        .iter()
        .filter(|r| r.cluster == cluster)
        .map(|r| snapshot_of(r))
        .collect()
}

/// A transfer in flight: tell it the bytes received; dropping it ends the transfer (the history
/// row must already be written, so a watcher that refetches finds it).
#[derive(Debug)]
pub struct TransferGuard<'a> {
    hub: &'a SnapshotTransfersHub,
    running: Arc<Running>,
    last_told: Instant,
}

impl TransferGuard<'_> {
    pub fn id(&self) -> &str {
        &self.running.transfer.id
    }
}

/// What ingest reports while it works.
pub trait IngestProgress {
    /// `total` bytes have arrived so far.
    fn received(&mut self, total: u64);
    /// Every byte is in; the file is being checked.
    fn verifying(&mut self, total: u64);
}

/// For ingests nobody watches (tests, the inspector's own tools).
pub struct Unwatched;

impl IngestProgress for Unwatched {
    fn received(&mut self, _total: u64) {}
    fn verifying(&mut self, _total: u64) {}
}

impl IngestProgress for TransferGuard<'_> {
    fn received(&mut self, total: u64) {
        self.running.received.store(total, Ordering::Relaxed);
        if self.last_told.elapsed() >= NOTIFY_EVERY {
            self.last_told = Instant::now();
            self.hub.notify();
        }
    }

    fn verifying(&mut self, total: u64) {
        self.running.received.store(total, Ordering::Relaxed);
        self.running.verifying.store(true, Ordering::Relaxed);
        self.last_told = Instant::now();
        self.hub.notify();
    }
}

impl Drop for TransferGuard<'_> {
    fn drop(&mut self) {
        {
            let mut registry = self.hub.registry();
            registry.running.retain(|r| !Arc::ptr_eq(r, &self.running));
            *registry
                .finished
                .entry(self.running.cluster.clone())
                .or_default() += 1;
        }
        self.hub.notify();
        if let Some(relay) = self.hub.relay.get() {
            relay.publish(
                crate::storage::Topic::SnapshotHistory,
                &self.running.cluster,
            );
        }
    }
}

/// `GET /api/clusters/{cluster}/snapshots/transfers/stream`: `event: transfers`
/// ([`SnapshotTransfers`]) at connect and whenever a transfer of the cluster starts, grows,
/// changes phase or ends. Ends when the session reaches its absolute deadline.
#[tracing::instrument(name = "stream_snapshot_transfers", skip(state, user), fields(username = %user.username))]
pub async fn stream_transfers(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    user: CurrentUser,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>> {
    state.cluster(&cluster)?;
    let changes = WatchStream::new(state.snapshots().transfers.subscribe());
    let events = changes
        .ready_chunks(64)
        .scan(None::<SnapshotTransfers>, move |last, _| {
            let now = state.snapshots().transfers.view(&cluster);
            let changed = last.as_ref() != Some(&now);
            *last = Some(now.clone());
            futures::future::ready(Some(changed.then_some(now)))
        })
        .filter_map(|view| async move {
            let event = Event::default().event("transfers").json_data(view?);
            event
                .inspect_err(|e| tracing::error!(error = %e, "cannot encode snapshot transfers"))
                .ok()
                .map(Ok)
        });
    let remaining = u64::try_from(user.expires_at_ms.saturating_sub(now_ms())).unwrap_or(0);
    let until_session_ends = tokio::time::sleep(Duration::from_millis(remaining));
    Ok(Sse::new(events.take_until(until_session_ends))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start<'h>(hub: &'h SnapshotTransfersHub, cluster: &str, id: &str) -> TransferGuard<'h> {
        hub.start(TransferStart {
            cluster: cluster.into(),
            id: id.into(),
            kind: SnapshotEntryKind::Snapshot,
            node: Some("10.5.0.2".into()),
            started_by: "operator".into(),
            expected_bytes: Some(4096),
        })
    }

    #[test]
    fn a_transfer_is_listed_for_its_cluster_until_it_ends() {
        let hub = SnapshotTransfersHub::default();
        let mut guard = start(&hub, "prod", "a");
        let _other = start(&hub, "staging", "b");
        guard.received(1024);
        let view = hub.view("prod");
        assert_eq!(view.in_flight.len(), 1);
        assert_eq!(view.in_flight[0].id, "a");
        assert_eq!(view.in_flight[0].received_bytes, 1024);
        assert_eq!(view.in_flight[0].expected_bytes, Some(4096));
        assert_eq!(view.in_flight[0].phase, TransferPhase::Receiving);
        guard.verifying(4096);
        let view = hub.view("prod");
        assert_eq!(view.in_flight[0].phase, TransferPhase::Verifying);
        assert_eq!(view.in_flight[0].received_bytes, 4096);
        drop(guard);
        let view = hub.view("prod");
        assert!(view.in_flight.is_empty());
        assert_eq!(view.finished, 1);
        assert_eq!(hub.view("staging").in_flight.len(), 1);
        assert_eq!(hub.view("staging").finished, 0);
    }

    #[test]
    fn watchers_hear_of_growth_at_most_every_interval() {
        let hub = SnapshotTransfersHub::default();
        let mut rx = hub.subscribe();
        let mut guard = start(&hub, "prod", "a");
        rx.mark_unchanged();
        for n in 1..1000 {
            guard.received(n);
        }
        // Just started: a thousand chunks within the interval wake nobody.
        assert!(!rx.has_changed().expect("hub alive"));
        std::thread::sleep(NOTIFY_EVERY);
        guard.received(2000);
        assert!(rx.has_changed().expect("hub alive"));
    }
}
