//! `/clusters/:name/incidents`: the cluster's recoveries, open and closed, and starting one.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use talos_dr_shared::recovery::IncidentSummary;

use super::incident::status_words;
use super::incident_live::refusal_text;
use crate::api;
use crate::components::{StartRecovery, StatusTag};
use crate::format::{age, utc_datetime};

#[component]
pub fn ClusterIncidentsPage() -> impl IntoView {
    let params = use_params_map();
    let name = Memo::new(move |_| params.with(|p| p.get("name").unwrap_or_default()));
    move || {
        let cluster = name.get();
        view! { <IncidentList cluster/> }
    }
}

#[component]
fn IncidentList(cluster: String) -> impl IntoView {
    document().set_title(&format!("Recoveries · {cluster} · talos-dr"));
    let list_cluster = cluster.clone();
    let incidents = LocalResource::new(move || {
        let cluster = list_cluster.clone();
        async move { api::list_incidents(&cluster).await }
    });
    let health_link = format!("/clusters/{cluster}");
    let (testid_cluster, title) = (cluster.clone(), cluster.clone());
    view! {
        <main class="page" data-testid="incidents-page" data-cluster=testid_cluster>
            <header class="page-head">
                <h1><span class="muted">"Recoveries of "</span><a href=health_link>{title}</a></h1>
            </header>
            <Transition fallback=|| view! { <p class="loading">"Loading the recoveries…"</p> }>
                {move || {
                    let cluster = cluster.clone();
                    Suspend::new(async move {
                        match incidents.await {
                            Ok(list) => {
                                let has_open = list.iter().any(|i| i.status == talos_dr_shared::recovery::IncidentStatus::Open);
                                view! {
                                    {(!has_open).then(|| view! { <StartRecovery cluster=cluster.clone()/> })}
                                    <IncidentTable list/>
                                }
                                .into_any()
                            }
                            Err(e) => view! { <p class="tone-bad" role="alert" data-testid="incidents-error">{refusal_text(&e)}</p> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </main>
    }
}

#[component]
fn IncidentTable(list: Vec<IncidentSummary>) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="muted" data-testid="no-incidents">"No recoveries yet."</p> }
            .into_any();
    }
    let now = js_sys::Date::now() as i64;
    let rows = list
        .into_iter()
        .map(|i| {
            let (tone, word) = status_words(i.status);
            view! {
                <tr data-testid="incident-row" data-id=i.id.clone() data-status=i.status.as_str()>
                    <td><StatusTag tone=tone word=word.to_string()/></td>
                    <td><a href=format!("/incidents/{}", i.id) class="mono">{i.id.clone()}</a></td>
                    <td>{i.reason.clone()}</td>
                    <td>{i.opened_by.clone()}</td>
                    <td title=utc_datetime(i.opened_at_ms)>{age(i.opened_at_ms, now)}</td>
                    <td class="num">{format!("{} of {}", i.steps_done, i.steps_total)}</td>
                    <td>{i.current.clone().unwrap_or_else(|| "—".into())}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="panel table-wrap">
            <table class="grid" data-testid="incidents">
                <thead><tr>
                    <th>"Status"</th><th>"Incident"</th><th>"Reason"</th><th>"Opened by"</th><th>"Opened"</th>
                    <th>"Steps done"</th><th>"Now"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
