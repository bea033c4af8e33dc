//! One live server-sent-events subscription, used by every stream the console offers (a
//! cluster's health, the fleet, snapshot transfers, an incident). Each stream only names its
//! events and how to read them.
//!
//! The browser's own `EventSource` is used directly because it must be known when the
//! connection drops *while* the browser is retrying, to mark the page stale right away.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Event, EventSource, MessageEvent};

use super::{ApiError, find_session, js_text};

/// How long to wait before opening a new stream after the browser gave up on the old one
/// (it gives up on an HTTP error status; plain disconnects it retries by itself).
const REOPEN_AFTER_MS: u32 = 3_000;

/// What a live stream reports to its subscriber.
#[derive(Debug, Clone)]
pub enum StreamUpdate<T> {
    /// The stream is (re)connected; the server sends the whole current state next.
    Connected,
    Event(T),
    /// The stream dropped; it is being reopened, and what the page shows is now stale.
    Lost,
    /// An event arrived that could not be read; the stream stays open.
    Unreadable(ApiError),
}

/// One named server-sent event of a stream and how to read its data.
pub struct Listen<T> {
    /// The SSE event name (`"message"` for events sent without one).
    pub event: &'static str,
    /// What the event is, for the error shown when it cannot be read ("a health event").
    pub what: &'static str,
    pub read: fn(&str) -> Result<T, String>,
}

/// An open subscription: reopens itself after the browser gave up, closes when dropped.
pub struct Subscription<T: 'static> {
    inner: Rc<Inner<T>>,
}

struct Inner<T: 'static> {
    url: String,
    listens: Vec<Listen<T>>,
    on_update: Box<dyn Fn(StreamUpdate<T>)>,
    source: RefCell<Option<Source>>,
    /// Bumped for every scheduled reopen, so only the newest pending one acts.
    reopen_generation: Cell<u32>,
}

/// One browser `EventSource` with the listeners that must live exactly as long as it does.
struct Source {
    es: EventSource,
    _listeners: Vec<Closure<dyn FnMut(Event)>>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.es.close();
    }
}

/// Subscribes to the stream at `url`; `on_update` runs for every change of the stream.
pub fn subscribe<T: 'static>(
    url: String,
    listens: Vec<Listen<T>>,
    on_update: impl Fn(StreamUpdate<T>) + 'static,
) -> Result<Subscription<T>, ApiError> {
    let inner = Rc::new(Inner {
        url,
        listens,
        on_update: Box::new(on_update),
        source: RefCell::new(None),
        reopen_generation: Cell::new(0),
    });
    open(&inner)?;
    Ok(Subscription { inner })
}

fn open<T: 'static>(sub: &Rc<Inner<T>>) -> Result<(), ApiError> {
    let es = EventSource::new(&sub.url).map_err(|e| ApiError::Stream(js_text(&e)))?;
    let mut listeners = Vec::with_capacity(sub.listens.len() + 2);

    let weak = Rc::downgrade(sub);
    listeners.push((
        "open",
        Closure::<dyn FnMut(Event)>::new(move |_: Event| emit(&weak, StreamUpdate::Connected)),
    ));

    for listen in &sub.listens {
        let weak = Rc::downgrade(sub);
        let (what, read) = (listen.what, listen.read);
        let on_message = Closure::<dyn FnMut(Event)>::new(move |ev: Event| {
            emit(&weak, read_event(what, read, &ev));
        });
        listeners.push((listen.event, on_message));
    }

    let weak = Rc::downgrade(sub);
    listeners.push((
        "error",
        Closure::<dyn FnMut(Event)>::new(move |ev: Event| {
            emit(&weak, StreamUpdate::Lost);
            let closed = ev
                .current_target()
                .and_then(|t| t.dyn_into::<EventSource>().ok())
                .is_some_and(|es| es.ready_state() == EventSource::CLOSED);
            if closed {
                // The browser gave up on an HTTP error; if it was an expired session, the
                // session check sends the page to sign-in instead of retrying forever.
                leptos::task::spawn_local(async {
                    let _ = find_session().await;
                });
                schedule_reopen(&weak);
            }
        }),
    ));

    for (event, listener) in &listeners {
        es.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref())
            .map_err(|e| ApiError::Stream(js_text(&e)))?;
    }
    // Replacing the old source drops (and closes) it.
    *sub.source.borrow_mut() = Some(Source {
        es,
        _listeners: listeners.into_iter().map(|(_, l)| l).collect(),
    });
    Ok(())
}

fn read_event<T>(
    what: &'static str,
    read: fn(&str) -> Result<T, String>,
    ev: &Event,
) -> StreamUpdate<T> {
    let text = ev
        .dyn_ref::<MessageEvent>()
        .and_then(|m| m.data().as_string());
    let Some(text) = text else {
        return StreamUpdate::Unreadable(ApiError::Malformed {
            what,
            detail: "the event carried no text".into(),
        });
    };
    match read(&text) {
        Ok(value) => StreamUpdate::Event(value),
        Err(detail) => StreamUpdate::Unreadable(ApiError::Malformed { what, detail }),
    }
}

/// Reads an event's data as JSON: the `read` of most streams.
pub fn json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

fn emit<T>(sub: &Weak<Inner<T>>, update: StreamUpdate<T>) {
    if let Some(sub) = sub.upgrade() {
        (sub.on_update)(update);
    }
}

fn schedule_reopen<T: 'static>(weak: &Weak<Inner<T>>) {
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
            (sub.on_update)(StreamUpdate::Unreadable(e));
            schedule_reopen(&again);
        }
    })
    .forget();
}

impl<T: 'static> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.inner.source.borrow_mut().take();
    }
}
