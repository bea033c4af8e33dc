//! A small client for one etcd member's real gRPC API.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

#[allow(
    clippy::all,
    clippy::unwrap_used,
    rust_2018_idioms,
    unused_qualifications,
    non_snake_case
)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

use pb::cluster_client::ClusterClient;
use pb::kv_client::KvClient;
use pb::lease_client::LeaseClient;
use pb::maintenance_client::MaintenanceClient;

/// Unary calls give up after this; etcd answers in milliseconds on loopback.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct EtcdClient {
    channel: Channel,
}

impl EtcdClient {
    /// Lazily connected: a member that is down just makes calls fail fast.
    pub fn new(url: &str) -> Result<Self, Status> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| Status::internal(format!("invalid etcd endpoint {url}: {e}")))?
            .connect_timeout(Duration::from_millis(500));
        Ok(Self {
            channel: endpoint.connect_lazy(),
        })
    }

    fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel.clone())
    }
    fn cluster(&self) -> ClusterClient<Channel> {
        ClusterClient::new(self.channel.clone())
    }
    pub fn maintenance(&self) -> MaintenanceClient<Channel> {
        MaintenanceClient::new(self.channel.clone())
            .max_decoding_message_size(talos_api::MAX_MESSAGE_SIZE)
    }

    /// etcd's `hasleader` metadata: fail instead of answering from a member without a leader
    /// (clientv3 `WithRequireLeader`, which Talos uses for membership calls).
    fn require_leader<T>(message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.metadata_mut().insert(
            "hasleader",
            tonic::metadata::MetadataValue::from_static("true"),
        );
        request.set_timeout(CALL_TIMEOUT);
        request
    }

    fn timed<T>(message: T, timeout: Duration) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(timeout);
        request
    }

    /// Talos' health check: a linearizable (quorum) read of key `health`.
    pub async fn quorum_read_health(&self, timeout: Duration) -> Result<(), Status> {
        let request = pb::RangeRequest {
            key: b"health".to_vec(),
            ..Default::default()
        };
        within(timeout, self.kv().range(Self::timed(request, timeout)))
            .await
            .map(|_| ())
    }

    pub async fn put(&self, key: &str, value: &[u8], lease: i64) -> Result<(), Status> {
        let request = pb::PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.to_vec(),
            lease,
            ..Default::default()
        };
        within(
            CALL_TIMEOUT,
            self.kv().put(Self::timed(request, CALL_TIMEOUT)),
        )
        .await
        .map(|_| ())
    }

    pub async fn lease_grant(&self, ttl_seconds: i64) -> Result<i64, Status> {
        let request = pb::LeaseGrantRequest {
            ttl: ttl_seconds,
            id: 0,
        };
        let response = within(
            CALL_TIMEOUT,
            LeaseClient::new(self.channel.clone()).lease_grant(Self::timed(request, CALL_TIMEOUT)),
        )
        .await?;
        Ok(response.id)
    }

    pub async fn member_list(&self) -> Result<pb::MemberListResponse, Status> {
        within(
            CALL_TIMEOUT,
            self.cluster()
                .member_list(Self::require_leader(pb::MemberListRequest {})),
        )
        .await
    }

    pub async fn member_add_learner(
        &self,
        peer_url: &str,
    ) -> Result<pb::MemberAddResponse, Status> {
        let request = pb::MemberAddRequest {
            peer_ur_ls: vec![peer_url.to_string()],
            is_learner: true,
        };
        within(
            CALL_TIMEOUT,
            self.cluster().member_add(Self::require_leader(request)),
        )
        .await
    }

    pub async fn member_remove(&self, id: u64) -> Result<pb::MemberRemoveResponse, Status> {
        within(
            CALL_TIMEOUT,
            self.cluster()
                .member_remove(Self::require_leader(pb::MemberRemoveRequest { id })),
        )
        .await
    }

    pub async fn member_promote(&self, id: u64) -> Result<pb::MemberPromoteResponse, Status> {
        within(
            CALL_TIMEOUT,
            self.cluster()
                .member_promote(Self::require_leader(pb::MemberPromoteRequest { id })),
        )
        .await
    }

    pub async fn status(&self) -> Result<pb::StatusResponse, Status> {
        within(
            CALL_TIMEOUT,
            self.maintenance()
                .status(Self::timed(pb::StatusRequest {}, CALL_TIMEOUT)),
        )
        .await
    }

    pub async fn alarm(
        &self,
        action: pb::alarm_request::AlarmAction,
        member_id: u64,
        alarm: pb::AlarmType,
    ) -> Result<pb::AlarmResponse, Status> {
        let request = pb::AlarmRequest {
            action: action as i32,
            member_id,
            alarm: alarm as i32,
        };
        within(
            CALL_TIMEOUT,
            self.maintenance().alarm(Self::timed(request, CALL_TIMEOUT)),
        )
        .await
    }

    pub async fn defragment(&self) -> Result<(), Status> {
        let timeout = Duration::from_secs(30);
        within(
            timeout,
            self.maintenance()
                .defragment(Self::timed(pb::DefragmentRequest {}, timeout)),
        )
        .await
        .map(|_| ())
    }

    pub async fn move_leader(&self, target_id: u64) -> Result<(), Status> {
        let timeout = Duration::from_secs(10);
        within(
            timeout,
            self.maintenance()
                .move_leader(Self::timed(pb::MoveLeaderRequest { target_id }, timeout)),
        )
        .await
        .map(|_| ())
    }

    pub async fn snapshot(&self) -> Result<tonic::Streaming<pb::SnapshotResponse>, Status> {
        within(
            CALL_TIMEOUT,
            self.maintenance()
                .snapshot(Request::new(pb::SnapshotRequest {})),
        )
        .await
    }
}

async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(status),
        Err(_) => Err(Status::deadline_exceeded("context deadline exceeded")),
    }
}
