//! Engine scenarios of cluster identity: where a node's cluster id comes
//! from, what it lets in, and that it is saved before anything that depends on it.

use std::sync::Arc;

use super::tests::{config, granted, log_id, member, membership_entry, msg, sent, vote_request, TestEngine, CLUSTER};
use super::*;
use crate::error::InitializeError;
use crate::leader_id::LeaderIdMode;
use crate::message::{AppendEntries, Probe};
use crate::node::BasicNode;

fn fresh(config: Arc<Config>) -> TestEngine {
    let mut engine = Engine::new(NodeId(2), config, &LogState::default(), 2, 0);
    engine.take_outputs();
    engine
}

fn standard() -> Arc<Config> {
    config(LeaderIdMode::Standard, false)
}

/// An append from leader 1 of `cluster` (term 2) carrying the initial membership {1}.
fn leader_append(cluster: u64, to: NodeId) -> Message<u64, BasicNode> {
    let append = AppendEntries {
        vote: Vote::new_committed(Term(2), NodeId(1)),
        prev_log_id: None,
        entries: vec![membership_entry(&[1], &[1, 2])],
        committed: Some(log_id(1, 1, 1)),
        seq: 1,
        leader_node: Some(BasicNode::new("n1")),
    };
    let mut message = msg(1, to, MessageBody::Append(append));
    message.envelope.cluster_id = cluster;
    message
}

fn position(outputs: &[Output<u64, BasicNode>], wanted: impl Fn(&Output<u64, BasicNode>) -> bool) -> usize {
    outputs.iter().position(wanted).expect("output present")
}

#[test]
fn a_new_node_joins_the_cluster_of_the_first_leader_and_saves_it_before_the_vote() {
    let mut engine = fresh(standard());
    assert_eq!(engine.cluster_id(), None);
    engine.on_message(leader_append(42, NodeId(2)));
    let outputs = engine.take_outputs();
    assert_eq!(engine.cluster_id(), ClusterId::new(42));
    let saved = position(&outputs, |o| matches!(o, Output::SaveClusterId(c) if c.get() == 42));
    let vote = position(&outputs, |o| matches!(o, Output::SaveVote(_)));
    assert!(saved < vote, "the cluster id is durable before the vote that follows it: {outputs:?}");
    engine.on_log_flushed(log_id(1, 1, 1));
    let replies = engine.take_outputs();
    assert!(sent(&replies).iter().all(|m| m.envelope.cluster_id == 42), "{replies:?}");
}

#[test]
fn a_node_in_a_cluster_drops_a_leader_of_another_cluster() {
    let mut engine = fresh(standard());
    engine.on_message(leader_append(42, NodeId(2)));
    engine.on_log_flushed(log_id(1, 1, 1));
    engine.take_outputs();
    let vote = engine.vote();
    let mut other = leader_append(43, NodeId(2));
    if let MessageBody::Append(append) = &mut other.body {
        append.vote = Vote::new_committed(Term(9), NodeId(1));
    }
    engine.on_message(other);
    assert!(engine.take_outputs().is_empty(), "a message of another cluster changes nothing");
    assert_eq!(engine.vote(), vote);
    assert_eq!(engine.cluster_id(), ClusterId::new(42));
}

#[test]
fn a_new_node_that_grants_a_vote_joins_the_candidates_cluster_but_not_on_a_pre_vote() {
    let mut engine = fresh(standard());
    let mut pre_vote = msg(1, 2, vote_request(5, 1, Some(log_id(1, 1, 1))));
    if let MessageBody::Vote(request) = &mut pre_vote.body {
        request.pre_vote = true;
    }
    pre_vote.envelope.cluster_id = 42;
    engine.on_message(pre_vote);
    let outputs = engine.take_outputs();
    assert_eq!(granted(&outputs), Some(true));
    assert_eq!(engine.cluster_id(), None, "a pre-vote changes nothing, the cluster id included");
    assert_eq!(sent(&outputs)[0].envelope.cluster_id, 42, "answered in the asker's cluster");

    let mut vote = msg(1, 2, vote_request(5, 1, Some(log_id(1, 1, 1))));
    vote.envelope.cluster_id = 42;
    engine.on_message(vote);
    let outputs = engine.take_outputs();
    assert_eq!(granted(&outputs), Some(true));
    let saved = position(&outputs, |o| matches!(o, Output::SaveClusterId(_)));
    assert!(saved < position(&outputs, |o| matches!(o, Output::SaveVote(_))));
    assert_eq!(engine.cluster_id(), ClusterId::new(42));
}

#[test]
fn initialize_saves_the_cluster_id_before_the_first_entry() {
    let mut engine = fresh(standard());
    let membership = Membership::new_uniform(super::tests::nodes(&[2])).unwrap();
    let given = ClusterId::new(0xabc).unwrap();
    engine.initialize_in_cluster(membership, None, given).unwrap();
    let outputs = engine.take_outputs();
    assert!(matches!(outputs.first(), Some(Output::SaveClusterId(c)) if *c == given), "{outputs:?}");
    assert_eq!(engine.cluster_id(), Some(given));
    assert!(sent(&outputs).iter().all(|m| m.envelope.cluster_id == 0xabc));
}

#[test]
fn initialize_with_another_id_than_the_node_has_is_refused() {
    let mut engine = fresh(standard());
    engine.on_message(msg(1, 2, vote_request(5, 1, None)));
    engine.take_outputs();
    let ours = engine.cluster_id().expect("joined by its vote");
    let other = ClusterId::new(ours.get() + 1).unwrap();
    let membership = Membership::new_uniform(super::tests::nodes(&[2])).unwrap();
    let refused = engine.initialize_in_cluster(membership.clone(), Some(other), other);
    assert!(matches!(refused, Err(InitializeError::OtherCluster { .. })), "{refused:?}");
    engine.initialize_in_cluster(membership, None, other).unwrap();
    assert_eq!(engine.cluster_id(), Some(ours), "a node keeps the cluster it has");
}

#[test]
fn a_node_reached_by_a_leader_refuses_to_be_initialized_as_another_cluster() {
    let mut engine = fresh(standard());
    let mut heartbeat = leader_append(42, NodeId(2));
    if let MessageBody::Append(append) = &mut heartbeat.body {
        // a probe that does not match (the node's log is empty): nothing appended
        append.prev_log_id = Some(log_id(1, 1, 5));
        append.entries.clear();
    }
    engine.on_message(heartbeat);
    engine.take_outputs();
    assert_eq!(engine.log().last_log_id(), None);
    let membership = Membership::new_uniform(super::tests::nodes(&[2])).unwrap();
    let refused = engine.initialize(membership);
    assert!(matches!(refused, Err(InitializeError::JoinedCluster { leader: NodeId(1), .. })), "{refused:?}");
    assert!(engine.take_outputs().is_empty());
}

#[test]
fn a_store_written_before_cluster_ids_takes_the_configured_one_and_saves_it() {
    let state = LogState { entries: vec![membership_entry(&[1], &[1])], ..LogState::default() };
    let configured = Arc::new(Config { cluster_id: 0x5eed, ..Config::default() });
    let mut engine: TestEngine = Engine::new(NodeId(1), configured, &state, 1, 0);
    assert_eq!(engine.cluster_id(), ClusterId::new(0x5eed));
    let outputs = engine.take_outputs();
    assert!(outputs.iter().any(|o| matches!(o, Output::SaveClusterId(c) if c.get() == 0x5eed)), "{outputs:?}");
}

#[test]
fn a_probe_is_answered_across_clusters_and_changes_nothing() {
    let mut engine = member(3, &[1, 2, 3], standard());
    let vote = engine.vote();
    let mut probe = msg(9, 3, MessageBody::Probe(Probe { seq: 4, asker_node: None }));
    probe.envelope.cluster_id = 99;
    engine.on_message(probe);
    let outputs = engine.take_outputs();
    let replies = sent(&outputs);
    assert_eq!(replies.len(), 1, "{outputs:?}");
    assert_eq!(
        replies[0].envelope,
        Envelope { cluster_id: 99, from: NodeId(3), to: NodeId(9), from_incarnation: 0, to_incarnation: 0 }
    );
    assert!(matches!(replies[0].body, MessageBody::ProbeReply(r) if r.seq == 4 && r.cluster_id == CLUSTER));
    assert_eq!(engine.vote(), vote);
    assert_eq!(engine.cluster_id(), ClusterId::new(CLUSTER));
}

#[test]
fn a_probe_answer_is_handed_to_the_runtime() {
    let mut engine = member(1, &[1], standard());
    let mut answer = msg(
        4,
        1,
        MessageBody::ProbeReply(crate::message::ProbeReply { seq: 4, cluster_id: 99, incarnation: 0, leader: None }),
    );
    answer.envelope.cluster_id = 99;
    engine.on_message(answer);
    let outputs = engine.take_outputs();
    let expected = ClusterId::new(99);
    assert!(
        matches!(outputs.as_slice(), [Output::ProbeAnswered { from: NodeId(4), seq: 4, cluster_id, .. }] if *cluster_id == expected),
        "{outputs:?}"
    );
}

/// The leader field of a probe's answer, as `to` answers a probe from 9.
fn probe_answer_leader(engine: &mut TestEngine) -> Option<NodeId> {
    engine.on_message(msg(9, engine.id(), MessageBody::Probe(Probe { seq: 1, asker_node: None })));
    let outputs = engine.take_outputs();
    match sent(&outputs).as_slice() {
        [reply] => match &reply.body {
            MessageBody::ProbeReply(r) => r.leader,
            other => panic!("not a probe answer: {other:?}"),
        },
        other => panic!("one answer expected: {other:?}"),
    }
}

/// A probe's answer names a leader of the responder's cluster that it knows,
/// which an `initialize` elsewhere takes as "the cluster formed": none while
/// it is fresh or holds only initial entries; its leader once it follows
/// one; and still that leader once a vote for a candidate (which knows no
/// leader) replaced the leader's vote: its log holds the leader's entries.
#[test]
fn a_probe_answer_names_the_leader_the_node_knows() {
    let mut engine = fresh(standard());
    assert_eq!(probe_answer_leader(&mut engine), None, "fresh");

    let mut initialized = fresh(standard());
    initialized.initialize(Membership::new_uniform(super::tests::nodes(&[1, 2])).unwrap()).unwrap();
    initialized.take_outputs();
    assert_eq!(probe_answer_leader(&mut initialized), None, "only the initial entry");

    engine.on_message(leader_append(CLUSTER, NodeId(2)));
    engine.on_log_flushed(log_id(1, 1, 1));
    engine.take_outputs();
    assert_eq!(probe_answer_leader(&mut engine), Some(NodeId(1)), "follows leader 1");

    // restarted after voting for candidate 3 in term 5, which it saw win nothing
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        vote: Some(Vote::new(Term(5), NodeId(3))),
        entries: vec![membership_entry(&[1, 2, 3], &[1, 2, 3])],
        ..LogState::default()
    };
    let mut voted = Engine::new(NodeId(2), standard(), &state, 2, 0);
    voted.take_outputs();
    assert!(!voted.vote().committed);
    assert_eq!(probe_answer_leader(&mut voted), Some(NodeId(1)), "its log holds leader 1's entry");
}
