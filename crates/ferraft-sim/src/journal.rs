//! What a node's host did inside one call, in order: the simulated store,
//! state machine, transport, snapshot spawner and reply channels write here,
//! and the simulator reads it back after the call to run its checkers,
//! schedule deliveries and fsyncs, and record the client history.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferraft::runtime::{
    ChunkTask, IndexResult, InitializeResult, InstallTask, MembershipResult, ReadTask, SnapshotTask, WriteResult,
};
use ferraft::{BasicNode, Entry, LogId, LogIndex, Message, NodeId};

use crate::invariants::RequestHandle;
use crate::kv_machine::SimKv;
use crate::model::Put;

/// The committed log id on a disk, and the configs of the membership in
/// force there (when the disk still knows it).
pub type Committed = (Option<LogId>, Option<Vec<BTreeSet<NodeId>>>);

/// One thing a host did (`C`: the commands in its log).
pub enum Record<C = Put> {
    /// Entries went to the page cache after `prev` (`None`: not right after
    /// the last entry on disk), or to the disk when `synced`; `committed`: what
    /// the disk said was committed then.
    Appended { entries: Vec<Entry<C, BasicNode>>, prev: Option<Option<LogId>>, committed: Committed, synced: bool },
    /// These entries were truncated.
    Truncated(Vec<LogId>),
    /// The log was purged up to here.
    Purged(LogId),
    /// A snapshot after `index`, of state `data`, was saved.
    SnapshotSaved { index: LogIndex, data: Bytes },
    /// The state machine applied write `op` at `log_id`; `wrote`: false
    /// for a compare-and-set whose expectation failed.
    Applied { log_id: LogId, op: u64, wrote: bool },
    /// The state machine was replaced by the snapshot saved just before.
    Restored,
    /// A message was handed to the transport for the node at `target`.
    Sent { message: Box<Message<C, BasicNode>>, target: BasicNode },
    /// A snapshot job was spawned.
    SnapshotTask(SnapshotTask<BasicNode>),
    /// The host spawned the install of a received snapshot.
    InstallTask(InstallTask<BasicNode>),
    /// A read of the log for a lagging follower was spawned.
    ReadTask(ReadTask<C, BasicNode>),
    /// A host started a snapshot chunk read.
    ChunkTask(ChunkTask<BasicNode>),
    /// Write `op` was answered.
    WriteAnswered { op: u64, result: WriteResult<SimKv, BasicNode> },
    /// A read of `key` invoked at stamp `invoke` was answered: the value it
    /// saw, or `None` when refused.
    ReadAnswered { key: u8, invoke: u64, value: Option<Option<u64>> },
    /// Membership request `request_id` (the simulator's number) was answered.
    MembershipAnswered { request_id: u64, result: MembershipResult<BasicNode> },
    /// An explicit joint step was answered.
    StepAnswered { handle: RequestHandle, result: IndexResult<BasicNode> },
    /// An `initialize` was answered.
    InitializeAnswered(InitializeResult),
}

/// One node's journal, shared by the parts of its host.
pub struct Journal<C = Put>(Arc<Mutex<Vec<Record<C>>>>);

impl<C> Clone for Journal<C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<C> Default for Journal<C> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<C> Journal<C> {
    /// Adds a record.
    pub fn push(&self, record: Record<C>) {
        self.0.lock().expect("single-threaded").push(record);
    }

    /// Takes every record so far.
    pub fn take(&self) -> Vec<Record<C>> {
        std::mem::take(&mut *self.0.lock().expect("single-threaded"))
    }
}
