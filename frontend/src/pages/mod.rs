//! Route-level components.

mod audit;
mod fleet;
mod health;
mod login;
mod machine_configs_panel;
mod not_found;
mod schedule_panel;
mod snapshot_detail;
mod snapshots;
mod users;

pub use audit::AuditPage;
pub use fleet::FleetPage;
pub use health::{ClusterHealthPage, HomePage};
pub use login::LoginPage;
pub use not_found::NotFound;
pub use snapshot_detail::{SnapshotDiffPage, SnapshotEntryPage};
pub use snapshots::SnapshotsPage;
pub use users::UsersPage;
