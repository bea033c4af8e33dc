//! A scriptable Talos cluster behind `TalosApi`: each node answers from a table the test edits.
//! It also implements `TalosRecoveryApi`, recording every call (see `recovery`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use talos_dr::talos::{TalosApi, TalosError};
use talos_dr_shared::recovery::EtcdDataVolume;
use talos_dr_shared::{
    EtcdAlarm, EtcdMember, EtcdMemberStatus, EtcdService, MachineType, ServiceHealth, ServiceState,
    format_member_id,
};

/// What one fake node answers to each call.
#[derive(Debug, Clone)]
pub struct FakeNode {
    pub version: Result<String, TalosError>,
    pub machine_type: Result<MachineType, TalosError>,
    pub service: Result<Option<EtcdService>, TalosError>,
    pub members: Result<Vec<EtcdMember>, TalosError>,
    pub status: Result<EtcdMemberStatus, TalosError>,
    pub alarms: Result<Vec<EtcdAlarm>, TalosError>,
    /// Where the node keeps etcd's data (its VolumeStatus `ETCD`).
    pub etcd_volume: Result<EtcdDataVolume, TalosError>,
    /// The node's machine config as an admin reads it; `None`: reads refused like a client
    /// without that call.
    pub machine_config: Option<Vec<u8>>,
    /// Never answer at all (a node that accepts the connection and stalls).
    pub hang: bool,
}

mod recorded;
mod recovery;

pub use recorded::{RecoveryCall, RecoveryCallKind, Script};

#[derive(Debug, Default)]
pub struct FakeTalos {
    nodes: Mutex<BTreeMap<String, FakeNode>>,
    recovery: recovery::RecoveryFake,
}

pub fn node_name(n: u8) -> String {
    format!("10.0.0.{n}")
}

pub fn member(n: u8) -> EtcdMember {
    EtcdMember {
        id: format_member_id(0x1000 + u64::from(n)),
        hostname: format!("cp-{n}"),
        peer_urls: vec![format!("https://10.0.0.{n}:2380")],
        client_urls: vec![format!("https://10.0.0.{n}:2379")],
        is_learner: false,
    }
}

fn running_etcd() -> EtcdService {
    EtcdService {
        state: ServiceState::Running,
        health: ServiceHealth::Healthy,
        health_message: String::new(),
        events: vec![],
    }
}

impl FakeTalos {
    /// `size` healthy control-plane nodes 10.0.0.1..; member 1 leads.
    pub fn healthy_cluster(size: u8) -> Arc<Self> {
        let members: Vec<EtcdMember> = (1..=size).map(member).collect();
        let nodes = (1..=size)
            .map(|n| {
                let node = FakeNode {
                    version: Ok("v1.11.2".into()),
                    machine_type: Ok(MachineType::Controlplane),
                    service: Ok(Some(running_etcd())),
                    members: Ok(members.clone()),
                    status: Ok(EtcdMemberStatus {
                        member_id: member(n).id,
                        leader: member(1).id,
                        protocol_version: "3.5.0".into(),
                        storage_version: "3.5.0".into(),
                        db_size: 4096,
                        db_size_in_use: 2048,
                        raft_index: 100,
                        raft_term: 2,
                        raft_applied_index: 100,
                        is_learner: false,
                        errors: vec![],
                    }),
                    alarms: Ok(vec![]),
                    etcd_volume: Ok(EtcdDataVolume::Directory),
                    machine_config: None,
                    hang: false,
                };
                (node_name(n), node)
            })
            .collect();
        Arc::new(Self {
            nodes: Mutex::new(nodes),
            recovery: Default::default(),
        })
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.lock().expect("lock").keys().cloned().collect()
    }

    pub fn update(&self, node: &str, change: impl FnOnce(&mut FakeNode)) {
        let mut nodes = self.nodes.lock().expect("lock");
        change(nodes.get_mut(node).expect("fake node exists"));
    }

    /// etcd on `node` crashed: the service failed and every etcd call is refused.
    pub fn stop_etcd(&self, node: &str) {
        self.update(node, |n| {
            let refused = TalosError::Refused("etcd not running (connection refused)".into());
            n.service = Ok(Some(EtcdService {
                state: ServiceState::Failed,
                ..running_etcd()
            }));
            n.members = Err(refused.clone());
            n.status = Err(refused.clone());
            n.alarms = Err(refused);
        });
    }

    /// The node's Talos API is gone: every call fails to connect.
    pub fn cut_off(&self, node: &str) {
        self.update(node, |n| {
            let down = TalosError::Unreachable("connection refused".into());
            n.version = Err(down.clone());
            n.machine_type = Err(down.clone());
            n.service = Err(down.clone());
            n.members = Err(down.clone());
            n.status = Err(down.clone());
            n.etcd_volume = Err(down.clone());
            n.alarms = Err(down);
        });
    }

    fn answer<T>(
        &self,
        node: &str,
        pick: impl FnOnce(&FakeNode) -> Result<T, TalosError>,
    ) -> Option<Result<T, TalosError>> {
        let nodes = self.nodes.lock().expect("lock");
        match nodes.get(node) {
            None => Some(Err(TalosError::Unreachable("no such node".into()))),
            Some(n) if n.hang => None,
            Some(n) => Some(pick(n)),
        }
    }

    async fn reply<T>(
        &self,
        node: &str,
        pick: impl FnOnce(&FakeNode) -> Result<T, TalosError>,
    ) -> Result<T, TalosError> {
        match self.answer(node, pick) {
            Some(result) => result,
            None => std::future::pending().await,
        }
    }
}

#[async_trait]
impl TalosApi for FakeTalos {
    async fn version(&self, node: &str) -> Result<String, TalosError> {
        self.reply(node, |n| n.version.clone()).await
    }
    async fn machine_type(&self, node: &str) -> Result<MachineType, TalosError> {
        self.reply(node, |n| n.machine_type.clone()).await
    }
    async fn etcd_service(&self, node: &str) -> Result<Option<EtcdService>, TalosError> {
        self.reply(node, |n| n.service.clone()).await
    }
    async fn etcd_members(&self, node: &str) -> Result<Vec<EtcdMember>, TalosError> {
        self.reply(node, |n| n.members.clone()).await
    }
    async fn etcd_status(&self, node: &str) -> Result<EtcdMemberStatus, TalosError> {
        self.reply(node, |n| n.status.clone()).await
    }
    async fn etcd_alarms(&self, node: &str) -> Result<Vec<EtcdAlarm>, TalosError> {
        self.reply(node, |n| n.alarms.clone()).await
    }
    async fn etcd_data_volume(&self, node: &str) -> Result<EtcdDataVolume, TalosError> {
        self.reply(node, |n| n.etcd_volume.clone()).await
    }
    async fn machine_config(&self, node: &str) -> Result<Vec<u8>, TalosError> {
        self.reply(node, |n| {
            n.machine_config.clone().ok_or_else(|| {
                TalosError::Refused("machine config reads are not supported by this client".into())
            })
        })
        .await
    }
}
