//! The latest snapshot, stored as one checksummed file replaced atomically.
//!
//! Layout: magic, version, metadata length, data length, crc32c of metadata
//! and data, then the postcard-encoded [`SnapshotMeta`] and the state
//! machine's bytes as they are. The file is written and read piece by piece
//! (see [`snapshot_stream`](crate::snapshot_stream)): snapshots can be larger
//! than memory. Saving writes a temporary file, syncs it, renames it over the
//! old one and syncs the directory, so a crash leaves the old snapshot or the
//! new one, never a mix.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferraft::{LogId, Node, Snapshot, SnapshotData, SnapshotMeta, SnapshotSource, StoredMembership};
use serde::{Deserialize, Serialize};

use crate::error::{io_error, Corruption, WalError};
use crate::file_system::FileSystem;
use crate::fsutil::{rename_synced, TEMP_SUFFIX};
use crate::snapshot_stream::{
    data_checksum_of, FileSink, FileSnapshot, Header, Staged, HEADER, MAGIC, OLDEST_READABLE_VERSION, VERSION,
};

/// The snapshot file's name in the data dir.
pub(crate) const SNAPSHOT_FILE: &str = "SNAPSHOT";

/// A new name for a snapshot written off the Raft task to wait under until
/// it is made current: a temporary file, so a crash before that removes it,
/// and unique in the process, so a job still running for a closed store can
/// never write into the file of a store reopened on the same dir.
pub(crate) fn staged_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("SNAPSHOT.staged-{}-{}{TEMP_SUFFIX}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The metadata as stored.
pub(crate) fn encode_meta<N: Node>(meta: &SnapshotMeta<N>) -> Result<Vec<u8>, WalError> {
    postcard::to_allocvec(meta).map_err(WalError::Encode)
}

/// The metadata as a snapshot file of `version` stores it. Version 3 has no
/// remembered change ids: such a snapshot remembers none (the ids its log
/// entries carried were forgotten when they were compacted, as then).
pub(crate) fn decode_meta<N: Node>(version: u32, bytes: &[u8]) -> Result<SnapshotMeta<N>, postcard::Error> {
    if version == OLDEST_READABLE_VERSION {
        let SnapshotMetaV3 { last_log_id, membership } = postcard::from_bytes(bytes)?;
        return Ok(SnapshotMeta { last_log_id, membership, changes: Default::default() });
    }
    postcard::from_bytes(bytes)
}

/// The metadata of a version 3 snapshot file.
#[derive(Serialize, Deserialize)]
#[serde(bound = "N: Node")]
struct SnapshotMetaV3<N> {
    last_log_id: Option<LogId>,
    membership: StoredMembership<N>,
}

/// A sink for a new snapshot file staged at `dir/staged`.
pub(crate) fn sink<N: Node>(
    fs: &dyn FileSystem,
    dir: &Path,
    staged: &str,
    meta: &SnapshotMeta<N>,
    sync: bool,
) -> Result<FileSink, WalError> {
    FileSink::create(fs, dir, staged, &encode_meta(meta)?, sync)
}

/// Saves `snapshot`, replacing the previous one; durable on return when
/// syncing. Its bytes are copied piece by piece from wherever they are.
pub(crate) fn save<N: Node>(
    fs: &dyn FileSystem,
    dir: &Path,
    snapshot: &Snapshot<N>,
    sync: bool,
) -> Result<SnapshotData, WalError> {
    let temp = format!("{SNAPSHOT_FILE}{TEMP_SUFFIX}");
    let mut sink = sink(fs, dir, &temp, &snapshot.meta, sync)?;
    io::copy(&mut snapshot.data.reader(), &mut sink).map_err(io_error("writing", &dir.join(&temp)))?;
    let written = sink.complete()?;
    rename_synced(fs, dir, &temp, SNAPSHOT_FILE, sync)?;
    Ok(SnapshotData::from(Arc::new(written) as Arc<dyn SnapshotSource>))
}

/// Makes the snapshot `staged` the saved one: its snapshot header if it
/// has none yet (a received one), then a rename and a directory sync.
pub(crate) fn install_staged(fs: &dyn FileSystem, staged: &Staged, sync: bool) -> Result<(), WalError> {
    if let Some(header) = &staged.final_header {
        let path = staged.dir.join(&staged.name);
        let file = fs.open(&path).map_err(io_error("opening", &path))?;
        file.write_all_at(header, 0).map_err(io_error("writing", &path))?;
        if sync {
            file.sync_data().map_err(io_error("syncing", &path))?;
        }
    }
    rename_synced(fs, &staged.dir, &staged.name, SNAPSHOT_FILE, sync)
}

/// Makes `snapshot` the saved one: by a rename when this crate staged it
/// in `dir`, else by a copy. Durable on return when syncing; the snapshot
/// as now saved.
pub(crate) fn make_current<N: Node>(
    fs: &dyn FileSystem,
    dir: &Path,
    snapshot: &Snapshot<N>,
    sync: bool,
) -> Result<Snapshot<N>, WalError> {
    match FileSnapshot::take_staged(&snapshot.data, dir) {
        Some(staged) => install_staged(fs, &staged, sync).map(|()| snapshot.clone()),
        None => save(fs, dir, snapshot, sync).map(|data| Snapshot { meta: snapshot.meta.clone(), data }),
    }
}

/// Loads the saved snapshot, or `None` if none was saved, reading only its
/// header and metadata: its data stays in the file, unread. The checksum of
/// the data as written follows from the header's checksum of metadata and
/// data together (crc32c is linear), so the data is checked on its first
/// full read against what was written, not here: a node reads it all at
/// startup anyway (to load its state), and a leader names that checksum to
/// the followers it sends it to, which check every byte they receive. So a
/// corrupt snapshot is never installed, nor accepted from a sender, and a
/// 1 GiB snapshot is read once at startup instead of twice. Until that read
/// the metadata is unchecked: what acts on it at open beyond handing it out
/// (finishing an interrupted install, which removes the log) checks the
/// whole file first ([`check`]).
pub(crate) fn load<N: Node>(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Snapshot<N>>, WalError> {
    let path = dir.join(SNAPSHOT_FILE);
    let file = match fs.open_read(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("opening", &path)(error)),
    };
    let corrupt = |offset: u64, problem| WalError::Corrupt { path: path.clone(), offset, problem };
    let file_len = file.byte_len().map_err(io_error("reading", &path))?;
    let mut head = [0u8; HEADER];
    if file_len < HEADER as u64 || file.read_exact_at(&mut head, 0).is_err() {
        return Err(corrupt(0, Corruption::Truncated));
    }
    let header = Header::decode(&head);
    if header.magic != *MAGIC {
        return Err(corrupt(0, Corruption::BadMagic));
    }
    if !(OLDEST_READABLE_VERSION..=VERSION).contains(&header.version) {
        return Err(WalError::UnsupportedVersion { path, version: header.version, supported: VERSION });
    }
    let body = file_len - HEADER as u64;
    if (header.meta_len as u64).checked_add(header.data_len) != Some(body) {
        return Err(corrupt(HEADER as u64, Corruption::Truncated));
    }
    let mut meta = vec![0u8; header.meta_len as usize];
    file.read_exact_at(&mut meta, HEADER as u64).map_err(io_error("reading", &path))?;
    let data_start = HEADER as u64 + header.meta_len as u64;
    let data_checksum = data_checksum_of(header.crc, crc32c::crc32c(&meta), header.data_len);
    let meta: SnapshotMeta<N> =
        decode_meta(header.version, &meta).map_err(|e| corrupt(HEADER as u64, Corruption::Undecodable(e)))?;
    let data = FileSnapshot::new(file, data_start, header.data_len, data_checksum);
    Ok(Some(Snapshot { meta, data: SnapshotData::from(Arc::new(data) as Arc<dyn SnapshotSource>) }))
}

/// Reads the whole of a loaded snapshot and checks it against the checksum
/// written with it.
pub(crate) fn check<N>(dir: &Path, snapshot: &Snapshot<N>) -> Result<(), WalError> {
    let path = dir.join(SNAPSHOT_FILE);
    io::copy(&mut snapshot.data.checked_reader(), &mut io::sink()).map_err(|error| match error.kind() {
        io::ErrorKind::InvalidData => {
            WalError::Corrupt { path: path.clone(), offset: HEADER as u64, problem: Corruption::RecordChecksum }
        }
        _ => io_error("reading", &path)(error),
    })?;
    Ok(())
}

/// Loads the saved snapshot and checks all of it, for a reader that hands
/// it on without reading it whole first (a backup).
pub(crate) fn load_checked<N: Node>(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Snapshot<N>>, WalError> {
    let snapshot = load(fs, dir)?;
    if let Some(snapshot) = &snapshot {
        check(dir, snapshot)?;
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use ferraft::{BasicNode, LeaderId, LogIndex, Membership, NodeId, RememberedChanges, Term};

    use super::*;
    use crate::file_system::StdFileSystem;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ferraft-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn stored(index: u64, change_id: Option<&str>) -> StoredMembership<BasicNode> {
        let nodes: BTreeMap<_, _> = (1..=3).map(|id| (NodeId(id), BasicNode::new(format!("n{id}")))).collect();
        let membership = Membership::new_uniform(nodes).unwrap().with_change_id(change_id.map(str::to_string));
        let log_id = LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(index));
        StoredMembership { log_id: Some(log_id), membership }
    }

    fn data_of(snapshot: &Snapshot<BasicNode>) -> Vec<u8> {
        let mut data = Vec::new();
        snapshot.data.checked_reader().read_to_end(&mut data).unwrap();
        data
    }

    /// A data dir written before snapshots carried change ids still opens.
    #[test]
    fn a_version_3_snapshot_file_is_read() {
        let dir = temp_dir("snapshot_v3");
        let membership = stored(2, None);
        let meta = postcard::to_allocvec(&SnapshotMetaV3 {
            last_log_id: Some(LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(9))),
            membership: membership.clone(),
        })
        .unwrap();
        let data = b"state machine bytes";
        let whole = crc32c::crc32c_append(crc32c::crc32c(&meta), data);
        let header =
            Header { magic: *MAGIC, version: 3, meta_len: meta.len() as u32, data_len: data.len() as u64, crc: whole };
        let file = [&header.encode()[..], &meta, data].concat();
        std::fs::write(dir.join(SNAPSHOT_FILE), file).unwrap();
        let loaded = load::<BasicNode>(&StdFileSystem, &dir).unwrap().unwrap();
        assert_eq!(loaded.meta.membership, membership);
        assert_eq!(loaded.meta.last_log_id.map(|l| l.index), Some(LogIndex(9)));
        assert!(loaded.meta.changes.is_empty());
        assert_eq!(data_of(&loaded), data);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The remembered change ids are saved with the snapshot and read back.
    #[test]
    fn a_snapshot_keeps_its_remembered_change_ids() {
        let dir = temp_dir("snapshot_changes");
        let mut changes = RememberedChanges::default();
        let (before, first) = (stored(1, None), stored(2, Some("x")));
        changes.remember_left([&before, &first], None, 10);
        assert_eq!(changes.len(), 1);
        let meta = SnapshotMeta { last_log_id: first.log_id, membership: first.clone(), changes: changes.clone() };
        let snapshot = Snapshot { meta, data: bytes::Bytes::from_static(b"state").into() };
        save(&StdFileSystem, &dir, &snapshot, false).unwrap();
        let loaded = load::<BasicNode>(&StdFileSystem, &dir).unwrap().unwrap();
        assert_eq!(loaded.meta.changes, changes);
        assert_eq!(loaded.meta, snapshot.meta);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
