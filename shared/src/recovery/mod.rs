//! The staged etcd recovery as the browser and server see it: an incident, its plan of steps,
//! the requests and approvals that guard each destructive step, and the incident's timeline.
//!
//! A step moves `planned → requested → approved → claimed → sent → done | failed`. Steps that
//! change nothing on a node (checks, waits, the upload) skip the request and approval. A step the
//! console cannot judge after a restart (claimed, maybe sent) becomes `uncertain` and waits for a
//! person: a destructive call is never repeated on its own.

mod plan;
mod rules;
#[cfg(test)]
mod tests;
mod volume;

use serde::{Deserialize, Serialize};

use crate::health::{MachineType, ServiceState, VerdictLevel};
use crate::snapshots::{SnapshotEntryKind, SnapshotFigures};

pub use plan::{PlanNode, PlannedStep, build_plan, talosctl_for};
pub use rules::{
    ApprovalStanding, Refusal, approval_standing, check_approval, check_request, check_run,
    describe, phase_open, precheck_needs_override,
};
pub use volume::{EPHEMERAL_LABEL, ETCD_LABEL, EtcdDataVolume};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    /// The post-checks passed, or someone closed it with a summary.
    Resolved,
    /// Closed without finishing the plan (with a reason).
    Abandoned,
}

impl IncidentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
            Self::Abandoned => "abandoned",
        }
    }
}

/// How many approvals a destructive step needs, for how long one stands, and whether an admin
/// may approve their own request when nobody else can be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    pub approvals_required: u32,
    pub approval_ttl_ms: i64,
    pub break_glass_allowed: bool,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            approvals_required: 1,
            approval_ttl_ms: 15 * 60 * 1000,
            break_glass_allowed: true,
        }
    }
}

/// The snapshot the cluster is restored from, fixed when chosen so the bootstrap step's
/// approval names exactly these bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenSnapshot {
    pub snapshot_id: String,
    pub sha256: String,
    pub kind: SnapshotEntryKind,
    pub figures: Option<SnapshotFigures>,
    pub size_bytes: u64,
    pub taken_at_ms: i64,
    /// Raw copies of `member/snap/db` carry no hash trailer: bootstrap must skip the check.
    pub skip_hash_check: bool,
    pub chosen_by: String,
    pub chosen_at_ms: i64,
}

/// What the pre-checks found, from one fresh look at every control-plane node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreCheckReport {
    pub at_ms: i64,
    pub verdict: VerdictLevel,
    /// The verdict's summary and next move, as the health page words them.
    pub summary: String,
    pub next_move: String,
    pub member_lists_agree: bool,
    pub nodes: Vec<PreCheckNode>,
    /// Why a full recovery is or is not the right move, most important first.
    pub findings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreCheckNode {
    pub address: String,
    pub hostname: Option<String>,
    pub reachable: bool,
    pub machine_type: Option<MachineType>,
    pub etcd_state: Option<ServiceState>,
    /// `healthy`, `unhealthy` or `unknown`.
    pub etcd_health: String,
    pub member_id: Option<String>,
    /// The member ids this node's etcd lists, when it answered.
    pub members_seen: Option<Vec<String>>,
    /// Raft index of the local member: the node with the highest holds the newest data.
    pub raft_index: Option<u64>,
}

/// Someone chose to go on although the pre-checks said quorum can still be restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreCheckOverride {
    pub by: String,
    pub at_ms: i64,
    pub reason: String,
}

/// One recovery, from the moment an operator opens it to its summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub cluster: String,
    pub status: IncidentStatus,
    /// What the operator saw when opening it.
    pub reason: String,
    pub opened_by: String,
    pub opened_at_ms: i64,
    pub closed_by: Option<String>,
    pub closed_at_ms: Option<i64>,
    pub summary: Option<String>,
    pub precheck: Option<PreCheckReport>,
    pub precheck_override: Option<PreCheckOverride>,
    pub snapshot: Option<ChosenSnapshot>,
    /// The node etcd is bootstrapped on (an address), chosen with the snapshot.
    pub bootstrap_node: Option<String>,
    pub policy: ApprovalPolicy,
}

/// What a step does. Phases run in this order; steps of one phase may be requested together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Member lists and etcd service state on every node: is a full recovery the right move?
    PreCheck,
    /// A person picks the snapshot (or takes a fresh one / a raw copy first).
    ChooseSnapshot,
    /// `ApplyConfiguration` STAGED with `machine.type: controlplane` on an `init` node.
    StageControlplaneConfig,
    /// `Reboot` of a node whose config was staged, so the new machine type takes effect.
    RebootNode,
    /// `Reset` graceful=false, reboot, wipe EPHEMERAL, or ETCD where etcd's data has a partition
    /// of its own: removes etcd's data dir.
    ResetNode,
    /// A replaced node is re-created from its machine-config backup, by a person, outside.
    RecreateNode,
    /// Every control-plane node's etcd reaches `Preparing`.
    WaitPreparing,
    /// `EtcdRecover`: the snapshot goes to the bootstrap node.
    UploadSnapshot,
    /// `Bootstrap` with recover_etcd (and skip-hash-check for raw copies).
    Bootstrap,
    /// etcd Running and healthy on the bootstrap node, followed through events and kernel log.
    WaitHealthy,
    /// The other nodes joined, member lists agree, revision and key counts match the snapshot.
    PostCheck,
}

impl StepKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PreCheck => "pre_check",
            Self::ChooseSnapshot => "choose_snapshot",
            Self::StageControlplaneConfig => "stage_controlplane_config",
            Self::RebootNode => "reboot_node",
            Self::ResetNode => "reset_node",
            Self::RecreateNode => "recreate_node",
            Self::WaitPreparing => "wait_preparing",
            Self::UploadSnapshot => "upload_snapshot",
            Self::Bootstrap => "bootstrap",
            Self::WaitHealthy => "wait_healthy",
            Self::PostCheck => "post_check",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub const ALL: [StepKind; 11] = [
        Self::PreCheck,
        Self::ChooseSnapshot,
        Self::StageControlplaneConfig,
        Self::RebootNode,
        Self::ResetNode,
        Self::RecreateNode,
        Self::WaitPreparing,
        Self::UploadSnapshot,
        Self::Bootstrap,
        Self::WaitHealthy,
        Self::PostCheck,
    ];

    /// Changes a node in a way that cannot be undone or safely repeated: needs a reason, an
    /// approval by someone else and the node's hostname typed by the person who runs it.
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Self::StageControlplaneConfig | Self::RebootNode | Self::ResetNode | Self::Bootstrap
        )
    }

    /// Done by a person's decision in the console, not by a Talos call.
    pub fn is_manual(&self) -> bool {
        matches!(self, Self::ChooseSnapshot | Self::RecreateNode)
    }

    /// Started by the console itself as soon as every earlier phase is done.
    pub fn runs_automatically(&self) -> bool {
        !self.is_destructive() && !self.is_manual()
    }

    /// The step's place in the plan: lower phases finish before higher ones start.
    pub fn phase(&self) -> u32 {
        match self {
            Self::PreCheck => 0,
            Self::ChooseSnapshot => 1,
            Self::StageControlplaneConfig => 2,
            Self::RebootNode => 3,
            Self::ResetNode | Self::RecreateNode => 4,
            Self::WaitPreparing => 5,
            Self::UploadSnapshot => 6,
            Self::Bootstrap => 7,
            Self::WaitHealthy => 8,
            Self::PostCheck => 9,
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Self::PreCheck => "Make sure etcd cannot be recovered otherwise",
            Self::ChooseSnapshot => "Choose the snapshot",
            Self::StageControlplaneConfig => "Stage machine.type: controlplane",
            Self::RebootNode => "Reboot to apply the staged config",
            Self::ResetNode => "Reset: wipe etcd's data",
            Self::RecreateNode => "Re-create the replaced node from its config backup",
            Self::WaitPreparing => "Wait until etcd is Preparing everywhere",
            Self::UploadSnapshot => "Upload the snapshot",
            Self::Bootstrap => "Bootstrap etcd from the snapshot",
            Self::WaitHealthy => "Wait until etcd is Running and healthy",
            Self::PostCheck => "Post-checks",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Planned,
    /// Asked for, with a reason; waits for approvals.
    Requested,
    /// Enough standing approvals; waits for someone to run it with the typed hostname.
    Approved,
    /// A console process holds the step and is about to call Talos (or is calling it).
    Claimed,
    /// Talos accepted the call; the console watches for the effect.
    Sent,
    Done,
    Failed,
    /// After a restart the console could not tell whether the call reached the node: a person
    /// checks the node and marks it done, or asks again.
    Uncertain,
}

impl StepState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Requested => "requested",
            Self::Approved => "approved",
            Self::Claimed => "claimed",
            Self::Sent => "sent",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Uncertain => "uncertain",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Planned,
            Self::Requested,
            Self::Approved,
            Self::Claimed,
            Self::Sent,
            Self::Done,
            Self::Failed,
            Self::Uncertain,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// A console process is working on the step right now (or was, when it stopped).
    pub fn in_flight(&self) -> bool {
        matches!(self, Self::Claimed | Self::Sent)
    }
}

/// The node a step acts on, named every way an SRE might check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTarget {
    pub hostname: String,
    /// The address the Talos API targets (talosctl's `-n`).
    pub address: String,
    pub machine_type: MachineType,
    /// 16 hex digits, when the node is (or was) an etcd member.
    pub member_id: Option<String>,
}

/// What a step sends, fixed when the plan is made so the approval covers exactly this.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepParams {
    /// `Reset` partitions to wipe; never empty for a reset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wipe_labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_sha256: Option<String>,
    #[serde(default)]
    pub skip_hash_check: bool,
    /// For a reset: where the node said etcd keeps its data when the plan was made, which is
    /// why `wipe_labels` is what it is (see [`EtcdDataVolume::wipe_reason`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_data_volume: Option<EtcdDataVolume>,
}

/// The state of a step's target the approvers saw: an approval given for one state is void once
/// the target is in another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    pub reachable: bool,
    pub machine_type: Option<MachineType>,
    pub etcd_state: Option<ServiceState>,
    pub member_id: Option<String>,
}

impl TargetState {
    /// A stable one-line form, stored with each request and approval and compared at run time.
    pub fn fingerprint(&self) -> String {
        format!(
            "reachable={} machine_type={} etcd={} member={}",
            self.reachable,
            self.machine_type.map(|t| t.as_str()).unwrap_or("?"),
            self.etcd_state.map(|s| s.as_str()).unwrap_or("?"),
            self.member_id.as_deref().unwrap_or("-"),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRequest {
    pub by: String,
    pub at_ms: i64,
    pub reason: String,
    /// The target's state when requested (see [`TargetState::fingerprint`]).
    pub target_state: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
}

/// One person's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub decision: Decision,
    pub at_ms: i64,
    pub expires_at_ms: i64,
    pub reason: Option<String>,
    /// An admin approved their own request because nobody else could be reached.
    pub break_glass: bool,
    /// The target's state the approver saw.
    pub target_state: String,
}

/// Bytes moved so far, for steps that transfer something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepProgress {
    pub done: u64,
    pub total: Option<u64>,
}

/// One step of the plan, with everything that happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryStep {
    pub id: String,
    pub incident_id: String,
    /// Order within the plan, from 0.
    pub position: u32,
    pub kind: StepKind,
    pub target: Option<StepTarget>,
    pub params: StepParams,
    pub state: StepState,
    /// The equivalent talosctl command, for the SRE who wants to check or do it by hand.
    pub talosctl: String,
    pub request: Option<StepRequest>,
    /// Answers to the current request, oldest first (a new request starts a new list).
    pub approvals: Vec<Approval>,
    pub run_by: Option<String>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// While waiting: when the step gives up. Shown so nobody wonders whether it hangs.
    pub deadline_at_ms: Option<i64>,
    pub progress: Option<StepProgress>,
    /// What is happening now, or why it failed and what to check.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    IncidentOpened,
    IncidentClosed,
    Health,
    Snapshot,
    PreCheck,
    Override,
    Request,
    Approval,
    Denial,
    BreakGlass,
    StepStarted,
    StepFinished,
    StepFailed,
    KernelLog,
    Note,
}

/// One line of the incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub id: i64,
    pub at_ms: i64,
    pub kind: TimelineKind,
    /// Who did it; `None` for what the console observed itself.
    pub actor: Option<String>,
    pub step_id: Option<String>,
    pub text: String,
    /// Shown prominently (break-glass approvals, overrides, failures).
    pub loud: bool,
}

/// `GET /api/incidents/{id}` and every message of its event stream: the whole incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentView {
    pub incident: Incident,
    pub steps: Vec<RecoveryStep>,
    pub timeline: Vec<TimelineEvent>,
    /// Who has the incident open right now.
    pub watchers: Vec<String>,
}

/// A list row: `GET /api/clusters/{cluster}/incidents` and `GET /api/incidents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentSummary {
    pub id: String,
    pub cluster: String,
    pub status: IncidentStatus,
    pub reason: String,
    pub opened_by: String,
    pub opened_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    pub steps_done: u32,
    pub steps_total: u32,
    /// The first step not done, e.g. "Reset: wipe etcd's data on cp-2 (requested)".
    pub current: Option<String>,
}

/// A stored snapshot as a candidate for the bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotCandidate {
    pub snapshot_id: String,
    pub kind: SnapshotEntryKind,
    pub taken_at_ms: i64,
    pub node: Option<String>,
    pub figures: Option<SnapshotFigures>,
    pub size_bytes: u64,
    pub sha256: String,
    /// False for files that will not restore; `why_not` says why (the inspector's reason).
    pub offered: bool,
    pub why_not: Option<String>,
    pub skip_hash_check: bool,
    /// The newest verified entry: what the console proposes.
    pub proposed: bool,
}

// Requests from the browser.

/// `POST /api/clusters/{cluster}/incidents`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenIncidentRequest {
    pub reason: String,
}

/// `POST /api/incidents/{id}/precheck/override`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverrideRequest {
    pub reason: String,
}

/// `POST /api/incidents/{id}/snapshot`: fixes the snapshot and makes the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChooseSnapshotRequest {
    pub snapshot_id: String,
    /// The node to bootstrap on; the console picks one when absent.
    pub bootstrap_node: Option<String>,
}

/// `POST /api/incidents/{id}/steps/{step}/request`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRequestBody {
    pub reason: String,
}

/// `POST /api/incidents/{id}/steps/{step}/approvals`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalBody {
    pub decision: Decision,
    pub reason: Option<String>,
    #[serde(default)]
    pub break_glass: bool,
}

/// `POST /api/incidents/{id}/steps/{step}/run`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStepBody {
    /// Must equal the target's hostname exactly.
    pub confirm_hostname: String,
}

/// `POST /api/incidents/{id}/steps/{step}/resolve`: a person's judgement on an uncertain step
/// (or a manual step like re-creating a node).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveStepBody {
    /// `done`: the person checked the node and the step took effect; `retry`: it did not, the
    /// step goes back to `planned` and needs a new request and approval.
    pub outcome: ResolveOutcome,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolveOutcome {
    Done,
    Retry,
}

/// `POST /api/incidents/{id}/notes`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoteBody {
    pub text: String,
}

/// `POST /api/incidents/{id}/close`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloseIncidentBody {
    pub summary: String,
    /// Closing before the plan is finished.
    #[serde(default)]
    pub abandon: bool,
}
