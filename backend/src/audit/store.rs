//! Writing and reading the audit trail, and checking its hash chain.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use talos_dr_shared::{AuditEntry, Role};
use tokio::sync::Mutex;

use super::{AuditError, NewAuditEntry};
use crate::clock::now_ms;

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone)]
pub struct AuditStore {
    pool: AnyPool,
    /// Appends in this process one at a time: each needs the entry before it.
    append_lock: Arc<Mutex<()>>,
}

/// Which entries `GET /api/audit` returns; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub cluster: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only entries before this `seq` (the next page of a newest-first listing).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    Intact {
        entries: i64,
    },
    /// The first entry that does not fit the chain, and why.
    Broken {
        seq: i64,
        problem: String,
    },
}

/// The fields a hash covers, in a fixed order; serialized as JSON for hashing.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: i64,
    at_ms: i64,
    actor: &'a str,
    roles: &'a str,
    action: &'a str,
    cluster: Option<&'a str>,
    target: Option<&'a str>,
    parameters: &'a str,
    outcome: &'a str,
    client: Option<&'a str>,
    prev_hash: &'a str,
}

impl Hashed<'_> {
    fn digest(&self) -> Result<String, AuditError> {
        let bytes = serde_json::to_vec(self)?;
        Ok(hex(&Sha256::digest(&bytes)))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    at_ms: i64,
    actor: String,
    roles: String,
    action: String,
    cluster: Option<String>,
    target: Option<String>,
    parameters: String,
    outcome: String,
    client: Option<String>,
    prev_hash: String,
    hash: String,
}

impl Row {
    fn hashed(&self) -> Hashed<'_> {
        Hashed {
            seq: self.seq,
            at_ms: self.at_ms,
            actor: &self.actor,
            roles: &self.roles,
            action: &self.action,
            cluster: self.cluster.as_deref(),
            target: self.target.as_deref(),
            parameters: &self.parameters,
            outcome: &self.outcome,
            client: self.client.as_deref(),
            prev_hash: &self.prev_hash,
        }
    }

    fn into_entry(self) -> AuditEntry {
        AuditEntry {
            roles: self.roles.split(',').filter_map(Role::parse).collect(),
            parameters: serde_json::from_str::<BTreeMap<String, String>>(&self.parameters)
                .unwrap_or_default(),
            seq: self.seq,
            at_ms: self.at_ms,
            actor: self.actor,
            action: self.action,
            cluster: self.cluster,
            target: self.target,
            outcome: self.outcome,
            client: self.client,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

const COLUMNS: &str = "seq, at_ms, actor, roles, action, cluster, target, parameters, outcome, client, prev_hash, hash";

impl AuditStore {
    pub fn new(pool: AnyPool) -> Self {
        Self {
            pool,
            append_lock: Arc::new(Mutex::new(())),
        }
    }

    /// Appends an entry after the current last one.
    pub async fn append(&self, entry: NewAuditEntry) -> Result<AuditEntry, AuditError> {
        let _one_at_a_time = self.append_lock.lock().await;
        // Take the write lock up front: a deferred transaction that reads first cannot become a
        // writer while another connection commits (SQLite answers "database is locked" at once,
        // without waiting), and the entry would be lost.
        let mut tx =
            crate::storage::begin_write(&self.pool, crate::storage::WriteLock::Audit).await?;
        let entry = insert_next(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Appends, and logs instead of failing: used after an action already happened, where the
    /// caller can no longer undo it.
    pub async fn record(&self, entry: NewAuditEntry) {
        let action = entry.action.clone();
        if let Err(e) = self.append(entry).await {
            tracing::error!(error = %e, action, "could not write the audit entry");
        }
    }

    /// Newest first.
    pub async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, AuditError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE 1 = 1");
        let mut n = 0;
        let mut next = |column: &str, op: &str| {
            n += 1;
            format!(" AND {column} {op} ${n}")
        };
        if filter.actor.is_some() {
            sql += &next("actor", "=");
        }
        if filter.action.is_some() {
            sql += &next("action", "=");
        }
        if filter.cluster.is_some() {
            sql += &next("cluster", "=");
        }
        if filter.since_ms.is_some() {
            sql += &next("at_ms", ">=");
        }
        if filter.until_ms.is_some() {
            sql += &next("at_ms", "<");
        }
        if filter.before_seq.is_some() {
            sql += &next("seq", "<");
        }
        n += 1;
        sql += &format!(" ORDER BY seq DESC LIMIT ${n}");
        let mut query = sqlx::query_as::<_, Row>(&sql);
        for text in [&filter.actor, &filter.action, &filter.cluster]
            .into_iter()
            .flatten()
        {
            query = query.bind(text);
        }
        for number in [filter.since_ms, filter.until_ms, filter.before_seq]
            .into_iter()
            .flatten()
        {
            query = query.bind(number);
        }
        let rows = query.bind(filter.limit).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(Row::into_entry).collect())
    }

    /// Every entry from `after_seq` on, oldest first, at most `limit`: the export reads the whole
    /// trail in pages of this.
    pub async fn page(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditEntry>, AuditError> {
        let rows = self.rows_after(after_seq, limit).await?;
        Ok(rows.into_iter().map(Row::into_entry).collect())
    }

    async fn rows_after(&self, after_seq: i64, limit: i64) -> Result<Vec<Row>, AuditError> {
        Ok(sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Walks the whole trail: numbering without gaps, each `prev_hash` equal to the hash before
    /// it, each `hash` equal to the hash of the entry's own fields.
    pub async fn verify(&self) -> Result<ChainReport, AuditError> {
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS_HASH.to_string();
        loop {
            let rows = self.rows_after(expected_seq - 1, 1000).await?;
            if rows.is_empty() {
                return Ok(ChainReport::Intact {
                    entries: expected_seq - 1,
                });
            }
            for row in rows {
                let broken = |problem: &str| ChainReport::Broken {
                    seq: row.seq,
                    problem: problem.to_string(),
                };
                if row.seq != expected_seq {
                    return Ok(ChainReport::Broken {
                        seq: expected_seq,
                        problem: format!(
                            "entry {expected_seq} is missing (the next one is {})",
                            row.seq
                        ),
                    });
                }
                if row.prev_hash != prev_hash {
                    return Ok(broken(
                        "its previous-entry hash does not match the entry before it",
                    ));
                }
                if row.hashed().digest()? != row.hash {
                    return Ok(broken(
                        "its content does not match its hash (it was changed)",
                    ));
                }
                prev_hash = row.hash;
                expected_seq += 1;
            }
        }
    }
}

/// Appends `entry` inside a transaction that also writes something else (a step's move), so
/// both land or neither does. The caller's transaction must hold the database's write lock
/// (`begin_write`); on PostgreSQL the audit trail's own lock is taken here as well.
pub async fn append_within(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    entry: NewAuditEntry,
) -> Result<AuditEntry, AuditError> {
    crate::storage::lock_within(tx, crate::storage::WriteLock::Audit).await?;
    insert_next(tx, entry).await
}

/// Writes `entry` after the trail's last one, chaining its hash.
async fn insert_next(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    entry: NewAuditEntry,
) -> Result<AuditEntry, AuditError> {
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    let (prev_seq, prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_string()));
    let roles: Vec<&str> = entry.roles.iter().map(Role::as_str).collect();
    let mut row = Row {
        seq: prev_seq + 1,
        at_ms: now_ms(),
        actor: entry.actor,
        roles: roles.join(","),
        action: entry.action,
        cluster: entry.cluster,
        target: entry.target,
        parameters: serde_json::to_string(&entry.parameters)?,
        outcome: entry.outcome,
        client: entry.client,
        prev_hash,
        hash: String::new(),
    };
    row.hash = row.hashed().digest()?;
    sqlx::query(&format!(
            "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(row.seq)
        .bind(row.at_ms)
        .bind(&row.actor)
        .bind(&row.roles)
        .bind(&row.action)
        .bind(&row.cluster)
        .bind(&row.target)
        .bind(&row.parameters)
        .bind(&row.outcome)
        .bind(&row.client)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(&mut **tx)
        .await?;
    Ok(row.into_entry())
}
