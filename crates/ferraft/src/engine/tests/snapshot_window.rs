//! Several snapshot chunks in flight per follower (issue 22).

use super::store_reads::leader_with_follower_behind_cache;
use super::*;
use crate::message::SnapshotReply;

const CHUNK: u64 = 1000;

/// (offset, seq) of each chunk sent to node 2.
fn chunks_to_2(outputs: &[Output<u64, BasicNode>]) -> Vec<(u64, u64)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::SendSnapshotChunk { to: NodeId(2), offset, seq, .. } => Some((*offset, *seq)),
            _ => None,
        })
        .collect()
}

fn offsets(chunks: &[(u64, u64)]) -> Vec<u64> {
    chunks.iter().map(|(offset, _)| *offset).collect()
}

/// Leader 1 starts streaming a snapshot to node 2 with a window of four
/// chunks of `CHUNK` bytes; returns the chunks sent.
fn streaming_to_2() -> (TestEngine, Vec<(u64, u64)>) {
    let (mut engine, _) = leader_with_follower_behind_cache();
    let config = Arc::make_mut(&mut engine.config);
    config.snapshot_chunks_in_flight = 4;
    config.snapshot_chunk_bytes = CHUNK as usize;
    engine.take_outputs();
    engine.on_entries_read(NodeId(2), engine.vote(), LogIndex(2), Vec::new());
    let sent = chunks_to_2(&engine.take_outputs());
    (engine, sent)
}

/// Node 2 answers the chunk of sequence `seq`: it holds `next_offset` bytes.
fn answer(engine: &mut TestEngine, seq: u64, next_offset: u64) -> Vec<(u64, u64)> {
    let (vote, last_log_id) = (engine.vote(), Some(log_id(1, 1, 30)));
    let reply = SnapshotReply { vote, last_log_id, next_offset, seq, installing: false };
    engine.on_message(msg(2, 1, MessageBody::SnapshotReply(reply)));
    chunks_to_2(&engine.take_outputs())
}

#[test]
fn a_window_of_chunks_goes_out_before_any_acknowledgement() {
    let (mut engine, sent) = streaming_to_2();
    assert_eq!(offsets(&sent), vec![0, CHUNK, 2 * CHUNK, 3 * CHUNK]);
    // each acknowledged chunk lets one more go
    assert_eq!(offsets(&answer(&mut engine, sent[0].1, CHUNK)), vec![4 * CHUNK]);
    assert_eq!(offsets(&answer(&mut engine, sent[1].1, 2 * CHUNK)), vec![5 * CHUNK]);
    assert_eq!(engine.catch_up(NodeId(2)).unwrap().snapshot_bytes_sent, Some(2 * CHUNK));
}

#[test]
fn a_lost_middle_chunk_is_resent_from_the_offset_the_receiver_holds() {
    let (mut engine, sent) = streaming_to_2();
    let next = answer(&mut engine, sent[0].1, CHUNK);
    assert_eq!(offsets(&next), vec![4 * CHUNK]);
    // the chunk at CHUNK is lost: the receiver answers the next one with the offset it still holds
    let resent = answer(&mut engine, sent[2].1, CHUNK);
    assert_eq!(offsets(&resent), vec![CHUNK, 2 * CHUNK, 3 * CHUNK, 4 * CHUNK], "the window again, from the gap");
    // the answers to chunks sent before the resend say the same: nothing more goes
    assert!(answer(&mut engine, sent[3].1, CHUNK).is_empty());
    assert!(answer(&mut engine, next[0].1, CHUNK).is_empty());
    // the resent chunk arrives: the transfer goes on
    assert_eq!(offsets(&answer(&mut engine, resent[0].1, 2 * CHUNK)), vec![5 * CHUNK]);
}

#[test]
fn acknowledgements_out_of_order_do_not_move_the_offset_backwards() {
    let (mut engine, sent) = streaming_to_2();
    assert_eq!(offsets(&answer(&mut engine, sent[1].1, 2 * CHUNK)), vec![4 * CHUNK, 5 * CHUNK]);
    assert!(answer(&mut engine, sent[0].1, CHUNK).is_empty(), "a late answer sends nothing again");
    assert_eq!(engine.catch_up(NodeId(2)).unwrap().snapshot_bytes_sent, Some(2 * CHUNK));
}

#[test]
fn a_receiver_whose_copy_went_back_is_sent_the_window_from_where_it_now_stands() {
    let (mut engine, sent) = streaming_to_2();
    let next = answer(&mut engine, sent[1].1, 2 * CHUNK);
    // it restarted and lost its partial copy: it answers a later chunk with 0
    let resent = answer(&mut engine, next[0].1, 0);
    assert_eq!(offsets(&resent), vec![0, CHUNK, 2 * CHUNK, 3 * CHUNK]);
    assert_eq!(engine.catch_up(NodeId(2)).unwrap().snapshot_bytes_sent, Some(0));
}

#[test]
fn a_rate_limited_window_sends_each_chunk_at_its_due_time() {
    let (mut engine, _) = leader_with_follower_behind_cache();
    let config = Arc::make_mut(&mut engine.config);
    config.snapshot_chunks_in_flight = 4;
    config.snapshot_chunk_bytes = CHUNK as usize;
    // ten chunks a second; heartbeats rarer than that
    config.snapshot_max_bytes_per_s = 10 * CHUNK;
    config.heartbeat_interval_ms = 1_000;
    let started = engine.now_ms;
    engine.on_tick(started);
    engine.take_outputs();
    engine.on_entries_read(NodeId(2), engine.vote(), LogIndex(2), Vec::new());
    assert_eq!(offsets(&chunks_to_2(&engine.take_outputs())), vec![0], "the window waits for the rate");
    assert_eq!(engine.next_deadline_ms(), started + 100);
    engine.on_tick(started + 100);
    assert_eq!(offsets(&chunks_to_2(&engine.take_outputs())), vec![CHUNK]);
    engine.on_tick(started + 200);
    assert_eq!(offsets(&chunks_to_2(&engine.take_outputs())), vec![2 * CHUNK]);
}

#[test]
fn a_receiver_holding_an_offset_between_chunks_is_sent_the_window_from_there() {
    // it kept part of the same snapshot from an earlier leader's transfer
    let (mut engine, sent) = streaming_to_2();
    let resent = answer(&mut engine, sent[0].1, CHUNK / 2);
    assert_eq!(offsets(&resent), vec![CHUNK / 2, 3 * CHUNK / 2, 5 * CHUNK / 2, 7 * CHUNK / 2]);
    assert!(answer(&mut engine, sent[1].1, CHUNK / 2).is_empty(), "answers to the first run change nothing");
}
