use leptos::prelude::*;

use crate::format::{age, utc_datetime};
use crate::live::{Connection, HealthWatch};

/// "live" or "reconnecting", with the age of the data on the page.
#[component]
pub fn ConnectionIndicator(watch: HealthWatch) -> impl IntoView {
    let observed = move || watch.health.with(|h| h.as_ref().map(|h| h.observed_at_ms));
    let (class, word) = (
        move || match watch.connection.get() {
            Connection::Live => "conn conn-live",
            Connection::Connecting => "conn conn-connecting",
            Connection::Reconnecting { .. } => "conn conn-down",
            Connection::Stopped => "conn conn-stopped",
        },
        move || match watch.connection.get() {
            Connection::Live => "live",
            Connection::Connecting => "connecting",
            Connection::Reconnecting { .. } => "reconnecting",
            Connection::Stopped => "not watching",
        },
    );
    view! {
        <div class=class data-testid="connection" data-state=word role="status">
            <span class="dot" aria-hidden="true"></span>
            <span class="conn-word">{word}</span>
            <span class="conn-age" title=move || observed().map(utc_datetime)>
                {move || observed().map(|at| format!("data from {}", age(at, watch.now_ms.get())))}
            </span>
        </div>
    }
}

/// Shown above the data while the stream is down: the numbers below may no longer be true.
#[component]
pub fn StaleNotice(watch: HealthWatch) -> impl IntoView {
    let notice = move || {
        let Connection::Reconnecting { since_ms } = watch.connection.get() else {
            return None;
        };
        let now = watch.now_ms.get();
        let observed = watch.health.with(|h| h.as_ref().map(|h| h.observed_at_ms));
        Some(view! {
            <div class="stale-notice" role="alert" data-testid="stale-notice">
                <strong>"Live updates stopped "{age(since_ms, now)}"."</strong>
                " Reconnecting. "
                {observed.map(|at| format!(
                    "The health below is stale: it was observed at {} ({}).",
                    utc_datetime(at),
                    age(at, now)
                ))}
            </div>
        })
    };
    let problem = move || {
        watch.stream_problem.get().map(|p| {
            view! {
                <div class="stale-notice" role="alert">{p}</div>
            }
        })
    };
    view! { {notice} {problem} }
}
