//! A node's background jobs run at `Config::background_job_nice` steps below
//! its own threads (Linux), so a snapshot or a catch-up gives way to the
//! Raft tasks serving clients on a machine whose cores the nodes share.
#![cfg(target_os = "linux")]

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferraft::mem::MemLogStore;
use ferraft::{BasicNode, Config, LeaderIdMode, LogId, Raft, SnapshotJob, StateMachine, StorageError};
use support::{fast_config, nodes, WAIT};

/// The calling thread's nice value.
fn thread_nice() -> i32 {
    // SAFETY: no memory effects; the calling thread's own id.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) }
}

/// Records the nice value of the thread each snapshot job ran on.
#[derive(Clone, Default)]
struct NiceRecordingSm {
    applied: Arc<Mutex<Vec<u64>>>,
    job_nice: Arc<Mutex<Vec<i32>>>,
}

impl StateMachine for NiceRecordingSm {
    type Command = u64;
    type Response = ();

    fn apply(&mut self, _log_id: LogId, command: &u64) {
        self.applied.lock().unwrap().push(*command);
    }

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        Ok(Bytes::from(serde_json::to_vec(&*self.applied.lock().unwrap()).unwrap()))
    }

    fn snapshot_job(&mut self) -> SnapshotJob {
        let bytes = self.snapshot();
        let job_nice = self.job_nice.clone();
        Box::new(move || {
            job_nice.lock().unwrap().push(thread_nice());
            bytes
        })
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        *self.applied.lock().unwrap() = serde_json::from_slice(data).unwrap();
        Ok(())
    }
}

/// Runs a one-node cluster to its first snapshot; the nice values its
/// snapshot jobs ran at.
async fn snapshot_job_nice(background_job_nice: u8) -> Vec<i32> {
    let config = Config { snapshot_logs_since_last: 5, background_job_nice, ..fast_config(LeaderIdMode::Standard) };
    let sm = NiceRecordingSm::default();
    let store = MemLogStore::<u64, BasicNode>::new();
    let network = ferraft::mem::MemRouter::new().network();
    let raft = Raft::new(1, config, network, Box::new(store), sm.clone()).await.unwrap();
    raft.initialize(nodes(&[1])).await.unwrap();
    raft.wait(WAIT).for_leader().await.unwrap();
    for n in 0..10 {
        raft.client_write(n).await.unwrap();
    }
    raft.wait(WAIT).metrics(|m| m.snapshot.is_some(), "snapshot saved").await.unwrap();
    raft.shutdown().await.unwrap();
    let recorded = sm.job_nice.lock().unwrap().clone();
    recorded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_job_runs_at_the_configured_nice_value() {
    let base = thread_nice();
    let recorded = snapshot_job_nice(6).await;
    assert!(!recorded.is_empty());
    assert!(recorded.iter().all(|n| *n == (base + 6).min(19)), "base {base}, jobs at {recorded:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_setting_of_zero_snapshot_jobs_run_at_the_nodes_priority() {
    let base = thread_nice();
    let recorded = snapshot_job_nice(0).await;
    assert!(!recorded.is_empty());
    assert!(recorded.iter().all(|n| *n == base), "base {base}, jobs at {recorded:?}");
}
