//! The fault switches and call counters of a running `Emulator`, for tests in this process
//! (the control interface drives the same switches over HTTP).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::{CallCounts, Emulator, EmulatorError, RecoveryCall};

impl Emulator {
    pub async fn stop_api(&self, ip: Ipv4Addr) -> Result<(), EmulatorError> {
        Ok(self.faults.stop_api(ip).await?)
    }

    pub async fn start_api(&self, ip: Ipv4Addr) -> Result<(), EmulatorError> {
        Ok(self.faults.start_api(ip).await?)
    }

    /// Delays every response of the node's API by `delay` (zero turns it off).
    pub fn slow(&self, ip: Ipv4Addr, delay: Duration) -> Result<(), EmulatorError> {
        Ok(self.faults.set_slow(ip, delay)?)
    }

    pub async fn kill_etcd(&self, ip: Ipv4Addr) -> Result<(), EmulatorError> {
        Ok(self.faults.kill_etcd(ip).await?)
    }

    /// Replaces the node's machine by a blank one in maintenance mode (see `Node::replace_machine`).
    pub async fn replace_machine(&self, ip: Ipv4Addr) -> Result<(), EmulatorError> {
        Ok(self.faults.replace_machine(ip).await?)
    }

    pub async fn start_etcd(&self, ip: Ipv4Addr) -> Result<(), EmulatorError> {
        Ok(self.faults.start_etcd(ip).await?)
    }

    pub async fn corrupt_etcd(&self, ip: Ipv4Addr) -> Result<(), EmulatorError> {
        Ok(self.faults.corrupt_etcd(ip).await?)
    }

    /// Writes through the node's etcd until etcd itself raises a NOSPACE alarm (for whichever
    /// members' backends crossed the quota first).
    pub async fn raise_nospace(&self, ip: Ipv4Addr) -> Result<(), EmulatorError> {
        Ok(self.faults.raise_nospace(ip).await?)
    }

    /// Wipes the node's etcd data and bootstraps it as a one-member cluster of its own, as a
    /// second `talosctl bootstrap` would: the others keep listing its old member.
    pub async fn split_off_etcd(&self, ip: Ipv4Addr) -> Result<(), EmulatorError> {
        Ok(self.faults.split_off_etcd(ip).await?)
    }

    /// Recovery calls the node at `ip` acted on (Reset, Bootstrap, EtcdRecover,
    /// ApplyConfiguration, Reboot), counted as `node::RecoveryCall`'s module describes.
    pub fn calls(&self, ip: Ipv4Addr) -> Result<CallCounts, EmulatorError> {
        Ok(self.faults.node(ip)?.calls())
    }

    /// Recovery calls the node at `ip` answered with an error without acting.
    pub fn refused_calls(&self, ip: Ipv4Addr) -> Result<CallCounts, EmulatorError> {
        Ok(self.faults.node(ip)?.refused_calls())
    }

    /// Recovery calls waiting in a hold on the node at `ip` right now.
    pub fn calls_in_hold(&self, ip: Ipv4Addr) -> Result<CallCounts, EmulatorError> {
        Ok(self.faults.node(ip)?.calls_in_hold())
    }

    /// The next `call` reaching the node at `ip` waits `hold` before it acts; a caller that
    /// disconnects meanwhile has its call dropped unexecuted. Zero disarms.
    pub fn hold(
        &self,
        ip: Ipv4Addr,
        call: RecoveryCall,
        hold: Duration,
    ) -> Result<(), EmulatorError> {
        Ok(self.faults.hold_next(ip, call, hold)?)
    }

    pub fn cut_next_snapshot(
        &self,
        ip: Ipv4Addr,
        after_bytes: u64,
        with_error: bool,
    ) -> Result<(), EmulatorError> {
        Ok(self.faults.cut_next_snapshot(ip, after_bytes, with_error)?)
    }
}
