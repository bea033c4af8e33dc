//! Etcd membership, status, alarm and maintenance RPCs (control-plane only).

use talos_api::machine;
use tonic::Status;

use super::etcd_api::pb;
use super::service::ServiceState;
use super::volumes::wipe_contents;
use super::{ETCD, Node};

const LEAVE_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// etcd client errors reach Talos callers as they are; a member that is down looks like
/// Talos' failed local connection.
fn etcd_error(context: &str, status: Status) -> Status {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown
            if status.message().contains("transport") || status.message().contains("connect") =>
        {
            Status::unavailable(format!(
                "{context}: etcd is not reachable: {}",
                status.message()
            ))
        }
        _ => Status::new(status.code(), format!("{context}: {}", status.message())),
    }
}

fn to_member(member: pb::Member) -> machine::EtcdMember {
    machine::EtcdMember {
        id: member.id,
        hostname: member.name,
        peer_urls: member.peer_ur_ls,
        client_urls: member.client_ur_ls,
        is_learner: member.is_learner,
    }
}

fn to_alarm(alarm: pb::AlarmMember) -> machine::EtcdMemberAlarm {
    use machine::etcd_member_alarm::AlarmType;
    let kind = match pb::AlarmType::try_from(alarm.alarm) {
        Ok(pb::AlarmType::Nospace) => AlarmType::Nospace,
        Ok(pb::AlarmType::Corrupt) => AlarmType::Corrupt,
        _ => AlarmType::None,
    };
    machine::EtcdMemberAlarm {
        member_id: alarm.member_id,
        alarm: kind as i32,
    }
}

impl Node {
    /// `machinehelper.CheckControlplane`.
    pub(super) fn require_control_plane(&self, api: &str) -> Result<(), Status> {
        match self.inner.machine_type() {
            None => Err(Status::unimplemented(format!(
                "machine type is not set, cannot use {api} API"
            ))),
            Some(t) if !t.is_control_plane() => Err(Status::unimplemented(format!(
                "{api} is only available on control plane nodes"
            ))),
            Some(_) => Ok(()),
        }
    }

    pub async fn etcd_member_list(
        &self,
        request: machine::EtcdMemberListRequest,
    ) -> Result<machine::EtcdMemberListResponse, Status> {
        self.require_control_plane("etcd members")?;
        let mut response = self.inner.local_etcd.member_list().await;
        if !request.query_local && response.is_err() {
            // Talos' non-local client spans every control-plane endpoint.
            for peer in self.inner.healthy_peers() {
                if let Ok(list) = peer.local_etcd.member_list().await {
                    response = Ok(list);
                    break;
                }
            }
        }
        let list = response.map_err(|e| etcd_error("failed to list etcd members", e))?;
        let members: Vec<machine::EtcdMember> = list.members.into_iter().map(to_member).collect();
        Ok(machine::EtcdMemberListResponse {
            messages: vec![machine::EtcdMembers {
                metadata: None,
                legacy_members: members.iter().map(|m| m.hostname.clone()).collect(),
                members,
            }],
        })
    }

    pub async fn etcd_status(&self) -> Result<machine::EtcdStatusResponse, Status> {
        self.require_control_plane("etcd status")?;
        let status = self
            .inner
            .local_etcd
            .status()
            .await
            .map_err(|e| etcd_error("failed to get etcd status", e))?;
        let member_id = status
            .header
            .as_ref()
            .map(|h| h.member_id)
            .unwrap_or_default();
        // etcd < 3.6 has no storage version; Talos synthesizes "<major>.<minor>.0".
        let storage_version = {
            let mut parts = status.version.split('.');
            match (parts.next(), parts.next()) {
                (Some(major), Some(minor)) => format!("{major}.{minor}.0"),
                _ => "unknown".to_string(),
            }
        };
        Ok(machine::EtcdStatusResponse {
            messages: vec![machine::EtcdStatus {
                metadata: None,
                member_status: Some(machine::EtcdMemberStatus {
                    protocol_version: status.version,
                    db_size: status.db_size,
                    db_size_in_use: status.db_size_in_use,
                    leader: status.leader,
                    raft_index: status.raft_index,
                    raft_term: status.raft_term,
                    raft_applied_index: status.raft_applied_index,
                    errors: status.errors,
                    is_learner: status.is_learner,
                    member_id,
                    storage_version,
                }),
            }],
        })
    }

    pub async fn etcd_alarm_list(&self) -> Result<machine::EtcdAlarmListResponse, Status> {
        self.require_control_plane("etcd alarm list")?;
        let alarms = self
            .inner
            .local_etcd
            .alarm(pb::alarm_request::AlarmAction::Get, 0, pb::AlarmType::None)
            .await
            .map_err(|e| etcd_error("failed to list etcd alarms", e))?;
        Ok(machine::EtcdAlarmListResponse {
            messages: vec![machine::EtcdAlarm {
                metadata: None,
                member_alarms: alarms.alarms.into_iter().map(to_alarm).collect(),
            }],
        })
    }

    pub async fn etcd_alarm_disarm(&self) -> Result<machine::EtcdAlarmDisarmResponse, Status> {
        self.require_control_plane("etcd alarm disarm")?;
        let client = &self.inner.local_etcd;
        let active = client
            .alarm(pb::alarm_request::AlarmAction::Get, 0, pb::AlarmType::None)
            .await
            .map_err(|e| etcd_error("failed to disarm etcd alarms", e))?;
        let mut disarmed = Vec::new();
        for alarm in active.alarms {
            let kind = pb::AlarmType::try_from(alarm.alarm).unwrap_or(pb::AlarmType::None);
            let response = client
                .alarm(
                    pb::alarm_request::AlarmAction::Deactivate,
                    alarm.member_id,
                    kind,
                )
                .await
                .map_err(|e| etcd_error("failed to disarm etcd alarms", e))?;
            disarmed.extend(response.alarms.into_iter().map(to_alarm));
        }
        Ok(machine::EtcdAlarmDisarmResponse {
            messages: vec![machine::EtcdAlarmDisarm {
                metadata: None,
                member_alarms: disarmed,
            }],
        })
    }

    pub async fn etcd_defragment(&self) -> Result<machine::EtcdDefragmentResponse, Status> {
        self.require_control_plane("etcd defragment")?;
        self.inner
            .local_etcd
            .defragment()
            .await
            .map_err(|e| etcd_error("failed to defragment etcd", e))?;
        Ok(machine::EtcdDefragmentResponse {
            messages: vec![machine::EtcdDefragment { metadata: None }],
        })
    }

    pub async fn etcd_remove_member_by_id(
        &self,
        request: machine::EtcdRemoveMemberByIdRequest,
    ) -> Result<machine::EtcdRemoveMemberByIdResponse, Status> {
        self.require_control_plane("etcd remove member")?;
        let client = self.cluster_client().await?;
        let members = client
            .member_list()
            .await
            .map_err(|e| etcd_error("failed to list etcd members", e))?;
        if !members.members.iter().any(|m| m.id == request.member_id) {
            return Err(Status::not_found(format!(
                "member {:016x} not found",
                request.member_id
            )));
        }
        client
            .member_remove(request.member_id)
            .await
            .map_err(|e| etcd_error("failed to remove member", e))?;
        Ok(machine::EtcdRemoveMemberByIdResponse {
            messages: vec![machine::EtcdRemoveMemberById { metadata: None }],
        })
    }

    pub async fn etcd_leave_cluster(
        &self,
        _request: machine::EtcdLeaveClusterRequest,
    ) -> Result<machine::EtcdLeaveClusterResponse, Status> {
        self.require_control_plane("etcd leave cluster")?;
        let own_id = self
            .inner
            .local_etcd
            .status()
            .await
            .map_err(|e| etcd_error("failed to get etcd status", e))?
            .header
            .map(|h| h.member_id)
            .unwrap_or_default();
        // etcd refuses a removal that would break an active quorum while peers are still
        // connecting ("unhealthy cluster"); Talos retries those (5 min there, shorter here).
        let deadline = tokio::time::Instant::now() + LEAVE_RETRY_FOR;
        loop {
            let client = self.cluster_client().await?;
            match client.member_remove(own_id).await {
                Ok(_) => break,
                Err(status)
                    if (status.message().contains("unhealthy")
                        || status.message().contains("stopped"))
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(status) => return Err(etcd_error("failed to leave cluster", status)),
            }
        }
        self.stop_etcd_service(ServiceState::Finished, "Service finished successfully")
            .await;
        let data_dir = self.inner.volumes.etcd_data();
        wipe_contents(&data_dir)
            .map_err(|e| Status::internal(format!("failed to clean etcd data directory: {e}")))?;
        Ok(machine::EtcdLeaveClusterResponse {
            messages: vec![machine::EtcdLeaveCluster { metadata: None }],
        })
    }

    pub async fn etcd_forfeit_leadership(
        &self,
        _request: machine::EtcdForfeitLeadershipRequest,
    ) -> Result<machine::EtcdForfeitLeadershipResponse, Status> {
        self.require_control_plane("etcd forfeit leadership")?;
        let client = &self.inner.local_etcd;
        let status = client
            .status()
            .await
            .map_err(|e| etcd_error("failed to get etcd status", e))?;
        let own_id = status.header.map(|h| h.member_id).unwrap_or_default();
        let mut member = String::new();
        if status.leader == own_id {
            let members = client
                .member_list()
                .await
                .map_err(|e| etcd_error("failed to list etcd members", e))?
                .members;
            let target = members
                .into_iter()
                .find(|m| m.id != own_id && !m.is_learner && !m.name.is_empty())
                .ok_or_else(|| {
                    Status::failed_precondition("no other voting member to transfer leadership to")
                })?;
            client
                .move_leader(target.id)
                .await
                .map_err(|e| etcd_error("failed to move leadership", e))?;
            member = target.name;
        }
        Ok(machine::EtcdForfeitLeadershipResponse {
            messages: vec![machine::EtcdForfeitLeadership {
                metadata: None,
                member,
            }],
        })
    }

    /// A client to any reachable member: the local one first, then the others.
    async fn cluster_client(&self) -> Result<super::EtcdClient, Status> {
        if self.inner.services.is_healthy(ETCD) {
            return Ok(self.inner.local_etcd.clone());
        }
        if let Some(peer) = self.inner.healthy_peers().first() {
            return Ok(peer.local_etcd.clone());
        }
        Ok(self.inner.local_etcd.clone())
    }
}
