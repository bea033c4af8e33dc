//! The live view of one cluster's health: the newest `ClusterHealth` seen from either the
//! initial fetch or the stream, and whether the stream is currently delivering.

use leptos::prelude::*;
use talos_dr_shared::ClusterHealth;

use crate::api::{self, HealthEvent, HealthSubscription, StreamUpdate};

/// Whether the page is receiving updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// The stream has not connected yet.
    Connecting,
    Live,
    /// The stream dropped at `since_ms` (browser clock); shown data is stale until it returns.
    Reconnecting {
        since_ms: i64,
    },
    /// Not watching: the console said there is nothing to watch (an unknown cluster).
    Stopped,
}

/// Live state of one cluster, owned by the page that shows it. Copy, like the signals inside.
#[derive(Debug, Clone, Copy)]
pub struct HealthWatch {
    pub health: RwSignal<Option<ClusterHealth>>,
    pub connection: RwSignal<Connection>,
    /// The last problem with the stream's content, if any (the stream itself stays open).
    pub stream_problem: RwSignal<Option<String>>,
    /// Users with this cluster's live health open (this user included), from the stream.
    pub viewers: RwSignal<Vec<String>>,
    /// Browser clock, ticking once a second, so ages on the page count up on their own.
    pub now_ms: RwSignal<i64>,
    /// The open stream; dropped (and closed) with the page's owner or by `stop`.
    subscription: StoredValue<Option<HealthSubscription>, LocalStorage>,
}

pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

impl HealthWatch {
    /// Starts watching `cluster`; the stream and the clock stop when the calling owner is
    /// cleaned up (the user leaves the page).
    pub fn start(cluster: String) -> Self {
        let watch = Self {
            health: RwSignal::new(None),
            connection: RwSignal::new(Connection::Connecting),
            stream_problem: RwSignal::new(None),
            viewers: RwSignal::new(Vec::new()),
            now_ms: RwSignal::new(now_ms()),
            subscription: StoredValue::new_local(None),
        };

        match api::subscribe_health(&cluster, move |event| watch.on_stream(event)) {
            Ok(sub) => {
                watch.subscription.set_value(Some(sub));
                on_cleanup(move || {
                    watch.subscription.try_set_value(None);
                });
            }
            Err(e) => {
                watch.stream_problem.set(Some(e.to_string()));
                watch
                    .connection
                    .set(Connection::Reconnecting { since_ms: now_ms() });
            }
        }

        let tick = move || {
            watch.now_ms.try_set(now_ms());
        };
        if let Ok(handle) = set_interval_with_handle(tick, std::time::Duration::from_secs(1)) {
            on_cleanup(move || handle.clear());
        }
        watch
    }

    /// Closes the stream for good.
    pub fn stop(&self) {
        self.subscription.try_set_value(None);
        self.connection.try_set(Connection::Stopped);
    }

    fn on_stream(&self, event: StreamUpdate<HealthEvent>) {
        if self.connection.try_get_untracked() == Some(Connection::Stopped) {
            return;
        }
        match event {
            StreamUpdate::Connected => {
                self.connection.try_set(Connection::Live);
            }
            StreamUpdate::Event(HealthEvent::Health(health)) => {
                self.connection.try_set(Connection::Live);
                self.stream_problem.try_set(None);
                self.offer(*health);
            }
            StreamUpdate::Event(HealthEvent::Viewers(names)) => {
                self.viewers.try_set(names);
            }
            StreamUpdate::Lost => {
                let already = self
                    .connection
                    .try_get_untracked()
                    .is_some_and(|c| matches!(c, Connection::Reconnecting { .. }));
                if !already {
                    self.connection
                        .try_set(Connection::Reconnecting { since_ms: now_ms() });
                }
            }
            StreamUpdate::Unreadable(e) => {
                self.stream_problem.try_set(Some(e.to_string()));
            }
        }
    }

    /// Shows `health` unless something newer is already on the page (the initial fetch and the
    /// stream's first event race each other).
    pub fn offer(&self, health: ClusterHealth) {
        self.health.try_update(|current| {
            let newer = current
                .as_ref()
                .is_none_or(|c| c.observed_at_ms <= health.observed_at_ms);
            if newer {
                *current = Some(health);
            }
        });
    }

    /// The stream was up and dropped: what is shown may no longer be true. (While the first
    /// connection is still opening, the data just came from a fetch and is current.)
    pub fn is_stale(&self) -> bool {
        matches!(self.connection.get(), Connection::Reconnecting { .. })
    }
}
