//! What a node reports about its leader and membership must stay true after
//! faults: operators read these metrics (the server's status, `members`,
//! `ferraft_leader_id`) to decide what to do.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ferraft::{BasicNode, ChangeMembers, Config, LeaderIdMode, NodeId, ServerState};
use support::*;

/// Samples `id`'s reported leader for `window` and returns every distinct
/// (state, leader) pair seen.
async fn reported_over(cluster: &Cluster, id: NodeId, window: Duration) -> BTreeSet<(String, Option<NodeId>)> {
    let end = Instant::now() + window;
    let mut seen = BTreeSet::new();
    while Instant::now() < end {
        let m = cluster.raft(id).metrics().borrow().clone();
        seen.insert((format!("{:?}", m.state), m.current_leader));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen
}

/// Three nodes with a leader; then all but the one `keep` picks stop, and
/// three election timeouts pass. Returns the cluster, the old leader and the one kept.
async fn keep_one_of_three(keep: impl Fn(NodeId) -> NodeId) -> (Cluster, NodeId, NodeId) {
    let config = fast_config(LeaderIdMode::Standard);
    let wait_out = Duration::from_millis(3 * config.election_timeout_max_ms);
    let mut cluster = Cluster::start_initialized(config, &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let kept = keep(leader);
    for id in (1..=3).map(NodeId).filter(|id| *id != kept) {
        cluster.crash(id).await;
    }
    tokio::time::sleep(wait_out).await;
    (cluster, leader, kept)
}

#[tokio::test]
async fn a_node_left_without_a_quorum_reports_no_leader() {
    let (cluster, leader, survivor) =
        keep_one_of_three(|leader| if leader == NodeId(1) { NodeId(2) } else { NodeId(1) }).await;
    let seen = reported_over(&cluster, survivor, Duration::from_secs(1)).await;
    assert!(
        seen.iter().all(|(_, reported)| reported.is_none()),
        "node {survivor} alone, its leader {leader} stopped, still reports a leader: {seen:?}"
    );
}

#[tokio::test]
async fn a_leader_that_lost_its_followers_stops_reporting_itself() {
    let (cluster, leader, _) = keep_one_of_three(|leader| leader).await;
    let seen = reported_over(&cluster, leader, Duration::from_secs(1)).await;
    assert!(
        seen.iter().all(|(state, reported)| state != "Leader" && reported.is_none()),
        "node {leader}, alone after check-quorum, still reports a leader: {seen:?}"
    );
}

#[tokio::test]
async fn a_follower_that_hears_from_its_leader_reports_it() {
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    for id in [1, 2, 3].map(NodeId) {
        let seen = reported_over(&cluster, id, Duration::from_millis(500)).await;
        let state = if id == leader { ServerState::Leader } else { ServerState::Follower };
        assert_eq!(seen, BTreeSet::from([(format!("{state:?}"), Some(leader))]), "node {id}");
    }
}

/// Heartbeats far apart, so a follower that learns a commit only from the
/// next heartbeat is seen doing so.
fn slow_heartbeat_config() -> Config {
    Config {
        heartbeat_interval_ms: 1_000,
        election_timeout_min_ms: 3_000,
        election_timeout_max_ms: 4_000,
        ..fast_config(LeaderIdMode::Standard)
    }
}

#[tokio::test]
async fn followers_learn_at_once_that_a_membership_change_committed() {
    let mut cluster = Cluster::start_initialized(slow_heartbeat_config(), &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    cluster.start(4).await;
    cluster.raft(leader).add_learner(4, BasicNode::new(addr(4)), true).await.expect("add learner");
    let changed = cluster
        .raft(leader)
        .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([4].map(NodeId))), false)
        .await
        .expect("add voter 4");
    let started = Instant::now();
    for id in (1..=4).map(NodeId).filter(|id| *id != leader) {
        let mut metrics = cluster.raft(id).metrics();
        let seen = tokio::time::timeout(
            Duration::from_millis(300),
            metrics.wait_for(|m| {
                m.membership_committed && m.membership.as_ref().map(|s| s.log_id) == Some(changed.log_id)
            }),
        )
        .await;
        assert!(
            seen.is_ok(),
            "node {id} still reports the membership at {:?} as not committed {:?} after the leader's answer \
             (heartbeat every second)",
            changed.log_id,
            started.elapsed()
        );
    }
}
