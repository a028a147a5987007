//! The identity file: which node of which cluster owns a data dir, and the
//! data's incarnation.
//!
//! A node started on another node's data would vote and acknowledge entries
//! as if it were that node: a silent safety violation. The identity is written
//! once, on first open, and checked on every later open. The incarnation, a
//! random id drawn then, lives and dies with the data: a wiped data dir gets a
//! new one, which is how the cluster tells the node's two lives apart.
//! Version 2 added it; a version-1 file is refused (its data dir's segments
//! are of an older format too).

use std::path::Path;

use ferraft::NodeId;

use crate::error::{Corruption, WalError};
use crate::file_system::FileSystem;
use crate::fsutil::{read_if_exists, write_atomic};

/// The identity file's name in the data dir.
pub(crate) const IDENTITY_FILE: &str = "IDENTITY";

const MAGIC: &[u8; 8] = b"FRWALID\0";
const VERSION: u32 = 2;
const LEN: usize = 40;

/// Who owns a data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The owning node.
    pub node_id: NodeId,
    /// The owning node's cluster.
    pub cluster_id: u64,
    /// The data's incarnation; not part of what [`Identity::check`] compares.
    pub incarnation: u64,
}

impl Identity {
    /// Reads the identity of `dir`, or `None` if it has none yet.
    pub fn read(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Self>, WalError> {
        let path = dir.join(IDENTITY_FILE);
        let Some(bytes) = read_if_exists(fs, &path)? else { return Ok(None) };
        let corrupt = |problem| WalError::Corrupt { path: path.clone(), offset: 0, problem };
        if bytes.len() < 12 {
            return Err(corrupt(Corruption::Truncated));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt(Corruption::BadMagic));
        }
        // the version first: an older file is shorter, and must read as old, not torn
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("slice of 4"));
        if version != VERSION {
            return Err(WalError::UnsupportedVersion { path, version, supported: VERSION });
        }
        if bytes.len() != LEN {
            return Err(corrupt(Corruption::Truncated));
        }
        let crc = u32::from_le_bytes(bytes[LEN - 4..].try_into().expect("slice of 4"));
        if crc32c::crc32c(&bytes[..LEN - 4]) != crc {
            return Err(corrupt(Corruption::HeaderChecksum));
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("slice of 8"));
        Ok(Some(Self { node_id: NodeId(word(12)), cluster_id: word(20), incarnation: word(28) }))
    }

    /// Records this identity in `dir`, atomically.
    pub fn write(&self, fs: &dyn FileSystem, dir: &Path, sync: bool) -> Result<(), WalError> {
        let mut bytes = [0u8; LEN];
        bytes[..8].copy_from_slice(MAGIC);
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[12..20].copy_from_slice(&self.node_id.0.to_le_bytes());
        bytes[20..28].copy_from_slice(&self.cluster_id.to_le_bytes());
        bytes[28..36].copy_from_slice(&self.incarnation.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..LEN - 4]);
        bytes[LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        write_atomic(fs, dir, IDENTITY_FILE, &[&bytes], sync)
    }

    /// Fails unless `self` (found on disk) is the identity the store was opened with.
    pub fn check(&self, dir: &Path, expected: Identity) -> Result<(), WalError> {
        if (self.node_id, self.cluster_id) == (expected.node_id, expected.cluster_id) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_system::StdFileSystem;
    use ferraft::testing::conformance::TestDir;

    #[test]
    fn an_identity_reads_back_with_its_incarnation() {
        let dir = TestDir::new("identity_round_trip");
        let identity = Identity { node_id: NodeId(3), cluster_id: 7, incarnation: u64::MAX - 1 };
        identity.write(&StdFileSystem, dir.path(), false).unwrap();
        assert_eq!(Identity::read(&StdFileSystem, dir.path()).unwrap(), Some(identity));
    }

    #[test]
    fn another_incarnation_of_the_same_node_passes_the_check() {
        let dir = TestDir::new("identity_check");
        let found = Identity { node_id: NodeId(3), cluster_id: 7, incarnation: 1 };
        assert!(found.check(dir.path(), Identity { incarnation: 2, ..found }).is_ok());
        assert!(found.check(dir.path(), Identity { node_id: NodeId(4), ..found }).is_err());
    }

    #[test]
    fn an_identity_file_of_version_1_is_refused_not_misread() {
        let dir = TestDir::new("identity_version_1");
        let mut old = [0u8; 32];
        old[..8].copy_from_slice(MAGIC);
        old[8..12].copy_from_slice(&1u32.to_le_bytes());
        old[12..20].copy_from_slice(&3u64.to_le_bytes());
        let crc = crc32c::crc32c(&old[..28]);
        old[28..].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(dir.path().join(IDENTITY_FILE), old).unwrap();
        match Identity::read(&StdFileSystem, dir.path()) {
            Err(WalError::UnsupportedVersion { version: 1, supported: VERSION, .. }) => {}
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
    }
}
