//! The watched clusters, their health, and the live health subscription.

use serde::Deserialize;
use talos_dr_shared::{ClusterHealth, ClusterSummary, Viewers};

use super::stream::{self, Listen, StreamUpdate, Subscription};
use super::{ApiError, cluster_path, get_json};

#[derive(Deserialize)]
struct ClusterList {
    clusters: Vec<ClusterSummary>,
}

#[derive(Deserialize)]
struct HealthReply {
    health: ClusterHealth,
}

/// `GET /api/clusters`: the clusters this console watches.
pub async fn list_clusters() -> Result<Vec<ClusterSummary>, ApiError> {
    get_json::<ClusterList>("/api/clusters", "a cluster list")
        .await
        .map(|l| l.clusters)
}

/// `GET /api/clusters/{cluster}/health`: the latest poll of one cluster.
pub async fn find_cluster_health(cluster: &str) -> Result<ClusterHealth, ApiError> {
    let url = format!("{}/health", cluster_path(cluster));
    get_json::<HealthReply>(&url, "a health report")
        .await
        .map(|r| r.health)
}

/// An event of a cluster's live health stream.
#[derive(Debug, Clone)]
pub enum HealthEvent {
    Health(Box<ClusterHealth>),
    /// Who has this cluster's live health open right now (this user included).
    Viewers(Vec<String>),
}

/// An open `GET /api/clusters/{cluster}/health/stream` subscription.
pub type HealthSubscription = Subscription<HealthEvent>;

/// Subscribes to the live health of `cluster`. `on_update` runs for every change of the stream.
pub fn subscribe_health(
    cluster: &str,
    on_update: impl Fn(StreamUpdate<HealthEvent>) + 'static,
) -> Result<HealthSubscription, ApiError> {
    stream::subscribe(
        format!("{}/health/stream", cluster_path(cluster)),
        vec![
            Listen {
                event: "health",
                what: "a health event",
                read: |text| stream::json(text).map(|h| HealthEvent::Health(Box::new(h))),
            },
            Listen {
                event: "viewers",
                what: "a viewers event",
                read: |text| stream::json::<Viewers>(text).map(|v| HealthEvent::Viewers(v.viewers)),
            },
        ],
        on_update,
    )
}
