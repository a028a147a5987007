//! Transfer and install of a snapshot are tracked apart (issue 22).

use super::store_reads::leader_with_follower_behind_cache;
use super::*;
use crate::engine::install_phase::INSTALL_PATIENCE_ELECTION_TIMEOUTS;
use crate::message::SnapshotReply;

pub(super) fn chunks_to_2(outputs: &[Output<u64, BasicNode>]) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::SendSnapshotChunk { to: NodeId(2), offset, .. } => Some(*offset),
            _ => None,
        })
        .collect()
}

/// Leader 1 streams a snapshot to follower 2, which got 4096 bytes of it.
pub(super) fn streaming_to_2() -> TestEngine {
    let (mut engine, _) = leader_with_follower_behind_cache();
    engine.take_outputs();
    engine.on_entries_read(NodeId(2), engine.vote(), LogIndex(2), Vec::new());
    assert_eq!(chunks_to_2(&engine.take_outputs()), vec![0]);
    engine
}

pub(super) fn snapshot_reply(engine: &mut TestEngine, next_offset: u64, installing: bool) {
    let (vote, last_log_id) = (engine.vote(), Some(log_id(1, 1, 30)));
    let reply = SnapshotReply { vote, last_log_id, next_offset, seq: u64::MAX / 2, installing };
    engine.on_message(msg(2, 1, MessageBody::SnapshotReply(reply)));
}

/// Heartbeats until `until_ms`, node 3 answering (quorum), node 2 silent;
/// returns every chunk offset sent to node 2 meanwhile.
fn silent_follower_until(engine: &mut TestEngine, until_ms: u64) -> Vec<u64> {
    let mut chunks = Vec::new();
    while engine.now_ms < until_ms {
        engine.on_tick(engine.now_ms + engine.config.heartbeat_interval_ms);
        ack(engine, 3, engine.log().last_log_id());
        chunks.extend(chunks_to_2(&engine.take_outputs()));
    }
    chunks
}

#[test]
fn a_follower_installing_a_snapshot_is_sent_no_chunks_and_not_reported_stalled() {
    let mut engine = streaming_to_2();
    snapshot_reply(&mut engine, 4096, false);
    assert_eq!(chunks_to_2(&engine.take_outputs()), vec![4096], "the transfer goes on");
    snapshot_reply(&mut engine, 8192, true);
    assert!(chunks_to_2(&engine.take_outputs()).is_empty(), "every byte arrived");
    let timeout = engine.config.election_timeout_max_ms;
    let until = engine.now_ms + 5 * timeout;
    let resent = silent_follower_until(&mut engine, until);
    assert!(resent.iter().all(|offset| *offset == 8192), "a long install is not a lost chunk: {resent:?}");
    let report = engine.catch_up(NodeId(2)).unwrap();
    assert_eq!(report.stall, None, "busy installing, not stalled");
    assert!(report.snapshot_installing);
    assert_eq!(report.snapshots_started, 1);
}

#[test]
fn an_install_that_never_ends_resumes_the_transfer_past_the_bound() {
    let mut engine = streaming_to_2();
    snapshot_reply(&mut engine, 8192, true);
    engine.take_outputs();
    let bound = engine.config.election_timeout_max_ms * INSTALL_PATIENCE_ELECTION_TIMEOUTS;
    let until = engine.now_ms + bound + 100;
    let resent = silent_follower_until(&mut engine, until);
    assert_eq!(resent.first(), Some(&8192), "the follower may have crashed mid-install: ask where it stands");
    assert!(matches!(engine.catch_up(NodeId(2)).unwrap().stall, Some(CatchUpStall::Unreachable { .. })));
}

#[test]
fn a_lost_installed_reply_is_asked_for_again_within_a_few_election_timeouts() {
    // the follower said it is installing; its "installed" reply is lost (or it
    // crashed after the install): only the leader can speak next
    let mut engine = streaming_to_2();
    snapshot_reply(&mut engine, 8192, true);
    engine.take_outputs();
    let until = engine.now_ms + 3 * engine.config.election_timeout_max_ms;
    let asked = silent_follower_until(&mut engine, until);
    assert_eq!(asked.first(), Some(&8192), "the leader asks where the follower stands, from the end: {asked:?}");
    assert!(asked.iter().all(|offset| *offset == 8192), "no byte is sent again: {asked:?}");
    snapshot_reply(&mut engine, u64::MAX, false);
    assert!(!engine.catch_up(NodeId(2)).unwrap().snapshot_installing, "installed: replication goes on");
}
