//! The snapshot history of a cluster: listing, comparing, downloading, and the actions that add
//! to it (take, raw copy, rehearse, upload).

use gloo_net::http::Request;
use talos_dr_shared::schedules::{ScheduleRequest, ScheduleView};
use talos_dr_shared::snapshots::SnapshotTransfers;
use talos_dr_shared::{CSRF_HEADER, ErrorBody};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::Event;

use super::stream::{self, Listen, StreamUpdate, Subscription};
use super::{
    ApiError, CSRF_TOKEN, cluster_path, error_from_body, get_json, js_text, post_json, read_json,
    session_gone, with_csrf,
};

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

/// `PUT /api/clusters/{cluster}/schedule` (admins): sets the schedule; a refusal names the
/// field (`cron: ...`, `retention: ...`, `freshness_seconds: ...`).
pub async fn put_schedule(
    cluster: &str,
    request: &ScheduleRequest,
) -> Result<ScheduleView, ApiError> {
    let url = format!("{}/schedule", cluster_path(cluster));
    let response = with_csrf(Request::put(&url))
        .header("Accept", "application/json")
        .json(request)
        .map_err(|e| ApiError::Unreachable(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    read_json(response, "a snapshot schedule").await
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
    post_json::<talos_dr_shared::snapshots::SnapshotResponse>(url, body, "a snapshot")
        .await
        .map(|r| r.snapshot)
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
            Err(error_from_body(
                status,
                serde_json::from_str::<ErrorBody>(&text).ok(),
            ))
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

/// An open `GET .../snapshots/transfers/stream` subscription.
pub type TransfersSubscription = Subscription<SnapshotTransfers>;

/// Subscribes to the cluster's snapshot transfers in flight: the whole list at connect and on
/// every change.
pub fn subscribe_snapshot_transfers(
    cluster: &str,
    on_update: impl Fn(StreamUpdate<SnapshotTransfers>) + 'static,
) -> Result<TransfersSubscription, ApiError> {
    stream::subscribe(
        format!("{}/snapshots/transfers/stream", cluster_path(cluster)),
        vec![Listen {
            event: "transfers",
            what: "a snapshot transfer event",
            read: stream::json,
        }],
        on_update,
    )
}

/// A download in flight; aborted when [`SnapshotDownload::abort`] is called.
pub struct SnapshotDownload {
    xhr: web_sys::XmlHttpRequest,
    _on_progress: Closure<dyn FnMut(web_sys::ProgressEvent)>,
    _on_done: Closure<dyn FnMut(Event)>,
}

impl SnapshotDownload {
    pub fn abort(&self) {
        let _ = self.xhr.abort();
    }
}

/// Calls `name` on the global `URL` object; `URL.createObjectURL` and `revokeObjectURL` are
/// reached this way so the page needs no extra browser bindings.
fn url_static(name: &str, arg: &JsValue) -> Result<JsValue, JsValue> {
    let url = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("URL"))?;
    let f: js_sys::Function = js_sys::Reflect::get(&url, &JsValue::from_str(name))?.dyn_into()?;
    f.call1(&url, arg)
}

/// Hands a finished download (a Blob the browser keeps, on disk when large) to the browser's
/// save dialog under `file_name`.
fn save_blob(blob: &JsValue, file_name: &str) -> Result<(), JsValue> {
    let href = url_static("createObjectURL", blob)?;
    let href_text = href.as_string().unwrap_or_default();
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| JsValue::from_str("no document"))?;
    let link = document.create_element("a")?;
    link.set_attribute("href", &href_text)?;
    link.set_attribute("download", file_name)?;
    let click: js_sys::Function =
        js_sys::Reflect::get(&link, &JsValue::from_str("click"))?.dyn_into()?;
    click.call0(&link)?;
    // The click has handed the blob to the download; the page need not keep the URL.
    let _ = url_static("revokeObjectURL", &href);
    Ok(())
}

/// `GET .../snapshots/{id}/download` with the bytes counted as they arrive: `on_progress(received,
/// total)`; `on_done` once, then the browser saves the file as `file_name`. `XMLHttpRequest` with
/// a Blob response: the browser streams the body into its own blob storage, not into the page.
pub fn download_snapshot(
    cluster: &str,
    id: &str,
    file_name: String,
    on_progress: impl Fn(f64, Option<f64>) + 'static,
    on_done: impl Fn(Result<(), ApiError>) + 'static,
) -> Result<SnapshotDownload, ApiError> {
    let url = snapshot_download_url(cluster, id);
    let xhr = web_sys::XmlHttpRequest::new().map_err(|e| ApiError::Unreachable(js_text(&e)))?;
    xhr.open("GET", &url)
        .map_err(|e| ApiError::Unreachable(js_text(&e)))?;
    js_sys::Reflect::set(
        &xhr,
        &JsValue::from_str("responseType"),
        &JsValue::from_str("blob"),
    )
    .map_err(|e| ApiError::Unreachable(js_text(&e)))?;
    let on_progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |ev: web_sys::ProgressEvent| {
            on_progress(ev.loaded(), ev.length_computable().then(|| ev.total()));
        });
    xhr.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    let done_xhr = xhr.clone();
    let on_done = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        let status = done_xhr.status().unwrap_or(0);
        let result = if status == 0 {
            Err(ApiError::Unreachable("the download was interrupted".into()))
        } else if (200..300).contains(&status) {
            done_xhr
                .response()
                .and_then(|blob| save_blob(&blob, &file_name))
                .map_err(|e| ApiError::Unreachable(js_text(&e)))
        } else {
            if status == 401 {
                session_gone();
            }
            Err(ApiError::Status { status })
        };
        on_done(result);
    });
    xhr.set_onloadend(Some(on_done.as_ref().unchecked_ref()));
    xhr.send().map_err(|e| ApiError::Unreachable(js_text(&e)))?;
    Ok(SnapshotDownload {
        xhr,
        _on_progress: on_progress,
        _on_done: on_done,
    })
}
