//! The incident's event stream: the whole incident at connect and after every change, with who
//! is watching.

use serde_json::json;
use talos_dr_shared::recovery::{ApprovalPolicy, IncidentView, TimelineKind};

use super::{fake_rig, post};

fn view_of(event: &crate::helpers::SseEvent) -> IncidentView {
    serde_json::from_str(&event.data).expect("an IncidentView")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_the_incident_on_every_change_and_lists_its_watchers() {
    let rig = fake_rig(3, ApprovalPolicy::default()).await;
    let team = &rig.team;
    let opened = post(
        &team.operator,
        "/api/clusters/prod/incidents",
        &json!({"reason": "etcd is down"}),
    )
    .await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let id = opened.view().incident.id;
    let path = format!("/api/incidents/{id}/stream");
    let mut stream = rig.app.open_stream_as(&team.viewer, &path).await;
    let first = view_of(&stream.next_named("incident").await);
    assert_eq!(first.incident.id, id);
    assert!(
        first.watchers.contains(&"vic".to_string()),
        "{:?}",
        first.watchers
    );

    let note = post(
        &team.approver,
        &format!("/api/incidents/{id}/notes"),
        &json!({"text": "paging the etcd owner"}),
    )
    .await;
    assert_eq!(note.status, 200, "{}", note.body);
    loop {
        let view = view_of(&stream.next_named("incident").await);
        if view.timeline.iter().any(|e| {
            e.kind == TimelineKind::Note
                && e.text == "paging the etcd owner"
                && e.actor.as_deref() == Some("alex")
        }) {
            break;
        }
    }

    // A second watcher shows on the first one's stream; an unknown incident is a 404.
    let _second = rig.app.open_stream_as(&team.operator, &path).await;
    loop {
        let view = view_of(&stream.next_named("incident").await);
        if view.watchers == vec!["olivia".to_string(), "vic".to_string()] {
            break;
        }
    }
    let missing = team
        .viewer
        .get("/api/incidents/0000000000000000/stream")
        .await;
    assert_eq!(missing.status(), 404);
}
