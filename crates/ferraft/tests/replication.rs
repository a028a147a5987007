//! Replication, crashes, restarts and reads.

mod support;

use std::time::Duration;

use ferraft::{LeaderIdMode, LogIndex, NodeId, ReadError, ServerState};
use support::*;

#[tokio::test]
async fn three_nodes_apply_the_same_writes_in_the_same_order() {
    let ids = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let writes = (0..200u64).map(|i| {
        let raft = cluster.raft(leader).clone();
        tokio::spawn(async move { raft.client_write(i).await.map(|r| r.log_id.index) })
    });
    let mut last = LogIndex(0);
    for w in writes {
        last = last.max(w.await.unwrap().expect("write"));
    }
    cluster.wait_applied(&ids, last).await;
    let reference = cluster.applied(leader);
    assert_eq!(reference.len(), 200);
    cluster.assert_applied_everywhere(&ids, &reference);
}

#[tokio::test]
async fn leader_crash_elects_a_new_leader_and_keeps_committed_entries() {
    let ids = [1, 2, 3].map(NodeId);
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let old = cluster.leader_among(&ids).await;
    for i in 0..10 {
        cluster.raft(old).client_write(i).await.unwrap();
    }
    // an uncommitted entry: the old leader is cut off before it replicates
    cluster.router.isolate(old);
    let raft = cluster.raft(old).clone();
    let orphan = tokio::spawn(async move { raft.client_write(999).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    cluster.crash(old).await;
    let rest: Vec<_> = ids.iter().copied().filter(|id| *id != old).collect();
    let new = cluster.leader_among(&rest).await;
    cluster.raft(new).client_write(10).await.unwrap();
    assert!(orphan.await.unwrap().is_err(), "the orphan write was never acknowledged");
    // the old leader restarts: its uncommitted entry is overwritten
    cluster.router.restore(old);
    cluster.start(old).await;
    let last = cluster.read_index(new).await;
    cluster.wait_applied(&ids, last).await;
    let expected: Vec<u64> = (0..=10).collect();
    cluster.assert_applied_everywhere(&ids, &expected);
}

#[tokio::test]
async fn a_follower_that_was_down_catches_up() {
    let (mut cluster, leader, down) = writes_while_a_follower_is_down(fast_config(LeaderIdMode::Standard), 50).await;
    cluster.start(down).await;
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&[down], last).await;
    assert_eq!(cluster.applied(down), (0..50).collect::<Vec<_>>());
}

#[tokio::test]
async fn restart_of_every_node_keeps_all_committed_data() {
    let ids = [1, 2, 3].map(NodeId);
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    for i in 0..20 {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    for id in ids {
        cluster.crash(id).await;
    }
    for id in ids {
        cluster.start(id).await;
    }
    let leader = cluster.leader_among(&ids).await;
    cluster.raft(leader).client_write(20).await.unwrap();
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&ids, last).await;
    cluster.assert_applied_everywhere(&ids, &(0..=20).collect::<Vec<_>>());
}

#[tokio::test]
async fn linearizable_read_after_a_write_sees_it_and_deposed_leader_cannot_read() {
    let ids = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let w = cluster.raft(leader).client_write(5).await.unwrap();
    let read_index = cluster.raft(leader).ensure_linearizable().await.unwrap();
    assert!(read_index >= w.log_id.index);
    assert!(cluster.applied(leader).contains(&5));
    // a follower must forward
    let follower = ids.iter().copied().find(|id| *id != leader).unwrap();
    assert!(
        matches!(cluster.raft(follower).ensure_linearizable().await, Err(ReadError::ForwardToLeader(f)) if f.leader_id == Some(leader))
    );
    // lease read works on a healthy leader
    cluster.raft(leader).lease_read().await.expect("lease held");
    // deposed: cut off, the leader cannot confirm a read nor hold its lease
    cluster.router.isolate(leader);
    let read = tokio::time::timeout(Duration::from_secs(3), cluster.raft(leader).ensure_linearizable()).await;
    assert!(!matches!(read, Ok(Ok(_))), "isolated leader served a linearizable read");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(cluster.raft(leader).lease_read().await.is_err(), "isolated leader kept its lease past the window");
    cluster.raft(leader).wait(WAIT).metrics(|m| m.state != ServerState::Leader, "steps down").await.unwrap();
}

#[tokio::test]
async fn a_follower_behind_the_purged_log_catches_up_from_a_snapshot() {
    let config = ferraft::Config {
        snapshot_logs_since_last: 20,
        purge_keep_entries: 5,
        // the leader holds the log for a follower behind only this far
        catch_up_retain_entries: 10,
        snapshot_chunk_bytes: 64,
        ..fast_config(LeaderIdMode::Standard)
    };
    let (mut cluster, leader, down) = writes_while_a_follower_is_down(config, 100).await;
    // snapshots are built off the write path and may lag the writes: wait
    // until the leader purged past the stopped follower's last entry, so only
    // a snapshot can bring it back
    let behind = cluster.members[&down].store.snapshot_state().entries.last().map_or(LogIndex(0), |e| e.log_id.index);
    let purged_past_follower = move |m: &ferraft::RaftMetrics<_>| m.purged.is_some_and(|p| p.index > behind);
    let m =
        cluster.raft(leader).wait(WAIT).metrics(purged_past_follower, "leader purged past the follower").await.unwrap();
    assert!(m.snapshot.is_some());
    cluster.start(down).await;
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&[down], last).await;
    let installed = cluster.members[&down].store.snapshot_state().snapshot.and_then(|s| s.meta.last_log_id);
    assert!(installed.is_some_and(|l| l.index > behind), "caught up through a snapshot: {installed:?}");
    // the recording state machine's snapshot carries every applied command
    assert_eq!(cluster.applied(down), (0..100).collect::<Vec<_>>());
}

/// A node restarted on an empty data dir knows no addresses, and a leader
/// streaming it a snapshot sends it no heartbeats: the chunks themselves must
/// name the leader, or the node cannot answer them and never catches up.
#[tokio::test]
async fn a_follower_restarted_with_an_empty_data_dir_is_caught_up_by_snapshot() {
    let config = ferraft::Config {
        snapshot_logs_since_last: 20,
        purge_keep_entries: 5,
        // the leader holds the log for a follower behind only this far (else
        // it feeds the stopped node from the store and never streams a snapshot)
        catch_up_retain_entries: 10,
        snapshot_chunk_bytes: 64,
        // the wiped node's log went backwards: the documented remedy
        allow_log_reversion: true,
        ..fast_config(LeaderIdMode::Standard)
    };
    let (mut cluster, leader, down) = writes_while_a_follower_is_down(config, 100).await;
    let streaming = move |m: &ferraft::RaftMetrics<_>| {
        m.replication.as_ref().and_then(|r| r.get(&down)).is_some_and(|p| p.snapshot.is_some())
    };
    cluster.raft(leader).wait(WAIT).metrics(streaming, "leader streams a snapshot to the stopped node").await.unwrap();
    // the data dir is lost: the node comes back on a fresh store, a new
    // incarnation, which the operator readmits (issue 18)
    cluster.members.remove(&down);
    cluster.start(down).await;
    cluster.raft(leader).readmit(down).await.expect("readmitted");
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&[down], last).await;
    let installed = cluster.members[&down].store.snapshot_state().snapshot.and_then(|s| s.meta.last_log_id);
    assert!(installed.is_some(), "caught up through a snapshot");
    assert_eq!(cluster.applied(down), (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn with_snapshots_off_memory_keeps_only_the_log_cache_and_a_lagging_follower_still_catches_up() {
    let config =
        ferraft::Config { snapshot_logs_since_last: 0, log_cache_entries: 10, ..fast_config(LeaderIdMode::Standard) };
    let (mut cluster, leader, down) = writes_while_a_follower_is_down(config, 100).await;
    let m = cluster.raft(leader).wait(WAIT).metrics(|m| m.purged.is_some(), "leader trimmed memory").await.unwrap();
    assert!(m.last_log_index - m.purged.unwrap().index <= 10 + 10 / 8 + 1, "memory holds about the cache only");
    // the store keeps every entry the memory dropped, unless a snapshot covers
    // it; checked on one view of the store, as the leader may build an
    // on-demand snapshot for the stopped follower and purge at any moment
    let acknowledged = cluster.read_index(leader).await;
    let stored = cluster.members[&leader].store.snapshot_state();
    let store_purged = stored.last_purged.map_or(LogIndex(0), |p| p.index);
    let snapshot_last = stored.snapshot.as_ref().and_then(|s| s.meta.last_log_id).map_or(LogIndex(0), |l| l.index);
    assert!(store_purged <= snapshot_last, "purged to {store_purged}, past the snapshot's {snapshot_last}");
    let held: Vec<LogIndex> = stored.entries.iter().map(|e| e.log_id.index).collect();
    let needed: Vec<LogIndex> = (store_purged + 1).through(acknowledged).collect();
    assert!(held.starts_with(&needed), "the store lost an entry after its purge point {store_purged}: {held:?}");
    cluster.start(down).await;
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&[down], last).await;
    assert_eq!(cluster.applied(down), (0..100).collect::<Vec<_>>(), "caught up (from the store: snapshots are off)");
}

/// Starts nodes 1-3, stops one follower and writes commands `0..writes`
/// through the leader; returns the cluster, the leader and the stopped node.
async fn writes_while_a_follower_is_down(config: ferraft::Config, writes: u64) -> (Cluster, NodeId, NodeId) {
    let ids = [1, 2, 3].map(NodeId);
    let mut cluster = Cluster::start_initialized(config, &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let down = ids.iter().copied().find(|id| *id != leader).unwrap();
    cluster.crash(down).await;
    for i in 0..writes {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    (cluster, leader, down)
}
