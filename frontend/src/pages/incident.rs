//! `/incidents/:id`: one recovery, live for everyone watching it. The sections follow the seed
//! procedure from top to bottom: pre-checks, the snapshot, the plan of steps, then the timeline
//! with notes, the report and closing.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use talos_dr_shared::Role;
use talos_dr_shared::recovery::IncidentStatus;

use super::incident_live::{Action, IncidentWatch, Me};
use super::incident_offers::current_step;
use super::incident_plan::PlanPanel;
use super::incident_precheck::PreCheckPanel;
use super::incident_snapshot::SnapshotPanel;
use super::incident_timeline::TimelinePanel;
use crate::api;
use crate::format::{Tone, age, utc_datetime};
use crate::live::Connection;

pub(crate) fn status_words(status: IncidentStatus) -> (Tone, &'static str) {
    match status {
        IncidentStatus::Open => (Tone::Bad, "open: recovery in progress"),
        IncidentStatus::Resolved => (Tone::Good, "resolved"),
        IncidentStatus::Abandoned => (Tone::Unknown, "abandoned"),
    }
}

#[component]
pub fn IncidentPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").unwrap_or_default()));
    move || {
        let id = id.get();
        view! { <IncidentView id/> }
    }
}

#[component]
fn IncidentView(id: String) -> impl IntoView {
    let watch = IncidentWatch::start(id.clone());
    let loaded = Memo::new(move |_| watch.view.with(Option::is_some));
    let cluster = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref()
                .map(|v| v.incident.cluster.clone())
                .unwrap_or_default()
        })
    });
    Effect::new(move |_| {
        let c = cluster.get();
        let status = watch.view.with(|v| {
            v.as_ref()
                .map(|v| v.incident.status.as_str())
                .unwrap_or("loading")
        });
        document().set_title(&format!("Recovery {status} · {c} · talos-dr"));
    });
    view! {
        <main class="page incident-page" data-testid="incident-page" data-incident=id.clone()>
            <header class="page-head">
                <h1>
                    <span class="muted">"Recovery of "</span>
                    <a href=move || format!("/clusters/{}", cluster.get()) data-testid="incident-cluster">{move || cluster.get()}</a>
                    <span class="muted mono incident-id">" "{id.clone()}</span>
                </h1>
                <div class="page-head-end">
                    <Watchers watch/>
                    <StreamIndicator watch/>
                </div>
            </header>
            {move || watch.problem.get().map(|p| view! {
                <div class="stale-notice" role="alert" data-testid="incident-problem">{p}</div>
            })}
            <Show when=move || loaded.get() fallback=|| view! { <p class="loading">"Loading the incident…"</p> }>
                <IncidentHead watch/>
                <PreCheckPanel watch/>
                <SnapshotPanel watch/>
                <PlanPanel watch/>
                <div class="incident-cols">
                    <TimelinePanel watch/>
                    <div class="incident-side">
                        <NotesForm watch/>
                        <ReportLinks watch/>
                        <CloseForm watch/>
                    </div>
                </div>
            </Show>
        </main>
    }
}

/// Who else has the incident open: two people never act on it unaware of each other.
#[component]
fn Watchers(watch: IncidentWatch) -> impl IntoView {
    let names = Memo::new(move |_| {
        watch
            .view
            .with(|v| v.as_ref().map(|v| v.watchers.clone()).unwrap_or_default())
    });
    view! {
        <span class="viewers sub" data-testid="incident-watchers" title="Watching this incident now">
            "watching: " <span class="strong">{move || {
                let n = names.get();
                if n.is_empty() { "—".to_string() } else { n.join(", ") }
            }}</span>
        </span>
    }
}

#[component]
fn StreamIndicator(watch: IncidentWatch) -> impl IntoView {
    let (class, word) = (
        move || match watch.connection.get() {
            Connection::Live => "conn conn-live",
            Connection::Connecting => "conn conn-connecting",
            Connection::Reconnecting { .. } => "conn conn-down",
            Connection::Stopped => "conn conn-stopped",
        },
        move || match watch.connection.get() {
            Connection::Live => "live",
            Connection::Connecting => "connecting",
            Connection::Reconnecting { .. } => "reconnecting",
            Connection::Stopped => "not watching",
        },
    );
    view! {
        <div class=class data-testid="incident-connection" data-state=word role="status">
            <span class="dot" aria-hidden="true"></span>
            <span class="conn-word">{word}</span>
        </div>
    }
}

#[component]
fn IncidentHead(watch: IncidentWatch) -> impl IntoView {
    let incident = Memo::new(move |_| watch.view.with(|v| v.as_ref().map(|v| v.incident.clone())));
    let current = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref()
                .and_then(|v| current_step(v).map(talos_dr_shared::recovery::describe))
        })
    });
    let progress = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref().map(|v| {
                let done = v
                    .steps
                    .iter()
                    .filter(|s| s.state == talos_dr_shared::recovery::StepState::Done)
                    .count();
                (done, v.steps.len())
            })
        })
    });
    move || {
        incident.get().map(|i| {
            let (tone, word) = status_words(i.status);
            let opened_at = i.opened_at_ms;
            let opened = move || format!("{} · {}", utc_datetime(opened_at), age(opened_at, watch.now_ms.get()));
            let closed = i.closed_at_ms.map(|at| {
                format!("{} by {}", utc_datetime(at), i.closed_by.clone().unwrap_or_default())
            });
            view! {
                <section class=format!("verdict incident-head {}", tone.class()) data-testid="incident-head" data-status=i.status.as_str()>
                    <div class="verdict-head">
                        <h2 class="verdict-word" data-testid="incident-status">
                            <span class="glyph" aria-hidden="true">{tone.glyph()}</span>{word}
                        </h2>
                        <p class="verdict-summary">{i.reason.clone()}</p>
                    </div>
                    <dl class="facts incident-facts">
                        <dt>"Opened by"</dt><dd data-testid="incident-opened-by">{i.opened_by.clone()}</dd>
                        <dt>"Opened"</dt><dd>{opened}</dd>
                        <dt>"Steps done"</dt><dd data-testid="incident-progress">{move || progress.get().map(|(d, t)| format!("{d} of {t}"))}</dd>
                        <dt>"Now"</dt><dd data-testid="incident-current">{move || current.get().unwrap_or_else(|| "—".into())}</dd>
                        <dt>"Approvals"</dt><dd>{format!(
                            "{} per destructive step, valid {} min{}",
                            i.policy.approvals_required.max(1),
                            i.policy.approval_ttl_ms / 60_000,
                            if i.policy.break_glass_allowed { "; break-glass allowed for admins" } else { "; break-glass off" }
                        )}</dd>
                        {closed.map(|c| view! { <dt>"Closed"</dt><dd>{c}</dd> })}
                        {i.summary.clone().map(|s| view! { <dt>"Summary"</dt><dd data-testid="incident-summary">{s}</dd> })}
                    </dl>
                </section>
            }
        })
    }
}

/// Any member of the team may add a note; it lands in the timeline for everyone.
#[component]
fn NotesForm(watch: IncidentWatch) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let action = Action::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = text.get_untracked();
        if body.trim().is_empty() {
            action.error.set(Some("Write the note first.".into()));
            return;
        }
        let id = watch.id();
        action.run(
            watch,
            async move { api::add_note(&id, body).await },
            move || {
                text.try_set(String::new());
            },
        );
    };
    view! {
        <section class="panel">
            <h2 class="panel-title">"Add a note"</h2>
            <form class="incident-form" on:submit=submit data-testid="note-form">
                <label class="sr-only" for="note-text">"Note"</label>
                <textarea id="note-text" rows="2" data-testid="note-text" placeholder="What you saw or did, for the team and the postmortem"
                    prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                <button type="submit" class="btn" data-testid="note-submit" disabled=move || action.busy.get()>"Add note"</button>
                {action.error_view("note-error")}
            </form>
        </section>
    }
}

#[component]
fn ReportLinks(watch: IncidentWatch) -> impl IntoView {
    let id = watch.id();
    view! {
        <section class="panel">
            <h2 class="panel-title">"Report"</h2>
            <p class="panel-body incident-links">
                <a class="button" href=api::report_markdown_url(&id) download="" data-testid="report-md">"Download Markdown"</a>
                <a class="button" href=api::report_json_url(&id) download="" data-testid="report-json">"Download JSON"</a>
            </p>
        </section>
    }
}

/// Closing: with a summary when the post-checks passed, or abandoning the plan with a reason.
#[component]
fn CloseForm(watch: IncidentWatch) -> impl IntoView {
    let me = Me::current();
    let open = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref()
                .is_some_and(|v| v.incident.status == IncidentStatus::Open)
        })
    });
    let finished = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref().is_some_and(|v| {
                !v.steps.is_empty()
                    && v.steps
                        .iter()
                        .all(|s| s.state == talos_dr_shared::recovery::StepState::Done)
            })
        })
    });
    let summary = RwSignal::new(String::new());
    let action = Action::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = summary.get_untracked();
        if text.trim().is_empty() {
            action
                .error
                .set(Some("A summary is required to close the incident.".into()));
            return;
        }
        let id = watch.id();
        let give_up = !finished.get_untracked();
        action.run(
            watch,
            async move { api::close_incident(&id, text, give_up).await },
            || {},
        );
    };
    let operator = me.holds(Role::Operator);
    view! {
        <Show when=move || operator && open.get()>
            <section class="panel">
                <h2 class="panel-title">"Close the incident"</h2>
                <form class="incident-form" on:submit=submit data-testid="close-form">
                    <label for="close-summary">"Summary for the postmortem"</label>
                    <textarea id="close-summary" rows="3" data-testid="close-summary"
                        prop:value=move || summary.get() on:input=move |ev| summary.set(event_target_value(&ev))></textarea>
                    {move || (!finished.get()).then(|| view! {
                        <p class="tone-warn" data-testid="close-abandon-warning">
                            <span class="glyph" aria-hidden="true">"▲ "</span>
                            "The plan is not finished: closing now abandons the recovery."
                        </p>
                    })}
                    <button type="submit" class=move || if finished.get() { "btn primary" } else { "btn danger" } data-testid="close-submit" disabled=move || action.busy.get()>
                        {move || if finished.get() { "Close as resolved" } else { "Abandon the recovery" }}
                    </button>
                    {action.error_view("close-error")}
                </form>
            </section>
        </Show>
    }
}
