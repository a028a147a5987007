//! A durable, segmented write-ahead log for ferraft: [`WalStore`] implements
//! [`ferraft::LogStore`].
//!
//! ```
//! use bytes::Bytes;
//! use ferraft::{BasicNode, Entry, EntryPayload, FlushNotifier, LeaderId, LogId, LogIndex, LogStore, NodeId, Term, Vote};
//! use ferraft::testing::conformance::TestData;
//! use ferraft_wal::{WalOptions, WalStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("ferraft-wal-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let mut wal = WalStore::<TestData, BasicNode>::open(&dir, WalOptions::new(NodeId(1), 7))?;
//! let state = wal.read_state()?;
//! assert!(state.entries.is_empty());
//!
//! // Appends return at once; the writer thread syncs and calls the notifier.
//! let (flushed_tx, flushed) = std::sync::mpsc::channel();
//! let notifier = FlushNotifier::new(move |log_id| flushed_tx.send(log_id).unwrap());
//! let entry = Entry {
//!     log_id: LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(1)),
//!     payload: EntryPayload::Normal(TestData::new(Bytes::from_static(b"x=1"))),
//! };
//! wal.append(&[entry.clone()], &notifier)?;
//! assert_eq!(flushed.recv()?, entry.log_id);
//! wal.save_vote(&Vote::new_committed(Term(1), NodeId(1)))?; // durable on return
//! drop(wal);
//!
//! // Reopening verifies every record and returns what was durable.
//! let mut wal = WalStore::<TestData, BasicNode>::open(&dir, WalOptions::new(NodeId(1), 7))?;
//! let state = wal.read_state()?;
//! assert_eq!(state.entries, vec![entry]);
//! assert_eq!(state.vote, Some(Vote::new_committed(Term(1), NodeId(1))));
//! drop(wal);
//!
//! // Another node's data dir is refused.
//! assert!(WalStore::<TestData, BasicNode>::open(&dir, WalOptions::new(NodeId(2), 7)).is_err());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # On disk
//!
//! A data dir holds:
//! - `IDENTITY`: node id and [`WalOptions::cluster_id`] (a tag of the
//!   application), written on first open and checked on every later one, so a
//!   node never runs on another node's log; and the data's incarnation, a
//!   random id drawn then (a wiped data dir gets a new one: see
//!   [`ferraft::incarnation`]).
//! - `META`: the Raft cluster id, vote, committed log id and purge point in
//!   two alternating checksummed slots, so a crash during a save leaves the
//!   previous state. Slots written before cluster ids were saved (version 1)
//!   still open; such a data dir with a vote or a log reports the `IDENTITY`
//!   tag as its cluster id, which is what its node sent in every message.
//! - `SNAPSHOT`: the latest snapshot, replaced by write-temp, sync, rename,
//!   sync-directory. Its data is read in place, by offset, never loaded whole.
//! - `SNAPSHOT.partial`: a snapshot being received from a leader, with the
//!   checksum the leader named and how many bytes are known durable (synced
//!   every 16 MiB and when a transfer is dropped); kept across restarts so a
//!   new transfer of the same bytes resumes there.
//! - `<first index>.wal`: segments. A 24-byte checksummed header, then records
//!   framed as `[length u32][crc32c u32][postcard-encoded Entry]` (the
//!   length's top bit marks the first record written since a sync), then (when
//!   preallocated) zeros up to the segment size. A segment is closed once it
//!   reaches [`WalOptions::segment_bytes`].
//! - `*.tmp`: files being written before an atomic rename (the next spare
//!   segment, a snapshot being staged); removed on open.
//!
//! # Durability
//!
//! - **Appends** are group-committed: [`LogStore::append`](ferraft::LogStore::append) encodes the entries
//!   into a shared buffer and returns [`AppendDurability::Pending`](ferraft::AppendDurability);
//!   a writer thread writes everything queued, issues one `fdatasync`, and
//!   reports the last entry of the batch through the notifier.
//! - **Truncate and purge** go through the same queue, so they apply in call
//!   order with appends. A truncation's file cut is synced before anything
//!   is re-appended, so stale records can never resurface between new ones.
//!   A purge records its point durably before deleting whole segments.
//! - **The cluster id and the vote** are durable when `save_cluster_id` and
//!   `save_vote` return; **the committed log
//!   id** is saved lazily: written within about 200 ms without a sync of
//!   its own, durable with the next vote or purge (or the next open). A
//!   power loss may take it back to an older one, never a newer one; the
//!   slot it goes to is never the one holding the last durable state.
//! - **Segments are preallocated** ([`WalOptions::preallocate`]): a helper
//!   thread zero-fills and syncs the next segment file ahead of need, so an
//!   append overwrites existing blocks and its `fdatasync` has no file size
//!   to commit through the journal (on ext4 about 40% cheaper when several
//!   logs sync at once). A segment due before its spare is ready waits at
//!   most a second for it, then starts as a plain file.
//! - **Snapshots** are written off the Raft task into a
//!   [`snapshot_sink`](ferraft::LogStore::snapshot_sink) (a temporary file,
//!   checksummed as it is written, header last, synced), or received into a
//!   [`partial_snapshot`](ferraft::LogStore::partial_snapshot) (checked
//!   against the leader's checksum, every byte recorded durable under its
//!   partial header); the job that finished either makes it current
//!   ([`snapshot_saver`](ferraft::LogStore::snapshot_saver): a received one
//!   gets its snapshot header, then a rename and a directory sync, off the
//!   Raft task; an older snapshot never replaces a newer one). A crash before
//!   the rename leaves a received snapshot resumable whole. Both are written
//!   back to the disk a MiB at a time as they are written, not in one burst
//!   at their sync, in front of the WAL syncs sharing the disk.
//! - [`WalOptions::sync`] `= false` skips every sync: **unsafe**, for tests only.
//!
//! # Recovery
//!
//! Opening checks every checksum of the log, and the snapshot's header and
//! metadata; the snapshot's data is checked on its first full read (see
//! `snapshot_file::load`: a node reads it whole at startup). Zeros after a segment's last record are its
//! unwritten, preallocated rest (zeros never frame a record: length 0 is
//! invalid). Only the end of the last segment can hold a partial write after
//! a crash: what was written since its last sync, whose pages a *power
//! failure* may have persisted in any order (a later record on disk, an
//! earlier one lost). The first record of each write since a sync carries a
//! mark (the top bit of its length), so a damaged record there followed by
//! no intact mark is a torn tail and is cut off with what follows it: none of
//! it was reported durable. Damage anywhere else (or a
//! missing segment) makes `open` fail with [`WalError::Corrupt`] or
//! [`WalError::MissingEntries`] rather than silently drop entries that may
//! have been acknowledged. Segments of format version 3 (unmarked) are still
//! read, with the old rule: any intact record after a damaged one is corruption.
//!
//! # File system and threads
//!
//! Every file operation goes through a [`FileSystem`] ([`StdFileSystem`] by
//! default). [`WalStore::open_stepped`] opens a store on a file system the
//! caller gives, with no background thread: the caller runs each writer
//! batch with a [`WalStepper`]. That is how the simulator runs the real WAL
//! over a simulated disk that loses unsynced data and tears writes in crashes.
//!
//! A snapshot is durable when saved, and the purge (and truncation) that
//! follow installing one from a leader are queued behind it; a crash between
//! them leaves a log that does not hold the snapshot's last entry. Recovery
//! finishes such an install: the snapshot becomes the purge point and the
//! log's old entries go, so the next append (right after the snapshot)
//! continues the log.
//!
//! A flipped bit in the newest `META` slot is indistinguishable from a save
//! interrupted by a crash: the previous vote is used. The previous vote is
//! still one this node gave, but a vote saved just before may be forgotten.
#![deny(missing_docs)]

mod error;
mod file_system;
mod fsutil;
mod identity;
mod layout;
mod meta;
mod options;
mod queue;
mod range_read;
mod record;
mod recovery;
mod segment;
mod snapshot_file;
mod snapshot_saver;
mod snapshot_stream;
mod spare;
mod stepped;
mod store;
mod write_behind;
mod writer;

pub use error::{Corruption, WalError};
pub use file_system::{FileSystem, FsFile, LockGuard, StdFileSystem};
pub use options::{WalOptions, DEFAULT_SEGMENT_BYTES, MIN_SEGMENT_BYTES};
pub use stepped::{PlantedBug, SteppedIo, WalStepper};
pub use store::WalStore;

/// The snapshot last saved in the WAL dir `dir`, or `None`. Safe while a
/// [`WalStore`] runs on `dir`: a snapshot is replaced by a rename, so this
/// reads the old file or the new one whole (and checks its checksum), which
/// is how a backup is taken from a live node.
pub fn read_saved_snapshot<N: ferraft::Node>(dir: &std::path::Path) -> Result<Option<ferraft::Snapshot<N>>, WalError> {
    snapshot_file::load_checked(&StdFileSystem, dir)
}
