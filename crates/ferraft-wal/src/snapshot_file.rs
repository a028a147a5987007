//! The latest snapshot, stored as one checksummed file replaced atomically.
//!
//! Layout: magic, version, payload length, crc32c of the payload, then the
//! postcard-encoded [`Snapshot`]. Saving writes a temporary file, syncs it,
//! renames it over the old one and syncs the directory, so a crash leaves the
//! old snapshot or the new one, never a mix.

use std::path::Path;

use ferraft::{Node, Snapshot};

use crate::error::{Corruption, WalError};
use crate::fsutil::{read_if_exists, write_atomic};

/// The snapshot file's name in the data dir.
pub(crate) const SNAPSHOT_FILE: &str = "SNAPSHOT";

const MAGIC: &[u8; 8] = b"FRSNAP\0\0";
const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 8 + 4;

/// Saves `snapshot`, replacing the previous one; durable on return when syncing.
pub(crate) fn save<N: Node>(dir: &Path, snapshot: &Snapshot<N>, sync: bool) -> Result<(), WalError> {
    let mut bytes = vec![0u8; HEADER];
    bytes = postcard::to_extend(snapshot, bytes).map_err(WalError::Encode)?;
    let payload_len = (bytes.len() - HEADER) as u64;
    let crc = crc32c::crc32c(&bytes[HEADER..]);
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
    bytes[12..20].copy_from_slice(&payload_len.to_le_bytes());
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    write_atomic(dir, SNAPSHOT_FILE, &bytes, sync)
}

/// Loads the saved snapshot, or `None` if none was saved.
pub(crate) fn load<N: Node>(dir: &Path) -> Result<Option<Snapshot<N>>, WalError> {
    let path = dir.join(SNAPSHOT_FILE);
    let Some(bytes) = read_if_exists(&path)? else { return Ok(None) };
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
    let payload_len = u64::from_le_bytes(bytes[12..20].try_into().expect("slice of 8"));
    let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("slice of 4"));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != payload_len {
        return Err(corrupt(HEADER, Corruption::Truncated));
    }
    if crc32c::crc32c(payload) != crc {
        return Err(corrupt(HEADER, Corruption::RecordChecksum));
    }
    postcard::from_bytes(payload).map(Some).map_err(|error| corrupt(HEADER, Corruption::Undecodable(error)))
}
