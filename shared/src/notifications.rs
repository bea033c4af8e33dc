//! Webhook notifications per cluster, as the browser sees them: the setting and the recent
//! deliveries, so a receiver that keeps failing shows on the cluster's page.

use serde::{Deserialize, Serialize};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    ApprovalRequested,
    Approved,
    Denied,
    StepFailed,
    RecoveryFinished,
    SnapshotStale,
    SnapshotFailed,
    /// Sent by an admin from the settings, to check the receiver.
    Test,
}

impl NotificationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ApprovalRequested => "approval_requested",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::StepFailed => "step_failed",
            Self::RecoveryFinished => "recovery_finished",
            Self::SnapshotStale => "snapshot_stale",
            Self::SnapshotFailed => "snapshot_failed",
            Self::Test => "test",
        }
    }
}

/// The body a receiver gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"event": ..., "cluster": ..., "title": ..., "text": ..., ...}`
    Generic,
    /// `{"text": ...}` with blocks, as Slack's (and Mattermost's) incoming webhooks take it.
    Slack,
}

/// `PUT /api/clusters/{cluster}/webhook`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRequest {
    pub url: String,
    pub format: WebhookFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first attempt or its next retry.
    Pending,
    Delivered,
    /// Gave up after the last retry.
    Failed,
}

/// One notification and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: i64,
    pub kind: NotificationKind,
    pub title: String,
    pub created_at_ms: i64,
    pub state: DeliveryState,
    pub attempts: u32,
    /// Why the last attempt failed (HTTP status or connection error), if it did.
    pub last_error: Option<String>,
    pub delivered_at_ms: Option<i64>,
    pub next_attempt_at_ms: Option<i64>,
}

/// `GET /api/clusters/{cluster}/webhook`: the receiver (its address shortened to scheme and
/// host, since webhook URLs carry their secret in the path) and the newest deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub cluster: String,
    /// e.g. `https://hooks.slack.com/…`; `None` when no webhook is set.
    pub receiver: Option<String>,
    pub format: Option<WebhookFormat>,
    pub recent: Vec<DeliveryView>,
}
