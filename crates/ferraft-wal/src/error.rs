//! What can go wrong in the WAL, and what the operator or caller can do about it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferraft::{LogIndex, NodeId, StorageError};

/// A WAL failure.
///
/// Every error is reported to ferraft as a [`StorageError`] whose `source` is
/// this type, so tools can `downcast_ref::<WalError>()` to tell a corrupt disk
/// from a misconfiguration.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The operating system refused a file operation. Check the disk (space,
    /// permissions, hardware) and restart.
    #[error("I/O error while {action} {path}: {source}")]
    Io {
        /// What the WAL was doing.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Data that was written completely fails its checks. The node refuses to
    /// start rather than forget entries it may have acknowledged; restore the
    /// data dir from a peer or a backup.
    #[error("corrupt WAL data in {path} at byte {offset}: {problem}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        problem: Corruption,
    },
    /// Entries between two segments (or between the purge point and the first
    /// segment) are missing: a segment file was deleted by hand.
    #[error("WAL entries {first_missing}..{next_present} are missing (a segment file is gone)")]
    MissingEntries {
        /// The first index that should exist.
        first_missing: LogIndex,
        /// The first index found after the hole.
        next_present: LogIndex,
    },
    /// The data dir belongs to another node or cluster. Point the node at its
    /// own data dir, or wipe this one if it really is to be reused.
    #[error("data dir {path} belongs to node {found_node_id} of cluster {found_cluster_id}, not node {node_id} of cluster {cluster_id}")]
    WrongIdentity {
        /// The data dir.
        path: PathBuf,
        /// The node id this process was started with.
        node_id: NodeId,
        /// The cluster id this process was started with.
        cluster_id: u64,
        /// The node id recorded in the data dir.
        found_node_id: NodeId,
        /// The cluster id recorded in the data dir.
        found_cluster_id: u64,
    },
    /// The data dir holds WAL files but no identity file, so whose data it is
    /// cannot be checked. Restore the identity file or wipe the dir.
    #[error("data dir {path} holds WAL files but no identity file")]
    MissingIdentity {
        /// The data dir.
        path: PathBuf,
    },
    /// Another store (in this or another process) has the data dir open.
    #[error("data dir {path} is in use by another WAL store")]
    Locked {
        /// The data dir.
        path: PathBuf,
    },
    /// A file was written by a newer (or unknown) format version.
    #[error("{path} has format version {version}, this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
        /// The version this build understands.
        supported: u32,
    },
    /// `append` was given entries that do not follow the last entry: a bug in
    /// the caller, which must truncate first.
    #[error("append starts at index {found} but the log continues at {expected}")]
    NotContiguous {
        /// The index the next entry must have.
        expected: LogIndex,
        /// The index it had.
        found: LogIndex,
    },
    /// `truncate` reached into purged entries: a bug in the caller, which may
    /// only truncate uncommitted entries.
    #[error("cannot truncate since index {since}: entries up to {last_purged} are purged")]
    TruncatePurged {
        /// The requested truncation point.
        since: LogIndex,
        /// The purge point.
        last_purged: LogIndex,
    },
    /// A value could not be encoded (the application's serializer failed).
    #[error("cannot encode a WAL record: {0}")]
    Encode(#[source] postcard::Error),
    /// An encoded entry exceeds the largest record the WAL frames.
    #[error("an entry encodes to {bytes} bytes, more than the {max} a WAL record holds")]
    RecordTooLarge {
        /// The encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The options are unusable.
    #[error("invalid WAL options: segment_bytes {segment_bytes} is below the minimum of {min}")]
    SegmentTooSmall {
        /// The requested segment size.
        segment_bytes: u64,
        /// The smallest size accepted.
        min: u64,
    },
    /// The writer thread stopped after an earlier failure; nothing written
    /// since is durable. Restart the node (recovery keeps what was durable).
    #[error("the WAL writer failed earlier: {0}")]
    WriterFailed(#[source] Arc<WalError>),
    /// The writer thread is gone (the store is shutting down or it panicked).
    #[error("the WAL writer thread has stopped")]
    WriterGone,
}

/// How a piece of on-disk data fails its checks.
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    /// The file does not start with the expected magic bytes.
    #[error("bad magic bytes")]
    BadMagic,
    /// A fixed-size header fails its checksum.
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// A record's checksum does not match, and records follow it, so it is
    /// not a torn write at the tail.
    #[error("record checksum mismatch before the end of the log")]
    RecordChecksum,
    /// A record's checksum matches but its bytes do not decode.
    #[error("record does not decode: {0}")]
    Undecodable(#[source] postcard::Error),
    /// A record holds an entry at the wrong position.
    #[error("entry has index {found} where index {expected} belongs")]
    WrongIndex {
        /// The index this position must hold.
        expected: LogIndex,
        /// The index found.
        found: LogIndex,
    },
    /// The file ends before a complete header or record that must be there.
    #[error("file ends early")]
    Truncated,
    /// Neither copy of the vote/committed/purge metadata is intact.
    #[error("both metadata slots fail their checksums")]
    NoValidMetaSlot,
    /// A file that must exist is gone (e.g. the metadata file beside segments).
    #[error("file is missing")]
    Missing,
    /// A segment's first index does not match its file name.
    #[error("segment header says first index {header} but the file name says {name}")]
    NameMismatch {
        /// The first index in the header.
        header: LogIndex,
        /// The first index in the name.
        name: LogIndex,
    },
}

impl WalError {
    /// Wraps this error for ferraft, saying what the store was doing.
    pub fn into_storage(self, action: &'static str) -> StorageError {
        StorageError::new(action, self)
    }

    /// The WAL error inside a [`StorageError`] raised by this crate, if any.
    pub fn from_storage(error: &StorageError) -> Option<&WalError> {
        error.source.downcast_ref::<WalError>()
    }
}

/// Builds the `map_err` closure for an I/O call on `path`.
///
/// The path is copied only when the call fails, so hot paths stay allocation-free.
pub(crate) fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io { action, path: path.to_path_buf(), source }
}
