//! A follower that lags behind the leader's in-memory log cache catches up
//! from entries the leader reads back from its log store, off the Raft task;
//! it gets a snapshot only when the store no longer holds what it needs (or
//! cannot read ranges at all).

mod support;

use ferraft::{BasicNode, LeaderIdMode, LogIndex, NodeId, Raft, ReadRange, ReplicationMetrics};
use support::hooked_store::{Hooked, Mem, StoreHooks};
use support::{addr, fast_config, Cluster, Member, Sm, WAIT};

/// Snapshots off, a cache of 10 entries and small appends: a follower that
/// missed 300 writes needs many reads from the store.
fn small_cache_config() -> ferraft::Config {
    ferraft::Config {
        snapshot_logs_since_last: 0,
        log_cache_entries: 10,
        max_entries_per_append: 7,
        ..fast_config(LeaderIdMode::Standard)
    }
}

/// What the leader reports of `peer`'s catch-up once it is caught up.
async fn caught_up_report(cluster: &Cluster, leader: NodeId, peer: NodeId) -> ReplicationMetrics {
    let caught_up = move |m: &ferraft::RaftMetrics<BasicNode>| {
        m.replication.as_ref().and_then(|r| r.get(&peer)).is_some_and(|p| p.lag_entries == 0)
    };
    let m = cluster.raft(leader).wait(WAIT).metrics(caught_up, "follower caught up").await.unwrap();
    m.replication.unwrap()[&peer]
}

#[tokio::test]
async fn a_follower_behind_the_log_cache_catches_up_from_the_store_without_a_snapshot() {
    let ids = [1, 2, 3].map(NodeId);
    let mut cluster = Cluster::start_initialized(small_cache_config(), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let down = ids.iter().copied().find(|id| *id != leader).unwrap();
    cluster.crash(down).await;
    for i in 0..300 {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    let behind = cluster.members[&down].store.snapshot_state().entries.last().map_or(LogIndex(0), |e| e.log_id.index);
    // the cache is trimmed step by step: wait for the trim the scenario needs, not the first one
    let far_behind = |m: &ferraft::RaftMetrics<BasicNode>| m.purged.is_some_and(|p| p.index > behind + 100);
    cluster.raft(leader).wait(WAIT).metrics(far_behind, "the follower lags far behind the cache").await.unwrap();

    cluster.start(down).await;
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&[down], last).await;
    assert_eq!(cluster.applied(down), (0..300).collect::<Vec<_>>());
    let stored = cluster.members[&down].store.snapshot_state();
    assert_eq!(stored.snapshot.map(|s| s.meta.last_log_id), None, "no snapshot reached the follower");
    let report = caught_up_report(&cluster, leader, down).await;
    assert_eq!(report.snapshots_started, 0, "{report:?}");
    assert!(report.entries_from_store >= 250, "entries came from the store: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_and_purges_during_a_catch_up_never_send_the_follower_a_snapshot() {
    // a snapshot every 20 entries, purged right behind it: only the hold for
    // the catching-up follower keeps the entries it needs in the store
    let config = ferraft::Config { snapshot_logs_since_last: 20, purge_keep_entries: 0, ..small_cache_config() };
    let ids = [1, 2, 3].map(NodeId);
    let mut cluster = Cluster::start_initialized(config, &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let down = ids.iter().copied().find(|id| *id != leader).unwrap();
    cluster.crash(down).await;
    for i in 0..300 {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    let behind = cluster.members[&down].store.snapshot_state().entries.last().map_or(LogIndex(0), |e| e.log_id.index);
    // snapshots are built one at a time off the Raft task, behind the writes
    // on a loaded machine: wait for one that covers the gap, not the first one
    let covers = |m: &ferraft::RaftMetrics<BasicNode>| m.snapshot.is_some_and(|s| s.index > behind + 100);
    cluster
        .raft(leader)
        .wait(WAIT)
        .metrics(covers, "the leader's snapshots cover what the follower lacks")
        .await
        .unwrap();

    // the follower catches up while writes go on, and snapshots and purges with them
    cluster.start(down).await;
    let raft = cluster.raft(leader).clone();
    let writer = tokio::spawn(async move {
        for i in 300..600 {
            raft.client_write(i).await.unwrap();
        }
    });
    writer.await.unwrap();
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&[down], last).await;
    assert_eq!(cluster.applied(down), (0..600).collect::<Vec<_>>());
    // (the follower takes snapshots of its own: its store cannot tell)
    let report = caught_up_report(&cluster, leader, down).await;
    assert_eq!(report.snapshots_started, 0, "{report:?}");
    assert!(report.entries_from_store > 0, "{report:?}");
    // once it caught up, the hold is gone: the next snapshot purges behind
    // itself (the purge runs after the answer; a snapshot taken before the
    // leader heard the follower's last acknowledgement may still hold, so a
    // few writes and snapshots are allowed)
    let store = &cluster.members[&leader].store;
    let purged = tokio::time::timeout(WAIT, async {
        for i in 600.. {
            cluster.raft(leader).trigger_snapshot().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if store.snapshot_state().last_purged.is_some_and(|p| p.index >= last) {
                return;
            }
            cluster.raft(leader).client_write(i).await.unwrap();
        }
    });
    purged.await.expect("the leader purged its store once the follower caught up");
}

/// Cannot read ranges, as a user's store may not.
struct NoRangeReads;

impl StoreHooks for NoRangeReads {
    fn read_range(&mut self, _: &mut Mem, _: std::ops::Range<LogIndex>) -> Option<ReadRange<u64, BasicNode>> {
        None
    }
}

/// Starts node `id` on a store that cannot read ranges.
async fn start_without_range_reads(cluster: &mut Cluster, id: NodeId) {
    let store = cluster.members.remove(&id).map(|m| m.store).unwrap_or_default();
    let sm = Sm::new();
    let network = cluster.router.network();
    let raft = Raft::new(
        id,
        cluster.config.clone(),
        network,
        Box::new(Hooked { store: store.clone(), hooks: NoRangeReads }),
        sm.clone(),
    )
    .await
    .expect("node starts");
    cluster.router.register(addr(id), raft.clone());
    cluster.members.insert(id, Member { raft, store, sm });
}

#[tokio::test]
async fn a_store_that_cannot_read_ranges_still_catches_up_a_follower_through_a_snapshot() {
    let ids = [1, 2, 3].map(NodeId);
    let mut cluster = Cluster::new(small_cache_config());
    for id in ids {
        start_without_range_reads(&mut cluster, id).await;
    }
    cluster.raft(1).initialize(support::nodes(&ids)).await.expect("initialize");
    let leader = cluster.leader_among(&ids).await;
    let down = ids.iter().copied().find(|id| *id != leader).unwrap();
    cluster.crash(down).await;
    for i in 0..100 {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    cluster.raft(leader).wait(WAIT).metrics(|m| m.purged.is_some(), "leader trimmed its cache").await.unwrap();
    let _ = cluster.raft(down).shutdown().await;
    start_without_range_reads(&mut cluster, down).await;
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&[down], last).await;
    assert_eq!(cluster.applied(down), (0..100).collect::<Vec<_>>());
    let report = caught_up_report(&cluster, leader, down).await;
    assert!(report.snapshots_started >= 1, "{report:?}");
    assert_eq!(report.entries_from_store, 0, "{report:?}");
}
