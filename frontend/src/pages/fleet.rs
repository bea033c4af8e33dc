use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use talos_dr_shared::{Fleet, FleetCluster};

use crate::api::{self, FleetSubscription, StreamUpdate};
use crate::components::StatusTag;
use crate::format::{Tone, age, test_id, utc_datetime, verdict_tone};
use crate::live::now_ms;

/// `/fleet` (and `/` when the console watches more than one cluster): one live line per cluster.
#[component]
pub fn FleetPage() -> impl IntoView {
    let fleet = RwSignal::new(None::<Fleet>);
    let problem = RwSignal::new(None::<String>);
    let now = RwSignal::new(now_ms());

    spawn_local(async move {
        match api::find_fleet().await {
            // The stream may already have delivered something newer.
            Ok(first) => fleet.update(|f| {
                if f.is_none() {
                    *f = Some(first);
                }
            }),
            Err(e) => {
                problem.try_set(Some(e.to_string()));
            }
        }
    });
    let subscription = StoredValue::new_local(None::<FleetSubscription>);
    match api::subscribe_fleet(move |update| match update {
        StreamUpdate::Connected => {}
        StreamUpdate::Event(latest) => {
            fleet.try_set(Some(latest));
            problem.try_set(None);
        }
        StreamUpdate::Unreadable(e) => {
            problem.try_set(Some(e.to_string()));
        }
        StreamUpdate::Lost => {
            problem.try_set(Some(
                "the live fleet stream dropped; reconnecting, the lines below may be stale".into(),
            ));
        }
    }) {
        Ok(sub) => {
            subscription.set_value(Some(sub));
            on_cleanup(move || {
                subscription.try_set_value(None);
            });
        }
        Err(e) => problem.set(Some(e.to_string())),
    }
    if let Ok(handle) = set_interval_with_handle(
        move || {
            now.try_set(now_ms());
        },
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }
    document().set_title("Fleet · talos-dr");

    let lines = move || fleet.with(|f| f.as_ref().map(|f| f.clusters.clone()).unwrap_or_default());
    view! {
        <main class="page" data-testid="fleet-page">
            <header class="page-head">
                <h1>"Fleet"</h1>
                <span class="sub">{move || fleet.with(|f| f.as_ref().map(|f| match f.clusters.len() {
                    1 => "1 cluster".to_string(),
                    n => format!("{n} clusters"),
                }))}</span>
            </header>
            {move || problem.get().map(|p| view! { <p class="stale-notice" role="status" data-testid="fleet-problem">{p}</p> })}
            <section class="panel">
                <div class="table-wrap">
                    <table class="grid fleet" data-testid="fleet">
                        <thead>
                            <tr>
                                <th scope="col">"Cluster"</th>
                                <th scope="col">"Verdict"</th>
                                <th scope="col">"Quorum"</th>
                                <th scope="col">"Healthy / voters"</th>
                                <th scope="col">"Leader"</th>
                                <th scope="col">"Data age"</th>
                                <th scope="col">"Viewers"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For each=lines key=|line| format!("{line:?}") let:line>
                                <FleetLine line now/>
                            </For>
                        </tbody>
                    </table>
                    <Show when=move || fleet.with(Option::is_none)>
                        <p class="empty">"Loading the fleet…"</p>
                    </Show>
                </div>
            </section>
        </main>
    }
}

#[component]
fn FleetLine(line: FleetCluster, now: RwSignal<i64>) -> impl IntoView {
    let href = format!(
        "/clusters/{}",
        String::from(js_sys::encode_uri_component(&line.name))
    );
    let tone = line.level.map_or(Tone::Unknown, verdict_tone);
    let word = line
        .level
        .map_or("not polled yet", |l| l.as_str())
        .to_string();
    let observed = line.observed_at_ms;
    let viewers = if line.viewers.is_empty() {
        "—".to_string()
    } else {
        line.viewers.join(", ")
    };
    let row_id = test_id("fleet-row", &line.name);
    let level = word.clone();
    view! {
        <tr class=format!("row-{}", tone.class()) data-testid=row_id data-level=level>
            <td><A href=href attr:class="strong">{line.name.clone()}</A></td>
            <td><StatusTag tone=tone word=word testid="fleet-verdict"/></td>
            <td>{line.quorum_words.unwrap_or_else(|| "—".into())}</td>
            <td class="num" data-testid="fleet-quorum">{format!("{} / {}", line.healthy, line.voters)}</td>
            <td class="mono">{line.leader.unwrap_or_else(|| "none".into())}</td>
            <td class="num" title=observed.map(utc_datetime)>
                {move || observed.map_or_else(|| "—".to_string(), |at| age(at, now.get()))}
            </td>
            <td data-testid="fleet-viewers">{viewers}</td>
        </tr>
    }
}
