//! Turning the configuration into watched clusters: talosconfigs read and checked, Talos clients
//! set up, one health poller per cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{ClusterConfig, Config};
use crate::health::{PollSettings, spawn_poller};
use crate::state::WatchedCluster;
use crate::talos::credentials::{ClusterCredentials, TalosRole};
use crate::talos::{
    TalosApi, TalosClient, TalosClientError, TalosRecoveryApi, TalosconfigError, talosconfig,
};

/// Why the console refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Talosconfig(#[from] TalosconfigError),
    #[error(transparent)]
    Client(#[from] TalosClientError),
    #[error("cluster {cluster:?}: node {node:?}: {problem}")]
    BadNode {
        cluster: String,
        node: String,
        problem: String,
    },
}

/// Every talosconfig of a cluster, loaded: the cluster's own and one per listed Talos role.
fn load_credentials(cluster: &ClusterConfig) -> Result<ClusterCredentials, StartupError> {
    let fallback = talosconfig::load(&cluster.talosconfig, cluster.context.as_deref())?;
    let mut by_role = BTreeMap::new();
    for (role, file) in &cluster.talosconfigs {
        by_role.insert(
            *role,
            talosconfig::load(&file.talosconfig, file.context.as_deref())?,
        );
    }
    Ok(ClusterCredentials::new(Some(fallback), by_role))
}

/// Reads every cluster's talosconfigs and starts its poller. Every talosconfig is checked before
/// any poller starts, so one bad file stops the start with nothing left running.
/// Needs a running tokio runtime.
pub fn watch_clusters(config: &Config) -> Result<Vec<WatchedCluster>, StartupError> {
    let mut ready = Vec::new();
    for cluster in &config.clusters {
        let credentials = load_credentials(cluster)?;
        let Some(ctx) = credentials.for_role(TalosRole::Reader).cloned() else {
            continue;
        };
        let nodes = cluster.nodes.clone().unwrap_or_else(|| ctx.default_nodes());
        for node in &nodes {
            talos_api::with_node((), node).map_err(|e| StartupError::BadNode {
                cluster: cluster.name.clone(),
                node: node.clone(),
                problem: e.to_string(),
            })?;
        }
        let client = TalosClient::new(&ctx, config.call_timeout)?;
        let recovery = match credentials.for_role(TalosRole::Admin) {
            Some(admin) => Some(Arc::new(TalosClient::new(admin, config.call_timeout)?)
                as Arc<dyn TalosRecoveryApi>),
            None => None,
        };
        tracing::info!(cluster = %cluster.name, talosconfig = %ctx.source.display(), context = %ctx.context, nodes = ?nodes, recovery = recovery.is_some(), "watching cluster");
        let settings = PollSettings {
            cluster: cluster.name.clone(),
            nodes,
            interval: config.poll_interval,
            call_timeout: config.call_timeout,
        };
        ready.push((
            settings,
            Arc::new(client) as Arc<dyn TalosApi>,
            credentials,
            recovery,
        ));
    }
    Ok(ready
        .into_iter()
        .map(|(settings, talos, credentials, recovery)| {
            let mut watched = watch_cluster(settings, talos);
            watched.talos_credentials = credentials;
            watched.recovery_talos = recovery;
            watched
        })
        .collect())
}

/// Starts polling one cluster through any `TalosApi` (the real client, or a fake in tests).
/// Needs a running tokio runtime.
pub fn watch_cluster(settings: PollSettings, talos: Arc<dyn TalosApi>) -> WatchedCluster {
    let health = spawn_poller(settings.clone(), talos.clone());
    WatchedCluster {
        name: settings.cluster,
        control_plane_nodes: settings.nodes,
        health,
        presence: Default::default(),
        talos,
        talos_credentials: ClusterCredentials::default(),
        recovery_talos: None,
    }
}
