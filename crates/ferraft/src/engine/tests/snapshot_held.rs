//! A follower tells its leader it holds a snapshot's entries only once they
//! are durable here. Knowing them committed is not holding them: a follower
//! learns commits of entries it has not synced yet, and a crash then takes
//! them back; the leader, told they were held, sees the follower's log go
//! backwards and stops replicating to it for good (simulator seed 1304899,
//! forward-heavy runs: a voter cut off that way left a joint config that
//! needed it unable to commit).

use super::*;
use crate::message::{SnapshotChunk, SnapshotReply};
use crate::snapshot::SnapshotMeta;

/// Follower 3 received entries 2..=4 from leader 1 with the leader's commit
/// at 4, and has synced none of them yet.
fn follower_with_committed_entries_not_yet_durable() -> TestEngine {
    let mut engine = member(3, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    let entries = (2..=4).map(|i| Entry { log_id: log_id(2, 1, i), payload: EntryPayload::Normal(i) }).collect();
    let append = AppendEntries {
        vote: Vote::new_committed(Term(2), NodeId(1)),
        prev_log_id: Some(log_id(1, 1, 1)),
        entries,
        committed: Some(log_id(2, 1, 4)),
        seq: 1,
        leader_node: None,
    };
    engine.on_message(msg(1, 3, MessageBody::Append(append)));
    engine.take_outputs();
    assert_eq!(engine.committed(), Some(log_id(2, 1, 4)), "the leader's commit is known here");
    engine
}

fn snapshot_chunk_at(engine: &TestEngine, last: LogId) -> MessageBody<u64, BasicNode> {
    let membership = StoredMembership {
        log_id: Some(log_id(1, 1, 1)),
        membership: Membership::new_uniform(nodes(&[1, 2, 3]).into_iter().collect()).unwrap(),
    };
    MessageBody::Snapshot(SnapshotChunk {
        vote: engine.vote(),
        meta: SnapshotMeta { last_log_id: Some(last), membership, changes: Default::default() },
        offset: 0,
        data: bytes::Bytes::new(),
        done: true,
        checksum: 0,
        seq: 7,
        leader_node: None,
    })
}

fn whole_snapshot_held_replies(outputs: &[Output<u64, BasicNode>]) -> usize {
    sent(outputs)
        .iter()
        .filter(|m| matches!(m.body, MessageBody::SnapshotReply(SnapshotReply { next_offset: u64::MAX, .. })))
        .count()
}

#[test]
fn a_snapshot_of_committed_entries_not_yet_durable_is_acknowledged_once_they_are() {
    let mut engine = follower_with_committed_entries_not_yet_durable();
    let chunk = snapshot_chunk_at(&engine, log_id(2, 1, 3));
    engine.on_message(msg(1, 3, chunk));
    assert_eq!(
        whole_snapshot_held_replies(&engine.take_outputs()),
        0,
        "entry 3 is committed but not durable here: a crash now would lose it"
    );
    engine.on_log_flushed(log_id(2, 1, 3));
    assert_eq!(whole_snapshot_held_replies(&engine.take_outputs()), 1, "durable now: held");
}

#[test]
fn a_snapshot_of_entries_already_durable_is_acknowledged_at_once() {
    let mut engine = follower_with_committed_entries_not_yet_durable();
    engine.on_log_flushed(log_id(2, 1, 4));
    engine.take_outputs();
    let chunk = snapshot_chunk_at(&engine, log_id(2, 1, 3));
    engine.on_message(msg(1, 3, chunk));
    assert_eq!(whole_snapshot_held_replies(&engine.take_outputs()), 1);
}
