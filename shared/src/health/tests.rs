//! The verdict for every case the evidence board names.

use super::verdict::url_host;
use super::*;

fn member(n: u8) -> EtcdMember {
    EtcdMember {
        id: format_member_id(0xa0 + u64::from(n)),
        hostname: format!("cp-{n}"),
        peer_urls: vec![format!("http://127.0.0.{n}:2380")],
        client_urls: vec![format!("http://127.0.0.{n}:2379")],
        is_learner: false,
    }
}

fn healthy_node(n: u8, members: &[EtcdMember]) -> NodeHealth {
    NodeHealth {
        node: format!("127.0.0.{n}"),
        reachable: true,
        talos_version: Some("v1.11.0".into()),
        machine_type: Some(MachineType::Controlplane),
        etcd_service: Some(EtcdService {
            state: ServiceState::Running,
            health: ServiceHealth::Healthy,
            health_message: String::new(),
            events: vec![],
        }),
        members: Some(members.to_vec()),
        etcd_status: Some(EtcdMemberStatus {
            member_id: format_member_id(0xa0 + u64::from(n)),
            leader: format_member_id(0xa2),
            protocol_version: "3.4.0".into(),
            storage_version: "3.4.0".into(),
            db_size: 1,
            db_size_in_use: 1,
            raft_index: 1,
            raft_term: 1,
            raft_applied_index: 1,
            is_learner: false,
            errors: vec![],
        }),
        alarms: vec![],
        failures: vec![],
        polled_at_ms: 0,
        latency_ms: 1,
    }
}

fn service(n: &mut NodeHealth) -> &mut EtcdService {
    n.etcd_service
        .as_mut()
        .expect("the node reports its etcd service")
}

fn status(n: &mut NodeHealth) -> &mut EtcdMemberStatus {
    n.etcd_status
        .as_mut()
        .expect("the node reports etcd status")
}

fn cluster() -> (Vec<EtcdMember>, Vec<NodeHealth>) {
    let members: Vec<_> = (2..=4).map(member).collect();
    let nodes = (2..=4).map(|n| healthy_node(n, &members)).collect();
    (members, nodes)
}

#[test]
fn all_healthy() {
    let (_, nodes) = cluster();
    let (members, v) = assess(&nodes, &[]);
    assert_eq!(v.level, VerdictLevel::Healthy, "{v:?}");
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| m.state == MemberState::Healthy));
    assert_eq!(members.iter().filter(|m| m.is_leader).count(), 1);
    assert_eq!(members[0].node.as_deref(), Some("127.0.0.2"));
    assert_eq!(
        v.summary,
        "healthy: 3 members, 3 healthy, quorum needs 2: holds, survives one more failure"
    );
}

#[test]
fn one_etcd_killed_is_degraded() {
    let (_, mut nodes) = cluster();
    nodes[1].etcd_status = None;
    nodes[1].members = None;
    nodes[1].failures.push(CallFailure {
        call: "EtcdStatus".into(),
        message: "connection refused".into(),
    });
    let (members, v) = assess(&nodes, &[]);
    assert_eq!(v.level, VerdictLevel::Degraded);
    assert_eq!(members[1].state, MemberState::Unhealthy);
    assert!(
        members[1]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("connection refused")
    );
    assert_eq!(v.quorum.healthy, 2);
}

#[test]
fn two_killed_is_restorable_even_without_member_lists() {
    let (remembered, mut nodes) = cluster();
    for n in &mut nodes {
        n.members = None;
    }
    for n in &mut nodes[1..] {
        n.etcd_status = None;
        if let Some(s) = &mut n.etcd_service {
            s.state = ServiceState::Failed;
        }
    }
    service(&mut nodes[0]).health = ServiceHealth::Unhealthy;
    // The survivor's etcd runs but has lost its leader.
    status(&mut nodes[0]).leader = format_member_id(0);
    let (members, v) = assess(&nodes, &remembered);
    assert_eq!(v.level, VerdictLevel::QuorumRestorable, "{v:?}");
    assert_eq!(members.len(), 3);
    assert_eq!(v.quorum_words, "3 members, 1 healthy, quorum needs 2: lost");
    assert_eq!(
        v.next_move,
        "bring back 1 of: cp-3 (127.0.0.3), cp-4 (127.0.0.4); start etcd there or reboot the node, its data rejoins the quorum (no snapshot restore needed)"
    );
}

#[test]
fn unreachable_nodes_make_it_unknown_not_lost() {
    let (remembered, mut nodes) = cluster();
    for n in &mut nodes[1..] {
        *n = NodeHealth {
            reachable: false,
            members: None,
            etcd_status: None,
            etcd_service: None,
            ..n.clone()
        };
    }
    nodes[0].members = None;
    let (_, v) = assess(&nodes, &remembered);
    assert_eq!(v.level, VerdictLevel::Unknown);
    assert_eq!(v.unknown, 2);
}

#[test]
fn disagreeing_lists_and_alarms_degrade() {
    let (members, mut nodes) = cluster();
    nodes[2].members = Some(members[..2].to_vec());
    nodes[0].alarms.push(EtcdAlarm {
        member_id: members[0].id.clone(),
        alarm: AlarmType::Nospace,
    });
    let (_, v) = assess(&nodes, &[]);
    assert_eq!(v.level, VerdictLevel::Degraded);
    assert!(
        v.reasons.iter().any(|r| r.contains("disagree")),
        "{:?}",
        v.reasons
    );
    assert!(
        v.reasons.iter().any(|r| r.contains("NOSPACE")),
        "{:?}",
        v.reasons
    );
}

#[test]
fn learners_do_not_vote() {
    let (mut members, _) = cluster();
    members[2].is_learner = true;
    let nodes: Vec<_> = (2..=4).map(|n| healthy_node(n, &members)).collect();
    let (_, v) = assess(&nodes, &[]);
    assert_eq!(v.quorum.voters, 2);
}

#[test]
fn url_hosts() {
    assert_eq!(url_host("https://127.0.0.2:2380"), "127.0.0.2");
    assert_eq!(url_host("http://[::1]:2379"), "::1");
    assert_eq!(url_host("cp-1"), "cp-1");
}

#[test]
fn health_round_trips_as_json() {
    let (_, nodes) = cluster();
    let h = ClusterHealth::build("prod".into(), 5, nodes, &[]);
    let json = serde_json::to_string(&h).expect("serializes");
    let back: ClusterHealth = serde_json::from_str(&json).expect("parses");
    assert_eq!(h, back);
    assert!(json.contains("\"level\":\"healthy\""));
}

fn kinds(v: &HealthVerdict) -> Vec<FindingKind> {
    v.findings.iter().map(|f| f.kind).collect()
}

#[test]
fn healthy_and_degraded_quorum_words() {
    let (_, mut nodes) = cluster();
    let (_, v) = assess(&nodes, &[]);
    assert_eq!(
        v.quorum_words,
        "3 members, 3 healthy, quorum needs 2: holds, survives one more failure"
    );
    assert_eq!(v.next_move, "nothing to fix; keep taking etcd snapshots");
    assert!(v.findings.is_empty(), "{:?}", v.findings);
    nodes[2].etcd_status = None;
    service(&mut nodes[2]).state = ServiceState::Failed;
    let (_, v) = assess(&nodes, &[]);
    assert_eq!(v.level, VerdictLevel::Degraded);
    assert_eq!(
        v.quorum_words,
        "3 members, 2 healthy, quorum needs 2: holds, one more failure loses it"
    );
    assert_eq!(
        v.next_move,
        "quorum holds: fix the broken member cp-4 (127.0.0.4): etcd service on 127.0.0.4 is Failed"
    );
}

#[test]
fn wiped_members_need_full_recovery() {
    let (remembered, mut nodes) = cluster();
    for n in &mut nodes {
        n.members = None;
    }
    status(&mut nodes[0]).leader = format_member_id(0);
    service(&mut nodes[0]).health = ServiceHealth::Unhealthy;
    for n in &mut nodes[1..] {
        n.etcd_status = None;
        service(n).state = ServiceState::Preparing;
    }
    let (members, v) = assess(&nodes, &remembered);
    assert_eq!(v.level, VerdictLevel::FullRecoveryNeeded, "{v:?}");
    assert_eq!(v.quorum_words, "3 members, 1 healthy, quorum needs 2: lost");
    assert!(
        v.next_move.starts_with(
            "restore from the latest etcd snapshot: quorum needs 2, only 1 can come back"
        ),
        "{}",
        v.next_move
    );
    assert!(
        members[1]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("data directory is empty")
    );
    assert!(kinds(&v).contains(&FindingKind::NoLeader));
}

#[test]
fn one_restorable_and_one_unreachable_is_unknown_until_reached() {
    let (remembered, mut nodes) = cluster();
    for n in &mut nodes {
        n.members = None;
        n.etcd_status = None;
    }
    service(&mut nodes[0]).state = ServiceState::Preparing;
    service(&mut nodes[1]).state = ServiceState::Preparing;
    nodes[2] = NodeHealth {
        reachable: false,
        etcd_service: None,
        ..nodes[2].clone()
    };
    let (_, v) = assess(&nodes, &remembered);
    assert_eq!(
        v.level,
        VerdictLevel::FullRecoveryNeeded,
        "two wiped of three cannot be outvoted: {v:?}"
    );
    service(&mut nodes[1]).state = ServiceState::Waiting;
    let (_, v) = assess(&nodes, &remembered);
    assert_eq!(v.level, VerdictLevel::Unknown, "{v:?}");
    assert_eq!(
        v.quorum_words,
        "3 members, 0 healthy, 1 cannot be asked, quorum needs 2: cannot tell"
    );
    assert_eq!(
        v.next_move,
        "reach 127.0.0.4 before deciding: their members may still vote"
    );
}

#[test]
fn split_member_list_names_who_sees_what() {
    let (members, mut nodes) = cluster();
    // 127.0.0.4 was bootstrapped again: it runs a one-member cluster of its own.
    let stray = EtcdMember {
        id: format_member_id(0xff),
        ..members[2].clone()
    };
    nodes[2].members = Some(vec![stray.clone()]);
    status(&mut nodes[2]).member_id = stray.id.clone();
    status(&mut nodes[2]).leader = stray.id.clone();
    let (out, v) = assess(&nodes, &[]);
    assert_eq!(v.level, VerdictLevel::Degraded, "{v:?}");
    assert_eq!(
        v.findings[0].words,
        "member lists disagree: 127.0.0.2 sees 3 (cp-2, cp-3, cp-4); 127.0.0.3 sees 3 (cp-2, cp-3, cp-4); 127.0.0.4 sees 1 (cp-4)"
    );
    let k = kinds(&v);
    for want in [
        FindingKind::SplitMemberLists,
        FindingKind::UnknownMember,
        FindingKind::ExtraMember,
        FindingKind::LeaderDisagreement,
    ] {
        assert!(k.contains(&want), "{want:?} missing from {k:?}");
    }
    let cp4 = out
        .iter()
        .find(|m| m.member.hostname == "cp-4")
        .expect("cp-4 listed");
    assert_eq!(cp4.state, MemberState::Unhealthy);
    assert!(
        cp4.reason
            .as_deref()
            .unwrap_or("")
            .contains("runs member 00000000000000ff"),
        "{cp4:?}"
    );
    assert_eq!(
        v.quorum_words,
        "3 members, 2 healthy, quorum needs 2: holds, one more failure loses it"
    );
    assert!(
        v.next_move.starts_with("quorum holds: fix the split"),
        "{}",
        v.next_move
    );
}

#[test]
fn learner_no_leader_and_memberless_machine_are_findings() {
    let (mut members, _) = cluster();
    members[2].is_learner = true;
    let ghost = EtcdMember {
        id: format_member_id(0xee),
        hostname: "cp-9".into(),
        peer_urls: vec!["http://10.9.9.9:2380".into()],
        client_urls: vec![],
        is_learner: false,
    };
    members.push(ghost);
    let mut nodes: Vec<_> = (2..=4).map(|n| healthy_node(n, &members)).collect();
    status(&mut nodes[1]).leader = format_member_id(0);
    let (_, v) = assess(&nodes, &[]);
    let k = kinds(&v);
    assert!(k.contains(&FindingKind::Learner), "{k:?}");
    assert!(k.contains(&FindingKind::NoLeader), "{k:?}");
    assert!(k.contains(&FindingKind::MemberWithoutMachine), "{k:?}");
    assert!(
        v.findings
            .iter()
            .any(|f| f.words == "127.0.0.3 sees no leader"),
        "{:?}",
        v.findings
    );
    assert!(v.findings.iter().any(|f| {
        f.words
            .starts_with("member cp-9 (00000000000000ee) has no machine")
    }));
    assert!(
        v.quorum_words
            .starts_with("3 members (plus 1 learner), 2 healthy"),
        "{}",
        v.quorum_words
    );
}

#[test]
fn alarms_are_reported_once_with_their_member_and_fix() {
    let (members, mut nodes) = cluster();
    for n in nodes.iter_mut().rev() {
        n.alarms.push(EtcdAlarm {
            member_id: members[1].id.clone(),
            alarm: AlarmType::Nospace,
        });
    }
    nodes[0].machine_type = Some(MachineType::Init);
    let (_, v) = assess(&nodes, &[]);
    assert_eq!(v.level, VerdictLevel::Degraded);
    let alarms: Vec<&Finding> = v
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Alarm)
        .collect();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(
        alarms[0].words,
        "NOSPACE alarm on member 00000000000000a3 on cp-3 (127.0.0.3): etcd accepts only reads and deletes until space is freed and the alarm disarmed"
    );
    assert!(kinds(&v).contains(&FindingKind::InitMachineType));
    assert_eq!(
        v.next_move,
        "quorum holds: fix the alarm: free space on member 00000000000000a3 (talosctl -n 127.0.0.3 etcd defrag), then talosctl -n 127.0.0.3 etcd alarm disarm"
    );
}

#[test]
fn verdict_levels_serialize_in_snake_case() {
    let json = serde_json::to_string(&[
        VerdictLevel::QuorumRestorable,
        VerdictLevel::FullRecoveryNeeded,
    ])
    .expect("serializes");
    assert_eq!(json, r#"["quorum_restorable","full_recovery_needed"]"#);
    assert_eq!(
        VerdictLevel::FullRecoveryNeeded.as_str(),
        "full recovery needed"
    );
}

#[test]
fn a_node_bootstrapped_again_keeps_its_member_id_but_not_its_cluster() {
    let (members, mut nodes) = cluster();
    nodes[2].members = Some(vec![members[2].clone()]);
    status(&mut nodes[2]).leader = members[2].id.clone();
    let (out, v) = assess(&nodes, &[]);
    assert_eq!(v.level, VerdictLevel::Degraded, "{v:?}");
    assert_eq!(v.quorum.healthy, 2);
    let cp4 = out
        .iter()
        .find(|m| m.member.hostname == "cp-4")
        .expect("cp-4 listed");
    assert_eq!(
        cp4.reason.as_deref(),
        Some(
            "etcd on 127.0.0.4 sees 1 member(s), the cluster has 3: it runs apart from the cluster"
        )
    );
    assert_eq!(
        kinds(&v),
        vec![
            FindingKind::SplitMemberLists,
            FindingKind::LeaderDisagreement
        ]
    );
    assert_eq!(
        v.findings[1].words,
        "127.0.0.4 follows leader 00000000000000a4, most nodes follow 00000000000000a2"
    );
}

#[test]
fn the_split_next_move_names_the_node_apart() {
    let (members, mut nodes) = cluster();
    nodes[2].members = Some(vec![members[2].clone()]);
    let (_, v) = assess(&nodes, &[]);
    assert_eq!(v.findings[0].node.as_deref(), Some("127.0.0.4"));
    assert_eq!(
        v.next_move,
        "quorum holds: fix the split: 127.0.0.4 runs etcd apart from the cluster; remove its stale member, \
         reset 127.0.0.4 (wipe EPHEMERAL) and let it rejoin as a new member"
    );
}
