//! The admin-only "Machine configs" section of the snapshots page: back up every control-plane
//! node's machine config and download earlier backups. Rebuilding a lost control plane needs
//! them; they hold the cluster's secrets, so the console shows them to admins only.

use leptos::prelude::*;
use leptos::task::spawn_local;
use talos_dr_shared::Role;

use crate::access::can;
use crate::api::{self, MachineConfigBackup};
use crate::format::{bytes, utc_datetime};
use crate::session::{SessionState, SessionStatus};

fn is_admin() -> bool {
    SessionState::get()
        .0
        .with_untracked(|s| matches!(s, SessionStatus::SignedIn(info) if can(info, Role::Admin)))
}

#[component]
pub fn MachineConfigsPanel(cluster: String) -> impl IntoView {
    if !is_admin() {
        return ().into_any();
    }
    let list_cluster = cluster.clone();
    let backups = LocalResource::new(move || {
        let cluster = list_cluster.clone();
        async move { api::list_machine_configs(&cluster).await }
    });
    let working = RwSignal::new(false);
    let message = RwSignal::new(None::<Result<String, String>>);
    let run_cluster = cluster.clone();
    let back_up = move |_| {
        if working.get_untracked() {
            return;
        }
        working.set(true);
        message.set(None);
        let cluster = run_cluster.clone();
        spawn_local(async move {
            let outcome = api::back_up_machine_configs(&cluster).await;
            working.set(false);
            message.set(Some(match outcome {
                Ok(run) if run.failures.is_empty() => {
                    Ok(format!("Backed up {} machine configs.", run.backups.len()))
                }
                Ok(run) => Err(format!(
                    "Backed up {}; not fetched: {}",
                    run.backups.len(),
                    run.failures
                        .iter()
                        .map(|f| format!("{} ({})", f.node, f.reason))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(e) => Err(e.to_string()),
            }));
            backups.refetch();
        });
    };
    let table_cluster = cluster.clone();
    view! {
        <section class="panel machine-configs" data-testid="machine-configs">
            <h2 class="panel-title">"Machine configs"</h2>
            <p class="muted">"Encrypted copies of each control-plane node's machine configuration (admin only; downloads are audited)."</p>
            <button
                class="button"
                data-testid="back-up-machine-configs"
                disabled=move || working.get()
                on:click=back_up
            >
                {move || if working.get() { "Backing up…" } else { "Back up machine configs" }}
            </button>
            {move || message.get().map(|m| match m {
                Ok(text) => view! { <p class="tone-good" data-testid="machine-config-result">{text}</p> }.into_any(),
                Err(text) => view! { <p class="tone-bad" role="alert" data-testid="machine-config-error">{text}</p> }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="loading">"Loading machine config backups…"</p> }>
                {move || {
                    let cluster = table_cluster.clone();
                    Suspend::new(async move {
                        match backups.await {
                            Ok(list) => backup_table(&cluster, list).into_any(),
                            Err(e) => view! { <p class="tone-bad" role="alert">{e.to_string()}</p> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
    .into_any()
}

fn backup_table(cluster: &str, list: Vec<MachineConfigBackup>) -> impl IntoView + use<> {
    if list.is_empty() {
        return view! { <p class="muted" data-testid="no-machine-configs">"No machine config backups yet."</p> }.into_any();
    }
    let rows = list
        .into_iter()
        .map(|b| {
            let href = api::machine_config_download_url(cluster, &b.id);
            view! {
                <tr data-testid="machine-config-row">
                    <td>{utc_datetime(b.taken_at_ms)}</td>
                    <td>{b.node.clone()}</td>
                    <td>{b.taken_by.clone()}</td>
                    <td>{bytes(b.size_bytes)}</td>
                    <td><code title=b.sha256.clone()>{b.sha256.chars().take(12).collect::<String>()}</code></td>
                    <td><a href=href download="" data-testid="machine-config-download">"Download"</a></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="table">
            <thead><tr><th>"Taken"</th><th>"Node"</th><th>"By"</th><th>"Size"</th><th>"sha256"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
