//! The state every handler shares: the watched clusters and their health hubs.

use std::fmt;
use std::sync::Arc;

use crate::clusters::ClusterError;
use crate::health::HealthHub;
use crate::talos::TalosApi;

/// One cluster the console watches.
#[derive(Clone)]
pub struct WatchedCluster {
    pub name: String,
    /// The nodes the poller asks, in the order the configuration lists them.
    pub control_plane_nodes: Vec<String>,
    pub health: HealthHub,
    /// The cluster's Talos API, for capabilities that act on a node rather than watch it.
    pub talos: Arc<dyn TalosApi>,
}

impl fmt::Debug for WatchedCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedCluster")
            .field("name", &self.name)
            .field("control_plane_nodes", &self.control_plane_nodes)
            .finish_non_exhaustive()
    }
}

/// Cheap to clone; handlers get it through axum's `State`.
#[derive(Debug, Clone)]
pub struct AppState {
    clusters: Arc<Vec<WatchedCluster>>,
}

impl AppState {
    pub fn new(clusters: Vec<WatchedCluster>) -> Self {
        Self {
            clusters: Arc::new(clusters),
        }
    }

    pub fn clusters(&self) -> &[WatchedCluster] {
        &self.clusters
    }

    pub fn cluster(&self, name: &str) -> Result<&WatchedCluster, ClusterError> {
        self.clusters
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ClusterError::NotFound(name.to_string()))
    }
}
