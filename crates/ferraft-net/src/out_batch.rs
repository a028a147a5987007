//! The frames of one socket write, with snapshot chunks' bytes sent from
//! their own buffers.
//!
//! Copying each 1 MiB chunk into the write buffer took 14% of a leader's
//! thread (by `perf`) while it streamed a snapshot, in front of its clients'
//! writes. A chunk's bytes are already a [`Bytes`]: they are left out of the
//! encoded frame ([`encode_frame_lending`]) and written beside it with one
//! vectored write. The bytes on the wire are the same.

use std::io::{self, IoSlice};

use bytes::{Bytes, BytesMut};
use ferraft::{AppData, Message, MessageBody, Node};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::FrameError;
use crate::frame::encode_frame_lending;

/// A chunk's bytes are lent from this size on: below it the copy is cheaper
/// than another slice in the write.
pub(crate) const LEND_MIN_BYTES: usize = 16 * 1024;

/// A write buffer that grew past this (a large snapshot chunk) is released
/// after use rather than held for the life of the connection.
const KEEP_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Encoded frames, and the bytes lent to them with where they go in `out`.
#[derive(Default)]
pub(crate) struct OutBatch {
    out: BytesMut,
    lent: Vec<(usize, Bytes)>,
}

impl OutBatch {
    /// Appends `message` as one frame; on error the batch is left as it was.
    pub(crate) fn push<C: AppData, N: Node>(
        &mut self,
        message: &Message<C, N>,
        max_frame_bytes: usize,
    ) -> Result<(), FrameError> {
        let lend = match &message.body {
            MessageBody::Snapshot(chunk) if chunk.data.len() >= LEND_MIN_BYTES => chunk.data.clone(),
            _ => Bytes::new(),
        };
        if let Some(at) = encode_frame_lending(&mut self.out, message, max_frame_bytes, &lend)? {
            self.lent.push((at, lend));
        }
        Ok(())
    }

    /// Writes every frame in order.
    pub(crate) async fn write_to<W: AsyncWrite + Unpin>(&self, writer: &mut W) -> io::Result<()> {
        let mut slices = Vec::with_capacity(2 * self.lent.len() + 1);
        let mut from = 0;
        for (at, bytes) in &self.lent {
            slices.push(IoSlice::new(&self.out[from..*at]));
            slices.push(IoSlice::new(bytes));
            from = *at;
        }
        slices.push(IoSlice::new(&self.out[from..]));
        write_all_vectored(writer, &mut slices).await
    }

    /// Empties the batch for the next write, keeping a buffer of ordinary size.
    pub(crate) fn clear(&mut self) {
        self.out.clear();
        self.lent.clear();
        if self.out.capacity() > KEEP_BUFFER_BYTES {
            self.out = BytesMut::new();
        }
    }
}

/// Writes all of `slices`, however few bytes each write takes.
async fn write_all_vectored<W: AsyncWrite + Unpin>(writer: &mut W, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let written = writer.write_vectored(slices).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, written);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
