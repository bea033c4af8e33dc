//! The pre-checks: "make sure the etcd cluster can't be recovered" from the seed procedure.
//! Member lists and etcd state per node, whether the lists agree, the verdict, and (when quorum
//! might still be restored) the override that needs a reason.

use leptos::prelude::*;
use talos_dr_shared::Role;
use talos_dr_shared::recovery::{IncidentStatus, PreCheckNode, precheck_needs_override};

use super::incident_live::{Action, IncidentWatch, Me};
use crate::api;
use crate::components::StatusTag;
use crate::format::{Tone, age, service_tone, utc_datetime, verdict_tone};

#[component]
pub fn PreCheckPanel(watch: IncidentWatch) -> impl IntoView {
    let me = Me::current();
    let operator = me.holds(Role::Operator);
    let report = Memo::new(move |_| {
        watch
            .view
            .with(|v| v.as_ref().and_then(|v| v.incident.precheck.clone()))
    });
    let overridden = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref()
                .and_then(|v| v.incident.precheck_override.clone())
        })
    });
    let open = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref()
                .is_some_and(|v| v.incident.status == IncidentStatus::Open)
        })
    });
    // Once the snapshot is chosen the plan is fixed: a new look changes nothing any more.
    let chosen = Memo::new(move |_| {
        watch
            .view
            .with(|v| v.as_ref().is_some_and(|v| v.incident.snapshot.is_some()))
    });
    let rerun = Action::new();
    let run_again = move |_| {
        let id = watch.id();
        rerun.run(watch, async move { api::run_precheck(&id).await }, || {});
    };
    view! {
        <section class="panel precheck" data-testid="precheck-panel">
            <h2 class="panel-title">
                "1 · Pre-checks: can etcd be saved without a full recovery?"
                {move || (operator && open.get() && !chosen.get()).then(|| view! {
                    <button class="btn small title-action" data-testid="precheck-run" on:click=run_again disabled=move || rerun.busy.get()>
                        {move || if rerun.busy.get() { "Checking…" } else { "Check again" }}
                    </button>
                })}
            </h2>
            {rerun.error_view("precheck-error")}
            {move || match report.get() {
                None => view! {
                    <p class="empty" data-testid="precheck-pending">"The console is looking at every control-plane node…"</p>
                }.into_any(),
                Some(r) => {
                    let tone = verdict_tone(r.verdict);
                    let agree = if r.member_lists_agree {
                        (Tone::Good, "member lists agree")
                    } else {
                        (Tone::Bad, "member lists disagree")
                    };
                    let at = format!("checked {} ({})", utc_datetime(r.at_ms), age(r.at_ms, watch.now_ms.get_untracked()));
                    view! {
                        <div class="panel-body precheck-verdict">
                            <StatusTag tone=tone word=r.verdict.as_str().to_string() testid="precheck-verdict"/>
                            <StatusTag tone=agree.0 word=agree.1.to_string() testid="precheck-agree"/>
                            <span class="sub">{at}</span>
                            <p class="verdict-summary">{r.summary.clone()}</p>
                            <p class="next-move"><span class="next-move-label">"Next: "</span>{r.next_move.clone()}</p>
                            {(!r.findings.is_empty()).then(|| view! {
                                <ul class="reasons" data-testid="precheck-findings">
                                    {r.findings.iter().map(|f| view! { <li>{f.clone()}</li> }).collect_view()}
                                </ul>
                            })}
                        </div>
                        <PreCheckNodes nodes=r.nodes.clone()/>
                    }.into_any()
                }
            }}
            {move || overridden.get().map(|o| view! {
                <p class="loud-line tone-warn" data-testid="precheck-overridden">
                    <span class="glyph" aria-hidden="true">"▲ "</span>
                    <strong>"Overridden"</strong>" by "{o.by.clone()}" at "{utc_datetime(o.at_ms)}": "{o.reason.clone()}
                </p>
            })}
            {move || {
                let needs = report.get().is_some_and(|r| precheck_needs_override(r.verdict));
                (needs && overridden.get().is_none() && open.get() && operator).then(|| view! { <OverrideForm watch/> })
            }}
        </section>
    }
}

#[component]
fn PreCheckNodes(nodes: Vec<PreCheckNode>) -> impl IntoView {
    let rows = nodes
        .into_iter()
        .map(|n| {
            let reach = if n.reachable {
                (Tone::Good, "reachable")
            } else {
                (Tone::Bad, "unreachable")
            };
            let etcd = n
                .etcd_state
                .map(|s| (service_tone(s), s.as_str().to_string()))
                .unwrap_or((Tone::Unknown, "unknown".into()));
            let health_tone = match n.etcd_health.as_str() {
                "healthy" => Tone::Good,
                "unhealthy" => Tone::Bad,
                _ => Tone::Unknown,
            };
            let members = n
                .members_seen
                .as_ref()
                .map(|m| m.join(" "))
                .unwrap_or_else(|| "—".into());
            view! {
                <tr data-testid="precheck-node" data-node=n.address.clone()>
                    <td><span class="strong">{n.hostname.clone().unwrap_or_else(|| "?".into())}</span><br/><span class="mono">{n.address.clone()}</span></td>
                    <td><StatusTag tone=reach.0 word=reach.1.to_string()/></td>
                    <td class="mono">{n.machine_type.map(|t| t.as_str()).unwrap_or("?")}</td>
                    <td><StatusTag tone=etcd.0 word=etcd.1/></td>
                    <td><StatusTag tone=health_tone word=n.etcd_health.clone()/></td>
                    <td class="mono">{n.member_id.clone().unwrap_or_else(|| "—".into())}</td>
                    <td class="mono num">{n.raft_index.map(|r| r.to_string()).unwrap_or_else(|| "—".into())}</td>
                    <td class="mono members-seen">{members}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="grid" data-testid="precheck-nodes">
                <thead><tr>
                    <th>"Node"</th><th>"Talos API"</th><th>"Type"</th><th>"etcd service"</th><th>"etcd health"</th>
                    <th>"Member id"</th><th>"Raft index"</th><th>"Members it lists"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// Going on although the pre-checks say quorum may come back: a full recovery throws away what
/// etcd still holds, so it takes a reason, recorded loudly in the timeline.
#[component]
fn OverrideForm(watch: IncidentWatch) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let action = Action::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = reason.get_untracked();
        if text.trim().is_empty() {
            action.error.set(Some(
                "A reason is required to override the pre-checks.".into(),
            ));
            return;
        }
        let id = watch.id();
        action.run(
            watch,
            async move { api::override_precheck(&id, text).await },
            || {},
        );
    };
    view! {
        <form class="incident-form danger-zone" on:submit=submit data-testid="override-form">
            <p class="tone-bad strong" role="note">
                <span class="glyph" aria-hidden="true">"✖ "</span>
                "The pre-checks say quorum may still be restorable. Restoring quorum keeps every write etcd "
                "still holds; a full recovery replaces it with the snapshot and loses what was written since."
            </p>
            <label for="override-reason">"Why a full recovery anyway"</label>
            <textarea id="override-reason" rows="2" data-testid="override-reason"
                prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))></textarea>
            <button type="submit" class="btn danger" data-testid="override-submit" disabled=move || action.busy.get()>
                "Override the pre-checks and continue"
            </button>
            {action.error_view("override-error")}
        </form>
    }
}
