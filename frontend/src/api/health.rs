//! The watched clusters, their health, and the live health subscription.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use serde::Deserialize;
use talos_dr_shared::{ClusterHealth, ClusterSummary, Viewers};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Event, EventSource, MessageEvent};

use super::{ApiError, cluster_path, find_session, get_json, js_text};

/// How long to wait before opening a new stream after the browser gave up on the old one
/// (it gives up on an HTTP error status; plain disconnects it retries by itself).
const REOPEN_AFTER_MS: u32 = 3_000;

#[derive(Deserialize)]
struct ClusterList {
    clusters: Vec<ClusterSummary>,
}

#[derive(Deserialize)]
struct HealthReply {
    health: ClusterHealth,
}

/// `GET /api/clusters`: the clusters this console watches.
pub async fn list_clusters() -> Result<Vec<ClusterSummary>, ApiError> {
    get_json::<ClusterList>("/api/clusters", "a cluster list")
        .await
        .map(|l| l.clusters)
}

/// `GET /api/clusters/{cluster}/health`: the latest poll of one cluster.
pub async fn find_cluster_health(cluster: &str) -> Result<ClusterHealth, ApiError> {
    let url = format!("{}/health", cluster_path(cluster));
    get_json::<HealthReply>(&url, "a health report")
        .await
        .map(|r| r.health)
}

/// What the live health stream reports to its subscriber.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    /// The stream is (re)connected; a full `Health` follows.
    Connected,
    Health(Box<ClusterHealth>),
    /// Who has this cluster's live health open right now (this user included).
    Viewers(Vec<String>),
    /// The stream dropped; it is being reopened, and the last health shown is now stale.
    Lost,
    /// An event arrived that could not be read; the stream stays open.
    Unreadable(ApiError),
}

/// An open `GET /api/clusters/{cluster}/health/stream` subscription. It reopens itself when the
/// connection drops and closes when dropped.
pub struct HealthSubscription {
    inner: Rc<Subscription>,
}

struct Subscription {
    url: String,
    on_event: Box<dyn Fn(StreamEvent)>,
    source: RefCell<Option<Source>>,
    /// Bumped for every scheduled reopen, so only the newest pending one acts.
    reopen_generation: Cell<u32>,
}

/// One browser `EventSource` with the listeners that must live exactly as long as it does.
struct Source {
    es: EventSource,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_health: Closure<dyn FnMut(MessageEvent)>,
    _on_viewers: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.es.close();
    }
}

/// Subscribes to the live health of `cluster`. `on_event` runs for every change of the stream.
///
/// The browser's own `EventSource` is used directly because it must be known when the
/// connection drops *while* the browser is retrying, to mark the page stale right away.
pub fn subscribe_health(
    cluster: &str,
    on_event: impl Fn(StreamEvent) + 'static,
) -> Result<HealthSubscription, ApiError> {
    let inner = Rc::new(Subscription {
        url: format!("{}/health/stream", cluster_path(cluster)),
        on_event: Box::new(on_event),
        source: RefCell::new(None),
        reopen_generation: Cell::new(0),
    });
    open(&inner)?;
    Ok(HealthSubscription { inner })
}

fn open(sub: &Rc<Subscription>) -> Result<(), ApiError> {
    let es = EventSource::new(&sub.url).map_err(|e| ApiError::Stream(js_text(&e)))?;

    let weak = Rc::downgrade(sub);
    let on_open = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        emit(&weak, StreamEvent::Connected);
    });

    let weak = Rc::downgrade(sub);
    let on_health = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let event = match ev.data().as_string() {
            Some(text) => match serde_json::from_str::<ClusterHealth>(&text) {
                Ok(health) => StreamEvent::Health(Box::new(health)),
                Err(e) => StreamEvent::Unreadable(ApiError::Malformed {
                    what: "a health event",
                    detail: e.to_string(),
                }),
            },
            None => StreamEvent::Unreadable(ApiError::Malformed {
                what: "a health event",
                detail: "the event carried no text".into(),
            }),
        };
        emit(&weak, event);
    });

    let weak = Rc::downgrade(sub);
    let on_viewers = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let parsed = ev
            .data()
            .as_string()
            .map(|text| serde_json::from_str::<Viewers>(&text));
        let event = match parsed {
            Some(Ok(viewers)) => StreamEvent::Viewers(viewers.viewers),
            Some(Err(e)) => StreamEvent::Unreadable(ApiError::Malformed {
                what: "a viewers event",
                detail: e.to_string(),
            }),
            None => StreamEvent::Unreadable(ApiError::Malformed {
                what: "a viewers event",
                detail: "the event carried no text".into(),
            }),
        };
        emit(&weak, event);
    });

    let weak = Rc::downgrade(sub);
    let on_error = Closure::<dyn FnMut(Event)>::new(move |ev: Event| {
        emit(&weak, StreamEvent::Lost);
        let closed = ev
            .current_target()
            .and_then(|t| t.dyn_into::<EventSource>().ok())
            .is_some_and(|es| es.ready_state() == EventSource::CLOSED);
        if closed {
            // The browser gave up on an HTTP error; if it was an expired session, the session
            // check sends the page to sign-in instead of retrying forever.
            leptos::task::spawn_local(async {
                let _ = find_session().await;
            });
            schedule_reopen(&weak);
        }
    });

    es.add_event_listener_with_callback("open", on_open.as_ref().unchecked_ref())
        .map_err(|e| ApiError::Stream(js_text(&e)))?;
    es.add_event_listener_with_callback("health", on_health.as_ref().unchecked_ref())
        .map_err(|e| ApiError::Stream(js_text(&e)))?;
    es.add_event_listener_with_callback("viewers", on_viewers.as_ref().unchecked_ref())
        .map_err(|e| ApiError::Stream(js_text(&e)))?;
    es.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref())
        .map_err(|e| ApiError::Stream(js_text(&e)))?;

    // Replacing the old source drops (and closes) it.
    *sub.source.borrow_mut() = Some(Source {
        es,
        _on_open: on_open,
        _on_health: on_health,
        _on_viewers: on_viewers,
        _on_error: on_error,
    });
    Ok(())
}

fn emit(sub: &Weak<Subscription>, event: StreamEvent) {
    if let Some(sub) = sub.upgrade() {
        (sub.on_event)(event);
    }
}

fn schedule_reopen(weak: &Weak<Subscription>) {
    let Some(sub) = weak.upgrade() else { return };
    let generation = sub.reopen_generation.get().wrapping_add(1);
    sub.reopen_generation.set(generation);
    let again = weak.clone();
    // The timer is left to fire on its own: once the subscription is dropped the weak
    // reference is dead and the callback does nothing.
    Timeout::new(REOPEN_AFTER_MS, move || {
        let Some(sub) = again.upgrade() else { return };
        if sub.reopen_generation.get() != generation {
            return;
        }
        if let Err(e) = open(&sub) {
            (sub.on_event)(StreamEvent::Unreadable(e));
            schedule_reopen(&again);
        }
    })
    .forget();
}

impl Drop for HealthSubscription {
    fn drop(&mut self) {
        self.inner.source.borrow_mut().take();
    }
}
