//! The latest health of one cluster, shared between the poller and every reader.
//!
//! A `watch` channel fits: readers only ever want the newest value, a slow SSE client can never
//! hold the poller back, and a new subscriber sees the current value at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use talos_dr_shared::ClusterHealth;
use tokio::sync::watch;

type Latest = Option<Arc<ClusterHealth>>;

/// The writing side, owned by the poller.
#[derive(Debug)]
pub struct HealthPublisher {
    tx: watch::Sender<Latest>,
    call_failures: Arc<AtomicU64>,
}

/// The reading side, cheap to clone. `None` until the first poll has finished.
#[derive(Debug, Clone)]
pub struct HealthHub {
    rx: watch::Receiver<Latest>,
    /// Talos calls that failed, over every poll since the start (a Prometheus counter).
    call_failures: Arc<AtomicU64>,
}

/// A fresh hub with no value yet.
pub fn health_channel() -> (HealthPublisher, HealthHub) {
    let (tx, rx) = watch::channel(None);
    let call_failures = Arc::new(AtomicU64::new(0));
    (
        HealthPublisher {
            tx,
            call_failures: call_failures.clone(),
        },
        HealthHub { rx, call_failures },
    )
}

impl HealthPublisher {
    pub fn publish(&self, health: ClusterHealth) {
        let failures: usize = health.nodes.iter().map(|n| n.failures.len()).sum();
        self.call_failures.fetch_add(
            u64::try_from(failures).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.tx.send_replace(Some(Arc::new(health)));
    }

    /// True once every hub and subscriber is gone: nobody can read what the poller finds.
    pub fn is_unwatched(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves when the last hub and subscriber are dropped.
    pub async fn unwatched(&self) {
        self.tx.closed().await;
    }
}

impl HealthHub {
    /// The latest health, if a poll has finished.
    pub fn latest(&self) -> Option<Arc<ClusterHealth>> {
        self.rx.borrow().clone()
    }

    /// Failed Talos calls over every poll so far.
    pub fn call_failures(&self) -> u64 {
        self.call_failures.load(Ordering::Relaxed)
    }

    /// A receiver that is told about every value published from now on.
    pub fn subscribe(&self) -> watch::Receiver<Latest> {
        self.rx.clone()
    }

    /// Waits until a published health satisfies `pred` (checking the current value first).
    /// `None` when the publisher is gone before that happens.
    pub async fn wait_for(
        &self,
        mut pred: impl FnMut(&ClusterHealth) -> bool,
    ) -> Option<Arc<ClusterHealth>> {
        let mut rx = self.rx.clone();
        let found = rx
            .wait_for(|h| h.as_deref().is_some_and(&mut pred))
            .await
            .ok()?;
        found.clone()
    }
}
