//! Periodic snapshots are encoded off the Raft task: a slow encode must not
//! stall replication, and the snapshot holds the state as of when it was taken.

mod support;

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferraft::mem::MemLogStore;
use ferraft::{BasicNode, Config, LeaderIdMode, LogId, LogIndex, Raft, SnapshotJob, StateMachine, StorageError};
use support::hooked_store::{Hooked, Mem, StoreHooks};
use support::{fast_config, nodes, WAIT};

/// Applies `u64` commands into a list; its first snapshot job waits for the
/// test to open a gate before encoding the copy it took. Every job records
/// the copy it encoded, in the order they ran.
#[derive(Clone, Default)]
struct GatedSm {
    applied: Arc<Mutex<Vec<u64>>>,
    gate: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
    encoded: Arc<Mutex<Vec<Vec<u64>>>>,
}

impl StateMachine for GatedSm {
    type Command = u64;
    type Response = ();

    fn apply(&mut self, _log_id: LogId, command: &u64) {
        self.applied.lock().unwrap().push(*command);
    }

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        Ok(Bytes::from(serde_json::to_vec(&*self.applied.lock().unwrap()).unwrap()))
    }

    fn snapshot_job(&mut self) -> SnapshotJob {
        let copy = self.applied.lock().unwrap().clone();
        let gate = self.gate.lock().unwrap().take();
        let encoded = self.encoded.clone();
        Box::new(move || {
            if let Some(gate) = gate {
                let _ = gate.recv();
            }
            let bytes = Bytes::from(serde_json::to_vec(&copy).unwrap());
            encoded.lock().unwrap().push(copy);
            Ok(bytes)
        })
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        *self.applied.lock().unwrap() = serde_json::from_slice(data).unwrap();
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_snapshot_encode_does_not_stall_writes_and_captures_its_point_in_time() {
    let config = Config { snapshot_logs_since_last: 10, ..fast_config(LeaderIdMode::Standard) };
    let (open, gate) = mpsc::channel();
    let sm = GatedSm { gate: Arc::new(Mutex::new(Some(gate))), ..GatedSm::default() };
    let store = MemLogStore::<u64, BasicNode>::new();
    let raft = Raft::new(1, config, ferraft::mem::MemRouter::new().network(), Box::new(store.clone()), sm.clone())
        .await
        .unwrap();
    raft.initialize(nodes(&[1])).await.unwrap();
    raft.wait(WAIT).for_leader().await.unwrap();

    // Crossing the threshold starts the job, which now waits at the gate.
    for n in 0..15 {
        raft.client_write(n).await.unwrap();
    }
    // The node keeps committing and applying meanwhile.
    let more = tokio::time::timeout(Duration::from_secs(5), async {
        for n in 15..40 {
            raft.client_write(n).await.unwrap();
        }
    });
    more.await.expect("writes complete while the snapshot is being encoded");
    assert_eq!(sm.applied.lock().unwrap().len(), 40);
    assert_eq!(raft.metrics().borrow().snapshot, None, "not saved before the encode finishes");

    open.send(()).unwrap();
    raft.wait(WAIT).metrics(|m| m.snapshot.is_some(), "snapshot saved").await.unwrap();
    // The gated job encoded the copy taken when it started: the commands
    // applied by then, in order, not the 40 applied by the time it encoded.
    let gated = sm.encoded.lock().unwrap()[0].clone();
    assert!((8..40).contains(&gated.len()), "{} commands in the snapshot", gated.len());
    assert_eq!(gated, (0..gated.len() as u64).collect::<Vec<_>>());
    // The entries applied meanwhile may have started the next job already:
    // whichever snapshot the store holds now is one consistent point in time.
    let saved = store.snapshot_state().snapshot.expect("the store has the snapshot");
    let state: Vec<u64> = serde_json::from_slice(&saved.data.to_bytes().unwrap()).unwrap();
    assert_eq!(state, (0..state.len() as u64).collect::<Vec<_>>());
    // Log index = command + 2 (initial membership entry, then the leader's blank entry).
    assert_eq!(saved.meta.last_log_id.unwrap().index, LogIndex(state.len() as u64 + 2));
    raft.shutdown().await.unwrap();
}

/// A [`MemLogStore`] whose snapshots are made current only by a job's saver,
/// which waits at a gate the first time; on the Raft task (through
/// `save_staged_snapshot`) they may not be.
struct SavedByJobs {
    gate: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
}

struct GatedSaver {
    store: MemLogStore<u64, BasicNode>,
    gate: Option<mpsc::Receiver<()>>,
}

impl ferraft::SnapshotSaver<BasicNode> for GatedSaver {
    fn make_current(&mut self, snapshot: &ferraft::Snapshot<BasicNode>) -> Result<ferraft::MadeCurrent, StorageError> {
        if let Some(gate) = self.gate.take() {
            let _ = gate.recv();
        }
        ferraft::LogStore::<u64, BasicNode>::save_snapshot(&mut self.store, snapshot)?;
        Ok(ferraft::MadeCurrent::Saved)
    }
}

impl StoreHooks for SavedByJobs {
    fn save_snapshot(&mut self, _: &mut Mem, _: &ferraft::Snapshot<BasicNode>) -> Result<(), StorageError> {
        panic!("a snapshot made current on the Raft task")
    }
    fn snapshot_saver(&mut self, store: &mut Mem) -> Option<Box<dyn ferraft::SnapshotSaver<BasicNode>>> {
        let gate = self.gate.lock().unwrap().take();
        Some(Box::new(GatedSaver { store: store.clone(), gate }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_makes_its_snapshot_current_and_the_log_is_purged_only_after() {
    let config = Config { snapshot_logs_since_last: 10, purge_keep_entries: 0, ..fast_config(LeaderIdMode::Standard) };
    let (open, gate) = mpsc::channel();
    let memory = MemLogStore::<u64, BasicNode>::new();
    let store = Hooked { store: memory.clone(), hooks: SavedByJobs { gate: Arc::new(Mutex::new(Some(gate))) } };
    let sm = GatedSm::default();
    let raft =
        Raft::new(1, config, ferraft::mem::MemRouter::new().network(), Box::new(store), sm.clone()).await.unwrap();
    raft.initialize(nodes(&[1])).await.unwrap();
    raft.wait(WAIT).for_leader().await.unwrap();

    // the first snapshot's job waits at the gate while making it current
    for n in 0..40 {
        raft.client_write(n).await.unwrap();
    }
    assert_eq!(sm.applied.lock().unwrap().len(), 40, "writes go on while the snapshot is being made current");
    assert_eq!(raft.metrics().borrow().snapshot, None, "not current before its job says so");
    assert_eq!(memory.snapshot_state().last_purged, None, "nothing purged before the snapshot is current");

    open.send(()).unwrap();
    let m = raft.wait(WAIT).metrics(|m| m.purged.is_some(), "log purged behind the snapshot").await.unwrap();
    let saved = memory.snapshot_state().snapshot.expect("made current by the job");
    assert!(m.purged.unwrap().index <= saved.meta.last_log_id.unwrap().index);
    raft.shutdown().await.unwrap();
}
