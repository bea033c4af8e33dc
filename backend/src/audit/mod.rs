//! The audit trail: who did what, to which cluster, with which outcome, in an append-only table
//! where each entry carries the SHA-256 of the previous one.

pub mod routes;
mod store;

use std::collections::BTreeMap;

use talos_dr_shared::Role;

pub use store::{AuditFilter, AuditStore, ChainReport, append_within};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log: {0}")]
    Store(#[from] sqlx::Error),
    #[error("audit log: cannot encode an entry: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("audit query: {0}")]
    BadFilter(String),
}

/// An entry to append; the store adds its place, time and hashes.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor: String,
    pub roles: Vec<Role>,
    pub action: String,
    pub cluster: Option<String>,
    pub target: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub outcome: String,
    pub client: Option<String>,
}

/// What a handler adds to its response for the audit entry the guard writes: the target and
/// the parameters (never secrets).
#[derive(Debug, Clone, Default)]
pub struct AuditDetail {
    pub target: Option<String>,
    pub parameters: BTreeMap<String, String>,
}
