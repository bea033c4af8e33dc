//! Live cluster health: a poller per cluster asks every control-plane node, the verdict comes
//! from `talos_dr_shared`, and a hub hands the latest `ClusterHealth` to HTTP and SSE clients.

mod hub;
mod poller;
pub mod routes;

pub use hub::{HealthHub, HealthPublisher, health_channel};
pub use poller::{PollSettings, poll_cluster, poll_node, spawn_poller};

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("the first health poll of cluster {0:?} has not finished yet; try again in a moment")]
    NotPolledYet(String),
}
