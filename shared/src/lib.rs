//! What the talos-dr console's server and browser say to each other, and the pure logic both
//! sides need to agree on (quorum arithmetic, health verdicts). No I/O, no async runtime: this
//! crate compiles for the server and for wasm32 alike.

pub mod access;
pub mod error;
pub mod fleet;
pub mod health;
pub mod notifications;
pub mod quorum;
pub mod recovery;
pub mod schedules;
pub mod sign_in;
pub mod snapshots;

pub use access::{
    AuditEntry, CSRF_HEADER, LoginRequest, Role, SessionInfo, SessionResponse, UserSummary, Viewers,
};
pub use error::ErrorBody;
pub use fleet::{Fleet, FleetCluster};
pub use health::*;
pub use quorum::Quorum;
