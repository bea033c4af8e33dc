//! Webhook settings and the notification outbox, in the console's database.

use sqlx::{AnyPool, Row};

use crate::storage::{WriteLock, begin_write};
use talos_dr_shared::notifications::{
    DeliveryState, DeliveryView, NotificationKind, WebhookFormat,
};

use super::payload::Notification;

#[derive(Debug, thiserror::Error)]
#[error("notification store: {0}")]
pub struct NotifyStoreError(#[from] sqlx::Error);

impl From<crate::audit::AuditError> for NotifyStoreError {
    fn from(e: crate::audit::AuditError) -> Self {
        match e {
            crate::audit::AuditError::Store(e) => Self(e),
            other => Self(sqlx::Error::Encode(Box::new(other))),
        }
    }
}

/// A cluster's receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub format: WebhookFormat,
}

/// A notification claimed for one delivery attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub cluster: String,
    pub kind: String,
    pub body_json: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

fn format_name(format: WebhookFormat) -> &'static str {
    match format {
        WebhookFormat::Generic => "generic",
        WebhookFormat::Slack => "slack",
    }
}

fn parse_format(name: &str) -> WebhookFormat {
    if name == "slack" {
        WebhookFormat::Slack
    } else {
        WebhookFormat::Generic
    }
}

fn parse_kind(name: &str) -> NotificationKind {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .unwrap_or(NotificationKind::Test)
}

#[derive(Debug, Clone)]
pub struct NotifyStore {
    pool: AnyPool,
}

impl NotifyStore {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    pub async fn put_webhook(
        &self,
        cluster: &str,
        hook: &Webhook,
        by: &str,
        now_ms: i64,
    ) -> Result<(), NotifyStoreError> {
        sqlx::query(
            "INSERT INTO webhooks (cluster, url, format, updated_by, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (cluster) DO UPDATE SET url = excluded.url, format = excluded.format, \
             updated_by = excluded.updated_by, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(cluster)
        .bind(&hook.url)
        .bind(format_name(hook.format))
        .bind(by)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_webhook(&self, cluster: &str) -> Result<bool, NotifyStoreError> {
        let done = sqlx::query("DELETE FROM webhooks WHERE cluster = $1")
            .bind(cluster)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn find_webhook(&self, cluster: &str) -> Result<Option<Webhook>, NotifyStoreError> {
        let row = sqlx::query("SELECT url, format FROM webhooks WHERE cluster = $1")
            .bind(cluster)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| Webhook {
            url: r.get("url"),
            format: parse_format(r.get::<String, _>("format").as_str()),
        }))
    }

    /// Queues `n` when its cluster has a receiver; returns the outbox id, or `None` when no
    /// one is listening or another console replica queued the same notification already.
    pub async fn enqueue(
        &self,
        n: &Notification,
        now_ms: i64,
    ) -> Result<Option<i64>, NotifyStoreError> {
        let body = serde_json::to_string(n).unwrap_or_default();
        let row = sqlx::query(
            "INSERT INTO notification_outbox (cluster, kind, title, body_json, created_at_ms, next_attempt_at_ms, dedupe_key) \
             SELECT $1, $2, $3, $4, $5, $6, $8 WHERE EXISTS (SELECT 1 FROM webhooks WHERE cluster = $7) \
             ON CONFLICT (dedupe_key) DO NOTHING \
             RETURNING id",
        )
        .bind(&n.cluster)
        .bind(n.kind.as_str())
        .bind(&n.title)
        .bind(body)
        .bind(now_ms)
        .bind(now_ms)
        .bind(&n.cluster)
        .bind(&n.once_key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.get("id")))
    }

    /// Takes up to `limit` due notifications for `lease_ms`: another worker (in this or another
    /// console) skips them until the lease ends, so each attempt is made once.
    pub async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>, NotifyStoreError> {
        let rows = sqlx::query(
            "UPDATE notification_outbox SET claimed_until_ms = $1 \
             WHERE id IN (SELECT id FROM notification_outbox \
                 WHERE delivered_at_ms IS NULL AND failed_at_ms IS NULL \
                 AND next_attempt_at_ms <= $2 \
                 AND (claimed_until_ms IS NULL OR claimed_until_ms <= $3) \
                 ORDER BY id LIMIT $4) \
             RETURNING id, cluster, kind, body_json, attempts",
        )
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed: Vec<Claimed> = rows
            .into_iter()
            .map(|r| Claimed {
                id: r.get("id"),
                cluster: r.get("cluster"),
                kind: r.get("kind"),
                body_json: r.get("body_json"),
                attempts: u32::try_from(r.get::<i64, _>("attempts")).unwrap_or(0),
            })
            .collect();
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// Records a delivered attempt together with its audit entry.
    pub async fn mark_delivered(
        &self,
        id: i64,
        now_ms: i64,
        audit: crate::audit::NewAuditEntry,
    ) -> Result<(), NotifyStoreError> {
        let mut tx = begin_write(&self.pool, WriteLock::Audit).await?;
        sqlx::query(
            "UPDATE notification_outbox SET attempts = attempts + 1, delivered_at_ms = $1, \
             claimed_until_ms = NULL, next_attempt_at_ms = NULL WHERE id = $2",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        crate::audit::append_within(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt together with its audit entry: retried at `retry_at_ms`, or
    /// given up when `None`.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        now_ms: i64,
        retry_at_ms: Option<i64>,
        audit: crate::audit::NewAuditEntry,
    ) -> Result<(), NotifyStoreError> {
        let mut tx = begin_write(&self.pool, WriteLock::Audit).await?;
        sqlx::query(
            "UPDATE notification_outbox SET attempts = attempts + 1, last_error = $1, \
             claimed_until_ms = NULL, next_attempt_at_ms = $2, failed_at_ms = $3 WHERE id = $4",
        )
        .bind(error)
        .bind(retry_at_ms)
        .bind(if retry_at_ms.is_none() {
            Some(now_ms)
        } else {
            None
        })
        .bind(id)
        .execute(&mut *tx)
        .await?;
        crate::audit::append_within(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The cluster's newest notifications, newest first.
    pub async fn recent(
        &self,
        cluster: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryView>, NotifyStoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, title, created_at_ms, attempts, last_error, delivered_at_ms, \
             failed_at_ms, next_attempt_at_ms FROM notification_outbox WHERE cluster = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(cluster)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let delivered: Option<i64> = r.get("delivered_at_ms");
                let failed: Option<i64> = r.get("failed_at_ms");
                DeliveryView {
                    id: r.get("id"),
                    kind: parse_kind(r.get::<String, _>("kind").as_str()),
                    title: r.get("title"),
                    created_at_ms: r.get("created_at_ms"),
                    state: match (delivered, failed) {
                        (Some(_), _) => DeliveryState::Delivered,
                        (None, Some(_)) => DeliveryState::Failed,
                        (None, None) => DeliveryState::Pending,
                    },
                    attempts: u32::try_from(r.get::<i64, _>("attempts")).unwrap_or(0),
                    last_error: r.get("last_error"),
                    delivered_at_ms: delivered,
                    next_attempt_at_ms: r.get("next_attempt_at_ms"),
                }
            })
            .collect())
    }
}
