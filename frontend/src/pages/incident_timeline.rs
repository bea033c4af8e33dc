//! The incident's timeline: what the console saw and what people did, newest first. Kernel-log
//! lines are shown as the node printed them; loud events (break-glass, overrides, failures)
//! stand out.

use leptos::prelude::*;
use talos_dr_shared::recovery::{TimelineEvent, TimelineKind};

use super::incident_live::IncidentWatch;
use crate::format::{utc_datetime, utc_time};

fn kind_word(kind: TimelineKind) -> &'static str {
    match kind {
        TimelineKind::IncidentOpened => "opened",
        TimelineKind::IncidentClosed => "closed",
        TimelineKind::Health => "health",
        TimelineKind::Snapshot => "snapshot",
        TimelineKind::PreCheck => "pre-check",
        TimelineKind::Override => "override",
        TimelineKind::Request => "request",
        TimelineKind::Approval => "approval",
        TimelineKind::Denial => "denial",
        TimelineKind::BreakGlass => "BREAK-GLASS",
        TimelineKind::StepStarted => "started",
        TimelineKind::StepFinished => "finished",
        TimelineKind::StepFailed => "failed",
        TimelineKind::KernelLog => "kernel log",
        TimelineKind::Note => "note",
    }
}

fn kind_class(kind: TimelineKind) -> &'static str {
    match kind {
        TimelineKind::StepFailed | TimelineKind::Denial | TimelineKind::BreakGlass => "tone-bad",
        TimelineKind::Override => "tone-warn",
        TimelineKind::StepFinished | TimelineKind::IncidentClosed => "tone-good",
        _ => "",
    }
}

#[component]
pub fn TimelinePanel(watch: IncidentWatch) -> impl IntoView {
    let newest_first = RwSignal::new(true);
    let events = Memo::new(move |_| {
        watch
            .view
            .with(|v| v.as_ref().map(|v| v.timeline.clone()).unwrap_or_default())
    });
    let ordered = move || {
        let mut list = events.get();
        list.sort_by_key(|e| (e.at_ms, e.id));
        if newest_first.get() {
            list.reverse();
        }
        list
    };
    view! {
        <section class="panel timeline-panel" data-testid="timeline">
            <h2 class="panel-title">
                "Timeline"<span class="count">{move || events.with(Vec::len)}</span>
                <button type="button" class="btn small title-action" data-testid="timeline-order"
                    aria-pressed=move || newest_first.get().to_string()
                    on:click=move |_| newest_first.update(|n| *n = !*n)>
                    {move || if newest_first.get() { "Newest first" } else { "Oldest first" }}
                </button>
            </h2>
            <ol class="timeline">
                <For each=ordered key=|e| e.id children=move |e| view! { <TimelineLine event=e/> }/>
            </ol>
        </section>
    }
}

#[component]
fn TimelineLine(event: TimelineEvent) -> impl IntoView {
    let kernel = event.kind == TimelineKind::KernelLog;
    let class = format!(
        "tl {}{}{}",
        kind_class(event.kind),
        if event.loud { " loud" } else { "" },
        if kernel { " kernel" } else { "" }
    );
    let kind = serde_json::to_value(event.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    view! {
        <li class=class data-testid="timeline-event" data-kind=kind data-loud=event.loud.to_string()>
            <time class="tl-time mono" title=utc_datetime(event.at_ms)>{utc_time(event.at_ms)}</time>
            <span class="tl-kind">{event.loud.then_some("▲ ")}{kind_word(event.kind)}</span>
            <span class="tl-actor">{event.actor.clone().unwrap_or_else(|| "console".into())}</span>
            <span class=if kernel { "tl-text mono" } else { "tl-text" }>{event.text.clone()}</span>
        </li>
    }
}
