//! Rows of the recovery tables to and from the model's types, and the statements every
//! transaction of the store is built from.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use talos_dr_shared::recovery::{
    Approval, ApprovalPolicy, ChosenSnapshot, Decision, Incident, IncidentStatus, PreCheckOverride,
    PreCheckReport, RecoveryStep, StepKind, StepParams, StepProgress, StepRequest, StepState,
    StepTarget, TimelineEvent, TimelineKind,
};

use super::store::{NewEvent, NewStep, StepChange, StoreError, StoredStep, Val};

pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what: "a value to store".into(),
        message: e.to_string(),
    })
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    what: &str,
    text: Option<String>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt {
            what: what.to_string(),
            message: e.to_string(),
        })
    })
    .transpose()
}

pub fn kind_name(kind: TimelineKind) -> &'static str {
    match kind {
        TimelineKind::IncidentOpened => "incident_opened",
        TimelineKind::IncidentClosed => "incident_closed",
        TimelineKind::Health => "health",
        TimelineKind::Snapshot => "snapshot",
        TimelineKind::PreCheck => "pre_check",
        TimelineKind::Override => "override",
        TimelineKind::Request => "request",
        TimelineKind::Approval => "approval",
        TimelineKind::Denial => "denial",
        TimelineKind::BreakGlass => "break_glass",
        TimelineKind::StepStarted => "step_started",
        TimelineKind::StepFinished => "step_finished",
        TimelineKind::StepFailed => "step_failed",
        TimelineKind::KernelLog => "kernel_log",
        TimelineKind::Note => "note",
    }
}

pub(super) fn parse_kind(text: &str) -> Option<TimelineKind> {
    const ALL: [TimelineKind; 15] = [
        TimelineKind::IncidentOpened,
        TimelineKind::IncidentClosed,
        TimelineKind::Health,
        TimelineKind::Snapshot,
        TimelineKind::PreCheck,
        TimelineKind::Override,
        TimelineKind::Request,
        TimelineKind::Approval,
        TimelineKind::Denial,
        TimelineKind::BreakGlass,
        TimelineKind::StepStarted,
        TimelineKind::StepFinished,
        TimelineKind::StepFailed,
        TimelineKind::KernelLog,
        TimelineKind::Note,
    ];
    ALL.into_iter().find(|k| kind_name(*k) == text)
}

pub(super) fn status_parse(text: &str) -> IncidentStatus {
    match text {
        "resolved" => IncidentStatus::Resolved,
        "abandoned" => IncidentStatus::Abandoned,
        _ => IncidentStatus::Open,
    }
}

pub(super) async fn insert_event(
    tx: &mut Transaction<'_, Any>,
    incident_id: &str,
    event: &NewEvent,
) -> Result<(), StoreError> {
    // Numbered after the last line of any incident: writers hold the write lock here, and the
    // primary key refuses a duplicate should two ever race.
    sqlx::query(
        "INSERT INTO incident_timeline (id, incident_id, at_ms, kind, actor, step_id, text, loud) \
         SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7 FROM incident_timeline",
    )
    .bind(incident_id)
    .bind(event.at_ms)
    .bind(kind_name(event.kind))
    .bind(&event.actor)
    .bind(&event.step_id)
    .bind(&event.text)
    .bind(i64::from(event.loud))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) const INCIDENT_COLUMNS: &str = "id, cluster, status, reason, opened_by, opened_at_ms, closed_by, \
    closed_at_ms, summary, precheck_json, override_json, snapshot_json, bootstrap_node, policy_json";

pub(super) const STEP_COLUMNS: &str = "id, incident_id, position, kind, target_json, params_json, state, \
    talosctl, request_no, requested_by, requested_at_ms, request_reason, request_target, run_by, \
    started_at_ms, finished_at_ms, deadline_at_ms, progress_done, progress_total, detail, \
    claimed_by, claimed_at_ms, boot_id_before";

pub(super) fn read_incident(row: &AnyRow) -> Result<Incident, StoreError> {
    let id: String = row.try_get("id")?;
    let what = |column: &str| format!("incident {id} column {column}");
    let status: String = row.try_get("status")?;
    let policy: Option<ApprovalPolicy> =
        parse_json(&what("policy_json"), row.try_get("policy_json")?)?;
    Ok(Incident {
        cluster: row.try_get("cluster")?,
        status: status_parse(&status),
        reason: row.try_get("reason")?,
        opened_by: row.try_get("opened_by")?,
        opened_at_ms: row.try_get("opened_at_ms")?,
        closed_by: row.try_get("closed_by")?,
        closed_at_ms: row.try_get("closed_at_ms")?,
        summary: row.try_get("summary")?,
        precheck: parse_json::<PreCheckReport>(
            &what("precheck_json"),
            row.try_get("precheck_json")?,
        )?,
        precheck_override: parse_json::<PreCheckOverride>(
            &what("override_json"),
            row.try_get("override_json")?,
        )?,
        snapshot: parse_json::<ChosenSnapshot>(
            &what("snapshot_json"),
            row.try_get("snapshot_json")?,
        )?,
        bootstrap_node: row.try_get("bootstrap_node")?,
        policy: policy.unwrap_or_default(),
        id,
    })
}

pub(super) fn read_step(row: &AnyRow) -> Result<StoredStep, StoreError> {
    let id: String = row.try_get("id")?;
    let what = |column: &str| format!("step {id} column {column}");
    let kind: String = row.try_get("kind")?;
    let kind = StepKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
        what: what("kind"),
        message: format!("unknown step kind {kind:?}"),
    })?;
    let state: String = row.try_get("state")?;
    let state = StepState::parse(&state).ok_or_else(|| StoreError::Corrupt {
        what: what("state"),
        message: format!("unknown step state {state:?}"),
    })?;
    let position: i64 = row.try_get("position")?;
    let requested_by: Option<String> = row.try_get("requested_by")?;
    let request = match requested_by {
        Some(by) => Some(StepRequest {
            by,
            at_ms: row
                .try_get::<Option<i64>, _>("requested_at_ms")?
                .unwrap_or(0),
            reason: row
                .try_get::<Option<String>, _>("request_reason")?
                .unwrap_or_default(),
            target_state: row
                .try_get::<Option<String>, _>("request_target")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    let progress_done: Option<i64> = row.try_get("progress_done")?;
    let progress_total: Option<i64> = row.try_get("progress_total")?;
    let params: Option<StepParams> = parse_json(&what("params_json"), row.try_get("params_json")?)?;
    Ok(StoredStep {
        request_no: row.try_get("request_no")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_at_ms: row.try_get("claimed_at_ms")?,
        boot_id_before: row.try_get("boot_id_before")?,
        step: RecoveryStep {
            incident_id: row.try_get("incident_id")?,
            position: u32::try_from(position).unwrap_or(u32::MAX),
            kind,
            target: parse_json::<StepTarget>(&what("target_json"), row.try_get("target_json")?)?,
            params: params.unwrap_or_default(),
            state,
            talosctl: row.try_get("talosctl")?,
            request,
            approvals: Vec::new(),
            run_by: row.try_get("run_by")?,
            started_at_ms: row.try_get("started_at_ms")?,
            finished_at_ms: row.try_get("finished_at_ms")?,
            deadline_at_ms: row.try_get("deadline_at_ms")?,
            progress: progress_done.map(|done| StepProgress {
                done: u64::try_from(done).unwrap_or(0),
                total: progress_total.and_then(|t| u64::try_from(t).ok()),
            }),
            detail: row.try_get("detail")?,
            id,
        },
    })
}

pub(super) fn read_approval(row: &AnyRow) -> Result<Approval, StoreError> {
    let decision: String = row.try_get("decision")?;
    let break_glass: i64 = row.try_get("break_glass")?;
    Ok(Approval {
        by: row.try_get("approver")?,
        decision: if decision == "deny" {
            Decision::Deny
        } else {
            Decision::Approve
        },
        at_ms: row.try_get("at_ms")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        reason: row.try_get("reason")?,
        break_glass: break_glass != 0,
        target_state: row.try_get("target_state")?,
    })
}

pub(super) fn read_event(row: &AnyRow) -> Result<TimelineEvent, StoreError> {
    let id: i64 = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let loud: i64 = row.try_get("loud")?;
    Ok(TimelineEvent {
        kind: parse_kind(&kind).ok_or_else(|| StoreError::Corrupt {
            what: format!("timeline line {id}"),
            message: format!("unknown kind {kind:?}"),
        })?,
        at_ms: row.try_get("at_ms")?,
        actor: row.try_get("actor")?,
        step_id: row.try_get("step_id")?,
        text: row.try_get("text")?,
        loud: loud != 0,
        id,
    })
}

pub(super) async fn insert_steps(
    tx: &mut Transaction<'_, Any>,
    incident_id: &str,
    steps: &[NewStep],
) -> Result<(), StoreError> {
    for step in steps {
        sqlx::query(
            "INSERT INTO recovery_steps (id, incident_id, position, kind, target_json, params_json, state, talosctl) \
             VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7)",
        )
        .bind(&step.id)
        .bind(incident_id)
        .bind(i64::from(step.position))
        .bind(step.kind.as_str())
        .bind(step.target.as_ref().map(json).transpose()?)
        .bind(json(&step.params)?)
        .bind(&step.talosctl)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn update_open_incident(
    tx: &mut Transaction<'_, Any>,
    incident_id: &str,
    set: &[(&'static str, Val)],
) -> Result<bool, StoreError> {
    let assignments: Vec<String> = set
        .iter()
        .enumerate()
        .map(|(i, (column, _))| format!("{column} = ${}", i + 2))
        .collect();
    let sql = format!(
        "UPDATE incidents SET {} WHERE id = $1 AND status = 'open'",
        assignments.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(incident_id);
    for (_, value) in set {
        query = match value {
            Val::Text(t) => query.bind(t.clone()),
            Val::Int(n) => query.bind(*n),
        };
    }
    Ok(query.execute(&mut **tx).await?.rows_affected() == 1)
}

pub(super) async fn current_state(
    tx: &mut Transaction<'_, Any>,
    step_id: &str,
) -> Result<StepState, StoreError> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM recovery_steps WHERE id = $1")
            .bind(step_id)
            .fetch_optional(&mut **tx)
            .await?;
    let state = state.ok_or_else(|| StoreError::NoStep(step_id.to_string()))?;
    StepState::parse(&state).ok_or_else(|| StoreError::Corrupt {
        what: format!("step {step_id} column state"),
        message: format!("unknown step state {state:?}"),
    })
}

pub(super) async fn move_step(
    tx: &mut Transaction<'_, Any>,
    step_id: &str,
    from: &[StepState],
    to: StepState,
    change: &StepChange,
) -> Result<(), StoreError> {
    let mut assignments = vec!["state = $1".to_string()];
    let first_value = 2 + from.len() + 1;
    for (i, (column, _)) in change.set.iter().enumerate() {
        assignments.push(format!("{column} = ${}", first_value + i));
    }
    let from_list: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "UPDATE recovery_steps SET {} WHERE id = $2 AND state IN ({})",
        assignments.join(", "),
        from_list.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(to.as_str()).bind(step_id);
    for state in from {
        query = query.bind(state.as_str());
    }
    for (_, value) in &change.set {
        query = match value {
            Val::Text(t) => query.bind(t.clone()),
            Val::Int(n) => query.bind(*n),
        };
    }
    if query.execute(&mut **tx).await?.rows_affected() == 1 {
        return Ok(());
    }
    let now = current_state(tx, step_id).await?;
    Err(StoreError::Moved { now })
}
