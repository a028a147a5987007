//! A snapshot transfer cut by a leader change resumes: the new leader, which
//! holds the same snapshot bytes, goes on from what the learner already
//! holds instead of sending every byte again. A learner killed while it
//! installs (decoding off its Raft task) is caught up after its restart.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferraft::mem::MemLogStore;
use ferraft::{
    BasicNode, LeaderIdMode, LogId, LogIndex, MessageBody, NodeId, Raft, SnapshotInstall, StateMachine, StorageError,
};
use support::{addr, fast_config, Cluster, WAIT};

const CHUNK_BYTES: usize = 256;
/// Ten chunks a second: the transfer takes seconds, long enough to move
/// the leadership in the middle of it.
const RATE: u64 = 10 * CHUNK_BYTES as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_transfer_cut_by_a_leader_change_resumes_from_the_bytes_the_learner_holds() {
    let config = ferraft::Config {
        snapshot_logs_since_last: 0,
        purge_keep_entries: 0,
        catch_up_retain_entries: 0,
        snapshot_chunk_bytes: CHUNK_BYTES,
        snapshot_max_bytes_per_s: RATE,
        ..fast_config(LeaderIdMode::Standard)
    };
    let voters = [1, 2, 3].map(NodeId);
    let mut cluster = Cluster::start_initialized(config, &voters).await;
    let leader = cluster.leader_among(&voters).await;
    for i in 0..150 {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&voters, last).await;
    // every voter snapshots the same applied state: the same bytes
    let mut covered = Vec::new();
    for id in voters {
        covered.push(cluster.raft(id).trigger_snapshot().await.unwrap());
    }
    assert!(covered.windows(2).all(|w| w[0] == w[1]), "the voters' snapshots cover the same entries: {covered:?}");

    let sent_to_learner = Arc::new(AtomicU64::new(0));
    let counted = sent_to_learner.clone();
    cluster.router.set_tap(move |message| {
        if let MessageBody::Snapshot(chunk) = &message.body {
            if message.envelope.to == NodeId(4) {
                counted.fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
            }
        }
    });
    cluster.start(4).await;
    cluster.raft(leader).add_learner(4, BasicNode::new(addr(4)), false).await.unwrap();
    let total = {
        let mut metrics = cluster.raft(leader).metrics();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let report = metrics.borrow().replication.as_ref().and_then(|r| r.get(&NodeId(4)).copied());
            if let Some(transfer) = report.and_then(|r| r.snapshot) {
                if transfer.bytes_sent >= transfer.bytes_total / 3 {
                    break transfer.bytes_total;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "the transfer did not get a third through");
            let _ = tokio::time::timeout(Duration::from_millis(20), metrics.changed()).await;
        }
    };
    assert!(total > 20 * CHUNK_BYTES as u64, "a transfer of many chunks: {total} bytes");
    let next = voters.into_iter().find(|id| *id != leader).unwrap();
    cluster.raft(leader).transfer_leader(Some(next)).await.unwrap();
    cluster.raft(4).wait(WAIT * 3).applied_at_least(last).await.unwrap();

    let sent = sent_to_learner.load(Ordering::Relaxed);
    // one chunk at offset 0 from the new leader before the learner says
    // where it stands, and one resent when the leadership moved
    assert!(sent <= total + 2 * CHUNK_BYTES as u64, "{sent} bytes sent for a {total}-byte snapshot");
    assert_eq!(cluster.applied(4)[..150], (0..150).collect::<Vec<u64>>()[..]);
}

/// The recording state machine, whose decode of a received snapshot takes
/// `DECODE` (on the blocking thread the install runs on).
#[derive(Clone)]
struct SlowDecode(support::Sm);

const DECODE: Duration = Duration::from_millis(1_500);

impl StateMachine for SlowDecode {
    type Command = u64;
    type Response = LogIndex;

    fn apply(&mut self, log_id: LogId, command: &u64) -> LogIndex {
        self.0.apply(log_id, command)
    }

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        self.0.snapshot()
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        self.0.restore(data)
    }

    fn decode_snapshot(reader: &mut dyn std::io::Read) -> Result<SnapshotInstall<Self>, StorageError> {
        std::thread::sleep(DECODE);
        let install = support::Sm::decode_snapshot(reader)?;
        Ok(Box::new(move |machine: &mut SlowDecode| install(&mut machine.0)))
    }
}

async fn start_slow(
    cluster: &Cluster,
    store: &MemLogStore<u64, BasicNode>,
) -> (Raft<SlowDecode, BasicNode>, support::Sm) {
    let sm = support::Sm::new();
    let network = cluster.router.network();
    let raft = Raft::new(4, cluster.config.clone(), network, Box::new(store.clone()), SlowDecode(sm.clone()))
        .await
        .expect("the learner starts");
    cluster.router.register(addr(4), raft.clone());
    (raft, sm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_learner_restarted_mid_install_is_caught_up_after_its_restart() {
    let config = ferraft::Config {
        snapshot_logs_since_last: 20,
        purge_keep_entries: 0,
        catch_up_retain_entries: 0,
        ..fast_config(LeaderIdMode::Standard)
    };
    let voters = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(config, &voters).await;
    let leader = cluster.leader_among(&voters).await;
    for i in 0..100 {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    let purged = |m: &ferraft::RaftMetrics<BasicNode>| m.purged.is_some_and(|p| p.index > LogIndex(50));
    cluster.raft(leader).wait(WAIT).metrics(purged, "the leader purged its log").await.unwrap();

    let store = MemLogStore::new();
    let (learner, _) = start_slow(&cluster, &store).await;
    cluster.raft(leader).add_learner(4, BasicNode::new(addr(4)), false).await.unwrap();
    let installing = |m: &ferraft::RaftMetrics<BasicNode>| {
        let report = m.replication.as_ref().and_then(|r| r.get(&NodeId(4)).copied());
        report.and_then(|r| r.snapshot).is_some_and(|s| s.installing)
    };
    cluster.raft(leader).wait(WAIT).metrics(installing, "the learner installing").await.unwrap();
    // killed while it decodes: nothing of the snapshot was made current
    cluster.router.unregister(&addr(4));
    learner.shutdown().await.unwrap();
    assert!(store.snapshot_state().snapshot.is_none(), "killed before the install saved anything");

    let (learner, sm) = start_slow(&cluster, &store).await;
    let last = cluster.read_index(leader).await;
    learner.wait(WAIT * 2).applied_at_least(last).await.unwrap();
    let applied: Vec<u64> = sm.applied().into_iter().map(|(_, c)| c).collect();
    assert_eq!(applied, (0..100).collect::<Vec<_>>());
    learner.shutdown().await.unwrap();
}
