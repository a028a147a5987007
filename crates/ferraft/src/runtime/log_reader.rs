//! Reads for followers behind the log cache, run off the host.
//!
//! The engine asks for a range of entries it no longer holds in memory
//! ([`Output::ReadEntries`](crate::engine::Output::ReadEntries)); the store
//! hands out a job ([`LogStore::read_range`](crate::LogStore::read_range))
//! that the host's [`JobSpawner`](super::JobSpawner) runs elsewhere, so a disk
//! read of a large range never delays replication to the others. The entries
//! come back through [`NodeHost::entries_read`].

use std::ops::Range;

use super::host::{NodeHost, C};
use super::reply::ReplyKind;
use crate::entry::Entry;
use crate::node::{LogIndex, Node, NodeId};
use crate::state_machine::StateMachine;
use crate::storage::{ReadRange, StorageError};
use crate::vote::Vote;

/// One read of the log for follower `to`, ready to run on any thread.
pub struct ReadTask<C, N> {
    to: NodeId,
    vote: Vote,
    from: LogIndex,
    job: ReadRange<C, N>,
}

impl<C, N> std::fmt::Debug for ReadTask<C, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadTask").field("to", &self.to).field("from", &self.from).finish_non_exhaustive()
    }
}

impl<C, N> ReadTask<C, N> {
    /// Runs the store's read. A panicking store still answers, as a failure:
    /// the follower would otherwise wait for this read forever.
    pub fn run(self) -> EntriesRead<C, N> {
        let Self { to, vote, from, job } = self;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
            .unwrap_or_else(|_| Err(StorageError::new("reading a range of the log", "the store's read job panicked")));
        EntriesRead { to, vote, from, result }
    }
}

/// What a [`ReadTask`] read, for the host to hand to the engine.
pub struct EntriesRead<C, N> {
    to: NodeId,
    vote: Vote,
    from: LogIndex,
    result: Result<Vec<Entry<C, N>>, StorageError>,
}

impl<C, N> std::fmt::Debug for EntriesRead<C, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntriesRead").field("to", &self.to).field("from", &self.from).finish_non_exhaustive()
    }
}

impl<SM: StateMachine, N: Node, R: ReplyKind> NodeHost<SM, N, R> {
    /// Starts reading `range` for follower `to`; a store that cannot read
    /// ranges is reported to the engine at once (the follower then gets a
    /// snapshot).
    pub(crate) fn start_read(&mut self, to: NodeId, vote: Vote, range: Range<LogIndex>) {
        let from = range.start;
        match self.store.read_range(range) {
            Some(job) => self.spawner.spawn_read(ReadTask { to, vote, from, job }),
            None => {
                self.engine.on_store_reads_unsupported();
                self.engine.on_entries_read(to, vote, from, Vec::new());
            }
        }
    }

    /// Hands entries read off the host to the engine; a store that failed to
    /// read is a storage failure like any other and stops the node.
    pub fn entries_read(&mut self, read: EntriesRead<C<SM>, N>) {
        match read.result {
            Ok(entries) => self.engine.on_entries_read(read.to, read.vote, read.from, entries),
            Err(error) => {
                self.fail(error);
            }
        }
    }
}
