use leptos::prelude::*;
use talos_dr_shared::AuditEntry;

use crate::access::can_read_audit;
use crate::api::{self, AUDIT_EXPORT_URL, ApiError, AuditPage, AuditQuery};
use crate::format::{utc_datetime, utc_time};
use crate::session::{SessionState, SessionStatus};

const PAGE_SIZE: u32 = 50;

/// `/audit`: the audit trail, newest first, filtered and paged (approvers and administrators;
/// the console refuses everyone else, and the page says so).
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = RwSignal::new(AuditQuery {
        limit: PAGE_SIZE,
        ..Default::default()
    });
    // Filters being typed, applied on submit.
    let draft = RwSignal::new(AuditQuery::default());
    // `before` of every page shown so far, to step back towards the newest entries.
    let trail = RwSignal::new(Vec::<Option<i64>>::new());
    let page = LocalResource::new(move || {
        let q = query.get();
        async move { api::list_audit_entries(&q).await }
    });
    document().set_title("Audit trail · talos-dr");
    // Filters and export only for those the console will answer; the refusal still comes from it.
    let allowed = SessionState::get()
        .0
        .with_untracked(|s| matches!(s, SessionStatus::SignedIn(info) if can_read_audit(info)));

    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        trail.set(Vec::new());
        let mut q = draft.get_untracked();
        q.limit = PAGE_SIZE;
        q.before = None;
        query.set(q);
    };
    let older = move |next: i64| {
        trail.update(|t| t.push(query.get_untracked().before));
        query.update(|q| q.before = Some(next));
    };
    let newer = move |_| {
        let back = trail.try_update(Vec::pop).flatten().flatten();
        query.update(|q| q.before = back);
    };
    let field = move |label: &'static str,
                      name: &'static str,
                      placeholder: &'static str,
                      get: fn(&AuditQuery) -> &String,
                      set: fn(&mut AuditQuery, String)| {
        view! {
            <label class="filter">
                <span class="k">{label}</span>
                <input
                    type="text"
                    name=name
                    placeholder=placeholder
                    prop:value=move || draft.with(|d| get(d).clone())
                    on:input=move |ev| draft.update(|d| set(d, event_target_value(&ev)))
                />
            </label>
        }
    };

    view! {
        <main class="page" data-testid="audit-page">
            <header class="page-head">
                <h1>"Audit trail"</h1>
                <div class="page-head-end" class:hidden=!allowed>
                    <a class="button" href=AUDIT_EXPORT_URL download="talos-dr-audit.jsonl" data-testid="audit-export">
                        "Export (JSON lines)"
                    </a>
                </div>
            </header>
            <form class="audit-filters panel" class:hidden=!allowed on:submit=apply data-testid="audit-filters">
                {field("Actor", "actor", "username", |q| &q.actor, |q, v| q.actor = v)}
                {field("Action", "action", "login, logout, user_create…", |q| &q.action, |q, v| q.action = v)}
                {field("Cluster", "cluster", "cluster name", |q| &q.cluster, |q, v| q.cluster = v)}
                {field("Since", "since", "2026-11-26T09:00:00Z", |q| &q.since, |q, v| q.since = v)}
                {field("Until", "until", "2026-11-26T10:00:00Z", |q| &q.until, |q, v| q.until = v)}
                <button type="submit" data-testid="audit-apply">"Apply"</button>
            </form>
            <Transition fallback=|| view! { <p class="loading">"Loading the audit trail…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(AuditPage { entries, meta }) => {
                            let first_page = query.with_untracked(|q| q.before.is_none());
                            view! {
                                <AuditTable entries/>
                                <nav class="pager" aria-label="Audit pages">
                                    <button type="button" disabled=first_page on:click=newer data-testid="audit-newer">"← Newer"</button>
                                    {match meta.next_before {
                                        Some(next) => view! {
                                            <button type="button" on:click=move |_| older(next) data-testid="audit-older">"Older →"</button>
                                        }.into_any(),
                                        None => view! { <span class="sub">"End of the trail"</span> }.into_any(),
                                    }}
                                </nav>
                            }
                            .into_any()
                        }
                        Err(e) => refusal(e).into_any(),
                    }
                })}
            </Transition>
        </main>
    }
}

fn refusal(e: ApiError) -> impl IntoView {
    let (title, detail) = match &e {
        ApiError::Console {
            status: 403,
            message,
            ..
        } => (
            "Not allowed: the audit trail is for approvers and administrators",
            format!(
                "The console refused (HTTP 403): {message}. Ask an administrator for the approver or admin role."
            ),
        ),
        ApiError::Console {
            status: 400,
            message,
            ..
        } => ("The filters are not valid", message.clone()),
        _ => ("Cannot load the audit trail", e.to_string()),
    };
    view! {
        <section class="verdict tone-bad" role="alert" data-testid="audit-error">
            <div class="verdict-head">
                <h2 class="verdict-word"><span class="glyph" aria-hidden="true">"✖"</span>{title}</h2>
            </div>
            <p class="verdict-summary">{detail}</p>
        </section>
    }
}

#[component]
fn AuditTable(entries: Vec<AuditEntry>) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="empty panel" data-testid="audit-empty">"No entries match these filters."</p> }
            .into_any();
    }
    let rows = entries
        .into_iter()
        .map(|e| {
            let params = e
                .parameters
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            let ok = e.outcome == "ok";
            let action = e.action.clone();
            view! {
                <tr class=if ok { "" } else { "row-tone-bad" } data-testid="audit-row" data-action=action>
                    <td class="num">{e.seq}</td>
                    <td class="num" title=utc_datetime(e.at_ms)>{utc_time(e.at_ms)}</td>
                    <td class="strong" data-testid="audit-actor">{e.actor}</td>
                    <td class="mono" data-testid="audit-action">{e.action}</td>
                    <td>{e.cluster.unwrap_or_default()}</td>
                    <td>{e.target.unwrap_or_default()}</td>
                    <td class="mono sub">{params}</td>
                    <td class=if ok { "tone-good" } else { "tone-bad" }>{e.outcome}</td>
                    <td class="mono sub">{e.client.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel">
            <div class="table-wrap">
                <table class="grid" data-testid="audit-entries">
                    <thead>
                        <tr>
                            <th scope="col">"#"</th>
                            <th scope="col">"Time (UTC)"</th>
                            <th scope="col">"Actor"</th>
                            <th scope="col">"Action"</th>
                            <th scope="col">"Cluster"</th>
                            <th scope="col">"Target"</th>
                            <th scope="col">"Parameters"</th>
                            <th scope="col">"Outcome"</th>
                            <th scope="col">"Client"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
