//! Reads for followers behind the log cache, run on blocking threads.
//!
//! The engine asks for a range of entries it no longer holds in memory
//! ([`Output::ReadEntries`](crate::engine::Output::ReadEntries)); the store
//! hands out a job ([`LogStore::read_range`]) that is run here, off the Raft
//! task, so a disk read of a large range never delays replication to the
//! others. The entries come back to the driver as an event.

use std::ops::Range;

use tokio::sync::mpsc;

use super::event::Event;
use crate::engine::Engine;
use crate::entry::{AppData, Entry};
use crate::node::{LogIndex, Node, NodeId};
use crate::state_machine::StateMachine;
use crate::storage::{LogStore, StorageError};
use crate::vote::Vote;

/// The answer to one read, on its way back to the driver.
pub(crate) struct EntriesRead<C, N> {
    to: NodeId,
    vote: Vote,
    from: LogIndex,
    result: Result<Vec<Entry<C, N>>, StorageError>,
}

impl<C: AppData, N: Node> EntriesRead<C, N> {
    /// Hands the entries to the engine; a store that failed to read is a
    /// storage failure like any other.
    pub(crate) fn deliver(self, engine: &mut Engine<C, N>) -> Result<(), StorageError> {
        engine.on_entries_read(self.to, self.vote, self.from, self.result?);
        Ok(())
    }
}

/// Starts reading `range` for follower `to` on a blocking thread; a store
/// that cannot read ranges is reported to the engine at once.
pub(crate) fn start<SM: StateMachine, N: Node>(
    store: &mut dyn LogStore<SM::Command, N>,
    engine: &mut Engine<SM::Command, N>,
    events: &mpsc::WeakUnboundedSender<Event<SM, N>>,
    to: NodeId,
    vote: Vote,
    range: Range<LogIndex>,
) {
    let from = range.start;
    let Some(job) = store.read_range(range) else {
        engine.on_store_reads_unsupported();
        engine.on_entries_read(to, vote, from, Vec::new());
        return;
    };
    let events = events.clone();
    tokio::task::spawn_blocking(move || {
        // a panicking store still answers, as a failure: the follower would
        // otherwise wait for this read forever
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
            .unwrap_or_else(|_| Err(StorageError::new("reading a range of the log", "the store's read job panicked")));
        if let Some(events) = events.upgrade() {
            let _ = events.send(Event::EntriesRead(EntriesRead { to, vote, from, result }));
        }
    });
}
