//! "Download" for a stored snapshot, with its own progress bar while the bytes arrive, then the
//! browser's save dialog.

use leptos::prelude::*;

use super::transfer_progress::ByteProgress;
use crate::api::{self, SnapshotDownload};

#[component]
pub fn SnapshotDownloadButton(cluster: String, id: String, file_name: String) -> impl IntoView {
    // (received, total) while a download runs.
    let progress = RwSignal::new(None::<(f64, Option<f64>)>);
    let problem = RwSignal::new(None::<String>);
    let handle = StoredValue::new_local(None::<SnapshotDownload>);
    let label = format!("Downloading {file_name}");
    let start = move |_| {
        if progress.get_untracked().is_some() {
            return;
        }
        problem.set(None);
        progress.set(Some((0.0, None)));
        let started = api::download_snapshot(
            &cluster,
            &id,
            file_name.clone(),
            move |received, total| {
                progress.try_set(Some((received, total)));
            },
            move |result| {
                progress.try_set(None);
                handle.try_set_value(None);
                if let Err(e) = result {
                    problem.try_set(Some(e.to_string()));
                }
            },
        );
        match started {
            Ok(h) => handle.set_value(Some(h)),
            Err(e) => {
                progress.set(None);
                problem.set(Some(e.to_string()));
            }
        }
    };
    let cancel = move |_| {
        handle.with_value(|h| {
            if let Some(h) = h {
                h.abort()
            }
        })
    };
    view! {
        <span class="snapshot-download">
            {move || match progress.get() {
                None => view! {
                    <button class="link-button" data-testid="snapshot-download" on:click=start.clone()>"Download"</button>
                }
                .into_any(),
                Some((received, total)) => view! {
                    <ByteProgress
                        received=Signal::derive(move || received)
                        total=Signal::derive(move || total)
                        label=label.clone()
                        test_id="download-progress"
                    />
                    <button class="link-button" data-testid="download-cancel" on:click=cancel>"Cancel"</button>
                }
                .into_any(),
            }}
            {move || problem.get().map(|p| view! { <span class="tone-bad" role="alert" data-testid="download-error">{p}</span> })}
        </span>
    }
}
