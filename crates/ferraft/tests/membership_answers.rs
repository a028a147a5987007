//! Membership requests are answered, and truthfully, across leader changes
//! (issue 17), with real `Raft` handles on the in-memory network.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ferraft::{BasicNode, ChangeMembers, ChangeMembershipError, LeaderIdMode, NodeId, ServerState};
use support::*;

fn set(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

#[tokio::test]
async fn a_blocking_add_learner_is_answered_when_its_leader_steps_down() {
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    // node 4 is never started: it cannot catch up
    let raft = cluster.raft(leader).clone();
    let call = tokio::spawn(async move { raft.add_learner(4, BasicNode::new(addr(4)), true).await });
    let added = |m: &ferraft::RaftMetrics<BasicNode>| {
        m.membership.as_ref().is_some_and(|s| s.membership.is_member(NodeId(4))) && m.membership_committed
    };
    cluster.raft(leader).wait(WAIT).metrics(added, "learner 4 committed").await.unwrap();
    // the leader is cut off: check-quorum makes it step down, its vote still naming itself
    cluster.router.isolate(leader);
    let answer = tokio::time::timeout(WAIT, call).await.expect("answered within a bound").unwrap();
    match answer {
        Err(ChangeMembershipError::PartiallyApplied { membership }) => {
            assert!(membership.membership.is_member(NodeId(4)), "the learner entry committed: that is said, not hidden")
        }
        other => panic!("expected the partial outcome, got {other:?}"),
    }
}

#[tokio::test]
async fn commit_on_another_leader_keeps_the_learners_the_prepare_named() {
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    cluster.start(4).await;
    cluster.raft(leader).add_learner(4, BasicNode::new(addr(4)), true).await.unwrap();
    // swap out a voter that is not the leader, keeping it as a learner
    let out = [1, 2, 3].map(NodeId).into_iter().find(|id| *id != leader).unwrap();
    let stay: Vec<NodeId> = [1, 2, 3].map(NodeId).into_iter().filter(|id| *id != out).collect();
    let new_voters = set(&[stay[0].0, stay[1].0, 4]);
    let prepare_index = cluster
        .raft(leader)
        .prepare_membership(set(&[1, 2, 3]), set(&[4]), new_voters.clone(), set(&[out.0]))
        .await
        .unwrap();
    // leadership moves to the other voter that stays before the commit
    let next = stay.into_iter().find(|id| *id != leader).unwrap();
    cluster.raft(leader).transfer_leader(Some(next)).await.unwrap();
    let committed = loop {
        match cluster.raft(next).commit_membership(prepare_index).await {
            Err(ChangeMembershipError::NotReady) => tokio::time::sleep(Duration::from_millis(20)).await,
            other => break other.expect("commit on the new leader"),
        }
    };
    let in_force = |m: &ferraft::RaftMetrics<BasicNode>| {
        m.membership.as_ref().is_some_and(|s| s.log_id.is_some_and(|l| l.index >= committed))
    };
    let m = cluster.raft(next).wait(WAIT).metrics(in_force, "commit in force").await.unwrap();
    let membership = m.membership.unwrap().membership;
    assert_eq!(membership.configs(), &[new_voters]);
    assert_eq!(membership.learner_set(), set(&[out.0]), "kept as the prepare asked, by a leader that never saw it");
}

#[tokio::test]
async fn a_removed_voter_learns_it_says_removed_and_stops_campaigning() {
    // without pre-vote every campaign would raise its term
    let config = ferraft::Config { pre_vote: false, ..fast_config(LeaderIdMode::Standard) };
    let cluster = Cluster::start_initialized(config, &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let out = [1, 2, 3].map(NodeId).into_iter().find(|id| *id != leader).unwrap();
    cluster.raft(leader).change_membership(ChangeMembers::RemoveVoters(set(&[out.0])), false).await.unwrap();
    let removed = |m: &ferraft::RaftMetrics<BasicNode>| m.state == ServerState::Removed;
    let m = cluster.raft(out).wait(WAIT).metrics(removed, "removed").await.expect("the removed node is told");
    let term = m.current_term;
    tokio::time::sleep(Duration::from_millis(cluster.config.election_timeout_max_ms * 5)).await;
    let now = cluster.raft(out).metrics().borrow().clone();
    assert_eq!(now.state, ServerState::Removed);
    assert_eq!(now.current_term, term, "a removed node does not campaign");
}
