//! What the cluster's health page says about recovery: a banner for the open incident (for
//! everyone), starting one (for operators), and the seed document's warning for a cluster with a
//! single control-plane node and no fresh snapshot.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use talos_dr_shared::Role;
use talos_dr_shared::schedules::ScheduleView;

use crate::access::can;
use crate::api::{self, ApiError};
use crate::format::duration;
use crate::live::HealthWatch;
use crate::session::{SessionState, SessionStatus};

/// Without a schedule, a snapshot older than this is not fresh.
const DEFAULT_FRESHNESS_SECONDS: u64 = 24 * 3600;
const BANNER_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);
const SCHEDULE_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

fn is_operator() -> bool {
    SessionState::get()
        .0
        .with_untracked(|s| matches!(s, SessionStatus::SignedIn(info) if can(info, Role::Operator)))
}

/// Whether the newest verified snapshot is younger than the freshness target (the schedule's,
/// or a day without one).
pub fn snapshot_is_fresh(schedule: &ScheduleView) -> bool {
    let target = schedule
        .schedule
        .as_ref()
        .map(|s| s.freshness_seconds)
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_FRESHNESS_SECONDS);
    schedule
        .newest_verified_age_seconds
        .is_some_and(|age| age < target)
}

/// The cluster page's recovery line: a banner linking to the open incident for everyone, or
/// (when none is open) "Start recovery" for operators.
#[component]
pub fn ClusterRecovery(cluster: String) -> impl IntoView {
    let fetch_cluster = cluster.clone();
    let incident = LocalResource::new(move || {
        let cluster = fetch_cluster.clone();
        async move { api::find_open_incident(&cluster).await }
    });
    if let Ok(handle) = set_interval_with_handle(move || incident.refetch(), BANNER_REFRESH) {
        on_cleanup(move || handle.clear());
    }
    // Memos: a refetch with the same answer must not rebuild the start form being typed in.
    let open = Memo::new(move |_| incident.get().and_then(|r| r.ok()).flatten());
    let none_open = Memo::new(move |_| incident.get().is_some_and(|r| matches!(r, Ok(None))));
    view! {
        {move || open.get().map(|i| {
            let href = format!("/incidents/{}", i.id);
            view! {
                <section class="recovery-banner" role="status" data-testid="open-incident-banner" data-id=i.id.clone()>
                    <span class="glyph" aria-hidden="true">"✖"</span>
                    <div>
                        <strong>"A recovery is in progress"</strong>
                        " · opened by "{i.opened_by.clone()}" · "{format!("{} of {} steps done", i.steps_done, i.steps_total)}
                        {i.current.clone().map(|c| view! { <span>" · now: "{c}</span> })}
                        <div class="sub">{i.reason.clone()}</div>
                    </div>
                    <a class="button" href=href data-testid="open-incident-link">"Open the incident"</a>
                </section>
            }
        })}
        {move || none_open.get().then(|| view! { <StartRecovery cluster=cluster.clone()/> })}
    }
}

/// "Start recovery": asks for what the operator saw, opens the incident and goes there.
#[component]
pub fn StartRecovery(cluster: String) -> impl IntoView {
    if !is_operator() {
        return ().into_any();
    }
    let asking = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = reason.get_untracked();
        if text.trim().is_empty() {
            error.set(Some(
                "Say what you saw: it opens the incident's timeline.".into(),
            ));
            return;
        }
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let cluster = cluster.clone();
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let outcome = api::open_incident(&cluster, text).await;
            busy.try_set(false);
            match outcome {
                Ok(view) => navigate(
                    &format!("/incidents/{}", view.incident.id),
                    Default::default(),
                ),
                Err(e) => {
                    error.try_set(Some(match e {
                        ApiError::Console { message, .. } => message,
                        other => other.to_string(),
                    }));
                }
            }
        });
    };
    view! {
        <div class="start-recovery" data-testid="start-recovery">
            <Show when=move || asking.get() fallback=move || view! {
                <button type="button" class="btn" data-testid="start-recovery-button" on:click=move |_| asking.set(true)>
                    "Start recovery…"
                </button>
            }>
                <form class="incident-form panel" on:submit=submit.clone() data-testid="start-recovery-form">
                    <h2 class="panel-title">"Start a recovery"</h2>
                    <div class="panel-body">
                        <p>"Opens an incident the whole team sees. Nothing is done to any node until a step is requested, approved by someone else and confirmed."</p>
                        <label for="start-reason">"What you saw"</label>
                        <textarea id="start-reason" rows="2" data-testid="start-recovery-reason"
                            prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))></textarea>
                        <div class="form-buttons">
                            <button type="submit" class="btn primary" data-testid="start-recovery-submit" disabled=move || busy.get()>
                                "Open the recovery incident"
                            </button>
                            <button type="button" class="btn" on:click=move |_| asking.set(false)>"Cancel"</button>
                        </div>
                        {move || error.get().map(|e| view! { <p class="tone-bad" role="alert" data-testid="start-recovery-error">{e}</p> })}
                    </div>
                </form>
            </Show>
        </div>
    }
    .into_any()
}

/// The seed document's warning, shown while the cluster has one control-plane node and no
/// fresh verified snapshot.
#[component]
pub fn SingleControlPlaneWarning(cluster: String, watch: HealthWatch) -> impl IntoView {
    let schedule_cluster = cluster.clone();
    let schedule = LocalResource::new(move || {
        let cluster = schedule_cluster.clone();
        async move { api::find_schedule(&cluster).await }
    });
    if let Ok(handle) = set_interval_with_handle(move || schedule.refetch(), SCHEDULE_REFRESH) {
        on_cleanup(move || handle.clear());
    }
    let single = Memo::new(move |_| {
        watch
            .health
            .with(|h| h.as_ref().is_some_and(|h| h.nodes.len() == 1))
    });
    let snapshots = format!("/clusters/{cluster}/snapshots");
    move || {
        if !single.get() {
            return None;
        }
        let view = schedule.get().and_then(|r| r.ok())?;
        if snapshot_is_fresh(&view) {
            return None;
        }
        let newest = match view.newest_verified_age_seconds {
            Some(age) => format!(
                "The newest verified snapshot is {} old.",
                duration(age as i64 * 1000)
            ),
            None => "There is no verified snapshot.".to_string(),
        };
        Some(view! {
            <section class="single-cp-warning" role="alert" data-testid="single-cp-warning">
                <span class="glyph" aria-hidden="true">"▲"</span>
                <div>
                    <strong>"This cluster has a single control-plane node."</strong>
                    " Loss of the control plane node might render the whole cluster irrecoverable without a backup. "
                    {newest}
                    " "<a href=snapshots.clone() data-testid="single-cp-take-snapshot">"Take a snapshot now"</a>
                </div>
            </section>
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(age: Option<u64>, freshness_seconds: Option<u64>) -> ScheduleView {
        // Built from JSON, as the console sends it, so new optional fields do not break this.
        let schedule = freshness_seconds.map(|f| {
            serde_json::json!({
                "cron": "0 * * * *",
                "retention": {"keep_last": 3},
                "freshness_seconds": f,
            })
        });
        serde_json::from_value(serde_json::json!({
            "cluster": "prod",
            "schedule": schedule,
            "next_run_ms": null,
            "last_run": null,
            "newest_verified_age_seconds": age,
            "freshness_met": false,
        }))
        .expect("a schedule view")
    }

    #[test]
    fn freshness_follows_the_schedule_or_a_day() {
        assert!(
            !snapshot_is_fresh(&view(None, None)),
            "no snapshot is never fresh"
        );
        assert!(snapshot_is_fresh(&view(Some(3_600), None)));
        assert!(!snapshot_is_fresh(&view(Some(25 * 3_600), None)));
        assert!(!snapshot_is_fresh(&view(Some(3_600), Some(1_800))));
        assert!(snapshot_is_fresh(&view(Some(600), Some(1_800))));
    }
}
