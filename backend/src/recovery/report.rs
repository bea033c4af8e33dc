//! The incident report for the postmortem: every step with who requested, approved and ran it
//! and when, every earlier request round, the timeline, the notes and the summary; as JSON and
//! as Markdown.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use talos_dr_shared::recovery::{
    Approval, Decision, Incident, RecoveryStep, TimelineEvent, TimelineKind,
};

use super::RecoveryError;
use crate::state::AppState;

/// One answer, with the request round it belongs to (1 is the first request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAnswer {
    pub request_no: i64,
    #[serde(flatten)]
    pub approval: Approval,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportStep {
    #[serde(flatten)]
    pub step: RecoveryStep,
    /// Every answer over every request round of the step.
    pub all_answers: Vec<ReportAnswer>,
}

/// `GET /api/incidents/{id}/report.json`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentReport {
    pub generated_at_ms: i64,
    pub incident: Incident,
    pub steps: Vec<ReportStep>,
    pub timeline: Vec<TimelineEvent>,
    pub notes: Vec<TimelineEvent>,
}

pub async fn build(state: &AppState, id: &str) -> Result<IncidentReport, RecoveryError> {
    let service = state.recovery();
    let view = service.view(id).await?;
    let mut steps = Vec::new();
    for step in view.steps {
        let all_answers = service
            .store
            .all_answers(&step.id)
            .await?
            .into_iter()
            .map(|(request_no, approval)| ReportAnswer {
                request_no,
                approval,
            })
            .collect();
        steps.push(ReportStep { step, all_answers });
    }
    let notes = view
        .timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::Note)
        .cloned()
        .collect();
    Ok(IncidentReport {
        generated_at_ms: service.now_ms(),
        incident: view.incident,
        steps,
        timeline: view.timeline,
        notes,
    })
}

/// Milliseconds since the epoch as RFC 3339 UTC.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn opt_time(ms: Option<i64>) -> String {
    ms.map(time).unwrap_or_else(|| "-".into())
}

/// One line of Markdown table text: pipes and line breaks would break the table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

pub fn markdown(report: &IncidentReport) -> String {
    let i = &report.incident;
    let mut md = String::new();
    let _ = writeln!(md, "# Incident {} on cluster {}\n", i.id, i.cluster);
    let _ = writeln!(md, "- Status: {}", i.status.as_str());
    let _ = writeln!(
        md,
        "- Opened by {} at {}: {}",
        i.opened_by,
        time(i.opened_at_ms),
        cell(&i.reason)
    );
    if let Some(by) = &i.closed_by {
        let _ = writeln!(md, "- Closed by {by} at {}", opt_time(i.closed_at_ms));
    }
    if let Some(s) = &i.snapshot {
        let _ = writeln!(
            md,
            "- Snapshot: {} (sha256 {}, {}{}) chosen by {} at {}",
            s.snapshot_id,
            s.sha256,
            s.figures
                .as_ref()
                .map(|f| format!("revision {}, {} keys", f.revision, f.total_keys))
                .unwrap_or_else(|| "no figures".into()),
            if s.skip_hash_check {
                ", raw copy: skip-hash-check"
            } else {
                ""
            },
            s.chosen_by,
            time(s.chosen_at_ms)
        );
    }
    if let Some(node) = &i.bootstrap_node {
        let _ = writeln!(md, "- Bootstrap node: {node}");
    }
    if let Some(p) = &i.precheck {
        let _ = writeln!(
            md,
            "- Pre-checks at {}: {} — {}",
            time(p.at_ms),
            p.verdict.as_str(),
            cell(&p.summary)
        );
    }
    if let Some(o) = &i.precheck_override {
        let _ = writeln!(
            md,
            "- **Pre-checks overridden** by {} at {}: {}",
            o.by,
            time(o.at_ms),
            cell(&o.reason)
        );
    }
    let _ = writeln!(
        md,
        "\n## Summary\n\n{}\n",
        i.summary.as_deref().unwrap_or("(not closed yet)")
    );
    let _ = writeln!(md, "## Steps\n");
    let _ = writeln!(
        md,
        "| # | Step | Target | State | Requested | Approved / denied | Run by | Started | Finished | Detail |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for rs in &report.steps {
        let s = &rs.step;
        let target = s
            .target
            .as_ref()
            .map(|t| {
                format!(
                    "{} ({}, {})",
                    t.hostname,
                    t.address,
                    t.machine_type.as_str()
                )
            })
            .unwrap_or_else(|| "-".into());
        let requested = s
            .request
            .as_ref()
            .map(|r| format!("{} at {}: {}", r.by, time(r.at_ms), r.reason))
            .unwrap_or_else(|| "-".into());
        let answers: Vec<String> = rs
            .all_answers
            .iter()
            .map(|a| {
                let verb = match (a.approval.decision, a.approval.break_glass) {
                    (Decision::Deny, _) => "denied",
                    (Decision::Approve, true) => "BREAK-GLASS approved",
                    (Decision::Approve, false) => "approved",
                };
                format!(
                    "#{} {verb} by {} at {}",
                    a.request_no,
                    a.approval.by,
                    time(a.approval.at_ms)
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.position,
            cell(s.kind.title()),
            cell(&target),
            s.state.as_str(),
            cell(&requested),
            cell(&if answers.is_empty() {
                "-".to_string()
            } else {
                answers.join("; ")
            }),
            s.run_by.as_deref().unwrap_or("-"),
            opt_time(s.started_at_ms),
            opt_time(s.finished_at_ms),
            cell(s.detail.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(md, "\n## Timeline\n");
    for e in &report.timeline {
        let who = e
            .actor
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        let loud = if e.loud { "**" } else { "" };
        let _ = writeln!(md, "- {} {loud}{}{loud}{who}", time(e.at_ms), cell(&e.text));
    }
    let _ = writeln!(md, "\n## Notes\n");
    if report.notes.is_empty() {
        let _ = writeln!(md, "(none)");
    }
    for n in &report.notes {
        let _ = writeln!(
            md,
            "- {} {}: {}",
            time(n.at_ms),
            n.actor.as_deref().unwrap_or("?"),
            cell(&n.text)
        );
    }
    let _ = writeln!(md, "\n_Generated at {}._", time(report.generated_at_ms));
    md
}
