//! The snapshot routes that read: the history, one entry with its contents, the file itself,
//! and what two snapshots disagree on.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use talos_dr_shared::snapshots::{
    ChangeTotals, KeyChangeKindView, KeyChangeView, ResourceChanges, SnapshotDetail,
    SnapshotDiffView, SnapshotEntryKind, SnapshotList,
};
use talos_dr_snapshot::{ChangeCounts, KeyChangeKind};

use super::api::{SnapshotApiError, check_id, stored_row};
use crate::error::ApiResult;
use crate::state::AppState;

/// Keys per diff page.
pub const DIFF_PAGE_SIZE: usize = 100;

/// `GET /api/clusters/{cluster}/snapshots`: newest first, failed attempts included.
pub async fn list_snapshots(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<SnapshotList>> {
    state.cluster(&cluster)?;
    let rows = state
        .snapshots()
        .history
        .list(&cluster)
        .await
        .map_err(SnapshotApiError::from)?;
    Ok(Json(SnapshotList {
        snapshots: rows.into_iter().map(|r| r.entry).collect(),
    }))
}

/// `GET /api/clusters/{cluster}/snapshots/{id}`: the entry with its keys per resource and
/// namespace.
pub async fn find_snapshot(
    State(state): State<AppState>,
    Path((cluster, id)): Path<(String, String)>,
) -> ApiResult<Json<SnapshotDetail>> {
    state.cluster(&cluster)?;
    check_id(&id)?;
    let row = state
        .snapshots()
        .history
        .find(&cluster, &id)
        .await
        .map_err(SnapshotApiError::from)?
        .ok_or(SnapshotApiError::NotFound { cluster, id })?;
    Ok(Json(SnapshotDetail {
        snapshot: row.entry,
        resources: row.resources,
    }))
}

/// `GET /api/clusters/{cluster}/snapshots/{id}/download`: the stored file, streamed, with its
/// length so the browser shows progress.
pub async fn download_snapshot(
    State(state): State<AppState>,
    Path((cluster, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    state.cluster(&cluster)?;
    let (row, key) = stored_row(&state, &cluster, &id, "download").await?;
    let store = state
        .snapshots()
        .store()
        .await
        .map_err(SnapshotApiError::from)?;
    let size = store.size(&key).await.map_err(SnapshotApiError::from)?;
    let chunks = store.read(&key).await.map_err(SnapshotApiError::from)?;
    let raw = row.entry.kind == SnapshotEntryKind::RawCopy
        || row.entry.stored_as == Some(SnapshotEntryKind::RawCopy);
    // The name is built from the cluster and id, both plain names checked by the key.
    let name = format!("{cluster}-{id}.{}", if raw { "db" } else { "snapshot" });
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    #[serde(default)]
    pub page: Option<String>,
}

fn totals(c: &ChangeCounts) -> ChangeTotals {
    ChangeTotals {
        added: c.added,
        removed: c.removed,
        changed: c.changed,
    }
}

/// `GET /api/clusters/{cluster}/snapshots/{a}/diff/{b}?page=`: the keys that differ, seen as
/// "restoring the older instead of the newer": added keys are lost, removed ones come back.
pub async fn diff_snapshots(
    State(state): State<AppState>,
    Path((cluster, a, b)): Path<(String, String, String)>,
    Query(query): Query<DiffQuery>,
) -> ApiResult<Json<SnapshotDiffView>> {
    state.cluster(&cluster)?;
    let page = match query.page.as_deref() {
        None | Some("") => 0,
        Some(p) => p.parse::<usize>().map_err(|_| SnapshotApiError::BadPage)?,
    };
    let (row_a, key_a) = stored_row(&state, &cluster, &a, "compare").await?;
    let (row_b, key_b) = stored_row(&state, &cluster, &b, "compare").await?;
    let store = state
        .snapshots()
        .store()
        .await
        .map_err(SnapshotApiError::from)?;
    let work = tempfile::Builder::new()
        .prefix("diff-")
        .tempdir_in(store.staging_dir())
        .map_err(|e| SnapshotApiError::Inspector(e.to_string()))?;
    let (path_a, path_b) = (work.path().join("a"), work.path().join("b"));
    store
        .download(&key_a, &path_a)
        .await
        .map_err(SnapshotApiError::from)?;
    store
        .download(&key_b, &path_b)
        .await
        .map_err(SnapshotApiError::from)?;
    let revision =
        |r: &super::history::HistoryRow| r.entry.figures.as_ref().map_or(0, |f| f.revision);
    // Older by revision; the taking time breaks ties.
    let a_is_older =
        (revision(&row_a), row_a.entry.taken_at_ms) <= (revision(&row_b), row_b.entry.taken_at_ms);
    let (old_id, new_id, old_path, new_path) = if a_is_older {
        (a, b, path_a, path_b)
    } else {
        (b, a, path_b, path_a)
    };
    let diff = tokio::task::spawn_blocking(move || {
        let old = talos_dr_snapshot::open(&old_path).map_err(|e| e.to_string())?;
        let new = talos_dr_snapshot::open(&new_path).map_err(|e| e.to_string())?;
        talos_dr_snapshot::diff(&old, &new, page, DIFF_PAGE_SIZE).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| SnapshotApiError::Inspector(e.to_string()))?
    .map_err(SnapshotApiError::Inspector)?;
    drop(work);
    Ok(Json(SnapshotDiffView {
        old_id,
        new_id,
        old_revision: diff.old_revision,
        new_revision: diff.new_revision,
        totals: totals(&diff.totals),
        groups: diff
            .groups
            .iter()
            .map(|g| ResourceChanges {
                resource: g.resource.clone(),
                namespace: g.namespace.clone(),
                totals: totals(&g.counts),
            })
            .collect(),
        keys: diff
            .keys
            .into_iter()
            .map(|k| KeyChangeView {
                key: k.key,
                resource: k.resource,
                namespace: k.namespace,
                change: match k.change {
                    KeyChangeKind::Added => KeyChangeKindView::Added,
                    KeyChangeKind::Removed => KeyChangeKindView::Removed,
                    KeyChangeKind::Changed => KeyChangeKindView::Changed,
                },
            })
            .collect(),
        page: diff.page,
        page_size: diff.page_size,
        total_key_changes: diff.total_key_changes,
    }))
}
