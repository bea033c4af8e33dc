//! A planned incident on the fake cluster: stored snapshots (one good, one that will not
//! restore, one raw copy), the pre-checks overridden, the good snapshot chosen; and the calls a
//! test makes on a reset step.

use serde_json::json;
use talos_dr::snapshots::history::{HistoryRow, SnapshotHistory};
use talos_dr_shared::recovery::{
    IncidentView, SnapshotCandidate, StepKind, StepState, TimelineKind,
};
use talos_dr_shared::snapshots::{
    SnapshotEntry, SnapshotEntryKind, SnapshotFigures, SnapshotTrigger, SnapshotVerdictSummary,
};

use super::{Answer, FakeRig, PATIENCE, post, step, wait_view};
use crate::fake::node_name;
use crate::helpers::Client;

fn entry(id: &str, kind: SnapshotEntryKind, restorability: &str, taken_at_ms: i64) -> HistoryRow {
    HistoryRow {
        entry: SnapshotEntry {
            id: id.into(),
            cluster: "prod".into(),
            node: Some(node_name(1)),
            taken_by: "tester".into(),
            taken_at_ms,
            trigger: SnapshotTrigger::Manual,
            kind,
            stored_as: None,
            failure: None,
            size: Some(4096),
            sha256: Some(format!("{:0>64}", id.len())),
            figures: Some(SnapshotFigures {
                hash: "c25fd181".into(),
                revision: 42,
                total_keys: 7,
                total_size: 4096,
            }),
            live_keys: Some(7),
            verdict: Some(SnapshotVerdictSummary {
                restorability: restorability.into(),
                reason: (restorability == "will_not_restore")
                    .then(|| "the bbolt meta pages are both invalid".to_string()),
            }),
            rehearsal: None,
            talosctl: String::new(),
        },
        object_key: Some(format!("prod/2026/11/26/{id}.snapshot")),
        resources: vec![],
    }
}

async fn store_snapshots(rig: &FakeRig) {
    let history = SnapshotHistory::new(rig.app.storage.pool.clone());
    let now = talos_dr::clock::now_ms();
    for row in [
        entry(
            "good",
            SnapshotEntryKind::Snapshot,
            "restores",
            now - 60_000,
        ),
        entry(
            "broken",
            SnapshotEntryKind::Snapshot,
            "will_not_restore",
            now - 30_000,
        ),
        entry(
            "raw",
            SnapshotEntryKind::RawCopy,
            "restores_only_with_skip_hash_check",
            now - 10_000,
        ),
    ] {
        history.insert(&row).await.expect("history row");
    }
}

/// Opens an incident, overrides the pre-checks (the fake cluster is healthy) and chooses the
/// good snapshot: the plan is ready.
pub(crate) async fn planned_incident(rig: &FakeRig) -> IncidentView {
    let team = &rig.team;
    let opened = post(
        &team.operator,
        "/api/clusters/prod/incidents",
        &json!({"reason": "etcd lost quorum"}),
    )
    .await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let id = opened.view().incident.id;
    let view = wait_view(&team.operator, &id, "the pre-checks", PATIENCE, |v| {
        step(v, StepKind::PreCheck, None).state == StepState::Failed
    })
    .await;
    assert!(view.incident.precheck.is_some(), "the report is kept");
    store_snapshots(rig).await;
    let too_early = post(
        &team.operator,
        &format!("/api/incidents/{id}/snapshot"),
        &json!({"snapshot_id": "good"}),
    )
    .await;
    assert_eq!(too_early.status, 409, "{}", too_early.body);
    assert_eq!(too_early.error().error.code, "precheck_open");
    let no_reason = post(
        &team.operator,
        &format!("/api/incidents/{id}/precheck/override"),
        &json!({"reason": " "}),
    )
    .await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.body);
    let overridden = post(
        &team.operator,
        &format!("/api/incidents/{id}/precheck/override"),
        &json!({"reason": "two members are gone for good"}),
    )
    .await;
    assert_eq!(overridden.status, 200, "{}", overridden.body);
    let view = overridden.view();
    assert_eq!(step(&view, StepKind::PreCheck, None).state, StepState::Done);
    assert!(
        view.timeline
            .iter()
            .any(|e| e.kind == TimelineKind::Override && e.loud)
    );

    let response = team
        .viewer
        .get(&format!("/api/incidents/{id}/snapshot-candidates"))
        .await;
    assert_eq!(response.status(), 200);
    let candidates: Vec<SnapshotCandidate> = response.json().await.expect("candidates");
    let by_id = |id: &str| {
        candidates
            .iter()
            .find(|c| c.snapshot_id == id)
            .expect("listed")
    };
    assert!(by_id("good").offered && by_id("good").proposed && !by_id("good").skip_hash_check);
    assert!(!by_id("broken").offered);
    assert!(
        by_id("broken")
            .why_not
            .as_deref()
            .is_some_and(|w| w.contains("meta pages"))
    );
    assert!(by_id("raw").offered && by_id("raw").skip_hash_check && !by_id("raw").proposed);
    let refused = post(
        &team.operator,
        &format!("/api/incidents/{id}/snapshot"),
        &json!({"snapshot_id": "broken"}),
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.body);

    let chosen = post(
        &team.operator,
        &format!("/api/incidents/{id}/snapshot"),
        &json!({"snapshot_id": "good", "bootstrap_node": node_name(1)}),
    )
    .await;
    assert_eq!(chosen.status, 200, "{}", chosen.body);
    let view = chosen.view();
    assert_eq!(
        view.steps
            .iter()
            .filter(|s| s.kind == StepKind::ResetNode)
            .count(),
        3
    );
    assert_eq!(
        step(&view, StepKind::ChooseSnapshot, None).state,
        StepState::Done
    );
    assert_eq!(
        view.incident.bootstrap_node.as_deref(),
        Some(node_name(1).as_str())
    );
    view
}

pub(super) fn step_path(view: &IncidentView, kind: StepKind, host: &str, action: &str) -> String {
    let s = step(view, kind, Some(host));
    format!(
        "/api/incidents/{}/steps/{}/{action}",
        view.incident.id, s.id
    )
}

pub(crate) async fn request(client: &Client, view: &IncidentView, host: &str) -> Answer {
    post(
        client,
        &step_path(view, StepKind::ResetNode, host, "request"),
        &json!({"reason": "etcd data is stale"}),
    )
    .await
}

pub(crate) async fn approve(client: &Client, view: &IncidentView, host: &str) -> Answer {
    post(
        client,
        &step_path(view, StepKind::ResetNode, host, "approvals"),
        &json!({"decision": "approve"}),
    )
    .await
}

pub(crate) async fn run(client: &Client, view: &IncidentView, host: &str, typed: &str) -> Answer {
    post(
        client,
        &step_path(view, StepKind::ResetNode, host, "run"),
        &json!({"confirm_hostname": typed}),
    )
    .await
}
