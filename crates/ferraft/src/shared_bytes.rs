//! Snapshot chunk bytes decoded as a slice of the buffer they arrived in.
//!
//! A learner decoding a 1 MiB chunk copied its bytes out of the received
//! frame into a buffer of their own (13% of its thread in a catch-up's
//! transfer, by `perf`), only to write them to the partial snapshot and drop
//! them. A transport that holds a received frame as [`Bytes`] decodes it
//! inside [`decode_sharing`]; a field deserialized by its `deserialize` then
//! takes its bytes as a reference-counted slice of that frame when the
//! format lends them from it (postcard does), and copies them otherwise.
//! Serde offers no way to hand the frame to one field, hence the
//! thread-local: it is set only for the duration of one decode.

use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{Deserializer, Error, SeqAccess, Visitor};

thread_local! {
    /// The frame being decoded on this thread, if a transport said so.
    static SOURCE: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Runs `decode` with `source` as the frame its borrowed byte fields may be
/// slices of (the bytes a deserializer lends must come from `source` to be
/// shared; others are copied as before).
pub fn decode_sharing<R>(source: &Bytes, decode: impl FnOnce() -> R) -> R {
    /// Puts back what was set before, also when `decode` panics.
    struct Restore(Option<Bytes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SOURCE.with(|slot| *slot.borrow_mut() = previous);
        }
    }
    let _restore = Restore(SOURCE.with(|slot| slot.borrow_mut().replace(source.clone())));
    decode()
}

/// `bytes` as a slice of the frame being decoded, if they lie inside it.
fn slice_of_source(bytes: &[u8]) -> Option<Bytes> {
    SOURCE.with(|slot| {
        let slot = slot.borrow();
        let source = slot.as_ref()?;
        let start = source.as_ptr() as usize;
        let at = bytes.as_ptr() as usize;
        let inside = at >= start && at + bytes.len() <= start + source.len();
        inside.then(|| source.slice_ref(bytes))
    })
}

/// Deserializes [`Bytes`] as `bytes`' own impl does, except that bytes lent
/// from the frame being decoded (see [`decode_sharing`]) are not copied.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
    deserializer.deserialize_bytes(SharedBytesVisitor)
}

struct SharedBytesVisitor;

impl<'de> Visitor<'de> for SharedBytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_borrowed_bytes<E: Error>(self, v: &'de [u8]) -> Result<Bytes, E> {
        Ok(slice_of_source(v).unwrap_or_else(|| Bytes::copy_from_slice(v)))
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        // a format that writes bytes as a list of numbers (JSON); the hint
        // comes from the peer, so it only caps the first allocation
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(Bytes::from(bytes))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Chunk {
        offset: u64,
        #[serde(deserialize_with = "deserialize")]
        data: Bytes,
    }

    fn frame(data_len: usize) -> (Chunk, Bytes) {
        let chunk = Chunk { offset: 7, data: Bytes::from((0..data_len).map(|i| i as u8).collect::<Vec<_>>()) };
        let frame = Bytes::from(postcard::to_allocvec(&chunk).unwrap());
        (chunk, frame)
    }

    fn lies_in(data: &Bytes, frame: &Bytes) -> bool {
        let start = frame.as_ptr() as usize;
        let at = data.as_ptr() as usize;
        at >= start && at + data.len() <= start + frame.len()
    }

    #[test]
    fn bytes_decoded_from_the_shared_frame_are_a_slice_of_it() {
        let (chunk, frame) = frame(100_000);
        let decoded: Chunk = decode_sharing(&frame, || postcard::from_bytes(&frame)).unwrap();
        assert_eq!(decoded, chunk);
        assert!(lies_in(&decoded.data, &frame), "not copied");
    }

    #[test]
    fn bytes_decoded_without_a_shared_frame_are_copied() {
        let (chunk, frame) = frame(1000);
        let decoded: Chunk = postcard::from_bytes(&frame).unwrap();
        assert_eq!(decoded, chunk);
        assert!(!lies_in(&decoded.data, &frame));
    }

    #[test]
    fn bytes_lent_from_another_buffer_than_the_shared_frame_are_copied() {
        let (chunk, frame) = frame(1000);
        let other = Bytes::from(frame.to_vec());
        let decoded: Chunk = decode_sharing(&frame, || postcard::from_bytes(&other)).unwrap();
        assert_eq!(decoded, chunk);
        assert!(!lies_in(&decoded.data, &frame) && !lies_in(&decoded.data, &other));
    }

    #[test]
    fn the_shared_frame_is_forgotten_after_the_decode_even_when_it_panics() {
        let (_, frame) = frame(1000);
        let _ = std::panic::catch_unwind(|| decode_sharing(&frame, || panic!("decoder failed")));
        let decoded: Chunk = postcard::from_bytes(&frame).unwrap();
        assert!(!lies_in(&decoded.data, &frame));
        assert!(SOURCE.with(|slot| slot.borrow().is_none()));
    }

    #[test]
    fn bytes_written_as_a_list_of_numbers_still_decode() {
        let chunk = Chunk { offset: 1, data: Bytes::from_static(b"abc") };
        let json = serde_json::to_string(&chunk).unwrap();
        assert_eq!(serde_json::from_str::<Chunk>(&json).unwrap(), chunk);
    }
}
