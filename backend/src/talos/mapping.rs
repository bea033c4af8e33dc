//! Talos protobuf replies → the console's own types. Pure functions, so every case is testable
//! without a server.

use prost::Message as _;
use talos_api::cosi::resource::GetResponse;
use talos_api::machine::{
    self, EtcdAlarmListResponse, EtcdMemberListResponse, EtcdStatusResponse, ServiceListResponse,
    VersionResponse, etcd_member_alarm,
};
use talos_api::resource::config as proto_config;
use talos_dr_shared::{
    AlarmType, EtcdAlarm, EtcdMember, EtcdMemberStatus, EtcdService, MachineType, ServiceEvent,
    ServiceHealth, ServiceState, format_member_id,
};

use super::TalosError;

pub mod recovery;
mod volume;

pub use volume::etcd_data_volume;

fn empty(call: &str) -> TalosError {
    TalosError::BadReply(format!("{call} reply holds no message"))
}

pub fn version(reply: VersionResponse) -> Result<String, TalosError> {
    let message = reply
        .messages
        .into_iter()
        .next()
        .ok_or_else(|| empty("Version"))?;
    let info = message
        .version
        .ok_or_else(|| TalosError::BadReply("Version reply has no version".into()))?;
    Ok(info.tag)
}

pub fn machine_type(reply: GetResponse) -> Result<MachineType, TalosError> {
    let spec = reply
        .resource
        .and_then(|r| r.spec)
        .ok_or_else(|| TalosError::BadReply("MachineType resource has no spec".into()))?;
    if !spec.proto_spec.is_empty() {
        let decoded = proto_config::MachineTypeSpec::decode(spec.proto_spec.as_slice())
            .map_err(|_| TalosError::BadReply("MachineType spec does not decode".into()))?;
        return Ok(
            match proto_config::MachineType::try_from(decoded.machine_type) {
                Ok(proto_config::MachineType::Init) => MachineType::Init,
                Ok(proto_config::MachineType::ControlPlane) => MachineType::Controlplane,
                Ok(proto_config::MachineType::Worker) => MachineType::Worker,
                Ok(proto_config::MachineType::Unknown) | Err(_) => MachineType::Unknown,
            },
        );
    }
    // Older servers may fill only the YAML form: the bare type name.
    Ok(match spec.yaml_spec.trim().trim_matches('"') {
        "init" => MachineType::Init,
        "controlplane" => MachineType::Controlplane,
        "worker" | "join" => MachineType::Worker,
        _ => MachineType::Unknown,
    })
}

/// The config bytes from the `proto_spec`; servers that fill only `yaml_spec` are not used,
/// since that form is re-marshalled and may differ from what was applied.
pub fn machine_config(reply: GetResponse) -> Result<Vec<u8>, TalosError> {
    let spec = reply
        .resource
        .and_then(|r| r.spec)
        .ok_or_else(|| TalosError::BadReply("MachineConfig resource has no spec".into()))?;
    let decoded = proto_config::MachineConfigSpec::decode(spec.proto_spec.as_slice())
        .map_err(|_| TalosError::BadReply("MachineConfig spec does not decode".into()))?;
    if decoded.yaml_marshalled.is_empty() {
        return Err(TalosError::BadReply(
            "MachineConfig spec holds no YAML".into(),
        ));
    }
    Ok(decoded.yaml_marshalled)
}

pub fn etcd_service(reply: ServiceListResponse) -> Result<Option<EtcdService>, TalosError> {
    let list = reply
        .messages
        .into_iter()
        .next()
        .ok_or_else(|| empty("ServiceList"))?;
    Ok(list
        .services
        .into_iter()
        .find(|s| s.id == "etcd")
        .map(service))
}

fn service(info: machine::ServiceInfo) -> EtcdService {
    let (health, health_message) = match info.health {
        None => (ServiceHealth::Unknown, String::new()),
        Some(h) if h.unknown => (ServiceHealth::Unknown, h.last_message),
        Some(h) if h.healthy => (ServiceHealth::Healthy, h.last_message),
        Some(h) => (ServiceHealth::Unhealthy, h.last_message),
    };
    let events = info
        .events
        .map(|e| e.events)
        .unwrap_or_default()
        .into_iter()
        .map(|e| ServiceEvent {
            state: ServiceState::parse(&e.state),
            message: e.msg,
            at_ms: e.ts.map_or(0, |ts| {
                ts.seconds.saturating_mul(1000) + i64::from(ts.nanos / 1_000_000)
            }),
        })
        .collect();
    EtcdService {
        state: ServiceState::parse(&info.state),
        health,
        health_message,
        events,
    }
}

pub fn etcd_members(reply: EtcdMemberListResponse) -> Result<Vec<EtcdMember>, TalosError> {
    let list = reply
        .messages
        .into_iter()
        .next()
        .ok_or_else(|| empty("EtcdMemberList"))?;
    Ok(list
        .members
        .into_iter()
        .map(|m| EtcdMember {
            id: format_member_id(m.id),
            hostname: m.hostname,
            peer_urls: m.peer_urls,
            client_urls: m.client_urls,
            is_learner: m.is_learner,
        })
        .collect())
}

pub fn etcd_status(reply: EtcdStatusResponse) -> Result<EtcdMemberStatus, TalosError> {
    let message = reply
        .messages
        .into_iter()
        .next()
        .ok_or_else(|| empty("EtcdStatus"))?;
    let s = message
        .member_status
        .ok_or_else(|| TalosError::BadReply("EtcdStatus reply has no member status".into()))?;
    Ok(EtcdMemberStatus {
        member_id: format_member_id(s.member_id),
        leader: format_member_id(s.leader),
        protocol_version: s.protocol_version,
        storage_version: s.storage_version,
        db_size: s.db_size,
        db_size_in_use: s.db_size_in_use,
        raft_index: s.raft_index,
        raft_term: s.raft_term,
        raft_applied_index: s.raft_applied_index,
        is_learner: s.is_learner,
        errors: s.errors,
    })
}

pub fn etcd_alarms(reply: EtcdAlarmListResponse) -> Result<Vec<EtcdAlarm>, TalosError> {
    Ok(reply
        .messages
        .into_iter()
        .flat_map(|m| m.member_alarms)
        .map(|a| EtcdAlarm {
            member_id: format_member_id(a.member_id),
            alarm: match etcd_member_alarm::AlarmType::try_from(a.alarm) {
                Ok(etcd_member_alarm::AlarmType::Nospace) => AlarmType::Nospace,
                Ok(etcd_member_alarm::AlarmType::Corrupt) => AlarmType::Corrupt,
                Ok(etcd_member_alarm::AlarmType::None) | Err(_) => AlarmType::None,
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use talos_api::cosi::resource::{Resource, Spec};
    use talos_api::machine::{
        EtcdMemberAlarm, EtcdStatus, ServiceEvents, ServiceInfo, ServiceList,
    };

    use super::*;

    #[test]
    fn machine_type_from_proto_spec_or_yaml() {
        let spec = proto_config::MachineTypeSpec {
            machine_type: proto_config::MachineType::ControlPlane as i32,
        };
        let reply = |spec: Spec| GetResponse {
            resource: Some(Resource {
                metadata: None,
                spec: Some(spec),
            }),
        };
        let got = machine_type(reply(Spec {
            proto_spec: spec.encode_to_vec(),
            yaml_spec: String::new(),
        }));
        assert_eq!(got, Ok(MachineType::Controlplane));
        let got = machine_type(reply(Spec {
            proto_spec: vec![],
            yaml_spec: "init\n".into(),
        }));
        assert_eq!(got, Ok(MachineType::Init));
        assert!(matches!(
            machine_type(GetResponse { resource: None }),
            Err(TalosError::BadReply(_))
        ));
    }

    #[test]
    fn etcd_service_with_health_and_events() {
        let reply = ServiceListResponse {
            messages: vec![ServiceList {
                metadata: None,
                services: vec![
                    ServiceInfo {
                        id: "apid".into(),
                        state: "Running".into(),
                        events: None,
                        health: None,
                    },
                    ServiceInfo {
                        id: "etcd".into(),
                        state: "Failed".into(),
                        events: Some(ServiceEvents {
                            events: vec![machine::ServiceEvent {
                                msg: "Failed to run".into(),
                                state: "Failed".into(),
                                ts: Some(prost_types::Timestamp {
                                    seconds: 2,
                                    nanos: 5_000_000,
                                }),
                            }],
                        }),
                        health: Some(machine::ServiceHealth {
                            unknown: false,
                            healthy: false,
                            last_message: "no quorum".into(),
                            last_change: None,
                        }),
                    },
                ],
            }],
        };
        let etcd = etcd_service(reply).expect("maps").expect("etcd present");
        assert_eq!(etcd.state, ServiceState::Failed);
        assert_eq!(etcd.health, talos_dr_shared::ServiceHealth::Unhealthy);
        assert_eq!(etcd.health_message, "no quorum");
        assert_eq!(etcd.events[0].at_ms, 2005);
        let none = etcd_service(ServiceListResponse {
            messages: vec![ServiceList {
                metadata: None,
                services: vec![],
            }],
        });
        assert_eq!(none, Ok(None));
    }

    #[test]
    fn etcd_ids_are_printed_like_talosctl() {
        let reply = EtcdStatusResponse {
            messages: vec![EtcdStatus {
                metadata: None,
                member_status: Some(machine::EtcdMemberStatus {
                    member_id: 0xab,
                    leader: 0x1f,
                    ..Default::default()
                }),
            }],
        };
        let status = etcd_status(reply).expect("maps");
        assert_eq!(status.member_id, "00000000000000ab");
        assert_eq!(status.leader, "000000000000001f");
        let alarms = etcd_alarms(EtcdAlarmListResponse {
            messages: vec![machine::EtcdAlarm {
                metadata: None,
                member_alarms: vec![
                    EtcdMemberAlarm {
                        member_id: 1,
                        alarm: 1,
                    },
                    EtcdMemberAlarm {
                        member_id: 2,
                        alarm: 9,
                    },
                ],
            }],
        })
        .expect("maps");
        assert_eq!(alarms[0].alarm, AlarmType::Nospace);
        assert_eq!(alarms[1].alarm, AlarmType::None);
        assert!(matches!(
            etcd_members(EtcdMemberListResponse { messages: vec![] }),
            Err(TalosError::BadReply(_))
        ));
    }
}
