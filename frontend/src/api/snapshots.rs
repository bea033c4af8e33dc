//! The snapshot history of a cluster: listing, comparing, downloading, and the actions that add
//! to it (take, raw copy, rehearse, upload).

use talos_dr_shared::{CSRF_HEADER, ErrorBody};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::Event;

use super::{
    ApiError, CSRF_TOKEN, cluster_path, error_from_body, get_json, js_text, post_json, session_gone,
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
