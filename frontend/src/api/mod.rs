//! Every call the browser makes to the console's API, and the live health subscription.
//! Components never see a URL, a status code or a JSON string: they get shared types or an
//! [`ApiError`] worded for the person at the console.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use talos_dr_shared::{CSRF_HEADER, ErrorBody, SessionInfo};
use wasm_bindgen::JsCast;

mod admin;
mod fleet;
mod health;
mod notifications;
mod recovery;
mod session;
mod snapshots;
mod stream;

pub use admin::{
    AUDIT_EXPORT_URL, AuditPage, AuditPageMeta, AuditQuery, CreatedUser, MachineConfigBackup,
    MachineConfigBackupRun, MachineConfigFailure, back_up_machine_configs, create_user,
    list_audit_entries, list_machine_configs, list_users, machine_config_download_url,
};
pub use fleet::{FleetSubscription, find_fleet, subscribe_fleet};
pub use health::{
    HealthEvent, HealthSubscription, find_cluster_health, list_clusters, subscribe_health,
};
pub use notifications::{delete_webhook, find_webhook, put_webhook, test_webhook};
pub use recovery::{
    IncidentSubscription, add_note, answer_step, choose_snapshot, close_incident, find_incident,
    find_open_incident, list_incidents, list_snapshot_candidates, open_incident, override_precheck,
    report_json_url, report_markdown_url, request_step, resolve_step, run_precheck, run_step,
    subscribe_incident, view_from_json,
};
pub use session::{create_session, delete_session, find_session, find_sign_in_options};
pub use snapshots::{
    SnapshotDownload, SnapshotUpload, TransfersSubscription, create_raw_copy, create_snapshot,
    diff_snapshots, download_snapshot, find_schedule, find_snapshot, list_snapshots, put_schedule,
    rehearse_snapshot, snapshot_download_url, subscribe_snapshot_transfers, upload_snapshot,
};
pub use stream::StreamUpdate;

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
    read_json(response, what).await
}

/// A state-changing `POST` with a JSON body, answered with JSON.
async fn post_json<T: DeserializeOwned>(
    url: &str,
    body: &impl Serialize,
    what: &'static str,
) -> Result<T, ApiError> {
    let response = with_csrf(Request::post(url))
        .header("Accept", "application/json")
        .json(body)
        .map_err(|e| ApiError::Unreachable(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    read_json(response, what).await
}

/// Reads a signed-in call's JSON answer. A 401 also ends the session here, so every page falls
/// back to sign-in the same way.
async fn read_json<T: DeserializeOwned>(
    response: Response,
    what: &'static str,
) -> Result<T, ApiError> {
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

async fn error_from(response: Response) -> ApiError {
    let status = response.status();
    error_from_body(status, response.json::<ErrorBody>().await.ok())
}

/// The console's error envelope when it sent one, else just the status.
fn error_from_body(status: u16, body: Option<ErrorBody>) -> ApiError {
    match body {
        Some(body) => ApiError::Console {
            status,
            code: body.error.code,
            message: body.error.message,
        },
        None => ApiError::Status { status },
    }
}

fn js_text(value: &wasm_bindgen::JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "unknown browser error".into())
}
