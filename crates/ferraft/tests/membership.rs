//! Dynamic membership scenarios, named after the reference documents' examples.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ferraft::{BasicNode, ChangeMembers, ChangeMembersError, ChangeMembershipError, LeaderIdMode, NodeId, ServerState};
use support::*;

fn set(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

async fn cluster_with_learners(voters: &[u64], learners: &[u64]) -> (Cluster, NodeId) {
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), voters).await;
    let leader = cluster.leader_among(voters).await;
    for id in learners {
        cluster.start(*id).await;
        cluster.raft(leader).add_learner(*id, BasicNode::new(addr(*id)), true).await.expect("add learner");
    }
    (cluster, leader)
}

#[tokio::test]
async fn incremental_init_from_one_node_grows_to_three() {
    let (cluster, leader) = cluster_with_learners(&[1], &[2, 3]).await;
    assert_eq!(leader, NodeId(1));
    let m = cluster.raft(1).change_membership(ChangeMembers::AddVoterIds(set(&[2, 3])), false).await.unwrap();
    assert_eq!(m.membership.configs(), &[set(&[1, 2, 3])]);
    let w = cluster.raft(1).client_write(1).await.unwrap();
    cluster.wait_applied(&[1, 2, 3], w.log_id.index).await;
}

#[tokio::test]
async fn one_step_init_of_three_nodes() {
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let m = cluster.raft(leader).metrics().borrow().membership.clone().unwrap();
    assert_eq!(m.membership.configs(), &[set(&[1, 2, 3])]);
}

#[tokio::test]
async fn adding_a_voter_that_is_not_a_learner_is_an_error() {
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1]).await;
    cluster.leader_among(&[1]).await;
    let err = cluster.raft(1).change_membership(ChangeMembers::AddVoterIds(set(&[9])), false).await.unwrap_err();
    assert!(matches!(err, ChangeMembershipError::Invalid(ChangeMembersError::NotLearner { node_id: NodeId(9) })));
}

async fn replace_123_with_345(retain: bool) -> Cluster {
    let (cluster, leader) = cluster_with_learners(&[1, 2, 3], &[4, 5]).await;
    let m =
        cluster.raft(leader).change_membership(ChangeMembers::ReplaceAllVoters(set(&[3, 4, 5])), retain).await.unwrap();
    assert_eq!(m.membership.configs(), &[set(&[3, 4, 5])]);
    assert_eq!(m.membership.learner_set(), if retain { set(&[1, 2]) } else { set(&[]) });
    cluster
}

#[tokio::test]
async fn retain_true_keeps_removed_voters_as_learners() {
    replace_123_with_345(true).await;
}

#[tokio::test]
async fn retain_false_removes_them() {
    let cluster = replace_123_with_345(false).await;
    let leader = cluster.leader_among(&[3, 4, 5]).await;
    let w = cluster.raft(leader).client_write(7).await.unwrap();
    cluster.wait_applied(&[3, 4, 5], w.log_id.index).await;
}

#[tokio::test]
async fn faq_interleaving_add_and_remove_both_succeed_and_cluster_still_commits() {
    let (cluster, leader) = cluster_with_learners(&[1], &[2]).await;
    let raft = cluster.raft(leader).clone();
    let add = tokio::spawn({
        let raft = raft.clone();
        async move { raft.change_membership(ChangeMembers::AddVoterIds(set(&[2])), false).await }
    });
    let remove = tokio::spawn({
        let raft = raft.clone();
        async move { raft.change_membership(ChangeMembers::RemoveVoters(set(&[2])), true).await }
    });
    let both = tokio::time::timeout(WAIT, async { (add.await.unwrap(), remove.await.unwrap()) }).await;
    let (added, removed) = both.unwrap_or_else(|_| panic!("stuck; metrics {:?}", raft.metrics().borrow()));
    added.expect("add succeeds");
    removed.expect("remove succeeds");
    let m = raft.metrics().borrow().membership.clone().unwrap();
    let configs = m.membership.configs().to_vec();
    let allowed = [vec![set(&[1])], vec![set(&[1, 2])], vec![set(&[1]), set(&[1, 2])], vec![set(&[1, 2]), set(&[1])]];
    assert!(allowed.contains(&configs), "unexpected final membership {configs:?}");
    let leader = cluster.leader_among(&[1, 2]).await;
    cluster.raft(leader).client_write(1).await.expect("still commits writes");
}

#[tokio::test]
async fn two_concurrent_replace_all_voters_end_in_one_of_them_or_a_valid_joint() {
    let (cluster, leader) = cluster_with_learners(&[1, 2, 3], &[4, 5, 6]).await;
    let raft = cluster.raft(leader).clone();
    let a = tokio::spawn({
        let raft = raft.clone();
        async move { raft.change_membership(ChangeMembers::ReplaceAllVoters(set(&[1, 2, 3])), true).await }
    });
    let b = tokio::spawn({
        let raft = raft.clone();
        async move { raft.change_membership(ChangeMembers::ReplaceAllVoters(set(&[4, 5, 6])), true).await }
    });
    let _ = a.await.unwrap();
    let _ = b.await.unwrap();
    let all = [1, 2, 3, 4, 5, 6].map(NodeId);
    let leader = cluster
        .leader_among(
            &all.iter()
                .copied()
                .filter(|id| {
                    cluster.raft(*id).metrics().borrow().membership.as_ref().is_some_and(|m| m.membership.is_voter(*id))
                })
                .collect::<Vec<_>>(),
        )
        .await;
    let m = cluster.raft(leader).metrics().borrow().membership.clone().unwrap();
    for config in m.membership.configs() {
        assert!(config == &set(&[1, 2, 3]) || config == &set(&[4, 5, 6]), "unexpected config {config:?}");
    }
    cluster.raft(leader).client_write(1).await.expect("the cluster still commits");
}

#[tokio::test]
async fn removing_the_leader_hands_over_and_it_steps_down() {
    let (cluster, leader) = cluster_with_learners(&[1, 2, 3], &[]).await;
    let rest: Vec<NodeId> = [1, 2, 3].map(NodeId).into_iter().filter(|id| *id != leader).collect();
    cluster.raft(leader).change_membership(ChangeMembers::RemoveVoters(set(&[leader.0])), false).await.unwrap();
    cluster.raft(leader).wait(WAIT).metrics(|m| m.state != ServerState::Leader, "old leader steps down").await.unwrap();
    let new = cluster.leader_among(&rest).await;
    cluster.raft(new).client_write(3).await.unwrap();
    // the removed node does not campaign or disturb the others
    let term = cluster.raft(new).metrics().borrow().current_term;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let m = cluster.raft(new).metrics().borrow().clone();
    assert_eq!((m.state, m.current_term), (ServerState::Leader, term));
}

/// Issue 18: a voter whose store was wiped comes back as a new incarnation
/// and counts for nothing (nothing is replicated to it, the others commit
/// without it) until the operator readmits it as a learner; it then catches
/// up and can be promoted again.
#[tokio::test]
async fn a_wiped_voter_counts_for_nothing_until_readmitted_then_catches_up() {
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    for i in 0..5 {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    let victim = [1, 2, 3].map(NodeId).into_iter().find(|id| *id != leader).unwrap();
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&[victim], last).await;
    cluster.crash(victim).await;
    cluster.members[&victim].store.wipe();
    cluster.start(victim).await;
    cluster.raft(leader).client_write(5).await.expect("the two intact voters commit");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cluster.applied(victim).is_empty(), "nothing replicated to the wiped node as its old self");

    let m = cluster.raft(leader).readmit(victim).await.expect("readmitted");
    assert_eq!(m.membership.learner_set(), set(&[victim.0]), "back as a learner");
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&[victim], last).await;
    let change = ChangeMembers::AddVoterIds(set(&[victim.0]));
    let m = cluster.raft(leader).change_membership(change, false).await.expect("promoted once caught up");
    assert_eq!(m.membership.voter_set(), set(&[1, 2, 3]));
    cluster.raft(leader).client_write(6).await.unwrap();
}

/// Readmitting a member that is its recorded self (its data was never
/// wiped) changes nothing. Before, a healthy voter was demoted to learner:
/// three voters became two (found by the black-box review of the server).
#[tokio::test]
async fn readmitting_a_member_that_is_its_recorded_self_changes_nothing() {
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1, 2, 3]).await;
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    cluster.raft(leader).client_write(1).await.unwrap();
    let healthy = [1, 2, 3].map(NodeId).into_iter().find(|id| *id != leader).unwrap();
    let before = cluster.raft(leader).metrics().borrow().membership.clone().unwrap();
    assert_ne!(before.membership.incarnation(healthy), 0, "its incarnation is recorded");

    let m = cluster.raft(leader).readmit(healthy).await.expect("nothing to readmit is no error");
    assert_eq!(m.membership.voter_set(), set(&[1, 2, 3]), "still a voter");
    assert_eq!(m.log_id, before.log_id, "no membership entry written");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = cluster.raft(leader).metrics().borrow().membership.clone().unwrap();
    assert_eq!(after.log_id, before.log_id);
}

#[tokio::test]
async fn set_nodes_giving_a_node_another_members_address_is_refused() {
    let (cluster, leader) = cluster_with_learners(&[1, 2, 3], &[]).await;
    let change = ChangeMembers::SetNodes([(NodeId(2), BasicNode::new(addr(3)))].into());
    let err = cluster.raft(leader).change_membership(change, false).await.unwrap_err();
    assert!(matches!(err, ChangeMembershipError::Invalid(ChangeMembersError::DuplicateAddress { .. })), "{err}");
}

#[tokio::test]
async fn prepare_commit_abort_are_checked_and_idempotent() {
    let (cluster, leader) = cluster_with_learners(&[1, 2, 3], &[4]).await;
    let raft = cluster.raft(leader);
    // wrong expectation
    let err = raft.prepare_membership(set(&[1, 2]), set(&[4]), set(&[2, 3, 4]), set(&[])).await.unwrap_err();
    assert!(matches!(err, ChangeMembershipError::Mismatch { .. }), "{err}");
    // both voter and learner
    let err = raft.prepare_membership(set(&[1, 2, 3]), set(&[4]), set(&[2, 3, 4]), set(&[4])).await.unwrap_err();
    assert!(matches!(err, ChangeMembershipError::VoterAndLearner { node_id: NodeId(4) }));
    // keep the leader a voter so the repeated calls reach it; demote another old voter
    let demoted = [1, 2, 3].map(NodeId).into_iter().find(|id| *id != leader).unwrap();
    let new_voters: BTreeSet<NodeId> = [1, 2, 3, 4].map(NodeId).into_iter().filter(|id| *id != demoted).collect();
    let prepare =
        raft.prepare_membership(set(&[1, 2, 3]), set(&[4]), new_voters.clone(), set(&[demoted.0])).await.unwrap();
    let again =
        raft.prepare_membership(set(&[1, 2, 3]), set(&[4]), new_voters.clone(), set(&[demoted.0])).await.unwrap();
    assert_eq!(prepare, again, "prepare is idempotent");
    let err = raft.commit_membership(prepare + 100).await.unwrap_err();
    assert!(matches!(err, ChangeMembershipError::WrongPrepareIndex { .. }));
    // readiness: retry until a majority of old and new report the prepare entry committed
    let commit = loop {
        match raft.commit_membership(prepare).await {
            Ok(index) => break index,
            Err(ChangeMembershipError::NotReady) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("commit: {e}"),
        }
    };
    assert_eq!(raft.commit_membership(prepare).await.unwrap(), commit, "commit is idempotent");
    let m = raft.metrics().borrow().membership.clone().unwrap();
    assert_eq!(m.membership.configs(), &[new_voters]);
    assert_eq!(m.membership.learner_set(), set(&[demoted.0]), "prepared learner kept");
}

#[tokio::test]
async fn commit_before_readiness_is_refused_and_abort_returns_to_the_old_config() {
    let (cluster, leader) = cluster_with_learners(&[1, 2, 3], &[4, 5]).await;
    let raft = cluster.raft(leader).clone();
    // new voters 4 and 5 cannot report: a majority of the new config is missing
    cluster.router.isolate(NodeId(4));
    cluster.router.isolate(NodeId(5));
    let others: Vec<NodeId> = [1, 2, 3].map(NodeId).into_iter().filter(|id| *id != leader).collect();
    let new_voters = set(&[leader.0, 4, 5]);
    let prepare = raft.prepare_membership(set(&[1, 2, 3]), set(&[4, 5]), new_voters, set(&[])).await;
    // the joint entry itself cannot commit without a majority of {leader,4,5}
    assert!(
        prepare.is_err() || raft.commit_membership(prepare.unwrap()).await.is_err(),
        "commit before readiness must be refused"
    );
    cluster.router.restore(NodeId(4));
    cluster.router.restore(NodeId(5));
    let _ = others;
    let leader = cluster
        .leader_among(
            &[1, 2, 3, 4, 5]
                .map(NodeId)
                .into_iter()
                .filter(|id| {
                    cluster.raft(*id).metrics().borrow().membership.as_ref().is_some_and(|m| m.membership.is_voter(*id))
                })
                .collect::<Vec<_>>(),
        )
        .await;
    let raft = cluster.raft(leader).clone();
    let joint = raft.metrics().borrow().membership.clone().unwrap();
    assert!(joint.membership.is_joint(), "the prepared joint config is in force: {:?}", joint.membership.configs());
    let prepare_index = joint.log_id.unwrap().index;
    let abort = loop {
        match raft.abort_membership(prepare_index).await {
            Ok(index) => break index,
            Err(ChangeMembershipError::NotReady) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("abort: {e}"),
        }
    };
    assert_eq!(raft.abort_membership(prepare_index).await.unwrap(), abort, "abort is idempotent");
    let m = raft.metrics().borrow().membership.clone().unwrap();
    assert_eq!(m.membership.configs(), &[set(&[1, 2, 3])]);
    assert_eq!(m.membership.learner_set(), set(&[4, 5]));
}

/// Node 3 is removed, the memberships naming it purged (the log keeps its
/// old address as a forgotten node), and a fresh node 3 is added at a new
/// address while node 2 is cut off, then leads. Node 2, back, learns the
/// leader's address from its heartbeats; its memberships do not name 3, so
/// its answers must go there, not to the address of the removed node 3.
#[tokio::test]
async fn a_follower_answers_a_leader_whose_id_an_old_member_had_at_its_new_address() {
    use ferraft::mem::MemLogStore;
    use ferraft::{Config, Raft};
    let config = Config { purge_keep_entries: 0, ..fast_config(LeaderIdMode::Standard) };
    let mut cluster = Cluster::start_initialized(config.clone(), &[1, 2, 3, 4]).await;
    let leader = cluster.leader_among(&[1, 2, 3, 4]).await;
    if leader != NodeId(1) {
        cluster.raft(leader).transfer_leader(Some(NodeId(1))).await.expect("transfer to 1");
    }
    cluster.raft(1).change_membership(ChangeMembers::RemoveVoters(set(&[3])), false).await.expect("remove 3");
    cluster.crash(3).await;
    for n in 0..5 {
        cluster.raft(1).client_write(n).await.unwrap();
    }
    let last = cluster.read_index(1).await;
    cluster.wait_applied(&[1, 2, 4], last).await;
    for id in [1, 2, 4] {
        cluster.raft(id).trigger_snapshot().await.unwrap().expect("a snapshot");
    }

    // a fresh node 3 at another address
    let new_addr = "node-3-again";
    let fresh =
        Raft::new(NodeId(3), config, cluster.router.network(), Box::new(MemLogStore::new()), Sm::new()).await.unwrap();
    cluster.router.register(new_addr, fresh.clone());
    cluster.router.isolate(NodeId(2));
    cluster.raft(1).add_learner(3, BasicNode::new(new_addr), true).await.expect("add the new 3");
    cluster.raft(1).change_membership(ChangeMembers::AddVoterIds(set(&[3])), false).await.expect("promote 3");
    cluster.raft(1).transfer_leader(Some(NodeId(3))).await.expect("3 leads");
    cluster.router.restore(NodeId(2));

    fresh.client_write(100).await.expect("a write on the new leader");
    let target = fresh.metrics().borrow().last_log_index;
    let caught_up = cluster.raft(2).wait(Duration::from_secs(5)).applied_at_least(target).await;
    assert!(caught_up.is_ok(), "node 2 never caught up with leader 3: its answers went to 3's old address");
    fresh.shutdown().await.unwrap();
}
