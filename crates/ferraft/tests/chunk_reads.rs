//! A leader reads the chunks of a snapshot it sends off the Raft task: a
//! slow read of the snapshot's file must not stall its clients' writes.

mod support;

use std::io;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferraft::mem::{MemLogStore, MemRouter, RecordingStateMachine};
use ferraft::{BasicNode, Config, LeaderIdMode, LogStore, Raft, SnapshotData, SnapshotSource, StorageError};
use support::hooked_store::{Hooked, Mem, StoreHooks};
use support::{fast_config, nodes, WAIT};

/// Where a test puts a gate for the next read of a snapshot to wait at.
type Gate = Arc<Mutex<Option<mpsc::Receiver<()>>>>;

/// A snapshot's bytes whose next read, once a gate is set, waits at it (the
/// node reads its snapshot at startup: that read must not wait).
#[derive(Debug)]
struct GatedSource {
    bytes: Bytes,
    gate: Gate,
}

impl SnapshotSource for GatedSource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn checksum(&self) -> u32 {
        crc32c::crc32c(&self.bytes)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            let _ = gate.recv();
        }
        let start = (offset as usize).min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Hands out the store's snapshot through a [`GatedSource`].
struct GatedSnapshot {
    gate: Gate,
}

impl StoreHooks for GatedSnapshot {
    fn read_state(&mut self, store: &mut Mem) -> Result<ferraft::LogState<u64, BasicNode>, StorageError> {
        let mut state = store.read_state()?;
        let snapshot = state.snapshot.take().expect("the store holds a snapshot");
        let bytes = snapshot.data.to_bytes().unwrap();
        let source = GatedSource { bytes, gate: self.gate.clone() };
        let data = SnapshotData::from(Arc::new(source) as Arc<dyn SnapshotSource>);
        state.snapshot = Some(ferraft::Snapshot { meta: snapshot.meta.clone(), data });
        Ok(state)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_chunk_read_does_not_stall_the_leaders_writes() {
    let config = Config { purge_keep_entries: 0, ..fast_config(LeaderIdMode::Standard) };
    let router = MemRouter::new();
    // a one-node cluster with a snapshot covering its whole log
    let memory = MemLogStore::<u64, BasicNode>::new();
    let sm = RecordingStateMachine::<u64>::new();
    let raft = Raft::new(1, config.clone(), router.network(), Box::new(memory.clone()), sm.clone()).await.unwrap();
    raft.initialize(nodes(&[1])).await.unwrap();
    raft.wait(WAIT).for_leader().await.unwrap();
    for n in 0..20 {
        raft.client_write(n).await.unwrap();
    }
    raft.trigger_snapshot().await.unwrap().expect("a snapshot");
    raft.wait(WAIT).metrics(|m| m.purged.is_some(), "log purged behind the snapshot").await.unwrap();
    raft.shutdown().await.unwrap();

    // restarted; then the next read of its snapshot waits at a gate
    let gate = Gate::default();
    let store = Hooked { store: memory, hooks: GatedSnapshot { gate: gate.clone() } };
    let raft = Raft::new(1, config.clone(), router.network(), Box::new(store), sm).await.unwrap();
    router.register(support::addr(1), raft.clone());
    raft.wait(WAIT).for_leader().await.unwrap();
    let (open, closed) = mpsc::channel();
    *gate.lock().unwrap() = Some(closed);
    let learner_sm = RecordingStateMachine::<u64>::new();
    let learner =
        Raft::new(2, config, router.network(), Box::new(MemLogStore::new()), learner_sm.clone()).await.unwrap();
    router.register(support::addr(2), learner.clone());
    raft.add_learner(2, BasicNode::new(support::addr(2)), false).await.unwrap();

    // the learner needs the snapshot, whose read now waits; writes go on
    let started = std::time::Instant::now();
    while gate.lock().unwrap().is_some() {
        assert!(started.elapsed() < WAIT, "no snapshot chunk was read for the learner");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let writes = tokio::time::timeout(Duration::from_secs(5), async {
        for n in 20..30 {
            raft.client_write(n).await.unwrap();
        }
    });
    writes.await.expect("the leader commits while a snapshot chunk is being read");
    assert!(learner.metrics().borrow().snapshot.is_none(), "the gated read has not finished");

    open.send(()).unwrap();
    let target = raft.metrics().borrow().last_log_index;
    learner.wait(WAIT).applied_at_least(target).await.unwrap();
    assert_eq!(learner_sm.applied().len(), 30, "the snapshot's 20 writes and the 10 after it");
    learner.shutdown().await.unwrap();
    raft.shutdown().await.unwrap();
}
