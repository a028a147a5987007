//! An optional rate limit for snapshot sends (issue 22).

use super::install_phase::{chunks_to_2, snapshot_reply, streaming_to_2};
use super::*;

#[test]
fn a_rate_limited_transfer_sends_each_chunk_no_earlier_than_the_rate_allows() {
    let mut engine = streaming_to_2();
    let started = engine.now_ms;
    let chunk = engine.config.snapshot_chunk_bytes as u64;
    // ten chunks a second: one every 100 ms; heartbeats rarer than that
    let config = Arc::make_mut(&mut engine.config);
    config.snapshot_max_bytes_per_s = chunk * 10;
    config.heartbeat_interval_ms = 1_000;
    engine.on_tick(started);
    engine.take_outputs();
    snapshot_reply(&mut engine, chunk, false);
    assert!(chunks_to_2(&engine.take_outputs()).is_empty(), "acknowledged at once, but not due yet");
    assert_eq!(engine.next_deadline_ms(), started + 100, "the node wakes when the chunk is due");
    engine.on_tick(started + 99);
    assert!(chunks_to_2(&engine.take_outputs()).is_empty());
    engine.on_tick(started + 100);
    assert_eq!(chunks_to_2(&engine.take_outputs()), vec![chunk]);
    snapshot_reply(&mut engine, 2 * chunk, false);
    assert!(chunks_to_2(&engine.take_outputs()).is_empty(), "the third is due at 200 ms");
    engine.on_tick(started + 200);
    assert_eq!(chunks_to_2(&engine.take_outputs()), vec![2 * chunk]);
}

#[test]
fn a_chunk_held_back_by_the_rate_limit_is_not_a_stalled_transfer() {
    let mut engine = streaming_to_2();
    let started = engine.now_ms;
    let chunk = engine.config.snapshot_chunk_bytes as u64;
    // one chunk every ten election timeouts
    let timeout = engine.config.election_timeout_max_ms;
    Arc::make_mut(&mut engine.config).snapshot_max_bytes_per_s = chunk * 1000 / (10 * timeout);
    snapshot_reply(&mut engine, chunk, false);
    engine.take_outputs();
    let mut sent = Vec::new();
    let mut now = started;
    while now < started + 10 * timeout - 50 {
        now += engine.config.heartbeat_interval_ms;
        engine.on_tick(now);
        let last = engine.log().last_log_id();
        ack(&mut engine, 3, last);
        sent.extend(chunks_to_2(&engine.take_outputs()));
    }
    assert!(engine.is_leader());
    assert!(sent.is_empty(), "nothing resent or sent early: {sent:?}");
    assert_eq!(engine.catch_up(NodeId(2)).unwrap().stall, None, "held back, not stalled");
    engine.on_tick(started + 10 * timeout);
    assert_eq!(chunks_to_2(&engine.take_outputs()), vec![chunk], "sent once due");
}

#[test]
fn without_a_rate_limit_the_next_chunk_follows_the_acknowledgement() {
    let mut engine = streaming_to_2();
    let chunk = engine.config.snapshot_chunk_bytes as u64;
    snapshot_reply(&mut engine, chunk, false);
    assert_eq!(chunks_to_2(&engine.take_outputs()), vec![chunk]);
}
