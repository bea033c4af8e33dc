//! Webhook notifications: approvals requested, given or denied, failed steps, finished
//! recoveries, stale or failed snapshots. A notification goes into the outbox table first and a
//! worker delivers it, retrying with backoff; every attempt is in the audit trail and the newest
//! deliveries show on the cluster's page, so a receiver that keeps failing is noticed.

pub mod api;
pub mod events;
mod payload;
pub mod recovery_feed;
mod stale;
mod store;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;

pub use payload::{Notification, body};
pub use store::{NotifyStore, NotifyStoreError, Webhook};
pub use worker::spawn;

/// How deliveries are paced.
#[derive(Debug, Clone, Copy)]
pub struct NotifySettings {
    /// Attempts per notification, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry; doubles with each further one, up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Per request to the receiver.
    pub timeout: Duration,
    /// How often each cluster's snapshot freshness target is checked.
    pub stale_check_every: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            // Targets are hours: a minute's delay does not matter.
            stale_check_every: Duration::from_secs(60),
        }
    }
}

impl NotifySettings {
    /// The wait after `attempts` failed attempts.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_cap)
    }
}

/// Cheap to clone: the store and the worker's wake-up bell.
#[derive(Debug, Clone)]
pub struct Notifier {
    store: NotifyStore,
    wake: Arc<tokio::sync::Notify>,
    settings: NotifySettings,
}

impl Notifier {
    pub fn new(pool: AnyPool, settings: NotifySettings) -> Self {
        Self {
            store: NotifyStore::new(pool),
            wake: Arc::new(tokio::sync::Notify::new()),
            settings,
        }
    }

    pub fn store(&self) -> &NotifyStore {
        &self.store
    }

    pub fn settings(&self) -> NotifySettings {
        self.settings
    }

    /// Queues `n` for its cluster's receiver (nothing happens when the cluster has none).
    /// Never fails the caller: a notification that cannot be queued is logged, since the
    /// action it reports has already happened.
    pub async fn notify(&self, n: Notification) {
        match self.store.enqueue(&n, crate::clock::now_ms()).await {
            Ok(Some(_)) => self.wake.notify_one(),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, cluster = %n.cluster, kind = n.kind.as_str(), "notification not queued")
            }
        }
    }

    pub(crate) fn wake(&self) -> &tokio::sync::Notify {
        &self.wake
    }
}

/// The receiver's address as the page and the audit trail show it: scheme and host only,
/// since webhook URLs carry their secret in the path.
pub fn receiver_label(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match u.port() {
            Some(port) => format!(
                "{}://{}:{}/…",
                u.scheme(),
                u.host_str().unwrap_or("?"),
                port
            ),
            None => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        },
        Err(_) => "(unparsable URL)".to_string(),
    }
}

/// Checks a receiver URL: http or https, with a host. The error names the field.
pub fn validate_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("url: not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "url: must be an http or https URL, not {}:",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("url: has no host".to_string());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = NotifySettings {
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(10),
            ..NotifySettings::default()
        };
        assert_eq!(s.backoff(1), Duration::from_secs(2));
        assert_eq!(s.backoff(2), Duration::from_secs(4));
        assert_eq!(s.backoff(3), Duration::from_secs(8));
        assert_eq!(s.backoff(4), Duration::from_secs(10));
        assert_eq!(s.backoff(60), Duration::from_secs(10));
    }

    #[test]
    fn only_http_and_https_receivers_are_accepted() {
        assert!(validate_url("https://hooks.example.com/T0/B0/secret").is_ok());
        assert!(validate_url("http://127.0.0.1:9000/hook").is_ok());
        let err = validate_url("ftp://example.com/hook").expect_err("ftp is refused");
        assert!(
            err.starts_with("url: must be an http or https URL"),
            "{err}"
        );
        assert!(
            validate_url("not a url")
                .expect_err("not a URL")
                .starts_with("url: not a URL")
        );
        assert!(validate_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn the_label_hides_the_secret_path() {
        assert_eq!(
            receiver_label("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            receiver_label("http://127.0.0.1:9000/x"),
            "http://127.0.0.1:9000/…"
        );
    }
}
