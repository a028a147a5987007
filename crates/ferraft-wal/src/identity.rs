//! The identity file: which node of which cluster owns a data dir.
//!
//! A node started on another node's data would vote and acknowledge entries
//! as if it were that node: a silent safety violation. The identity is written
//! once, on first open, and checked on every later open.

use std::path::Path;

use ferraft::NodeId;

use crate::error::{Corruption, WalError};
use crate::fsutil::{read_if_exists, write_atomic};

/// The identity file's name in the data dir.
pub(crate) const IDENTITY_FILE: &str = "IDENTITY";

const MAGIC: &[u8; 8] = b"FRWALID\0";
const VERSION: u32 = 1;
const LEN: usize = 32;

/// Who owns a data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The owning node.
    pub node_id: NodeId,
    /// The owning node's cluster.
    pub cluster_id: u64,
}

impl Identity {
    /// Reads the identity of `dir`, or `None` if it has none yet.
    pub fn read(dir: &Path) -> Result<Option<Self>, WalError> {
        let path = dir.join(IDENTITY_FILE);
        let Some(bytes) = read_if_exists(&path)? else { return Ok(None) };
        let corrupt = |problem| WalError::Corrupt { path: path.clone(), offset: 0, problem };
        if bytes.len() != LEN {
            return Err(corrupt(Corruption::Truncated));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt(Corruption::BadMagic));
        }
        let crc = u32::from_le_bytes(bytes[28..32].try_into().expect("slice of 4"));
        if crc32c::crc32c(&bytes[..28]) != crc {
            return Err(corrupt(Corruption::HeaderChecksum));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("slice of 4"));
        if version != VERSION {
            return Err(WalError::UnsupportedVersion { path, version, supported: VERSION });
        }
        Ok(Some(Self {
            node_id: u64::from_le_bytes(bytes[12..20].try_into().expect("slice of 8")),
            cluster_id: u64::from_le_bytes(bytes[20..28].try_into().expect("slice of 8")),
        }))
    }

    /// Records this identity in `dir`, atomically.
    pub fn write(&self, dir: &Path, sync: bool) -> Result<(), WalError> {
        let mut bytes = [0u8; LEN];
        bytes[..8].copy_from_slice(MAGIC);
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[12..20].copy_from_slice(&self.node_id.to_le_bytes());
        bytes[20..28].copy_from_slice(&self.cluster_id.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..28]);
        bytes[28..].copy_from_slice(&crc.to_le_bytes());
        write_atomic(dir, IDENTITY_FILE, &[&bytes], sync)
    }

    /// Fails unless `self` (found on disk) is the identity the store was opened with.
    pub fn check(&self, dir: &Path, expected: Identity) -> Result<(), WalError> {
        if *self == expected {
            return Ok(());
        }
        Err(WalError::WrongIdentity {
            path: dir.to_path_buf(),
            node_id: expected.node_id,
            cluster_id: expected.cluster_id,
            found_node_id: self.node_id,
            found_cluster_id: self.cluster_id,
        })
    }
}
