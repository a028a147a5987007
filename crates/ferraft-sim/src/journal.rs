//! What a node's host did inside one call, in order: the simulated store,
//! state machine, transport, snapshot spawner and reply channels write here,
//! and the simulator reads it back after the call to run its checkers,
//! schedule deliveries and fsyncs, and record the client history.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use ferraft::runtime::{IndexResult, MembershipResult, SnapshotTask, WriteResult};
use ferraft::{BasicNode, LogId, LogIndex, Message, NodeId};

use crate::disk::SimEntry;
use crate::invariants::RequestHandle;
use crate::kv_machine::SimKv;
use crate::model::Put;

/// The committed log id on a disk, and the configs of the membership in
/// force there (when the disk still knows it).
pub type Committed = (Option<LogId>, Option<Vec<BTreeSet<NodeId>>>);

/// One thing a host did.
pub enum Record {
    /// Entries went to the page cache after `prev` (`None`: not right after
    /// the last entry on disk); `committed`: what the disk said was committed then.
    Appended { entries: Vec<SimEntry>, prev: Option<Option<LogId>>, committed: Committed },
    /// These entries were truncated.
    Truncated(Vec<LogId>),
    /// The log was purged up to here.
    Purged(LogId),
    /// A snapshot after `index`, of a state with `digest`, was saved.
    SnapshotSaved { index: LogIndex, digest: u64 },
    /// The state machine applied write `op` at `log_id`.
    Applied { log_id: LogId, op: u64 },
    /// The state machine was replaced by the snapshot saved just before.
    Restored,
    /// A message was handed to the transport.
    Sent(Box<Message<Put, BasicNode>>),
    /// A snapshot job was spawned.
    SnapshotTask(SnapshotTask<BasicNode>),
    /// Write `op` was answered.
    WriteAnswered { op: u64, result: WriteResult<SimKv, BasicNode> },
    /// A read of `key` invoked at stamp `invoke` was answered: the value it
    /// saw, or `None` when refused.
    ReadAnswered { key: u8, invoke: u64, value: Option<Option<u64>> },
    /// Membership request `request_id` (the simulator's number) was answered.
    MembershipAnswered { request_id: u64, result: MembershipResult<BasicNode> },
    /// An explicit joint step was answered.
    StepAnswered { handle: RequestHandle, result: IndexResult<BasicNode> },
}

/// One node's journal, shared by the parts of its host.
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Record>>>);

impl Journal {
    /// Adds a record.
    pub fn push(&self, record: Record) {
        self.0.lock().expect("single-threaded").push(record);
    }

    /// Takes every record so far.
    pub fn take(&self) -> Vec<Record> {
        std::mem::take(&mut *self.0.lock().expect("single-threaded"))
    }
}
