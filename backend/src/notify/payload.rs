//! What a receiver gets: a generic JSON document, or Slack's incoming-webhook shape.

use serde::{Deserialize, Serialize};
use talos_dr_shared::notifications::{NotificationKind, WebhookFormat};

/// One thing worth telling the team, before it is shaped for a receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub cluster: String,
    pub kind: NotificationKind,
    /// One line: "Approval requested: reset cp-2 (10.5.0.3)".
    pub title: String,
    /// What happened and what is asked of the reader.
    pub text: String,
    /// The console page to open, as a path (`/incidents/…`); receivers get it as is, since the
    /// console does not know the address people reach it by.
    pub link: Option<String>,
    pub incident_id: Option<String>,
    pub at_ms: i64,
    /// Set for what every console replica notices alike (a change of an incident): the outbox
    /// keeps one notification per key, so the team is told once.
    #[serde(skip)]
    pub once_key: Option<String>,
}

/// The request body for `format`.
pub fn body(notification: &Notification, format: WebhookFormat) -> serde_json::Value {
    match format {
        WebhookFormat::Generic => serde_json::json!({
            "event": notification.kind.as_str(),
            "cluster": notification.cluster,
            "title": notification.title,
            "text": notification.text,
            "link": notification.link,
            "incident_id": notification.incident_id,
            "at_ms": notification.at_ms,
            "source": "talos-dr",
        }),
        WebhookFormat::Slack => {
            let mut text = format!(
                "*{}* ({})\n{}",
                slack_escape(&notification.title),
                slack_escape(&notification.cluster),
                slack_escape(&notification.text)
            );
            if let Some(link) = &notification.link {
                text.push_str(&format!("\nOpen in talos-dr: `{}`", slack_escape(link)));
            }
            serde_json::json!({
                // `text` is the fallback for notifications; blocks are what the channel shows.
                "text": format!("{} ({})", notification.title, notification.cluster),
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            })
        }
    }
}

/// Slack's three control characters; everything else is shown as sent.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Notification {
        Notification {
            cluster: "prod".into(),
            kind: NotificationKind::ApprovalRequested,
            title: "Approval requested: reset cp-2 <10.5.0.3>".into(),
            text: "alice asks: etcd data corrupt".into(),
            link: Some("/incidents/abc".into()),
            incident_id: Some("abc".into()),
            at_ms: 42,
            once_key: None,
        }
    }

    #[test]
    fn generic_body_names_the_event_and_cluster() {
        let b = body(&sample(), WebhookFormat::Generic);
        assert_eq!(b["event"], "approval_requested");
        assert_eq!(b["cluster"], "prod");
        assert_eq!(b["incident_id"], "abc");
        assert_eq!(b["at_ms"], 42);
    }

    #[test]
    fn slack_body_escapes_its_control_characters() {
        let b = body(&sample(), WebhookFormat::Slack);
        let shown = b["blocks"][0]["text"]["text"].as_str().unwrap_or_default();
        assert!(shown.contains("reset cp-2 &lt;10.5.0.3&gt;"), "{shown}");
        assert!(shown.contains("`/incidents/abc`"), "{shown}");
        assert_eq!(
            b["text"],
            "Approval requested: reset cp-2 <10.5.0.3> (prod)"
        );
    }
}
