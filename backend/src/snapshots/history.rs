//! The snapshot history table: one row per attempt, stored or failed.
//!
//! Inspector results are kept as the shared JSON shapes the browser reads, so listing the
//! history never opens a snapshot file.

use sqlx::{AnyPool, Row};
use talos_dr_shared::snapshots::{
    RehearsalResult, ResourceKeys, SnapshotEntry, SnapshotEntryKind, SnapshotFigures,
    SnapshotTrigger, SnapshotVerdictSummary,
};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("snapshot history: {0}")]
    Database(#[from] sqlx::Error),
    #[error("snapshot history: row {id}: column {column} holds unreadable JSON: {source}")]
    BadJson {
        id: String,
        column: &'static str,
        source: serde_json::Error,
    },
}

/// A row as written: everything about the attempt, with the object key when one was stored.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub entry: SnapshotEntry,
    pub object_key: Option<String>,
    pub resources: Vec<ResourceKeys>,
}

#[derive(Debug, Clone)]
pub struct SnapshotHistory {
    pool: AnyPool,
}

fn trigger_str(t: SnapshotTrigger) -> &'static str {
    match t {
        SnapshotTrigger::Manual => "manual",
        SnapshotTrigger::Schedule => "schedule",
        SnapshotTrigger::Upload => "upload",
    }
}

fn parse_trigger(s: &str) -> SnapshotTrigger {
    match s {
        "schedule" => SnapshotTrigger::Schedule,
        "upload" => SnapshotTrigger::Upload,
        _ => SnapshotTrigger::Manual,
    }
}

pub(crate) fn kind_str(k: SnapshotEntryKind) -> &'static str {
    match k {
        SnapshotEntryKind::Snapshot => "snapshot",
        SnapshotEntryKind::RawCopy => "raw_copy",
        SnapshotEntryKind::Upload => "upload",
    }
}

fn parse_kind(s: &str) -> SnapshotEntryKind {
    match s {
        "raw_copy" => SnapshotEntryKind::RawCopy,
        "upload" => SnapshotEntryKind::Upload,
        _ => SnapshotEntryKind::Snapshot,
    }
}

fn to_json<T: serde::Serialize>(value: &Option<T>) -> Option<String> {
    value.as_ref().and_then(|v| serde_json::to_string(v).ok())
}

const COLUMNS: &str = "id, cluster, node, taken_by, taken_at_ms, trigger_kind, kind, stored_as, \
    failure, object_key, sha256, size_bytes, status_json, contents_json, verdict_json, rehearsal_json";

impl SnapshotHistory {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    pub async fn insert(&self, row: &HistoryRow) -> Result<(), HistoryError> {
        let e = &row.entry;
        let status = serde_json::to_string(&(&e.figures, e.live_keys)).ok();
        let contents = (!row.resources.is_empty())
            .then(|| serde_json::to_string(&row.resources).ok())
            .flatten();
        sqlx::query(&format!(
            "INSERT INTO snapshots ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&e.id)
        .bind(&e.cluster)
        .bind(&e.node)
        .bind(&e.taken_by)
        .bind(e.taken_at_ms)
        .bind(trigger_str(e.trigger))
        .bind(kind_str(e.kind))
        .bind(e.stored_as.map(kind_str))
        .bind(&e.failure)
        .bind(&row.object_key)
        .bind(&e.sha256)
        .bind(e.size.and_then(|s| i64::try_from(s).ok()))
        .bind(status)
        .bind(contents)
        .bind(to_json(&e.verdict))
        .bind(to_json(&e.rehearsal))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Newest first.
    pub async fn list(&self, cluster: &str) -> Result<Vec<HistoryRow>, HistoryError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM snapshots WHERE cluster = $1 ORDER BY taken_at_ms DESC, id DESC"
        ))
        .bind(cluster)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_row).collect()
    }

    pub async fn find(&self, cluster: &str, id: &str) -> Result<Option<HistoryRow>, HistoryError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM snapshots WHERE cluster = $1 AND id = $2"
        ))
        .bind(cluster)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(read_row).transpose()
    }

    /// Removes one row (retention, after its object is gone).
    pub async fn delete(&self, cluster: &str, id: &str) -> Result<(), HistoryError> {
        sqlx::query("DELETE FROM snapshots WHERE cluster = $1 AND id = $2")
            .bind(cluster)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_rehearsal(
        &self,
        id: &str,
        rehearsal: &RehearsalResult,
    ) -> Result<(), HistoryError> {
        sqlx::query("UPDATE snapshots SET rehearsal_json = $1 WHERE id = $2")
            .bind(serde_json::to_string(rehearsal).ok())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn json_column<T: serde::de::DeserializeOwned>(
    row: &sqlx::any::AnyRow,
    id: &str,
    column: &'static str,
) -> Result<Option<T>, HistoryError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|source| HistoryError::BadJson {
            id: id.to_string(),
            column,
            source,
        })
    })
    .transpose()
}

fn read_row(row: &sqlx::any::AnyRow) -> Result<HistoryRow, HistoryError> {
    let id: String = row.try_get("id")?;
    let status: Option<(Option<SnapshotFigures>, Option<u64>)> =
        json_column(row, &id, "status_json")?;
    let (figures, live_keys) = status.unwrap_or((None, None));
    let verdict: Option<SnapshotVerdictSummary> = json_column(row, &id, "verdict_json")?;
    let rehearsal: Option<RehearsalResult> = json_column(row, &id, "rehearsal_json")?;
    let resources: Option<Vec<ResourceKeys>> = json_column(row, &id, "contents_json")?;
    let size: Option<i64> = row.try_get("size_bytes")?;
    let stored_as: Option<String> = row.try_get("stored_as")?;
    let trigger: String = row.try_get("trigger_kind")?;
    let kind: String = row.try_get("kind")?;
    let mut entry = SnapshotEntry {
        id: id.clone(),
        cluster: row.try_get("cluster")?,
        node: row.try_get("node")?,
        taken_by: row.try_get("taken_by")?,
        taken_at_ms: row.try_get("taken_at_ms")?,
        trigger: parse_trigger(&trigger),
        kind: parse_kind(&kind),
        stored_as: stored_as.as_deref().map(parse_kind),
        failure: row.try_get("failure")?,
        size: size.and_then(|s| u64::try_from(s).ok()),
        sha256: row.try_get("sha256")?,
        figures,
        live_keys,
        verdict,
        rehearsal,
        talosctl: String::new(),
    };
    entry.talosctl = super::commands::for_entry(&entry);
    Ok(HistoryRow {
        entry,
        object_key: row.try_get("object_key")?,
        resources: resources.unwrap_or_default(),
    })
}
