//! A snapshot's bytes as a handle, not a buffer: in memory for small states
//! and stores that keep everything in memory, or a file the store wrote.
//! Readers take bounded pieces at an offset, so neither the sender of a
//! snapshot nor anything that reads one needs the whole state in memory.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;

/// Where a snapshot's bytes live, read by offset from any thread.
pub trait SnapshotSource: Send + Sync + std::fmt::Debug {
    /// The number of bytes.
    fn len(&self) -> u64;

    /// Whether there are no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The crc32c of every byte: it tells two encodings of the same state
    /// apart, so a transfer resumes only onto the very bytes it started with.
    fn checksum(&self) -> u32;

    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Lets the store that made the source recognise it (for example to make
    /// the file it wrote current by a rename instead of a copy).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A snapshot's bytes; cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct SnapshotData(Inner);

#[derive(Clone, Debug)]
enum Inner {
    /// Held in memory, with their checksum.
    Memory(Bytes, u32),
    /// Read from elsewhere (a file), piece by piece.
    Source(Arc<dyn SnapshotSource>),
}

impl Default for SnapshotData {
    fn default() -> Self {
        Self::from(Bytes::new())
    }
}

/// Bytes in memory; their checksum is computed once, here.
impl From<Bytes> for SnapshotData {
    fn from(bytes: Bytes) -> Self {
        let checksum = crc32c::crc32c(&bytes);
        Self(Inner::Memory(bytes, checksum))
    }
}

impl From<Vec<u8>> for SnapshotData {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl From<&'static [u8]> for SnapshotData {
    fn from(bytes: &'static [u8]) -> Self {
        Self::from(Bytes::from_static(bytes))
    }
}

impl From<Arc<dyn SnapshotSource>> for SnapshotData {
    fn from(source: Arc<dyn SnapshotSource>) -> Self {
        Self(Inner::Source(source))
    }
}

impl SnapshotData {
    /// The number of bytes.
    pub fn len(&self) -> u64 {
        match &self.0 {
            Inner::Memory(bytes, _) => bytes.len() as u64,
            Inner::Source(source) => source.len(),
        }
    }

    /// The crc32c of every byte; see [`SnapshotSource::checksum`].
    pub fn checksum(&self) -> u32 {
        match &self.0 {
            Inner::Memory(_, checksum) => *checksum,
            Inner::Source(source) => source.checksum(),
        }
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The source behind the bytes, when they are not in memory.
    pub fn source(&self) -> Option<&Arc<dyn SnapshotSource>> {
        match &self.0 {
            Inner::Memory(..) => None,
            Inner::Source(source) => Some(source),
        }
    }

    /// The bytes at `offset`, at most `max_bytes` of them (fewer only at the
    /// end; none past it): what a chunk of a transfer carries. In memory
    /// this is a slice of the shared buffer, no copy.
    pub fn read_chunk(&self, offset: u64, max_bytes: usize) -> io::Result<Bytes> {
        let len = self.len();
        let start = offset.min(len);
        let end = start.saturating_add(max_bytes as u64).min(len);
        match &self.0 {
            Inner::Memory(bytes, _) => Ok(bytes.slice(start as usize..end as usize)),
            Inner::Source(source) => {
                let mut buf = vec![0u8; (end - start) as usize];
                let mut filled = 0;
                while filled < buf.len() {
                    let n = source.read_at(start + filled as u64, &mut buf[filled..])?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "snapshot source ended early"));
                    }
                    filled += n;
                }
                Ok(Bytes::from(buf))
            }
        }
    }

    /// A reader over every byte from the start, holding one bounded piece at
    /// a time: how a state machine decodes a snapshot of any size.
    pub fn reader(&self) -> SnapshotReader {
        SnapshotReader { data: self.clone(), offset: 0 }
    }

    /// A [`reader`](Self::reader) that also checks the bytes against
    /// [`checksum`](Self::checksum): reading to the end of bytes that do not
    /// match fails with [`io::ErrorKind::InvalidData`]. A store may hand out
    /// a snapshot whose checksum it recorded when writing it without reading
    /// it back; its first full read (a node loading it at startup) checks it.
    pub fn checked_reader(&self) -> CheckedReader {
        CheckedReader { reader: self.reader(), crc: 0, expected: self.checksum(), checked: false }
    }

    /// Every byte in one buffer. Costs the snapshot's size in memory: for
    /// tests, small states, and callers that need the bytes whole.
    pub fn to_bytes(&self) -> io::Result<Bytes> {
        match &self.0 {
            Inner::Memory(bytes, _) => Ok(bytes.clone()),
            Inner::Source(_) => {
                let mut all = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
                self.reader().read_to_end(&mut all)?;
                Ok(Bytes::from(all))
            }
        }
    }
}

/// Two snapshots' bytes are equal when they hold the same bytes (read
/// through for sources; an unreadable source equals nothing).
impl PartialEq for SnapshotData {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Inner::Memory(a, _), Inner::Memory(b, _)) => a == b,
            _ if self.len() != other.len() || self.checksum() != other.checksum() => false,
            _ => matches!((self.to_bytes(), other.to_bytes()), (Ok(a), Ok(b)) if a == b),
        }
    }
}

impl Eq for SnapshotData {}

/// Reads a [`SnapshotData`] from its start; see [`SnapshotData::reader`].
#[derive(Debug)]
pub struct SnapshotReader {
    data: SnapshotData,
    offset: u64,
}

impl Read for SnapshotReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &self.data.0 {
            Inner::Memory(bytes, _) => {
                let start = (self.offset as usize).min(bytes.len());
                let n = buf.len().min(bytes.len() - start);
                buf[..n].copy_from_slice(&bytes[start..start + n]);
                n
            }
            Inner::Source(source) => {
                if self.offset >= source.len() {
                    0
                } else {
                    source.read_at(self.offset, buf)?
                }
            }
        };
        self.offset += n as u64;
        Ok(n)
    }
}

/// Reads a [`SnapshotData`] and checks it at the end; see
/// [`SnapshotData::checked_reader`].
#[derive(Debug)]
pub struct CheckedReader {
    reader: SnapshotReader,
    crc: u32,
    expected: u32,
    checked: bool,
}

impl CheckedReader {
    /// Reads whatever the decoder left unread and tells whether every byte
    /// had the expected checksum: a decoder may stop before the end, or
    /// fail midway on bytes that are not what was sent.
    pub fn rest_matches(mut self) -> io::Result<bool> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.reader.read(&mut buf)?;
            if n == 0 {
                return Ok(self.crc == self.expected);
            }
            self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        }
    }
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        if n == 0 && !buf.is_empty() && !self.checked {
            self.checked = true;
            if self.crc != self.expected {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "snapshot bytes do not match their checksum"));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_past_the_end_is_empty_and_one_at_the_end_is_short() {
        let data = SnapshotData::from(Bytes::from_static(b"abcdef"));
        assert_eq!(data.read_chunk(4, 10).unwrap(), Bytes::from_static(b"ef"));
        assert!(data.read_chunk(9, 10).unwrap().is_empty());
        assert_eq!(data.read_chunk(u64::MAX, usize::MAX).unwrap(), Bytes::new());
    }

    #[test]
    fn the_reader_yields_every_byte_in_order() {
        let data = SnapshotData::from((0..=255u8).cycle().take(10_000).collect::<Vec<_>>());
        let mut back = Vec::new();
        data.reader().read_to_end(&mut back).unwrap();
        assert_eq!(back, data.to_bytes().unwrap());
    }
}
