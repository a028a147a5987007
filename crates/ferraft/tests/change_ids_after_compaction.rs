//! A change id outlives the log entries that carried it: once they are
//! compacted into a snapshot, a repeat of the change still gets the first
//! call's outcome (and never applies the change again), on the leader that
//! took the snapshot, after a restart of every node, and on a node that got
//! the snapshot by install and leads later.

mod support;

use std::collections::BTreeSet;

use ferraft::{
    BasicNode, ChangeGuard, ChangeMembers, ChangeMembershipError, ChangeOptions, ChangeStatus, LeaderIdMode, LogIndex,
    NodeId, StoredMembership,
};
use support::{fast_config, Cluster, Node, WAIT};

fn set(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

fn with_id(change_id: &str, retain: bool) -> ChangeOptions {
    let guard = ChangeGuard { change_id: Some(change_id.to_string()), expect_membership_index: None };
    ChangeOptions { retain, force: true, guard }
}

/// Snapshots on `node` and waits until its log is purged past `index`.
async fn compact_past(node: &Node, index: LogIndex) {
    node.trigger_snapshot().await.unwrap();
    let purged = move |m: &ferraft::RaftMetrics<BasicNode>| m.purged.is_some_and(|p| p.index > index);
    node.wait(WAIT).metrics(purged, "log purged past the changes").await.unwrap();
}

/// The repeat of "remove `out`" under `id` on `leader`: answered with
/// `first` and `out` still a voter; its status says committed; another
/// change under the id is refused.
async fn check_repeat(node: &Node, out: NodeId, first: &StoredMembership<BasicNode>) {
    let again = node
        .change_membership_with(ChangeMembers::RemoveVoters(set(&[out.0])), with_id("x", true))
        .await
        .expect("the repeat is answered with the first outcome");
    assert_eq!(&again, first, "the first call's outcome");
    let in_force = node.metrics().borrow().membership.clone().unwrap();
    assert!(in_force.membership.is_voter(out), "the removal did not run again: {in_force:?}");
    match node.change_status("x").await.unwrap() {
        ChangeStatus::Committed { membership } => assert_eq!(&membership, first),
        other => panic!("status of a committed change: {other:?}"),
    }
    let other = node.change_membership_with(ChangeMembers::RemoveVoters(set(&[out.0])), with_id("x", false)).await;
    assert!(matches!(other, Err(ChangeMembershipError::ChangeIdReused { .. })), "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_id_is_remembered_after_compaction_restart_and_install() {
    let config = ferraft::Config {
        snapshot_logs_since_last: 0,
        purge_keep_entries: 0,
        catch_up_retain_entries: 0,
        ..fast_config(LeaderIdMode::Standard)
    };
    let ids = [1, 2, 3];
    let mut cluster = Cluster::start_initialized(config, &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let out = ids.map(NodeId).into_iter().find(|id| *id != leader).unwrap();
    let first = cluster
        .raft(leader)
        .change_membership_with(ChangeMembers::RemoveVoters(set(&[out.0])), with_id("x", true))
        .await
        .unwrap();
    // someone puts it back
    cluster.raft(leader).change_membership(ChangeMembers::AddVoterIds(set(&[out.0])), false).await.unwrap();
    for i in 0..5 {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&ids, last).await;
    for id in ids {
        compact_past(cluster.raft(id), first.log_id.unwrap().index + 2).await;
    }
    check_repeat(cluster.raft(leader), out, &first).await;

    // a node that joins now gets the snapshot by install, and later leads
    cluster.start(4).await;
    cluster.raft(leader).add_learner(NodeId(4), BasicNode::new(support::addr(4)), true).await.unwrap();
    let installed =
        |m: &ferraft::RaftMetrics<BasicNode>| m.snapshot.is_some_and(|s| s.index > first.log_id.unwrap().index);
    cluster.raft(4).wait(WAIT).metrics(installed, "snapshot installed on 4").await.unwrap();
    cluster.raft(leader).change_membership(ChangeMembers::AddVoterIds(set(&[4])), false).await.unwrap();
    let all = [1, 2, 3, 4];
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&all, last).await;
    cluster.raft(leader).transfer_leader(Some(NodeId(4))).await.unwrap();
    assert_eq!(cluster.leader_among(&all).await, NodeId(4));
    check_repeat(cluster.raft(4), out, &first).await;

    // every node restarts from its snapshot and what is left of its log
    for id in all {
        cluster.crash(id).await;
    }
    for id in all {
        cluster.start(id).await;
    }
    let leader = cluster.leader_among(&all).await;
    check_repeat(cluster.raft(leader), out, &first).await;
}
