use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use ferraft::message::{AppendEntries, SnapshotChunk};
use ferraft::{
    BasicNode, Envelope, Membership, Message, MessageBody, NodeId, SnapshotMeta, StoredMembership, Term, Vote,
};

use super::*;
use crate::frame::encode_frame;

type TestMessage = Message<Bytes, BasicNode>;

const MAX: usize = 16 << 20;

fn envelope() -> Envelope {
    Envelope { cluster_id: 7, from: NodeId(1), to: NodeId(2), from_incarnation: 0, to_incarnation: 0 }
}

fn heartbeat() -> TestMessage {
    let vote = Vote::new(Term(1), NodeId(1));
    let append = AppendEntries { vote, prev_log_id: None, entries: vec![], committed: None, seq: 1, leader_node: None };
    Message { envelope: envelope(), body: MessageBody::Append(append) }
}

fn chunk(offset: u64, len: usize) -> TestMessage {
    let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
    let membership = StoredMembership { log_id: None, membership: Membership::new_uniform(nodes).unwrap() };
    let data = Bytes::from((0..len).map(|i| (i * 7 + offset as usize) as u8).collect::<Vec<_>>());
    let chunk = SnapshotChunk {
        vote: Vote::new(Term(1), NodeId(1)),
        meta: SnapshotMeta { last_log_id: None, membership, changes: Default::default() },
        offset,
        data,
        done: false,
        checksum: 9,
        seq: offset,
        leader_node: Some(BasicNode::new("127.0.0.1:1")),
    };
    Message { envelope: envelope(), body: MessageBody::Snapshot(chunk) }
}

/// A socket that takes at most `per_write` bytes a call, across slices.
struct Trickle {
    written: Vec<u8>,
    per_write: usize,
}

impl AsyncWrite for Trickle {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.per_write);
        self.written.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut left = self.per_write;
        for slice in slices {
            let n = slice.len().min(left);
            self.written.extend_from_slice(&slice[..n]);
            left -= n;
        }
        Poll::Ready(Ok(self.per_write - left))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_batch_puts_the_same_bytes_on_the_wire_as_plain_frames_however_the_socket_takes_them() {
    let messages = [heartbeat(), chunk(0, 200_000), chunk(200_000, 100), heartbeat(), chunk(200_100, LEND_MIN_BYTES)];
    let mut expected = BytesMut::new();
    let mut batch = OutBatch::default();
    for message in &messages {
        encode_frame(&mut expected, message, MAX).unwrap();
        batch.push(message, MAX).unwrap();
    }
    for per_write in [1, 1000, 65_536, usize::MAX] {
        let mut socket = Trickle { written: Vec::new(), per_write };
        batch.write_to(&mut socket).await.unwrap();
        assert_eq!(socket.written, expected, "{per_write} bytes a write");
    }
}

#[test]
fn a_large_chunk_is_sent_from_its_own_buffer_not_copied_into_the_batch() {
    let mut batch = OutBatch::default();
    let message = chunk(0, 1 << 20);
    batch.push(&message, MAX).unwrap();
    let MessageBody::Snapshot(sent) = &message.body else { unreachable!() };
    assert!(batch.out.len() < 1024, "{} bytes copied", batch.out.len());
    assert_eq!(batch.lent.len(), 1);
    assert_eq!(batch.lent[0].1.as_ptr(), sent.data.as_ptr());
}

#[test]
fn a_small_chunk_is_copied_into_the_batch() {
    let mut batch = OutBatch::default();
    batch.push(&chunk(0, LEND_MIN_BYTES - 1), MAX).unwrap();
    assert!(batch.lent.is_empty());
    assert!(batch.out.len() > LEND_MIN_BYTES);
}

#[test]
fn a_chunk_above_the_frame_limit_is_refused_and_the_batch_kept() {
    let mut batch = OutBatch::default();
    batch.push(&heartbeat(), MAX).unwrap();
    let before = batch.out.clone();
    let refused = batch.push(&chunk(0, 100_000), 50_000);
    assert!(matches!(refused, Err(FrameError::TooLarge { .. })), "{refused:?}");
    assert_eq!(batch.out, before);
    assert!(batch.lent.is_empty());
}
