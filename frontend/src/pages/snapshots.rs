//! `/clusters/:name/snapshots`: the snapshot history of one cluster, with taking, uploading and
//! choosing two entries to compare. The entry and diff pages are in `snapshot_detail`.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use talos_dr_shared::Role;
use talos_dr_shared::snapshots::{SnapshotEntry, SnapshotEntryKind};
use wasm_bindgen::JsCast;

use super::machine_configs_panel::MachineConfigsPanel;
use super::schedule_panel::SchedulePanel;
use crate::access::can;
use crate::api::{self, ApiError, SnapshotUpload};
use crate::components::{ByteProgress, SnapshotDownloadButton, TransfersInFlight};
use crate::format::{age, bytes, utc_datetime};
use crate::session::{SessionState, SessionStatus};

pub(crate) fn kind_word(entry: &SnapshotEntry) -> String {
    match (entry.kind, entry.stored_as) {
        (SnapshotEntryKind::Snapshot, _) => "snapshot".into(),
        (SnapshotEntryKind::RawCopy, _) => "raw copy".into(),
        (SnapshotEntryKind::Upload, Some(SnapshotEntryKind::RawCopy)) => "upload (raw copy)".into(),
        (SnapshotEntryKind::Upload, _) => "upload".into(),
    }
}

pub(crate) fn verdict_word(entry: &SnapshotEntry) -> &'static str {
    match entry.verdict.as_ref().map(|v| v.restorability.as_str()) {
        Some("restores") => "restores",
        Some("restores_only_with_skip_hash_check") => "restores with skip-hash-check",
        Some(_) => "will not restore",
        None => "—",
    }
}

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// Whether the signed-in user may take and upload snapshots (the console still decides).
fn is_operator() -> bool {
    SessionState::get()
        .0
        .with_untracked(|s| matches!(s, SessionStatus::SignedIn(info) if can(info, Role::Operator)))
}

#[component]
pub fn SnapshotsPage() -> impl IntoView {
    let params = use_params_map();
    let cluster = params.with_untracked(|p| p.get("name").unwrap_or_default());
    document().set_title(&format!("Snapshots · {cluster} · talos-dr"));
    let list_cluster = cluster.clone();
    let history = LocalResource::new(move || {
        let cluster = list_cluster.clone();
        async move { api::list_snapshots(&cluster).await }
    });
    let operator = is_operator();
    // The two entries chosen for comparison, oldest choice first.
    let chosen = RwSignal::new(Vec::<String>::new());

    let title = cluster.clone();
    let health_link = format!("/clusters/{cluster}");
    let actions_cluster = cluster.clone();
    let table_cluster = cluster.clone();
    view! {
        <main class="page" data-testid="snapshots-page" data-cluster=cluster.clone()>
            <header class="page-head">
                <h1>
                    <span class="muted">"Snapshots of "</span>
                    <a href=health_link data-testid="cluster-name">{title}</a>
                </h1>
            </header>
            {operator.then(|| view! { <SnapshotActions cluster=actions_cluster.clone() on_change=move || history.refetch()/> })}
            <TransfersInFlight cluster=cluster.clone() on_finished=move || history.refetch()/>
            <SchedulePanel cluster=cluster.clone()/>
            <CompareBar cluster=cluster.clone() chosen/>
            <Transition fallback=|| view! { <p class="loading">"Loading the snapshot history…"</p> }>
                {move || {
                    let cluster = table_cluster.clone();
                    Suspend::new(async move {
                        match history.await {
                            Ok(list) => view! { <HistoryTable cluster entries=list.snapshots chosen/> }.into_any(),
                            Err(e) => view! {
                                <p class="tone-bad" role="alert" data-testid="load-error">{e.to_string()}</p>
                            }
                            .into_any(),
                        }
                    })
                }}
            </Transition>
            <MachineConfigsPanel cluster=cluster.clone()/>
        </main>
    }
}

/// Take a snapshot now, or upload a file; both refresh the history when done.
#[component]
fn SnapshotActions(
    cluster: String,
    on_change: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let taking = RwSignal::new(false);
    let message = RwSignal::new(None::<Result<String, String>>);
    // "" = let the console pick a healthy member (a follower when there is one).
    let node = RwSignal::new(String::new());
    let nodes_cluster = cluster.clone();
    let nodes = LocalResource::new(move || {
        let cluster = nodes_cluster.clone();
        async move {
            api::find_cluster_health(&cluster)
                .await
                .map(|h| h.nodes.into_iter().map(|n| n.node).collect::<Vec<_>>())
                .unwrap_or_default()
        }
    });
    let run = move |raw: bool, cluster: String| {
        if taking.get_untracked() {
            return;
        }
        let picked = node.get_untracked();
        if raw && picked.is_empty() {
            message.set(Some(Err(
                "Pick the node to copy the database file from.".into()
            )));
            return;
        }
        taking.set(true);
        message.set(None);
        spawn_local(async move {
            let outcome = if raw {
                api::create_raw_copy(&cluster, picked).await
            } else {
                api::create_snapshot(&cluster, (!picked.is_empty()).then_some(picked)).await
            };
            taking.set(false);
            message.set(Some(match outcome {
                Ok(entry) => Ok(format!(
                    "{} taken from {}: {}",
                    if raw { "Raw copy" } else { "Snapshot" },
                    entry.node.unwrap_or_default(),
                    entry.talosctl
                )),
                Err(e) => Err(describe(&e)),
            }));
            on_change();
        });
    };
    let take_cluster = cluster.clone();
    let take = move |_| run(false, take_cluster.clone());
    let raw_cluster = cluster.clone();
    let raw_copy = move |_| run(true, raw_cluster.clone());

    // Upload: bytes sent and total, while one is in flight.
    let progress = RwSignal::new(None::<(f64, f64)>);
    let upload_handle = StoredValue::new_local(None::<SnapshotUpload>);
    let upload_cluster = cluster.clone();
    let on_file = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        message.set(None);
        progress.set(Some((0.0, file.size())));
        let started = api::upload_snapshot(
            &upload_cluster,
            &file,
            move |sent, total| progress.set(Some((sent, total))),
            move |result| {
                progress.set(None);
                message.set(Some(match result {
                    Ok(entry) => Ok(format!("Upload stored as {}", kind_word(&entry))),
                    Err(e) => Err(describe(&e)),
                }));
                on_change();
            },
        );
        match started {
            Ok(handle) => upload_handle.set_value(Some(handle)),
            Err(e) => {
                progress.set(None);
                message.set(Some(Err(describe(&e))));
            }
        }
        input.set_value("");
    };

    view! {
        <section class="panel snapshot-actions" data-testid="snapshot-actions">
            <button
                class="button primary"
                data-testid="take-snapshot"
                disabled=move || taking.get()
                on:click=take
            >
                {move || if taking.get() { "Taking snapshot…" } else { "Take snapshot" }}
            </button>
            <label>
                "From "
                <select data-testid="snapshot-node" on:change=move |ev| node.set(event_target_value(&ev))>
                    <option value="">"a healthy member (follower preferred)"</option>
                    {move || nodes.get().map(|list| list.into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view())}
                </select>
            </label>
            <button
                class="button"
                data-testid="take-raw-copy"
                title="Disaster only: reads member/snap/db; may not be consistent, restores only with skip-hash-check"
                disabled=move || taking.get()
                on:click=raw_copy
            >
                "Raw copy of the database file"
            </button>
            <label class="button upload">
                "Upload a snapshot file"
                <input type="file" data-testid="upload-input" on:change=on_file/>
            </label>
            {move || progress.get().map(|(sent, total)| {
                let percent = if total > 0.0 { (sent / total * 100.0).round() } else { 0.0 };
                view! {
                    <span class="upload-progress">
                        <ByteProgress
                            received=Signal::derive(move || sent)
                            total=Signal::derive(move || Some(total))
                            label="Uploading".to_string()
                            test_id="upload-progress"
                        />
                        <span data-testid="upload-percent">{format!("{percent}%")}</span>
                        <button class="button" on:click=move |_| upload_handle.with_value(|h| if let Some(h) = h { h.abort() })>"Cancel"</button>
                    </span>
                }
            })}
            {move || message.get().map(|m| match m {
                Ok(text) => view! { <p class="tone-good" data-testid="action-result">{text}</p> }.into_any(),
                Err(text) => view! { <p class="tone-bad" role="alert" data-testid="action-error">{text}</p> }.into_any(),
            })}
        </section>
    }
}

fn describe(e: &ApiError) -> String {
    match e {
        ApiError::Console { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// "Compare" once two entries are chosen.
#[component]
fn CompareBar(cluster: String, chosen: RwSignal<Vec<String>>) -> impl IntoView {
    view! {
        <p class="compare-bar" data-testid="compare-bar">
            {move || {
                let picked = chosen.get();
                match picked.as_slice() {
                    [a, b] => view! {
                        <a class="button" data-testid="compare-link" href=format!("/clusters/{cluster}/snapshots/{a}/diff/{b}")>
                            "Compare the two chosen snapshots"
                        </a>
                    }
                    .into_any(),
                    _ => view! { <span class="muted">"Choose two stored snapshots to compare them."</span> }.into_any(),
                }
            }}
        </p>
    }
}

#[component]
fn HistoryTable(
    cluster: String,
    entries: Vec<SnapshotEntry>,
    chosen: RwSignal<Vec<String>>,
) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="muted" data-testid="no-snapshots">"No snapshots yet."</p> }
            .into_any();
    }
    let now = now_ms();
    let rows = entries
        .into_iter()
        .map(|entry| {
            let failed = entry.failed();
            let id = entry.id.clone();
            let toggle_id = id.clone();
            let checked_id = id.clone();
            let toggle = move |_| {
                chosen.update(|c| {
                    if let Some(i) = c.iter().position(|x| *x == toggle_id) {
                        c.remove(i);
                    } else {
                        c.push(toggle_id.clone());
                        if c.len() > 2 {
                            c.remove(0);
                        }
                    }
                })
            };
            let entry_href = format!("/clusters/{cluster}/snapshots/{id}");
            let raw = entry.kind == SnapshotEntryKind::RawCopy
                || entry.stored_as == Some(SnapshotEntryKind::RawCopy);
            // The name the console's download route gives it too.
            let file_name = format!("{cluster}-{id}.{}", if raw { "db" } else { "snapshot" });
            let download_cluster = cluster.clone();
            let download_id = id.clone();
            let figures = entry.figures.clone();
            let rehearsed = match &entry.rehearsal {
                Some(r) if r.passed => format!("✔ {}", utc_datetime(r.at_ms)),
                Some(r) => format!("✖ {}", utc_datetime(r.at_ms)),
                None => "—".into(),
            };
            view! {
                <tr data-testid="snapshot-row" data-id=id.clone() data-failed=failed.to_string() class:row-tone-bad=failed>
                    <td>
                        {(!failed).then(|| view! {
                            <input
                                type="checkbox"
                                aria-label="Choose for comparison"
                                data-testid="compare-choice"
                                prop:checked=move || chosen.with(|c| c.contains(&checked_id))
                                on:change=toggle.clone()
                            />
                        })}
                    </td>
                    <td data-testid="snapshot-kind"><a href=entry_href>{kind_word(&entry)}</a></td>
                    <td title=utc_datetime(entry.taken_at_ms)>{age(entry.taken_at_ms, now)}</td>
                    <td>{entry.node.clone().unwrap_or_else(|| "—".into())}</td>
                    {if let Some(reason) = entry.failure.clone() {
                        view! {
                            <td colspan="5" class="tone-bad" data-testid="snapshot-failure">
                                <span class="glyph" aria-hidden="true">"✖ "</span>"failed: "{reason}
                            </td>
                        }
                        .into_any()
                    } else {
                        view! {
                            <td data-testid="snapshot-size">{entry.size.map(|s| bytes(s as i64)).unwrap_or_default()}</td>
                            <td data-testid="snapshot-revision">{figures.as_ref().map(|f| f.revision.to_string()).unwrap_or_default()}</td>
                            <td data-testid="snapshot-keys">{figures.as_ref().map(|f| f.total_keys.to_string()).unwrap_or_default()}</td>
                            <td data-testid="snapshot-verdict">{verdict_word(&entry)}</td>
                            <td data-testid="snapshot-rehearsed">{rehearsed}</td>
                        }
                        .into_any()
                    }}
                    <td>{entry.taken_by.clone()}</td>
                    <td>
                        {(!failed).then(|| view! {
                            <SnapshotDownloadButton cluster=download_cluster id=download_id file_name/>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="panel table-wrap"><table class="grid snapshot-history" data-testid="snapshot-history">
            <thead>
                <tr>
                    <th><span class="sr-only">"Compare"</span></th>
                    <th>"Kind"</th><th>"Taken"</th><th>"Node"</th><th>"Size"</th><th>"Revision"</th>
                    <th>"Keys"</th><th>"Verdict"</th><th>"Rehearsed"</th><th>"By"</th><th></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
    .into_any()
}
