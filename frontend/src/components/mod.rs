//! Small reusable pieces of the console's pages.

mod cluster_picker;
mod command_line;
mod connection;
mod members;
mod nodes;
mod recovery_notices;
mod snapshot_download;
mod status;
mod theme_switch;
mod transfer_progress;
mod user_menu;
mod verdict;
mod viewers;

pub use cluster_picker::ClusterPicker;
pub use command_line::CommandLine;
pub use connection::{ConnectionIndicator, StaleNotice};
pub use members::MembersTable;
pub use nodes::NodesTable;
pub use recovery_notices::{
    ClusterRecovery, SingleControlPlaneWarning, StartRecovery, snapshot_is_fresh,
};
pub use snapshot_download::SnapshotDownloadButton;
pub use status::StatusTag;
pub use theme_switch::ThemeSwitch;
pub use transfer_progress::{ByteProgress, TransfersInFlight, progress_words};
pub use user_menu::UserMenu;
pub use verdict::{QuorumFacts, VerdictBanner};
pub use viewers::OtherViewers;
