//! Destructive steps: claimed by a person's run (after approval and the typed hostname), the one
//! Talos call sent, then watched for its effect. A call that got no answer leaves the step
//! uncertain; nothing is ever sent again from here.

use std::time::Duration;

use talos_dr_shared::recovery::{
    Incident, RecoveryStep, StepKind, StepState, TimelineKind, describe,
};

use super::executor::{
    CALL_TIMEOUT, advance, describe_plain, failed_event, finished_event, ms, recovery_talos,
    settle_outcome,
};
use super::store::{NewEvent, StepChange, StoredStep};
use super::{FailPoint, RecoveryError};
use crate::state::AppState;
use crate::talos::{ApplyMode, BootstrapOptions, ResetOptions, TalosError};

/// Claims an approved destructive step for `run_by` and starts it in the background. The node's
/// boot id is read first for resets and reboots: without it a restart could not tell whether
/// the call took effect, so a node that cannot say refuses the run.
pub async fn claim_destructive(
    state: &AppState,
    incident: &Incident,
    stored: &StoredStep,
    run_by: &str,
) -> Result<(), RecoveryError> {
    let service = state.recovery();
    let step = &stored.step;
    let cluster = state
        .cluster(&incident.cluster)
        .map_err(|e| RecoveryError::Invalid(e.to_string()))?;
    let talos = recovery_talos(cluster)?;
    let target = step.target.as_ref().ok_or(RecoveryError::Refused(
        talos_dr_shared::recovery::Refusal::NoTarget,
    ))?;
    let boot_id = if matches!(step.kind, StepKind::ResetNode | StepKind::RebootNode) {
        let read =
            tokio::time::timeout(Duration::from_secs(10), talos.boot_id(&target.address)).await;
        match read {
            Ok(Ok(id)) => Some(id.trim().to_string()),
            Ok(Err(e)) => {
                return Err(RecoveryError::NodeUnavailable(format!(
                    "cannot read the boot id of {} ({}): {e}; the console needs it to tell later whether the {} took effect",
                    target.hostname,
                    target.address,
                    step.kind.title()
                )));
            }
            Err(_) => {
                return Err(RecoveryError::NodeUnavailable(format!(
                    "{} ({}) did not answer when asked for its boot id; try again when it answers",
                    target.hostname, target.address
                )));
            }
        }
    } else {
        None
    };
    if !service.take_step(&step.id) {
        return Err(RecoveryError::Conflict(format!(
            "{} is already being run",
            describe(step)
        )));
    }
    let now = service.now_ms();
    let event = NewEvent::new(
        now,
        TimelineKind::StepStarted,
        format!(
            "{run_by} runs {} (hostname typed and confirmed); equivalent: {}",
            describe_plain(step),
            step.talosctl
        ),
    )
    .by(run_by)
    .step(&step.id);
    let claimed = service
        .store
        .transition(
            &incident.id,
            &step.id,
            &[StepState::Approved],
            StepState::Claimed,
            StepChange::default()
                .text("run_by", Some(run_by.to_string()))
                .int("started_at_ms", Some(now))
                .text("claimed_by", Some(service.instance().to_string()))
                .int("claimed_at_ms", Some(now))
                .text("boot_id_before", boot_id.clone())
                .text(
                    "detail",
                    Some(format!(
                        "sending {} to {}",
                        call_name(step.kind),
                        target.address
                    )),
                ),
            &[event],
        )
        .await;
    if let Err(e) = claimed {
        service.release_step(&step.id);
        return Err(e.into());
    }
    service.notify(&incident.id);
    let state = state.clone();
    let incident = incident.clone();
    let mut stored = stored.clone();
    stored.step.state = StepState::Claimed;
    stored.boot_id_before = boot_id;
    stored.claimed_at_ms = Some(now);
    stored.claimed_by = Some(service.instance().to_string());
    tokio::spawn(async move {
        let id = stored.step.id.clone();
        carry_out(&state, &incident, &stored).await;
        state.recovery().release_step(&id);
        advance(&state, &incident.id);
    });
    Ok(())
}

pub fn call_name(kind: StepKind) -> &'static str {
    match kind {
        StepKind::ResetNode => "Reset",
        StepKind::RebootNode => "Reboot",
        StepKind::Bootstrap => "Bootstrap",
        StepKind::StageControlplaneConfig => "ApplyConfiguration (staged)",
        StepKind::UploadSnapshot => "EtcdRecover",
        _ => "no call",
    }
}

/// Sends the one call of a claimed destructive step, then watches for its effect.
async fn carry_out(state: &AppState, incident: &Incident, stored: &StoredStep) {
    let service = state.recovery();
    let step = &stored.step;
    let failpoints = &service.settings().failpoints;
    failpoints.reach(step.kind, FailPoint::AfterClaim).await;
    let sent = send(state, incident, step).await;
    match sent {
        Err(e) => {
            let (to, detail) = if e.node_answered() {
                (
                    StepState::Failed,
                    format!(
                        "{} refused: {e}. Nothing was changed by this call; fix the cause and request the step again",
                        call_name(step.kind)
                    ),
                )
            } else {
                (
                    StepState::Uncertain,
                    format!(
                        "{} got no answer ({e}): it may or may not have reached the node. Check the node ({}) before marking it done or asking again",
                        call_name(step.kind),
                        step.talosctl
                    ),
                )
            };
            let event = failed_event(service, step, &detail);
            let change = StepChange::default()
                .int("finished_at_ms", Some(service.now_ms()))
                .text("detail", Some(detail.clone()));
            settle_outcome(
                state,
                incident,
                step,
                &[StepState::Claimed],
                to,
                change,
                event,
                &detail,
            )
            .await;
        }
        Ok(()) => {
            failpoints.reach(step.kind, FailPoint::AfterCall).await;
            let deadline = service
                .now_ms()
                .saturating_add(ms(service.settings().wait_deadline));
            let change = StepChange::default()
                .int("deadline_at_ms", Some(deadline))
                .text(
                    "detail",
                    Some(format!(
                        "{} accepted; watching for the effect",
                        call_name(step.kind)
                    )),
                );
            let moved = service
                .store
                .transition(
                    &incident.id,
                    &step.id,
                    &[StepState::Claimed],
                    StepState::Sent,
                    change,
                    &[],
                )
                .await;
            if let Err(e) = moved {
                tracing::error!(step = %step.id, error = %e, "cannot record that the call was sent");
                return;
            }
            service.notify(&incident.id);
            failpoints.reach(step.kind, FailPoint::AfterSent).await;
            watch_and_settle(state, incident, stored, deadline).await;
        }
    }
}

/// Watches a sent step until its effect shows or the deadline passes, and records the result.
pub async fn watch_and_settle(
    state: &AppState,
    incident: &Incident,
    stored: &StoredStep,
    deadline_ms: i64,
) {
    let service = state.recovery();
    let step = &stored.step;
    let result = super::evidence::watch_effect(state, incident, stored, deadline_ms).await;
    let (to, detail, event) = match result {
        Ok(detail) => {
            let event = finished_event(service, step, &detail);
            (StepState::Done, detail, event)
        }
        Err(detail) => {
            let event = failed_event(service, step, &detail);
            (StepState::Failed, detail, event)
        }
    };
    let change = StepChange::default()
        .int("finished_at_ms", Some(service.now_ms()))
        .text("detail", Some(detail.clone()));
    settle_outcome(
        state,
        incident,
        step,
        &[StepState::Sent],
        to,
        change,
        event,
        &detail,
    )
    .await;
}

async fn send(
    state: &AppState,
    incident: &Incident,
    step: &RecoveryStep,
) -> Result<(), TalosError> {
    let cluster = state
        .cluster(&incident.cluster)
        .map_err(|e| TalosError::Refused(e.to_string()))?;
    let talos = recovery_talos(cluster).map_err(|e| TalosError::Refused(e.to_string()))?;
    let target = step
        .target
        .as_ref()
        .ok_or_else(|| TalosError::Refused("the step has no target node".into()))?;
    let node = target.address.as_str();
    let call = async {
        match step.kind {
            StepKind::ResetNode => {
                if step.params.wipe_labels.is_empty() {
                    // An empty list would wipe the whole disk: never send one.
                    return Err(TalosError::Refused(
                        "the reset names no partition to wipe; refusing to wipe the whole disk"
                            .into(),
                    ));
                }
                let options = ResetOptions {
                    graceful: false,
                    reboot: true,
                    wipe_labels: step.params.wipe_labels.clone(),
                };
                talos.reset(node, &options).await
            }
            StepKind::RebootNode => talos.reboot(node).await,
            StepKind::Bootstrap => {
                let options = BootstrapOptions {
                    recover_etcd: true,
                    recover_skip_hash_check: step.params.skip_hash_check,
                };
                talos.bootstrap(node, options).await
            }
            StepKind::StageControlplaneConfig => {
                let config = talos.machine_config(node).await?;
                let staged = super::machine_config::to_controlplane(&config)
                    .map_err(|e| TalosError::Refused(format!("machine config of {node}: {e}")))?;
                talos
                    .apply_configuration(node, staged, ApplyMode::Staged)
                    .await
            }
            other => Err(TalosError::Refused(format!(
                "{} is not a call the executor sends",
                other.as_str()
            ))),
        }
    };
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(TalosError::Timeout),
    }
}
