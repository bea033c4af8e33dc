//! Byte progress: a bar with the figure in words ("412 MiB of 1.0 GiB"), for snapshots being
//! taken, copied or uploaded (everyone on the page sees everyone's) and for downloads.

use leptos::prelude::*;
use talos_dr_shared::snapshots::{SnapshotEntryKind, SnapshotTransfer, TransferPhase};

use crate::api::{self, StreamUpdate, TransfersSubscription};
use crate::format::age;
use crate::live::now_ms;

/// 432013312 → "412 MiB": transfer sizes the way `df -h` and browsers print them.
pub fn iec(n: f64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024.0 {
        return format!("{} B", n.max(0.0).round());
    }
    let mut value = n;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

/// "412 MiB of 1.0 GiB", or just "412 MiB" when nobody knows the size.
pub fn progress_words(received: f64, total: Option<f64>) -> String {
    match total.filter(|t| *t > 0.0) {
        Some(total) => format!("{} of {}", iec(received), iec(total)),
        None => iec(received),
    }
}

/// A bar and its words. Without a known total the bar is indeterminate, the words still count.
#[component]
pub fn ByteProgress(
    #[prop(into)] received: Signal<f64>,
    #[prop(into)] total: Signal<Option<f64>>,
    /// What is moving, for screen readers ("Downloading db.snapshot").
    label: String,
    test_id: &'static str,
) -> impl IntoView {
    let known = move || total.get().filter(|t| *t > 0.0);
    view! {
        <span class="byte-progress" data-testid=test_id>
            {move || match known() {
                Some(t) => view! {
                    <progress aria-label=label.clone() max=t value=move || received.get().min(t)></progress>
                }
                .into_any(),
                None => view! { <progress aria-label=label.clone()></progress> }.into_any(),
            }}
            <span class="byte-progress-words" data-testid=format!("{test_id}-words")>
                {move || progress_words(received.get(), total.get())}
            </span>
        </span>
    }
}

fn kind_words(kind: SnapshotEntryKind) -> &'static str {
    match kind {
        SnapshotEntryKind::Snapshot => "Snapshot",
        SnapshotEntryKind::RawCopy => "Raw copy",
        SnapshotEntryKind::Upload => "Upload",
    }
}

/// Every take, raw copy and upload of the cluster in flight, whoever started it, live from the
/// console's stream (no polling). `on_finished` runs when one ends: the history has a new entry.
#[component]
pub fn TransfersInFlight(
    cluster: String,
    on_finished: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let transfers = RwSignal::new(Vec::<SnapshotTransfer>::new());
    let problem = RwSignal::new(None::<String>);
    // The finished count at the last event; `None` until the first event after (re)connecting.
    let finished = StoredValue::new(None::<u64>);
    let subscription = StoredValue::new_local(None::<TransfersSubscription>);
    match api::subscribe_snapshot_transfers(&cluster, move |update| match update {
        StreamUpdate::Connected => {}
        StreamUpdate::Event(latest) => {
            let before = finished.try_get_value().flatten();
            finished.try_set_value(Some(latest.finished));
            transfers.try_set(latest.in_flight);
            problem.try_set(None);
            if before.is_some_and(|b| b != latest.finished) {
                on_finished();
            }
        }
        StreamUpdate::Unreadable(e) => {
            problem.try_set(Some(e.to_string()));
        }
        StreamUpdate::Lost => {
            // After a reconnect the count is compared afresh; the history may have missed one.
            finished.try_set_value(None);
            problem.try_set(Some(
                "the live transfer stream dropped; reconnecting".into(),
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
    move || {
        let list = transfers.get();
        let problem = problem.get().map(|p| view! { <p class="stale-notice" role="status" data-testid="transfers-problem">{p}</p> });
        let panel = (!list.is_empty()).then(|| {
            let now = now_ms();
            let rows = list
                .into_iter()
                .map(|t| {
                    let source = match &t.node {
                        Some(node) => format!(" from {node}"),
                        None => String::new(),
                    };
                    let phase = match t.phase {
                        TransferPhase::Receiving => "receiving",
                        TransferPhase::Verifying => "checking the file",
                    };
                    let title = format!(
                        "{}{source} by {}, started {}: {phase}",
                        kind_words(t.kind),
                        t.started_by,
                        age(t.started_at_ms, now)
                    );
                    let received = t.received_bytes as f64;
                    let total = t.expected_bytes.map(|n| n as f64);
                    view! {
                        <li data-testid="transfer" data-id=t.id.clone() data-phase=phase>
                            <span class="transfer-title">{title.clone()}</span>
                            <ByteProgress
                                received=Signal::derive(move || received)
                                total=Signal::derive(move || total)
                                label=title
                                test_id="transfer-progress"
                            />
                        </li>
                    }
                })
                .collect_view();
            view! {
                <section class="panel transfers" data-testid="transfers">
                    <h2 class="panel-title">"In progress"</h2>
                    <ul class="transfer-list panel-body" aria-live="polite">{rows}</ul>
                </section>
            }
        });
        (problem, panel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_like_a_file_manager() {
        assert_eq!(iec(412.0 * 1024.0 * 1024.0), "412 MiB");
        assert_eq!(iec(1024.0 * 1024.0 * 1024.0), "1.0 GiB");
        assert_eq!(iec(900.0), "900 B");
        assert_eq!(
            progress_words(412.0 * 1048576.0, Some(1073741824.0)),
            "412 MiB of 1.0 GiB"
        );
        assert_eq!(progress_words(2048.0, None), "2.0 KiB");
        assert_eq!(progress_words(2048.0, Some(0.0)), "2.0 KiB");
    }
}
