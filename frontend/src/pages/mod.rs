//! Route-level components.

mod audit;
mod fleet;
mod health;
mod incident;
mod incident_list;
mod incident_live;
mod incident_offers;
mod incident_plan;
mod incident_precheck;
mod incident_snapshot;
mod incident_step_forms;
mod incident_timeline;
mod login;
mod machine_configs_panel;
mod not_found;
mod notifications_panel;
mod schedule_panel;
mod snapshot_detail;
mod snapshots;
mod users;

pub use audit::AuditPage;
pub use fleet::FleetPage;
pub use health::{ClusterHealthPage, HomePage};
pub use incident::IncidentPage;
pub use incident_list::ClusterIncidentsPage;
pub use login::LoginPage;
pub use not_found::NotFound;
pub use notifications_panel::NotificationsPanel;
pub use snapshot_detail::{SnapshotDiffPage, SnapshotEntryPage};
pub use snapshots::SnapshotsPage;
pub use users::UsersPage;
