//! Reading a range of entries back on any thread: how a leader feeds a
//! follower behind its in-memory log cache without stalling the Raft task.
//!
//! Where the records lie is decided on the store's side, from its layout, at
//! the moment of the call; the reads themselves run later, elsewhere, against
//! the files. A purge that deletes a segment meanwhile shortens the answer
//! (the entries are gone, which the caller handles) instead of failing it.

use std::path::Path;
use std::sync::{mpsc, Arc};

use ferraft::log_id::index_of;
use ferraft::{AppData, Entry, LogIndex, Node, ReadRange};

use crate::error::{io_error, Corruption, WalError};
use crate::file_system::FileSystem;
use crate::layout::{Layout, Run};
use crate::queue::{Op, Shared};
use crate::record::{read_frame, RECORD_HEADER_BYTES};
use crate::segment::file_name;

/// The runs that hold entries `first..end`, oldest first.
pub(crate) fn plan(layout: &Layout, first: LogIndex, end: LogIndex) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut index = first;
    while let Some(run) = layout.run(index, end) {
        index = run.next;
        runs.push(run);
    }
    runs
}

/// Reads `runs` (starting at entry `first`) into `entries`, checking every
/// record. On an error, `entries` holds what was read before it.
pub(crate) fn read_runs<C: AppData, N: Node>(
    fs: &dyn FileSystem,
    dir: &Path,
    runs: &[Run],
    first: LogIndex,
    entries: &mut Vec<Entry<C, N>>,
) -> Result<(), WalError> {
    let mut index = first;
    for run in runs {
        let path = dir.join(file_name(run.segment));
        let mut data = vec![0u8; (run.end - run.start) as usize];
        fs.open_read(&path)
            .and_then(|file| file.read_exact_at(&mut data, run.start))
            .map_err(io_error("reading", &path))?;
        let mut offset = 0;
        for expected in index.until(run.next) {
            let corrupt =
                |problem| WalError::Corrupt { path: path.clone(), offset: run.start + offset as u64, problem };
            let payload = read_frame(&data, offset).map_err(|_| corrupt(Corruption::RecordChecksum))?;
            let entry: Entry<C, N> = postcard::from_bytes(payload).map_err(|e| corrupt(Corruption::Undecodable(e)))?;
            if entry.log_id.index != expected {
                return Err(corrupt(Corruption::WrongIndex { expected, found: entry.log_id.index }));
            }
            entries.push(entry);
            offset += RECORD_HEADER_BYTES + payload.len();
        }
        index = run.next;
    }
    Ok(())
}

/// Waits until the writer has written (and synced) everything queued so far.
pub(crate) fn barrier(shared: &Shared) -> Result<(), WalError> {
    shared.check_writer()?;
    if shared.io.stepped {
        return shared.step();
    }
    let (reply, answer) = mpsc::sync_channel(1);
    let mut queue = shared.lock_queue();
    // checked again under the queue's lock: the writer's exit marks it gone
    // before it takes that lock to drop what is queued, so a barrier is
    // either refused here or dropped there (its caller then hears why),
    // never left in a queue nobody reads
    shared.check_writer()?;
    queue.ops.push(Op::Barrier(reply));
    drop(queue);
    shared.work.notify_one();
    match answer.recv() {
        Ok(result) => result.map_err(WalError::WriterFailed),
        Err(mpsc::RecvError) => Err(shared.stopped_error()),
    }
}

/// The job behind `WalStore::read_range`: waits for the appends queued
/// before it, then reads `runs`. A read that fails where a purge has since
/// removed the entries ends the answer there.
pub(crate) fn job<C: AppData, N: Node>(shared: Arc<Shared>, runs: Vec<Run>, first: LogIndex) -> ReadRange<C, N> {
    Box::new(move || {
        let wanted = runs.last().map_or(0, |run| run.next.saturating_sub(first));
        let mut entries = Vec::with_capacity(wanted.min(1 << 16) as usize);
        let result = barrier(&shared).and_then(|()| read_runs(&*shared.io.fs, &shared.dir, &runs, first, &mut entries));
        match result {
            Ok(()) => Ok(entries),
            Err(error) => {
                let failed_at = first + entries.len() as u64;
                let purged = index_of(shared.lock_meta().state.last_purged);
                if failed_at <= purged {
                    // the segment went with a purge, and with it the range's start
                    Ok(Vec::new())
                } else {
                    Err(error.into_storage("reading a range of the WAL"))
                }
            }
        }
    })
}
