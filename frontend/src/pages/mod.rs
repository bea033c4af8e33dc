//! Route-level components.

mod health;
mod login;
mod not_found;

pub use health::{ClusterHealthPage, HomePage};
pub use login::LoginPage;
pub use not_found::NotFound;
