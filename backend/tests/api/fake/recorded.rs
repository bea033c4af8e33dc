//! What the fake records of each recovery call, and how a test scripts a call's answer.

use talos_dr::talos::{ApplyMode, BootstrapOptions, ResetOptions, TalosError};

/// One call the console made through `TalosRecoveryApi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryCall {
    Reset {
        node: String,
        options: ResetOptions,
    },
    Bootstrap {
        node: String,
        options: BootstrapOptions,
    },
    /// `bytes` is what was uploaded (empty while the upload runs, or when it was refused).
    EtcdRecover {
        node: String,
        bytes: Vec<u8>,
    },
    ApplyConfiguration {
        node: String,
        config: Vec<u8>,
        mode: ApplyMode,
    },
    Reboot {
        node: String,
    },
    BootId {
        node: String,
    },
    Dmesg {
        node: String,
        follow: bool,
        tail_lines: i32,
    },
}

/// The kinds of `RecoveryCall`, for scripting and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecoveryCallKind {
    Reset,
    Bootstrap,
    EtcdRecover,
    ApplyConfiguration,
    Reboot,
    BootId,
    Dmesg,
}

impl RecoveryCallKind {
    /// The calls that change a node (the ones a recovery must send at most once per step).
    pub fn changes_the_node(self) -> bool {
        !matches!(self, Self::BootId | Self::Dmesg)
    }
}

impl RecoveryCall {
    pub fn node(&self) -> &str {
        match self {
            Self::Reset { node, .. }
            | Self::Bootstrap { node, .. }
            | Self::EtcdRecover { node, .. }
            | Self::ApplyConfiguration { node, .. }
            | Self::Reboot { node }
            | Self::BootId { node }
            | Self::Dmesg { node, .. } => node,
        }
    }

    pub fn kind(&self) -> RecoveryCallKind {
        match self {
            Self::Reset { .. } => RecoveryCallKind::Reset,
            Self::Bootstrap { .. } => RecoveryCallKind::Bootstrap,
            Self::EtcdRecover { .. } => RecoveryCallKind::EtcdRecover,
            Self::ApplyConfiguration { .. } => RecoveryCallKind::ApplyConfiguration,
            Self::Reboot { .. } => RecoveryCallKind::Reboot,
            Self::BootId { .. } => RecoveryCallKind::BootId,
            Self::Dmesg { .. } => RecoveryCallKind::Dmesg,
        }
    }
}

/// What a scripted call does instead of succeeding (it is recorded either way).
#[derive(Debug, Clone)]
pub enum Script {
    /// Every such call fails with this error.
    Fail(TalosError),
    /// The next such call fails with this error; later ones succeed.
    FailOnce(TalosError),
    /// Such calls never answer (for timeout tests).
    Hang,
}
