//! The notifications the console sends, worded once: what happened, on which node, and what is
//! asked of whoever reads it.

use talos_dr_shared::notifications::NotificationKind;
use talos_dr_shared::recovery::{Approval, Incident, RecoveryStep};

use super::Notification;

fn step_words(step: &RecoveryStep) -> String {
    match &step.target {
        Some(t) => format!("{} on {} ({})", step.kind.title(), t.hostname, t.address),
        None => step.kind.title().to_string(),
    }
}

fn for_incident(
    incident: &Incident,
    kind: NotificationKind,
    title: String,
    text: String,
    at_ms: i64,
) -> Notification {
    Notification {
        cluster: incident.cluster.clone(),
        kind,
        title,
        text,
        link: Some(format!("/incidents/{}", incident.id)),
        incident_id: Some(incident.id.clone()),
        at_ms,
        once_key: None,
    }
}

/// A destructive step waits for someone with the approver role.
pub fn approval_requested(incident: &Incident, step: &RecoveryStep, at_ms: i64) -> Notification {
    let (by, reason) = step
        .request
        .as_ref()
        .map(|r| (r.by.as_str(), r.reason.as_str()))
        .unwrap_or(("someone", ""));
    for_incident(
        incident,
        NotificationKind::ApprovalRequested,
        format!("Approval requested: {}", step_words(step)),
        format!(
            "{by} asks for approval ({}): {reason}\nAn approver other than {by} must approve it in talos-dr.",
            step.talosctl
        ),
        at_ms,
    )
}

/// Someone answered a request.
pub fn answered(
    incident: &Incident,
    step: &RecoveryStep,
    approval: &Approval,
    at_ms: i64,
) -> Notification {
    let approve = approval.decision == talos_dr_shared::recovery::Decision::Approve;
    let kind = if approve {
        NotificationKind::Approved
    } else {
        NotificationKind::Denied
    };
    let verb = match (approve, approval.break_glass) {
        (true, true) => "approved their own request with BREAK-GLASS",
        (true, false) => "approved",
        (false, _) => "denied",
    };
    let reason = approval
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    for_incident(
        incident,
        kind,
        format!(
            "{}: {}",
            if approve { "Approved" } else { "Denied" },
            step_words(step)
        ),
        format!("{} {verb}{reason}", approval.by),
        at_ms,
    )
}

pub fn step_failed(incident: &Incident, step: &RecoveryStep, at_ms: i64) -> Notification {
    for_incident(
        incident,
        NotificationKind::StepFailed,
        format!("Step failed: {}", step_words(step)),
        step.detail
            .clone()
            .unwrap_or_else(|| "The step failed; open the incident for details.".into()),
        at_ms,
    )
}

pub fn recovery_finished(incident: &Incident, at_ms: i64) -> Notification {
    for_incident(
        incident,
        NotificationKind::RecoveryFinished,
        format!(
            "Recovery {}: {}",
            incident.status.as_str(),
            incident.cluster
        ),
        incident
            .summary
            .clone()
            .unwrap_or_else(|| "The incident was closed.".into()),
        at_ms,
    )
}

/// A snapshot attempt (scheduled or by hand) did not produce a verified snapshot.
pub fn snapshot_failed(cluster: &str, reason: &str, at_ms: i64) -> Notification {
    Notification {
        cluster: cluster.to_string(),
        kind: NotificationKind::SnapshotFailed,
        title: format!("Snapshot failed: {cluster}"),
        text: reason.to_string(),
        link: Some(format!("/clusters/{cluster}/snapshots")),
        incident_id: None,
        at_ms,
        once_key: None,
    }
}

/// The newest verified snapshot is older than the cluster's freshness target.
pub fn snapshot_stale(
    cluster: &str,
    age_seconds: Option<u64>,
    target_seconds: u64,
    at_ms: i64,
) -> Notification {
    let age = match age_seconds {
        Some(s) => format!("the newest verified snapshot is {} old", hours(s)),
        None => "there is no verified snapshot at all".to_string(),
    };
    Notification {
        cluster: cluster.to_string(),
        kind: NotificationKind::SnapshotStale,
        title: format!("Snapshots stale: {cluster}"),
        text: format!(
            "{age}; the target is one no older than {}.",
            hours(target_seconds)
        ),
        link: Some(format!("/clusters/{cluster}/snapshots")),
        incident_id: None,
        at_ms,
        once_key: None,
    }
}

fn hours(seconds: u64) -> String {
    if seconds >= 3600 {
        format!("{:.1} h", seconds as f64 / 3600.0)
    } else {
        format!("{} min", seconds / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_words_name_the_age_and_target() {
        let n = snapshot_stale("prod", Some(8 * 3600), 6 * 3600, 0);
        assert_eq!(n.kind, NotificationKind::SnapshotStale);
        assert_eq!(
            n.text,
            "the newest verified snapshot is 8.0 h old; the target is one no older than 6.0 h."
        );
        let none = snapshot_stale("prod", None, 600, 0);
        assert!(
            none.text
                .starts_with("there is no verified snapshot at all")
        );
    }
}
