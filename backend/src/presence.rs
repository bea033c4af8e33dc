//! Who else is looking at a cluster or an incident: the usernames behind its open streams, here
//! and (on PostgreSQL, see [`shared`]) through the other console replicas.

pub mod shared;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, watch};

/// Open streams of one cluster or incident, by stream id. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PresenceHub {
    viewers: Arc<watch::Sender<BTreeMap<u64, String>>>,
    next_id: Arc<AtomicU64>,
    /// Who looks through the other replicas, as last read from the shared list.
    elsewhere: Arc<watch::Sender<Vec<String>>>,
    /// Another replica said its viewers changed: the shared list is read again.
    reread: Arc<Notify>,
}

impl Default for PresenceHub {
    fn default() -> Self {
        Self {
            viewers: Arc::new(watch::Sender::new(BTreeMap::new())),
            next_id: Arc::new(AtomicU64::new(1)),
            elsewhere: Arc::new(watch::Sender::new(Vec::new())),
            reread: Arc::new(Notify::new()),
        }
    }
}

/// Counts one open stream until dropped.
#[derive(Debug)]
pub struct Viewing {
    hub: PresenceHub,
    id: u64,
}

impl Drop for Viewing {
    fn drop(&mut self) {
        self.hub.viewers.send_modify(|v| {
            v.remove(&self.id);
        });
    }
}

impl PresenceHub {
    /// Records that `username` opened a stream; the returned guard records the close.
    pub fn join(&self, username: &str) -> Viewing {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.viewers.send_modify(|v| {
            v.insert(id, username.to_string());
        });
        Viewing {
            hub: self.clone(),
            id,
        }
    }

    /// Distinct usernames, sorted.
    pub fn usernames(&self) -> Vec<String> {
        distinct(&self.viewers.borrow())
    }

    pub fn subscribe(&self) -> watch::Receiver<BTreeMap<u64, String>> {
        self.viewers.subscribe()
    }

    /// Distinct usernames here and through the other replicas, sorted.
    pub fn everyone(&self) -> Vec<String> {
        let mut names = self.usernames();
        names.extend(self.elsewhere.borrow().iter().cloned());
        names.sort();
        names.dedup();
        names
    }

    /// Ticks whenever the other replicas' viewers change.
    pub fn subscribe_elsewhere(&self) -> watch::Receiver<Vec<String>> {
        self.elsewhere.subscribe()
    }

    /// What the shared list says about the other replicas' viewers.
    pub fn set_elsewhere(&self, mut names: Vec<String>) {
        names.sort();
        names.dedup();
        self.elsewhere.send_if_modified(|known| {
            let changed = *known != names;
            *known = names;
            changed
        });
    }

    /// Another replica's viewers changed (heard through the database).
    pub fn changed_elsewhere(&self) {
        self.reread.notify_one();
    }
}

pub fn distinct(viewers: &BTreeMap<u64, String>) -> Vec<String> {
    let mut names: Vec<String> = viewers.values().cloned().collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_stream_leaves_the_list() {
        let hub = PresenceHub::default();
        let a = hub.join("alice");
        let b1 = hub.join("bob");
        let b2 = hub.join("bob");
        assert_eq!(hub.usernames(), vec!["alice", "bob"]);
        drop(b1);
        assert_eq!(hub.usernames(), vec!["alice", "bob"]);
        drop(b2);
        drop(a);
        assert!(hub.usernames().is_empty());
    }

    #[test]
    fn viewers_through_other_replicas_join_the_list_once() {
        let hub = PresenceHub::default();
        let _a = hub.join("alice");
        let mut rx = hub.subscribe_elsewhere();
        hub.set_elsewhere(vec!["bob".into(), "alice".into()]);
        assert!(rx.has_changed().expect("hub alive"));
        assert_eq!(hub.everyone(), vec!["alice", "bob"]);
        rx.mark_unchanged();
        hub.set_elsewhere(vec!["alice".into(), "bob".into()]);
        assert!(!rx.has_changed().expect("hub alive"), "same list, no news");
        hub.set_elsewhere(Vec::new());
        assert_eq!(hub.everyone(), vec!["alice"]);
    }
}
