//! The guard rails of every destructive step, against the fake cluster: who may do what, a
//! reason for every request, approvals by someone else that expire and are voided by a change of
//! the target, the typed hostname, break-glass, one open incident per cluster, one claim per step.

use std::time::Duration;

use serde_json::json;
use talos_dr_shared::recovery::{ApprovalPolicy, StepKind, StepState, TimelineKind};

use super::planning::{approve, planned_incident, request, run, step_path};
use super::{PATIENCE, fake_rig, get_view, post, step, wait_view};
use crate::fake::{RecoveryCall, RecoveryCallKind, node_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_guard_rail_holds_on_the_way_to_a_reset() {
    let rig = fake_rig(3, ApprovalPolicy::default()).await;
    let team = &rig.team;
    let view = planned_incident(&rig).await;
    let id = view.incident.id.clone();

    // One open incident per cluster, naming the open one.
    let second = post(
        &team.operator,
        "/api/clusters/prod/incidents",
        &json!({"reason": "again"}),
    )
    .await;
    assert_eq!(second.status, 409);
    assert!(
        second.error().error.message.contains(&id),
        "{}",
        second.body
    );

    // A viewer can read and write notes, nothing else.
    for (path, body) in [
        (
            "/api/clusters/prod/incidents".to_string(),
            json!({"reason": "x"}),
        ),
        (format!("/api/incidents/{id}/precheck"), json!({})),
        (
            format!("/api/incidents/{id}/precheck/override"),
            json!({"reason": "x"}),
        ),
        (
            format!("/api/incidents/{id}/snapshot"),
            json!({"snapshot_id": "good"}),
        ),
        (
            step_path(&view, StepKind::ResetNode, "cp-1", "request"),
            json!({"reason": "x"}),
        ),
        (
            step_path(&view, StepKind::ResetNode, "cp-1", "approvals"),
            json!({"decision": "approve"}),
        ),
        (
            step_path(&view, StepKind::ResetNode, "cp-1", "run"),
            json!({"confirm_hostname": "cp-1"}),
        ),
        (
            step_path(&view, StepKind::ResetNode, "cp-1", "resolve"),
            json!({"outcome": "done", "reason": "x"}),
        ),
        (
            format!("/api/incidents/{id}/close"),
            json!({"summary": "x", "abandon": true}),
        ),
    ] {
        let answer = post(&team.viewer, &path, &body).await;
        assert_eq!(answer.status, 403, "viewer on {path}: {}", answer.body);
    }
    for path in ["", "/report.md", "/report.json", "/snapshot-candidates"] {
        let response = team.viewer.get(&format!("/api/incidents/{id}{path}")).await;
        assert_eq!(response.status(), 200, "viewer reads {path}");
    }
    let note = post(
        &team.viewer,
        &format!("/api/incidents/{id}/notes"),
        &json!({"text": "watching from the NOC"}),
    )
    .await;
    assert_eq!(note.status, 200, "{}", note.body);

    // A request needs a reason; the step needs earlier phases done (they are).
    let no_reason = post(
        &team.operator,
        &step_path(&view, StepKind::ResetNode, "cp-1", "request"),
        &json!({"reason": ""}),
    )
    .await;
    assert_eq!(
        (no_reason.status, no_reason.error().error.code.as_str()),
        (422, "reason_missing")
    );

    // Self-approval is refused, even for someone holding both roles.
    assert_eq!(request(&team.both, &view, "cp-1").await.status, 200);
    let own = approve(&team.both, &view, "cp-1").await;
    assert_eq!(
        (own.status, own.error().error.code.as_str()),
        (422, "self_approval"),
        "{}",
        own.body
    );
    // Running before approval is refused.
    let early = run(&team.operator, &view, "cp-1", "cp-1").await;
    assert_eq!(
        (early.status, early.error().error.code.as_str()),
        (409, "wrong_state")
    );
    let approved = approve(&team.approver, &view, "cp-1").await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(
        step(&approved.view(), StepKind::ResetNode, Some("cp-1")).state,
        StepState::Approved
    );
    let again = approve(&team.second_approver, &view, "cp-1").await;
    assert_eq!(
        again.status, 409,
        "an approved step takes no more answers: {}",
        again.body
    );

    // The typed hostname must be the target's.
    let wrong = run(&team.operator, &view, "cp-1", "cp-2").await;
    assert_eq!(
        (wrong.status, wrong.error().error.code.as_str()),
        (422, "wrong_hostname")
    );
    assert!(wrong.error().error.message.contains("\"cp-1\""));

    // An approval expires: the step goes back to planned and must be requested again.
    rig.clock.advance(Duration::from_secs(16 * 60));
    let expired = run(&team.operator, &view, "cp-1", "cp-1").await;
    assert_eq!(
        (expired.status, expired.error().error.code.as_str()),
        (409, "approval_expired"),
        "{}",
        expired.body
    );
    let now = get_view(&team.operator, &id).await;
    assert_eq!(
        step(&now, StepKind::ResetNode, Some("cp-1")).state,
        StepState::Planned
    );
    assert_eq!(rig.fake.count(&node_name(1), RecoveryCallKind::Reset), 0);

    // An approval is void once the target changed: here its etcd stops after the approval.
    assert_eq!(request(&team.operator, &view, "cp-1").await.status, 200);
    assert_eq!(approve(&team.approver, &view, "cp-1").await.status, 200);
    rig.fake.stop_etcd(&node_name(1));
    rig.app
        .wait_for_health("prod", |h| {
            h.nodes.iter().any(|n| {
                n.node == node_name(1)
                    && n.etcd_service
                        .as_ref()
                        .is_some_and(|s| s.state != talos_dr_shared::ServiceState::Running)
            })
        })
        .await;
    assert_voided(
        run(&team.operator, &view, "cp-1", "cp-1").await,
        "etcd=Failed",
    );

    // A denial sends the step back; a new request starts a fresh round.
    assert_eq!(request(&team.operator, &view, "cp-1").await.status, 200);
    let denied = post(
        &team.approver,
        &step_path(&view, StepKind::ResetNode, "cp-1", "approvals"),
        &json!({"decision": "deny"}),
    )
    .await;
    assert_eq!(
        denied.status, 422,
        "a denial needs a reason: {}",
        denied.body
    );
    let denied = post(
        &team.approver,
        &step_path(&view, StepKind::ResetNode, "cp-1", "approvals"),
        &json!({"decision": "deny", "reason": "take a fresh snapshot first"}),
    )
    .await;
    assert_eq!(denied.status, 200, "{}", denied.body);
    assert_eq!(
        step(&denied.view(), StepKind::ResetNode, Some("cp-1")).state,
        StepState::Planned
    );

    // The last round goes through: one Reset, exactly as planned.
    assert_eq!(request(&team.operator, &view, "cp-1").await.status, 200);
    assert_eq!(approve(&team.approver, &view, "cp-1").await.status, 200);
    let started = run(&team.operator, &view, "cp-1", "cp-1").await;
    assert_eq!(started.status, 202, "{}", started.body);
    let done = wait_view(&team.operator, &id, "the reset to finish", PATIENCE, |v| {
        step(v, StepKind::ResetNode, Some("cp-1")).state == StepState::Done
    })
    .await;
    let reset = step(&done, StepKind::ResetNode, Some("cp-1"));
    assert_eq!(reset.run_by.as_deref(), Some("olivia"));
    assert!(
        reset
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("boot id")),
        "{:?}",
        reset.detail
    );
    let resets: Vec<RecoveryCall> = rig
        .fake
        .state_changes()
        .into_iter()
        .filter(|c| c.kind() == RecoveryCallKind::Reset)
        .collect();
    assert_eq!(resets.len(), 1, "{resets:?}");
    match &resets[0] {
        RecoveryCall::Reset { node, options } => {
            assert_eq!(node, &node_name(1));
            assert!(!options.graceful && options.reboot);
            assert_eq!(options.wipe_labels, vec!["EPHEMERAL".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    let after = run(&team.operator, &view, "cp-1", "cp-1").await;
    assert_eq!(
        after.status, 409,
        "a done step never runs again: {}",
        after.body
    );

    // The report names who requested, approved and ran it.
    let report = team
        .viewer
        .get(&format!("/api/incidents/{id}/report.md"))
        .await;
    assert_eq!(report.status(), 200);
    let text = report.text().await.expect("markdown");
    assert!(
        text.contains("approved by alex") && text.contains("denied by alex"),
        "{text}"
    );
    assert!(
        text.contains("olivia") && text.contains("watching from the NOC"),
        "{text}"
    );
    let json: serde_json::Value = team
        .viewer
        .get(&format!("/api/incidents/{id}/report.json"))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        json["steps"]
            .as_array()
            .is_some_and(|s| s.len() == done.steps.len())
    );

    // Closing an unfinished plan needs the word; the audit trail has every action.
    let not_yet = post(
        &team.operator,
        &format!("/api/incidents/{id}/close"),
        &json!({"summary": "stop"}),
    )
    .await;
    assert_eq!(not_yet.status, 422, "{}", not_yet.body);
    let closed = post(
        &team.operator,
        &format!("/api/incidents/{id}/close"),
        &json!({"summary": "handled by hand", "abandon": true}),
    )
    .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(
        closed.view().incident.status,
        talos_dr_shared::recovery::IncidentStatus::Abandoned
    );
    let audit = rig.app.get("/api/audit?action=step_run").await;
    let entries: serde_json::Value = audit.json().await.expect("audit");
    assert!(entries.to_string().contains("olivia"), "{entries}");

    // Every action on the incident names its cluster, the refused ones too.
    let audit = rig.app.get("/api/audit?limit=500").await;
    let entries: serde_json::Value = audit.json().await.expect("audit");
    let on_incident: Vec<&serde_json::Value> = entries["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("incident_") || a.starts_with("step_"))
        })
        .collect();
    assert!(
        on_incident.iter().any(|e| e["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("failed"))),
        "{entries}"
    );
    assert!(on_incident.len() > 5, "{entries}");
    for entry in on_incident {
        assert_eq!(entry["cluster"], "prod", "{entry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_leaves_its_marks_and_can_be_switched_off() {
    let rig = fake_rig(3, ApprovalPolicy::default()).await;
    let team = &rig.team;
    let view = planned_incident(&rig).await;
    assert_eq!(request(&team.admin, &view, "cp-2").await.status, 200);
    let path = step_path(&view, StepKind::ResetNode, "cp-2", "approvals");
    let no_reason = post(
        &team.admin,
        &path,
        &json!({"decision": "approve", "break_glass": true}),
    )
    .await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.body);
    let by_other = post(
        &team.approver,
        &path,
        &json!({"decision": "approve", "break_glass": true, "reason": "x"}),
    )
    .await;
    assert_eq!(
        by_other.status, 403,
        "break-glass needs the admin role: {}",
        by_other.body
    );
    let glass = post(
        &team.admin,
        &path,
        &json!({"decision": "approve", "break_glass": true, "reason": "nobody answers the pager"}),
    )
    .await;
    assert_eq!(glass.status, 200, "{}", glass.body);
    let view_now = glass.view();
    assert_eq!(
        step(&view_now, StepKind::ResetNode, Some("cp-2")).state,
        StepState::Approved
    );
    let mark = view_now
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::BreakGlass)
        .expect("a break-glass line");
    assert!(mark.loud && mark.text.contains("BREAK-GLASS") && mark.actor.as_deref() == Some("ada"));
    let audit: serde_json::Value = rig
        .app
        .get("/api/audit?action=break_glass_approval")
        .await
        .json()
        .await
        .expect("audit");
    assert!(
        audit.to_string().contains("nobody answers the pager"),
        "{audit}"
    );

    let off = fake_rig(
        3,
        ApprovalPolicy {
            break_glass_allowed: false,
            ..ApprovalPolicy::default()
        },
    )
    .await;
    let view = planned_incident(&off).await;
    assert_eq!(request(&off.team.admin, &view, "cp-2").await.status, 200);
    let refused = post(
        &off.team.admin,
        &step_path(&view, StepKind::ResetNode, "cp-2", "approvals"),
        &json!({"decision": "approve", "break_glass": true, "reason": "x"}),
    )
    .await;
    assert_eq!(
        (refused.status, refused.error().error.code.as_str()),
        (422, "break_glass_off")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_of_one_step_claim_it_once_and_two_approvals_can_be_required() {
    let rig = fake_rig(
        3,
        ApprovalPolicy {
            approvals_required: 2,
            ..ApprovalPolicy::default()
        },
    )
    .await;
    let team = &rig.team;
    let view = planned_incident(&rig).await;
    assert_eq!(request(&team.operator, &view, "cp-3").await.status, 200);
    let first = approve(&team.approver, &view, "cp-3").await;
    assert_eq!(
        step(&first.view(), StepKind::ResetNode, Some("cp-3")).state,
        StepState::Requested
    );
    let second = approve(&team.second_approver, &view, "cp-3").await;
    assert_eq!(
        step(&second.view(), StepKind::ResetNode, Some("cp-3")).state,
        StepState::Approved
    );
    // The fake answers Reset slowly enough for both runs to race for the claim.
    let (a, b) = tokio::join!(
        run(&team.operator, &view, "cp-3", "cp-3"),
        run(&team.admin, &view, "cp-3", "cp-3")
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{} / {}", a.body, b.body);
    wait_view(
        &team.operator,
        &view.incident.id,
        "the reset",
        PATIENCE,
        |v| step(v, StepKind::ResetNode, Some("cp-3")).state == StepState::Done,
    )
    .await;
    assert_eq!(rig.fake.count(&node_name(3), RecoveryCallKind::Reset), 1);
}

/// The run reads the target itself: a change the console's health poll has not seen yet still
/// voids the approval (a poll that started before etcd died says Running until it ends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_health_poll_has_not_seen_yet_voids_the_approval() {
    let rig = fake_rig(3, ApprovalPolicy::default()).await;
    let team = &rig.team;
    let view = planned_incident(&rig).await;
    assert_eq!(request(&team.operator, &view, "cp-1").await.status, 200);
    assert_eq!(approve(&team.approver, &view, "cp-1").await.status, 200);
    // From now on every poll waits out its call timeout on cp-3, so no poll that starts after
    // cp-1's etcd stops can end before the run below.
    rig.fake.update(&node_name(3), |n| n.hang = true);
    tokio::time::sleep(Duration::from_millis(400)).await;
    rig.fake.stop_etcd(&node_name(1));
    assert_voided(
        run(&team.operator, &view, "cp-1", "cp-1").await,
        "now: reachable=true machine_type=controlplane etcd=Failed",
    );
    assert_eq!(rig.fake.count(&node_name(1), RecoveryCallKind::Reset), 0);

    // A target that stops answering is unreachable now, whatever the last poll said.
    rig.fake.update(&node_name(3), |n| n.hang = false);
    assert_eq!(request(&team.operator, &view, "cp-1").await.status, 200);
    assert_eq!(approve(&team.approver, &view, "cp-1").await.status, 200);
    rig.fake.cut_off(&node_name(1));
    assert_voided(
        run(&team.operator, &view, "cp-1", "cp-1").await,
        "now: reachable=false",
    );
    assert_eq!(rig.fake.count(&node_name(1), RecoveryCallKind::Reset), 0);
}

/// The run was refused because the approval no longer stands, the message naming `change`.
fn assert_voided(answer: super::Answer, change: &str) {
    assert_eq!(
        (answer.status, answer.error().error.code.as_str()),
        (409, "approval_voided"),
        "{}",
        answer.body
    );
    assert!(
        answer.error().error.message.contains(change),
        "{}",
        answer.body
    );
}
