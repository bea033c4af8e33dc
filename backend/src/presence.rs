//! Who else is looking at a cluster: the usernames behind its open health streams.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// Open streams of one cluster, by stream id. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PresenceHub {
    viewers: Arc<watch::Sender<BTreeMap<u64, String>>>,
    next_id: Arc<AtomicU64>,
}

impl Default for PresenceHub {
    fn default() -> Self {
        Self {
            viewers: Arc::new(watch::Sender::new(BTreeMap::new())),
            next_id: Arc::new(AtomicU64::new(1)),
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
}
