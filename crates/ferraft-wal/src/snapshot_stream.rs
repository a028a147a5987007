//! Snapshot files written and read piece by piece: the sink a snapshot job
//! encodes into, the file a leader reads chunks from, and the partial file a
//! follower gathers chunks in. None holds more than one bounded buffer, so
//! a state of many GiB needs no buffer of that size on either side.
//!
//! Every file has the layout of [`snapshot_file`](crate::snapshot_file): a
//! fixed header, the encoded metadata, then the data. The header is written
//! last, when the lengths and checksum are known. A partial file uses the
//! same layout with its own magic; its header's length field says how many
//! bytes are known durable (a restart resumes from there) and its checksum
//! field holds the checksum the sender named.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ferraft::{PartialSnapshot, SnapshotData, SnapshotSink, SnapshotSource, StorageError};

use crate::error::{io_error, WalError};
use crate::file_system::{FileSystem, FsFile};
use crate::write_behind::WriteBehind;

/// The saved snapshot's magic.
pub(crate) const MAGIC: &[u8; 8] = b"FRSNAP\0\0";
/// A partial snapshot's magic.
const PARTIAL_MAGIC: &[u8; 8] = b"FRPART\0\0";
/// Version 2: the membership in the metadata carries its `JointExit`.
/// Version 3: and the incarnation of each member.
/// Version 4: the metadata carries the remembered change ids.
pub(crate) const VERSION: u32 = 4;
/// The oldest version whose saved snapshot is still read (see
/// [`decode_meta`](crate::snapshot_file::decode_meta)).
pub(crate) const OLDEST_READABLE_VERSION: u32 = 3;
/// Magic, version, metadata length, data length, checksum.
pub(crate) const HEADER: usize = 8 + 4 + 4 + 8 + 4;
/// The partial snapshot's file name: no temporary suffix, so it outlives a
/// restart.
pub(crate) const PARTIAL_FILE: &str = "SNAPSHOT.partial";
/// A partial snapshot is synced, and its durable length recorded, every
/// this many bytes: what a restart may have to receive again.
const PARTIAL_CHECKPOINT_BYTES: u64 = 16 * 1024 * 1024;

/// A snapshot header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) magic: [u8; 8],
    pub(crate) version: u32,
    pub(crate) meta_len: u32,
    pub(crate) data_len: u64,
    pub(crate) crc: u32,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER] {
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(&self.magic);
        header[8..12].copy_from_slice(&self.version.to_le_bytes());
        header[12..16].copy_from_slice(&self.meta_len.to_le_bytes());
        header[16..24].copy_from_slice(&self.data_len.to_le_bytes());
        header[24..28].copy_from_slice(&self.crc.to_le_bytes());
        header
    }

    pub(crate) fn decode(bytes: &[u8; HEADER]) -> Self {
        let field = |range: std::ops::Range<usize>| bytes[range].to_vec();
        Self {
            magic: bytes[..8].try_into().expect("slice of 8"),
            version: u32::from_le_bytes(field(8..12).try_into().expect("slice of 4")),
            meta_len: u32::from_le_bytes(field(12..16).try_into().expect("slice of 4")),
            data_len: u64::from_le_bytes(field(16..24).try_into().expect("slice of 8")),
            crc: u32::from_le_bytes(field(24..28).try_into().expect("slice of 4")),
        }
    }
}

/// A snapshot file's data, read by offset: what the store hands out as a
/// snapshot's [`SnapshotData`].
#[derive(Debug)]
pub(crate) struct FileSnapshot {
    file: Box<dyn FsFile>,
    data_start: u64,
    len: u64,
    checksum: u32,
    /// Where it waits while not yet current; taken when it is made current.
    staged: Mutex<Option<Staged>>,
    /// Set for a file under a name of its own: removed on drop if never
    /// made current.
    remove_unsaved: Option<Arc<dyn FileSystem>>,
}

impl FileSnapshot {
    /// The data of an open snapshot file, `len` bytes from `data_start`.
    pub(crate) fn new(file: Box<dyn FsFile>, data_start: u64, len: u64, checksum: u32) -> Self {
        Self { file, data_start, len, checksum, staged: Mutex::new(None), remove_unsaved: None }
    }

    /// Takes where it is staged, if `data` is a file written by this crate
    /// in `dir` and not yet made current.
    pub(crate) fn take_staged(data: &SnapshotData, dir: &Path) -> Option<Staged> {
        let file = data.source()?.as_any().downcast_ref::<FileSnapshot>()?;
        let mut staged = file.staged.lock().unwrap_or_else(|p| p.into_inner());
        match staged.as_ref() {
            Some(place) if place.dir == dir => staged.take(),
            _ => None,
        }
    }

    fn stage(&self, staged: Staged) {
        *self.staged.lock().unwrap_or_else(|p| p.into_inner()) = Some(staged);
    }
}

impl SnapshotSource for FileSnapshot {
    fn len(&self) -> u64 {
        self.len
    }

    fn checksum(&self) -> u32 {
        self.checksum
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.len.saturating_sub(offset);
        let n = buf.len().min(usize::try_from(available).unwrap_or(usize::MAX));
        self.file.read_exact_at(&mut buf[..n], self.data_start + offset)?;
        Ok(n)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Drop for FileSnapshot {
    /// A snapshot written under a name of its own and let go before it was
    /// made current (one installed meanwhile covers it) is removed: else
    /// every such one stays on disk, a full copy of the state, until the
    /// next open. Files under reused names (`SNAPSHOT.partial`, a save's
    /// temporary file) are not: that name may be another file's by now.
    fn drop(&mut self) {
        let staged = self.staged.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let (Some(fs), Some(Staged { dir, name, .. })) = (&self.remove_unsaved, staged) {
            let path = dir.join(name);
            if let Err(error) = fs.remove_file(&path) {
                tracing::warn!(%error, path = %path.display(), "could not remove a snapshot never made current");
            }
        }
    }
}

/// Where a finished snapshot file waits until it is made current.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) dir: PathBuf,
    pub(crate) name: String,
    /// The snapshot header to write just before the rename: a received
    /// snapshot keeps its partial header (resumable whole after a crash)
    /// until it is made current.
    pub(crate) final_header: Option<[u8; HEADER]>,
}

/// The crc32c of a snapshot file's data alone, from that of its metadata
/// and data together (`whole`, as its header records), that of the
/// metadata alone, and the data's length: crc32c is linear, so no byte of
/// the data need be read.
pub(crate) fn data_checksum_of(whole: u32, meta_crc: u32, data_len: u64) -> u32 {
    let len = usize::try_from(data_len).unwrap_or(usize::MAX);
    whole ^ crc32c::crc32c_combine(meta_crc, 0, len)
}

/// Writes a new snapshot file: header last, synced on finish. See
/// [`ferraft::LogStore::snapshot_sink`].
pub(crate) struct FileSink {
    file: Box<dyn FsFile>,
    dir: PathBuf,
    name: String,
    meta_len: u32,
    len: u64,
    crc_whole: u32,
    crc_data: u32,
    sync: bool,
    remove_unsaved: Option<Arc<dyn FileSystem>>,
    write_behind: WriteBehind,
}

impl FileSink {
    /// Creates `dir/name` holding the encoded metadata `meta`.
    pub(crate) fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        name: &str,
        meta: &[u8],
        sync: bool,
    ) -> Result<Self, WalError> {
        let path = dir.join(name);
        let file = fs.create(&path).map_err(io_error("creating", &path))?;
        file.write_all_at(meta, HEADER as u64).map_err(io_error("writing", &path))?;
        let meta_len = u32::try_from(meta.len()).map_err(|_| WalError::Io {
            action: "encoding snapshot metadata for",
            path: path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "metadata over 4 GiB"),
        })?;
        let crc_whole = crc32c::crc32c(meta);
        Ok(Self {
            file,
            dir: dir.to_path_buf(),
            name: name.to_string(),
            meta_len,
            len: 0,
            crc_whole,
            crc_data: 0,
            sync,
            remove_unsaved: None,
            write_behind: WriteBehind::from(HEADER as u64 + u64::from(meta_len)),
        })
    }

    /// The snapshot finished here is removed through `fs` if it is dropped
    /// before being made current: for a file under a name of its own.
    pub(crate) fn removed_unless_made_current(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.remove_unsaved = Some(fs);
        self
    }

    fn data_start(&self) -> u64 {
        HEADER as u64 + self.meta_len as u64
    }

    /// Writes the header and syncs; the file's data as a snapshot's.
    pub(crate) fn complete(self) -> Result<FileSnapshot, WalError> {
        let path = self.dir.join(&self.name);
        let header = Header {
            magic: *MAGIC,
            version: VERSION,
            meta_len: self.meta_len,
            data_len: self.len,
            crc: self.crc_whole,
        };
        self.file.write_all_at(&header.encode(), 0).map_err(io_error("writing", &path))?;
        if self.sync {
            self.file.sync_all().map_err(io_error("syncing", &path))?;
        }
        let data_start = self.data_start();
        let mut snapshot = FileSnapshot::new(self.file, data_start, self.len, self.crc_data);
        snapshot.remove_unsaved = self.remove_unsaved;
        snapshot.stage(Staged { dir: self.dir, name: self.name, final_header: None });
        Ok(snapshot)
    }
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let at = self.data_start() + self.len;
        self.file.write_all_at(buf, at)?;
        if self.sync {
            self.write_behind.written(&*self.file, at + buf.len() as u64)?;
        }
        self.crc_whole = crc32c::crc32c_append(self.crc_whole, buf);
        self.crc_data = crc32c::crc32c_append(self.crc_data, buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SnapshotSink for FileSink {
    fn finish(self: Box<Self>) -> Result<SnapshotData, StorageError> {
        let snapshot = self.complete().map_err(|e| e.into_storage("finishing a snapshot"))?;
        Ok(SnapshotData::from(Arc::new(snapshot) as Arc<dyn SnapshotSource>))
    }
}

/// A snapshot being received, in `dir/SNAPSHOT.partial`. See
/// [`ferraft::LogStore::partial_snapshot`].
pub(crate) struct PartialFile {
    fs: Arc<dyn FileSystem>,
    file: Box<dyn FsFile>,
    dir: PathBuf,
    meta_len: u32,
    checksum: u32,
    received: u64,
    /// Bytes known synced (recorded in the header).
    durable: u64,
    sync: bool,
    finished: bool,
    write_behind: WriteBehind,
}

impl PartialFile {
    /// Resumes the partial file if it holds the bytes of `meta` (encoded)
    /// with `checksum`, else starts a new one.
    pub(crate) fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        meta: &[u8],
        checksum: u32,
        sync: bool,
    ) -> Result<Self, WalError> {
        let path = dir.join(PARTIAL_FILE);
        if let Some(resumed) = Self::resume(&fs, dir, &path, meta, checksum, sync)? {
            return Ok(resumed);
        }
        let sink = FileSink::create(&*fs, dir, PARTIAL_FILE, meta, sync)?;
        let mut partial = Self {
            fs,
            file: sink.file,
            dir: dir.to_path_buf(),
            meta_len: sink.meta_len,
            checksum,
            received: 0,
            durable: 0,
            sync,
            finished: false,
            write_behind: WriteBehind::from(HEADER as u64 + u64::from(sink.meta_len)),
        };
        partial.record_durable(0)?;
        Ok(partial)
    }

    fn resume(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        path: &Path,
        meta: &[u8],
        checksum: u32,
        sync: bool,
    ) -> Result<Option<Self>, WalError> {
        let file = match fs.open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("opening", path)(error)),
        };
        let mut head = [0u8; HEADER];
        if file.read_exact_at(&mut head, 0).is_err() {
            return Ok(None);
        }
        let header = Header::decode(&head);
        if header.version != VERSION || header.meta_len as usize != meta.len() {
            return Ok(None);
        }
        let mut held_meta = vec![0u8; meta.len()];
        if file.read_exact_at(&mut held_meta, HEADER as u64).is_err() || held_meta != meta {
            return Ok(None);
        }
        // a completed one (given its snapshot header just before a crash
        // kept it from being renamed into place) records the checksum of
        // metadata and data together, whence that of its data
        let held_checksum = match header.magic {
            magic if magic == *PARTIAL_MAGIC => header.crc,
            magic if magic == *MAGIC => data_checksum_of(header.crc, crc32c::crc32c(meta), header.data_len),
            _ => return Ok(None),
        };
        if held_checksum != checksum {
            return Ok(None);
        }
        let data_start = HEADER as u64 + meta.len() as u64;
        // a durable length past the file's end (a flipped bit, a torn
        // header) names bytes that are not there: start over
        let file_len = file.byte_len().map_err(io_error("reading", path))?;
        if data_start.checked_add(header.data_len).is_none_or(|end| end > file_len) {
            return Ok(None);
        }
        // bytes past the durable mark may be torn by a crash: received again
        file.set_len(data_start + header.data_len).map_err(io_error("truncating", path))?;
        let received = header.data_len;
        let meta_len = header.meta_len;
        let dir = dir.to_path_buf();
        let fs = fs.clone();
        let write_behind = WriteBehind::from(data_start + received);
        let durable = received;
        Ok(Some(Self { fs, file, dir, meta_len, checksum, received, durable, sync, finished: false, write_behind }))
    }

    fn path(&self) -> PathBuf {
        self.dir.join(PARTIAL_FILE)
    }

    fn data_start(&self) -> u64 {
        HEADER as u64 + self.meta_len as u64
    }

    /// Syncs what was received and records it in the header as durable.
    fn record_durable(&mut self, received: u64) -> Result<(), WalError> {
        let path = self.path();
        if self.sync {
            self.file.sync_data().map_err(io_error("syncing", &path))?;
        }
        let header = Header {
            magic: *PARTIAL_MAGIC,
            version: VERSION,
            meta_len: self.meta_len,
            data_len: received,
            crc: self.checksum,
        };
        self.file.write_all_at(&header.encode(), 0).map_err(io_error("writing", &path))?;
        self.durable = received;
        Ok(())
    }

    /// Makes every byte durable and hands them out as the snapshot named by
    /// the sender's checksum, unchecked: the install checks them as it
    /// decodes them (one read of the file, not two) and
    /// [`discard`](PartialSnapshot::discard)s them when they differ, before
    /// they are ever made current. The file keeps its partial header, every
    /// byte recorded durable, until it is made current (which writes the
    /// snapshot header first): a crash before that, during the long decode,
    /// leaves a transfer that resumes complete, not from byte 0.
    fn complete(&mut self) -> Result<FileSnapshot, WalError> {
        self.finished = true;
        self.record_durable(self.received)?;
        let path = self.path();
        let mut meta = vec![0u8; self.meta_len as usize];
        self.file.read_exact_at(&mut meta, HEADER as u64).map_err(io_error("reading", &path))?;
        // crc32c is linear: that of metadata then data follows from both
        let data_len = usize::try_from(self.received).unwrap_or(usize::MAX);
        let whole = crc32c::crc32c_combine(crc32c::crc32c(&meta), self.checksum, data_len);
        let header =
            Header { magic: *MAGIC, version: VERSION, meta_len: self.meta_len, data_len: self.received, crc: whole };
        let file = self.fs.open_read(&path).map_err(io_error("opening", &path))?;
        let snapshot = FileSnapshot::new(file, self.data_start(), self.received, self.checksum);
        let final_header = Some(header.encode());
        snapshot.stage(Staged { dir: self.dir.clone(), name: PARTIAL_FILE.to_string(), final_header });
        Ok(snapshot)
    }
}

/// Removes the partial snapshot in `dir` if no transfer can resume it any
/// more: its snapshot ends at or before `covered` (the state this node
/// already holds: such a snapshot is never installed), or it is not a
/// partial (or completed) snapshot file of this version. Else a
/// transfer cut short, then overtaken by the log or a newer snapshot, keeps
/// its bytes (up to a whole snapshot) on disk forever.
pub(crate) fn remove_stale_partial<N: ferraft::Node>(
    fs: &dyn FileSystem,
    dir: &Path,
    covered: ferraft::LogIndex,
) -> Result<(), WalError> {
    let path = dir.join(PARTIAL_FILE);
    let file = match fs.open_read(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error("opening", &path)(error)),
    };
    let mut head = [0u8; HEADER];
    let header = file.read_exact_at(&mut head, 0).ok().map(|()| Header::decode(&head));
    let readable = OLDEST_READABLE_VERSION..=VERSION;
    let header = header.filter(|h| (h.magic == *PARTIAL_MAGIC || h.magic == *MAGIC) && readable.contains(&h.version));
    let meta = header.and_then(|header| {
        let mut meta = vec![0u8; header.meta_len as usize];
        file.read_exact_at(&mut meta, HEADER as u64).ok()?;
        crate::snapshot_file::decode_meta::<N>(header.version, &meta).ok()
    });
    drop(file);
    if meta.is_some_and(|meta| ferraft::log_id::index_of(meta.last_log_id) > covered) {
        return Ok(());
    }
    tracing::info!(path = %path.display(), "removing a partial snapshot no transfer can resume");
    fs.remove_file(&path).map_err(io_error("removing", &path))
}

impl PartialSnapshot for PartialFile {
    fn received(&self) -> u64 {
        self.received
    }

    fn append(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let path = self.path();
        let at = self.data_start() + self.received;
        let written = self.file.write_all_at(data, at).map_err(io_error("writing", &path));
        written.map_err(|e| e.into_storage("receiving a snapshot"))?;
        if self.sync {
            let end = at + data.len() as u64;
            let written_back = self.write_behind.written(&*self.file, end).map_err(io_error("writing back", &path));
            written_back.map_err(|e| e.into_storage("receiving a snapshot"))?;
        }
        self.received += data.len() as u64;
        if self.received - self.durable >= PARTIAL_CHECKPOINT_BYTES {
            self.record_durable(self.received).map_err(|e| e.into_storage("receiving a snapshot"))?;
        }
        Ok(())
    }

    fn finish(&mut self, checksum: u32) -> Result<Option<SnapshotData>, StorageError> {
        debug_assert_eq!(checksum, self.checksum, "opened for this checksum");
        let snapshot = self.complete().map_err(|e| e.into_storage("finishing a received snapshot"))?;
        Ok(Some(SnapshotData::from(Arc::new(snapshot) as Arc<dyn SnapshotSource>)))
    }

    /// Removes the file: the next transfer of that snapshot starts at byte 0.
    fn discard(self: Box<Self>) -> Result<(), StorageError> {
        let path = self.path();
        let removed = self.fs.remove_file(&path).map_err(io_error("removing", &path));
        removed.map_err(|e| e.into_storage("forgetting a corrupt received snapshot"))
    }
}

impl Drop for PartialFile {
    /// A transfer left unfinished keeps what arrived for the next one: the
    /// bytes are synced and recorded as durable.
    fn drop(&mut self) {
        if !self.finished && self.received > self.durable {
            if let Err(error) = self.record_durable(self.received) {
                tracing::warn!(%error, "could not record a partial snapshot's progress");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_data_checksum_follows_from_the_whole_and_the_metadata_checksums() {
        let (meta, data) = (b"the metadata".as_slice(), vec![7u8; 100_000]);
        let whole = crc32c::crc32c_append(crc32c::crc32c(meta), &data);
        let derived = super::data_checksum_of(whole, crc32c::crc32c(meta), data.len() as u64);
        assert_eq!(derived, crc32c::crc32c(&data));
        assert_eq!(super::data_checksum_of(crc32c::crc32c(meta), crc32c::crc32c(meta), 0), 0);
    }

    #[test]
    fn the_whole_checksum_follows_from_the_metadata_and_data_checksums() {
        // how a received snapshot's header is written without reading its data
        let (meta, data) = (b"the metadata".as_slice(), vec![9u8; 100_000]);
        let whole = crc32c::crc32c_append(crc32c::crc32c(meta), &data);
        assert_eq!(crc32c::crc32c_combine(crc32c::crc32c(meta), crc32c::crc32c(&data), data.len()), whole);
    }
}
