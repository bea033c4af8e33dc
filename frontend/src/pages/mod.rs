//! Route-level components.

mod health;
mod not_found;

pub use health::{ClusterHealthPage, HomePage};
pub use not_found::NotFound;
