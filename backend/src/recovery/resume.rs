//! Open incidents go on where they were: when the console starts, and on every heartbeat, for
//! steps whose console stopped.
//!
//! A step in flight (`claimed` or `sent`) names the console process that claimed it. While that
//! process writes its heartbeat the step is its own, so a replica that starts next to it never
//! mistakes a running step for one cut short. When the process is gone (a restart of the only
//! console, or a replica that died), a live one takes the claim over with a conditional update,
//! so exactly one judges the step from the node; a destructive call is never sent again from
//! here. The timeline feeders of an incident run on one replica at a time, under a lease.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use talos_dr_shared::recovery::{IncidentStatus, TimelineKind};

use super::RecoveryError;
use super::evidence::judge;
use super::executor::{advance, describe_plain, settle};
use super::feeders;
use super::store::{NewEvent, StepChange};
use crate::state::AppState;
use crate::storage::replicas::{HEARTBEAT, REPLICA_TIMEOUT};

/// Liveness is compared across processes, so it uses the wall clock, never the recovery clock
/// (which tests shift to expire approvals).
fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Writes the heartbeat and looks after the open incidents, for as long as the console serves.
/// On SQLite the console is alone with its database: once, at start, is enough.
pub async fn look_after(state: AppState) {
    loop {
        let service = state.recovery();
        if let Err(e) = service.replicas.beat(wall_ms()).await {
            tracing::warn!(error = %e, "cannot write this console's heartbeat");
        }
        match service.store.open_incident_ids().await {
            Ok(ids) => {
                for id in ids {
                    if let Err(e) = resume_one(&state, &id).await {
                        tracing::error!(incident = %id, error = %e, "cannot resume the incident");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the open incidents; recoveries are not resumed")
            }
        }
        if !state.recovery().replicas.shared() {
            return;
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// The lease that lets one replica feed an incident's timeline; it outlives a few missed
/// heartbeats so a busy replica keeps it.
fn feeder_lease(incident_id: &str) -> String {
    format!("incident-feeders:{incident_id}")
}

const FEEDER_LEASE: Duration = REPLICA_TIMEOUT;

async fn resume_one(state: &AppState, id: &str) -> Result<(), RecoveryError> {
    let service = state.recovery();
    let Some(incident) = service.store.incident(id).await? else {
        return Ok(());
    };
    if incident.status != IncidentStatus::Open {
        service.stop_feeders(id);
        return Ok(());
    }
    let now = wall_ms();
    match service
        .replicas
        .lease(&feeder_lease(id), FEEDER_LEASE, now)
        .await
    {
        Ok(true) => feeders::start(state, &incident),
        Ok(false) => service.stop_feeders(id),
        Err(e) => tracing::warn!(incident = id, error = %e, "cannot renew the timeline lease"),
    }
    for stored in service.stored_steps(id).await? {
        let step = &stored.step;
        if !step.state.in_flight() {
            continue;
        }
        let claimer = stored.claimed_by.clone().unwrap_or_default();
        let alive = service.replicas.is_alive(&claimer, now).await;
        if alive.map_err(super::store::StoreError::from)? {
            continue;
        }
        if !service.take_step(&step.id) {
            continue;
        }
        if !service
            .store
            .take_over(&step.id, step.state, &claimer, service.instance())
            .await?
        {
            // Another replica took it first, or it moved on.
            service.release_step(&step.id);
            continue;
        }
        tracing::info!(incident = id, step = %step.id, previous = %claimer, "taking over a step whose console stopped");
        if step.kind.runs_automatically() {
            // Checks, waits and the upload change no data: they simply start again.
            let event = NewEvent::new(
                service.now_ms(),
                TimelineKind::StepStarted,
                format!(
                    "{} starts again: the console running it stopped",
                    describe_plain(step)
                ),
            )
            .step(&step.id);
            settle(
                service,
                id,
                step,
                &[step.state],
                talos_dr_shared::recovery::StepState::Planned,
                StepChange::default(),
                event,
            )
            .await;
            service.release_step(&step.id);
            continue;
        }
        let state = state.clone();
        let incident = incident.clone();
        tokio::spawn(async move {
            judge(&state, &incident, &stored).await;
            state.recovery().release_step(&stored.step.id);
            advance(&state, &incident.id);
        });
    }
    // Steps waiting to start whose console stopped between two steps start here.
    advance(state, id);
    Ok(())
}
