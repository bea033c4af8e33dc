//! The recovery tables: incidents, their steps, the answers to each request and the timeline.
//!
//! Every change is one transaction that starts with the recovery write lock
//! ([`begin_write`]: the same lock on every replica) and carries the timeline event that tells the team about it. Step
//! moves are conditional updates on the state the caller saw: when another browser or console
//! process moved the step first, nothing is written and the caller learns the state it is in now.

use crate::storage::{WriteLock, begin_read, begin_write};
use sqlx::{AnyConnection, AnyPool, Row};

use super::rows::{
    INCIDENT_COLUMNS, STEP_COLUMNS, current_state, insert_event, insert_steps, json, move_step,
    read_approval, read_event, read_incident, read_step, update_open_incident,
};
use talos_dr_shared::recovery::{
    Approval, Decision, Incident, RecoveryStep, StepKind, StepParams, StepState, StepTarget,
    TimelineEvent, TimelineKind,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("recovery database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("recovery database: {what} holds unreadable data: {message}")]
    Corrupt { what: String, message: String },
    #[error("cluster {cluster:?} already has an open incident")]
    AlreadyOpen { cluster: String },
    /// The step is no longer in a state the change starts from.
    #[error("the step moved meanwhile: it is {}", .now.as_str())]
    Moved { now: StepState },
    #[error("no such step {0}")]
    NoStep(String),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// A value for one column of a step update.
#[derive(Debug, Clone)]
pub enum Val {
    Text(Option<String>),
    Int(Option<i64>),
}

/// What a step move writes besides the state.
#[derive(Debug, Clone, Default)]
pub struct StepChange {
    pub set: Vec<(&'static str, Val)>,
}

impl StepChange {
    pub fn text(mut self, column: &'static str, value: Option<impl Into<String>>) -> Self {
        self.set.push((column, Val::Text(value.map(Into::into))));
        self
    }

    pub fn int(mut self, column: &'static str, value: Option<i64>) -> Self {
        self.set.push((column, Val::Int(value)));
        self
    }
}

/// A timeline line to write with a change.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub at_ms: i64,
    pub kind: TimelineKind,
    pub actor: Option<String>,
    pub step_id: Option<String>,
    pub text: String,
    pub loud: bool,
}

impl NewEvent {
    pub fn new(at_ms: i64, kind: TimelineKind, text: impl Into<String>) -> Self {
        Self {
            at_ms,
            kind,
            actor: None,
            step_id: None,
            text: text.into(),
            loud: false,
        }
    }

    pub fn by(mut self, actor: &str) -> Self {
        self.actor = Some(actor.to_string());
        self
    }

    pub fn step(mut self, step_id: &str) -> Self {
        self.step_id = Some(step_id.to_string());
        self
    }

    pub fn loud(mut self) -> Self {
        self.loud = true;
        self
    }
}

/// A step row with what only the server needs: who holds it and the boot id seen before a call.
#[derive(Debug, Clone)]
pub struct StoredStep {
    pub step: RecoveryStep,
    pub request_no: i64,
    pub claimed_by: Option<String>,
    pub claimed_at_ms: Option<i64>,
    pub boot_id_before: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RecoveryStore {
    pool: AnyPool,
}

/// A step to insert, at its place in the plan.
#[derive(Debug, Clone)]
pub struct NewStep {
    pub id: String,
    pub position: u32,
    pub kind: StepKind,
    pub target: Option<StepTarget>,
    pub params: StepParams,
    pub talosctl: String,
}

impl RecoveryStore {
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Writes a new open incident with its first steps; refused when the cluster has one open.
    pub async fn insert_incident(
        &self,
        incident: &Incident,
        steps: &[NewStep],
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.pool, WriteLock::Recovery).await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO incidents ({INCIDENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&incident.id)
        .bind(&incident.cluster)
        .bind(incident.status.as_str())
        .bind(&incident.reason)
        .bind(&incident.opened_by)
        .bind(incident.opened_at_ms)
        .bind(&incident.closed_by)
        .bind(incident.closed_at_ms)
        .bind(&incident.summary)
        .bind(incident.precheck.as_ref().map(json).transpose()?)
        .bind(incident.precheck_override.as_ref().map(json).transpose()?)
        .bind(incident.snapshot.as_ref().map(json).transpose()?)
        .bind(&incident.bootstrap_node)
        .bind(json(&incident.policy)?)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation())
            {
                return Err(StoreError::AlreadyOpen {
                    cluster: incident.cluster.clone(),
                });
            }
            return Err(e.into());
        }
        insert_steps(&mut tx, &incident.id, steps).await?;
        insert_event(&mut tx, &incident.id, event).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn find_open(&self, cluster: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM incidents WHERE cluster = $1 AND status = 'open'")
                .bind(cluster)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn open_incident_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM incidents WHERE status = 'open' ORDER BY opened_at_ms",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Newest first.
    pub async fn incidents_of(&self, cluster: &str) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE cluster = $1 ORDER BY opened_at_ms DESC, id DESC"
        ))
        .bind(cluster)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_incident).collect()
    }

    pub async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        incident_in(&mut conn, id).await
    }

    /// The plan in order, each step with the answers to its current request.
    pub async fn steps(&self, incident_id: &str) -> Result<Vec<StoredStep>, StoreError> {
        let mut tx = begin_read(&self.pool).await?;
        let steps = steps_in(&mut tx, incident_id).await?;
        tx.commit().await?;
        Ok(steps)
    }

    pub async fn timeline(&self, incident_id: &str) -> Result<Vec<TimelineEvent>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        timeline_in(&mut conn, incident_id).await
    }

    /// The incident, its steps and its timeline as of one moment (one read transaction), so a
    /// view never shows a step's new state beside the incident's old one.
    pub async fn snapshot(
        &self,
        id: &str,
    ) -> Result<Option<(Incident, Vec<StoredStep>, Vec<TimelineEvent>)>, StoreError> {
        let mut tx = begin_read(&self.pool).await?;
        let Some(incident) = incident_in(&mut tx, id).await? else {
            return Ok(None);
        };
        let steps = steps_in(&mut tx, id).await?;
        let timeline = timeline_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Some((incident, steps, timeline)))
    }

    /// Every request and its answers of a step, oldest first: the report shows earlier rounds.
    pub async fn all_answers(&self, step_id: &str) -> Result<Vec<(i64, Approval)>, StoreError> {
        let rows = sqlx::query(
            "SELECT request_no, approver, decision, at_ms, expires_at_ms, reason, break_glass, \
             target_state FROM step_approvals WHERE step_id = $1 ORDER BY request_no, at_ms",
        )
        .bind(step_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("request_no")?, read_approval(r)?)))
            .collect()
    }

    /// A timeline line on its own (notes, kernel log, health changes).
    pub async fn append(&self, incident_id: &str, event: &NewEvent) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.pool, WriteLock::Recovery).await?;
        insert_event(&mut tx, incident_id, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Updates incident columns (JSON values already encoded) while it is open, with its event.
    /// Returns false when the incident is no longer open.
    pub async fn update_incident(
        &self,
        incident_id: &str,
        set: &[(&'static str, Val)],
        event: &NewEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.pool, WriteLock::Recovery).await?;
        let changed = update_open_incident(&mut tx, incident_id, set).await?;
        if changed {
            insert_event(&mut tx, incident_id, event).await?;
            tx.commit().await?;
        }
        Ok(changed)
    }

    /// Fixes the snapshot and writes the plan's steps after the first two, replacing a plan
    /// nobody has acted on yet. The choose-snapshot step is marked done in the same transaction.
    #[expect(clippy::too_many_arguments)]
    pub async fn write_plan(
        &self,
        incident_id: &str,
        set: &[(&'static str, Val)],
        choose_step: &str,
        chosen_by: &str,
        at_ms: i64,
        steps: &[NewStep],
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.pool, WriteLock::Recovery).await?;
        if !update_open_incident(&mut tx, incident_id, set).await? {
            return Err(StoreError::Moved {
                now: StepState::Done,
            });
        }
        let acted: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_steps WHERE incident_id = $1 AND position >= 2 AND state <> 'planned'",
        )
        .bind(incident_id)
        .fetch_one(&mut *tx)
        .await?;
        if acted > 0 {
            return Err(StoreError::Moved {
                now: StepState::Requested,
            });
        }
        sqlx::query(
            "DELETE FROM step_approvals WHERE step_id IN \
             (SELECT id FROM recovery_steps WHERE incident_id = $1 AND position >= 2)",
        )
        .bind(incident_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_steps WHERE incident_id = $1 AND position >= 2")
            .bind(incident_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE recovery_steps SET state = 'done', run_by = $1, started_at_ms = $2, finished_at_ms = $2 \
             WHERE id = $3",
        )
        .bind(chosen_by)
        .bind(at_ms)
        .bind(choose_step)
        .execute(&mut *tx)
        .await?;
        insert_steps(&mut tx, incident_id, steps).await?;
        insert_event(&mut tx, incident_id, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a step from one of `from` to `to`, with `change` and the timeline `events`, in one
    /// transaction. `Moved` when the step was in none of `from` (someone else moved it first).
    pub async fn transition(
        &self,
        incident_id: &str,
        step_id: &str,
        from: &[StepState],
        to: StepState,
        change: StepChange,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        self.transition_with_incident(incident_id, &[], step_id, from, to, change, events)
            .await
    }

    /// As [`Self::transition`], also writing incident columns (the incident must be open).
    #[expect(clippy::too_many_arguments)]
    pub async fn transition_with_incident(
        &self,
        incident_id: &str,
        incident_set: &[(&'static str, Val)],
        step_id: &str,
        from: &[StepState],
        to: StepState,
        change: StepChange,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let step_move = (step_id, from, to, change);
        self.write_move(incident_id, incident_set, step_move, events, None)
            .await
    }

    /// As [`Self::transition`], with the console's audit entry for the move in the same
    /// transaction: a crash between the two can neither keep the move without its entry nor
    /// write the entry for a move that did not happen.
    #[expect(clippy::too_many_arguments)]
    pub async fn transition_audited(
        &self,
        incident_id: &str,
        step_id: &str,
        from: &[StepState],
        to: StepState,
        change: StepChange,
        events: &[NewEvent],
        audit: crate::audit::NewAuditEntry,
    ) -> Result<(), StoreError> {
        let step_move = (step_id, from, to, change);
        self.write_move(incident_id, &[], step_move, events, Some(audit))
            .await
    }

    async fn write_move(
        &self,
        incident_id: &str,
        incident_set: &[(&'static str, Val)],
        (step_id, from, to, change): (&str, &[StepState], StepState, StepChange),
        events: &[NewEvent],
        audit: Option<crate::audit::NewAuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.pool, WriteLock::Recovery).await?;
        move_step(&mut tx, step_id, from, to, &change).await?;
        if !incident_set.is_empty()
            && !update_open_incident(&mut tx, incident_id, incident_set).await?
        {
            return Err(StoreError::Moved { now: to });
        }
        for event in events {
            insert_event(&mut tx, incident_id, event).await?;
        }
        if let Some(entry) = audit {
            crate::audit::append_within(&mut tx, entry).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves the claim of a step in flight from a console process that stopped to `to`; false
    /// when another process took it over first or the step moved on.
    pub async fn take_over(
        &self,
        step_id: &str,
        state: StepState,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE recovery_steps SET claimed_by = $1 \
             WHERE id = $2 AND state = $3 AND COALESCE(claimed_by, '') = $4",
        )
        .bind(to)
        .bind(step_id)
        .bind(state.as_str())
        .bind(from)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Writes columns of a step that is still in `state` (progress, detail, deadline), without
    /// a timeline line. False when the step has moved on.
    pub async fn touch(
        &self,
        step_id: &str,
        state: StepState,
        change: StepChange,
    ) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.pool, WriteLock::Recovery).await?;
        let result = move_step(&mut tx, step_id, &[state], state, &change).await;
        match result {
            Ok(()) => {
                tx.commit().await?;
                Ok(true)
            }
            Err(StoreError::Moved { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records one answer to the step's current request; the step moves on to `then` (approved
    /// once enough approvals stand, back to planned after a denial) in the same transaction. Refused when the request changed meanwhile.
    pub async fn answer(
        &self,
        incident_id: &str,
        step_id: &str,
        request_no: i64,
        approval: &Approval,
        then: Option<StepState>,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.pool, WriteLock::Recovery).await?;
        let inserted = sqlx::query(
            "INSERT INTO step_approvals (step_id, request_no, approver, decision, at_ms, expires_at_ms, reason, break_glass, target_state) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM recovery_steps \
             WHERE id = $1 AND request_no = $2 AND state = 'requested'",
        )
        .bind(step_id)
        .bind(request_no)
        .bind(&approval.by)
        .bind(match approval.decision {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        })
        .bind(approval.at_ms)
        .bind(approval.expires_at_ms)
        .bind(&approval.reason)
        .bind(i64::from(approval.break_glass))
        .bind(&approval.target_state)
        .execute(&mut *tx)
        .await;
        let inserted = match inserted {
            Ok(done) => done.rows_affected(),
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                0
            }
            Err(e) => return Err(e.into()),
        };
        if inserted == 0 {
            let now = current_state(&mut tx, step_id).await?;
            return Err(StoreError::Moved { now });
        }
        if let Some(next) = then {
            move_step(
                &mut tx,
                step_id,
                &[StepState::Requested],
                next,
                &StepChange::default(),
            )
            .await?;
        }
        for event in events {
            insert_event(&mut tx, incident_id, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn incident_in(conn: &mut AnyConnection, id: &str) -> Result<Option<Incident>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(read_incident).transpose()
}

async fn steps_in(
    conn: &mut AnyConnection,
    incident_id: &str,
) -> Result<Vec<StoredStep>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {STEP_COLUMNS} FROM recovery_steps WHERE incident_id = $1 ORDER BY position"
    ))
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut steps: Vec<StoredStep> = rows.iter().map(read_step).collect::<Result<_, _>>()?;
    let answers = sqlx::query(
        "SELECT a.step_id, a.request_no, a.approver, a.decision, a.at_ms, a.expires_at_ms, \
         a.reason, a.break_glass, a.target_state FROM step_approvals a \
         JOIN recovery_steps s ON s.id = a.step_id \
         WHERE s.incident_id = $1 AND a.request_no = s.request_no ORDER BY a.at_ms, a.approver",
    )
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    for row in &answers {
        let step_id: String = row.try_get("step_id")?;
        let approval = read_approval(row)?;
        if let Some(s) = steps.iter_mut().find(|s| s.step.id == step_id) {
            s.step.approvals.push(approval);
        }
    }
    Ok(steps)
}

async fn timeline_in(
    conn: &mut AnyConnection,
    incident_id: &str,
) -> Result<Vec<TimelineEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at_ms, kind, actor, step_id, text, loud FROM incident_timeline \
         WHERE incident_id = $1 ORDER BY id",
    )
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(read_event).collect()
}
