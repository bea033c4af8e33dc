//! The fake's `TalosRecoveryApi`: every call is recorded in the order it was made (node and
//! options), and each (node, call) can be scripted to fail or to hang. By default a call
//! succeeds; Reset and Reboot give the node a new boot id. An `after_call` hook lets a test
//! change the fake cluster the way the real call would (e.g. etcd to Preparing after a Reset).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::StreamExt;
use talos_dr::talos::{
    ApplyMode, BootstrapOptions, ByteStream, KernelLogLine, KernelLogStream, ResetOptions,
    TalosError, TalosRecoveryApi,
};
use talos_dr_shared::{EtcdService, ServiceHealth, ServiceState};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::FakeTalos;
use super::recorded::{RecoveryCall, RecoveryCallKind, Script};

type AfterCall = Arc<dyn Fn(&FakeTalos, &RecoveryCall) + Send + Sync>;

#[derive(Default)]
pub(super) struct RecoveryFake {
    state: Mutex<RecoveryState>,
    kernel_log: KernelLogFeed,
    after_call: Mutex<Option<AfterCall>>,
}

impl fmt::Debug for RecoveryFake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryFake")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct RecoveryState {
    calls: Vec<RecoveryCall>,
    scripts: BTreeMap<(String, RecoveryCallKind), Script>,
    boots: BTreeMap<String, u64>,
    kernel_logs: BTreeMap<String, Vec<String>>,
}

/// New kernel-log lines, for followed Dmesg streams: (node, line).
struct KernelLogFeed(broadcast::Sender<(String, String)>);

impl Default for KernelLogFeed {
    fn default() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("fake lock")
}

impl FakeTalos {
    /// Every recovery call so far, in the order made (reads included).
    pub fn recovery_calls(&self) -> Vec<RecoveryCall> {
        lock(&self.recovery.state).calls.clone()
    }

    /// The calls that change a node (Reset, Bootstrap, EtcdRecover, ApplyConfiguration,
    /// Reboot), in the order made.
    pub fn state_changes(&self) -> Vec<RecoveryCall> {
        self.recovery_calls()
            .into_iter()
            .filter(|c| c.kind().changes_the_node())
            .collect()
    }

    /// How many `kind` calls `node` got.
    pub fn count(&self, node: &str, kind: RecoveryCallKind) -> usize {
        lock(&self.recovery.state)
            .calls
            .iter()
            .filter(|c| c.node() == node && c.kind() == kind)
            .count()
    }

    pub fn script(&self, node: &str, kind: RecoveryCallKind, script: Script) {
        lock(&self.recovery.state)
            .scripts
            .insert((node.to_string(), kind), script);
    }

    pub fn clear_script(&self, node: &str, kind: RecoveryCallKind) {
        lock(&self.recovery.state)
            .scripts
            .remove(&(node.to_string(), kind));
    }

    /// Runs after every successful recovery call (and after the boot id changed).
    pub fn after_call(&self, hook: impl Fn(&FakeTalos, &RecoveryCall) + Send + Sync + 'static) {
        *lock(&self.recovery.after_call) = Some(Arc::new(hook));
    }

    /// The node's current boot id; it changes on every successful Reset or Reboot.
    pub fn boot_id_of(&self, node: &str) -> String {
        let boots = lock(&self.recovery.state)
            .boots
            .get(node)
            .copied()
            .unwrap_or(1);
        format!("boot-{node}-{boots}")
    }

    /// Appends a kernel-log line (`Dmesg` text, without newline); followers see it at once.
    pub fn push_kernel_log(&self, node: &str, line: &str) {
        let mut state = lock(&self.recovery.state);
        state
            .kernel_logs
            .entry(node.to_string())
            .or_default()
            .push(line.to_string());
        // Sent under the lock, so a Dmesg opening meanwhile sees it once, not twice or never.
        let _ = self
            .recovery
            .kernel_log
            .0
            .send((node.to_string(), line.to_string()));
    }

    /// etcd on `node` waits in Preparing with an empty data dir, as after a Reset of EPHEMERAL:
    /// its member, status and alarm calls are refused.
    pub fn etcd_preparing(&self, node: &str) {
        self.update(node, |n| {
            let refused = TalosError::Refused("etcd not running (connection refused)".into());
            n.service = Ok(Some(EtcdService {
                state: ServiceState::Preparing,
                health: ServiceHealth::Unknown,
                health_message: String::new(),
                events: vec![],
            }));
            n.members = Err(refused.clone());
            n.status = Err(refused.clone());
            n.alarms = Err(refused);
        });
    }

    /// Records the call, then answers as scripted; `Ok(index)` means "go on" (the index of the
    /// recorded call).
    async fn begin(&self, call: RecoveryCall) -> Result<usize, TalosError> {
        let node = call.node().to_string();
        let kind = call.kind();
        let (index, script) = {
            let mut state = lock(&self.recovery.state);
            state.calls.push(call);
            let key = (node.clone(), kind);
            let script = match state.scripts.get(&key) {
                Some(Script::FailOnce(_)) => state.scripts.remove(&key),
                other => other.cloned(),
            };
            (state.calls.len() - 1, script)
        };
        let stalled = match lock(&self.nodes).get(&node) {
            None => return Err(TalosError::Unreachable("no such node".into())),
            Some(n) => n.hang,
        };
        match script {
            _ if stalled => std::future::pending().await,
            Some(Script::Hang) => std::future::pending().await,
            Some(Script::Fail(error) | Script::FailOnce(error)) => Err(error),
            None => Ok(index),
        }
    }

    fn new_boot(&self, node: &str) {
        *lock(&self.recovery.state)
            .boots
            .entry(node.to_string())
            .or_insert(1) += 1;
    }

    fn after(&self, index: usize) {
        let call = lock(&self.recovery.state).calls.get(index).cloned();
        let hook = lock(&self.recovery.after_call).clone();
        if let (Some(call), Some(hook)) = (call, hook) {
            hook(self, &call);
        }
    }
}

#[async_trait]
impl TalosRecoveryApi for FakeTalos {
    async fn reset(&self, node: &str, options: &ResetOptions) -> Result<(), TalosError> {
        // Like the real client: an empty wipe list is refused before anything is sent.
        if options.wipe_labels.is_empty() {
            return Err(TalosError::Refused(
                "reset refused: no partition label to wipe".into(),
            ));
        }
        let index = self
            .begin(RecoveryCall::Reset {
                node: node.to_string(),
                options: options.clone(),
            })
            .await?;
        self.new_boot(node);
        self.after(index);
        Ok(())
    }

    async fn bootstrap(&self, node: &str, options: BootstrapOptions) -> Result<(), TalosError> {
        let index = self
            .begin(RecoveryCall::Bootstrap {
                node: node.to_string(),
                options,
            })
            .await?;
        self.after(index);
        Ok(())
    }

    async fn etcd_recover(
        &self,
        node: &str,
        mut snapshot: ByteStream,
        progress: Box<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), TalosError> {
        let index = self
            .begin(RecoveryCall::EtcdRecover {
                node: node.to_string(),
                bytes: Vec::new(),
            })
            .await?;
        let mut uploaded = Vec::new();
        while let Some(chunk) = snapshot.next().await {
            uploaded.extend_from_slice(&chunk?);
            progress(uploaded.len() as u64);
        }
        if let Some(RecoveryCall::EtcdRecover { bytes, .. }) =
            lock(&self.recovery.state).calls.get_mut(index)
        {
            *bytes = uploaded;
        }
        self.after(index);
        Ok(())
    }

    async fn apply_configuration(
        &self,
        node: &str,
        config: Vec<u8>,
        mode: ApplyMode,
    ) -> Result<(), TalosError> {
        let index = self
            .begin(RecoveryCall::ApplyConfiguration {
                node: node.to_string(),
                config,
                mode,
            })
            .await?;
        self.after(index);
        Ok(())
    }

    async fn reboot(&self, node: &str) -> Result<(), TalosError> {
        let index = self
            .begin(RecoveryCall::Reboot {
                node: node.to_string(),
            })
            .await?;
        self.new_boot(node);
        self.after(index);
        Ok(())
    }

    async fn boot_id(&self, node: &str) -> Result<String, TalosError> {
        let index = self
            .begin(RecoveryCall::BootId {
                node: node.to_string(),
            })
            .await?;
        self.after(index);
        Ok(self.boot_id_of(node))
    }

    async fn dmesg(
        &self,
        node: &str,
        follow: bool,
        tail_lines: i32,
    ) -> Result<KernelLogStream, TalosError> {
        let index = self
            .begin(RecoveryCall::Dmesg {
                node: node.to_string(),
                follow,
                tail_lines,
            })
            .await?;
        let (history, live) = {
            let state = lock(&self.recovery.state);
            let all = state.kernel_logs.get(node).cloned().unwrap_or_default();
            let keep = usize::try_from(tail_lines).unwrap_or(all.len());
            let history: Vec<String> = all[all.len().saturating_sub(keep)..].to_vec();
            (
                history,
                follow.then(|| self.recovery.kernel_log.0.subscribe()),
            )
        };
        self.after(index);
        let line = |text: String| Ok(KernelLogLine { text });
        let past = futures::stream::iter(history.into_iter().map(line));
        let Some(live) = live else {
            return Ok(past.boxed());
        };
        let node = node.to_string();
        let new_lines = BroadcastStream::new(live).filter_map(move |item| {
            let line = match item {
                Ok((from, text)) if from == node => Some(Ok(KernelLogLine { text })),
                _ => None,
            };
            futures::future::ready(line)
        });
        Ok(past.chain(new_lines).boxed())
    }
}
