//! The transfers the other replicas run. Each replica sends its own, per cluster, as a small
//! JSON note through [`Topic::SnapshotTransfers`]: at most every [`SHARE_EVERY`] while they
//! change, again every [`HEARTBEAT`] while any runs (so silence means the replica is gone), and
//! once with an empty list when the last one ends. A replica keeps what it heard by (replica,
//! cluster) and forgets it when told the list is empty or after [`REPLICA_TIMEOUT`] of silence:
//! a replica that died mid-transfer leaves no frozen progress bar behind.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use talos_dr_shared::snapshots::SnapshotTransfer;

use super::{Registry, SnapshotTransfersHub};
use crate::state::AppState;
use crate::storage::replicas::{HEARTBEAT, REPLICA_TIMEOUT};
use crate::storage::{ChangeRelay, DatabaseKind, Topic};

/// The most often a replica tells the others about its growing byte counts.
pub const SHARE_EVERY: Duration = Duration::from_millis(500);

/// NOTIFY refuses payloads of 8000 bytes or more; the sender's name and a margin fit beside this.
const MAX_NOTE_BYTES: usize = 7000;

/// What one replica last said it runs for one cluster.
#[derive(Debug)]
pub(super) struct Heard {
    at: Instant,
    in_flight: Vec<SnapshotTransfer>,
}

#[derive(Debug, Serialize)]
struct NoteOut<'a> {
    from: &'a str,
    cluster: &'a str,
    in_flight: &'a [SnapshotTransfer],
}

#[derive(Debug, Deserialize)]
struct NoteIn {
    from: String,
    cluster: String,
    in_flight: Vec<SnapshotTransfer>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransfersNoteError {
    #[error("snapshot transfers note from another replica: {0}")]
    BadJson(#[from] serde_json::Error),
}

/// The other replicas' transfers of `cluster` that are still fresh.
pub(super) fn live<'r>(
    registry: &'r Registry,
    cluster: &'r str,
) -> impl Iterator<Item = SnapshotTransfer> + 'r {
    registry
        .elsewhere
        .iter()
        .filter(move |((_, c), heard)| c == cluster && heard.at.elapsed() < REPLICA_TIMEOUT)
        .flat_map(|(_, heard)| heard.in_flight.iter().cloned())
}

/// The note for `cluster`, trimmed of its newest transfers until it fits a NOTIFY payload.
fn encode(from: &str, cluster: &str, in_flight: &[SnapshotTransfer]) -> Option<String> {
    let mut keep = in_flight.len();
    loop {
        let note = NoteOut {
            from,
            cluster,
            in_flight: &in_flight[..keep],
        };
        match serde_json::to_string(&note) {
            Ok(json) if json.len() <= MAX_NOTE_BYTES => return Some(json),
            Ok(_) if keep > 0 => keep -= 1,
            Ok(_) => return None,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode snapshot transfers for the other replicas");
                return None;
            }
        }
    }
}

impl SnapshotTransfersHub {
    /// Another replica told its transfers of one cluster (the key of a
    /// [`Topic::SnapshotTransfers`] change).
    pub fn heard_elsewhere(&self, note: &str) -> Result<(), TransfersNoteError> {
        let note: NoteIn = serde_json::from_str(note)?;
        {
            let mut registry = self.registry();
            let key = (note.from, note.cluster);
            if note.in_flight.is_empty() {
                registry.elsewhere.remove(&key);
            } else {
                let heard = Heard {
                    at: Instant::now(),
                    in_flight: note.in_flight,
                };
                registry.elsewhere.insert(key, heard);
            }
        }
        self.notify();
        Ok(())
    }

    /// Forgets what silent replicas said; true when something was forgotten.
    fn forget_silent(&self) -> bool {
        let mut registry = self.registry();
        let before = registry.elsewhere.len();
        registry
            .elsewhere
            .retain(|_, heard| heard.at.elapsed() < REPLICA_TIMEOUT);
        registry.elsewhere.len() != before
    }
}

/// Tells the other replicas this one's transfers and forgets those of silent replicas, for as
/// long as the console serves; nothing to do on SQLite, where the console is alone.
pub fn share(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    if state.storage().kind() != DatabaseKind::Postgres {
        return None;
    }
    let relay = state.recovery().relay().clone();
    let instance = state.recovery().instance().to_string();
    Some(tokio::spawn(async move {
        let mut changes = state.snapshots().transfers.subscribe();
        // What was last sent per cluster, and when: an unchanged list is sent again only once a
        // heartbeat, so the others can tell a quiet transfer from a dead replica.
        let mut sent: HashMap<String, (Vec<SnapshotTransfer>, Instant)> = HashMap::new();
        loop {
            tokio::select! {
                next = changes.changed() => {
                    if next.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
            let hub = &state.snapshots().transfers;
            if hub.forget_silent() {
                hub.notify();
            }
            tell(hub, &relay, &instance, &mut sent);
            tokio::time::sleep(SHARE_EVERY).await;
        }
    }))
}

fn tell(
    hub: &SnapshotTransfersHub,
    relay: &ChangeRelay,
    instance: &str,
    sent: &mut HashMap<String, (Vec<SnapshotTransfer>, Instant)>,
) {
    let running = hub.local_by_cluster();
    for (cluster, in_flight) in &running {
        let due = sent
            .get(cluster)
            .is_none_or(|(last, at)| last != in_flight || at.elapsed() >= HEARTBEAT);
        if due {
            if let Some(note) = encode(instance, cluster, in_flight) {
                relay.publish(Topic::SnapshotTransfers, &note);
            }
            sent.insert(cluster.clone(), (in_flight.clone(), Instant::now()));
        }
    }
    // The last transfer of a cluster ended: said once, so the others drop the bar at once.
    let ended: Vec<String> = sent
        .keys()
        .filter(|c| !running.contains_key(*c))
        .cloned()
        .collect();
    for cluster in ended {
        if let Some(note) = encode(instance, &cluster, &[]) {
            relay.publish(Topic::SnapshotTransfers, &note);
        }
        sent.remove(&cluster);
    }
}

#[cfg(test)]
mod tests {
    use talos_dr_shared::snapshots::{SnapshotEntryKind, TransferPhase};

    use super::*;

    fn transfer(id: &str, started_at_ms: i64) -> SnapshotTransfer {
        SnapshotTransfer {
            id: id.into(),
            kind: SnapshotEntryKind::Upload,
            node: None,
            started_by: "operator".into(),
            started_at_ms,
            received_bytes: 10,
            expected_bytes: None,
            phase: TransferPhase::Receiving,
        }
    }

    #[test]
    fn a_note_fits_a_notify_payload_however_many_transfers_run() {
        let many: Vec<_> = (0..200).map(|n| transfer(&format!("t{n}"), n)).collect();
        let note = encode("replica-a", "prod", &many).expect("a note");
        assert!(note.len() <= MAX_NOTE_BYTES);
        let back: NoteIn = serde_json::from_str(&note).expect("json");
        assert!(!back.in_flight.is_empty());
        // The oldest are kept.
        assert_eq!(back.in_flight[0].id, "t0");
    }

    #[test]
    fn heard_transfers_merge_into_the_view_until_their_replica_says_they_ended() {
        let hub = SnapshotTransfersHub::default();
        let note = encode("replica-a", "prod", &[transfer("up", 5)]).expect("note");
        hub.heard_elsewhere(&note).expect("heard");
        assert_eq!(hub.view("prod").in_flight.len(), 1);
        assert!(hub.view("staging").in_flight.is_empty());
        let ended = encode("replica-a", "prod", &[]).expect("note");
        hub.heard_elsewhere(&ended).expect("heard");
        assert!(hub.view("prod").in_flight.is_empty());
        assert!(hub.heard_elsewhere("{not json").is_err());
    }
}
