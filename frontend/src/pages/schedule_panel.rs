//! The schedule panel on the snapshots page: the cron expression and retention, the next run,
//! the last scheduled run and whether the freshness target is met, for everyone; and for admins
//! a form to set it, with the console's refusal shown next to the field it names.

use leptos::prelude::*;
use leptos::task::spawn_local;
use talos_dr_shared::Role;
use talos_dr_shared::schedules::{RetentionPolicy, ScheduleRequest, ScheduleView};

use crate::access::can;
use crate::api::{self, ApiError};
use crate::format::{age, duration, utc_datetime};
use crate::session::{SessionState, SessionStatus};

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

fn is_admin() -> bool {
    SessionState::get()
        .0
        .with_untracked(|s| matches!(s, SessionStatus::SignedIn(info) if can(info, Role::Admin)))
}

#[component]
pub fn SchedulePanel(cluster: String) -> impl IntoView {
    let facts_cluster = cluster.clone();
    let schedule = LocalResource::new(move || {
        let cluster = facts_cluster.clone();
        async move { api::find_schedule(&cluster).await }
    });
    let admin = is_admin();
    view! {
        <section class="panel" data-testid="schedule-panel">
            <h2 class="panel-title">"Schedule and freshness"</h2>
            <div class="panel-body">
            <Transition fallback=|| view! { <p class="loading">"Loading the schedule…"</p> }>
                {move || {
                    let cluster = cluster.clone();
                    Suspend::new(async move {
                        match schedule.await {
                            Ok(v) => {
                                let current = v.schedule.clone();
                                view! {
                                    <ScheduleFacts view=v/>
                                    {admin.then(|| view! {
                                        <ScheduleForm cluster current on_saved=move || schedule.refetch()/>
                                    })}
                                }
                                .into_any()
                            }
                            Err(e) => view! {
                                <p class="tone-bad" role="alert" data-testid="schedule-error">{e.to_string()}</p>
                            }
                            .into_any(),
                        }
                    })
                }}
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
            <dt>"Rehearsed"</dt><dd data-testid="schedule-rehearse-fact">{if schedule.rehearse { "each scheduled snapshot" } else { "no" }}</dd>
            <dt>"Next run"</dt><dd data-testid="schedule-next">{next}</dd>
            <dt>"Last run"</dt><dd class=last_tone data-testid="schedule-last">{last}</dd>
            <dt>"Newest verified snapshot"</dt><dd data-testid="schedule-newest">{newest}</dd>
            <dt>"Freshness (within " {target} ")"</dt>
            <dd class=fresh_tone data-testid="schedule-freshness">{fresh_word}</dd>
        </dl>
    }
    .into_any()
}

/// Which input a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Cron,
    Retention,
    Freshness,
    Jitter,
    /// Not one field (the console could not be reached, the session ended, ...).
    Form,
}

impl Field {
    fn test_id(self) -> &'static str {
        match self {
            Field::Cron => "schedule-error-cron",
            Field::Retention => "schedule-error-retention",
            Field::Freshness => "schedule-error-freshness",
            Field::Jitter => "schedule-error-jitter",
            Field::Form => "schedule-error-form",
        }
    }
}

/// The console words every refusal `field: reason`; the field picks where it is shown.
fn field_of(message: &str) -> Field {
    match message.split(':').next().map(str::trim) {
        Some("cron") => Field::Cron,
        Some("retention") => Field::Retention,
        Some("freshness_seconds") => Field::Freshness,
        Some("jitter_seconds") => Field::Jitter,
        _ => Field::Form,
    }
}

/// A retention count: empty means "not this tier".
fn count(text: &str, name: &str) -> Result<Option<u32>, (Field, String)> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u32>().map(Some).map_err(|_| {
        (
            Field::Retention,
            format!("retention: {name} {text:?} is not a whole number"),
        )
    })
}

/// What the inputs hold, as typed.
#[derive(Debug, Clone, Default, PartialEq)]
struct FormText {
    cron: String,
    keep_last: String,
    hourly: String,
    daily: String,
    weekly: String,
    freshness_hours: String,
    jitter_seconds: String,
    rehearse: bool,
}

impl FormText {
    fn from_schedule(current: Option<&ScheduleRequest>) -> Self {
        let n = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
        match current {
            None => FormText {
                cron: "0 */6 * * *".into(),
                keep_last: "28".into(),
                freshness_hours: "6".into(),
                jitter_seconds: "60".into(),
                rehearse: true,
                ..FormText::default()
            },
            Some(s) => FormText {
                cron: s.cron.clone(),
                keep_last: n(s.retention.keep_last),
                hourly: n(s.retention.hourly),
                daily: n(s.retention.daily),
                weekly: n(s.retention.weekly),
                freshness_hours: format!("{}", s.freshness_seconds as f64 / 3600.0),
                jitter_seconds: s.jitter_seconds.to_string(),
                rehearse: s.rehearse,
            },
        }
    }

    /// Only what a browser can tell is refused here (text where a number belongs); everything
    /// else is the console's to judge, and its words are shown.
    fn request(&self) -> Result<ScheduleRequest, (Field, String)> {
        let hours = self.freshness_hours.trim();
        let freshness_seconds = match hours.parse::<f64>() {
            Ok(h) if h.is_finite() && h >= 0.0 => (h * 3600.0).round() as u64,
            _ => {
                return Err((
                    Field::Freshness,
                    format!("freshness_seconds: {hours:?} hours is not a number of hours"),
                ));
            }
        };
        let jitter = self.jitter_seconds.trim();
        let jitter_seconds = if jitter.is_empty() {
            0
        } else {
            jitter.parse::<u64>().map_err(|_| {
                (
                    Field::Jitter,
                    format!("jitter_seconds: {jitter:?} is not a whole number of seconds"),
                )
            })?
        };
        Ok(ScheduleRequest {
            cron: self.cron.trim().to_string(),
            retention: RetentionPolicy {
                keep_last: count(&self.keep_last, "keep last")?,
                hourly: count(&self.hourly, "hourly")?,
                daily: count(&self.daily, "daily")?,
                weekly: count(&self.weekly, "weekly")?,
            },
            freshness_seconds,
            jitter_seconds,
            rehearse: self.rehearse,
        })
    }
}

/// The admin's form. Each input is a plain signal; the request is built on submit.
#[component]
fn ScheduleForm(
    cluster: String,
    current: Option<ScheduleRequest>,
    on_saved: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let text = RwSignal::new(FormText::from_schedule(current.as_ref()));
    let error = RwSignal::new(None::<(Field, String)>);
    let saving = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if saving.get_untracked() {
            return;
        }
        let request = match text.with_untracked(FormText::request) {
            Ok(r) => r,
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        error.set(None);
        saving.set(true);
        let cluster = cluster.clone();
        spawn_local(async move {
            let outcome = api::put_schedule(&cluster, &request).await;
            saving.try_set(false);
            match outcome {
                Ok(_) => on_saved(),
                Err(ApiError::Console { message, .. }) => {
                    error.try_set(Some((field_of(&message), message)));
                }
                Err(other) => {
                    error.try_set(Some((Field::Form, other.to_string())));
                }
            }
        });
    };
    let field_error = move |field: Field| {
        move || {
            error.get().filter(|(f, _)| *f == field).map(|(_, message)| {
                view! { <p class="field-error tone-bad" role="alert" data-testid=field.test_id()>{message}</p> }
            })
        }
    };
    let invalid = move |field: Field| {
        move || {
            error
                .with(|e| e.as_ref().is_some_and(|(f, _)| *f == field))
                .to_string()
        }
    };
    let input = move |test_id: &'static str,
                      get: fn(&FormText) -> &String,
                      set: fn(&mut FormText, String)| {
        view! {
            <input
                type="text"
                data-testid=test_id
                prop:value=move || text.with(|t| get(t).clone())
                on:input=move |ev| text.update(|t| set(t, event_target_value(&ev)))
            />
        }
    };
    view! {
        <form class="schedule-form" data-testid="schedule-form" on:submit=submit>
            <h3>"Set the schedule"</h3>
            <label class="field" aria-invalid=invalid(Field::Cron)>
                <span>"Cron expression (UTC; minute hour day month weekday)"</span>
                {input("schedule-cron-input", |t| &t.cron, |t, v| t.cron = v)}
            </label>
            {field_error(Field::Cron)}
            <fieldset class="field" aria-invalid=invalid(Field::Retention)>
                <legend>"Keep (scheduled snapshots; empty = not this rule)"</legend>
                <label>"the last " {input("schedule-keep-last", |t| &t.keep_last, |t, v| t.keep_last = v)}</label>
                <label>"hourly for " {input("schedule-hourly", |t| &t.hourly, |t, v| t.hourly = v)} " hours"</label>
                <label>"daily for " {input("schedule-daily", |t| &t.daily, |t, v| t.daily = v)} " days"</label>
                <label>"weekly for " {input("schedule-weekly", |t| &t.weekly, |t, v| t.weekly = v)} " weeks"</label>
            </fieldset>
            {field_error(Field::Retention)}
            <label class="field" aria-invalid=invalid(Field::Freshness)>
                <span>"Freshness target: a verified snapshot no older than (hours)"</span>
                {input("schedule-freshness-hours", |t| &t.freshness_hours, |t, v| t.freshness_hours = v)}
            </label>
            {field_error(Field::Freshness)}
            <label class="field" aria-invalid=invalid(Field::Jitter)>
                <span>"Jitter: wait up to (seconds) so many clusters do not fire at once"</span>
                {input("schedule-jitter", |t| &t.jitter_seconds, |t, v| t.jitter_seconds = v)}
            </label>
            {field_error(Field::Jitter)}
            <label class="checkbox">
                <input
                    type="checkbox"
                    data-testid="schedule-rehearse"
                    prop:checked=move || text.with(|t| t.rehearse)
                    on:change=move |ev| text.update(|t| t.rehearse = event_target_checked(&ev))
                />
                " Rehearse each scheduled snapshot: restore it into a throwaway etcd and compare"
            </label>
            {field_error(Field::Form)}
            <button class="button primary" type="submit" data-testid="schedule-save" disabled=move || saving.get()>
                {move || if saving.get() { "Saving…" } else { "Save schedule" }}
            </button>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_shown_at_the_field_they_name() {
        assert_eq!(
            field_of("cron: \"every hour\" does not parse: x"),
            Field::Cron
        );
        assert_eq!(
            field_of("retention: keeps nothing; set ..."),
            Field::Retention
        );
        assert_eq!(
            field_of("freshness_seconds: must be above 0"),
            Field::Freshness
        );
        assert_eq!(field_of("request body: missing field"), Field::Form);
    }

    #[test]
    fn the_form_builds_the_request_or_names_the_bad_input() {
        let text = FormText {
            cron: " 0 3 * * * ".into(),
            keep_last: "7".into(),
            daily: "14".into(),
            freshness_hours: "1.5".into(),
            rehearse: true,
            ..FormText::default()
        };
        let request = text.request().expect("a request");
        assert_eq!(request.cron, "0 3 * * *");
        assert_eq!(request.retention.keep_last, Some(7));
        assert_eq!(request.retention.daily, Some(14));
        assert_eq!(request.retention.hourly, None);
        assert_eq!(request.freshness_seconds, 5400);
        assert_eq!(request.jitter_seconds, 0);
        assert!(request.rehearse);
        // The form shows what was saved.
        assert_eq!(
            FormText::from_schedule(Some(&request)).request(),
            Ok(request)
        );

        let bad = FormText {
            hourly: "six".into(),
            ..text.clone()
        };
        let (field, message) = bad.request().expect_err("words are not a count");
        assert_eq!(field, Field::Retention);
        assert!(message.contains("hourly \"six\""), "{message}");
        let bad = FormText {
            freshness_hours: "soon".into(),
            ..text
        };
        assert_eq!(bad.request().expect_err("not hours").0, Field::Freshness);
    }
}
