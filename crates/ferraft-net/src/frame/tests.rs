use std::collections::BTreeMap;

use bytes::Bytes;
use ferraft::message::{AppendEntries, SnapshotChunk, TimeoutNow, VoteRequest};
use ferraft::{
    BasicNode, Entry, EntryPayload, Envelope, LeaderId, LogId, Membership, Message, MessageBody, RememberedChanges,
    SnapshotMeta, StoredMembership, Vote,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;
use ferraft::{LogIndex, NodeId, Term};

/// The application command used in these tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Command {
    data: Bytes,
}

type TestMessage = Message<Command, BasicNode>;

const MAX: usize = 1 << 20;

fn log_id(term: u64, node: u64, index: u64) -> LogId {
    LogId::new(LeaderId::new(Term(term), NodeId(node)), LogIndex(index))
}

fn membership(ids: &[u64]) -> Membership<BasicNode> {
    let nodes: BTreeMap<_, _> =
        ids.iter().map(|id| (NodeId(*id), BasicNode::new(format!("127.0.0.1:{}", 7000 + id)))).collect();
    Membership::new_uniform(nodes).expect("valid membership")
}

/// Changes remembered by a snapshot ending at `last`: one with an id, at
/// `last`, so a chunk's metadata carries them over the wire.
fn remembered(last: Option<LogId>) -> RememberedChanges<BasicNode> {
    let mut changes = RememberedChanges::default();
    let before = StoredMembership { log_id: None, membership: membership(&[1, 2]) };
    let first = StoredMembership { log_id: last, membership: membership(&[1, 2, 3]).with_change_id(Some("x".into())) };
    changes.remember_left([&before, &first], None, 10);
    changes
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(cluster_id, from, to)| Envelope {
        cluster_id,
        from: NodeId(from),
        to: NodeId(to),
        from_incarnation: 0,
        to_incarnation: 0,
    })
}

fn entry() -> impl Strategy<Value = Entry<Command, BasicNode>> {
    let payload = prop_oneof![
        Just(EntryPayload::Blank),
        proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(|data| EntryPayload::Normal(Command { data: Bytes::from(data) })),
        proptest::collection::btree_set(1u64..10, 1..5)
            .prop_map(|ids| EntryPayload::Membership(membership(&ids.into_iter().collect::<Vec<_>>()))),
    ];
    (any::<u64>(), any::<u64>(), any::<u64>(), payload)
        .prop_map(|(term, node, index, payload)| Entry { log_id: log_id(term, node, index), payload })
}

fn body() -> impl Strategy<Value = MessageBody<Command, BasicNode>> {
    let vote = (any::<u64>(), any::<u64>()).prop_map(|(term, node)| Vote::new(Term(term), NodeId(node)));
    let last = proptest::option::of((any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(t, n, i)| log_id(t, n, i)));
    prop_oneof![
        (vote.clone(), last.clone(), any::<bool>(), any::<bool>()).prop_map(
            |(vote, last_log_id, pre_vote, transfer)| {
                let candidate_node = Some(BasicNode::new("127.0.0.1:7001"));
                MessageBody::Vote(VoteRequest { candidate_node, vote, last_log_id, pre_vote, transfer })
            }
        ),
        (vote.clone(), last.clone(), proptest::collection::vec(entry(), 0..8), last.clone(), any::<u64>()).prop_map(
            |(vote, prev_log_id, entries, committed, seq)| {
                MessageBody::Append(AppendEntries { vote, prev_log_id, entries, committed, seq, leader_node: None })
            }
        ),
        (vote.clone(), last, proptest::collection::vec(any::<u8>(), 0..2000), any::<u64>(), any::<bool>()).prop_map(
            |(vote, last_log_id, data, offset, done)| {
                let meta = SnapshotMeta {
                    last_log_id,
                    membership: StoredMembership { log_id: last_log_id, membership: membership(&[1, 2, 3]) },
                    changes: remembered(last_log_id),
                };
                MessageBody::Snapshot(SnapshotChunk {
                    vote,
                    meta,
                    offset,
                    data: Bytes::from(data),
                    done,
                    checksum: offset as u32,
                    seq: offset,
                    leader_node: None,
                })
            }
        ),
        vote.prop_map(|vote| MessageBody::TimeoutNow(TimeoutNow { vote })),
    ]
}

fn message() -> impl Strategy<Value = TestMessage> {
    (envelope(), body()).prop_map(|(envelope, body)| Message { envelope, body })
}

fn encoded(message: &TestMessage) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_frame(&mut buf, message, MAX).expect("encodes");
    buf
}

proptest! {
    #[test]
    fn every_message_survives_a_round_trip(message in message()) {
        let mut buf = encoded(&message);
        prop_assert_eq!(frame_len(&message).unwrap(), buf.len());
        let decoded: TestMessage = decode_frame(&mut buf, MAX).unwrap().expect("complete frame");
        prop_assert_eq!(decoded, message);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn a_frame_lending_a_chunk_s_bytes_is_the_plain_frame_once_they_are_put_back(message in message()) {
        let lend = match &message.body {
            MessageBody::Snapshot(chunk) => chunk.data.clone(),
            _ => Bytes::new(),
        };
        let mut buf = BytesMut::new();
        let at = encode_frame_lending(&mut buf, &message, MAX, &lend).unwrap();
        if let Some(at) = at {
            let tail = buf.split_off(at);
            buf.extend_from_slice(&lend);
            buf.extend_from_slice(&tail);
        }
        prop_assert_eq!(at.is_some(), !lend.is_empty());
        prop_assert_eq!(buf, encoded(&message));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = decode_frame::<TestMessage>(&mut buf, MAX);
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = decode_frame::<crate::handshake::Hello>(&mut buf, 64);
    }

    #[test]
    fn arbitrary_payloads_behind_a_valid_length_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::new();
        buf.put_u32_le(payload.len() as u32);
        buf.extend_from_slice(&payload);
        match decode_frame::<TestMessage>(&mut buf, MAX) {
            Ok(Some(_)) | Err(_) => prop_assert!(buf.is_empty(), "a whole frame is consumed either way"),
            Ok(None) => prop_assert!(false, "a complete frame is never reported as incomplete"),
        }
    }

    #[test]
    fn a_truncated_frame_is_incomplete_not_an_error(message in message(), cut in any::<prop::sample::Index>()) {
        let full = encoded(&message);
        let cut = cut.index(full.len());
        let mut buf = BytesMut::from(&full[..cut]);
        prop_assert!(matches!(decode_frame::<TestMessage>(&mut buf, MAX), Ok(None)));
        prop_assert_eq!(buf.len(), cut, "nothing is consumed from an incomplete frame");
    }

    #[test]
    fn a_corrupted_frame_never_panics(message in message(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut full = encoded(&message);
        let at = LENGTH_PREFIX_BYTES + at.index(full.len() - LENGTH_PREFIX_BYTES);
        full[at] = byte;
        let _ = decode_frame::<TestMessage>(&mut full, MAX);
    }

    #[test]
    fn a_frame_cut_short_in_its_payload_is_an_error(message in message(), cut in any::<prop::sample::Index>()) {
        // The length claims fewer bytes than the value needs: decoding must fail, not read on.
        let full = encoded(&message);
        let payload = &full[LENGTH_PREFIX_BYTES..];
        let cut = cut.index(payload.len());
        let mut buf = BytesMut::new();
        buf.put_u32_le(cut as u32);
        buf.extend_from_slice(&payload[..cut]);
        prop_assert!(decode_frame::<TestMessage>(&mut buf, MAX).is_err());
    }
}

fn heartbeat() -> TestMessage {
    let append = AppendEntries {
        vote: Vote::new(Term(1), NodeId(1)),
        prev_log_id: None,
        entries: vec![],
        committed: None,
        seq: 1,
        leader_node: None,
    };
    Message {
        envelope: Envelope { cluster_id: 7, from: NodeId(1), to: NodeId(2), from_incarnation: 0, to_incarnation: 0 },
        body: MessageBody::Append(append),
    }
}

#[test]
fn frames_in_one_buffer_decode_in_order_and_a_partial_tail_waits() {
    let mut buf = BytesMut::new();
    let mut second = heartbeat();
    second.envelope.to = NodeId(3);
    encode_frame(&mut buf, &heartbeat(), MAX).unwrap();
    encode_frame(&mut buf, &second, MAX).unwrap();
    encode_frame(&mut buf, &heartbeat(), MAX).unwrap();
    buf.truncate(buf.len() - 1);
    assert_eq!(decode_frame::<TestMessage>(&mut buf, MAX).unwrap(), Some(heartbeat()));
    assert_eq!(decode_frame::<TestMessage>(&mut buf, MAX).unwrap(), Some(second));
    assert_eq!(decode_frame::<TestMessage>(&mut buf, MAX).unwrap(), None);
}

#[test]
fn a_length_above_the_limit_is_refused_before_reading_the_payload() {
    let mut buf = BytesMut::new();
    buf.put_u32_le(MAX as u32 + 1);
    let error = decode_frame::<TestMessage>(&mut buf, MAX).unwrap_err();
    assert!(matches!(error, FrameError::TooLarge { len, max: MAX } if len == MAX + 1));
}

#[test]
fn trailing_bytes_in_a_frame_are_refused() {
    let mut buf = encoded(&heartbeat());
    let len = buf.len() - LENGTH_PREFIX_BYTES + 2;
    buf[..LENGTH_PREFIX_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
    buf.extend_from_slice(&[0, 0]);
    assert!(matches!(decode_frame::<TestMessage>(&mut buf, MAX), Err(FrameError::TrailingBytes(2))));
}

#[test]
fn a_value_above_the_limit_is_not_encoded_and_the_buffer_is_kept() {
    let mut buf = encoded(&heartbeat());
    let before = buf.clone();
    let big = Command { data: Bytes::from(vec![0u8; 1000]) };
    assert!(matches!(encode_frame(&mut buf, &big, 100), Err(FrameError::TooLarge { .. })));
    assert_eq!(buf, before);
}

#[tokio::test]
async fn read_frame_reads_large_frames_across_many_reads() {
    let data = Bytes::from(vec![7u8; 3 * 1024 * 1024]);
    let mut frame = BytesMut::new();
    encode_frame(&mut frame, &Command { data: data.clone() }, 4 << 20).unwrap();
    let (mut client, mut server) = tokio::io::duplex(64 * 1024);
    let writer = tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut client, &frame).await.unwrap();
    });
    let mut buf = BytesMut::new();
    let command: Command = read_frame(&mut server, &mut buf, 4 << 20).await.unwrap();
    assert_eq!(command.data, data);
    writer.await.unwrap();
    assert!(matches!(read_frame::<Command, _>(&mut server, &mut buf, 4 << 20).await, Err(NetError::Closed)));
}

fn big_chunk(len: usize) -> TestMessage {
    let meta = SnapshotMeta {
        last_log_id: None,
        membership: StoredMembership { log_id: None, membership: membership(&[1]) },
        changes: Default::default(),
    };
    let data = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>());
    let chunk = SnapshotChunk {
        vote: Vote::new(Term(1), NodeId(1)),
        meta,
        offset: 0,
        data,
        done: true,
        checksum: 1,
        seq: 1,
        leader_node: None,
    };
    Message { envelope: heartbeat().envelope, body: MessageBody::Snapshot(chunk) }
}

fn data_of(message: &TestMessage) -> &Bytes {
    match &message.body {
        MessageBody::Snapshot(chunk) => &chunk.data,
        _ => panic!("not a chunk"),
    }
}

#[test]
fn a_large_frame_s_chunk_is_decoded_as_a_slice_of_the_received_buffer() {
    let message = big_chunk(SHARE_MIN_BYTES);
    let mut buf = encoded(&message);
    encode_frame(&mut buf, &heartbeat(), MAX).unwrap();
    let received = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let decoded: TestMessage = decode_frame(&mut buf, MAX).unwrap().expect("complete frame");
    assert_eq!(decoded, message);
    assert!(received.contains(&(data_of(&decoded).as_ptr() as usize)), "copied");
    assert_eq!(decode_frame::<TestMessage>(&mut buf, MAX).unwrap(), Some(heartbeat()), "the next frame is kept");
    assert!(buf.is_empty());
}

#[test]
fn a_small_frame_s_chunk_is_copied_out_of_the_received_buffer() {
    let message = big_chunk(1000);
    let mut buf = encoded(&message);
    let received = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let decoded: TestMessage = decode_frame(&mut buf, MAX).unwrap().expect("complete frame");
    assert_eq!(decoded, message);
    assert!(!received.contains(&(data_of(&decoded).as_ptr() as usize)));
}

#[test]
fn a_large_frame_that_does_not_decode_is_consumed_and_refused() {
    let mut buf = encoded(&big_chunk(SHARE_MIN_BYTES));
    let len = buf.len();
    buf[len - 1] = 0xff; // the leader node's option tag
    assert!(decode_frame::<TestMessage>(&mut buf, MAX).is_err());
    assert!(buf.is_empty());
}
