use leptos::prelude::*;
use talos_dr_shared::{ClusterHealth, MemberHealth};

use crate::components::StatusTag;
use crate::format::{Tone, member_tone, test_id};

/// The merged etcd member list, one row per member, updated in place as health changes.
#[component]
pub fn MembersTable(health: RwSignal<Option<ClusterHealth>>) -> impl IntoView {
    let ids = Memo::new(move |_| {
        health.with(|h| {
            h.as_ref()
                .map(|h| {
                    h.members
                        .iter()
                        .map(|m| m.member.id.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    view! {
        <section class="panel" aria-labelledby="members-title">
            <h2 id="members-title" class="panel-title">
                "etcd members" <span class="count">{move || ids.with(Vec::len)}</span>
            </h2>
            <div class="table-wrap">
                <table class="grid" data-testid="members">
                    <thead>
                        <tr>
                            <th scope="col">"Member ID"</th>
                            <th scope="col">"Hostname"</th>
                            <th scope="col">"Node"</th>
                            <th scope="col">"State"</th>
                            <th scope="col">"Role"</th>
                            <th scope="col">"Listed by"</th>
                            <th scope="col">"Reason"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || ids.get() key=|id| id.clone() let:id>
                            <MemberRow id health/>
                        </For>
                    </tbody>
                </table>
                <Show when=move || ids.with(Vec::is_empty)>
                    <p class="empty">"No etcd members seen yet."</p>
                </Show>
            </div>
        </section>
    }
}

#[component]
fn MemberRow(id: String, health: RwSignal<Option<ClusterHealth>>) -> impl IntoView {
    let row: Memo<Option<MemberHealth>> = Memo::new(move |_| {
        health.with(|h| {
            h.as_ref()
                .and_then(|h| h.members.iter().find(|m| m.member.id == id).cloned())
        })
    });
    let text = move |f: fn(&MemberHealth) -> String| {
        move || row.with(|m| m.as_ref().map(f).unwrap_or_default())
    };
    let tone = Signal::derive(move || {
        row.with(|m| m.as_ref().map_or(Tone::Unknown, |m| member_tone(m.state)))
    });
    let state = Signal::derive(text(|m| m.state.as_str().to_string()));
    let testid = move || {
        row.with(|m| {
            m.as_ref().map(|m| {
                let name = if m.member.hostname.is_empty() {
                    &m.member.id
                } else {
                    &m.member.hostname
                };
                test_id("member", name)
            })
        })
    };
    let role = move || {
        row.with(|m| match m {
            Some(m) if m.member.is_learner => {
                view! { <span class="role">"learner"</span> }.into_any()
            }
            Some(m) if m.is_leader => view! {
                <span class="role leader"><span aria-hidden="true">"★ "</span>"leader"</span>
            }
            .into_any(),
            Some(_) => view! { <span class="role">"voter"</span> }.into_any(),
            None => ().into_any(),
        })
    };
    view! {
        <tr
            data-testid=testid
            data-node=text(|m| m.node.clone().unwrap_or_default())
            data-state=text(|m| m.state.as_str().to_string())
            data-leader=text(|m| m.is_leader.to_string())
            class=move || format!("row-{}", tone.get().class())
        >
            <td class="mono">{text(|m| m.member.id.clone())}</td>
            <td>{text(|m| if m.member.hostname.is_empty() { "(not started)".into() } else { m.member.hostname.clone() })}</td>
            <td class="mono">{text(|m| m.node.clone().unwrap_or_else(|| "no matching node".into()))}</td>
            <td><StatusTag tone word=state testid="member-state"/></td>
            <td>{role}</td>
            <td title=text(|m| m.listed_by.join(", "))>
                {text(|m| match m.listed_by.len() {
                    0 => "none".into(),
                    1 => "1 node".into(),
                    n => format!("{n} nodes"),
                })}
            </td>
            <td class="reason">{text(|m| m.reason.clone().unwrap_or_default())}</td>
        </tr>
    }
}
