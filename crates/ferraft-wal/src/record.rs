//! Record framing: `[payload length: u32 LE][crc32c: u32 LE][payload]`.
//!
//! The checksum covers the length bytes and the payload, so a flipped length
//! bit is caught like a flipped payload bit. Recovery tells a torn write from
//! corruption by what follows a bad record (see [`find_write_start_after`]),
//! which is why the frame needs no separate header checksum.
//!
//! The top bit of the length field ([`WRITE_START`]) marks the first record
//! the writer wrote to its segment since the segment's last sync: the start
//! of a write that may be lost in a power cut, page by page in any order.

use postcard::ser_flavors::Flavor;
use serde::Serialize;

use crate::error::WalError;

/// Bytes of framing before each payload.
pub(crate) const RECORD_HEADER_BYTES: usize = 8;

/// The largest payload framed; guards recovery against absurd lengths and
/// keeps offsets comfortably inside `u32`.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 30;

/// The length field's flag for "first record written since the segment's
/// last sync" (segment format version 4). Lengths never reach it.
const WRITE_START: u32 = 1 << 31;

/// Appends one framed record holding `value` to `buf`.
///
/// Encodes straight into `buf` (no intermediate allocation). On error `buf` is
/// restored to its previous length.
pub(crate) fn encode_record<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<(), WalError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    if let Err(error) = postcard::serialize_with_flavor(value, ExtendVec(buf)) {
        buf.truncate(start);
        return Err(WalError::Encode(error));
    }
    let payload_len = buf.len() - start - RECORD_HEADER_BYTES;
    if payload_len > MAX_RECORD_BYTES {
        buf.truncate(start);
        return Err(WalError::RecordTooLarge { bytes: payload_len, max: MAX_RECORD_BYTES });
    }
    write_header(&mut buf[start..], payload_len as u32);
    Ok(())
}

/// Marks the record at the start of `records` (framed by [`encode_record`])
/// as the first written since its segment's last sync, re-checksummed.
pub(crate) fn mark_write_start(records: &mut [u8]) {
    let len = u32::from_le_bytes(records[..4].try_into().expect("slice of 4"));
    write_header(records, len | WRITE_START);
}

/// Writes the header of the record at the start of `record`, whose payload
/// follows it, with the length field `len_field`.
fn write_header(record: &mut [u8], len_field: u32) {
    let len_bytes = len_field.to_le_bytes();
    let payload_len = (len_field & !WRITE_START) as usize;
    let crc = checksum(len_bytes, &record[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + payload_len]);
    record[..4].copy_from_slice(&len_bytes);
    record[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Why the bytes at an offset are not a complete, intact record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameFault {
    /// The data ends inside the header or the payload.
    Short,
    /// The length is zero or above [`MAX_RECORD_BYTES`].
    BadLength,
    /// The checksum does not match.
    BadChecksum,
}

/// The payload of the record at `offset` in `data`, checked.
pub(crate) fn read_frame(data: &[u8], offset: usize) -> Result<&[u8], FrameFault> {
    frame(data, offset, true).map(|(payload, _)| payload)
}

/// [`read_frame`] without the checksum: the WAL's planted bug
/// [`PlantedBug::TrustRecordsWithoutChecksum`](crate::PlantedBug), for the
/// simulator's teeth tests.
pub(crate) fn read_frame_unchecked(data: &[u8], offset: usize) -> Result<&[u8], FrameFault> {
    frame(data, offset, false).map(|(payload, _)| payload)
}

/// The payload of the record at `offset`, and whether it starts a write.
fn frame(data: &[u8], offset: usize, check: bool) -> Result<(&[u8], bool), FrameFault> {
    let header = data.get(offset..offset + RECORD_HEADER_BYTES).ok_or(FrameFault::Short)?;
    let len_bytes: [u8; 4] = header[..4].try_into().expect("slice of 4");
    let crc = u32::from_le_bytes(header[4..].try_into().expect("slice of 4"));
    let len_field = u32::from_le_bytes(len_bytes);
    let len = (len_field & !WRITE_START) as usize;
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(FrameFault::BadLength);
    }
    let start = offset + RECORD_HEADER_BYTES;
    let payload = data.get(start..start + len).ok_or(FrameFault::Short)?;
    if check && checksum(len_bytes, payload) != crc {
        return Err(FrameFault::BadChecksum);
    }
    Ok((payload, len_field & WRITE_START != 0))
}

/// The first offset after `offset` where an intact record starts, if any:
/// for segments written before records marked their writes (version 3),
/// where any intact record after a bad one means the bad one was synced.
///
/// Random bytes pass the 32-bit checksum about once in four billion tries,
/// and most candidate lengths point past the end, so the scan is cheap and
/// false alarms are negligible (and a false alarm only makes the node refuse
/// to start, never lose data).
pub(crate) fn find_frame_after(data: &[u8], offset: usize) -> Option<usize> {
    (offset + 1..data.len().saturating_sub(RECORD_HEADER_BYTES)).find(|candidate| read_frame(data, *candidate).is_ok())
}

/// The first offset after `offset` where an intact record marked as the
/// start of a write begins, if any.
///
/// After a crash only what was written since the last sync can be damaged,
/// but all of it, in any order: a page cache writes dirty pages back as it
/// likes, so a later record of the unsynced write may be on disk while an
/// earlier one is not. A bad record followed by the intact start of a later
/// write was synced (the writer syncs before it starts another write to the
/// segment): that is corruption. A bad record followed by nothing, or only
/// by intact records of its own write, is a torn tail. (The scan's cost and
/// false alarms are those of [`find_frame_after`].)
pub(crate) fn find_write_start_after(data: &[u8], offset: usize) -> Option<usize> {
    (offset + 1..data.len().saturating_sub(RECORD_HEADER_BYTES))
        .find(|candidate| frame(data, *candidate, true).is_ok_and(|(_, starts_write)| starts_write))
}

/// The record checksum: crc32c over the length bytes, then the payload.
fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload)
}

/// A postcard output that appends to a borrowed `Vec`, so one write buffer is
/// reused across entries and batches.
struct ExtendVec<'a>(&'a mut Vec<u8>);

impl Flavor for ExtendVec<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(values: &[&str]) -> Vec<u8> {
        let mut buf = Vec::new();
        for value in values {
            encode_record(value, &mut buf).unwrap();
        }
        buf
    }

    #[test]
    fn encoded_record_reads_back() {
        let buf = framed(&["hello"]);
        let payload = read_frame(&buf, 0).unwrap();
        assert_eq!(postcard::from_bytes::<&str>(payload).unwrap(), "hello");
    }

    #[test]
    fn every_cut_of_a_record_is_short() {
        let buf = framed(&["hello world"]);
        for len in 0..buf.len() {
            assert_eq!(read_frame(&buf[..len], 0), Err(FrameFault::Short), "cut at {len}");
        }
    }

    #[test]
    fn every_bit_flip_is_caught() {
        let buf = framed(&["hello world"]);
        for bit in 0..buf.len() * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(read_frame(&damaged, 0).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn zeros_are_not_a_record() {
        assert_eq!(read_frame(&[0; 64], 0), Err(FrameFault::BadLength));
        assert_eq!(find_frame_after(&[0; 64], 0), None);
    }

    #[test]
    fn a_marked_record_reads_back_and_is_found_as_a_write_start() {
        let mut buf = framed(&["first", "second", "third"]);
        let second = RECORD_HEADER_BYTES + read_frame(&buf, 0).unwrap().len();
        let third = second + RECORD_HEADER_BYTES + read_frame(&buf, second).unwrap().len();
        assert_eq!(find_write_start_after(&buf, 0), None, "unmarked records start no write");
        mark_write_start(&mut buf[third..]);
        assert_eq!(postcard::from_bytes::<&str>(read_frame(&buf, third).unwrap()).unwrap(), "third");
        buf[RECORD_HEADER_BYTES] ^= 0xff;
        assert_eq!(find_write_start_after(&buf, 0), Some(third));
        assert_eq!(find_frame_after(&buf, 0), Some(second));
    }

    #[test]
    fn every_bit_flip_of_a_marked_record_is_caught() {
        let mut buf = framed(&["hello world"]);
        mark_write_start(&mut buf);
        for bit in 0..buf.len() * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(frame(&damaged, 0, true).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn scan_finds_the_record_after_a_damaged_one() {
        let mut buf = framed(&["first", "second"]);
        let second = RECORD_HEADER_BYTES + read_frame(&buf, 0).unwrap().len();
        buf[RECORD_HEADER_BYTES] ^= 0xff;
        assert_eq!(find_frame_after(&buf, 0), Some(second));
    }
}
