//! An in-process Talos API server over mTLS, built from talos-api's server traits. It answers the
//! health calls with fixed values and records the `node` metadata and client certificate of
//! every call, so tests can see what went over the wire.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use talos_api::common;
use talos_api::cosi::resource as cosi;
use talos_api::cosi::resource::state_server::{State, StateServer};
use talos_api::machine::machine_service_server::{MachineService, MachineServiceServer};
use talos_api::machine::*;
use talos_api::resource::config::{MachineType, MachineTypeSpec};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use crate::pki::TestPki;

type Stream<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;
type Reply<T> = Result<Response<T>, Status>;

/// One call as the server saw it.
#[derive(Debug, Clone)]
pub struct SeenCall {
    pub method: &'static str,
    pub node: Option<String>,
    pub client_certs: usize,
}

#[derive(Clone, Default)]
pub struct Recorder {
    calls: Arc<Mutex<Vec<SeenCall>>>,
}

impl Recorder {
    fn record<T>(&self, method: &'static str, request: &Request<T>) {
        let node = request
            .metadata()
            .get("node")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let client_certs = request.peer_certs().map_or(0, |c| c.len());
        self.calls.lock().expect("lock").push(SeenCall {
            method,
            node,
            client_certs,
        });
    }

    pub fn calls(&self) -> Vec<SeenCall> {
        self.calls.lock().expect("lock").clone()
    }
}

pub struct TlsNode {
    pub address: std::net::SocketAddr,
    pub recorder: Recorder,
    server: JoinHandle<()>,
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts a Talos API server on `ip` (a loopback address) and a free port, with a server
/// certificate from `pki` and client certificates required to chain to `pki`'s CA.
pub async fn start(pki: &TestPki, ip: &str) -> TlsNode {
    let server_pair = pki.server(&[ip]);
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&server_pair.crt, &server_pair.key))
        .client_ca_root(Certificate::from_pem(pki.ca_pem()));
    let listener = TcpListener::bind((ip, 0)).await.expect("bind loopback");
    let address = listener.local_addr().expect("addr");
    let recorder = Recorder::default();
    let machine = Node {
        recorder: recorder.clone(),
    };
    let state = Node {
        recorder: recorder.clone(),
    };
    let router = Server::builder()
        .tls_config(tls)
        .expect("server tls")
        .add_service(MachineServiceServer::new(machine))
        .add_service(StateServer::new(state));
    let server = tokio::spawn(async move {
        // Handshake failures end single connections, not the server.
        let _ = router
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    });
    TlsNode {
        address,
        recorder,
        server,
    }
}

struct Node {
    recorder: Recorder,
}

fn unused<T>() -> Reply<T> {
    Err(Status::unimplemented("not part of this test server"))
}

pub const MEMBER_ID: u64 = 0xfeed;

#[tonic::async_trait]
impl MachineService for Node {
    type CopyStream = Stream<common::Data>;
    type DmesgStream = Stream<common::Data>;
    type EventsStream = Stream<Event>;
    type EtcdSnapshotStream = Stream<common::Data>;
    type ReadStream = Stream<common::Data>;

    async fn version(&self, request: Request<()>) -> Reply<VersionResponse> {
        self.recorder.record("Version", &request);
        Ok(Response::new(VersionResponse {
            messages: vec![Version {
                metadata: None,
                version: Some(VersionInfo {
                    tag: "v1.11.5".into(),
                    ..Default::default()
                }),
                platform: None,
                features: None,
            }],
        }))
    }

    async fn service_list(&self, request: Request<()>) -> Reply<ServiceListResponse> {
        self.recorder.record("ServiceList", &request);
        Ok(Response::new(ServiceListResponse {
            messages: vec![ServiceList {
                metadata: None,
                services: vec![ServiceInfo {
                    id: "etcd".into(),
                    state: "Running".into(),
                    events: None,
                    health: Some(ServiceHealth {
                        unknown: false,
                        healthy: true,
                        last_message: String::new(),
                        last_change: None,
                    }),
                }],
            }],
        }))
    }

    async fn etcd_member_list(
        &self,
        request: Request<EtcdMemberListRequest>,
    ) -> Reply<EtcdMemberListResponse> {
        self.recorder.record("EtcdMemberList", &request);
        if !request.get_ref().query_local {
            return Err(Status::invalid_argument(
                "the console must ask the local member",
            ));
        }
        Ok(Response::new(EtcdMemberListResponse {
            messages: vec![EtcdMembers {
                metadata: None,
                legacy_members: vec![],
                members: vec![EtcdMember {
                    id: MEMBER_ID,
                    hostname: "cp-1".into(),
                    peer_urls: vec!["https://127.0.0.1:2380".into()],
                    client_urls: vec!["https://127.0.0.1:2379".into()],
                    is_learner: false,
                }],
            }],
        }))
    }

    async fn etcd_status(&self, request: Request<()>) -> Reply<EtcdStatusResponse> {
        self.recorder.record("EtcdStatus", &request);
        Ok(Response::new(EtcdStatusResponse {
            messages: vec![EtcdStatus {
                metadata: None,
                member_status: Some(EtcdMemberStatus {
                    member_id: MEMBER_ID,
                    leader: MEMBER_ID,
                    protocol_version: "3.5.0".into(),
                    ..Default::default()
                }),
            }],
        }))
    }

    async fn etcd_alarm_list(&self, request: Request<()>) -> Reply<EtcdAlarmListResponse> {
        self.recorder.record("EtcdAlarmList", &request);
        Ok(Response::new(EtcdAlarmListResponse { messages: vec![] }))
    }

    async fn apply_configuration(
        &self,
        _: Request<ApplyConfigurationRequest>,
    ) -> Reply<ApplyConfigurationResponse> {
        unused()
    }
    async fn bootstrap(&self, _: Request<BootstrapRequest>) -> Reply<BootstrapResponse> {
        unused()
    }
    async fn copy(&self, _: Request<CopyRequest>) -> Reply<Self::CopyStream> {
        unused()
    }
    async fn dmesg(&self, _: Request<DmesgRequest>) -> Reply<Self::DmesgStream> {
        unused()
    }
    async fn events(&self, _: Request<EventsRequest>) -> Reply<Self::EventsStream> {
        unused()
    }
    async fn etcd_remove_member_by_id(
        &self,
        _: Request<EtcdRemoveMemberByIdRequest>,
    ) -> Reply<EtcdRemoveMemberByIdResponse> {
        unused()
    }
    async fn etcd_leave_cluster(
        &self,
        _: Request<EtcdLeaveClusterRequest>,
    ) -> Reply<EtcdLeaveClusterResponse> {
        unused()
    }
    async fn etcd_forfeit_leadership(
        &self,
        _: Request<EtcdForfeitLeadershipRequest>,
    ) -> Reply<EtcdForfeitLeadershipResponse> {
        unused()
    }
    async fn etcd_recover(
        &self,
        _: Request<Streaming<common::Data>>,
    ) -> Reply<EtcdRecoverResponse> {
        unused()
    }
    async fn etcd_snapshot(
        &self,
        _: Request<EtcdSnapshotRequest>,
    ) -> Reply<Self::EtcdSnapshotStream> {
        unused()
    }
    async fn etcd_alarm_disarm(&self, _: Request<()>) -> Reply<EtcdAlarmDisarmResponse> {
        unused()
    }
    async fn etcd_defragment(&self, _: Request<()>) -> Reply<EtcdDefragmentResponse> {
        unused()
    }
    async fn generate_client_configuration(
        &self,
        _: Request<GenerateClientConfigurationRequest>,
    ) -> Reply<GenerateClientConfigurationResponse> {
        unused()
    }
    async fn read(&self, _: Request<ReadRequest>) -> Reply<Self::ReadStream> {
        unused()
    }
    async fn reboot(&self, _: Request<RebootRequest>) -> Reply<RebootResponse> {
        unused()
    }
    async fn reset(&self, _: Request<ResetRequest>) -> Reply<ResetResponse> {
        unused()
    }
}

#[tonic::async_trait]
impl State for Node {
    type ListStream = Stream<cosi::ListResponse>;
    type WatchStream = Stream<cosi::WatchResponse>;

    async fn get(&self, request: Request<cosi::GetRequest>) -> Reply<cosi::GetResponse> {
        self.recorder.record("Get", &request);
        let get = request.get_ref();
        if (get.namespace.as_str(), get.r#type.as_str(), get.id.as_str())
            != ("config", "MachineTypes.config.talos.dev", "machine-type")
        {
            return Err(Status::not_found("no such resource"));
        }
        let spec = MachineTypeSpec {
            machine_type: MachineType::ControlPlane as i32,
        };
        Ok(Response::new(cosi::GetResponse {
            resource: Some(cosi::Resource {
                metadata: None,
                spec: Some(cosi::Spec {
                    proto_spec: prost::Message::encode_to_vec(&spec),
                    yaml_spec: "controlplane".into(),
                }),
            }),
        }))
    }
    async fn list(&self, _: Request<cosi::ListRequest>) -> Reply<Self::ListStream> {
        unused()
    }
    async fn create(&self, _: Request<cosi::CreateRequest>) -> Reply<cosi::CreateResponse> {
        unused()
    }
    async fn update(&self, _: Request<cosi::UpdateRequest>) -> Reply<cosi::UpdateResponse> {
        unused()
    }
    async fn destroy(&self, _: Request<cosi::DestroyRequest>) -> Reply<cosi::DestroyResponse> {
        unused()
    }
    async fn watch(&self, _: Request<cosi::WatchRequest>) -> Reply<Self::WatchStream> {
        unused()
    }
    async fn teardown(&self, _: Request<cosi::TeardownRequest>) -> Reply<cosi::TeardownResponse> {
        unused()
    }
    async fn teardown_and_destroy(
        &self,
        _: Request<cosi::TeardownAndDestroyRequest>,
    ) -> Reply<cosi::TeardownAndDestroyResponse> {
        unused()
    }
}
