//! A snapshot's transfer and its install are tracked apart: while a follower
//! installs (however long that takes) the leader resends nothing and reports
//! no stall.

mod support;

use std::time::Duration;

use bytes::Bytes;
use ferraft::{BasicNode, LeaderIdMode, LogId, LogIndex, NodeId, Raft, SnapshotJob, StateMachine, StorageError, Term};
use support::{addr, fast_config, Cluster, Sm, WAIT};

/// The recording state machine, with an install that takes `RESTORE` (the
/// node's task is busy for that long, as with a large state).
#[derive(Clone)]
struct SlowRestore(Sm);

const RESTORE: Duration = Duration::from_millis(1_500);

impl StateMachine for SlowRestore {
    type Command = u64;
    type Response = LogIndex;

    fn apply(&mut self, log_id: LogId, command: &u64) -> LogIndex {
        self.0.apply(log_id, command)
    }

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        self.0.snapshot()
    }

    fn snapshot_job(&mut self) -> SnapshotJob {
        self.0.snapshot_job()
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        std::thread::sleep(RESTORE);
        self.0.restore(data)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_long_install_is_not_a_stalled_transfer_and_is_not_resent() {
    let config = ferraft::Config {
        snapshot_logs_since_last: 20,
        purge_keep_entries: 0,
        catch_up_retain_entries: 0,
        ..fast_config(LeaderIdMode::Standard)
    };
    let ids = [1, 2, 3].map(NodeId);
    let mut cluster = Cluster::start_initialized(config.clone(), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let down = ids.iter().copied().find(|id| *id != leader).unwrap();
    cluster.crash(down).await;
    for i in 0..100 {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    let behind = cluster.members[&down].store.snapshot_state().entries.last().map_or(LogIndex(0), |e| e.log_id.index);
    let purged_past = move |m: &ferraft::RaftMetrics<BasicNode>| m.purged.is_some_and(|p| p.index > behind);
    cluster.raft(leader).wait(WAIT).metrics(purged_past, "leader purged past the follower").await.unwrap();

    // the follower comes back on its old store, with an install that takes 1.5 s
    // on a runtime of its own: its blocking install must not hold up the
    // other nodes' tasks (they share the test's runtime)
    let store = cluster.members[&down].store.clone();
    let sm = Sm::new();
    let (network, machine, config) = (cluster.router.network(), SlowRestore(sm.clone()), config.clone());
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let node_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let raft = Raft::new(down, config, network, Box::new(store), machine).await.expect("node starts");
            handle_tx.send(raft.clone()).unwrap();
            let _ = stop_rx.await;
            let _ = raft.shutdown().await;
        });
    });
    let slow: Raft<SlowRestore, BasicNode> = handle_rx.recv().unwrap();
    cluster.router.register(addr(down), slow);
    let mut metrics = cluster.raft(leader).metrics();
    let mut saw_installing = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let report = metrics.borrow().replication.as_ref().and_then(|r| r.get(&down).copied());
        if let Some(report) = report {
            if report.snapshot.is_some_and(|s| s.installing) {
                saw_installing = true;
                assert_eq!(report.stall, None, "installing, not stalled: {report:?}");
            }
            if report.lag_entries == 0 && report.matched.is_some() {
                assert!(saw_installing, "the leader heard the install start: {report:?}");
                assert_eq!(report.snapshots_started, 1, "one transfer, not restarted: {report:?}");
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the follower did not catch up");
        let _ = tokio::time::timeout(Duration::from_millis(20), metrics.changed()).await;
    }
    assert_eq!(sm.applied().into_iter().map(|(_, c)| c).collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
    let _ = stop_tx.send(());
    node_thread.join().unwrap();
}

/// Stored snapshot bytes that no longer match the checksum recorded when
/// they were written (a store that checks them only on their first full read).
#[derive(Debug)]
struct Rotted(Bytes);

impl ferraft::SnapshotSource for Rotted {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn checksum(&self) -> u32 {
        ferraft::SnapshotData::from(self.0.clone()).checksum() ^ 1
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.0[(offset as usize).min(self.0.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[tokio::test]
async fn a_node_does_not_start_from_a_stored_snapshot_that_fails_its_checksum() {
    let mut store = ferraft::mem::MemLogStore::<u64, BasicNode>::new();
    let nodes = [(NodeId(1), BasicNode::new(addr(1)))].into_iter().collect();
    let membership =
        ferraft::StoredMembership { log_id: None, membership: ferraft::Membership::new_uniform(nodes).unwrap() };
    let meta = ferraft::SnapshotMeta {
        last_log_id: Some(LogId::new(ferraft::LeaderId::new(Term(1), NodeId(1)), LogIndex(3))),
        membership,
        changes: Default::default(),
    };
    // bytes the state machine decodes fine: only the checksum tells
    let bytes = Bytes::from(serde_json::to_vec(&Vec::<(LogId, u64)>::new()).unwrap());
    let data =
        ferraft::SnapshotData::from(std::sync::Arc::new(Rotted(bytes)) as std::sync::Arc<dyn ferraft::SnapshotSource>);
    ferraft::LogStore::save_snapshot(&mut store, &ferraft::Snapshot { meta, data }).unwrap();
    let network = ferraft::mem::MemRouter::new().network();
    let started = Raft::new(1, fast_config(LeaderIdMode::Standard), network, Box::new(store), Sm::new()).await;
    assert!(started.is_err(), "a state the store cannot vouch for is not loaded");
}
