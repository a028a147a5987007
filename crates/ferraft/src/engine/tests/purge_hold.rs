//! A snapshot does not purge the log past what a catch-up still needs, within
//! `catch_up_retain_entries` (issue 22).

use super::store_reads::leader_with_follower_behind_cache;
use super::*;
use crate::message::SnapshotReply;

fn purges(outputs: &[Output<u64, BasicNode>]) -> Vec<LogId> {
    outputs.iter().filter_map(|o| if let Output::PurgeLog(p) = o { Some(*p) } else { None }).collect()
}

fn with_retain(engine: &mut TestEngine, entries: u64) {
    engine.config = Arc::new(Config { catch_up_retain_entries: entries, ..(*engine.config).clone() });
}

#[test]
fn a_snapshot_does_not_purge_the_store_past_a_follower_catching_up_from_it() {
    // follower 2 holds up to 2 and is fed from the store; the cache starts at 25
    let (mut engine, _) = leader_with_follower_behind_cache();
    engine.take_outputs();
    engine.on_snapshot_saved(engine.log().last_log_id());
    assert_eq!(purges(&engine.take_outputs()), vec![log_id(1, 1, 2)], "the store keeps what follower 2 needs");
    assert_eq!(engine.log().first_index(), LogIndex(25), "the cache is not refilled either");
}

#[test]
fn the_hold_for_a_lagging_follower_is_bounded_by_the_setting() {
    let (mut engine, _) = leader_with_follower_behind_cache();
    with_retain(&mut engine, 10);
    engine.take_outputs();
    engine.on_snapshot_saved(engine.log().last_log_id());
    // 32 - 10: below the cache (25), named from the evicted entries' term
    assert_eq!(purges(&engine.take_outputs()), vec![log_id(1, 1, 22)]);
    assert_eq!(engine.snapshot_must_cover(), LogIndex(22));
}

#[test]
fn a_follower_receiving_a_snapshot_keeps_the_log_after_that_snapshot() {
    let (mut engine, _) = leader_with_follower_behind_cache();
    engine.take_outputs();
    engine.on_entries_read(NodeId(2), engine.vote(), LogIndex(2), Vec::new());
    assert!(engine.take_outputs().iter().any(|o| matches!(o, Output::SendSnapshotChunk { to: NodeId(2), .. })));
    // the follower says which snapshot it is receiving: the one at 20
    let reply = SnapshotReply {
        vote: engine.vote(),
        last_log_id: Some(log_id(1, 1, 20)),
        next_offset: 64,
        seq: 0,
        installing: false,
    };
    engine.on_message(msg(2, 1, MessageBody::SnapshotReply(reply)));
    engine.take_outputs();
    engine.on_snapshot_saved(engine.log().last_log_id());
    assert_eq!(purges(&engine.take_outputs()), vec![log_id(1, 1, 20)], "entries after 20 stay for after the install");
}

#[test]
fn caught_up_followers_let_the_log_be_purged_to_the_keep_margin() {
    let (mut engine, stored) = leader_with_follower_behind_cache();
    let last = engine.log().last_log_id();
    ack(&mut engine, 2, last);
    engine.take_outputs();
    engine.on_snapshot_saved(last);
    assert_eq!(purges(&engine.take_outputs()), vec![last.unwrap()]);
    assert_eq!(stored.len(), 31);
}
