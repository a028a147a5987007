//! Segment files: naming, the fixed header, and what the store remembers of each.
//!
//! A segment is `<first index, 20 digits>.wal`: a 24-byte header, then records
//! holding consecutive entries starting at the first index. Naming segments by
//! their first index lets recovery order them and spot a missing one without
//! reading them.

use ferraft::LogIndex;

use crate::error::Corruption;

/// Bytes of the segment header: magic, version, first index, checksum.
pub(crate) const SEGMENT_HEADER_BYTES: u64 = 24;

/// The on-disk format version this build writes and reads. Version 2: a
/// membership entry carries how a joint config is left (`JointExit`).
/// Version 3: and the incarnation of each member. Version 4: the first
/// record of each write since a sync is marked (see `record.rs`), so
/// recovery can tell an unsynced write's lost pages from corruption.
pub(crate) const SEGMENT_VERSION: u32 = 4;

/// The oldest version read: version 3 records are version 4's, unmarked.
pub(crate) const OLDEST_READABLE_SEGMENT_VERSION: u32 = 3;

const MAGIC: &[u8; 8] = b"FRRFTWAL";
const SUFFIX: &str = ".wal";

/// The file name of the segment whose first entry is `first_index`.
pub(crate) fn file_name(first_index: LogIndex) -> String {
    format!("{first_index:020}{SUFFIX}")
}

/// The first index encoded in a segment file name, if `name` is one.
pub(crate) fn parse_file_name(name: &str) -> Option<LogIndex> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header of a new segment.
pub(crate) fn encode_header(first_index: LogIndex) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&first_index.0.to_le_bytes());
    let crc = crc32c::crc32c(&header[..20]);
    header[20..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// A checked segment header: the version it was written with and its first index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// The format version.
    pub version: u32,
    /// The index of the first record.
    pub first_index: LogIndex,
}

/// Checks and decodes a segment header from the start of `data`.
pub(crate) fn decode_header(data: &[u8]) -> Result<SegmentHeader, Corruption> {
    let header = data.get(..SEGMENT_HEADER_BYTES as usize).ok_or(Corruption::Truncated)?;
    if &header[..8] != MAGIC {
        return Err(Corruption::BadMagic);
    }
    let crc = u32::from_le_bytes(header[20..].try_into().expect("slice of 4"));
    if crc32c::crc32c(&header[..20]) != crc {
        return Err(Corruption::HeaderChecksum);
    }
    Ok(SegmentHeader {
        version: u32::from_le_bytes(header[8..12].try_into().expect("slice of 4")),
        first_index: LogIndex(u64::from_le_bytes(header[12..20].try_into().expect("slice of 8"))),
    })
}

/// What the store knows about one segment: where each record starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    /// The index of the first record (also the file name).
    pub first_index: LogIndex,
    /// The file length once every queued write has landed.
    pub len_bytes: u64,
    /// The byte offset of each record; entry `first_index + i` is at `offsets[i]`.
    pub offsets: Vec<u64>,
}

impl Segment {
    /// A segment holding only its header.
    pub fn new(first_index: LogIndex) -> Self {
        Self { first_index, len_bytes: SEGMENT_HEADER_BYTES, offsets: Vec::new() }
    }

    /// The index the next record appended here gets.
    pub fn next_index(&self) -> LogIndex {
        // Saturating: a hand-made file name near u64::MAX must not panic.
        LogIndex(self.first_index.0.saturating_add(self.offsets.len() as u64))
    }

    /// Whether the segment holds no record.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The byte range of the record for `index`, if this segment holds it.
    pub fn record_span(&self, index: LogIndex) -> Option<(u64, u64)> {
        let position = usize::try_from(index.checked_sub(self.first_index)?).ok()?;
        let start = *self.offsets.get(position)?;
        let end = self.offsets.get(position + 1).copied().unwrap_or(self.len_bytes);
        Some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_sort_by_index() {
        assert_eq!(parse_file_name(&file_name(LogIndex(42))), Some(LogIndex(42)));
        assert!(file_name(LogIndex(9)) < file_name(LogIndex(10)));
        assert_eq!(parse_file_name("42.wal"), None);
        assert_eq!(parse_file_name("0000000000000000004x.wal"), None);
        assert_eq!(parse_file_name(&format!("{}.tmp", file_name(LogIndex(1)))), None);
    }

    #[test]
    fn header_round_trips_and_detects_flips() {
        let header = encode_header(LogIndex(7));
        assert_eq!(
            decode_header(&header).unwrap(),
            SegmentHeader { version: SEGMENT_VERSION, first_index: LogIndex(7) }
        );
        for bit in 0..header.len() * 8 {
            let mut damaged = header;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_header(&damaged).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn record_span_ends_at_the_next_record_or_the_file_end() {
        let segment = Segment { first_index: LogIndex(10), len_bytes: 100, offsets: vec![24, 50, 70] };
        assert_eq!(segment.record_span(LogIndex(10)), Some((24, 50)));
        assert_eq!(segment.record_span(LogIndex(12)), Some((70, 100)));
        assert_eq!(segment.record_span(LogIndex(9)), None);
        assert_eq!(segment.record_span(LogIndex(13)), None);
        assert_eq!(segment.next_index(), LogIndex(13));
    }
}
