//! The cluster id, the vote, the committed log id and the purge point, stored
//! crash-atomically.
//!
//! The `META` file holds two fixed-size, checksummed slots in separate blocks. Each save writes
//! the whole state, with a sequence number one higher than the last, into the
//! slot *not* holding the latest state, then syncs. A crash mid-write can only
//! damage the slot being written, so the other slot still holds the previous
//! state; recovery takes the intact slot with the highest sequence number.
//! One `pwrite` + `fdatasync` of a preallocated file: cheaper than
//! write-temp-rename-sync-dir, which matters because a vote is saved on the
//! election path.
//!
//! Slots of version 1 (magic `FRMT`, written before cluster ids were saved)
//! are still read; every save writes version 2 (`FRM2`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferraft::{ClusterId, LogId, Vote};
use serde::{Deserialize, Serialize};

use crate::error::{io_error, Corruption, WalError};
use crate::file_system::{FileSystem, FsFile};
use crate::fsutil::{read_if_exists, write_atomic};

/// The metadata file's name in the data dir.
pub(crate) const META_FILE: &str = "META";

/// Bytes per slot; the state encodes to well under 100 bytes.
pub(crate) const SLOT_BYTES: usize = 512;

/// Distance between the slots: one 4 KiB block each, so writing one slot
/// never rewrites the block (or the drive's physical sector) of the other.
pub(crate) const SLOT_STRIDE: usize = 4096;

/// A slot of version 1: no cluster id.
const MAGIC_V1: &[u8; 4] = b"FRMT";
/// A slot of version 2: the cluster id first.
const MAGIC: &[u8; 4] = b"FRM2";
/// magic, sequence number, payload length.
const SLOT_HEADER: usize = 4 + 8 + 2;
const CRC_BYTES: usize = 4;

/// Everything the metadata file remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MetaState {
    /// The node's cluster, once saved.
    pub cluster_id: Option<ClusterId>,
    /// The last vote saved.
    pub vote: Option<Vote>,
    /// The last committed log id saved.
    pub committed: Option<LogId>,
    /// The last entry removed by purge.
    pub last_purged: Option<LogId>,
}

/// What a slot of version 1 holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct MetaStateV1 {
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
}

/// The open metadata file and the state it holds (or is about to hold).
#[derive(Debug)]
pub(crate) struct MetaFile {
    file: Box<dyn FsFile>,
    path: PathBuf,
    sequence: u64,
    /// Which slot (0 or 1) holds the latest state known durable. Every
    /// save goes into the other one, so a save that is torn, or was not
    /// synced when the power went, never damages it.
    synced_slot: usize,
    sync: bool,
    /// The state as the store sees it; saved by [`MetaFile::persist`].
    pub state: MetaState,
    /// The latest slot on disk is of version 1: the data dir was written
    /// before cluster ids were saved.
    pub from_version_1: bool,
    committed_dirty: bool,
    last_persist: Instant,
}

impl MetaFile {
    /// Creates the metadata file of a new data dir, holding the empty state.
    pub fn create(fs: &Arc<dyn FileSystem>, dir: &Path, sync: bool) -> Result<Self, WalError> {
        let mut bytes = vec![0u8; 2 * SLOT_STRIDE];
        encode_slot(1, &MetaState::default(), &mut bytes[..SLOT_BYTES])?;
        write_atomic(&**fs, dir, META_FILE, &[&bytes], sync)?;
        Self::open(fs, dir, sync)?.ok_or_else(|| WalError::Io {
            action: "reopening just-created",
            path: dir.join(META_FILE),
            source: std::io::ErrorKind::NotFound.into(),
        })
    }

    /// Opens the metadata file of `dir`, or `None` if there is none.
    pub fn open(fs: &Arc<dyn FileSystem>, dir: &Path, sync: bool) -> Result<Option<Self>, WalError> {
        let path = dir.join(META_FILE);
        let Some(bytes) = read_if_exists(&**fs, &path)? else { return Ok(None) };
        let corrupt = |problem| WalError::Corrupt { path: path.clone(), offset: 0, problem };
        if bytes.len() != 2 * SLOT_STRIDE {
            return Err(corrupt(Corruption::Truncated));
        }
        let latest = [decode_slot(&bytes[..SLOT_BYTES]), decode_slot(&bytes[SLOT_STRIDE..SLOT_STRIDE + SLOT_BYTES])]
            .into_iter()
            .enumerate()
            .filter_map(|(slot, decoded)| decoded.map(|decoded| (slot, decoded)))
            .max_by_key(|(_, (sequence, _, _))| *sequence);
        let Some((synced_slot, (sequence, state, from_version_1))) = latest else {
            return Err(corrupt(Corruption::NoValidMetaSlot));
        };
        let file = fs.open(&path).map_err(io_error("opening", &path))?;
        if sync {
            // the latest slot may hold an unsynced save of a committed log
            // id (see `save_unsynced`): the next save must not overwrite the
            // other slot before this one is durable
            file.sync_data().map_err(io_error("syncing", &path))?;
        }
        let last_persist = Instant::now();
        let committed_dirty = false;
        Ok(Some(Self { file, path, sequence, synced_slot, sync, state, from_version_1, committed_dirty, last_persist }))
    }

    /// Saves the current state into the slot not holding the latest state
    /// known durable; durable on return when syncing.
    pub fn persist(&mut self) -> Result<(), WalError> {
        // The target is the slot the durable state is *not* in (not a parity
        // of the sequence: a new file's only intact slot would then be the
        // first one overwritten). It moves only once a save is durable, so
        // after a failed save the next attempt goes to the same (possibly
        // damaged) slot and never overwrites the intact one.
        let target = self.write_slot()?;
        if self.sync {
            self.file.sync_data().map_err(io_error("syncing", &self.path))?;
        }
        self.synced_slot = target;
        Ok(())
    }

    /// Saves the current state like [`persist`](Self::persist) but without a
    /// sync: for a changed committed log id alone, which may be lost (the
    /// contract lets it be older after a crash, never newer). A later save
    /// goes to the same slot, so the durable one stays intact whatever the
    /// power loses; `persist` or the next open makes it durable.
    pub fn save_unsynced(&mut self) -> Result<(), WalError> {
        self.write_slot().map(|_| ())
    }

    /// Writes the whole state into the slot not holding the durable state;
    /// that slot.
    fn write_slot(&mut self) -> Result<usize, WalError> {
        self.sequence += 1;
        let target = 1 - self.synced_slot;
        let mut slot = [0u8; SLOT_BYTES];
        encode_slot(self.sequence, &self.state, &mut slot)?;
        let offset = (target * SLOT_STRIDE) as u64;
        self.file.write_all_at(&slot, offset).map_err(io_error("writing", &self.path))?;
        self.committed_dirty = false;
        self.from_version_1 = false;
        self.last_persist = Instant::now();
        Ok(target)
    }

    /// Records a new committed log id, to be saved with the next persist.
    pub fn set_committed(&mut self, committed: Option<LogId>) {
        if self.state.committed != committed {
            self.state.committed = committed;
            self.committed_dirty = true;
        }
    }

    /// Whether a committed log id is waiting to be saved.
    pub fn committed_dirty(&self) -> bool {
        self.committed_dirty
    }

    /// When the state was last saved.
    pub fn last_persist(&self) -> Instant {
        self.last_persist
    }
}

/// Writes one slot: header, postcard state, crc32c over both.
fn encode_slot(sequence: u64, state: &MetaState, slot: &mut [u8]) -> Result<(), WalError> {
    let payload_end = SLOT_BYTES - CRC_BYTES;
    let len = postcard::to_slice(state, &mut slot[SLOT_HEADER..payload_end]).map_err(WalError::Encode)?.len();
    slot[..4].copy_from_slice(MAGIC);
    slot[4..12].copy_from_slice(&sequence.to_le_bytes());
    slot[12..14].copy_from_slice(&(len as u16).to_le_bytes());
    let end = SLOT_HEADER + len;
    let crc = crc32c::crc32c(&slot[..end]);
    slot[end..end + CRC_BYTES].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The sequence number and state in a slot, if it is intact, and whether
/// the slot is of version 1.
fn decode_slot(slot: &[u8]) -> Option<(u64, MetaState, bool)> {
    let version_1 = match &slot[..4] {
        magic if magic == MAGIC => false,
        magic if magic == MAGIC_V1 => true,
        _ => return None,
    };
    let sequence = u64::from_le_bytes(slot[4..12].try_into().ok()?);
    let len = u16::from_le_bytes(slot[12..14].try_into().ok()?) as usize;
    let end = SLOT_HEADER.checked_add(len).filter(|end| end + CRC_BYTES <= slot.len())?;
    let crc = u32::from_le_bytes(slot[end..end + CRC_BYTES].try_into().ok()?);
    if crc32c::crc32c(&slot[..end]) != crc {
        return None;
    }
    let payload = &slot[SLOT_HEADER..end];
    let state = match version_1 {
        false => postcard::from_bytes(payload).ok()?,
        true => {
            let v1: MetaStateV1 = postcard::from_bytes(payload).ok()?;
            MetaState { cluster_id: None, vote: v1.vote, committed: v1.committed, last_purged: v1.last_purged }
        }
    };
    Some((sequence, state, version_1))
}

#[cfg(test)]
mod tests {
    use ferraft::{LeaderId, LogIndex, NodeId, Term};

    use super::*;

    #[test]
    fn slot_round_trips() {
        let state = MetaState {
            cluster_id: ClusterId::new(u64::MAX),
            vote: Some(Vote::new_committed(Term(u64::MAX), NodeId(u64::MAX))),
            committed: Some(LogId::default()),
            last_purged: None,
        };
        let mut slot = [0u8; SLOT_BYTES];
        encode_slot(9, &state, &mut slot).unwrap();
        assert_eq!(decode_slot(&slot), Some((9, state, false)));
    }

    /// The state as data dirs written while ids were plain `u64`s hold it:
    /// postcard varints, `Some` as 1. Node ids, terms and indexes must keep
    /// reading (and writing) exactly these bytes.
    #[test]
    fn a_state_written_with_plain_number_ids_reads_and_writes_the_same_bytes() {
        let stored: &[u8] = &[
            1, 7, // cluster id 7
            1, 5, 3, 1, // vote: term 5, node 3, committed
            1, 5, 3, 0xac, 0x02, // committed log id: term 5, node 3, index 300
            0,    // nothing purged
        ];
        let state: MetaState = postcard::from_bytes(stored).unwrap();
        let leader = LeaderId::new(Term(5), NodeId(3));
        assert_eq!(state.vote, Some(Vote::new_committed(Term(5), NodeId(3))));
        assert_eq!(state.committed, Some(LogId::new(leader, LogIndex(300))));
        assert_eq!(postcard::to_allocvec(&state).unwrap(), stored);
    }

    #[test]
    fn a_slot_of_version_1_reads_as_a_state_without_cluster_id() {
        let old = MetaStateV1 { vote: Some(Vote::new(Term(3), NodeId(2))), committed: None, last_purged: None };
        let mut slot = [0u8; SLOT_BYTES];
        let len = postcard::to_slice(&old, &mut slot[SLOT_HEADER..]).unwrap().len();
        slot[..4].copy_from_slice(MAGIC_V1);
        slot[4..12].copy_from_slice(&5u64.to_le_bytes());
        slot[12..14].copy_from_slice(&(len as u16).to_le_bytes());
        let crc = crc32c::crc32c(&slot[..SLOT_HEADER + len]);
        slot[SLOT_HEADER + len..SLOT_HEADER + len + CRC_BYTES].copy_from_slice(&crc.to_le_bytes());
        let expected = MetaState { vote: old.vote, ..MetaState::default() };
        assert_eq!(decode_slot(&slot), Some((5, expected, true)));
    }

    #[test]
    fn damaged_slot_is_ignored() {
        let mut slot = [0u8; SLOT_BYTES];
        encode_slot(3, &MetaState::default(), &mut slot).unwrap();
        let used = SLOT_HEADER + postcard::to_allocvec(&MetaState::default()).unwrap().len() + CRC_BYTES;
        for bit in 0..used * 8 {
            let mut damaged = slot;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode_slot(&damaged), None, "flip of bit {bit} went unnoticed");
        }
        assert_eq!(decode_slot(&[0u8; SLOT_BYTES]), None);
    }

    /// An unsynced save may be lost or torn by a power cut: it must never
    /// land on the slot holding the last durable state, however many follow.
    #[test]
    fn unsynced_saves_leave_the_durable_slot_alone() {
        let dir = std::env::temp_dir().join(format!("ferraft-meta-unsynced-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fs: Arc<dyn FileSystem> = Arc::new(crate::file_system::StdFileSystem);
        let mut meta = MetaFile::create(&fs, &dir, true).unwrap();
        meta.state.vote = Some(Vote::new_committed(Term(2), NodeId(1)));
        meta.persist().unwrap();
        let durable = std::fs::read(dir.join(META_FILE)).unwrap();
        let durable_slot = (0..2).max_by_key(|s| decode_slot(&durable[s * SLOT_STRIDE..][..SLOT_BYTES]).map(|d| d.0));
        let durable_slot = durable_slot.unwrap();
        for index in 1..=3 {
            meta.set_committed(Some(LogId::new(ferraft::LeaderId::new(Term(2), NodeId(1)), LogIndex(index))));
            meta.save_unsynced().unwrap();
        }
        let now = std::fs::read(dir.join(META_FILE)).unwrap();
        let range = durable_slot * SLOT_STRIDE..durable_slot * SLOT_STRIDE + SLOT_BYTES;
        assert_eq!(now[range.clone()], durable[range], "an unsynced save overwrote the durable slot");
        let reopened = MetaFile::open(&fs, &dir, true).unwrap().unwrap();
        assert_eq!(reopened.state.committed.map(|c| c.index), Some(LogIndex(3)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
