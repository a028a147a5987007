//! Elections: one leader per term, pre-vote, check-quorum, transfer.

mod support;

use std::time::Duration;

use ferraft::{LeaderIdMode, NodeId, ServerState};
use support::*;

#[tokio::test]
async fn single_node_cluster_elects_itself_at_once_and_serves_writes() {
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1]).await;
    let raft = cluster.raft(1);
    raft.wait(Duration::from_secs(1)).state(ServerState::Leader).await.expect("elected without waiting for a timeout");
    let response = raft.client_write(42).await.expect("write");
    assert_eq!(cluster.applied(1), vec![42]);
    assert_eq!(response.response, response.log_id.index);
}

async fn one_leader_per_term(mode: LeaderIdMode) {
    let ids = [1, 2, 3, 4, 5].map(NodeId);
    let cluster = Cluster::start_initialized(fast_config(mode), &ids).await;
    let mut leaders_by_term = std::collections::BTreeMap::new();
    for round in 0..4 {
        let leader = cluster.leader_among(&ids).await;
        let term = cluster.raft(leader).metrics().borrow().current_term;
        if mode == LeaderIdMode::Standard {
            if let Some(previous) = leaders_by_term.insert(term, leader) {
                assert_eq!(previous, leader, "two leaders in term {term}");
            }
        }
        cluster.raft(leader).client_write(round).await.expect("write");
        // force a new election elsewhere
        let next = ids.iter().copied().find(|id| *id != leader).unwrap();
        cluster.raft(leader).transfer_leader(Some(next)).await.expect("transfer");
    }
    let last = cluster.read_index(cluster.leader_among(&ids).await).await;
    cluster.wait_applied(&ids, last).await;
    cluster.assert_applied_everywhere(&ids, &[0, 1, 2, 3]);
}

#[tokio::test]
async fn five_nodes_standard_mode_one_leader_per_term() {
    one_leader_per_term(LeaderIdMode::Standard).await;
}

#[tokio::test]
async fn five_nodes_advanced_mode_elects_and_replicates() {
    one_leader_per_term(LeaderIdMode::Advanced).await;
}

#[tokio::test]
async fn partitioned_minority_leader_cannot_commit_and_steps_down() {
    let ids = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let old = cluster.leader_among(&ids).await;
    cluster.router.isolate(old);
    let stuck = tokio::time::timeout(Duration::from_millis(800), cluster.raft(old).client_write(7)).await;
    assert!(!matches!(stuck, Ok(Ok(_))), "a minority leader must not commit");
    // check-quorum: it steps down on its own
    cluster.raft(old).wait(WAIT).metrics(|m| m.state != ServerState::Leader, "old leader steps down").await.unwrap();
    let rest: Vec<_> = ids.iter().copied().filter(|id| *id != old).collect();
    let new = cluster.leader_among(&rest).await;
    assert_ne!(new, old);
    cluster.raft(new).client_write(8).await.expect("majority side commits");
    cluster.router.restore(old);
    let last = cluster.read_index(new).await;
    cluster.wait_applied(&ids, last).await;
    assert_eq!(cluster.applied(old), cluster.applied(new), "rejoined node converges; write 7 was never applied");
    assert!(!cluster.applied(old).contains(&7));
}

#[tokio::test]
async fn with_pre_vote_a_rejoining_node_does_not_bump_the_term() {
    let ids = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let term = cluster.raft(leader).metrics().borrow().current_term;
    let follower = ids.iter().copied().find(|id| *id != leader).unwrap();
    cluster.router.isolate(follower);
    // several election timeouts pass while it is cut off
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(cluster.raft(follower).metrics().borrow().current_term, term, "pre-vote kept the isolated node's term");
    cluster.router.restore(follower);
    cluster.raft(leader).client_write(1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = cluster.raft(leader).metrics().borrow().clone();
    assert_eq!((m.state, m.current_term), (ServerState::Leader, term), "leader was not disturbed");
}

#[tokio::test]
async fn leader_transfer_moves_leadership_to_the_chosen_node() {
    let ids = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let target = ids.iter().copied().find(|id| *id != leader).unwrap();
    assert_eq!(cluster.raft(leader).transfer_leader(Some(target)).await.unwrap(), target);
    assert_eq!(cluster.leader_among(&ids).await, target);
}

/// Found by the red team on real processes (`tools/fault-injection/transfer_lease.py`): a
/// transfer's TimeoutNow that reaches its target late (the target was paused,
/// or the message sat in a queue) makes it campaign after the transfer gave
/// up and the old leader went back to serving lease reads. Voters grant a
/// transfer vote despite having just heard from the leader (that is what a
/// transfer is for), so the stickiness the lease rests on does not hold:
/// the target is elected and commits while the old leader, cut off, still
/// answers lease reads from its old state.
#[tokio::test]
async fn a_late_timeout_now_does_not_let_the_old_leader_serve_a_stale_lease_read() {
    use std::sync::{Arc, Mutex};

    use ferraft::{Message, MessageBody};

    let config = ferraft::Config {
        heartbeat_interval_ms: 20,
        election_timeout_min_ms: 400,
        election_timeout_max_ms: 800,
        ..ferraft::Config::default()
    };
    let ids = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(config, &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let first = cluster.raft(leader).client_write(1).await.expect("write");
    cluster.wait_applied(&ids, first.log_id.index).await;
    let others: Vec<NodeId> = ids.iter().copied().filter(|id| *id != leader).collect();
    let (target, third) = (others[0], others[1]);

    // the TimeoutNow is held back: the router drops it, the test keeps a copy
    let held: Arc<Mutex<Option<Message<u64, ferraft::BasicNode>>>> = Arc::default();
    let keep = held.clone();
    cluster.router.set_tap(move |m| {
        if matches!(m.body, MessageBody::TimeoutNow(_)) {
            keep.lock().unwrap().get_or_insert_with(|| m.clone());
        }
    });
    cluster.router.isolate(target);
    // the transfer gives up (after two election timeouts; the call waits 5 s):
    // the leader leads on with the third node
    let transfer = cluster.raft(leader).transfer_leader(Some(target)).await;
    assert!(matches!(transfer, Err(ferraft::TransferError::Timeout)), "{transfer:?}");
    assert_eq!(cluster.raft(leader).metrics().borrow().state, ServerState::Leader);
    let timeout_now = held.lock().unwrap().take().expect("the leader sent TimeoutNow");

    // the old leader is cut off; the TimeoutNow arrives now
    cluster.router.isolate(leader);
    cluster.router.restore(target);
    cluster.raft(target).receive(timeout_now);
    cluster.raft(target).wait(Duration::from_millis(300)).state(ServerState::Leader).await.expect("target elected");
    let second = cluster.raft(target).client_write(2).await.expect("write on the new leader");
    let _ = third;

    // a write was acknowledged: a lease read on the old leader must not miss it
    match cluster.raft(leader).lease_read().await {
        Ok(read_index) => {
            cluster.raft(leader).wait(Duration::from_millis(100)).applied_at_least(read_index).await.ok();
            assert!(
                cluster.applied(leader).contains(&2),
                "stale lease read: the old leader answered at read index {read_index} without write 2 (at {}), \
                 acknowledged by the new leader {target}",
                second.log_id.index
            );
        }
        Err(e) => eprintln!("lease refused: {e}"),
    }
}
