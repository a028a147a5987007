//! The frame codec: a little-endian `u32` payload length, then the payload in
//! `postcard` (compact varints, no schema on the wire).
//!
//! Frames are appended to a caller-owned `BytesMut` so a writer can pack a whole
//! batch into one buffer and one socket write. Decoding validates everything
//! from the peer and returns errors, never panics: the length is bounded before
//! any allocation, and the payload must be consumed exactly.

use bytes::{Buf, BufMut, BytesMut};
use postcard::ser_flavors::Flavor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{FrameError, NetError};

/// Bytes of the length prefix in front of every payload.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// How much a reader asks the socket for at least, so small frames arrive in
/// few system calls.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Appends `value` as one frame to `buf`. On error `buf` is left as it was, so
/// one bad message cannot corrupt the rest of a batch.
pub fn encode_frame<T: Serialize + ?Sized>(
    buf: &mut BytesMut,
    value: &T,
    max_frame_bytes: usize,
) -> Result<(), FrameError> {
    encode_frame_lending(buf, value, max_frame_bytes, &[]).map(|_| ())
}

/// Appends `value` as one frame to `buf` as [`encode_frame`] does, except for
/// `lend`, a byte field of `value` (the very slice, not equal bytes): those
/// bytes are left out of `buf`, and the answer says where in `buf` they
/// belong, for the writer to send them from their own buffer (a vectored
/// write) instead of copying them in. `None`: `value` did not serialize
/// `lend` as one slice, and the frame in `buf` is whole.
pub fn encode_frame_lending<T: Serialize + ?Sized>(
    buf: &mut BytesMut,
    value: &T,
    max_frame_bytes: usize,
    lend: &[u8],
) -> Result<Option<usize>, FrameError> {
    let start = buf.len();
    buf.put_u32_le(0);
    let flavor = AppendTo { buf, lend, lent_at: None };
    let lent_at = match postcard::serialize_with_flavor(value, flavor) {
        Ok(lent_at) => lent_at,
        Err(error) => {
            buf.truncate(start);
            return Err(FrameError::Encode(error));
        }
    };
    let lent_bytes = if lent_at.is_some() { lend.len() } else { 0 };
    let len = buf.len() - start - LENGTH_PREFIX_BYTES + lent_bytes;
    if len > max_frame_bytes {
        buf.truncate(start);
        return Err(FrameError::TooLarge { len, max: max_frame_bytes });
    }
    // `len <= max_frame_bytes`, which config validation keeps within u32.
    buf[start..start + LENGTH_PREFIX_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(lent_at)
}

/// The size `value` takes as a frame, prefix included, without allocating:
/// lets a queue bound its memory by bytes before the message is encoded.
pub fn frame_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, FrameError> {
    let payload = postcard::serialize_with_flavor(value, Count(0)).map_err(FrameError::Encode)?;
    Ok(LENGTH_PREFIX_BYTES + payload)
}

/// Takes one frame off the front of `buf` and decodes it. `Ok(None)` means the
/// frame is not complete yet: read more and call again. A frame of at least
/// [`SHARE_MIN_BYTES`] is split off as [`bytes::Bytes`] and decoded sharing it
/// ([`ferraft::shared_bytes`]): a snapshot chunk's data is then a slice of
/// the frame, not a copy.
pub fn decode_frame<T: DeserializeOwned>(buf: &mut BytesMut, max_frame_bytes: usize) -> Result<Option<T>, FrameError> {
    let Some(len) = payload_len(buf, max_frame_bytes)? else { return Ok(None) };
    if buf.len() < LENGTH_PREFIX_BYTES + len {
        return Ok(None);
    }
    if len >= SHARE_MIN_BYTES {
        let frame = buf.split_to(LENGTH_PREFIX_BYTES + len).freeze();
        let payload = &frame[LENGTH_PREFIX_BYTES..];
        return ferraft::shared_bytes::decode_sharing(&frame, || decode_payload(payload)).map(Some);
    }
    let result = decode_payload(&buf[LENGTH_PREFIX_BYTES..LENGTH_PREFIX_BYTES + len]);
    buf.advance(LENGTH_PREFIX_BYTES + len);
    result.map(Some)
}

/// Frames from this size on are decoded sharing their buffer: below it a
/// copy costs less than the buffer a split leaves behind to grow again.
pub const SHARE_MIN_BYTES: usize = 64 * 1024;

/// Decodes one payload, which must be consumed exactly.
fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes::<T>(payload) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(FrameError::TrailingBytes(rest.len())),
        Err(error) => Err(FrameError::Decode(error)),
    }
}

/// The announced payload length of the frame at the front of `buf`, checked
/// against the bound; `None` while the prefix itself is incomplete.
fn payload_len(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX_BYTES) else { return Ok(None) };
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len > max_frame_bytes {
        return Err(FrameError::TooLarge { len, max: max_frame_bytes });
    }
    Ok(Some(len))
}

/// Reads until one whole frame is buffered and decodes it. Bytes past that
/// frame stay in `buf` for the next call. The buffer never grows beyond one
/// bounded frame plus one read chunk.
pub(crate) async fn read_frame<T, R>(reader: &mut R, buf: &mut BytesMut, max_frame_bytes: usize) -> Result<T, NetError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    loop {
        if let Some(value) = decode_frame(buf, max_frame_bytes)? {
            return Ok(value);
        }
        let missing = match payload_len(buf, max_frame_bytes)? {
            Some(len) => LENGTH_PREFIX_BYTES + len - buf.len(),
            None => LENGTH_PREFIX_BYTES,
        };
        buf.reserve(missing.max(READ_CHUNK_BYTES));
        if reader.read_buf(buf).await? == 0 {
            return Err(NetError::Closed);
        }
    }
}

/// A postcard output that appends to a `BytesMut` with slice copies, all but
/// the slice `lend` (matched by address and length), whose place it notes.
struct AppendTo<'a, 'l> {
    buf: &'a mut BytesMut,
    lend: &'l [u8],
    lent_at: Option<usize>,
}

impl Flavor for AppendTo<'_, '_> {
    type Output = Option<usize>;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let is_lent = !data.is_empty() && data.as_ptr() == self.lend.as_ptr() && data.len() == self.lend.len();
        if is_lent && self.lent_at.is_none() {
            self.lent_at = Some(self.buf.len());
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.buf.put_u8(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Option<usize>> {
        Ok(self.lent_at)
    }
}

/// A postcard output that only counts bytes.
struct Count(usize);

impl Flavor for Count {
    type Output = usize;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0 += data.len();
        Ok(())
    }

    fn try_push(&mut self, _data: u8) -> postcard::Result<()> {
        self.0 += 1;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests;
