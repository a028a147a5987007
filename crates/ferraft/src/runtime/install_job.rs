//! Installing a snapshot received from a leader, off the host: the store's
//! partial copy is made durable, and the state machine decodes it piece by
//! piece while its bytes are checked against the sender's checksum (one
//! read of the file, not a checking pass and then a decoding one), wherever
//! the [`JobSpawner`](super::JobSpawner) runs jobs; a store with a
//! [`SnapshotSaver`] also makes it current there (a rename into place). The
//! host then only swaps the decoded state in
//! ([`NodeHost::snapshot_decoded`](super::NodeHost::snapshot_decoded)).

use std::any::Any;
use std::io::Read;

use crate::node::NodeId;
use crate::snapshot::{Snapshot, SnapshotData, SnapshotMeta};
use crate::snapshot_saver::{MadeCurrent, SnapshotSaver};
use crate::snapshot_sink::PartialSnapshot;
use crate::storage::StorageError;

/// Decodes a snapshot into the state machine's install closure, type-erased
/// so the spawner need not know the state machine.
pub(crate) type Decode = Box<dyn FnOnce(&mut dyn Read) -> Result<Box<dyn Any + Send>, StorageError> + Send>;

/// A received snapshot, the state machine's (type-erased) install, and
/// what the job did to make the snapshot current (`None`: left to the host).
pub(crate) type Decoded<N> = (Snapshot<N>, Box<dyn Any + Send>, Option<MadeCurrent>);

/// The work of one install, ready to run on any thread.
pub struct InstallTask<N> {
    pub(crate) from: NodeId,
    pub(crate) seq: u64,
    pub(crate) meta: SnapshotMeta<N>,
    pub(crate) checksum: u32,
    pub(crate) partial: Box<dyn PartialSnapshot>,
    pub(crate) decode: Decode,
    pub(crate) saver: Option<Box<dyn SnapshotSaver<N>>>,
}

impl<N> std::fmt::Debug for InstallTask<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallTask").field("from", &self.from).finish_non_exhaustive()
    }
}

impl<N: Clone> InstallTask<N> {
    /// Finishes the received bytes, decodes them and, with a saver, makes
    /// them the current snapshot: the decode and its check come first, so
    /// neither bytes a state machine cannot read nor bytes that are not the
    /// sender's are ever left current on disk.
    pub fn run(self) -> SnapshotDecoded<N> {
        let Self { from, seq, meta, checksum, mut partial, decode, saver } = self;
        let result = partial.finish(checksum).and_then(|finished| match finished {
            None => Ok(None),
            Some(data) => match decode_checked(&data, decode)? {
                None => partial.discard().map(|()| None),
                Some(install) => {
                    let snapshot = Snapshot { meta: meta.clone(), data };
                    let (snapshot, made) = super::snapshot_job::made_current(saver, snapshot)?;
                    Ok(Some((snapshot, install, made)))
                }
            },
        });
        SnapshotDecoded { from, seq, meta, result }
    }
}

/// Decodes `data` in one read that also checks its bytes: `None` when they
/// are not the sender's, whatever the decode made of them (it fails on some
/// corrupt bytes, and reads others into a wrong state). The state decoded
/// is a new value, swapped in only later: nothing is installed before the
/// last byte is checked.
fn decode_checked(data: &SnapshotData, decode: Decode) -> Result<Option<Box<dyn Any + Send>>, StorageError> {
    let mut reader = data.checked_reader();
    let decoded = super::job_spawner::state_machine_part("decoding a snapshot", || decode(&mut reader));
    let intact = reader.rest_matches().map_err(|e| StorageError::new("reading a received snapshot", e))?;
    match intact {
        true => decoded.map(Some),
        false => Ok(None),
    }
}

/// What an [`InstallTask`] produced: the snapshot's data and the state
/// machine's install closure, `None` when the bytes did not match the
/// sender's checksum (they are forgotten and asked for again).
pub struct SnapshotDecoded<N> {
    pub(crate) from: NodeId,
    pub(crate) seq: u64,
    pub(crate) meta: SnapshotMeta<N>,
    pub(crate) result: Result<Option<Decoded<N>>, StorageError>,
}

impl<N> std::fmt::Debug for SnapshotDecoded<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotDecoded").field("from", &self.from).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::log_id::LogId;
    use crate::membership::{Membership, StoredMembership};
    use crate::snapshot::SnapshotSource;
    use crate::snapshot_sink::{MemorySnapshot, PartialSnapshot};
    use crate::{BasicNode, LeaderId, LogIndex, Term};

    fn meta() -> SnapshotMeta<BasicNode> {
        let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
        let membership = StoredMembership { log_id: None, membership: Membership::new_uniform(nodes).unwrap() };
        SnapshotMeta {
            last_log_id: Some(LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(9))),
            membership,
            changes: Default::default(),
        }
    }

    fn task(partial: Box<dyn PartialSnapshot>, checksum: u32, decode: Decode) -> InstallTask<BasicNode> {
        InstallTask { from: NodeId(2), seq: 1, meta: meta(), checksum, partial, decode, saver: None }
    }

    #[test]
    fn a_state_machine_that_panics_decoding_gives_an_error_not_a_lost_answer() {
        let partial = Box::<MemorySnapshot>::default();
        let checksum = crate::snapshot::SnapshotData::from(Vec::new()).checksum();
        let decode: Decode = Box::new(|_| panic!("a state machine bug"));
        // without an answer the receiver would refuse every chunk, installing forever
        assert!(task(partial, checksum, decode).run().result.is_err());
    }

    /// Bytes as a store on disk hands them out: named by the sender's
    /// checksum, unchecked until read.
    #[derive(Debug)]
    struct Unchecked(Vec<u8>, u32);

    impl SnapshotSource for Unchecked {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn checksum(&self) -> u32 {
            self.1
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            let rest = &self.0[offset as usize..];
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            Ok(n)
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    /// A partial snapshot that leaves the check to the install, and says
    /// whether it was told to forget its bytes.
    struct DiskLike {
        bytes: Vec<u8>,
        discarded: Arc<AtomicBool>,
    }

    impl PartialSnapshot for DiskLike {
        fn received(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn append(&mut self, data: &[u8]) -> Result<(), StorageError> {
            self.bytes.extend_from_slice(data);
            Ok(())
        }
        fn finish(&mut self, checksum: u32) -> Result<Option<SnapshotData>, StorageError> {
            let source: Arc<dyn SnapshotSource> = Arc::new(Unchecked(std::mem::take(&mut self.bytes), checksum));
            Ok(Some(SnapshotData::from(source)))
        }
        fn discard(self: Box<Self>) -> Result<(), StorageError> {
            self.discarded.store(true, Ordering::SeqCst);
            Ok(())
        }
    }

    /// The state: a length, then that many bytes. Records what it decoded.
    fn length_prefixed_decode(decoded: Arc<Mutex<Option<Vec<u8>>>>) -> Decode {
        Box::new(move |reader| {
            let mut len = [0u8; 1];
            reader.read_exact(&mut len).map_err(|e| StorageError::new("decoding", e))?;
            let mut state = vec![0u8; len[0] as usize];
            reader.read_exact(&mut state).map_err(|e| StorageError::new("decoding", e))?;
            *decoded.lock().unwrap() = Some(state);
            Ok(Box::new(()) as Box<dyn Any + Send>)
        })
    }

    /// Installs `sent`'s bytes with byte `corrupt_at` (if any) flipped on
    /// the receiver's disk: (installed, discarded, what the decode read).
    fn install(sent: &[u8], corrupt_at: Option<usize>) -> (bool, bool, Option<Vec<u8>>) {
        let checksum = SnapshotData::from(sent.to_vec()).checksum();
        let mut held = sent.to_vec();
        if let Some(at) = corrupt_at {
            held[at] ^= 0x40;
        }
        let discarded = Arc::new(AtomicBool::new(false));
        let partial = Box::new(DiskLike { bytes: held, discarded: discarded.clone() });
        let decoded = Arc::new(Mutex::new(None));
        let result = task(partial, checksum, length_prefixed_decode(decoded.clone())).run().result;
        let installed = result.expect("corruption is no storage failure").is_some();
        let read = decoded.lock().unwrap().take();
        (installed, discarded.load(Ordering::SeqCst), read)
    }

    #[test]
    fn intact_bytes_are_decoded_in_one_read_and_installed() {
        let (installed, discarded, read) = install(b"\x03abc", None);
        assert_eq!((installed, discarded, read.as_deref()), (true, false, Some(&b"abc"[..])));
    }

    #[test]
    fn a_corrupted_byte_the_decode_reads_as_state_is_refused_before_anything_is_installed() {
        let (installed, discarded, read) = install(b"\x03abc", Some(2));
        assert_eq!(read.as_deref(), Some(&b"a\x22c"[..]), "the decode read a wrong state");
        assert!(!installed, "but it is never installed");
        assert!(discarded, "and the bytes are forgotten: no transfer resumes onto them");
    }

    #[test]
    fn a_corrupted_byte_that_fails_the_decode_is_a_refused_transfer_not_a_storage_failure() {
        // the length now claims more bytes than there are
        let (installed, discarded, read) = install(b"\x03abc", Some(0));
        assert_eq!((installed, discarded, read), (false, true, None));
    }

    #[test]
    fn bytes_the_decode_leaves_unread_are_checked_too() {
        let (installed, discarded, _) = install(b"\x03abcTRAILER", Some(8));
        assert_eq!((installed, discarded), (false, true));
    }
}
