//! Schedule and freshness gauges for `GET /metrics`, read from the database at scrape time.

use std::fmt::Write as _;

use super::api::view;
use crate::state::AppState;

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// The freshness and scheduled-run families, one sample per watched cluster that has data.
pub async fn render(state: &AppState, now_ms: i64) -> String {
    let mut views = Vec::new();
    for cluster in state.clusters() {
        match view(state, &cluster.name, now_ms).await {
            Ok(v) => views.push(v),
            Err(e) => {
                tracing::warn!(cluster = cluster.name, error = %e, "schedule metrics skipped")
            }
        }
    }
    let mut out = String::new();
    head(
        &mut out,
        "talos_dr_snapshot_newest_verified_age_seconds",
        "Age of the newest stored snapshot that restores.",
    );
    for v in &views {
        if let Some(age) = v.newest_verified_age_seconds {
            let _ = writeln!(
                out,
                "talos_dr_snapshot_newest_verified_age_seconds{{cluster=\"{}\"}} {age}",
                label(&v.cluster)
            );
        }
    }
    head(
        &mut out,
        "talos_dr_snapshot_freshness_met",
        "1 while the newest verified snapshot is within the schedule's freshness target.",
    );
    for v in views.iter().filter(|v| v.schedule.is_some()) {
        let _ = writeln!(
            out,
            "talos_dr_snapshot_freshness_met{{cluster=\"{}\"}} {}",
            label(&v.cluster),
            u8::from(v.freshness_met)
        );
    }
    head(
        &mut out,
        "talos_dr_snapshot_schedule_last_run_ok",
        "1 if the last scheduled snapshot was stored, 0 if it failed.",
    );
    for v in &views {
        if let Some(run) = &v.last_run {
            let _ = writeln!(
                out,
                "talos_dr_snapshot_schedule_last_run_ok{{cluster=\"{}\"}} {}",
                label(&v.cluster),
                u8::from(run.ok)
            );
        }
    }
    head(
        &mut out,
        "talos_dr_snapshot_schedule_last_run_timestamp_seconds",
        "When the last scheduled snapshot run happened (Unix seconds).",
    );
    for v in &views {
        if let Some(run) = &v.last_run {
            let _ = writeln!(
                out,
                "talos_dr_snapshot_schedule_last_run_timestamp_seconds{{cluster=\"{}\"}} {}",
                label(&v.cluster),
                run.at_ms / 1000
            );
        }
    }
    out
}
