//! Who campaigns while a membership that demotes or removes it is pending
//! (sim seeds 21978, 22167 and 31048 of the WAL=1 MEMBERSHIP_STRESS=1 runs).

use super::*;

/// Node 2's log: `[{1,2}]`, the joint `[{1,2},{1}]`, then `last`; it knows
/// entries up to `committed` committed.
fn node_2_after(last: Membership<BasicNode>, committed: Option<u64>) -> TestEngine {
    let joint = Membership::new(vec![set(&[1, 2]), set(&[1])], nodes(&[1, 2])).unwrap();
    let payloads = [Membership::new(vec![set(&[1, 2])], nodes(&[1, 2])).unwrap(), joint, last];
    let entries: Vec<Entry<u64, BasicNode>> = (1..)
        .zip(payloads)
        .map(|(i, m)| Entry { log_id: log_id(1, 1, i), payload: EntryPayload::Membership(m) })
        .collect();
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        vote: Some(Vote::new_committed(Term(1), NodeId(1))),
        committed: committed.map(|i| log_id(1, 1, i)),
        entries,
        ..LogState::default()
    };
    let mut engine = Engine::new(NodeId(2), config(LeaderIdMode::Standard, false), &state, 2, 0);
    engine.take_outputs();
    engine
}

fn demoting_node_2() -> Membership<BasicNode> {
    Membership::new(vec![set(&[1])], nodes(&[1, 2])).unwrap()
}

fn removing_node_2() -> Membership<BasicNode> {
    Membership::new(vec![set(&[1])], nodes(&[1])).unwrap()
}

fn vote_requests_to(outputs: &[Output<u64, BasicNode>]) -> Vec<NodeId> {
    sent(outputs).iter().filter(|m| matches!(m.body, MessageBody::Vote(_))).map(|m| m.envelope.to).collect()
}

#[test]
fn a_node_demoted_by_a_membership_not_known_committed_campaigns_and_hands_over() {
    for last in [demoting_node_2(), removing_node_2()] {
        let mut engine = node_2_after(last, None);
        engine.on_tick(10_000);
        let outputs = engine.take_outputs();
        assert_eq!(vote_requests_to(&outputs), [NodeId(1)], "asks the voters of its latest membership only");
        let vote = engine.vote();
        assert_eq!(vote, Vote::new(Term(2), NodeId(2)));
        // node 1, the only voter of [{1}], elects it: its own vote does not count
        let reply = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
        engine.on_message(msg(1, 2, MessageBody::VoteReply(reply)));
        assert!(engine.is_leader());
        let blank = engine.log().last_log_id().unwrap();
        assert_eq!(blank.index, LogIndex(4));
        engine.take_outputs();
        // node 1 acknowledges: [{1}] commits, and node 2 hands over to node 1
        engine.on_log_flushed(blank);
        ack(&mut engine, 1, Some(blank));
        assert_eq!(engine.committed(), Some(blank));
        let outputs = engine.take_outputs();
        let timeout_now: Vec<NodeId> = sent(&outputs)
            .iter()
            .filter(|m| matches!(m.body, MessageBody::TimeoutNow(_)))
            .map(|m| m.envelope.to)
            .collect();
        assert_eq!(timeout_now, [NodeId(1)]);
        assert!(!engine.is_leader(), "a leader its membership leaves out steps down once it commits");
    }
}

#[test]
fn a_node_that_knows_its_demotion_committed_does_not_campaign() {
    for last in [demoting_node_2(), removing_node_2()] {
        let mut engine = node_2_after(last, Some(3));
        engine.on_tick(10_000);
        assert!(vote_requests_to(&engine.take_outputs()).is_empty());
        assert_eq!(engine.vote(), Vote::new_committed(Term(1), NodeId(1)));
    }
}

#[test]
fn a_learner_that_was_no_voter_before_does_not_campaign_while_a_membership_is_pending() {
    // [{1}] learners {2,3}, then [{1}] learners {2}: node 2 was never a voter
    let entries: Vec<Entry<u64, BasicNode>> = [nodes(&[1, 2, 3]), nodes(&[1, 2])]
        .into_iter()
        .zip(1..)
        .map(|(all, i)| {
            let m = Membership::new(vec![set(&[1])], all).unwrap();
            Entry { log_id: log_id(1, 1, i), payload: EntryPayload::Membership(m) }
        })
        .collect();
    let state = LogState { cluster_id: ClusterId::new(CLUSTER), entries, ..LogState::default() };
    let mut engine: TestEngine = Engine::new(NodeId(2), config(LeaderIdMode::Standard, false), &state, 2, 0);
    engine.on_tick(1_000_000);
    assert!(vote_requests_to(&engine.take_outputs()).is_empty());
    assert_eq!(engine.server_state(), ServerState::Learner);
}
