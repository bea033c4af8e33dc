//! The `recovery` section of the settings: the approval policy and how long waits may take.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, ConfigFile, ServeArgs, parse_duration, read_file};

/// The `recovery` section of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecoveryFile {
    approvals_required: Option<u32>,
    approval_ttl: Option<String>,
    break_glass: Option<bool>,
    wait_deadline: Option<String>,
}

/// How staged recoveries run: the approval policy and how long waits may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryConfig {
    pub approvals_required: u32,
    pub approval_ttl: Duration,
    pub break_glass_allowed: bool,
    pub wait_deadline: Duration,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            approvals_required: 1,
            approval_ttl: Duration::from_secs(15 * 60),
            break_glass_allowed: true,
            wait_deadline: Duration::from_secs(10 * 60),
        }
    }
}

impl RecoveryConfig {
    /// Defaults, then the config file's `recovery` section, then flags/environment.
    pub fn load(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => Some((path.as_path(), read_file(path)?)),
            None => None,
        };
        Self::from_layers(file, args)
    }

    pub(super) fn from_layers(
        file: Option<(&Path, ConfigFile)>,
        args: &ServeArgs,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some((
            path,
            ConfigFile {
                recovery: Some(r), ..
            },
        )) = file
        {
            let field_error = |field: &str, message: String| ConfigError::Field {
                path: path.to_path_buf(),
                field: format!("recovery.{field}"),
                message,
            };
            if let Some(n) = r.approvals_required {
                config.approvals_required = n;
            }
            if let Some(v) = &r.approval_ttl {
                config.approval_ttl =
                    parse_duration(v).map_err(|m| field_error("approval_ttl", m))?;
            }
            if let Some(b) = r.break_glass {
                config.break_glass_allowed = b;
            }
            if let Some(v) = &r.wait_deadline {
                config.wait_deadline =
                    parse_duration(v).map_err(|m| field_error("wait_deadline", m))?;
            }
        }
        if let Some(n) = args.approvals_required {
            config.approvals_required = n;
        }
        if let Some(d) = args.approval_ttl {
            config.approval_ttl = d;
        }
        if let Some(b) = args.break_glass {
            config.break_glass_allowed = b;
        }
        if let Some(d) = args.recovery_wait_deadline {
            config.wait_deadline = d;
        }
        if config.approvals_required == 0 {
            return Err(ConfigError::NoApprovals);
        }
        Ok(config)
    }
}
