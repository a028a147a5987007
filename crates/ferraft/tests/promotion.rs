//! Catch-up you can watch and promote when ready (issue 23), with real
//! `Raft` handles on the in-memory store and network.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ferraft::NodeId;
use ferraft::{
    AddLearnerOptions, BasicNode, CatchUpStall, ChangeMembers, ChangeMembershipError, ChangeOptions, LeaderIdMode,
    RaftMetrics, Readiness,
};
use support::*;

fn set(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

/// Voters {1,2,3}; node 4 started and added as a learner that caught up.
async fn three_voters_and_learner_4() -> (Cluster, NodeId) {
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    cluster.start(4).await;
    cluster.raft(leader).add_learner(4, BasicNode::new(addr(4)), true).await.expect("add learner");
    (cluster, leader)
}

async fn write_many(cluster: &Cluster, leader: NodeId, count: u64) {
    let writes: Vec<_> = (0..count).map(|i| cluster.raft(leader).client_write(i)).collect();
    for write in futures_join(writes).await {
        write.expect("write");
    }
}

async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(futures.len());
    for f in futures {
        out.push(f.await);
    }
    out
}

fn peer_4(m: &RaftMetrics<BasicNode>) -> ferraft::ReplicationMetrics {
    m.replication.as_ref().and_then(|r| r.get(&NodeId(4)).copied()).expect("leader reports learner 4")
}

#[tokio::test]
async fn a_learner_added_with_a_readiness_rule_is_promoted_by_the_leader_after_the_hold() {
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    write_many(&cluster, leader, 200).await;
    cluster.start(4).await;
    let rule = Readiness { max_lag_entries: 10, max_lag_bytes: 1 << 20, hold_ms: 300 };
    let options = AddLearnerOptions { blocking: false, promote_when: Some(rule) };
    let started = Instant::now();
    let m = tokio::time::timeout(WAIT, cluster.raft(leader).add_learner_with(4, BasicNode::new(addr(4)), options))
        .await
        .expect("answered")
        .expect("promoted");
    assert!(started.elapsed() >= Duration::from_millis(300), "not before the rule held 300 ms");
    assert_eq!(m.membership.configs(), &[set(&[1, 2, 3, 4])]);
    let w = cluster.raft(leader).client_write(7).await.unwrap();
    cluster.wait_applied(&[4], w.log_id.index).await;
}

#[tokio::test]
async fn a_silent_learner_shows_its_lag_in_entries_and_bytes_and_why_it_is_stuck() {
    let (mut cluster, leader) = three_voters_and_learner_4().await;
    cluster.crash(4).await;
    write_many(&cluster, leader, 100).await;
    let stalled = |m: &RaftMetrics<BasicNode>| {
        m.replication
            .as_ref()
            .and_then(|r| r.get(&NodeId(4)))
            .is_some_and(|p| p.stall.is_some() && p.lag_entries >= 100)
    };
    let m = cluster.raft(leader).wait(WAIT).metrics(stalled, "learner 4 reported stuck").await.unwrap();
    let p = peer_4(&m);
    assert!(matches!(p.stall, Some(CatchUpStall::Unreachable { .. })), "{p:?}");
    // each u64 command is at least a few bytes encoded
    assert!(p.lag_bytes >= 100 * 3, "{p:?}");
    assert_eq!(p.eta_ms, None, "no ETA while it gains nothing");

    cluster.start(4).await;
    let caught_up = |m: &RaftMetrics<BasicNode>| {
        m.replication.as_ref().and_then(|r| r.get(&NodeId(4))).is_some_and(|p| p.lag_entries == 0 && p.stall.is_none())
    };
    let m = cluster.raft(leader).wait(WAIT).metrics(caught_up, "learner 4 caught up").await.unwrap();
    let p = peer_4(&m);
    assert_eq!((p.lag_bytes, p.eta_ms), (0, Some(0)));
    assert!(p.rate_entries_per_s > 0.0, "it gained 100 entries within the rate window: {p:?}");
}

#[tokio::test]
async fn promoting_a_lagging_learner_is_refused_with_its_lag_unless_forced() {
    let (mut cluster, leader) = three_voters_and_learner_4().await;
    cluster.crash(4).await;
    write_many(&cluster, leader, 1200).await;
    let err = cluster.raft(leader).change_membership(ChangeMembers::AddVoterIds(set(&[4])), false).await.unwrap_err();
    match err {
        ChangeMembershipError::LearnerNotReady { node_id: NodeId(4), lag_entries, lag_bytes } => {
            assert!(lag_entries >= 1200 && lag_bytes > 0, "{lag_entries} {lag_bytes}");
        }
        other => panic!("expected LearnerNotReady, got {other:?}"),
    }
    let m = cluster.raft(leader).metrics().borrow().membership.clone().unwrap();
    assert!(!m.membership.is_voter(NodeId(4)), "nothing happened");
    // a replace is refused the same way
    let err = cluster
        .raft(leader)
        .replace_voter(if leader == NodeId(3) { NodeId(2) } else { NodeId(3) }, NodeId(4))
        .await
        .unwrap_err();
    assert!(matches!(err, ChangeMembershipError::LearnerNotReady { node_id: NodeId(4), .. }), "{err:?}");

    let forced = ChangeOptions { retain: false, force: true, ..Default::default() };
    let m = cluster.raft(leader).change_membership_with(ChangeMembers::AddVoterIds(set(&[4])), forced).await.unwrap();
    assert_eq!(m.membership.configs(), &[set(&[1, 2, 3, 4])]);
}

#[tokio::test]
async fn replace_voter_swaps_a_voter_for_a_caught_up_learner_in_one_change() {
    let (cluster, leader) = three_voters_and_learner_4().await;
    let old = if leader == NodeId(3) { NodeId(2) } else { NodeId(3) };
    let m = cluster.raft(leader).replace_voter(old, NodeId(4)).await.unwrap();
    let mut expected = set(&[1, 2, 3, 4]);
    expected.remove(&old);
    assert_eq!(m.membership.configs(), &[expected.clone()]);
    assert!(!m.membership.is_member(old));
    let voters: Vec<NodeId> = expected.into_iter().collect();
    let leader = cluster.leader_among(&voters).await;
    let w = cluster.raft(leader).client_write(9).await.unwrap();
    cluster.wait_applied(&voters, w.log_id.index).await;
}

#[tokio::test]
async fn a_leader_change_cancels_a_pending_promotion_and_says_partially_applied() {
    let (cluster, leader) = three_voters_and_learner_4().await;
    // a rule that cannot hold within the test: the promotion stays pending
    let rule = Readiness { max_lag_entries: 0, max_lag_bytes: 0, hold_ms: 3_600_000 };
    let options = AddLearnerOptions { blocking: false, promote_when: Some(rule) };
    let raft = cluster.raft(leader).clone();
    let pending = tokio::spawn(async move { raft.add_learner_with(4, BasicNode::new(addr(4)), options).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let to = if leader == NodeId(1) { NodeId(2) } else { NodeId(1) };
    cluster.raft(leader).transfer_leader(Some(to)).await.expect("transfer");
    let answer = tokio::time::timeout(WAIT, pending).await.expect("answered").unwrap();
    match answer {
        Err(ChangeMembershipError::PartiallyApplied { membership }) => {
            assert!(membership.membership.is_member(NodeId(4)) && !membership.membership.is_voter(NodeId(4)));
        }
        other => panic!("expected PartiallyApplied, got {other:?}"),
    }
}
