//! Route-level components.

mod audit;
mod fleet;
mod health;
mod login;
mod not_found;
mod users;
mod snapshot_detail;
mod snapshots;

pub use audit::AuditPage;
pub use fleet::FleetPage;
pub use health::{ClusterHealthPage, HomePage};
pub use login::LoginPage;
pub use not_found::NotFound;
pub use users::UsersPage;
pub use snapshot_detail::{SnapshotDiffPage, SnapshotEntryPage};
pub use snapshots::SnapshotsPage;
