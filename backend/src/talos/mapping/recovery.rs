//! Requests and replies of the state-changing recovery calls. Pure functions, so the guard rails
//! (never an empty wipe list, always an explicit apply mode) are testable without a node.

use talos_api::common::Metadata;
use talos_api::machine::{
    self, ApplyConfigurationResponse, BootstrapResponse, EtcdRecoverResponse, RebootResponse,
    ResetResponse, apply_configuration_request, reset_request,
};
use tonic::{Code, Status};

use crate::talos::client::classify;
use crate::talos::{ApplyMode, BootstrapOptions, ResetOptions, TalosError};

/// Where Talos exposes the kernel's boot id (`talosctl reboot --wait` reads it the same way).
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// `ResetRequest` for `options`. Refuses, without a call, a request that names no partition:
/// Talos reads an empty list as "wipe the whole system disk", machine config included.
pub fn reset_request(options: &ResetOptions) -> Result<machine::ResetRequest, TalosError> {
    if options.wipe_labels.is_empty() {
        return Err(TalosError::Refused(
            "reset refused: no partition label to wipe (an empty list would wipe the whole system disk)"
                .into(),
        ));
    }
    if options.wipe_labels.iter().any(|l| l.trim().is_empty()) {
        return Err(TalosError::Refused(
            "reset refused: a partition label to wipe is blank".into(),
        ));
    }
    Ok(machine::ResetRequest {
        graceful: options.graceful,
        reboot: options.reboot,
        system_partitions_to_wipe: options
            .wipe_labels
            .iter()
            .map(|label| machine::ResetPartitionSpec {
                label: label.trim().to_string(),
                wipe: true,
            })
            .collect(),
        user_disks_to_wipe: Vec::new(),
        mode: reset_request::WipeMode::All as i32,
    })
}

pub fn bootstrap_request(options: BootstrapOptions) -> machine::BootstrapRequest {
    machine::BootstrapRequest {
        recover_etcd: options.recover_etcd,
        recover_skip_hash_check: options.recover_skip_hash_check,
    }
}

/// The mode is always set: mode 0 (REBOOT) is the proto3 default and reboots the node at once on
/// Talos up to v1.13.
pub fn apply_request(config: Vec<u8>, mode: ApplyMode) -> machine::ApplyConfigurationRequest {
    let mode = match mode {
        ApplyMode::Staged => apply_configuration_request::Mode::Staged,
    };
    machine::ApplyConfigurationRequest {
        data: config,
        mode: mode as i32,
        dry_run: false,
        try_mode_timeout: None,
    }
}

pub fn reboot_request() -> machine::RebootRequest {
    machine::RebootRequest {
        mode: machine::reboot_request::Mode::Default as i32,
    }
}

/// A reply is accepted when it holds at least one message and none carries a node error in its
/// `metadata` (apid's way of reporting one node's failure inside an OK reply).
fn accepted<'a>(
    method: &str,
    metadata: impl ExactSizeIterator<Item = Option<&'a Metadata>>,
) -> Result<(), TalosError> {
    if metadata.len() == 0 {
        return Err(TalosError::BadReply(format!(
            "{method} reply holds no message"
        )));
    }
    for meta in metadata.flatten() {
        if meta.error.is_empty() {
            continue;
        }
        tracing::debug!(method, hostname = %meta.hostname, error = %meta.error, "node error in a Talos reply");
        let status = match &meta.status {
            Some(status) => Status::new(Code::from_i32(status.code), status.message.clone()),
            None => Status::unknown(meta.error.clone()),
        };
        // The node answered, with an error: never an unreachable endpoint, whatever the code.
        return Err(match classify(&status, method, false) {
            TalosError::Refused(words) => TalosError::Refused(words),
            other => TalosError::Refused(other.to_string()),
        });
    }
    Ok(())
}

pub fn reset_reply(reply: ResetResponse) -> Result<(), TalosError> {
    accepted("Reset", reply.messages.iter().map(|m| m.metadata.as_ref()))
}

pub fn bootstrap_reply(reply: BootstrapResponse) -> Result<(), TalosError> {
    accepted(
        "Bootstrap",
        reply.messages.iter().map(|m| m.metadata.as_ref()),
    )
}

pub fn etcd_recover_reply(reply: EtcdRecoverResponse) -> Result<(), TalosError> {
    accepted(
        "EtcdRecover",
        reply.messages.iter().map(|m| m.metadata.as_ref()),
    )
}

pub fn reboot_reply(reply: RebootResponse) -> Result<(), TalosError> {
    accepted("Reboot", reply.messages.iter().map(|m| m.metadata.as_ref()))
}

pub fn apply_reply(reply: ApplyConfigurationResponse, asked: ApplyMode) -> Result<(), TalosError> {
    accepted(
        "ApplyConfiguration",
        reply.messages.iter().map(|m| m.metadata.as_ref()),
    )?;
    let asked = apply_request(Vec::new(), asked).mode;
    for message in &reply.messages {
        if message.mode != asked {
            // Already applied by the node; worth a trace, not a failure of the step.
            tracing::warn!(
                effective = message.mode,
                asked,
                details = %message.mode_details,
                "the node applied the configuration in another mode than asked"
            );
        }
    }
    Ok(())
}

/// The boot id as `Read` returns it (one line, a UUID).
pub fn boot_id(bytes: &[u8]) -> Result<String, TalosError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| TalosError::BadReply("boot id is not text".into()))?
        .trim();
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err(TalosError::BadReply("boot id is not a single word".into()));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use talos_api::google::rpc;

    use super::*;

    fn options(labels: &[&str]) -> ResetOptions {
        ResetOptions {
            graceful: false,
            reboot: true,
            wipe_labels: labels.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn reset_names_every_label_and_never_an_empty_list() {
        let request = reset_request(&options(&["EPHEMERAL", "ETCD"])).expect("request");
        assert!(!request.graceful && request.reboot);
        assert_eq!(request.mode, reset_request::WipeMode::All as i32);
        let wiped: Vec<(&str, bool)> = request
            .system_partitions_to_wipe
            .iter()
            .map(|p| (p.label.as_str(), p.wipe))
            .collect();
        assert_eq!(wiped, vec![("EPHEMERAL", true), ("ETCD", true)]);
        assert!(request.user_disks_to_wipe.is_empty());
        assert!(matches!(
            reset_request(&options(&[])),
            Err(TalosError::Refused(words)) if words.contains("whole system disk")
        ));
        assert!(matches!(
            reset_request(&options(&["EPHEMERAL", " "])),
            Err(TalosError::Refused(_))
        ));
    }

    #[test]
    fn apply_always_sets_staged_and_bootstrap_copies_flags() {
        let request = apply_request(b"version: v1alpha1\n".to_vec(), ApplyMode::Staged);
        assert_eq!(request.mode, 3, "STAGED on the wire");
        assert!(!request.dry_run);
        let bootstrap = bootstrap_request(BootstrapOptions {
            recover_etcd: true,
            recover_skip_hash_check: false,
        });
        assert!(bootstrap.recover_etcd && !bootstrap.recover_skip_hash_check);
        assert_eq!(reboot_request().mode, 0);
    }

    #[test]
    fn node_errors_inside_ok_replies_are_refusals() {
        let ok = ResetResponse {
            messages: vec![machine::Reset {
                metadata: None,
                actor_id: "a".into(),
            }],
        };
        assert_eq!(reset_reply(ok), Ok(()));
        assert!(matches!(
            reset_reply(ResetResponse { messages: vec![] }),
            Err(TalosError::BadReply(_))
        ));
        let failed = BootstrapResponse {
            messages: vec![machine::Bootstrap {
                metadata: Some(Metadata {
                    hostname: "10.0.0.2".into(),
                    error:
                        "rpc error: code = AlreadyExists desc = etcd data directory is not empty"
                            .into(),
                    status: Some(rpc::Status {
                        code: Code::AlreadyExists as i32,
                        message: "etcd data directory is not empty".into(),
                        details: vec![],
                    }),
                }),
            }],
        };
        assert_eq!(
            bootstrap_reply(failed),
            Err(TalosError::Refused(
                "etcd data directory is not empty".into()
            ))
        );
        let unreachable = RebootResponse {
            messages: vec![machine::Reboot {
                metadata: Some(Metadata {
                    hostname: "10.0.0.3".into(),
                    error: "connection refused".into(),
                    status: Some(rpc::Status {
                        code: Code::Unavailable as i32,
                        message: "connection error: connection refused".into(),
                        details: vec![],
                    }),
                }),
                actor_id: String::new(),
            }],
        };
        assert!(matches!(
            reboot_reply(unreachable),
            Err(TalosError::Refused(_))
        ));
    }

    #[test]
    fn boot_id_is_trimmed() {
        assert_eq!(
            boot_id(b"0b5e1c2a-1111-4222-8333-444455556666\n"),
            Ok("0b5e1c2a-1111-4222-8333-444455556666".to_string())
        );
        assert!(boot_id(b"\n").is_err());
        assert!(boot_id(&[0xff, 0xfe]).is_err());
    }
}
