//! The audit trail over HTTP: a filtered, paged listing and a JSON-lines export.

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use talos_dr_shared::AuditEntry;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{AuditError, AuditFilter};
use crate::error::ApiResult;
use crate::state::AppState;

const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;
const EXPORT_PAGE: i64 = 500;

/// Query string of `GET /api/audit`. Times are RFC 3339 or milliseconds since the Unix epoch.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub cluster: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Entries before this `seq`: pass the previous page's `meta.next_before`.
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AuditListResponse {
    pub entries: Vec<AuditEntry>,
    pub meta: AuditListMeta,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AuditListMeta {
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

fn parse_time(field: &str, value: &str) -> Result<i64, AuditError> {
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    OffsetDateTime::parse(value, &Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        .map_err(|_| {
            AuditError::BadFilter(format!(
                "field \"{field}\": {value:?} is neither an RFC 3339 time nor milliseconds since the epoch"
            ))
        })
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, AuditError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(AuditError::BadFilter(format!(
                "field \"limit\": must be between 1 and {MAX_PAGE}"
            )));
        }
        Ok(AuditFilter {
            actor: self.actor.clone(),
            action: self.action.clone(),
            cluster: self.cluster.clone(),
            since_ms: self
                .since
                .as_deref()
                .map(|v| parse_time("since", v))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|v| parse_time("until", v))
                .transpose()?,
            before_seq: self.before,
            limit,
        })
    }
}

/// `GET /api/audit`: newest first.
#[tracing::instrument(name = "list_audit_entries", skip(state))]
pub async fn list_audit_entries(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Json<AuditListResponse>> {
    let filter = query.filter()?;
    let entries = state.storage().audit.list(&filter).await?;
    let next_before = (entries.len() as i64 == filter.limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditListResponse {
        entries,
        meta: AuditListMeta { next_before },
    }))
}

/// `GET /api/audit/export`: the whole trail, oldest first, one JSON entry per line, read from
/// the database page by page while it streams.
#[tracing::instrument(name = "export_audit_entries", skip(state))]
pub async fn export_audit_entries(State(state): State<AppState>) -> Response {
    let store = state.storage().audit.clone();
    let pages = futures::stream::unfold(Some(0_i64), move |after| {
        let store = store.clone();
        async move {
            let after = after?;
            match store.page(after, EXPORT_PAGE).await {
                Ok(entries) if entries.is_empty() => None,
                Ok(entries) => {
                    let last = entries.last().map(|e| e.seq);
                    let mut text = String::new();
                    for entry in &entries {
                        match serde_json::to_string(entry) {
                            Ok(line) => {
                                text.push_str(&line);
                                text.push('\n');
                            }
                            Err(e) => return Some((Err(std::io::Error::other(e)), None)),
                        }
                    }
                    Some((Ok(text), last))
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit export stopped");
                    Some((Err(std::io::Error::other(e)), None))
                }
            }
        }
    })
    .boxed();
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"talos-dr-audit.jsonl\"",
            ),
        ],
        Body::from_stream(pages),
    )
        .into_response()
}
