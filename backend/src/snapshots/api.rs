//! The snapshot routes that write: take a snapshot, take a raw copy, upload a file, rehearse.
//! Reads (list, entry, download, diff) are in [`super::api_read`].
//!
//! Every attempt leaves a history row: a stored file with what the inspector found, or a failed
//! attempt with its reason and no object.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use talos_dr_shared::MemberState;
use talos_dr_shared::snapshots::{
    RawCopyRequest, RehearsalResult, SnapshotEntry, SnapshotEntryKind, SnapshotResponse,
    SnapshotTrigger, TakeSnapshotRequest,
};

use super::api_attempt::Attempt;
pub use super::api_attempt::database_size;
pub use super::api_error::{SnapshotApiError, check_id, stored_row};
use super::ingest::ExpectedKind;
use super::store::SnapshotId;
use super::{commands, rehearsal};
use crate::audit::AuditDetail;
use crate::auth::CurrentUser;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::json::AppJson;
use crate::state::{AppState, WatchedCluster};
use crate::talos::credentials::TalosRole;
use crate::talos::{TalosApi, TalosClient};

/// How long the node may take to start sending; the transfer itself may take much longer.
const FIRST_ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// A Talos client with `role`'s credentials; a cluster configured without talosconfigs (a test
/// fake) is asked through its one client.
fn talos_for(
    cluster: &WatchedCluster,
    role: TalosRole,
) -> Result<Arc<dyn TalosApi>, SnapshotApiError> {
    match cluster.talos_credentials.for_role(role) {
        Some(ctx) => TalosClient::new(ctx, FIRST_ANSWER_TIMEOUT)
            .map(|c| Arc::new(c) as Arc<dyn TalosApi>)
            .map_err(|e| SnapshotApiError::Credentials(e.to_string())),
        None => Ok(cluster.talos.clone()),
    }
}

/// The user's node if it is a control-plane node of the cluster; else a healthy member from the
/// latest poll, a follower when there is one (a snapshot loads the member it is taken from).
fn pick_node(cluster: &WatchedCluster, asked: Option<String>) -> Result<String, SnapshotApiError> {
    if let Some(node) = asked {
        if !cluster.control_plane_nodes.contains(&node) {
            return Err(SnapshotApiError::UnknownNode {
                cluster: cluster.name.clone(),
                node,
            });
        }
        return Ok(node);
    }
    let health = cluster
        .health
        .latest()
        .ok_or_else(|| SnapshotApiError::NoHealthyNode("no health poll has finished yet".into()))?;
    let healthy: Vec<_> = health
        .members
        .iter()
        .filter(|m| m.state == MemberState::Healthy)
        .filter_map(|m| m.node.clone().map(|n| (n, m.is_leader)))
        .collect();
    healthy
        .iter()
        .find(|(_, leader)| !leader)
        .or_else(|| healthy.first())
        .map(|(n, _)| n.clone())
        .ok_or_else(|| SnapshotApiError::NoHealthyNode("no member is healthy".into()))
}

fn detail(entry: &SnapshotEntry) -> Extension<AuditDetail> {
    let mut parameters = BTreeMap::new();
    if let Some(node) = &entry.node {
        parameters.insert("node".to_string(), node.clone());
    }
    parameters.insert(
        "kind".to_string(),
        super::history::kind_str(entry.kind).to_string(),
    );
    if let Some(failure) = &entry.failure {
        parameters.insert("failure".to_string(), failure.clone());
    }
    Extension(AuditDetail {
        target: Some(entry.id.clone()),
        parameters,
    })
}

type Created = Response;

/// The response for a recorded attempt: 201 with the entry, or the failure as an error (the
/// history lists it either way). The audit entry names the attempt in both cases.
fn created(entry: SnapshotEntry, upload: bool) -> ApiResult<Created> {
    let audit = detail(&entry);
    Ok(match entry.failure.clone() {
        None => (
            StatusCode::CREATED,
            audit,
            Json(SnapshotResponse { snapshot: entry }),
        )
            .into_response(),
        Some(reason) => {
            let id = entry.id;
            let error: ApiError = if upload {
                SnapshotApiError::UploadRefused { id, reason }
            } else {
                SnapshotApiError::AttemptFailed { id, reason }
            }
            .into();
            (audit, error).into_response()
        }
    })
}

/// `POST /api/clusters/{cluster}/snapshots`: EtcdSnapshot from a healthy node, streamed into the
/// store with the `os:etcd:backup` credential.
#[tracing::instrument(name = "create_snapshot", skip(state, user, body))]
pub async fn create_snapshot(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cluster): Path<String>,
    body: Bytes,
) -> ApiResult<Created> {
    let watched = state.cluster(&cluster)?;
    // The body is optional: no body (or `{}`) lets the console pick the node.
    let request: TakeSnapshotRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TakeSnapshotRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("request body: {e}")))?
    };
    let entry = take(
        &state,
        watched,
        &user,
        SnapshotTrigger::Manual,
        request.node,
    )
    .await?;
    created(entry, false)
}

/// The take path the button and the scheduler share: EtcdSnapshot from `asked` (or a healthy
/// node) into the store, recorded in the history whatever happens once a node is chosen.
pub async fn take(
    state: &AppState,
    watched: &WatchedCluster,
    user: &CurrentUser,
    trigger: SnapshotTrigger,
    asked: Option<String>,
) -> Result<SnapshotEntry, SnapshotApiError> {
    let node = pick_node(watched, asked)?;
    let talos = talos_for(watched, TalosRole::EtcdBackup)?;
    let attempt = Attempt {
        cluster: &watched.name,
        node: Some(node.clone()),
        user,
        trigger,
        kind: SnapshotEntryKind::Snapshot,
        expected: ExpectedKind::Snapshot,
        // EtcdSnapshot sends the whole database file, then its sha256.
        expected_size: database_size(watched, &node)
            .map(|n| n + talos_dr_snapshot::TRAILER_LEN as u64),
    };
    let transfer = attempt.begin(state);
    match talos.etcd_snapshot(&node).await {
        Ok(stream) => attempt.ingest(state, transfer, stream).await,
        Err(e) => {
            attempt
                .record_failure(state, transfer, format!("EtcdSnapshot on node {node}: {e}"))
                .await
        }
    }
}

/// `POST /api/clusters/{cluster}/snapshots/raw-copy`: the member's database file read with the
/// admin credential, for when etcd cannot answer a snapshot call.
#[tracing::instrument(name = "create_raw_copy", skip(state, user, request))]
pub async fn create_raw_copy(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cluster): Path<String>,
    AppJson(request): AppJson<RawCopyRequest>,
) -> ApiResult<Created> {
    let watched = state.cluster(&cluster)?;
    let node = pick_node(watched, Some(request.node))?;
    let talos = talos_for(watched, TalosRole::Admin)?;
    let attempt = Attempt {
        cluster: &cluster,
        node: Some(node.clone()),
        user: &user,
        trigger: SnapshotTrigger::Manual,
        kind: SnapshotEntryKind::RawCopy,
        expected: ExpectedKind::RawCopy,
        expected_size: database_size(watched, &node),
    };
    let transfer = attempt.begin(&state);
    let entry = match talos.read_file(&node, commands::ETCD_DATABASE_PATH).await {
        Ok(stream) => attempt.ingest(&state, transfer, stream).await?,
        Err(e) => {
            attempt
                .record_failure(
                    &state,
                    transfer,
                    format!("Read {} on node {node}: {e}", commands::ETCD_DATABASE_PATH),
                )
                .await?
        }
    };
    created(entry, false)
}

/// `POST /api/clusters/{cluster}/snapshots/upload`: the request body is the file, streamed into
/// the store and inspected before it is listed. No file name is used.
#[tracing::instrument(name = "upload_snapshot", skip(state, user, headers, body))]
pub async fn upload_snapshot(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cluster): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Created> {
    state.cluster(&cluster)?;
    // The browser announces the file's size; a wrong figure only skews the progress bar and the
    // up-front free-space check, the size limit is enforced on the bytes themselves.
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0);
    let attempt = Attempt {
        cluster: &cluster,
        node: None,
        user: &user,
        trigger: SnapshotTrigger::Upload,
        kind: SnapshotEntryKind::Upload,
        expected: ExpectedKind::Upload,
        expected_size: announced,
    };
    let transfer = attempt.begin(&state);
    let entry = attempt
        .ingest(&state, transfer, body.into_data_stream())
        .await?;
    created(entry, true)
}

/// `POST /api/clusters/{cluster}/snapshots/{id}/rehearse`: restores the file into a throwaway
/// etcd and marks the entry with the time and the result.
#[tracing::instrument(name = "rehearse_snapshot", skip(state))]
pub async fn rehearse_snapshot(
    State(state): State<AppState>,
    Path((cluster, id)): Path<(String, String)>,
) -> ApiResult<(Extension<AuditDetail>, Json<SnapshotResponse>)> {
    state.cluster(&cluster)?;
    let entry = rehearse_entry(&state, &cluster, &id).await?;
    let mut audit = detail(&entry);
    let passed = entry.rehearsal.as_ref().is_some_and(|r| r.passed);
    audit
        .0
        .parameters
        .insert("passed".into(), passed.to_string());
    Ok((audit, Json(SnapshotResponse { snapshot: entry })))
}

/// The rehearsal the button and a schedule's rehearse option share: the stored file restored
/// into a throwaway etcd, the result recorded on the entry (which is returned with it).
pub async fn rehearse_entry(
    state: &AppState,
    cluster: &str,
    id: &str,
) -> Result<SnapshotEntry, SnapshotApiError> {
    let (row, key) = stored_row(state, cluster, id, "rehearse").await?;
    let service = state.snapshots();
    let store = service.store().await?;
    let local = store
        .staging_dir()
        .join(format!("{}.rehearsal", SnapshotId::random().as_str()));
    store.download(&key, &local).await?;
    let raw = row.entry.kind == SnapshotEntryKind::RawCopy
        || row.entry.stored_as == Some(SnapshotEntryKind::RawCopy);
    let options = rehearsal::RehearsalOptions {
        expected_sha256: row.entry.sha256.clone(),
        ..service.settings.rehearsal.clone()
    };
    let at_ms = now_ms();
    let report = rehearsal::rehearse(&local, raw, &options).await;
    super::store::remove_quietly(&local).await;
    let mut problems = report.differences.clone();
    if let Some(error) = &report.error {
        problems.insert(0, error.clone());
    }
    let result = RehearsalResult {
        at_ms,
        passed: report.passed,
        problems,
        took_ms: report.took_ms,
    };
    service.history.set_rehearsal(id, &result).await?;
    let mut entry = row.entry;
    entry.rehearsal = Some(result);
    Ok(entry)
}
