//! The clusters this console watches: the list for the cluster picker.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use talos_dr_shared::ClusterSummary;

use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("this console watches no cluster named {0:?}")]
    NotFound(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterListResponse {
    pub clusters: Vec<ClusterSummary>,
}

/// `GET /api/clusters`
#[tracing::instrument(name = "list_clusters", skip_all)]
pub async fn list_clusters(State(state): State<AppState>) -> Json<ClusterListResponse> {
    let clusters = state
        .clusters()
        .iter()
        .map(|c| ClusterSummary {
            name: c.name.clone(),
            control_plane_nodes: c.control_plane_nodes.clone(),
        })
        .collect();
    Json(ClusterListResponse { clusters })
}
