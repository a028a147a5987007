//! The latest snapshot, stored as one checksummed file replaced atomically.
//!
//! Layout: magic, version, metadata length, data length, crc32c of metadata
//! and data, then the postcard-encoded [`SnapshotMeta`] and the state
//! machine's bytes as they are (no copy into an encoding buffer: snapshots can
//! be large). Saving writes a temporary file, syncs it, renames it over the
//! old one and syncs the directory, so a crash leaves the old snapshot or the
//! new one, never a mix.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use ferraft::{Node, Snapshot, SnapshotMeta};

use crate::error::{Corruption, WalError};
use crate::file_system::FileSystem;
use crate::fsutil::{read_if_exists, rename_synced, write_atomic, write_synced, TEMP_SUFFIX};

/// The snapshot file's name in the data dir.
pub(crate) const SNAPSHOT_FILE: &str = "SNAPSHOT";

const MAGIC: &[u8; 8] = b"FRSNAP\0\0";
/// Version 2: the membership in the metadata carries its `JointExit`.
/// Version 3: and the incarnation of each member.
const VERSION: u32 = 3;
const HEADER: usize = 8 + 4 + 4 + 8 + 4;

/// A new name for a snapshot written off the Raft task to wait under until
/// it is made current: a temporary file, so a crash before that removes it,
/// and unique in the process, so a job still running for a closed store can
/// never write into the file of a store reopened on the same dir.
pub(crate) fn staged_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("SNAPSHOT.staged-{}-{}{TEMP_SUFFIX}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Saves `snapshot`, replacing the previous one; durable on return when syncing.
pub(crate) fn save<N: Node>(
    fs: &dyn FileSystem,
    dir: &Path,
    snapshot: &Snapshot<N>,
    sync: bool,
) -> Result<(), WalError> {
    let (header, meta) = encode_head(snapshot)?;
    write_atomic(fs, dir, SNAPSHOT_FILE, &[&header, &meta, &snapshot.data], sync)
}

/// Writes `snapshot` to `dir/staged`, synced; [`install_staged`] makes it current.
pub(crate) fn stage<N: Node>(
    fs: &dyn FileSystem,
    dir: &Path,
    staged: &str,
    snapshot: &Snapshot<N>,
    sync: bool,
) -> Result<(), WalError> {
    let (header, meta) = encode_head(snapshot)?;
    write_synced(fs, &dir.join(staged), &[&header, &meta, &snapshot.data], sync)
}

/// Makes the snapshot staged at `dir/staged` the saved one: a rename and a
/// directory sync.
pub(crate) fn install_staged(fs: &dyn FileSystem, dir: &Path, staged: &str, sync: bool) -> Result<(), WalError> {
    rename_synced(fs, dir, staged, SNAPSHOT_FILE, sync)
}

/// The fixed header and the encoded metadata that precede the data.
fn encode_head<N: Node>(snapshot: &Snapshot<N>) -> Result<([u8; HEADER], Vec<u8>), WalError> {
    let meta = postcard::to_allocvec(&snapshot.meta).map_err(WalError::Encode)?;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&meta), &snapshot.data);
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(meta.len() as u32).to_le_bytes());
    header[16..24].copy_from_slice(&(snapshot.data.len() as u64).to_le_bytes());
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    Ok((header, meta))
}

/// Loads the saved snapshot, or `None` if none was saved.
pub(crate) fn load<N: Node>(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Snapshot<N>>, WalError> {
    let path = dir.join(SNAPSHOT_FILE);
    let Some(bytes) = read_if_exists(fs, &path)? else { return Ok(None) };
    let corrupt = |offset: usize, problem| WalError::Corrupt { path: path.clone(), offset: offset as u64, problem };
    if bytes.len() < HEADER {
        return Err(corrupt(0, Corruption::Truncated));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt(0, Corruption::BadMagic));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("slice of 4"));
    if version != VERSION {
        return Err(WalError::UnsupportedVersion { path, version, supported: VERSION });
    }
    let meta_len = u32::from_le_bytes(bytes[12..16].try_into().expect("slice of 4")) as u64;
    let data_len = u64::from_le_bytes(bytes[16..24].try_into().expect("slice of 8"));
    let crc = u32::from_le_bytes(bytes[24..28].try_into().expect("slice of 4"));
    if meta_len.checked_add(data_len) != Some((bytes.len() - HEADER) as u64) {
        return Err(corrupt(HEADER, Corruption::Truncated));
    }
    if crc32c::crc32c(&bytes[HEADER..]) != crc {
        return Err(corrupt(HEADER, Corruption::RecordChecksum));
    }
    let data_start = HEADER + meta_len as usize;
    let meta: SnapshotMeta<N> =
        postcard::from_bytes(&bytes[HEADER..data_start]).map_err(|e| corrupt(HEADER, Corruption::Undecodable(e)))?;
    // The file's buffer becomes the snapshot's bytes: no copy.
    let data = Bytes::from(bytes).slice(data_start..);
    Ok(Some(Snapshot { meta, data }))
}
