//! What a node starts from when its store was cut short by a crash.

use super::*;
use crate::snapshot::{Snapshot, SnapshotMeta};

#[test]
fn a_snapshot_past_the_end_of_the_log_is_where_the_log_continues() {
    // a crash between installing a snapshot and purging the log behind it:
    // the entries left all precede the snapshot, and the log must go on
    // after the snapshot, not after them
    let membership = StoredMembership {
        log_id: Some(log_id(1, 1, 1)),
        membership: Membership::new_uniform(nodes(&[1, 2, 3]).into_iter().collect()).unwrap(),
    };
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        entries: vec![membership_entry(&[1, 2, 3], &[1, 2, 3])],
        snapshot: Some(Snapshot {
            meta: SnapshotMeta { last_log_id: Some(log_id(2, 2, 9)), membership, changes: Default::default() },
            data: bytes::Bytes::new().into(),
        }),
        ..LogState::default()
    };
    let mut engine = Engine::new(NodeId(3), config(LeaderIdMode::Standard, false), &state, 3, 0);
    assert_eq!(engine.log().last_log_id(), Some(log_id(2, 2, 9)));
    let append = MessageBody::Append(AppendEntries {
        vote: Vote::new_committed(Term(2), NodeId(2)),
        prev_log_id: Some(log_id(2, 2, 9)),
        entries: vec![Entry { log_id: log_id(2, 2, 10), payload: EntryPayload::Normal(7) }],
        committed: Some(log_id(2, 2, 10)),
        seq: 1,
        leader_node: None,
    });
    engine.on_message(msg(2, 3, append));
    assert_eq!(engine.log().last_index(), LogIndex(10), "the entry after the snapshot is taken");
}
