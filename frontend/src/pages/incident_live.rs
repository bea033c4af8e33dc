//! The live incident as the page holds it: the newest whole view from the first fetch, the
//! stream or an action's answer, whether the stream delivers, and who is looking at it.

use std::future::Future;

use leptos::prelude::*;
use leptos::task::spawn_local;
use talos_dr_shared::Role;
use talos_dr_shared::recovery::IncidentView;

use crate::api::{self, ApiError, IncidentSubscription, StreamUpdate};
use crate::live::{Connection, now_ms};
use crate::session::{SessionState, SessionStatus};

/// The signed-in person, as the guard rails need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub username: String,
    pub roles: Vec<Role>,
}

impl Me {
    pub fn current() -> Self {
        SessionState::get().0.with_untracked(|s| match s {
            SessionStatus::SignedIn(info) => Me {
                username: info.username.clone(),
                roles: info.roles.clone(),
            },
            _ => Me {
                username: String::new(),
                roles: Vec::new(),
            },
        })
    }

    pub fn holds(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r.grants(role))
    }
}

/// Live state of one incident, owned by its page. Copy, like the signals inside.
#[derive(Debug, Clone, Copy)]
pub struct IncidentWatch {
    pub id: StoredValue<String>,
    pub view: RwSignal<Option<IncidentView>>,
    pub connection: RwSignal<Connection>,
    pub problem: RwSignal<Option<String>>,
    /// Browser clock, once a second: countdowns and ages move on their own.
    pub now_ms: RwSignal<i64>,
    subscription: StoredValue<Option<IncidentSubscription>, LocalStorage>,
}

impl IncidentWatch {
    /// Starts following incident `id` until the calling owner is cleaned up.
    pub fn start(id: String) -> Self {
        let watch = Self {
            id: StoredValue::new(id.clone()),
            view: RwSignal::new(None),
            connection: RwSignal::new(Connection::Connecting),
            problem: RwSignal::new(None),
            now_ms: RwSignal::new(now_ms()),
            subscription: StoredValue::new_local(None),
        };
        match api::subscribe_incident(&id, move |event| watch.on_stream(event)) {
            Ok(sub) => {
                watch.subscription.set_value(Some(sub));
                on_cleanup(move || {
                    watch.subscription.try_set_value(None);
                });
            }
            Err(e) => {
                watch.problem.set(Some(e.to_string()));
                watch
                    .connection
                    .set(Connection::Reconnecting { since_ms: now_ms() });
            }
        }
        let fetch_id = id.clone();
        spawn_local(async move {
            match api::find_incident(&fetch_id).await {
                // The stream may have delivered already: it is at least as new as this answer.
                Ok(view) => {
                    watch.view.try_update(|v| {
                        if v.is_none() {
                            *v = Some(view);
                        }
                    });
                }
                Err(e) => {
                    if matches!(e, ApiError::Console { status: 404, .. }) {
                        watch.stop();
                    }
                    watch.problem.try_set(Some(e.to_string()));
                }
            }
        });
        if let Ok(handle) = set_interval_with_handle(
            move || {
                watch.now_ms.try_set(now_ms());
            },
            std::time::Duration::from_secs(1),
        ) {
            on_cleanup(move || handle.clear());
        }
        watch
    }

    pub fn stop(&self) {
        self.subscription.try_set_value(None);
        self.connection.try_set(Connection::Stopped);
    }

    fn on_stream(&self, event: StreamUpdate<Box<IncidentView>>) {
        if self.connection.try_get_untracked() == Some(Connection::Stopped) {
            return;
        }
        match event {
            StreamUpdate::Connected => {
                self.connection.try_set(Connection::Live);
            }
            StreamUpdate::Event(view) => {
                self.connection.try_set(Connection::Live);
                self.problem.try_set(None);
                self.view.try_set(Some(*view));
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
                self.problem.try_set(Some(e.to_string()));
            }
        }
    }

    pub fn id(&self) -> String {
        self.id.get_value()
    }

    /// An action's answer: shown at once unless the stream already delivered a newer view. The
    /// console may run the next step before the answer arrives (marking a step done starts the
    /// wait after it), and a step that then only waits sends no further update for a while: an
    /// older answer laid over it would show the next step as not started.
    pub fn offer(&self, view: IncidentView) {
        let newer = self
            .view
            .try_with_untracked(|current| is_not_older(&view, current.as_ref()))
            .unwrap_or(false);
        if newer {
            self.view.try_set(Some(view));
        }
    }
}

/// Every action and every step transition writes a timeline line, so the newest line orders
/// two views of an incident (progress and "what is happening now" texts write none; the stream
/// brings those).
pub fn is_not_older(candidate: &IncidentView, current: Option<&IncidentView>) -> bool {
    let newest = |v: &IncidentView| v.timeline.iter().map(|e| e.id).max();
    current.is_none_or(|c| newest(candidate) >= newest(c))
}

/// One button's call in flight and its outcome, shown next to it.
#[derive(Debug, Clone, Copy)]
pub struct Action {
    pub busy: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
}

impl Default for Action {
    fn default() -> Self {
        Self::new()
    }
}

impl Action {
    pub fn new() -> Self {
        Self {
            busy: RwSignal::new(false),
            error: RwSignal::new(None),
        }
    }

    /// Runs `call` unless one is already in flight; its incident (when it sent one) goes on the
    /// page at once, and `on_ok` clears the form.
    pub fn run<F>(self, watch: IncidentWatch, call: F, on_ok: impl FnOnce() + 'static)
    where
        F: Future<Output = Result<Option<IncidentView>, ApiError>> + 'static,
    {
        if self.busy.get_untracked() {
            return;
        }
        self.busy.set(true);
        self.error.set(None);
        spawn_local(async move {
            let outcome = call.await;
            self.busy.try_set(false);
            match outcome {
                Ok(view) => {
                    if let Some(view) = view {
                        watch.offer(view);
                    }
                    on_ok();
                }
                Err(e) => {
                    self.error.try_set(Some(refusal_text(&e)));
                }
            }
        });
    }

    /// The refusal or failure, in the console's words, for a `role="alert"` line.
    pub fn error_view(self, testid: &'static str) -> impl IntoView {
        move || {
            self.error.get().map(|text| {
                view! { <p class="tone-bad form-error" role="alert" data-testid=testid>{text}</p> }
            })
        }
    }
}

pub fn refusal_text(e: &ApiError) -> String {
    match e {
        ApiError::Console {
            message, status, ..
        } => format!("Refused (HTTP {status}): {message}"),
        other => other.to_string(),
    }
}
