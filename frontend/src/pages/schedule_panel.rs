//! The read-only schedule panel on the snapshots page: the cron expression and retention, the
//! next run, the last scheduled run and whether the freshness target is met.

use leptos::prelude::*;
use talos_dr_shared::schedules::{RetentionPolicy, ScheduleView};

use crate::api;
use crate::format::{age, duration, utc_datetime};

fn retention_words(r: &RetentionPolicy) -> String {
    let parts: Vec<String> = [
        (r.keep_last, "last"),
        (r.hourly, "hourly"),
        (r.daily, "daily"),
        (r.weekly, "weekly"),
    ]
    .iter()
    .filter_map(|(n, word)| n.filter(|n| *n > 0).map(|n| format!("{n} {word}")))
    .collect();
    parts.join(", ")
}

#[component]
pub fn SchedulePanel(cluster: String) -> impl IntoView {
    let schedule = LocalResource::new(move || {
        let cluster = cluster.clone();
        async move { api::find_schedule(&cluster).await }
    });
    view! {
        <section class="panel" data-testid="schedule-panel">
            <h2 class="panel-title">"Schedule and freshness"</h2>
            <div class="panel-body">
            <Transition fallback=|| view! { <p class="loading">"Loading the schedule…"</p> }>
                {move || Suspend::new(async move {
                    match schedule.await {
                        Ok(v) => view! { <ScheduleFacts view=v/> }.into_any(),
                        Err(e) => view! {
                            <p class="tone-bad" role="alert" data-testid="schedule-error">{e.to_string()}</p>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
            </div>
        </section>
    }
}

#[component]
fn ScheduleFacts(view: ScheduleView) -> impl IntoView {
    let now = js_sys::Date::now() as i64;
    let Some(schedule) = view.schedule.clone() else {
        return view! { <p class="muted" data-testid="no-schedule">"No schedule: snapshots are taken by hand only."</p> }
            .into_any();
    };
    let next = view.next_run_ms.map_or("stopped".to_string(), utc_datetime);
    let last = view.last_run.clone().map_or("not yet".to_string(), |run| {
        let when = age(run.at_ms, now);
        match run.failure {
            None => format!("stored, {when}"),
            Some(reason) => format!("failed, {when}: {reason}"),
        }
    });
    let last_tone = match &view.last_run {
        Some(run) if !run.ok => "tone-bad",
        _ => "",
    };
    let newest = view
        .newest_verified_age_seconds
        .map_or("none".to_string(), |s| {
            duration(i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000))
        });
    let target = duration(
        i64::try_from(schedule.freshness_seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000),
    );
    let (fresh_tone, fresh_word) = if view.freshness_met {
        ("tone-good", "met")
    } else {
        ("tone-bad", "not met")
    };
    view! {
        <dl class="facts">
            <dt>"Cron (UTC)"</dt><dd data-testid="schedule-cron"><code>{schedule.cron.clone()}</code></dd>
            <dt>"Keeps"</dt><dd data-testid="schedule-retention">{retention_words(&schedule.retention)}</dd>
            <dt>"Next run"</dt><dd data-testid="schedule-next">{next}</dd>
            <dt>"Last run"</dt><dd class=last_tone data-testid="schedule-last">{last}</dd>
            <dt>"Newest verified snapshot"</dt><dd data-testid="schedule-newest">{newest}</dd>
            <dt>"Freshness (within " {target} ")"</dt>
            <dd class=fresh_tone data-testid="schedule-freshness">{fresh_word}</dd>
        </dl>
    }
    .into_any()
}
