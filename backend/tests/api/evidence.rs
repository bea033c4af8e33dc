//! The etcd evidence board against the Talos emulator: the real poller and Talos client over
//! mTLS, real etcd processes, real faults (a split member list, dead members, a NOSPACE alarm),
//! and the verdict words the health page shows for each. Uses 127.0.22.x to 127.0.25.x.

use std::net::Ipv4Addr;
use std::time::Duration;

use talos_dr::health::{PollSettings, poll_cluster};
use talos_dr::talos::{TalosClient, talosconfig};
use talos_dr_shared::{ClusterHealth, EtcdMember, FindingKind, MemberState, VerdictLevel};
use talos_emulator::{Emulator, EmulatorOptions, Role};
use tempfile::TempDir;

/// Forming three etcd members on a busy two-core machine can take a while.
const FORMING_PATIENCE: Duration = Duration::from_secs(90);
const FAULT_PATIENCE: Duration = Duration::from_secs(30);

struct Board {
    emulator: Emulator,
    client: TalosClient,
    settings: PollSettings,
    /// The member list last seen while quorum held, as the poller keeps it.
    remembered: Vec<EtcdMember>,
    _dir: TempDir,
}

async fn start(base_ip: Ipv4Addr, etcd_quota_bytes: Option<u64>) -> Board {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = EmulatorOptions::new(3, base_ip, dir.path().join("cluster"));
    opts.etcd_quota_bytes = etcd_quota_bytes;
    let emulator = Emulator::start(opts)
        .await
        .expect("the emulated cluster starts");
    let ctx = talosconfig::load(&emulator.talosconfig_path(Role::Admin), None)
        .expect("the emulator's talosconfig loads");
    let call_timeout = Duration::from_secs(2);
    let client = TalosClient::new(&ctx, call_timeout).expect("a Talos client");
    let settings = PollSettings {
        cluster: "evidence".into(),
        nodes: emulator
            .control_plane_ips()
            .iter()
            .map(ToString::to_string)
            .collect(),
        interval: Duration::from_millis(250),
        call_timeout,
    };
    Board {
        emulator,
        client,
        settings,
        remembered: Vec::new(),
        _dir: dir,
    }
}

impl Board {
    async fn poll(&mut self) -> ClusterHealth {
        let health = poll_cluster(&self.settings, &self.client, &self.remembered).await;
        if health.verdict.quorum.holds() {
            self.remembered = health.members.iter().map(|m| m.member.clone()).collect();
        }
        health
    }

    /// Polls until `pred` holds, or fails naming `what` with the last verdict seen.
    async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&ClusterHealth) -> bool,
    ) -> ClusterHealth {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let health = self.poll().await;
            if pred(&health) {
                return health;
            }
            if tokio::time::Instant::now() > deadline {
                let nodes: Vec<String> = health
                    .nodes
                    .iter()
                    .map(|n| {
                        format!(
                            "{} etcd={:?} failures={:?}",
                            n.node,
                            n.etcd_service.as_ref().map(|s| s.state),
                            n.failures
                        )
                    })
                    .collect();
                panic!(
                    "timed out after {within:?} waiting for {what}; last seen: {:?} | {:?} | {}",
                    health.verdict.summary,
                    health.verdict.reasons,
                    nodes.join("; ")
                );
            }
            tokio::time::sleep(self.settings.interval).await;
        }
    }

    async fn healthy(&mut self) -> ClusterHealth {
        self.wait_for("a healthy cluster", FORMING_PATIENCE, |h| {
            h.verdict.level == VerdictLevel::Healthy
        })
        .await
    }

    fn node(&self, i: usize) -> Ipv4Addr {
        self.emulator.control_plane_ips()[i]
    }
}

fn member_id_of(h: &ClusterHealth, node: Ipv4Addr) -> String {
    let node = node.to_string();
    h.members
        .iter()
        .find(|m| m.node.as_deref() == Some(node.as_str()))
        .map(|m| m.member.id.clone())
        .expect("the node has a member")
}

fn has(h: &ClusterHealth, kind: FindingKind) -> bool {
    h.verdict.findings.iter().any(|f| f.kind == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_member_list_says_who_sees_what() {
    let mut board = start(Ipv4Addr::new(127, 0, 22, 2), None).await;
    let before = board.healthy().await;
    let (n1, n2, n3) = (board.node(0), board.node(1), board.node(2));
    let old_id = member_id_of(&before, n3);

    board
        .emulator
        .split_off_etcd(n3)
        .await
        .expect("split off etcd");
    let split = board
        .wait_for("the split member lists", FAULT_PATIENCE, |h| {
            has(h, FindingKind::SplitMemberLists) && h.verdict.quorum.healthy == 2
        })
        .await;

    assert_eq!(
        split.verdict.level,
        VerdictLevel::Degraded,
        "{:?}",
        split.verdict
    );
    assert_eq!(
        split.verdict.quorum_words,
        "3 members, 2 healthy, quorum needs 2: holds, one more failure loses it"
    );
    let words: Vec<&str> = split
        .verdict
        .findings
        .iter()
        .map(|f| f.words.as_str())
        .collect();
    assert_eq!(
        words[0],
        format!("member lists disagree: {n1} sees 3 (cp-1, cp-2, cp-3); {n2} sees 3 (cp-1, cp-2, cp-3); {n3} sees 1 (cp-3)").as_str(),
        "{words:?}"
    );
    // etcd derives the member ID from the peer URL and cluster token: the new cluster's only
    // member has the old ID, so the console must tell them apart by the lists and the leader.
    let status = split.nodes[2]
        .etcd_status
        .as_ref()
        .expect("the split node answers status");
    assert_eq!(status.member_id, old_id);
    assert!(
        words.contains(
            &format!(
                "{n3} follows leader {old_id}, most nodes follow {}",
                split.verdict.leader.as_deref().unwrap_or("?")
            )
            .as_str()
        ),
        "{words:?}"
    );
    let old = split
        .members
        .iter()
        .find(|m| m.member.id == old_id)
        .expect("the old member is still listed");
    assert_eq!(
        old.reason.as_deref(),
        Some(
            format!(
                "etcd on {n3} sees 1 member(s), the cluster has 3: it runs apart from the cluster"
            )
            .as_str()
        )
    );
    assert_eq!(
        split.verdict.next_move,
        format!(
            "quorum holds: fix the split: {n3} runs etcd apart from the cluster; remove its stale member, \
             reset {n3} (wipe EPHEMERAL) and let it rejoin as a new member"
        )
    );
    assert!(
        split
            .verdict
            .summary
            .starts_with("degraded: 3 members, 2 healthy"),
        "{}",
        split.verdict.summary
    );
    board.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dead_member_is_degraded_and_names_the_member_to_fix() {
    let mut board = start(Ipv4Addr::new(127, 0, 23, 2), None).await;
    let healthy = board.healthy().await;
    assert_eq!(
        healthy.verdict.quorum_words,
        "3 members, 3 healthy, quorum needs 2: holds, survives one more failure"
    );
    assert_eq!(
        healthy.verdict.next_move,
        "nothing to fix; keep taking etcd snapshots"
    );
    assert!(
        healthy.verdict.findings.is_empty(),
        "{:?}",
        healthy.verdict.findings
    );

    let victim = board.node(1);
    board.emulator.kill_etcd(victim).await.expect("kill etcd");
    let degraded = board
        .wait_for("one member down", FAULT_PATIENCE, |h| {
            h.verdict.level == VerdictLevel::Degraded && h.verdict.quorum.healthy == 2
        })
        .await;
    assert_eq!(
        degraded.verdict.quorum_words,
        "3 members, 2 healthy, quorum needs 2: holds, one more failure loses it"
    );
    assert_eq!(
        degraded.verdict.summary,
        format!("degraded: {}", degraded.verdict.quorum_words)
    );
    assert_eq!(
        degraded.verdict.next_move,
        format!(
            "quorum holds: fix the broken member cp-2 ({victim}): etcd service on {victim} is Waiting"
        )
    );
    board.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dead_members_lose_quorum_and_bringing_one_back_restores_it() {
    let mut board = start(Ipv4Addr::new(127, 0, 24, 2), None).await;
    board.healthy().await;
    let (n1, n2, n3) = (board.node(0), board.node(1), board.node(2));
    board.emulator.kill_etcd(n2).await.expect("kill etcd");
    board.emulator.kill_etcd(n3).await.expect("kill etcd");

    let lost = board
        // The survivor's health check and leader lag the kill by a check interval or an election.
        .wait_for(
            "quorum restorable, the survivor without a leader",
            FAULT_PATIENCE,
            |h| h.verdict.level == VerdictLevel::QuorumRestorable && has(h, FindingKind::NoLeader),
        )
        .await;
    assert_eq!(
        lost.verdict.quorum_words,
        "3 members, 1 healthy, quorum needs 2: lost"
    );
    assert_eq!(
        lost.verdict.summary,
        "quorum restorable: 3 members, 1 healthy, quorum needs 2: lost; etcd accepts no writes, but 2 members still hold their data"
    );
    assert_eq!(
        lost.verdict.next_move,
        format!(
            "bring back 1 of: cp-2 ({n2}), cp-3 ({n3}); start etcd there or reboot the node, its data rejoins the quorum (no snapshot restore needed)"
        )
    );
    assert!(
        lost.verdict
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::NoLeader && f.words == format!("{n1} sees no leader")),
        "{:?}",
        lost.verdict.findings
    );
    assert_eq!(
        lost.members.len(),
        3,
        "the members last seen while quorum held"
    );

    // The next move works: one member back with its data and quorum holds again.
    board.emulator.start_etcd(n2).await.expect("start etcd");
    let back = board
        .wait_for(
            "quorum back with two healthy members",
            FORMING_PATIENCE,
            |h| {
                h.verdict.quorum.holds()
                    && h.members
                        .iter()
                        .filter(|m| m.state == MemberState::Healthy)
                        .count()
                        == 2
            },
        )
        .await;
    assert_eq!(
        back.verdict.level,
        VerdictLevel::Degraded,
        "{:?}",
        back.verdict
    );
    assert!(
        back.verdict
            .next_move
            .starts_with(&format!("quorum holds: fix the broken member cp-3 ({n3})")),
        "{}",
        back.verdict.next_move
    );
    board.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nospace_alarm_is_named_with_its_member_and_the_fix() {
    let mut board = start(Ipv4Addr::new(127, 0, 25, 2), Some(16 << 20)).await;
    board.healthy().await;
    let full = board.node(0);

    board
        .emulator
        .raise_nospace(full)
        .await
        .expect("etcd raises NOSPACE");
    let alarmed = board
        .wait_for(
            "the NOSPACE alarm, reported by every node",
            FAULT_PATIENCE,
            |h| {
                let counts: Vec<usize> = h.nodes.iter().map(|n| n.alarms.len()).collect();
                has(h, FindingKind::Alarm) && counts.iter().all(|c| *c > 0 && *c == counts[0])
            },
        )
        .await;
    assert_eq!(
        alarmed.verdict.level,
        VerdictLevel::Degraded,
        "{:?}",
        alarmed.verdict
    );
    assert!(alarmed.verdict.quorum.holds());
    // Every member checks the quota as it applies the writes: whichever crossed it first raised
    // the alarm, so the words must name that member and its node, whichever it is.
    let alarm = alarmed
        .verdict
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Alarm)
        .expect("alarm finding");
    let member = alarm.member.clone().expect("the alarm names its member");
    let owner = alarmed
        .members
        .iter()
        .find(|m| m.member.id == member)
        .expect("the alarmed member is in the cluster");
    let node = owner
        .node
        .clone()
        .expect("the alarmed member has a machine");
    assert_eq!(alarm.node.as_deref(), Some(node.as_str()));
    assert_eq!(
        alarm.words,
        format!(
            "NOSPACE alarm on member {member} on {} ({node}): etcd accepts only reads and deletes until space is freed and the alarm disarmed",
            owner.member.hostname
        )
    );
    assert_eq!(
        alarmed.verdict.next_move,
        format!(
            "quorum holds: fix the alarm: free space on member {member} (talosctl -n {node} etcd defrag), then talosctl -n {node} etcd alarm disarm"
        )
    );
    assert!(
        alarmed
            .nodes
            .iter()
            .all(|n| n.alarms.iter().any(|a| a.member_id == member)),
        "every node reports the alarm"
    );
    board.emulator.shutdown().await;
}
