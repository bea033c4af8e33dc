//! `GET /metrics` in the Prometheus text format: per-cluster and per-member health as the
//! pollers last saw it, the database size, and failed Talos calls.
//!
//! Scrapers have no session. With `--metrics-token`, a scrape must send
//! `Authorization: Bearer <token>`; without it, only clients on a loopback address are served
//! (a Prometheus or node agent on the console's own host).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use talos_dr_shared::{MemberState, VerdictLevel};

use crate::state::AppState;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`
#[tracing::instrument(name = "find_metrics", skip_all)]
pub async fn find_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = render(&state);
    text.push_str(&render_database(&state).await);
    text.push_str(&crate::schedules::metrics::render(&state, crate::clock::now_ms()).await);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}

async fn render_database(state: &AppState) -> String {
    let mut out = String::new();
    let mut m = Family { out: &mut out };
    match state.storage().size_bytes().await {
        Ok(bytes) => {
            m.head(
                "talos_dr_database_size_bytes",
                "gauge",
                "Size of the console's own database.",
            );
            m.sample("talos_dr_database_size_bytes", &[], bytes);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the database size"),
    }
    out
}

/// Label values escaped as the text format wants.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

pub fn render(state: &AppState) -> String {
    let mut out = String::new();
    let mut m = Family { out: &mut out };
    let latest: Vec<_> = state
        .clusters()
        .iter()
        .map(|c| (c, c.health.latest()))
        .collect();

    m.head(
        "talos_dr_cluster_polled",
        "gauge",
        "1 once the console has finished a health poll of the cluster.",
    );
    for (c, h) in &latest {
        m.sample(
            "talos_dr_cluster_polled",
            &[("cluster", &c.name)],
            u8::from(h.is_some()),
        );
    }
    m.head(
        "talos_dr_cluster_verdict",
        "gauge",
        "1 for the cluster's current verdict (healthy, degraded, quorum_restorable, full_recovery_needed, unknown), 0 for the others.",
    );
    for (c, h) in &latest {
        if let Some(h) = h {
            for (level, name) in [
                (VerdictLevel::Healthy, "healthy"),
                (VerdictLevel::Degraded, "degraded"),
                (VerdictLevel::QuorumRestorable, "quorum_restorable"),
                (VerdictLevel::FullRecoveryNeeded, "full_recovery_needed"),
                (VerdictLevel::Unknown, "unknown"),
            ] {
                m.sample(
                    "talos_dr_cluster_verdict",
                    &[("cluster", &c.name), ("verdict", name)],
                    u8::from(h.verdict.level == level),
                );
            }
        }
    }
    m.head(
        "talos_dr_etcd_quorum_holds",
        "gauge",
        "1 while a majority of the etcd voters is healthy.",
    );
    for (c, h) in &latest {
        if let Some(h) = h {
            m.sample(
                "talos_dr_etcd_quorum_holds",
                &[("cluster", &c.name)],
                u8::from(h.verdict.quorum.holds()),
            );
        }
    }
    m.head("talos_dr_etcd_voters", "gauge", "Voting etcd members.");
    for (c, h) in &latest {
        if let Some(h) = h {
            m.sample(
                "talos_dr_etcd_voters",
                &[("cluster", &c.name)],
                h.verdict.quorum.voters,
            );
        }
    }
    m.head(
        "talos_dr_etcd_healthy_voters",
        "gauge",
        "Healthy voting etcd members.",
    );
    for (c, h) in &latest {
        if let Some(h) = h {
            m.sample(
                "talos_dr_etcd_healthy_voters",
                &[("cluster", &c.name)],
                h.verdict.quorum.healthy,
            );
        }
    }
    m.head(
        "talos_dr_etcd_quorum_needed",
        "gauge",
        "Healthy voters etcd needs to accept writes.",
    );
    for (c, h) in &latest {
        if let Some(h) = h {
            m.sample(
                "talos_dr_etcd_quorum_needed",
                &[("cluster", &c.name)],
                h.verdict.quorum.needed(),
            );
        }
    }
    m.head(
        "talos_dr_etcd_member_healthy",
        "gauge",
        "Per etcd member: 1 healthy, 0 unhealthy, -1 unknown (node unreachable).",
    );
    for (c, h) in &latest {
        if let Some(h) = h {
            for member in &h.members {
                let value: i8 = match member.state {
                    MemberState::Healthy => 1,
                    MemberState::Unhealthy => 0,
                    MemberState::Unknown => -1,
                };
                m.sample(
                    "talos_dr_etcd_member_healthy",
                    &[
                        ("cluster", &c.name),
                        ("member", &member.member.id),
                        ("hostname", &member.member.hostname),
                        ("node", member.node.as_deref().unwrap_or("")),
                    ],
                    value,
                );
            }
        }
    }
    m.head(
        "talos_dr_etcd_member_leader",
        "gauge",
        "1 for the etcd member that leads the cluster.",
    );
    for (c, h) in &latest {
        if let Some(h) = h {
            for member in &h.members {
                m.sample(
                    "talos_dr_etcd_member_leader",
                    &[("cluster", &c.name), ("member", &member.member.id)],
                    u8::from(member.is_leader),
                );
            }
        }
    }
    m.head(
        "talos_dr_node_reachable",
        "gauge",
        "1 when the node's Talos API answered the last poll.",
    );
    for (c, h) in &latest {
        if let Some(h) = h {
            for node in &h.nodes {
                m.sample(
                    "talos_dr_node_reachable",
                    &[("cluster", &c.name), ("node", &node.node)],
                    u8::from(node.reachable),
                );
            }
        }
    }
    m.head(
        "talos_dr_etcd_db_size_bytes",
        "gauge",
        "Size of the etcd database file on the node, as its etcd reports it.",
    );
    for (c, h) in &latest {
        if let Some(h) = h {
            for node in &h.nodes {
                if let Some(status) = &node.etcd_status {
                    m.sample(
                        "talos_dr_etcd_db_size_bytes",
                        &[("cluster", &c.name), ("node", &node.node)],
                        status.db_size,
                    );
                }
            }
        }
    }
    m.head(
        "talos_dr_last_poll_timestamp_seconds",
        "gauge",
        "When the last finished health poll observed the cluster.",
    );
    for (c, h) in &latest {
        if let Some(h) = h {
            m.sample(
                "talos_dr_last_poll_timestamp_seconds",
                &[("cluster", &c.name)],
                format!("{:.3}", h.observed_at_ms as f64 / 1000.0),
            );
        }
    }
    m.head(
        "talos_dr_poll_errors_total",
        "counter",
        "Talos calls of health polls that failed (unreachable, timeout, refused, bad reply).",
    );
    for (c, _) in &latest {
        m.sample(
            "talos_dr_poll_errors_total",
            &[("cluster", &c.name)],
            c.health.call_failures(),
        );
    }
    m.head(
        "talos_dr_viewers",
        "gauge",
        "Users with the cluster's live health open.",
    );
    for (c, _) in &latest {
        m.sample(
            "talos_dr_viewers",
            &[("cluster", &c.name)],
            c.presence.usernames().len(),
        );
    }
    out
}
