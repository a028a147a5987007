//! An append message stays within `max_append_bytes`: a transport drops a
//! message above its frame limit, and a follower sent one forever would
//! never catch up.

use super::*;
use crate::engine::entry_bytes::encoded_size;

/// Leader 1 of {1,2,3} whose appends carry at most `max_bytes` of entries.
fn leader_within(max_bytes: usize) -> TestEngine {
    let config = Arc::new(Config { max_append_bytes: max_bytes, pre_vote: false, ..Config::default() });
    let mut engine = member(1, &[1, 2, 3], config);
    engine.on_tick(10_000);
    let vote = engine.vote();
    for peer in [2, 3] {
        let reply = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
        engine.on_message(msg(peer, 1, MessageBody::VoteReply(reply)));
    }
    assert!(engine.is_leader());
    engine.take_outputs();
    engine
}

/// The entries of each append sent to `to`, in order.
fn appends_to(outputs: &[Output<u64, BasicNode>], to: NodeId) -> Vec<Vec<Entry<u64, BasicNode>>> {
    sent(outputs)
        .iter()
        .filter(|m| m.envelope.to == to)
        .filter_map(|m| if let MessageBody::Append(a) = &m.body { Some(a.entries.clone()) } else { None })
        .filter(|entries| !entries.is_empty())
        .collect()
}

#[test]
fn entries_are_split_across_appends_to_stay_within_max_append_bytes() {
    let one = encoded_size(&Entry::<u64, BasicNode> { log_id: log_id(1, 1, 3), payload: EntryPayload::Normal(7) });
    let max_bytes = (3 * one + one / 2) as usize;
    let mut engine = leader_within(max_bytes);
    // the follower acknowledged the blank entry, so new entries stream to it
    let blank = engine.log().last_log_id();
    ack(&mut engine, 2, blank);
    engine.take_outputs();
    let proposed = engine.propose((0..20).collect::<Vec<u64>>()).unwrap().unwrap();
    let appends = appends_to(&engine.take_outputs(), NodeId(2));
    for entries in &appends {
        let bytes: u64 = entries.iter().map(encoded_size).sum();
        assert!(bytes <= max_bytes as u64, "an append of {} entries, {bytes} bytes", entries.len());
    }
    let sent: Vec<LogIndex> = appends.iter().flatten().map(|e| e.log_id.index).collect();
    let expected: Vec<LogIndex> = proposed.index.until(proposed.index + 20).collect();
    assert_eq!(sent, expected, "every entry is sent, in order, across several appends");
}

#[test]
fn an_entry_larger_than_max_append_bytes_still_goes_alone() {
    let mut engine = leader_within(1);
    let blank = engine.log().last_log_id();
    ack(&mut engine, 2, blank);
    engine.take_outputs();
    engine.propose(vec![7, 8]).unwrap();
    let appends = appends_to(&engine.take_outputs(), NodeId(2));
    assert_eq!(appends.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1]);
}
