//! Every call the browser makes to the console's API, and the live health subscription.
//! Components never see a URL, a status code or a JSON string: they get shared types or an
//! [`ApiError`] worded for the person at the console.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use gloo_net::http::{Request, RequestBuilder, Response};
use gloo_timers::callback::Timeout;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use talos_dr_shared::{
    CSRF_HEADER, ClusterHealth, ClusterSummary, ErrorBody, LoginRequest, SessionInfo,
    SessionResponse, Viewers,
};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Event, EventSource, MessageEvent};

/// How long to wait before opening a new stream after the browser gave up on the old one
/// (it gives up on an HTTP error status; plain disconnects it retries by itself).
const REOPEN_AFTER_MS: u32 = 3_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("the console could not be reached: {0}")]
    Unreachable(String),
    /// The console answered with its error envelope.
    #[error("{message} ({code}, HTTP {status})")]
    Console {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the console answered HTTP {status} without an explanation")]
    Status { status: u16 },
    #[error("the console sent {what} this page cannot read: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("the live health stream could not be opened: {0}")]
    Stream(String),
}

thread_local! {
    /// The signed-in session's CSRF token, sent with every state-changing call.
    static CSRF_TOKEN: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Told when the console answers 401: the session is gone (signed out elsewhere, expired).
    static ON_UNAUTHORIZED: RefCell<Option<Rc<dyn Fn()>>> = const { RefCell::new(None) };
}

/// Registers what happens when any call finds the session gone (the app shows the sign-in page).
pub fn on_unauthorized(f: impl Fn() + 'static) {
    ON_UNAUTHORIZED.with(|hook| *hook.borrow_mut() = Some(Rc::new(f)));
}

fn session_gone() {
    CSRF_TOKEN.with(|t| t.borrow_mut().take());
    // Cloned out first, so the hook may register a new hook or make calls itself.
    let hook = ON_UNAUTHORIZED.with(|hook| hook.borrow().clone());
    if let Some(hook) = hook {
        hook();
    }
}

fn remember(session: &SessionInfo) {
    CSRF_TOKEN.with(|t| *t.borrow_mut() = Some(session.csrf_token.clone()));
}

/// A state-changing request carries the session's CSRF token (the browser adds `Origin`).
fn with_csrf(request: RequestBuilder) -> RequestBuilder {
    match CSRF_TOKEN.with(|t| t.borrow().clone()) {
        Some(token) => request.header(CSRF_HEADER, &token),
        None => request,
    }
}

#[derive(Deserialize)]
struct ClusterList {
    clusters: Vec<ClusterSummary>,
}

#[derive(Deserialize)]
struct HealthReply {
    health: ClusterHealth,
}

fn cluster_path(cluster: &str) -> String {
    format!(
        "/api/clusters/{}",
        String::from(js_sys::encode_uri_component(cluster))
    )
}

async fn get_json<T: DeserializeOwned>(url: &str, what: &'static str) -> Result<T, ApiError> {
    let response = Request::get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if response.status() == 401 {
        let error = error_from(response).await;
        session_gone();
        return Err(error);
    }
    if !response.ok() {
        return Err(error_from(response).await);
    }
    response.json::<T>().await.map_err(|e| ApiError::Malformed {
        what,
        detail: e.to_string(),
    })
}

/// `GET /api/session`: who is signed in; `None` when nobody is (or the session expired).
pub async fn find_session() -> Result<Option<SessionInfo>, ApiError> {
    match get_json::<SessionResponse>("/api/session", "a session").await {
        Ok(reply) => {
            remember(&reply.session);
            Ok(Some(reply.session))
        }
        Err(ApiError::Console { status: 401, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `POST /api/session`: signs in. A wrong password comes back as `ApiError::Console` with the
/// console's message (the same for an unknown user).
pub async fn create_session(username: &str, password: &str) -> Result<SessionInfo, ApiError> {
    let body = LoginRequest {
        username: username.to_string(),
        password: password.to_string(),
    };
    let response = Request::post("/api/session")
        .header("Accept", "application/json")
        .json(&body)
        .map_err(|e| ApiError::Unreachable(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if !response.ok() {
        return Err(error_from(response).await);
    }
    let reply: SessionResponse = response.json().await.map_err(|e| ApiError::Malformed {
        what: "a session",
        detail: e.to_string(),
    })?;
    remember(&reply.session);
    Ok(reply.session)
}

/// `DELETE /api/session`: signs out.
pub async fn delete_session() -> Result<(), ApiError> {
    let response = with_csrf(Request::delete("/api/session"))
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    CSRF_TOKEN.with(|t| t.borrow_mut().take());
    // Already signed out (401) is what was asked for.
    if response.ok() || response.status() == 401 {
        Ok(())
    } else {
        Err(error_from(response).await)
    }
}

async fn error_from(response: Response) -> ApiError {
    let status = response.status();
    match response.json::<ErrorBody>().await {
        Ok(body) => ApiError::Console {
            status,
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => ApiError::Status { status },
    }
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

fn js_text(value: &wasm_bindgen::JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "unknown browser error".into())
}

// ---- Fleet overview and audit trail ----

/// `GET /api/fleet`: every watched cluster on one line.
pub async fn find_fleet() -> Result<talos_dr_shared::Fleet, ApiError> {
    get_json::<talos_dr_shared::Fleet>("/api/fleet", "a fleet overview").await
}

/// An open `GET /api/fleet/stream` subscription; closes when dropped. The browser reconnects by
/// itself after a plain disconnect.
pub struct FleetSubscription {
    es: EventSource,
    _on_fleet: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl Drop for FleetSubscription {
    fn drop(&mut self) {
        self.es.close();
    }
}

/// Subscribes to the fleet: `on_fleet` gets every new overview, `Err` when an event cannot be
/// read or the stream dropped (`None` in the error slot means the stream was lost).
pub fn subscribe_fleet(
    on_fleet: impl Fn(Result<talos_dr_shared::Fleet, Option<ApiError>>) + 'static,
) -> Result<FleetSubscription, ApiError> {
    let es = EventSource::new("/api/fleet/stream").map_err(|e| ApiError::Stream(js_text(&e)))?;
    let on_fleet = Rc::new(on_fleet);
    let deliver = on_fleet.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let parsed = ev
            .data()
            .as_string()
            .ok_or_else(|| "the event carried no text".to_string())
            .and_then(|text| {
                serde_json::from_str::<talos_dr_shared::Fleet>(&text).map_err(|e| e.to_string())
            });
        deliver(parsed.map_err(|detail| {
            Some(ApiError::Malformed {
                what: "a fleet event",
                detail,
            })
        }));
    });
    let on_error = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        on_fleet(Err(None));
        // An expired session shows the sign-in page instead of a stream that never returns.
        leptos::task::spawn_local(async {
            let _ = find_session().await;
        });
    });
    es.add_event_listener_with_callback("fleet", on_message.as_ref().unchecked_ref())
        .map_err(|e| ApiError::Stream(js_text(&e)))?;
    es.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref())
        .map_err(|e| ApiError::Stream(js_text(&e)))?;
    Ok(FleetSubscription {
        es,
        _on_fleet: on_message,
        _on_error: on_error,
    })
}

/// Filters of the audit page; empty fields are left out of the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor: String,
    pub action: String,
    pub cluster: String,
    /// RFC 3339 or milliseconds since the epoch, as the console accepts them.
    pub since: String,
    pub until: String,
    /// Entries older than this `seq` (the previous page's `next_before`).
    pub before: Option<i64>,
    pub limit: u32,
}

impl AuditQuery {
    /// The query string for `GET /api/audit`.
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("cluster", &self.cluster),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            let value = value.trim();
            if !value.is_empty() {
                parts.push(format!(
                    "{key}={}",
                    String::from(js_sys::encode_uri_component(value))
                ));
            }
        }
        if let Some(before) = self.before {
            parts.push(format!("before={before}"));
        }
        if self.limit > 0 {
            parts.push(format!("limit={}", self.limit));
        }
        parts.join("&")
    }
}

/// One page of the audit trail, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<talos_dr_shared::AuditEntry>,
    pub meta: AuditPageMeta,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditPageMeta {
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// `GET /api/audit`: one filtered page of the audit trail (approver or admin).
pub async fn list_audit_entries(query: &AuditQuery) -> Result<AuditPage, ApiError> {
    let url = format!("/api/audit?{}", query.to_query_string());
    get_json::<AuditPage>(&url, "an audit page").await
}

/// Where the browser downloads the whole audit trail as JSON lines.
pub const AUDIT_EXPORT_URL: &str = "/api/audit/export";

// ---- Snapshot history ----

/// `GET /api/clusters/{cluster}/snapshots`: newest first, failed attempts included.
pub async fn list_snapshots(
    cluster: &str,
) -> Result<talos_dr_shared::snapshots::SnapshotList, ApiError> {
    let url = format!("{}/snapshots", cluster_path(cluster));
    get_json(&url, "a snapshot history").await
}

/// `GET /api/clusters/{cluster}/schedule`: the snapshot schedule, its last run and freshness.
pub async fn find_schedule(
    cluster: &str,
) -> Result<talos_dr_shared::schedules::ScheduleView, ApiError> {
    let url = format!("{}/schedule", cluster_path(cluster));
    get_json(&url, "a snapshot schedule").await
}

/// `GET /api/clusters/{cluster}/snapshots/{id}`: one entry with its contents.
pub async fn find_snapshot(
    cluster: &str,
    id: &str,
) -> Result<talos_dr_shared::snapshots::SnapshotDetail, ApiError> {
    let url = format!(
        "{}/snapshots/{}",
        cluster_path(cluster),
        String::from(js_sys::encode_uri_component(id))
    );
    get_json(&url, "a snapshot").await
}

/// `GET .../snapshots/{a}/diff/{b}?page=`: what restoring the older instead of the newer changes.
pub async fn diff_snapshots(
    cluster: &str,
    a: &str,
    b: &str,
    page: usize,
) -> Result<talos_dr_shared::snapshots::SnapshotDiffView, ApiError> {
    let url = format!(
        "{}/snapshots/{}/diff/{}?page={page}",
        cluster_path(cluster),
        String::from(js_sys::encode_uri_component(a)),
        String::from(js_sys::encode_uri_component(b))
    );
    get_json(&url, "a snapshot comparison").await
}

/// Where the browser downloads a stored snapshot (its own download shows the progress).
pub fn snapshot_download_url(cluster: &str, id: &str) -> String {
    format!(
        "{}/snapshots/{}/download",
        cluster_path(cluster),
        String::from(js_sys::encode_uri_component(id))
    )
}

async fn post_snapshot_action(
    url: &str,
    body: &impl serde::Serialize,
) -> Result<talos_dr_shared::snapshots::SnapshotEntry, ApiError> {
    let response = with_csrf(Request::post(url))
        .header("Accept", "application/json")
        .json(body)
        .map_err(|e| ApiError::Unreachable(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if response.status() == 401 {
        let error = error_from(response).await;
        session_gone();
        return Err(error);
    }
    if !response.ok() {
        return Err(error_from(response).await);
    }
    response
        .json::<talos_dr_shared::snapshots::SnapshotResponse>()
        .await
        .map(|r| r.snapshot)
        .map_err(|e| ApiError::Malformed {
            what: "a snapshot",
            detail: e.to_string(),
        })
}

/// `POST /api/clusters/{cluster}/snapshots`: takes a snapshot now (from `node`, or a healthy
/// member the console picks).
pub async fn create_snapshot(
    cluster: &str,
    node: Option<String>,
) -> Result<talos_dr_shared::snapshots::SnapshotEntry, ApiError> {
    let url = format!("{}/snapshots", cluster_path(cluster));
    post_snapshot_action(
        &url,
        &talos_dr_shared::snapshots::TakeSnapshotRequest { node },
    )
    .await
}

/// `POST .../snapshots/raw-copy`: reads the member's database file from `node` (disaster only:
/// may not be consistent, restores only with skip-hash-check).
pub async fn create_raw_copy(
    cluster: &str,
    node: String,
) -> Result<talos_dr_shared::snapshots::SnapshotEntry, ApiError> {
    let url = format!("{}/snapshots/raw-copy", cluster_path(cluster));
    post_snapshot_action(&url, &talos_dr_shared::snapshots::RawCopyRequest { node }).await
}

/// `POST .../snapshots/{id}/rehearse`: restores the file into a throwaway etcd.
pub async fn rehearse_snapshot(
    cluster: &str,
    id: &str,
) -> Result<talos_dr_shared::snapshots::SnapshotEntry, ApiError> {
    let url = format!(
        "{}/snapshots/{}/rehearse",
        cluster_path(cluster),
        String::from(js_sys::encode_uri_component(id))
    );
    post_snapshot_action(&url, &serde_json::json!({})).await
}

/// An upload in flight; aborted when dropped before it finished.
pub struct SnapshotUpload {
    xhr: web_sys::XmlHttpRequest,
    _on_progress: Closure<dyn FnMut(web_sys::ProgressEvent)>,
    _on_done: Closure<dyn FnMut(Event)>,
}

impl SnapshotUpload {
    pub fn abort(&self) {
        let _ = self.xhr.abort();
    }
}

/// `POST .../snapshots/upload` with the file as the body. `XMLHttpRequest` rather than fetch:
/// only it reports upload progress. `on_progress(sent, total)` runs as bytes leave; `on_done`
/// once, with the stored entry or the console's refusal.
pub fn upload_snapshot(
    cluster: &str,
    file: &web_sys::File,
    on_progress: impl Fn(f64, f64) + 'static,
    on_done: impl Fn(Result<talos_dr_shared::snapshots::SnapshotEntry, ApiError>) + 'static,
) -> Result<SnapshotUpload, ApiError> {
    let url = format!("{}/snapshots/upload", cluster_path(cluster));
    let xhr = web_sys::XmlHttpRequest::new().map_err(|e| ApiError::Unreachable(js_text(&e)))?;
    xhr.open("POST", &url)
        .map_err(|e| ApiError::Unreachable(js_text(&e)))?;
    xhr.set_request_header("Accept", "application/json")
        .map_err(|e| ApiError::Unreachable(js_text(&e)))?;
    xhr.set_request_header("Content-Type", "application/octet-stream")
        .map_err(|e| ApiError::Unreachable(js_text(&e)))?;
    if let Some(token) = CSRF_TOKEN.with(|t| t.borrow().clone()) {
        xhr.set_request_header(CSRF_HEADER, &token)
            .map_err(|e| ApiError::Unreachable(js_text(&e)))?;
    }
    let on_progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |ev: web_sys::ProgressEvent| {
            if ev.length_computable() {
                on_progress(ev.loaded(), ev.total());
            }
        });
    xhr.upload()
        .map_err(|e| ApiError::Unreachable(js_text(&e)))?
        .set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    let done_xhr = xhr.clone();
    let on_done = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        let status = done_xhr.status().unwrap_or(0);
        let text = done_xhr.response_text().ok().flatten().unwrap_or_default();
        let result = if status == 0 {
            Err(ApiError::Unreachable("the upload was interrupted".into()))
        } else if (200..300).contains(&status) {
            serde_json::from_str::<talos_dr_shared::snapshots::SnapshotResponse>(&text)
                .map(|r| r.snapshot)
                .map_err(|e| ApiError::Malformed {
                    what: "a snapshot",
                    detail: e.to_string(),
                })
        } else {
            if status == 401 {
                session_gone();
            }
            Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) => ApiError::Console {
                    status,
                    code: body.error.code,
                    message: body.error.message,
                },
                Err(_) => ApiError::Status { status },
            })
        };
        on_done(result);
    });
    xhr.set_onloadend(Some(on_done.as_ref().unchecked_ref()));
    xhr.send_with_opt_blob(Some(file))
        .map_err(|e| ApiError::Unreachable(js_text(&e)))?;
    Ok(SnapshotUpload {
        xhr,
        _on_progress: on_progress,
        _on_done: on_done,
    })
}

#[derive(Deserialize)]
struct UserList {
    users: Vec<talos_dr_shared::UserSummary>,
}

/// `GET /api/users`: every console user (admin).
pub async fn list_users() -> Result<Vec<talos_dr_shared::UserSummary>, ApiError> {
    get_json::<UserList>("/api/users", "a user list")
        .await
        .map(|l| l.users)
}

/// The answer to creating a user: the password is there only when the console generated it,
/// and is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedUser {
    pub user: talos_dr_shared::UserSummary,
    pub generated_password: Option<String>,
}

/// `POST /api/users`: adds a user with a generated password (admin).
pub async fn create_user(
    username: &str,
    roles: &[talos_dr_shared::Role],
) -> Result<CreatedUser, ApiError> {
    let body = serde_json::json!({ "username": username, "roles": roles });
    let response = with_csrf(Request::post("/api/users"))
        .header("Accept", "application/json")
        .json(&body)
        .map_err(|e| ApiError::Unreachable(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if response.status() == 401 {
        let error = error_from(response).await;
        session_gone();
        return Err(error);
    }
    if !response.ok() {
        return Err(error_from(response).await);
    }
    response.json().await.map_err(|e| ApiError::Malformed {
        what: "a created user",
        detail: e.to_string(),
    })
}

// ---- Machine config backups (admin) ----

/// One node's backed-up machine config, as `GET .../machine-configs` lists it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct MachineConfigBackup {
    pub id: String,
    pub node: String,
    pub taken_by: String,
    pub taken_at_ms: i64,
    pub sha256: String,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct MachineConfigList {
    backups: Vec<MachineConfigBackup>,
}

/// What one backup run stored, and the nodes whose config could not be fetched.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MachineConfigBackupRun {
    pub backups: Vec<MachineConfigBackup>,
    pub failures: Vec<MachineConfigFailure>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct MachineConfigFailure {
    pub node: String,
    pub reason: String,
}

/// `GET /api/clusters/{cluster}/machine-configs`: newest first.
pub async fn list_machine_configs(cluster: &str) -> Result<Vec<MachineConfigBackup>, ApiError> {
    let url = format!("{}/machine-configs", cluster_path(cluster));
    get_json::<MachineConfigList>(&url, "a machine config list")
        .await
        .map(|l| l.backups)
}

/// `POST /api/clusters/{cluster}/machine-configs`: backs up every control-plane node's config.
pub async fn back_up_machine_configs(cluster: &str) -> Result<MachineConfigBackupRun, ApiError> {
    let url = format!("{}/machine-configs", cluster_path(cluster));
    let response = with_csrf(Request::post(&url))
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if response.status() == 401 {
        let error = error_from(response).await;
        session_gone();
        return Err(error);
    }
    if !response.ok() {
        return Err(error_from(response).await);
    }
    response.json().await.map_err(|e| ApiError::Malformed {
        what: "a machine config backup",
        detail: e.to_string(),
    })
}

/// Where the browser downloads one backup, decrypted (the console records the download).
pub fn machine_config_download_url(cluster: &str, id: &str) -> String {
    format!(
        "{}/machine-configs/{}/download",
        cluster_path(cluster),
        String::from(js_sys::encode_uri_component(id))
    )
}
