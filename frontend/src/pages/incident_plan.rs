//! The plan: every step in order with its state, its exact target and parameters, the talosctl
//! command that does the same by hand, who asked, who approved, and the forms that move it on.

use leptos::prelude::*;
use talos_dr_shared::recovery::{Decision, RecoveryStep, StepKind, StepState};

use super::incident_live::{IncidentWatch, Me};
use super::incident_offers::{StepOffers, state_words, step_offers};
use super::incident_step_forms::{ApprovalForm, RecreateForm, RequestForm, ResolveForm, RunForm};
use crate::components::{CommandLine, StatusTag};
use crate::format::{bytes, duration, utc_datetime, utc_time};

#[component]
pub fn PlanPanel(watch: IncidentWatch) -> impl IntoView {
    let ids = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref()
                .map(|v| v.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    view! {
        <section class="panel plan" data-testid="plan">
            <h2 class="panel-title">"3 · The plan"<span class="count">{move || ids.with(Vec::len)}" steps"</span></h2>
            <Show when=move || !ids.with(Vec::is_empty) fallback=|| view! {
                <p class="empty" data-testid="plan-empty">"The plan is made when the snapshot and the bootstrap node are chosen."</p>
            }>
                <ol class="steps">
                    <For each=move || ids.get() key=|id| id.clone() children=move |id| view! { <StepCard watch id/> }/>
                </ol>
            </Show>
        </section>
    }
}

#[component]
fn StepCard(watch: IncidentWatch, id: String) -> impl IntoView {
    let me = Me::current();
    let find_id = id.clone();
    let step = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref()
                .and_then(|v| v.steps.iter().find(|s| s.id == find_id).cloned())
        })
    });
    let offer_id = id.clone();
    let offers = Memo::new(move |_| {
        let now = watch.now_ms.get();
        watch.view.with(|v| {
            v.as_ref()
                .and_then(|v| {
                    v.steps
                        .iter()
                        .find(|s| s.id == offer_id)
                        .map(|s| step_offers(v, s, &me.username, &me.roles, now))
                })
                .unwrap_or_default()
        })
    });
    let state = Memo::new(move |_| {
        step.with(|s| s.as_ref().map(|s| s.state).unwrap_or(StepState::Planned))
    });
    let kind = Memo::new(move |_| step.with(|s| s.as_ref().map(|s| s.kind)));
    let host = move || {
        step.with(|s| {
            s.as_ref()
                .and_then(|s| s.target.as_ref().map(|t| t.hostname.clone()))
        })
    };
    let class = move || {
        let destructive = kind.get().is_some_and(|k| k.is_destructive());
        format!(
            "step step-{}{}",
            state.get().as_str(),
            if destructive { " destructive" } else { "" }
        )
    };
    view! {
        <li class=class data-testid="step" data-step-id=id.clone()
            data-kind=move || kind.get().map(|k| k.as_str()).unwrap_or_default()
            data-state=move || state.get().as_str() data-host=host>
            {move || step.get().map(|s| view! { <StepHead step=s/> })}
            {move || step.get().map(|s| view! { <StepFacts step=s now=watch.now_ms/> })}
            <StepForms watch step offers/>
        </li>
    }
}

#[component]
fn StepHead(step: RecoveryStep) -> impl IntoView {
    let (tone, word) = state_words(step.state);
    view! {
        <div class="step-head">
            <span class="step-no">{step.position + 1}</span>
            <h3 class="step-title">
                {step.kind.title()}
                {step.target.as_ref().map(|t| view! { <span class="step-on">" on "<span class="mono">{t.hostname.clone()}</span></span> })}
            </h3>
            {step.kind.is_destructive().then(|| view! { <span class="tag tone-bad destructive-tag" title="Cannot be undone: needs a reason, an approval by someone else and the node's hostname typed">"destructive"</span> })}
            <StatusTag tone=tone word=word.to_string() testid="step-state"/>
        </div>
    }
}

#[component]
fn StepFacts(step: RecoveryStep, now: RwSignal<i64>) -> impl IntoView {
    let target = step.target.clone().map(|t| {
        view! {
            <dl class="facts step-target" data-testid="step-target">
                <dt>"Host"</dt><dd class="mono">{t.hostname.clone()}</dd>
                <dt>"Address"</dt><dd class="mono">{t.address.clone()}</dd>
                <dt>"Type"</dt><dd class="mono">{t.machine_type.as_str()}</dd>
                <dt>"Member"</dt><dd class="mono">{t.member_id.clone().unwrap_or_else(|| "—".into())}</dd>
            </dl>
        }
    });
    let p = &step.params;
    let has_params = !p.wipe_labels.is_empty() || p.snapshot_sha256.is_some() || p.skip_hash_check;
    let params = has_params.then(|| {
        view! {
            <dl class="facts step-params" data-testid="step-params">
                {(!p.wipe_labels.is_empty()).then(|| view! { <dt>"Wipe"</dt><dd class="mono tone-bad strong">{p.wipe_labels.join(", ")}</dd> })}
                {p.snapshot_sha256.clone().map(|sha| view! { <dt>"Snapshot sha256"</dt><dd class="mono">{sha}</dd> })}
                {(step.kind == StepKind::Bootstrap || step.kind == StepKind::UploadSnapshot).then(|| view! {
                    <dt>"Hash check"</dt>
                    <dd>{if p.skip_hash_check { "skipped (--recover-skip-hash-check)" } else { "checked" }}</dd>
                })}
            </dl>
        }
    });
    let in_flight = step.state.in_flight();
    let deadline = step.deadline_at_ms.filter(|_| in_flight).map(|at| {
        view! {
            <p class="step-deadline" data-testid="step-deadline">
                "Gives up at "{utc_time(at)}" UTC: "
                <strong>{move || {
                    let left = at - now.get();
                    if left > 0 { format!("{} left", duration(left)) } else { "time is up".into() }
                }}</strong>
            </p>
        }
    });
    let progress = step.progress.map(|pr| {
        let total = pr.total.unwrap_or(0);
        let percent = (pr.done * 100).checked_div(total).unwrap_or(0);
        view! {
            <p class="step-progress">
                {if total > 0 {
                    view! { <progress data-testid="step-progress" max=total.to_string() value=pr.done.to_string()></progress> }.into_any()
                } else {
                    view! { <progress data-testid="step-progress"></progress> }.into_any()
                }}
                <span class="mono" data-testid="step-progress-text">{if total > 0 {
                    format!("{percent}% · {} of {}", bytes(pr.done as i64), bytes(total as i64))
                } else {
                    bytes(pr.done as i64)
                }}</span>
            </p>
        }
    });
    let detail = step.detail.clone().map(|d| {
        let tone = match step.state {
            StepState::Failed | StepState::Uncertain => "tone-bad",
            // Back to planned after a request: why it went back (denied, approval void).
            StepState::Planned if step.request.is_some() => "tone-warn",
            _ => "",
        };
        view! { <p class=format!("step-detail {tone}") data-testid="step-detail">{d}</p> }
    });
    // A planned step that was asked for before went back (denied, or its approval no longer
    // stood when run): that round is history, and its approvals must not read as valid.
    let past_round = step.state == StepState::Planned;
    let request = step.request.clone().map(|r| {
        view! {
            <p class="step-request" class:past-round=past_round data-testid="step-request-info">
                {if past_round { "Last requested by " } else { "Requested by " }}<strong>{r.by}</strong>" at "{utc_datetime(r.at_ms)}": "{r.reason}
            </p>
        }
    });
    let approvals = (!step.approvals.is_empty()).then(|| {
        let items = step
            .approvals
            .iter()
            .map(|a| {
                let expired = a.expires_at_ms <= now.get_untracked();
                let standing = if past_round && a.decision == Decision::Deny {
                    String::new()
                } else if past_round {
                    " · no longer stands: request the step again".to_string()
                } else if expired {
                    " · expired".to_string()
                } else {
                    format!(" · valid until {} UTC", utc_time(a.expires_at_ms))
                };
                let word = match (a.decision, a.break_glass) {
                    (Decision::Approve, true) => "BREAK-GLASS self-approval",
                    (Decision::Approve, false) => "approved",
                    (Decision::Deny, _) => "denied",
                };
                let tone = match (a.decision, a.break_glass) {
                    (Decision::Deny, _) | (_, true) => "tone-bad",
                    _ => "tone-good",
                };
                view! {
                    <li class=format!("{tone}{}{}", if a.break_glass { " loud" } else { "" }, if past_round { " past-round" } else { "" })
                        data-testid="step-approval" data-break-glass=a.break_glass.to_string() data-past-round=past_round.to_string()>
                        <strong>{word}</strong>" by "<strong>{a.by.clone()}</strong>" at "{utc_time(a.at_ms)}
                        <span class="muted">{standing}</span>
                        {a.reason.clone().map(|r| view! { <span>": "{r}</span> })}
                    </li>
                }
            })
            .collect_view();
        view! { <ul class="approvals" data-testid="step-approvals">{items}</ul> }
    });
    let ran = step.run_by.clone().map(|by| {
        let when = step
            .started_at_ms
            .map(|s| format!(" at {}", utc_datetime(s)))
            .unwrap_or_default();
        let end = step
            .finished_at_ms
            .map(|f| format!(", finished {}", utc_time(f)))
            .unwrap_or_default();
        view! { <p class="sub">"Run by "{by}{when}{end}</p> }
    });
    view! {
        <div class="step-body">
            {target}
            {params}
            <CommandLine command=step.talosctl.clone()/>
            {progress}
            {deadline}
            {detail}
            {request}
            {approvals}
            {ran}
        </div>
    }
}

/// The forms for what this person may do now; rebuilt only when that changes.
#[component]
fn StepForms(
    watch: IncidentWatch,
    step: Memo<Option<RecoveryStep>>,
    offers: Memo<StepOffers>,
) -> impl IntoView {
    // Only a change of what is offered rebuilds the forms, so typing survives live updates.
    move || {
        let o = offers.get();
        let Some(s) = step.get_untracked() else {
            return ().into_any();
        };
        let id = s.id.clone();
        view! {
            <div class="step-forms">
                {o.why_not.clone().map(|w| view! { <p class="muted step-why-not" data-testid="step-why-not">{w}</p> })}
                {o.request.then(|| view! { <RequestForm watch step_id=id.clone() failed=s.state == StepState::Failed/> })}
                {(o.approve || o.break_glass).then(|| view! { <ApprovalForm watch step_id=id.clone() approve=o.approve break_glass=o.break_glass/> })}
                {o.run.then(|| view! { <RunForm watch step=s.clone()/> })}
                {o.resolve.then(|| view! { <ResolveForm watch step_id=id.clone() failed=s.state == StepState::Failed/> })}
                {o.recreate.then(|| view! { <RecreateForm watch step=s.clone()/> })}
            </div>
        }
        .into_any()
    }
}
