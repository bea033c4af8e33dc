//! Choosing the snapshot to restore and the node to bootstrap on. The newest verified file is
//! proposed; files that will not restore are listed but cannot be chosen; a raw copy says that
//! it restores only with skip-hash-check.

use leptos::prelude::*;
use leptos::task::spawn_local;
use talos_dr_shared::Role;
use talos_dr_shared::recovery::{
    ChosenSnapshot, IncidentStatus, IncidentView, PreCheckNode, SnapshotCandidate, StepKind,
    phase_open, precheck_needs_override,
};
use talos_dr_shared::snapshots::SnapshotEntryKind;

use super::incident_live::{Action, IncidentWatch, Me, refusal_text};
use crate::api;
use crate::format::{age, bytes, utc_datetime};

fn kind_word(kind: SnapshotEntryKind, skip_hash_check: bool) -> &'static str {
    match (kind, skip_hash_check) {
        (SnapshotEntryKind::RawCopy, _) => "raw copy",
        (SnapshotEntryKind::Upload, true) => "upload (raw copy)",
        (SnapshotEntryKind::Upload, false) => "upload",
        (SnapshotEntryKind::Snapshot, _) => "snapshot",
    }
}

/// Whether the pre-checks let the choice be made (the console decides; this hides a button
/// that would be refused).
fn may_choose(view: &IncidentView) -> Result<(), String> {
    if let Some(step) = view
        .steps
        .iter()
        .find(|s| s.kind == StepKind::ChooseSnapshot)
    {
        return phase_open(&view.steps, step).map_err(|e| e.to_string());
    }
    match &view.incident.precheck {
        None => Err("the pre-checks have not finished yet".into()),
        Some(r)
            if precheck_needs_override(r.verdict) && view.incident.precheck_override.is_none() =>
        {
            Err("the pre-checks say quorum may be restorable: override them first".into())
        }
        Some(_) => Ok(()),
    }
}

/// The reachable node holding the newest data: where a raw copy loses the least.
fn highest_raft_index(nodes: &[PreCheckNode]) -> Option<&PreCheckNode> {
    nodes
        .iter()
        .filter(|n| n.reachable)
        .max_by_key(|n| n.raft_index.unwrap_or(0))
}

#[component]
pub fn SnapshotPanel(watch: IncidentWatch) -> impl IntoView {
    let chosen = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref().and_then(|v| {
                v.incident
                    .snapshot
                    .clone()
                    .map(|s| (s, v.incident.bootstrap_node.clone()))
            })
        })
    });
    let open = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref()
                .is_some_and(|v| v.incident.status == IncidentStatus::Open)
        })
    });
    view! {
        <section class="panel" data-testid="snapshot-panel">
            <h2 class="panel-title">"2 · The snapshot to restore"</h2>
            {move || match chosen.get() {
                Some((snapshot, node)) => view! { <ChosenSummary snapshot node/> }.into_any(),
                None if open.get() => view! { <Chooser watch/> }.into_any(),
                None => view! { <p class="empty">"No snapshot was chosen."</p> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn ChosenSummary(snapshot: ChosenSnapshot, node: Option<String>) -> impl IntoView {
    let figures = snapshot.figures.clone();
    view! {
        <dl class="facts panel-body chosen-snapshot" data-testid="chosen-snapshot" data-id=snapshot.snapshot_id.clone()>
            <dt>"Kind"</dt><dd>{kind_word(snapshot.kind, snapshot.skip_hash_check)}</dd>
            <dt>"sha256"</dt><dd class="mono" data-testid="chosen-sha256">{snapshot.sha256.clone()}</dd>
            <dt>"Taken"</dt><dd>{utc_datetime(snapshot.taken_at_ms)}</dd>
            <dt>"Revision"</dt><dd class="mono">{figures.as_ref().map(|f| f.revision.to_string()).unwrap_or_else(|| "—".into())}</dd>
            <dt>"Keys"</dt><dd class="mono">{figures.as_ref().map(|f| f.total_keys.to_string()).unwrap_or_else(|| "—".into())}</dd>
            <dt>"Size"</dt><dd>{bytes(snapshot.size_bytes as i64)}</dd>
            <dt>"Hash check"</dt><dd data-testid="chosen-skip-hash">{if snapshot.skip_hash_check {
                view! { <span class="tone-warn strong">"▲ skipped: a raw copy has no hash trailer (--recover-skip-hash-check)"</span> }.into_any()
            } else {
                view! { <span>"checked on restore"</span> }.into_any()
            }}</dd>
            <dt>"Bootstrap on"</dt><dd class="mono" data-testid="chosen-bootstrap-node">{node.unwrap_or_else(|| "—".into())}</dd>
            <dt>"Chosen by"</dt><dd>{format!("{} at {}", snapshot.chosen_by, utc_datetime(snapshot.chosen_at_ms))}</dd>
        </dl>
    }
}

#[component]
fn Chooser(watch: IncidentWatch) -> impl IntoView {
    let me = Me::current();
    let operator = me.holds(Role::Operator);
    let id = watch.id();
    let candidates = LocalResource::new(move || {
        let id = id.clone();
        async move { api::list_snapshot_candidates(&id).await }
    });
    let picked = RwSignal::new(None::<String>);
    let bootstrap = RwSignal::new(String::new());
    let cluster = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref()
                .map(|v| v.incident.cluster.clone())
                .unwrap_or_default()
        })
    });
    let nodes = Memo::new(move |_| {
        watch.view.with(|v| {
            v.as_ref()
                .and_then(|v| v.incident.precheck.as_ref().map(|p| p.nodes.clone()))
                .unwrap_or_default()
        })
    });
    let blocked = Memo::new(move |_| {
        watch
            .view
            .with(|v| v.as_ref().map(|v| may_choose(v).err()).unwrap_or(None))
    });

    // Taking a fresh snapshot or a raw copy adds a candidate.
    let taking = RwSignal::new(false);
    let take_result = RwSignal::new(None::<Result<String, String>>);
    let take = move |raw_from: Option<String>| {
        if taking.get_untracked() {
            return;
        }
        taking.set(true);
        take_result.set(None);
        let cluster = cluster.get_untracked();
        spawn_local(async move {
            let outcome = match raw_from.clone() {
                Some(node) => api::create_raw_copy(&cluster, node).await,
                None => api::create_snapshot(&cluster, None).await,
            };
            // The chooser may be gone (the snapshot was chosen meanwhile): nothing to show then.
            if taking.try_set(false).is_some() {
                return;
            }
            take_result.try_set(Some(match outcome {
                Ok(entry) if entry.failed() => {
                    Err(format!("It failed: {}", entry.failure.unwrap_or_default()))
                }
                Ok(entry) => Ok(format!(
                    "{} stored from {}.",
                    if raw_from.is_some() {
                        "Raw copy"
                    } else {
                        "Snapshot"
                    },
                    entry.node.unwrap_or_default()
                )),
                Err(e) => Err(refusal_text(&e)),
            }));
            candidates.refetch();
        });
    };

    let action = Action::new();
    let choose = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(snapshot_id) = picked.get_untracked() else {
            action.error.set(Some("Pick a snapshot first.".into()));
            return;
        };
        let node = bootstrap.get_untracked();
        let id = watch.id();
        action.run(
            watch,
            async move {
                api::choose_snapshot(&id, snapshot_id, (!node.is_empty()).then_some(node)).await
            },
            || {},
        );
    };

    let raw_node = Memo::new(move |_| {
        nodes.with(|n| {
            highest_raft_index(n).map(|n| {
                (
                    n.address.clone(),
                    format!(
                        "{} ({}), raft index {}",
                        n.hostname.clone().unwrap_or_else(|| "?".into()),
                        n.address,
                        n.raft_index
                            .map(|r| r.to_string())
                            .unwrap_or_else(|| "?".into())
                    ),
                )
            })
        })
    });

    view! {
        <form class="panel-body incident-form" on:submit=choose data-testid="snapshot-chooser">
            <Transition fallback=|| view! { <p class="loading">"Loading the stored snapshots…"</p> }>
                {move || Suspend::new(async move {
                    match candidates.await {
                        Ok(list) => {
                            // The proposal is preselected the first time the list arrives.
                            if picked.get_untracked().is_none() {
                                picked.set(list.iter().find(|c| c.proposed && c.offered).map(|c| c.snapshot_id.clone()));
                            }
                            let cluster = cluster.get_untracked();
                            view! { <CandidateTable list cluster picked/> }.into_any()
                        }
                        Err(e) => view! { <p class="tone-bad" role="alert" data-testid="candidates-error">{refusal_text(&e)}</p> }.into_any(),
                    }
                })}
            </Transition>
            {operator.then(|| view! {
                <div class="chooser-actions">
                    <button type="button" class="btn" data-testid="take-fresh-snapshot" disabled=move || taking.get()
                        on:click=move |_| take(None)>
                        {move || if taking.get() { "Working…" } else { "Take a fresh snapshot now" }}
                    </button>
                    {move || raw_node.get().map(|(address, label)| view! {
                        <button type="button" class="btn" data-testid="take-raw-copy-highest" disabled=move || taking.get()
                            title="Disaster only: copies member/snap/db; may not be consistent; restores only with skip-hash-check"
                            on:click=move |_| take(Some(address.clone()))>
                            {format!("Raw copy from {label}")}
                        </button>
                    })}
                    {move || taking.get().then(|| view! { <progress aria-label="Taking the snapshot" data-testid="take-progress"></progress> })}
                    {move || take_result.get().map(|r| match r {
                        Ok(t) => view! { <span class="tone-good" data-testid="take-result">{t}</span> }.into_any(),
                        Err(t) => view! { <span class="tone-bad" role="alert" data-testid="take-error">{t}</span> }.into_any(),
                    })}
                </div>
                <label class="inline-field">
                    "Bootstrap etcd on "
                    <select data-testid="bootstrap-node" on:change=move |ev| bootstrap.set(event_target_value(&ev))>
                        <option value="">"the node the console picks (reachable, newest data)"</option>
                        {move || nodes.get().into_iter().filter(|n| n.reachable).map(|n| {
                            let label = format!("{} ({})", n.hostname.clone().unwrap_or_else(|| "?".into()), n.address);
                            view! { <option value=n.address.clone()>{label}</option> }
                        }).collect_view()}
                    </select>
                </label>
                {move || blocked.get().map(|why| view! {
                    <p class="tone-warn" data-testid="choose-blocked"><span class="glyph" aria-hidden="true">"▲ "</span>"Not yet: "{why}</p>
                })}
                <button type="submit" class="btn primary" data-testid="choose-snapshot"
                    disabled=move || action.busy.get() || blocked.get().is_some() || picked.get().is_none()>
                    "Use this snapshot and make the plan"
                </button>
                {action.error_view("choose-error")}
            })}
        </form>
    }
}

#[component]
fn CandidateTable(
    list: Vec<SnapshotCandidate>,
    cluster: String,
    picked: RwSignal<Option<String>>,
) -> impl IntoView {
    if list.is_empty() {
        return view! {
            <p class="tone-bad" data-testid="no-candidates">
                "No stored snapshots. Take a fresh one now, or a raw copy from the node with the newest data."
            </p>
        }
        .into_any();
    }
    let now = js_sys::Date::now() as i64;
    // The proposal compared with the newest other file: what choosing it gives up or gains.
    let diff_link = list.iter().find(|c| c.proposed).and_then(|p| {
        list.iter()
            .filter(|c| c.snapshot_id != p.snapshot_id && c.figures.is_some())
            .max_by_key(|c| c.taken_at_ms)
            .map(|other| {
                let (old, new) = if other.taken_at_ms < p.taken_at_ms {
                    (other, p)
                } else {
                    (p, other)
                };
                format!(
                    "/clusters/{cluster}/snapshots/{}/diff/{}",
                    old.snapshot_id, new.snapshot_id
                )
            })
    });
    let rows = list
        .into_iter()
        .map(|c| {
            let id = c.snapshot_id.clone();
            let check_id = id.clone();
            let set_id = id.clone();
            let figures = c.figures.clone();
            let verdict = if !c.offered {
                view! { <span class="tone-bad" data-testid="candidate-why-not">"✖ will not restore: "{c.why_not.clone().unwrap_or_default()}</span> }.into_any()
            } else if c.skip_hash_check {
                view! { <span class="tone-warn strong">"▲ restores only with skip-hash-check"</span> }.into_any()
            } else {
                view! { <span class="tone-good">"✔ restores"</span> }.into_any()
            };
            view! {
                <tr data-testid="candidate" data-id=id.clone() data-offered=c.offered.to_string() data-proposed=c.proposed.to_string()
                    class:row-disabled=!c.offered>
                    <td>
                        <input type="radio" name="candidate" data-testid="candidate-choice" disabled=!c.offered
                            aria-label=format!("Restore from {}", id)
                            prop:checked=move || picked.get().as_deref() == Some(check_id.as_str())
                            on:change=move |_| picked.set(Some(set_id.clone()))/>
                    </td>
                    <td>{kind_word(c.kind, c.skip_hash_check)}{c.proposed.then(|| view! { <span class="tag tone-good proposed">"proposed"</span> })}</td>
                    <td title=utc_datetime(c.taken_at_ms)>{age(c.taken_at_ms, now)}</td>
                    <td class="mono">{c.node.clone().unwrap_or_else(|| "—".into())}</td>
                    <td class="mono num">{figures.as_ref().map(|f| f.revision.to_string()).unwrap_or_else(|| "—".into())}</td>
                    <td class="mono num">{figures.as_ref().map(|f| f.total_keys.to_string()).unwrap_or_else(|| "—".into())}</td>
                    <td class="num">{bytes(c.size_bytes as i64)}</td>
                    <td class="mono sha" title=c.sha256.clone()>{c.sha256.chars().take(16).collect::<String>()}</td>
                    <td>{verdict}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="grid" data-testid="candidates">
                <thead><tr>
                    <th><span class="sr-only">"Choose"</span></th><th>"Kind"</th><th>"Taken"</th><th>"Node"</th>
                    <th>"Revision"</th><th>"Keys"</th><th>"Size"</th><th>"sha256"</th><th>"Verdict"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        {diff_link.map(|href| view! {
            <p><a href=href data-testid="proposed-diff" target="_blank" rel="noopener">"Compare the proposed snapshot with the newest other copy"</a></p>
        })}
    }
    .into_any()
}
