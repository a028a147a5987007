use bytes::Bytes;
use ferraft::message::{AppendEntries, SnapshotChunk, VoteRequest};
use ferraft::{
    BasicNode, Envelope, LeaderId, LogId, Membership, Message, MessageBody, SnapshotMeta, StoredMembership, Vote,
};

use super::*;
use ferraft::{LogIndex, NodeId, Term};

type TestMessage = Message<Bytes, BasicNode>;

fn envelope() -> Envelope {
    Envelope { cluster_id: 1, from: NodeId(1), to: NodeId(2), from_incarnation: 0, to_incarnation: 0 }
}

fn heartbeat(seq: u64) -> TestMessage {
    let append = AppendEntries {
        vote: Vote::new(Term(1), NodeId(1)),
        prev_log_id: None,
        entries: vec![],
        committed: None,
        seq,
        leader_node: None,
    };
    Message { envelope: envelope(), body: MessageBody::Append(append) }
}

fn append(seq: u64) -> TestMessage {
    let entry = ferraft::Entry {
        log_id: LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(seq)),
        payload: ferraft::EntryPayload::Normal(Bytes::from_static(b"x")),
    };
    let append = AppendEntries {
        vote: Vote::new(Term(1), NodeId(1)),
        prev_log_id: None,
        entries: vec![entry],
        committed: None,
        seq,
        leader_node: None,
    };
    Message { envelope: envelope(), body: MessageBody::Append(append) }
}

fn vote() -> TestMessage {
    let request = VoteRequest {
        candidate_node: None,
        vote: Vote::new(Term(2), NodeId(1)),
        last_log_id: None,
        pre_vote: true,
        transfer: false,
    };
    Message { envelope: envelope(), body: MessageBody::Vote(request) }
}

fn snapshot_chunk() -> TestMessage {
    let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
    let membership = StoredMembership { log_id: None, membership: Membership::new_uniform(nodes).unwrap() };
    let meta = SnapshotMeta { last_log_id: None, membership, changes: Default::default() };
    let chunk = SnapshotChunk {
        vote: Vote::new(Term(1), NodeId(1)),
        meta,
        offset: 0,
        data: Bytes::from_static(b"s"),
        done: true,
        checksum: 0,
        seq: 0,
        leader_node: None,
    };
    Message { envelope: envelope(), body: MessageBody::Snapshot(chunk) }
}

fn seq_of(message: &TestMessage) -> u64 {
    match &message.body {
        MessageBody::Append(append) => append.seq,
        _ => u64::MAX,
    }
}

#[test]
fn heartbeats_votes_and_replies_are_control_entries_and_snapshots_are_bulk() {
    assert_eq!(Lane::of(&heartbeat(1)), Lane::Control);
    assert_eq!(Lane::of(&vote()), Lane::Control);
    assert_eq!(Lane::of(&append(1)), Lane::Bulk);
    assert_eq!(Lane::of(&snapshot_chunk()), Lane::Bulk);
}

#[test]
fn control_messages_overtake_queued_bulk() {
    let queue = OutQueue::new(1000, 1000);
    queue.push(append(1), 10);
    queue.push(append(2), 10);
    queue.push(heartbeat(3), 10);
    let mut batch = Vec::new();
    assert!(queue.take_batch(1000, &mut batch));
    assert_eq!(batch.iter().map(seq_of).collect::<Vec<_>>(), [3, 1, 2]);
}

#[test]
fn a_batch_holds_bulk_up_to_the_batch_bytes_but_always_one() {
    let queue = OutQueue::new(1000, 10_000);
    for seq in 0..5 {
        queue.push(append(seq), 400);
    }
    let mut batch = Vec::new();
    queue.take_batch(1000, &mut batch);
    assert_eq!(batch.len(), 2, "two of 400 fit in 1000, three do not");
    batch.clear();
    queue.take_batch(100, &mut batch);
    assert_eq!(batch.len(), 1, "an oversized message still goes alone");
    assert_eq!(queue.usage().0, 800);
}

#[test]
fn a_full_bulk_lane_drops_bulk_but_still_takes_heartbeats() {
    let queue = OutQueue::new(100, 1000);
    assert_eq!(queue.push(append(1), 600), Pushed::Queued);
    assert_eq!(queue.push(append(2), 600), Pushed::Full);
    assert_eq!(queue.push(heartbeat(3), 50), Pushed::Queued);
    assert_eq!(queue.usage(), (650, 1));
}

#[test]
fn queued_bytes_never_exceed_the_lane_bounds() {
    let queue = OutQueue::new(100, 1000);
    for seq in 0..100 {
        queue.push(append(seq), 1 + (seq as usize * 37) % 300);
        queue.push(heartbeat(seq), 30);
        assert!(queue.usage().0 <= 1100);
    }
}

#[test]
fn discard_empties_the_queue_and_counts_the_drops() {
    let queue = OutQueue::new(100, 1000);
    queue.push(append(1), 10);
    queue.push(heartbeat(2), 10);
    assert_eq!(queue.discard_reporting(), (2, vec![]));
    assert!(queue.is_empty());
    assert_eq!(queue.usage(), (0, 2));
}

#[test]
fn discarding_names_the_forwarded_writes_that_never_left() {
    let queue = OutQueue::new(1000, 1000);
    let forward = |id| TestMessage {
        envelope: envelope(),
        body: MessageBody::ForwardWrite(ferraft::message::ForwardWrite {
            id,
            leader: ferraft::LeaderId::new(Term(1), NodeId(1)),
            commands: vec![Bytes::from_static(b"7")],
        }),
    };
    queue.push(forward(5), 10);
    queue.push(heartbeat(2), 10);
    queue.push(forward(6), 10);
    assert_eq!(queue.discard_reporting(), (3, vec![5, 6]));
}

#[test]
fn a_closed_queue_refuses_messages_and_ends_the_writer() {
    let queue = OutQueue::new(100, 1000);
    queue.close();
    assert_eq!(queue.push(heartbeat(1), 10), Pushed::Closed);
    assert!(!queue.take_batch(1000, &mut Vec::new()));
}

#[tokio::test]
async fn the_first_message_into_an_empty_queue_wakes_the_writer() {
    let queue = std::sync::Arc::new(OutQueue::new(100, 1000));
    let waiter = tokio::spawn({
        let queue = queue.clone();
        async move { queue.wait().await }
    });
    tokio::task::yield_now().await;
    queue.push(heartbeat(1), 10);
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
}
