//! Which state-changing recovery calls each node acted on, and the hold fault that keeps the
//! next such call in flight for a while.
//!
//! Counting rules, so a test can assert "this reached the node exactly once":
//! - **executed**: the node acted on the call (Reset/Reboot started their sequence, Bootstrap
//!   replaced the etcd service, EtcdRecover stored the whole upload, ApplyConfiguration stored the
//!   config). Once a node decides to act it finishes even if the caller goes away.
//! - **refused**: the call reached the node and was answered with an error without acting
//!   (authorization, validation, preconditions). Dry-run applies count nowhere.
//! - A call whose caller went away before the node acted (during a hold, or mid-upload) counts
//!   nowhere: it was not executed and was not answered. Neither does a call that never reached
//!   the node (its API stopped, the machine powered off, a bad `node` target).
//!
//! Hold: `hold_next(call, d)` makes the next call of that kind which reaches the node (after
//! routing and authorization) wait `d` before it is validated and executed. The hold is used up
//! by that one call. If the caller disconnects during the hold (a killed process, a cancelled
//! request), the call is dropped: nothing is executed and no counter moves.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::Status;

use super::{Node, lock};

/// The calls that change a node during a recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryCall {
    Reset,
    Bootstrap,
    EtcdRecover,
    ApplyConfiguration,
    Reboot,
}

impl RecoveryCall {
    pub const ALL: [RecoveryCall; 5] = [
        RecoveryCall::Reset,
        RecoveryCall::Bootstrap,
        RecoveryCall::EtcdRecover,
        RecoveryCall::ApplyConfiguration,
        RecoveryCall::Reboot,
    ];

    /// The name used in the control interface (`reset`, `etcd_recover`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::Bootstrap => "bootstrap",
            Self::EtcdRecover => "etcd_recover",
            Self::ApplyConfiguration => "apply_configuration",
            Self::Reboot => "reboot",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|call| call.as_str() == name)
    }
}

impl std::fmt::Display for RecoveryCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One number per recovery call; serializes as `{"reset": 1, "bootstrap": 0, ...}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounts {
    pub reset: u64,
    pub bootstrap: u64,
    pub etcd_recover: u64,
    pub apply_configuration: u64,
    pub reboot: u64,
}

impl CallCounts {
    pub fn get(&self, call: RecoveryCall) -> u64 {
        match call {
            RecoveryCall::Reset => self.reset,
            RecoveryCall::Bootstrap => self.bootstrap,
            RecoveryCall::EtcdRecover => self.etcd_recover,
            RecoveryCall::ApplyConfiguration => self.apply_configuration,
            RecoveryCall::Reboot => self.reboot,
        }
    }

    fn slot(&mut self, call: RecoveryCall) -> &mut u64 {
        match call {
            RecoveryCall::Reset => &mut self.reset,
            RecoveryCall::Bootstrap => &mut self.bootstrap,
            RecoveryCall::EtcdRecover => &mut self.etcd_recover,
            RecoveryCall::ApplyConfiguration => &mut self.apply_configuration,
            RecoveryCall::Reboot => &mut self.reboot,
        }
    }

    pub fn total(&self) -> u64 {
        RecoveryCall::ALL
            .into_iter()
            .map(|call| self.get(call))
            .sum()
    }
}

/// Kept outside the boot state: counters and armed holds survive reboots and resets.
#[derive(Debug, Default)]
pub(crate) struct CallLedger {
    executed: CallCounts,
    refused: CallCounts,
    in_hold: CallCounts,
    holds: BTreeMap<RecoveryCall, Duration>,
}

/// One call on its way through a node handler: the handler marks the moment it acts.
pub(crate) struct Attempt {
    node: Node,
    call: RecoveryCall,
    acted: bool,
}

impl Attempt {
    /// The node is about to change something: from here on the call counts as executed.
    pub(crate) fn act(&mut self) {
        if !self.acted {
            self.acted = true;
            *lock(&self.node.inner.calls).executed.slot(self.call) += 1;
        }
    }

    /// An error answered before acting counts as refused.
    pub(crate) fn finish<T>(self, result: Result<T, Status>) -> Result<T, Status> {
        if result.is_err() && !self.acted {
            self.node.record_refused(self.call);
        }
        result
    }
}

/// Undoes the in-hold count however the hold ends (elapsed, or the caller went away).
struct HoldGuard<'a> {
    node: &'a Node,
    call: RecoveryCall,
}

impl Drop for HoldGuard<'_> {
    fn drop(&mut self) {
        let mut ledger = lock(&self.node.inner.calls);
        let slot = ledger.in_hold.slot(self.call);
        *slot = slot.saturating_sub(1);
    }
}

impl Node {
    /// Calls the node acted on, by kind, since it was created.
    pub fn calls(&self) -> CallCounts {
        lock(&self.inner.calls).executed
    }

    /// Calls the node answered with an error without acting.
    pub fn refused_calls(&self) -> CallCounts {
        lock(&self.inner.calls).refused
    }

    /// Calls waiting in a hold right now.
    pub fn calls_in_hold(&self) -> CallCounts {
        lock(&self.inner.calls).in_hold
    }

    /// Holds armed and not yet used, in milliseconds (0 = none).
    pub fn armed_holds_ms(&self) -> CallCounts {
        let ledger = lock(&self.inner.calls);
        let mut armed = CallCounts::default();
        for (call, hold) in &ledger.holds {
            *armed.slot(*call) = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
        }
        armed
    }

    /// The next `call` that reaches this node waits `hold` before it is validated and executed
    /// (see the module doc for what a disconnect during the hold does). Zero disarms.
    pub fn hold_next(&self, call: RecoveryCall, hold: Duration) {
        let mut ledger = lock(&self.inner.calls);
        if hold.is_zero() {
            ledger.holds.remove(&call);
        } else {
            ledger.holds.insert(call, hold);
        }
    }

    pub(crate) fn record_refused(&self, call: RecoveryCall) {
        *lock(&self.inner.calls).refused.slot(call) += 1;
    }

    /// Starts accounting for one call, waiting out an armed hold first. If the caller goes away
    /// during the hold, this future is dropped with the request and nothing else happens.
    pub(crate) async fn attempt(&self, call: RecoveryCall) -> Attempt {
        let hold = {
            let mut ledger = lock(&self.inner.calls);
            let hold = ledger.holds.remove(&call);
            if hold.is_some() {
                *ledger.in_hold.slot(call) += 1;
            }
            hold
        };
        if let Some(hold) = hold {
            let _guard = HoldGuard { node: self, call };
            tracing::info!(node = %self.inner.hostname, %call, ?hold, "holding the call");
            tokio::time::sleep(hold).await;
        }
        Attempt {
            node: self.clone(),
            call,
            acted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_counts_serialize_by_name() {
        for call in RecoveryCall::ALL {
            assert_eq!(RecoveryCall::parse(call.as_str()), Some(call));
        }
        assert_eq!(RecoveryCall::parse("Reset"), None);
        let mut counts = CallCounts::default();
        *counts.slot(RecoveryCall::EtcdRecover) += 2;
        assert_eq!(counts.get(RecoveryCall::EtcdRecover), 2);
        assert_eq!(counts.total(), 2);
        let json = serde_json::to_value(counts).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"reset": 0, "bootstrap": 0, "etcd_recover": 2, "apply_configuration": 0, "reboot": 0})
        );
    }
}
