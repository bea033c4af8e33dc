//! The staged recovery: incidents, their plan and guard rails, and the incident's live stream.
//!
//! Every state-changing call answers with the incident as it now stands when the console sends
//! it; the stream delivers the same view to everyone watching, so a page that gets no view back
//! still sees the change a moment later.

use super::stream::{self, Listen, StreamUpdate, Subscription};
use super::{ApiError, cluster_path, error_from, get_json, session_gone, with_csrf};
use gloo_net::http::Request;
use serde::{Deserialize, Serialize};
use talos_dr_shared::recovery::{
    ApprovalBody, ChooseSnapshotRequest, CloseIncidentBody, IncidentSummary, IncidentView,
    NoteBody, OpenIncidentRequest, OverrideRequest, ResolveOutcome, ResolveStepBody, RunStepBody,
    SnapshotCandidate, StepRequestBody,
};

/// Lists come wrapped in a key named after the resource (`{"incidents": [...]}`); a bare list
/// is read too.
#[derive(Deserialize)]
#[serde(untagged)]
enum ListReply<T> {
    Incidents { incidents: Vec<T> },
    Candidates { candidates: Vec<T> },
    Bare(Vec<T>),
}

impl<T> ListReply<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::Incidents { incidents } => incidents,
            Self::Candidates { candidates } => candidates,
            Self::Bare(list) => list,
        }
    }
}

/// One incident, wrapped as `{"incident": view}` or bare. The wrapped form is tried first: a bare
/// view's own `incident` field is not a whole view, so it falls through to `Bare`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ViewReply {
    Wrapped { incident: Box<IncidentView> },
    Bare(Box<IncidentView>),
}

impl ViewReply {
    fn into_view(self) -> IncidentView {
        match self {
            Self::Wrapped { incident } | Self::Bare(incident) => *incident,
        }
    }
}

/// Reads an incident from any JSON the console sent with it.
pub fn view_from_json(text: &str) -> Result<IncidentView, serde_json::Error> {
    serde_json::from_str::<ViewReply>(text).map(ViewReply::into_view)
}

fn incident_path(id: &str) -> String {
    format!(
        "/api/incidents/{}",
        String::from(js_sys::encode_uri_component(id))
    )
}

fn step_path(id: &str, step: &str, action: &str) -> String {
    format!(
        "{}/steps/{}/{action}",
        incident_path(id),
        String::from(js_sys::encode_uri_component(step))
    )
}

/// `GET /api/clusters/{cluster}/incidents`: open and closed, as the console orders them.
pub async fn list_incidents(cluster: &str) -> Result<Vec<IncidentSummary>, ApiError> {
    let url = format!("{}/incidents", cluster_path(cluster));
    get_json::<ListReply<IncidentSummary>>(&url, "an incident list")
        .await
        .map(ListReply::into_vec)
}

/// The open incident of `cluster`, if any (there is at most one).
pub async fn find_open_incident(cluster: &str) -> Result<Option<IncidentSummary>, ApiError> {
    let list = list_incidents(cluster).await?;
    Ok(list
        .into_iter()
        .find(|i| i.status == talos_dr_shared::recovery::IncidentStatus::Open))
}

/// `GET /api/incidents/{id}`
pub async fn find_incident(id: &str) -> Result<IncidentView, ApiError> {
    let response = Request::get(&incident_path(id))
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    read_view(response).await?.ok_or(ApiError::Malformed {
        what: "an incident",
        detail: "the answer was empty".into(),
    })
}

/// `POST /api/clusters/{cluster}/incidents`: opens the cluster's recovery incident.
pub async fn open_incident(cluster: &str, reason: String) -> Result<IncidentView, ApiError> {
    let url = format!("{}/incidents", cluster_path(cluster));
    post_view(&url, &OpenIncidentRequest { reason })
        .await?
        .ok_or(ApiError::Malformed {
            what: "the new incident",
            detail: "the answer was empty".into(),
        })
}

/// `POST /api/incidents/{id}/precheck`: looks at every control-plane node again.
pub async fn run_precheck(id: &str) -> Result<Option<IncidentView>, ApiError> {
    post_view(
        &format!("{}/precheck", incident_path(id)),
        &serde_json::json!({}),
    )
    .await
}

/// `POST /api/incidents/{id}/precheck/override`: go on although quorum may be restorable.
pub async fn override_precheck(id: &str, reason: String) -> Result<Option<IncidentView>, ApiError> {
    let url = format!("{}/precheck/override", incident_path(id));
    post_view(&url, &OverrideRequest { reason }).await
}

/// `GET /api/incidents/{id}/snapshot-candidates`: every stored file, with why some will not do.
pub async fn list_snapshot_candidates(id: &str) -> Result<Vec<SnapshotCandidate>, ApiError> {
    let url = format!("{}/snapshot-candidates", incident_path(id));
    get_json::<ListReply<SnapshotCandidate>>(&url, "the snapshot candidates")
        .await
        .map(ListReply::into_vec)
}

/// `POST /api/incidents/{id}/snapshot`: fixes the snapshot and the bootstrap node; makes the plan.
pub async fn choose_snapshot(
    id: &str,
    snapshot_id: String,
    bootstrap_node: Option<String>,
) -> Result<Option<IncidentView>, ApiError> {
    let url = format!("{}/snapshot", incident_path(id));
    post_view(
        &url,
        &ChooseSnapshotRequest {
            snapshot_id,
            bootstrap_node,
        },
    )
    .await
}

/// `POST .../steps/{step}/request`: asks for a destructive step, with a reason.
pub async fn request_step(
    id: &str,
    step: &str,
    reason: String,
) -> Result<Option<IncidentView>, ApiError> {
    post_view(&step_path(id, step, "request"), &StepRequestBody { reason }).await
}

/// `POST .../steps/{step}/approvals`: approve, deny, or (an admin, own request) break glass.
pub async fn answer_step(
    id: &str,
    step: &str,
    body: ApprovalBody,
) -> Result<Option<IncidentView>, ApiError> {
    post_view(&step_path(id, step, "approvals"), &body).await
}

/// `POST .../steps/{step}/run`: runs an approved step; `confirm_hostname` is what the person typed.
pub async fn run_step(
    id: &str,
    step: &str,
    confirm_hostname: String,
) -> Result<Option<IncidentView>, ApiError> {
    post_view(
        &step_path(id, step, "run"),
        &RunStepBody { confirm_hostname },
    )
    .await
}

/// `POST .../steps/{step}/resolve`: a person's judgement on an uncertain or manual step.
pub async fn resolve_step(
    id: &str,
    step: &str,
    outcome: ResolveOutcome,
    reason: String,
) -> Result<Option<IncidentView>, ApiError> {
    post_view(
        &step_path(id, step, "resolve"),
        &ResolveStepBody { outcome, reason },
    )
    .await
}

/// `POST /api/incidents/{id}/notes`
pub async fn add_note(id: &str, text: String) -> Result<Option<IncidentView>, ApiError> {
    post_view(&format!("{}/notes", incident_path(id)), &NoteBody { text }).await
}

/// `POST /api/incidents/{id}/close`
pub async fn close_incident(
    id: &str,
    summary: String,
    abandon: bool,
) -> Result<Option<IncidentView>, ApiError> {
    let url = format!("{}/close", incident_path(id));
    post_view(&url, &CloseIncidentBody { summary, abandon }).await
}

/// The postmortem report as Markdown, for a download link.
pub fn report_markdown_url(id: &str) -> String {
    format!("{}/report.md", incident_path(id))
}

/// The postmortem report as JSON, for a download link.
pub fn report_json_url(id: &str) -> String {
    format!("{}/report.json", incident_path(id))
}

async fn post_view(url: &str, body: &impl Serialize) -> Result<Option<IncidentView>, ApiError> {
    let response = with_csrf(Request::post(url))
        .header("Accept", "application/json")
        .json(body)
        .map_err(|e| ApiError::Unreachable(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    read_view(response).await
}

/// The incident in a successful answer, `None` when the answer carried none (the stream will).
async fn read_view(response: gloo_net::http::Response) -> Result<Option<IncidentView>, ApiError> {
    if response.status() == 401 {
        let error = error_from(response).await;
        session_gone();
        return Err(error);
    }
    if !response.ok() {
        return Err(error_from(response).await);
    }
    let text = response.text().await.unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(None);
    }
    match view_from_json(&text) {
        Ok(view) => Ok(Some(view)),
        // An action answered with something else (an OK envelope): the stream brings the view.
        Err(_) if serde_json::from_str::<serde_json::Value>(&text).is_ok() => Ok(None),
        Err(e) => Err(ApiError::Malformed {
            what: "an incident",
            detail: e.to_string(),
        }),
    }
}

/// An open `GET /api/incidents/{id}/stream` subscription.
pub type IncidentSubscription = Subscription<Box<IncidentView>>;

/// Follows incident `id`: every event is the whole incident as it now stands.
pub fn subscribe_incident(
    id: &str,
    on_update: impl Fn(StreamUpdate<Box<IncidentView>>) + 'static,
) -> Result<IncidentSubscription, ApiError> {
    let read: fn(&str) -> Result<Box<IncidentView>, String> = |text| {
        view_from_json(text)
            .map(Box::new)
            .map_err(|e| e.to_string())
    };
    stream::subscribe(
        format!("{}/stream", incident_path(id)),
        // Unnamed events arrive as "message"; a named "incident" event is read the same way.
        vec![
            Listen {
                event: "message",
                what: "an incident event",
                read,
            },
            Listen {
                event: "incident",
                what: "an incident event",
                read,
            },
        ],
        on_update,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: &str = r#"{"incident":{"id":"i1","cluster":"prod","status":"open","reason":"etcd down",
        "opened_by":"alice","opened_at_ms":1,"closed_by":null,"closed_at_ms":null,"summary":null,
        "precheck":null,"precheck_override":null,"snapshot":null,"bootstrap_node":null,
        "policy":{"approvals_required":1,"approval_ttl_ms":900000,"break_glass_allowed":true}},
        "steps":[],"timeline":[],"watchers":["alice"]}"#;

    #[test]
    fn an_incident_is_read_bare_or_wrapped() {
        let bare = view_from_json(VIEW).expect("bare view");
        assert_eq!(bare.incident.id, "i1");
        let wrapped = view_from_json(&format!(r#"{{"incident":{VIEW}}}"#)).expect("wrapped view");
        assert_eq!(wrapped, bare);
        assert!(view_from_json(r#"{"ok":true}"#).is_err());
    }

    #[test]
    fn lists_are_read_bare_or_wrapped() {
        let bare: ListReply<u32> = serde_json::from_str("[1,2]").expect("bare list");
        assert_eq!(bare.into_vec(), vec![1, 2]);
        let wrapped: ListReply<u32> =
            serde_json::from_str(r#"{"incidents":[3]}"#).expect("wrapped");
        assert_eq!(wrapped.into_vec(), vec![3]);
    }
}
