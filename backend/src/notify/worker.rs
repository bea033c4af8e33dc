//! Delivers queued notifications: one POST per attempt, retried with backoff, each attempt in
//! the audit trail.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Notification, Notifier, body, receiver_label};
use crate::audit::NewAuditEntry;
use crate::clock::now_ms;
use crate::state::AppState;

/// How long a claimed notification is reserved for one attempt: longer than the request timeout.
const LEASE_SLACK: Duration = Duration::from_secs(30);
/// How often due retries are looked for when nothing new was queued.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Runs the delivery worker for as long as the console serves.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    let stale = tokio::spawn(super::stale::watch(state.clone()));
    let recovery = tokio::spawn(super::recovery_feed::watch(state.clone()));
    tokio::spawn(async move {
        // The watchers stop with the worker.
        let _watchers = (AbortOnDrop(stale), AbortOnDrop(recovery));
        let notifier = state.notifier().clone();
        let client = match reqwest::Client::builder()
            .timeout(notifier.settings().timeout)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook client could not be built; notifications stay queued");
                return;
            }
        };
        loop {
            let delivered = deliver_due(&state, &notifier, &client).await;
            if delivered == 0 {
                tokio::select! {
                    () = notifier.wake().notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
        }
    })
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One pass over the due notifications; returns how many were attempted.
async fn deliver_due(state: &AppState, notifier: &Notifier, client: &reqwest::Client) -> usize {
    let settings = notifier.settings();
    let lease = i64::try_from((settings.timeout + LEASE_SLACK).as_millis()).unwrap_or(i64::MAX);
    let claimed = match notifier.store().claim_due(now_ms(), lease, 16).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "notification outbox unreadable");
            return 0;
        }
    };
    let count = claimed.len();
    for item in claimed {
        let attempt = item.attempts + 1;
        let hook = notifier.store().find_webhook(&item.cluster).await;
        let (outcome, receiver) = match hook {
            Ok(Some(hook)) => {
                let outcome = match serde_json::from_str::<Notification>(&item.body_json) {
                    Ok(n) => post(client, &hook.url, &body(&n, hook.format)).await,
                    Err(e) => Err(format!("stored notification unreadable: {e}")),
                };
                (outcome, receiver_label(&hook.url))
            }
            Ok(None) => (
                Err("no webhook is set for the cluster any more".to_string()),
                "-".into(),
            ),
            Err(e) => (Err(format!("webhook setting unreadable: {e}")), "-".into()),
        };
        let mut parameters = BTreeMap::new();
        parameters.insert("notification".to_string(), item.id.to_string());
        parameters.insert("event".to_string(), item.kind.clone());
        parameters.insert("attempt".to_string(), attempt.to_string());
        let outcome_words = match &outcome {
            Ok(()) => "delivered".to_string(),
            Err(e) if attempt < settings.max_attempts => format!("failed, will retry: {e}"),
            Err(e) => format!("failed, gave up: {e}"),
        };
        let entry = NewAuditEntry {
            actor: "talos-dr".into(),
            roles: vec![],
            action: "webhook_delivery".into(),
            cluster: Some(item.cluster.clone()),
            target: Some(receiver),
            parameters,
            outcome: outcome_words,
            client: None,
        };
        // The attempt and its audit entry land together, so what the cluster page shows was
        // always audited first.
        let now = now_ms();
        let recorded = match &outcome {
            Ok(()) => {
                notifier
                    .store()
                    .mark_delivered(item.id, now, entry.clone())
                    .await
            }
            Err(error) => {
                let retry = (attempt < settings.max_attempts).then(|| {
                    now + i64::try_from(settings.backoff(attempt).as_millis()).unwrap_or(i64::MAX)
                });
                notifier
                    .store()
                    .mark_failed(item.id, error, now, retry, entry.clone())
                    .await
            }
        };
        if let Err(e) = recorded {
            // The POST happened either way: it is audited on its own, and the claim runs out so
            // the notification is attempted again.
            tracing::error!(error = %e, id = item.id, "delivery result not recorded");
            state.storage().audit.record(entry).await;
        }
    }
    count
}

/// One POST; any status outside 2xx is a failure, named by its code.
async fn post(client: &reqwest::Client, url: &str, body: &serde_json::Value) -> Result<(), String> {
    let response = client.post(url).json(body).send().await.map_err(|e| {
        // The URL holds the receiver's secret: it never goes into the trail or the page.
        let e = e.without_url();
        if e.is_timeout() {
            "the receiver did not answer in time".to_string()
        } else if e.is_connect() {
            "the receiver refused the connection".to_string()
        } else {
            format!("request failed: {e}")
        }
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered HTTP {}", status.as_u16()))
    }
}
