use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use talos_dr_shared::ClusterSummary;

use crate::api::{self, ApiError};
use crate::components::{ClusterRecovery, SingleControlPlaneWarning};
use crate::components::{
    ConnectionIndicator, MembersTable, NodesTable, OtherViewers, QuorumFacts, StaleNotice,
    VerdictBanner,
};
use crate::live::HealthWatch;
use crate::pages::FleetPage;
use crate::pages::NotificationsPanel;

/// `/`: the fleet when the console watches several clusters; otherwise the one cluster's health.
#[component]
pub fn HomePage() -> impl IntoView {
    let clusters = expect_context::<LocalResource<Result<Vec<ClusterSummary>, ApiError>>>();
    view! {
        <Transition fallback=|| view! { <main class="page"><p class="loading">"Loading clusters…"</p></main> }>
            <ErrorBoundary fallback=error_page>
                {move || Suspend::new(async move {
                    clusters.await.map(|list| {
                        let several = list.len() > 1;
                        match list.into_iter().next() {
                        Some(_) if several => view! { <FleetPage/> }.into_any(),
                        Some(first) => view! { <ClusterHealthView cluster=first.name/> }.into_any(),
                        None => view! {
                            <main class="page">
                                <h1>"No clusters"</h1>
                                <p>"This console watches no clusters yet. Start it with "
                                    <code>"--cluster NAME=TALOSCONFIG"</code>"."</p>
                            </main>
                        }
                        .into_any(),
                    }})
                })}
            </ErrorBoundary>
        </Transition>
    }
}

/// `/clusters/:name`
#[component]
pub fn ClusterHealthPage() -> impl IntoView {
    let params = use_params_map();
    let name = Memo::new(move |_| params.with(|p| p.get("name").unwrap_or_default()));
    // Another cluster means another watch: the old view (and its stream) is dropped with it.
    move || {
        let cluster = name.get();
        view! { <ClusterHealthView cluster/> }
    }
}

#[component]
fn ClusterHealthView(cluster: String) -> impl IntoView {
    let watch = HealthWatch::start(cluster.clone());
    let initial = {
        let cluster = cluster.clone();
        LocalResource::new(move || {
            let cluster = cluster.clone();
            async move { api::find_cluster_health(&cluster).await }
        })
    };
    // The tab title carries the verdict, so a background tab still tells the story.
    let tab_cluster = cluster.clone();
    Effect::new(move |_| {
        let level = watch
            .health
            .with(|h| h.as_ref().map(|h| h.verdict.level.as_str()));
        let title = match level {
            Some(level) => format!("{level} · {tab_cluster} · talos-dr"),
            None => format!("{tab_cluster} · talos-dr"),
        };
        document().set_title(&title);
    });
    Effect::new(move |_| {
        let have_data = watch.health.with(Option::is_some);
        let outcome = initial.with(|r| match r {
            Some(Err(ApiError::Console { status: 404, .. })) => Some(true),
            Some(Err(_)) => Some(false),
            _ => None,
        });
        match outcome {
            // The console does not know this cluster: nothing will ever stream.
            Some(true) => watch.stop(),
            // It failed now (not polled yet, console restarting) but the stream has data since:
            // fetch again so the error clears.
            Some(false) if have_data => initial.refetch(),
            _ => {}
        }
    });

    let title = cluster.clone();
    let snapshots_href = format!("/clusters/{cluster}/snapshots");
    let incidents_href = format!("/clusters/{cluster}/incidents");
    view! {
        <main class="page" data-testid="health-page" data-cluster=cluster>
            <header class="page-head">
                <h1>
                    <span class="muted">"Cluster "</span>
                    <span data-testid="cluster-name">{title}</span>
                </h1>
                <div class="page-head-end">
                    <a class="button" href=snapshots_href data-testid="snapshots-link">"Snapshots"</a>
                    <a class="button" href=incidents_href data-testid="incidents-link">"Recoveries"</a>
                    <OtherViewers watch/>
                    <ConnectionIndicator watch/>
                </div>
            </header>
            <SingleControlPlaneWarning cluster=cluster.clone() watch/>
            <ClusterRecovery cluster=cluster.clone()/>
            <Transition fallback=|| view! { <p class="loading">"Loading cluster health…"</p> }>
                <ErrorBoundary fallback=error_panel>
                    {move || Suspend::new(async move {
                        initial.await.map(|health| {
                            untrack(|| watch.offer(health));
                            view! { <HealthBoard watch/> }
                        })
                    })}
                </ErrorBoundary>
            </Transition>
            <NotificationsPanel cluster=cluster.clone()/>
        </main>
    }
}

#[component]
fn HealthBoard(watch: HealthWatch) -> impl IntoView {
    let health = watch.health;
    view! {
        <StaleNotice watch/>
        <div class="board" data-testid="health-board" data-stale=move || watch.is_stale().to_string()>
            <div class="summary-row">
                <VerdictBanner health/>
                <QuorumFacts health/>
            </div>
            <MembersTable health/>
            <NodesTable health/>
        </div>
    }
}

fn error_list(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <ul class="reasons">
            {move || errors.get().into_iter().map(|(_, e)| view! { <li>{e.to_string()}</li> }).collect_view()}
        </ul>
    }
}

fn error_panel(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <section class="verdict tone-bad" role="alert" data-testid="load-error">
            <div class="verdict-head">
                <h2 class="verdict-word"><span class="glyph" aria-hidden="true">"✖"</span>"cannot load health"</h2>
            </div>
            {error_list(errors)}
        </section>
    }
}

fn error_page(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! { <main class="page">{error_panel(errors)}</main> }
}
