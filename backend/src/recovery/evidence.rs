//! What the nodes say about a step's call: whether a reset or reboot happened (the boot id
//! changed), whether a bootstrap started (etcd left Preparing after the claim), the machine type.
//!
//! Used twice: while a sent step is watched for its effect, and when a restarted console finds a
//! step `claimed` or `sent`. Then the step is judged from the node: took effect → watched on;
//! clearly did not → `uncertain`, with words telling the person what to check. A destructive call
//! is never sent again from here.

use std::time::Duration;

use talos_dr_shared::recovery::{Incident, StepKind, StepState, TimelineKind};
use talos_dr_shared::{MachineType, ServiceState};

use super::RecoveryError;
use super::destructive::{call_name, watch_and_settle};
use super::executor::{WATCH_EVERY, describe_plain, ms, recovery_talos, settle};
use super::store::{NewEvent, StepChange, StoredStep};
use crate::state::AppState;

/// What one look at the node found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The call took effect; the words say how the console knows.
    TookEffect(String),
    /// Not yet (or not at all); the words say what was seen.
    NotYet(String),
}

/// One look at the target of `stored`.
pub async fn look(
    state: &AppState,
    incident: &Incident,
    stored: &StoredStep,
) -> Result<Seen, RecoveryError> {
    let cluster = state
        .cluster(&incident.cluster)
        .map_err(|e| RecoveryError::Invalid(e.to_string()))?;
    let talos = recovery_talos(cluster)?;
    let step = &stored.step;
    let target = step.target.as_ref().ok_or(RecoveryError::Refused(
        talos_dr_shared::recovery::Refusal::NoTarget,
    ))?;
    let node = target.address.as_str();
    let bounded = Duration::from_secs(5);
    match step.kind {
        StepKind::ResetNode | StepKind::RebootNode => {
            let Some(before) = stored.boot_id_before.as_deref() else {
                return Ok(Seen::NotYet(
                    "no boot id was recorded before the call".into(),
                ));
            };
            let now = match tokio::time::timeout(bounded, talos.boot_id(node)).await {
                Ok(Ok(id)) => id.trim().to_string(),
                Ok(Err(e)) => {
                    return Ok(Seen::NotYet(format!(
                        "{} does not answer: {e}",
                        target.hostname
                    )));
                }
                Err(_) => {
                    return Ok(Seen::NotYet(format!(
                        "{} does not answer in time",
                        target.hostname
                    )));
                }
            };
            if now == before {
                return Ok(Seen::NotYet(format!(
                    "{} has not rebooted (boot id {before} unchanged)",
                    target.hostname
                )));
            }
            if step.kind == StepKind::RebootNode {
                let machine_type = tokio::time::timeout(bounded, talos.machine_type(node)).await;
                match machine_type {
                    Ok(Ok(MachineType::Controlplane)) => {}
                    Ok(Ok(other)) => {
                        return Ok(Seen::NotYet(format!(
                            "{} rebooted (boot id {before} → {now}) but is still {}",
                            target.hostname,
                            other.as_str()
                        )));
                    }
                    _ => {
                        return Ok(Seen::NotYet(format!(
                            "{} rebooted; its machine type is not readable yet",
                            target.hostname
                        )));
                    }
                }
                return Ok(Seen::TookEffect(format!(
                    "{} rebooted (boot id {before} → {now}) and is a controlplane node now",
                    target.hostname
                )));
            }
            Ok(Seen::TookEffect(format!(
                "{} was reset and rebooted (boot id {before} → {now}); etcd's data is wiped",
                target.hostname
            )))
        }
        StepKind::Bootstrap => {
            let since = stored.claimed_at_ms.unwrap_or(0);
            let service = match tokio::time::timeout(bounded, talos.etcd_service(node)).await {
                Ok(Ok(Some(s))) => s,
                Ok(Ok(None)) => {
                    return Ok(Seen::NotYet(format!(
                        "{} runs no etcd service",
                        target.hostname
                    )));
                }
                Ok(Err(e)) => {
                    return Ok(Seen::NotYet(format!(
                        "{} does not answer: {e}",
                        target.hostname
                    )));
                }
                Err(_) => {
                    return Ok(Seen::NotYet(format!(
                        "{} does not answer in time",
                        target.hostname
                    )));
                }
            };
            // Talos restarts the etcd service for a bootstrap: any state other than Preparing
            // after the claim means the call arrived.
            let moved = service.state != ServiceState::Preparing
                || service
                    .events
                    .iter()
                    .any(|e| e.at_ms >= since && e.state != ServiceState::Preparing);
            if moved {
                Ok(Seen::TookEffect(format!(
                    "etcd on {} left Preparing after the call (now {})",
                    target.hostname,
                    service.state.as_str()
                )))
            } else {
                Ok(Seen::NotYet(format!(
                    "etcd on {} is still Preparing",
                    target.hostname
                )))
            }
        }
        // A staged config is not visible until the reboot: only Talos' answer tells.
        StepKind::StageControlplaneConfig => Ok(Seen::NotYet(
            "a staged config cannot be read back before the reboot".into(),
        )),
        other => Ok(Seen::NotYet(format!(
            "{} has no effect to look for",
            other.as_str()
        ))),
    }
}

/// Watches a sent step until its effect shows (`Ok` with how the console knows) or the deadline
/// passes (`Err` with what to check).
pub async fn watch_effect(
    state: &AppState,
    incident: &Incident,
    stored: &StoredStep,
    deadline_ms: i64,
) -> Result<String, String> {
    let step = &stored.step;
    // Talos answered OK; there is nothing further to see on the node for these.
    match step.kind {
        StepKind::StageControlplaneConfig => {
            return Ok(
                "the controlplane config is staged; it takes effect at the reboot step".into(),
            );
        }
        StepKind::Bootstrap => {
            return Ok(
                "Talos accepted the bootstrap; the restore runs now (followed by the next step)"
                    .into(),
            );
        }
        _ => {}
    }
    let service = state.recovery();
    let mut last;
    loop {
        match look(state, incident, stored).await {
            Ok(Seen::TookEffect(words)) => return Ok(words),
            Ok(Seen::NotYet(words)) => last = words,
            Err(e) => last = e.to_string(),
        }
        if service.now_ms() >= deadline_ms {
            return Err(format!(
                "{} was accepted but its effect did not show before the deadline: {last}. Check the node (`{}`); nothing is sent again on its own",
                call_name(step.kind),
                step.talosctl
            ));
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// A destructive step found in flight after a restart (or after the console that ran it
/// stopped).
pub(super) async fn judge(state: &AppState, incident: &Incident, stored: &StoredStep) {
    let service = state.recovery();
    let step = &stored.step;
    let grace_until = service
        .now_ms()
        .saturating_add(ms(service.settings().resume_grace));
    let deadline = step.deadline_at_ms.unwrap_or_else(|| {
        service
            .now_ms()
            .saturating_add(ms(service.settings().wait_deadline))
    });
    if step.state == StepState::Sent {
        // Talos accepted the call before the restart: watch for its effect as before.
        watch_and_settle(state, incident, stored, deadline).await;
        return;
    }
    let mut last;
    loop {
        match look(state, incident, stored).await {
            Ok(Seen::TookEffect(words)) => {
                let event = NewEvent::new(
                    service.now_ms(),
                    TimelineKind::StepStarted,
                    format!(
                        "{}: the console restarted after claiming it; the node shows the call took effect ({words})",
                        describe_plain(step)
                    ),
                )
                .step(&step.id);
                let change = StepChange::default()
                    .int("deadline_at_ms", Some(deadline))
                    .text(
                        "detail",
                        Some(format!("took effect before the restart: {words}")),
                    );
                if settle(
                    service,
                    &incident.id,
                    step,
                    &[StepState::Claimed],
                    StepState::Sent,
                    change,
                    event,
                )
                .await
                {
                    let mut sent = stored.clone();
                    sent.step.state = StepState::Sent;
                    watch_and_settle(state, incident, &sent, deadline).await;
                }
                return;
            }
            Ok(Seen::NotYet(words)) => last = words,
            Err(e) => last = e.to_string(),
        }
        if service.now_ms() >= grace_until {
            break;
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
    let detail = format!(
        "the console stopped after claiming this step and before it could record that {} was sent; the node shows no effect ({last}). \
         Check the node yourself (`{}`): if the call did take effect, mark the step done; if not, send it back (retry) and request it again. \
         The console never sends it again on its own",
        call_name(step.kind),
        step.talosctl
    );
    let event = NewEvent::new(
        service.now_ms(),
        TimelineKind::StepFailed,
        format!(
            "{} is uncertain after a restart: {last}",
            describe_plain(step)
        ),
    )
    .step(&step.id)
    .loud();
    let change = StepChange::default()
        .int("finished_at_ms", Some(service.now_ms()))
        .text("detail", Some(detail.clone()));
    super::executor::settle_outcome(
        state,
        incident,
        step,
        &[StepState::Claimed],
        StepState::Uncertain,
        change,
        event,
        &detail,
    )
    .await;
}
