//! Why a recovery action was refused or failed, and the status code and stable `code` of each.

use axum::http::StatusCode;
use talos_dr_shared::recovery::Refusal;

use super::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("{what} id {id:?} is not an id: ids are 16 hexadecimal digits")]
    BadId { what: &'static str, id: String },
    #[error("no incident {0:?}")]
    NotFound(String),
    #[error("incident {incident} has no step {step:?}")]
    StepNotFound { incident: String, step: String },
    #[error("cluster {cluster:?} already has an open incident: {id}")]
    AlreadyOpen { cluster: String, id: String },
    #[error(
        "cluster {0:?} has no admin talosconfig: recoveries need one (configure talosconfigs.admin or --cluster-credential NAME:admin=FILE)"
    )]
    NoAdminTalosconfig(String),
    #[error("incident {id} is {status}: it can no longer change")]
    NotOpen { id: String, status: &'static str },
    /// A guard rail said no; the words are the rule's.
    #[error("{0}")]
    Refused(Refusal),
    /// The step is not where the caller saw it: another browser or console moved it first.
    #[error("{0}")]
    Conflict(String),
    /// The request names something that is wrong; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The pre-checks have not passed, or need an override first.
    #[error("{0}")]
    PrecheckOpen(String),
    #[error("no health poll of cluster {0:?} has finished yet; try again in a moment")]
    NoHealth(String),
    /// A node had to answer before the step could start, and did not.
    #[error("{0}")]
    NodeUnavailable(String),
    #[error("snapshot: {0}")]
    Snapshot(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for RecoveryError {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

fn refusal_status(r: &Refusal) -> (StatusCode, &'static str) {
    match r {
        Refusal::NeedsRole(_) => (StatusCode::FORBIDDEN, "role_required"),
        Refusal::BreakGlassNeedsAdmin => (StatusCode::FORBIDDEN, "break_glass_needs_admin"),
        Refusal::WrongState { .. } => (StatusCode::CONFLICT, "wrong_state"),
        Refusal::EarlierStepOpen { .. } => (StatusCode::CONFLICT, "earlier_step_open"),
        Refusal::AlreadyAnswered => (StatusCode::CONFLICT, "already_answered"),
        Refusal::Denied { .. } => (StatusCode::CONFLICT, "denied"),
        Refusal::NotEnoughApprovals { .. } => (StatusCode::CONFLICT, "not_enough_approvals"),
        Refusal::ApprovalExpired => (StatusCode::CONFLICT, "approval_expired"),
        Refusal::ApprovalVoided { .. } => (StatusCode::CONFLICT, "approval_voided"),
        Refusal::ReasonMissing => (StatusCode::UNPROCESSABLE_ENTITY, "reason_missing"),
        Refusal::NotDestructive => (StatusCode::UNPROCESSABLE_ENTITY, "not_destructive"),
        Refusal::SelfApproval => (StatusCode::UNPROCESSABLE_ENTITY, "self_approval"),
        Refusal::BreakGlassOff => (StatusCode::UNPROCESSABLE_ENTITY, "break_glass_off"),
        Refusal::BreakGlassOnlyForOwnRequest => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "break_glass_only_for_own_request",
        ),
        Refusal::WrongHostname { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "wrong_hostname"),
        Refusal::NoTarget => (StatusCode::UNPROCESSABLE_ENTITY, "no_target"),
    }
}

impl RecoveryError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadId { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "incident_not_found"),
            Self::StepNotFound { .. } => (StatusCode::NOT_FOUND, "step_not_found"),
            Self::AlreadyOpen { .. } => (StatusCode::CONFLICT, "incident_open"),
            Self::NoAdminTalosconfig(_) => (StatusCode::CONFLICT, "no_admin_talosconfig"),
            Self::NotOpen { .. } => (StatusCode::CONFLICT, "incident_closed"),
            Self::Refused(r) => refusal_status(r),
            Self::Conflict(_) => (StatusCode::CONFLICT, "step_moved"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Self::PrecheckOpen(_) => (StatusCode::CONFLICT, "precheck_open"),
            Self::NoHealth(_) => (StatusCode::SERVICE_UNAVAILABLE, "health_not_ready"),
            Self::NodeUnavailable(_) => (StatusCode::BAD_GATEWAY, "node_unavailable"),
            Self::Snapshot(_) => (StatusCode::CONFLICT, "snapshot_unusable"),
            Self::Store(StoreError::AlreadyOpen { .. }) => (StatusCode::CONFLICT, "incident_open"),
            Self::Store(StoreError::Moved { .. }) => (StatusCode::CONFLICT, "step_moved"),
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// Ids in URLs are checked before any lookup: the console makes them, 16 hex digits.
pub fn check_id(what: &'static str, id: &str) -> Result<(), RecoveryError> {
    if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(RecoveryError::BadId {
            what,
            id: id.to_string(),
        })
    }
}
