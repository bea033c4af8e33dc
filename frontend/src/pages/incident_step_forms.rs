//! The forms on a step: ask for it, answer the request, run it with the hostname typed, and a
//! person's judgement on an uncertain or manual step. Each is shown only to whom it will work
//! for; the console checks again.

use leptos::prelude::*;
use talos_dr_shared::Role;
use talos_dr_shared::recovery::{ApprovalBody, Decision, RecoveryStep, ResolveOutcome};

use super::incident_live::{Action, IncidentWatch, Me};
use super::incident_offers::run_label;
use crate::api;

fn text_input(signal: RwSignal<String>) -> impl Fn(leptos::ev::Event) + Clone {
    move |ev| signal.set(event_target_value(&ev))
}

#[component]
pub fn RequestForm(watch: IncidentWatch, step_id: String, failed: bool) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let action = Action::new();
    let field = format!("request-reason-{step_id}");
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = reason.get_untracked();
        if text.trim().is_empty() {
            action
                .error
                .set(Some("A reason is required: approvers read it.".into()));
            return;
        }
        let (id, step) = (watch.id(), step_id.clone());
        action.run(
            watch,
            async move { api::request_step(&id, &step, text).await },
            move || {
                reason.try_set(String::new());
            },
        );
    };
    view! {
        <form class="incident-form step-form" on:submit=submit data-testid="step-request-form">
            <label for=field.clone()>{if failed { "Why ask for this step again" } else { "Why this step (approvers read it)" }}</label>
            <textarea id=field rows="2" data-testid="step-request-reason" prop:value=move || reason.get() on:input=text_input(reason)></textarea>
            <button type="submit" class="btn" data-testid="step-request" disabled=move || action.busy.get()>
                {if failed { "Request again" } else { "Request approval" }}
            </button>
            {action.error_view("step-request-error")}
        </form>
    }
}

/// Approve or deny (an approver who did not ask), or break glass (an admin on their own request).
#[component]
pub fn ApprovalForm(
    watch: IncidentWatch,
    step_id: String,
    approve: bool,
    break_glass: bool,
) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let action = Action::new();
    let field = format!("approval-reason-{step_id}");
    let answer = move |decision: Decision, glass: bool| {
        let text = reason.get_untracked();
        let needs_reason = glass || decision == Decision::Deny;
        if needs_reason && text.trim().is_empty() {
            action.error.set(Some(if glass {
                "Break-glass needs a reason: it is flagged in the incident and the audit trail."
                    .into()
            } else {
                "Say why you deny it.".into()
            }));
            return;
        }
        let body = ApprovalBody {
            decision,
            reason: (!text.trim().is_empty()).then_some(text),
            break_glass: glass,
        };
        let (id, step) = (watch.id(), step_id.clone());
        action.run(
            watch,
            async move { api::answer_step(&id, &step, body).await },
            move || {
                reason.try_set(String::new());
            },
        );
    };
    let approve_click = answer.clone();
    let deny_click = answer.clone();
    view! {
        <form class="incident-form step-form" on:submit=|ev: leptos::ev::SubmitEvent| ev.prevent_default() data-testid="step-approval-form">
            <label for=field.clone()>{if approve { "Reason (required to deny)" } else { "Reason for breaking glass" }}</label>
            <textarea id=field rows="2" data-testid="step-approval-reason" prop:value=move || reason.get() on:input=text_input(reason)></textarea>
            <div class="form-buttons">
                {approve.then(|| view! {
                    <button type="button" class="btn primary" data-testid="step-approve" disabled=move || action.busy.get()
                        on:click=move |_| approve_click(Decision::Approve, false)>"Approve"</button>
                    <button type="button" class="btn" data-testid="step-deny" disabled=move || action.busy.get()
                        on:click=move |_| deny_click(Decision::Deny, false)>"Deny"</button>
                })}
                {break_glass.then(|| view! {
                    <p class="tone-bad strong break-glass-warning">
                        <span class="glyph" aria-hidden="true">"✖ "</span>
                        "Break-glass approves your own request without a second person. It is flagged loudly in the incident and the audit trail. Use it only when no approver can be reached."
                    </p>
                    <button type="button" class="btn danger" data-testid="step-break-glass" disabled=move || action.busy.get()
                        on:click=move |_| answer(Decision::Approve, true)>"Break glass: approve my own request"</button>
                })}
            </div>
            {action.error_view("step-approval-error")}
        </form>
    }
}

/// The person who runs a destructive step types the node's hostname; the button names exactly
/// what happens to which node.
#[component]
pub fn RunForm(watch: IncidentWatch, step: RecoveryStep) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    let action = Action::new();
    let hostname = step
        .target
        .as_ref()
        .map(|t| t.hostname.clone())
        .unwrap_or_default();
    let label = run_label(&step);
    let field = format!("run-confirm-{}", step.id);
    let expected = hostname.clone();
    let matches = move || typed.get() == expected;
    let step_id = step.id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let confirm = typed.get_untracked();
        let (id, step) = (watch.id(), step_id.clone());
        action.run(
            watch,
            async move { api::run_step(&id, &step, confirm).await },
            || {},
        );
    };
    let enabled = matches.clone();
    view! {
        <form class="incident-form step-form danger-zone" on:submit=submit data-testid="step-run-form">
            <label for=field.clone()>"Type "<strong class="mono">{hostname.clone()}</strong>" to confirm"</label>
            <input id=field type="text" autocomplete="off" spellcheck="false" class="mono" data-testid="step-run-confirm"
                prop:value=move || typed.get() on:input=text_input(typed)/>
            <button type="submit" class="btn danger" data-testid="step-run"
                disabled=move || action.busy.get() || !enabled()>
                {label}
            </button>
            {move || (!typed.get().is_empty() && !matches()).then(|| view! {
                <p class="tone-warn" data-testid="step-run-mismatch">"That is not the target's hostname."</p>
            })}
            {action.error_view("step-run-error")}
        </form>
    }
}

/// After a restart the console could not tell whether the call reached the node: a person
/// checks the node and says which.
#[component]
pub fn ResolveForm(watch: IncidentWatch, step_id: String, failed: bool) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let action = Action::new();
    let resolve = move |outcome: ResolveOutcome| {
        let text = reason.get_untracked();
        if text.trim().is_empty() {
            action
                .error
                .set(Some("Say what you checked on the node.".into()));
            return;
        }
        let (id, step) = (watch.id(), step_id.clone());
        action.run(
            watch,
            async move { api::resolve_step(&id, &step, outcome, text).await },
            || {},
        );
    };
    let done = resolve.clone();
    view! {
        <form class="incident-form step-form" on:submit=|ev: leptos::ev::SubmitEvent| ev.prevent_default() data-testid="step-resolve-form">
            <p class="tone-bad">{if failed {
                "This step failed (see above). Nothing is retried on its own: check the node (the talosctl command above), then mark it done if it took effect, or plan it again."
            } else {
                "The console cannot tell whether this call reached the node. It will not repeat it on its own: check the node (the talosctl command above) and say what you found."
            }}</p>
            <label>"What you checked"
                <textarea rows="2" data-testid="step-resolve-reason" prop:value=move || reason.get() on:input=text_input(reason)></textarea>
            </label>
            <div class="form-buttons">
                <button type="button" class="btn" data-testid="step-resolve-done" disabled=move || action.busy.get()
                    on:click=move |_| done(ResolveOutcome::Done)>"It took effect: mark done"</button>
                <button type="button" class="btn" data-testid="step-resolve-retry" disabled=move || action.busy.get()
                    on:click=move |_| resolve(ResolveOutcome::Retry)>"It did not: plan it again (new request and approval)"</button>
            </div>
            {action.error_view("step-resolve-error")}
        </form>
    }
}

/// A node that no longer answers was replaced: it is re-created from its machine-config backup
/// outside the console, then marked here.
#[component]
pub fn RecreateForm(watch: IncidentWatch, step: RecoveryStep) -> impl IntoView {
    let me = Me::current();
    let reason = RwSignal::new(String::new());
    let action = Action::new();
    let cluster = watch.view.with_untracked(|v| {
        v.as_ref()
            .map(|v| v.incident.cluster.clone())
            .unwrap_or_default()
    });
    let node = step
        .target
        .as_ref()
        .map(|t| format!("{} ({})", t.hostname, t.address))
        .unwrap_or_default();
    let step_id = step.id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = reason.get_untracked();
        if text.trim().is_empty() {
            action
                .error
                .set(Some("Say how the node was re-created.".into()));
            return;
        }
        let (id, step) = (watch.id(), step_id.clone());
        action.run(
            watch,
            async move { api::resolve_step(&id, &step, ResolveOutcome::Done, text).await },
            || {},
        );
    };
    view! {
        <form class="incident-form step-form" on:submit=submit data-testid="step-recreate-form">
            <p>
                "This node did not answer the pre-checks: it is treated as replaced. Re-create it with the same secrets "
                "and control-plane settings from its machine-config backup, boot it, then mark it here."
            </p>
            {me.holds(Role::Admin).then(|| view! {
                <p><a href=format!("/clusters/{cluster}/snapshots#machine-configs") data-testid="machine-config-backups">
                    "Machine-config backups (download)"</a></p>
            })}
            <label>"How it was re-created"
                <textarea rows="2" data-testid="step-recreate-reason" prop:value=move || reason.get() on:input=text_input(reason)></textarea>
            </label>
            <button type="submit" class="btn" data-testid="step-recreate" disabled=move || action.busy.get()>
                {format!("Mark {node} re-created")}
            </button>
            {action.error_view("step-recreate-error")}
        </form>
    }
}
