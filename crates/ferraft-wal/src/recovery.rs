//! Opening a data dir: check whose it is, verify every record, cut a torn tail.
//!
//! The rule that separates a crash from corruption: the writer syncs a segment
//! completely before writing the next, and syncs each batch before starting
//! another, so after a crash only the end of the last segment can hold a
//! partial write: the last write since a sync, any of whose pages may be lost
//! or torn (a page cache writes them back in any order). A bad record there
//! followed by no intact record that starts a later write is a torn tail and
//! is cut off with everything after it (none of it was reported durable).
//! Zeros after the last record are the unwritten part of a preallocated
//! segment. A bad record anywhere else is damage to data that may have been
//! acknowledged, and the store refuses to open rather than silently forget it.
//! (What this cannot see: a synced record damaged *and* the start of the
//! write after it lost, two faults at once; it is cut as a torn tail.)

use std::path::Path;

use ferraft::{AppData, Entry, LogIndex, Node, Snapshot};

use crate::error::{io_error, Corruption, WalError};
use crate::fsutil::{remove_temp_files, sync_dir};
use crate::identity::Identity;
use crate::meta::{MetaFile, META_FILE};
use crate::options::WalOptions;
use crate::record::{
    find_frame_after, find_write_start_after, read_frame, read_frame_unchecked, FrameFault, RECORD_HEADER_BYTES,
};
use crate::segment::{
    decode_header, file_name, parse_file_name, Segment, OLDEST_READABLE_SEGMENT_VERSION, SEGMENT_HEADER_BYTES,
    SEGMENT_VERSION,
};
use crate::snapshot_file::{self, SNAPSHOT_FILE};
use crate::snapshot_stream::remove_stale_partial;
use crate::spare::is_zero_tail;
use crate::stepped::{Io, PlantedBug};

/// Everything read back from a data dir.
#[derive(Debug)]
pub(crate) struct Recovered<C, N> {
    /// The live segments, oldest first.
    pub segments: Vec<Segment>,
    /// Every entry after the purge point.
    pub entries: Vec<Entry<C, N>>,
    /// The metadata file, holding vote, committed and purge point.
    pub meta: MetaFile,
    /// The latest snapshot.
    pub snapshot: Option<Snapshot<N>>,
    /// The data's incarnation, from the identity file.
    pub incarnation: u64,
}

/// The segments still needed and the entries after the purge point.
struct LiveLog<C, N> {
    segments: Vec<Segment>,
    entries: Vec<Entry<C, N>>,
}

/// Opens (or initialises) the data dir `dir`, which the caller has locked.
pub(crate) fn recover<C: AppData, N: Node>(
    io: &Io,
    dir: &Path,
    options: &WalOptions,
) -> Result<Recovered<C, N>, WalError> {
    let fs = &*io.fs;
    remove_temp_files(fs, dir)?;
    let segment_names = list_segments(io, dir)?;
    let identity = check_identity(io, dir, options, !segment_names.is_empty())?;
    let mut meta = match MetaFile::open(&io.fs, dir, options.sync)? {
        Some(meta) => meta,
        None if segment_names.is_empty() && !fs.exists(&dir.join(SNAPSHOT_FILE)) => {
            MetaFile::create(&io.fs, dir, options.sync)?
        }
        None => return Err(WalError::Corrupt { path: dir.join(META_FILE), offset: 0, problem: Corruption::Missing }),
    };
    let snapshot = snapshot_file::load(fs, dir)?;
    let held = snapshot.as_ref().and_then(|s| s.meta.last_log_id).max(meta.state.committed);
    remove_stale_partial::<N>(fs, dir, held.map_or(LogIndex(0), |log_id| log_id.index))?;
    let last_purged = meta.state.last_purged.map_or(LogIndex(0), |log_id| log_id.index);
    let mut live = read_segments(io, dir, &segment_names, last_purged, options.sync)?;
    if let Some(covered) = interrupted_install(snapshot.as_ref(), last_purged, &live.entries) {
        // the log goes on the word of the snapshot's metadata: check it first
        if let Some(snapshot) = &snapshot {
            snapshot_file::check(dir, snapshot)?;
        }
        finish_install(io, dir, &mut meta, covered, &mut live, options.sync)?;
    }
    let LiveLog { segments, entries } = live;
    take_legacy_cluster_id(&mut meta, options, !entries.is_empty() || snapshot.is_some());
    Ok(Recovered { segments, entries, meta, snapshot, incarnation: identity.incarnation })
}

/// The snapshot's last log id, if the snapshot was installed from a leader
/// and the truncation and purge that follow an install may not have reached
/// the disk: it is past the purge point and the log does not hold its last
/// entry. (A snapshot this node built is of entries its log holds.)
fn interrupted_install<C, N>(
    snapshot: Option<&Snapshot<N>>,
    last_purged: LogIndex,
    entries: &[Entry<C, N>],
) -> Option<ferraft::LogId> {
    let covered = snapshot?.meta.last_log_id?;
    let held = entries.iter().any(|entry| entry.log_id == covered);
    (covered.index > last_purged && !held).then_some(covered)
}

/// Finishes an install a crash interrupted, as it would have ended: the log
/// is purged up to the snapshot, and what it held is gone (before the
/// snapshot: covered by it; after: a branch that diverged from it). Without
/// this the next append, right after the snapshot, would not continue the
/// log. The purge point is durable before any segment goes, as for a purge.
fn finish_install<C, N>(
    io: &Io,
    dir: &Path,
    meta: &mut MetaFile,
    covered: ferraft::LogId,
    live: &mut LiveLog<C, N>,
    sync: bool,
) -> Result<(), WalError> {
    tracing::warn!(dir = %dir.display(), snapshot = %covered, "finishing a snapshot install a crash interrupted");
    meta.state.last_purged = Some(covered);
    meta.persist()?;
    for segment in live.segments.drain(..) {
        remove_segment(io, dir, segment.first_index, sync)?;
    }
    live.entries.clear();
    Ok(())
}

/// A data dir written before cluster ids were saved, that holds a vote, a
/// log or a snapshot, belongs to the cluster its identity file names: that
/// is the id its node sent in every message. An unused one has no cluster yet.
fn take_legacy_cluster_id(meta: &mut MetaFile, options: &WalOptions, has_log: bool) {
    if meta.from_version_1 && meta.state.cluster_id.is_none() && (has_log || meta.state.vote.is_some()) {
        meta.state.cluster_id = ferraft::ClusterId::new(options.cluster_id);
    }
}

/// Checks the identity file, writing it with a fresh incarnation if this is
/// a new data dir; the identity in force.
fn check_identity(io: &Io, dir: &Path, options: &WalOptions, has_segments: bool) -> Result<Identity, WalError> {
    let fs = &*io.fs;
    let incarnation = io.incarnation.unwrap_or_else(|| ferraft::Incarnation::random().get());
    let expected = Identity { node_id: options.node_id, cluster_id: options.cluster_id, incarnation };
    match Identity::read(fs, dir)? {
        Some(found) => found.check(dir, expected).map(|()| found),
        None if has_segments || fs.exists(&dir.join(META_FILE)) || fs.exists(&dir.join(SNAPSHOT_FILE)) => {
            Err(WalError::MissingIdentity { path: dir.to_path_buf() })
        }
        None => {
            tracing::info!(dir = %dir.display(), node_id = %options.node_id, "initialising a new WAL data dir");
            expected.write(fs, dir, options.sync)?;
            Ok(expected)
        }
    }
}

/// The first indexes of the segment files in `dir`, ascending.
fn list_segments(io: &Io, dir: &Path) -> Result<Vec<LogIndex>, WalError> {
    let mut firsts = Vec::new();
    for name in io.fs.list_dir(dir).map_err(io_error("listing", dir))? {
        if let Some(first) = name.to_str().and_then(parse_file_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Reads every segment, dropping those a purge had finished with.
fn read_segments<C: AppData, N: Node>(
    io: &Io,
    dir: &Path,
    firsts: &[LogIndex],
    last_purged: LogIndex,
    sync: bool,
) -> Result<LiveLog<C, N>, WalError> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut entries = Vec::new();
    for (position, &first) in firsts.iter().enumerate() {
        let next_first = firsts.get(position + 1).copied();
        // Purge records its point before deleting, so a crash can leave
        // segments wholly below it; they are garbage.
        if next_first.is_some_and(|next| next <= last_purged + 1) {
            remove_segment(io, dir, first, sync)?;
            continue;
        }
        let expected = segments.last().map_or(last_purged + 1, Segment::next_index);
        let starts_in_time = if segments.is_empty() { first <= expected } else { first == expected };
        if !starts_in_time {
            if first > expected {
                return Err(WalError::MissingEntries { first_missing: expected, next_present: first });
            }
            let problem = Corruption::WrongIndex { expected, found: first };
            return Err(WalError::Corrupt { path: dir.join(file_name(first)), offset: 0, problem });
        }
        let is_last = next_first.is_none();
        segments.push(read_segment(io, dir, first, is_last, last_purged, sync, &mut entries)?);
    }
    if segments.last().is_some_and(|last| last.next_index() <= last_purged + 1) {
        let last = segments.pop().expect("checked non-empty");
        remove_segment(io, dir, last.first_index, sync)?;
    }
    Ok(LiveLog { segments, entries })
}

/// Reads one segment, pushing its entries after `last_purged` to `entries`.
fn read_segment<C: AppData, N: Node>(
    io: &Io,
    dir: &Path,
    first: LogIndex,
    is_last: bool,
    last_purged: LogIndex,
    sync: bool,
    entries: &mut Vec<Entry<C, N>>,
) -> Result<Segment, WalError> {
    let path = dir.join(file_name(first));
    let data = io.fs.read(&path).map_err(io_error("reading", &path))?;
    let corrupt = |offset: usize, problem| WalError::Corrupt { path: path.clone(), offset: offset as u64, problem };
    let header = decode_header(&data).map_err(|problem| corrupt(0, problem))?;
    if !(OLDEST_READABLE_SEGMENT_VERSION..=SEGMENT_VERSION).contains(&header.version) {
        return Err(WalError::UnsupportedVersion { path, version: header.version, supported: SEGMENT_VERSION });
    }
    // an unmarked segment (version 3): any intact record after a bad one
    // means the bad one was synced, as before writes were marked
    let synced_follows = |offset| match header.version {
        OLDEST_READABLE_SEGMENT_VERSION => find_frame_after(&data, offset).is_some(),
        _ => find_write_start_after(&data, offset).is_some(),
    };
    if header.first_index != first {
        return Err(corrupt(0, Corruption::NameMismatch { header: header.first_index, name: first }));
    }
    let mut segment = Segment::new(first);
    let mut offset = SEGMENT_HEADER_BYTES as usize;
    while offset < data.len() {
        // The unwritten rest of a preallocated segment. Zeros never frame a
        // record (length 0 is invalid), and zeros where a sealed segment's
        // records should be show up as the next segment starting too late.
        if is_zero_tail(&data[offset..]) {
            break;
        }
        let frame = match io.bug {
            Some(PlantedBug::TrustRecordsWithoutChecksum) => read_frame_unchecked(&data, offset),
            _ => read_frame(&data, offset),
        };
        let payload = match frame {
            Ok(payload) => payload,
            Err(fault) if is_last && !synced_follows(offset) => {
                tracing::warn!(path = %path.display(), offset, ?fault, "cutting a torn write at the WAL tail");
                cut_torn_tail(io, &path, offset as u64, sync)?;
                break;
            }
            Err(fault) => {
                let problem =
                    if fault == FrameFault::Short { Corruption::Truncated } else { Corruption::RecordChecksum };
                return Err(corrupt(offset, problem));
            }
        };
        let entry: Entry<C, N> =
            postcard::from_bytes(payload).map_err(|error| corrupt(offset, Corruption::Undecodable(error)))?;
        let expected = segment.next_index();
        if entry.log_id.index != expected {
            return Err(corrupt(offset, Corruption::WrongIndex { expected, found: entry.log_id.index }));
        }
        segment.offsets.push(offset as u64);
        if entry.log_id.index > last_purged {
            entries.push(entry);
        }
        offset += RECORD_HEADER_BYTES + payload.len();
    }
    segment.len_bytes = offset as u64;
    Ok(segment)
}

/// Cuts a torn tail off and makes the cut durable, so the next append does
/// not land behind leftover garbage.
fn cut_torn_tail(io: &Io, path: &Path, len: u64, sync: bool) -> Result<(), WalError> {
    let file = io.fs.open(path).map_err(io_error("opening", path))?;
    file.set_len(len).map_err(io_error("truncating", path))?;
    if sync {
        file.sync_data().map_err(io_error("syncing", path))?;
    }
    Ok(())
}

/// Deletes a segment left over from a purge.
fn remove_segment(io: &Io, dir: &Path, first: LogIndex, sync: bool) -> Result<(), WalError> {
    let path = dir.join(file_name(first));
    tracing::info!(path = %path.display(), "removing a fully purged WAL segment");
    io.fs.remove_file(&path).map_err(io_error("removing", &path))?;
    if sync {
        sync_dir(&*io.fs, dir)?;
    }
    Ok(())
}
