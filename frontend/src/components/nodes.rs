use leptos::prelude::*;
use talos_dr_shared::{
    AlarmType, ClusterHealth, EtcdService, MachineType, NodeHealth, ServiceEvent,
};

use crate::components::StatusTag;
use crate::format::{
    Tone, bytes, service_health_tone, service_health_word, service_tone, test_id, utc_datetime,
    utc_time,
};

/// How many of a node's etcd service events to show; Talos keeps more, the newest matter.
const EVENTS_SHOWN: usize = 3;

/// What each control-plane node's Talos API said in the latest poll.
#[component]
pub fn NodesTable(health: RwSignal<Option<ClusterHealth>>) -> impl IntoView {
    let names = Memo::new(move |_| {
        health.with(|h| {
            h.as_ref()
                .map(|h| h.nodes.iter().map(|n| n.node.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    view! {
        <section class="panel" aria-labelledby="nodes-title">
            <h2 id="nodes-title" class="panel-title">
                "Control-plane nodes" <span class="count">{move || names.with(Vec::len)}</span>
            </h2>
            <div class="table-wrap">
                <table class="grid" data-testid="nodes">
                    <thead>
                        <tr>
                            <th scope="col">"Node"</th>
                            <th scope="col">"Talos API"</th>
                            <th scope="col">"etcd service"</th>
                            <th scope="col">"etcd status"</th>
                            <th scope="col">"Latest service events (UTC)"</th>
                            <th scope="col">"Call failures"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || names.get() key=|n| n.clone() let:name>
                            <NodeRow name health/>
                        </For>
                    </tbody>
                </table>
                <Show when=move || names.with(Vec::is_empty)>
                    <p class="empty">"No control-plane nodes polled yet."</p>
                </Show>
            </div>
        </section>
    }
}

fn machine_type_word(t: MachineType) -> &'static str {
    match t {
        MachineType::Unknown => "unknown",
        MachineType::Init => "init",
        MachineType::Controlplane => "controlplane",
        MachineType::Worker => "worker",
    }
}

#[component]
fn NodeRow(name: String, health: RwSignal<Option<ClusterHealth>>) -> impl IntoView {
    let testid = test_id("node", &name);
    let lookup = name.clone();
    let row: Memo<Option<NodeHealth>> = Memo::new(move |_| {
        health.with(|h| {
            h.as_ref()
                .and_then(|h| h.nodes.iter().find(|n| n.node == lookup).cloned())
        })
    });
    // The hostname comes from the member that maps to this node, when there is one.
    let node_name = name.clone();
    let hostname = Memo::new(move |_| {
        health.with(|h| {
            h.as_ref().and_then(|h| {
                h.members
                    .iter()
                    .find(|m| m.node.as_deref() == Some(node_name.as_str()))
                    .map(|m| m.member.hostname.clone())
            })
        })
    });
    let service: Memo<Option<EtcdService>> =
        Memo::new(move |_| row.with(|n| n.as_ref().and_then(|n| n.etcd_service.clone())));
    let text = move |f: fn(&NodeHealth) -> String| {
        move || row.with(|n| n.as_ref().map(f).unwrap_or_default())
    };

    let reach_tone = Signal::derive(move || {
        row.with(|n| match n {
            Some(n) if n.reachable => Tone::Good,
            Some(_) => Tone::Bad,
            None => Tone::Unknown,
        })
    });
    let reach_word = Signal::derive(text(|n| {
        if n.reachable {
            "reachable".into()
        } else {
            "unreachable".into()
        }
    }));

    let service_cell = move || {
        service.with(|s| match s {
            Some(s) => {
                let state = Signal::derive({
                    let w = s.state.as_str().to_string();
                    move || w.clone()
                });
                let health_word = Signal::derive({
                    let w = service_health_word(s.health).to_string();
                    move || w.clone()
                });
                let message = s.health_message.clone();
                view! {
                    <div class="stack">
                        <StatusTag tone=service_tone(s.state) word=state testid="etcd-service-state"/>
                        <StatusTag tone=service_health_tone(s.health) word=health_word testid="etcd-service-health"/>
                        {(!message.is_empty()).then(|| view! { <span class="sub">{message}</span> })}
                    </div>
                }
                .into_any()
            }
            None => view! { <span class="muted">"not reported"</span> }.into_any(),
        })
    };

    let events = Memo::new(move |_| {
        service.with(|s| {
            s.as_ref().map(|s| {
                s.events
                    .iter()
                    .rev()
                    .take(EVENTS_SHOWN)
                    .cloned()
                    .collect::<Vec<_>>()
            })
        })
    });
    let events_cell = move || {
        events.with(|e| match e {
            Some(e) if !e.is_empty() => view! {
                <ol class="events">{e.iter().map(event_line).collect_view()}</ol>
            }
            .into_any(),
            _ => view! { <span class="muted">"none"</span> }.into_any(),
        })
    };

    let alarms = move || {
        row.with(|n| {
            let raised: Vec<String> = n
                .as_ref()
                .map(|n| {
                    n.alarms
                        .iter()
                        .filter(|a| a.alarm != AlarmType::None)
                        .map(|a| format!("{} on {}", if a.alarm == AlarmType::Nospace { "NOSPACE" } else { "CORRUPT" }, a.member_id))
                        .collect()
                })
                .unwrap_or_default();
            if raised.is_empty() {
                view! { <span class="muted">"no alarms"</span> }.into_any()
            } else {
                view! {
                    <ul class="alarms">
                        {raised.into_iter().map(|a| view! {
                            <li class="tag tone-bad"><span class="glyph" aria-hidden="true">"✖"</span>{a}</li>
                        }).collect_view()}
                    </ul>
                }
                .into_any()
            }
        })
    };

    let failures = move || {
        row.with(|n| {
            let failures = n.as_ref().map(|n| n.failures.clone()).unwrap_or_default();
            if failures.is_empty() {
                view! { <span class="muted">"none"</span> }.into_any()
            } else {
                view! {
                    <ul class="failures" data-testid="call-failures">
                        {failures.into_iter().map(|f| view! {
                            <li><span class="mono call">{f.call}</span>": "{f.message}</li>
                        }).collect_view()}
                    </ul>
                }
                .into_any()
            }
        })
    };

    let status_cell = move || {
        row.with(|n| match n.as_ref().and_then(|n| n.etcd_status.as_ref()) {
            Some(s) => view! {
                <div class="kv"><span class="k">"DB"</span>{bytes(s.db_size)}
                    <span class="sub">" · "{bytes(s.db_size_in_use)}" in use"</span></div>
                <div class="kv mono"><span class="k">"raft"</span>{s.raft_index}
                    <span class="k">" term"</span>{s.raft_term}</div>
                <div class="kv" data-testid="etcd-leader" title=format!("member {} follows leader {}", s.member_id, s.leader)>
                    <span class="k">"leader"</span>
                    {leader_name(n.as_ref(), &s.leader)}
                </div>
            }
            .into_any(),
            None => view! { <div class="muted">"no status"</div> }.into_any(),
        })
    };

    let members_seen = move || {
        row.with(|n| match n.as_ref().and_then(|n| n.members.as_ref()) {
            Some(list) => view! {
                <div class="kv members-seen" data-testid="members-seen">
                    <span class="k">"sees"</span>
                    {list.iter().enumerate().map(|(i, m)| {
                        let name = if m.hostname.is_empty() { m.id.clone() } else { m.hostname.clone() };
                        let learner = m.is_learner.then_some(" (learner)");
                        view! { {(i > 0).then_some(", ")}<span title=m.id.clone()>{name}{learner}</span> }
                    }).collect_view()}
                </div>
            }
            .into_any(),
            None => view! { <div class="kv muted" data-testid="members-seen">"cannot list members"</div> }.into_any(),
        })
    };

    view! {
        <tr data-testid=testid data-reachable=text(|n| n.reachable.to_string())>
            <td>
                <div class="mono strong">{name}</div>
                <div class="sub">{move || hostname.get()}</div>
                <div class="sub mono">{text(|n| n.talos_version.clone().unwrap_or_else(|| "version unknown".into()))}</div>
                <div class="sub">{text(|n| n.machine_type.map_or("type unknown", machine_type_word).to_string())}</div>
            </td>
            <td>
                <div class="stack">
                    <StatusTag tone=reach_tone word=reach_word testid="node-reachable"/>
                    <span class="sub" title=text(|n| format!("polled {}", utc_datetime(n.polled_at_ms)))>
                        {text(|n| format!("{} ms", n.latency_ms))}
                    </span>
                </div>
            </td>
            <td class="service-cell">{service_cell}</td>
            <td class="status-cell">{status_cell} {members_seen} <div class="alarms-wrap" data-testid="alarms">{alarms}</div></td>
            <td class="events-cell">{events_cell}</td>
            <td class="failures-cell">{failures}</td>
        </tr>
    }
}

/// The leader as this node names it: the hostname from its own member list, else the ID.
fn leader_name(node: Option<&NodeHealth>, leader: &str) -> String {
    if leader.chars().all(|c| c == '0') {
        return "none seen".into();
    }
    node.and_then(|n| n.members.as_ref())
        .and_then(|list| {
            list.iter()
                .find(|m| m.id == leader && !m.hostname.is_empty())
        })
        .map_or_else(|| leader.to_string(), |m| m.hostname.clone())
}

fn event_line(e: &ServiceEvent) -> impl IntoView + use<> {
    let tone = service_tone(e.state);
    view! {
        <li title=utc_datetime(e.at_ms)>
            <span class="mono time">{utc_time(e.at_ms)}</span>
            <span class=format!("ev-state {}", tone.class())>{e.state.as_str()}</span>
            <span class="ev-msg">{e.message.clone()}</span>
        </li>
    }
}
