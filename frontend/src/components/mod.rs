//! Small reusable pieces of the console's pages.

mod cluster_picker;
mod connection;
mod members;
mod nodes;
mod status;
mod theme_switch;
mod user_menu;
mod verdict;
mod viewers;

pub use cluster_picker::ClusterPicker;
pub use connection::{ConnectionIndicator, StaleNotice};
pub use members::MembersTable;
pub use nodes::NodesTable;
pub use status::StatusTag;
pub use theme_switch::ThemeSwitch;
pub use user_menu::UserMenu;
pub use verdict::{QuorumFacts, VerdictBanner};
pub use viewers::OtherViewers;
