//! One snapshot with its contents per resource and namespace, and the comparison of two.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use talos_dr_shared::Role;
use talos_dr_shared::snapshots::{KeyChangeKindView, SnapshotDetail, SnapshotDiffView};

use super::snapshots::{kind_word, verdict_word};
use crate::access::can;
use crate::api;
use crate::format::{bytes, utc_datetime};
use crate::session::{SessionState, SessionStatus};

/// `/clusters/:name/snapshots/:id`.
#[component]
pub fn SnapshotEntryPage() -> impl IntoView {
    let params = use_params_map();
    let cluster = params.with_untracked(|p| p.get("name").unwrap_or_default());
    let id = params.with_untracked(|p| p.get("id").unwrap_or_default());
    let (c, i) = (cluster.clone(), id.clone());
    let detail = LocalResource::new(move || {
        let (c, i) = (c.clone(), i.clone());
        async move { api::find_snapshot(&c, &i).await }
    });
    let operator = SessionState::get().0.with_untracked(
        |s| matches!(s, SessionStatus::SignedIn(info) if can(info, Role::Operator)),
    );
    let rehearsing = RwSignal::new(false);
    let rehearse_error = RwSignal::new(None::<String>);
    let (rc, ri) = (cluster.clone(), id.clone());
    let rehearse = move |_| {
        rehearsing.set(true);
        rehearse_error.set(None);
        let (c, i) = (rc.clone(), ri.clone());
        spawn_local(async move {
            if let Err(e) = api::rehearse_snapshot(&c, &i).await {
                rehearse_error.set(Some(e.to_string()));
            }
            rehearsing.set(false);
            detail.refetch();
        });
    };
    let back = format!("/clusters/{cluster}/snapshots");
    view! {
        <main class="page" data-testid="snapshot-page">
            <header class="page-head">
                <h1><a href=back>"Snapshots"</a>" / "<span data-testid="snapshot-id">{id}</span></h1>
                {operator.then(|| view! {
                    <div class="page-head-end">
                        <button class="button" data-testid="rehearse" disabled=move || rehearsing.get() on:click=rehearse.clone()>
                            {move || if rehearsing.get() { "Rehearsing a restore…" } else { "Rehearse restore" }}
                        </button>
                    </div>
                })}
            </header>
            {move || rehearse_error.get().map(|e| view! { <p class="tone-bad" role="alert">{e}</p> })}
            <Transition fallback=|| view! { <p class="loading">"Loading the snapshot…"</p> }>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(d) => entry_view(d).into_any(),
                        Err(e) => view! { <p class="tone-bad" role="alert" data-testid="load-error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </main>
    }
}

fn entry_view(detail: SnapshotDetail) -> impl IntoView {
    let e = detail.snapshot;
    let figures = e.figures.clone();
    let rehearsal = e.rehearsal.clone().map(|r| {
        let word = if r.passed { "passed" } else { "failed" };
        view! {
            <p data-testid="rehearsal-result" data-passed=r.passed.to_string()>
                {format!("Restore rehearsal {word} at {} ({} ms)", utc_datetime(r.at_ms), r.took_ms)}
                <ul>{r.problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}</ul>
            </p>
        }
    });
    let resources = detail
        .resources
        .into_iter()
        .map(|r| {
            let namespaces = r
                .namespaces
                .iter()
                .map(|(ns, n)| format!("{}: {n}", if ns.is_empty() { "(cluster)" } else { ns }))
                .collect::<Vec<_>>()
                .join(", ");
            view! {
                <tr data-testid="resource-row" data-resource=r.resource.clone()>
                    <td>{r.resource.clone()}</td>
                    <td>{r.keys}</td>
                    <td>{bytes(r.value_bytes as i64)}</td>
                    <td>{namespaces}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel" data-testid="snapshot-facts">
            <dl class="facts">
                <dt>"Kind"</dt><dd>{kind_word(&e)}</dd>
                <dt>"Taken"</dt><dd>{utc_datetime(e.taken_at_ms)}" by "{e.taken_by.clone()}</dd>
                <dt>"Node"</dt><dd>{e.node.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Size"</dt><dd>{e.size.map(|s| bytes(s as i64)).unwrap_or_default()}</dd>
                <dt>"Revision"</dt><dd data-testid="snapshot-revision">{figures.as_ref().map(|f| f.revision.to_string()).unwrap_or_default()}</dd>
                <dt>"Total keys"</dt><dd>{figures.as_ref().map(|f| f.total_keys.to_string()).unwrap_or_default()}</dd>
                <dt>"Hash"</dt><dd>{figures.as_ref().map(|f| f.hash.clone()).unwrap_or_default()}</dd>
                <dt>"sha256"</dt><dd><code>{e.sha256.clone().unwrap_or_default()}</code></dd>
                <dt>"Verdict"</dt><dd>{verdict_word(&e)}" "{e.verdict.as_ref().and_then(|v| v.reason.clone()).unwrap_or_default()}</dd>
                <dt>"talosctl"</dt><dd><code data-testid="talosctl">{e.talosctl.clone()}</code></dd>
            </dl>
            {e.failure.clone().map(|f| view! { <p class="tone-bad" data-testid="snapshot-failure">"failed: "{f}</p> })}
            {rehearsal}
        </section>
        <div class="panel table-wrap"><table class="grid" data-testid="snapshot-contents">
            <thead><tr><th>"Resource"</th><th>"Keys"</th><th>"Value bytes"</th><th>"Keys per namespace"</th></tr></thead>
            <tbody>{resources}</tbody>
        </table></div>
    }
}

/// `/clusters/:name/snapshots/:a/diff/:b`.
#[component]
pub fn SnapshotDiffPage() -> impl IntoView {
    let params = use_params_map();
    let cluster = params.with_untracked(|p| p.get("name").unwrap_or_default());
    let a = params.with_untracked(|p| p.get("a").unwrap_or_default());
    let b = params.with_untracked(|p| p.get("b").unwrap_or_default());
    let page = RwSignal::new(0usize);
    let c = cluster.clone();
    let diff = LocalResource::new(move || {
        let (c, a, b, p) = (c.clone(), a.clone(), b.clone(), page.get());
        async move { api::diff_snapshots(&c, &a, &b, p).await }
    });
    let back = format!("/clusters/{cluster}/snapshots");
    view! {
        <main class="page" data-testid="snapshot-diff-page">
            <header class="page-head">
                <h1><a href=back>"Snapshots"</a>" / comparison"</h1>
            </header>
            <Transition fallback=|| view! { <p class="loading">"Comparing the snapshots…"</p> }>
                {move || Suspend::new(async move {
                    match diff.await {
                        Ok(d) => diff_view(d, page).into_any(),
                        Err(e) => view! { <p class="tone-bad" role="alert" data-testid="load-error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </main>
    }
}

fn keys_word(n: u64) -> String {
    if n == 1 {
        "1 key".into()
    } else {
        format!("{n} keys")
    }
}

fn diff_view(d: SnapshotDiffView, page: RwSignal<usize>) -> impl IntoView {
    let summary = format!(
        "Restoring {} (revision {}) instead of {} (revision {}) loses {}, brings back {} and reverts {}.",
        d.old_id,
        d.old_revision,
        d.new_id,
        d.new_revision,
        keys_word(d.totals.added),
        keys_word(d.totals.removed),
        keys_word(d.totals.changed)
    );
    let pages = d.total_key_changes.div_ceil(d.page_size.max(1) as u64) as usize;
    let groups = d
        .groups
        .into_iter()
        .map(|g| {
            view! {
                <tr>
                    <td>{g.resource}</td>
                    <td>{g.namespace.unwrap_or_else(|| "(cluster)".into())}</td>
                    <td>{g.totals.added}</td><td>{g.totals.removed}</td><td>{g.totals.changed}</td>
                </tr>
            }
        })
        .collect_view();
    let keys = d
        .keys
        .into_iter()
        .map(|k| {
            let (word, class) = match k.change {
                KeyChangeKindView::Added => ("lost", "tone-bad"),
                KeyChangeKindView::Removed => ("comes back", "tone-warn"),
                KeyChangeKindView::Changed => ("reverted", "tone-warn"),
            };
            view! {
                <tr data-testid="diff-key" data-change=word>
                    <td><code>{k.key}</code></td>
                    <td class=class>{word}</td>
                </tr>
            }
        })
        .collect_view();
    let current = d.page;
    view! {
        <p class="panel" data-testid="diff-summary">{summary}</p>
        <div class="panel table-wrap"><table class="grid" data-testid="diff-groups">
            <thead><tr><th>"Resource"</th><th>"Namespace"</th><th>"Lost"</th><th>"Back"</th><th>"Reverted"</th></tr></thead>
            <tbody>{groups}</tbody>
        </table></div>
        <div class="panel table-wrap"><table class="grid" data-testid="diff-keys">
            <thead><tr><th>"Key"</th><th>"Restoring the older"</th></tr></thead>
            <tbody>{keys}</tbody>
        </table></div>
        <nav class="pager">
            <button class="button" disabled={current == 0} on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>"Previous"</button>
            <span>{format!("page {} of {}", current + 1, pages.max(1))}</span>
            <button class="button" disabled={current + 1 >= pages} on:click=move |_| page.update(|p| *p += 1)>"Next"</button>
        </nav>
    }
}
