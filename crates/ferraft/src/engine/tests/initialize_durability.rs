//! `initialize` and durability: a node's first vote never outlives the
//! entry it campaigned with, so a node that comes back with a vote and no
//! log was never elected, and one that was is never initialized again.

use super::*;

fn fresh(id: u64) -> TestEngine {
    let state = LogState { cluster_id: ClusterId::new(CLUSTER), ..LogState::default() };
    Engine::new(NodeId(id), config(LeaderIdMode::Standard, false), &state, id, 0)
}

fn saved_votes(outputs: &[Output<u64, BasicNode>]) -> Vec<Vote> {
    outputs.iter().filter_map(|o| if let Output::SaveVote(v) = o { Some(*v) } else { None }).collect()
}

/// A vote saved before the initial entry is durable could survive a crash
/// that loses the entry: the node would come back elected once, with an
/// empty log, and look fresh to an operator (sim seeds 102011 and 109892 of
/// the WAL=1 MEMBERSHIP_STRESS=1 WIPE_DISKS=1 runs: that node led, the others
/// committed its entries, it was initialized again and forked the cluster).
#[test]
fn a_voter_campaigns_only_once_its_initial_entry_is_durable() {
    let mut engine = fresh(1);
    let entry = engine.initialize(uniform(&[1])).unwrap();
    engine.on_tick(10_000);
    let before = engine.take_outputs();
    assert!(saved_votes(&before).is_empty(), "a vote was saved before the initial entry was durable: {before:?}");
    assert!(!engine.is_leader());
    engine.on_log_flushed(entry);
    let after = engine.take_outputs();
    assert!(!saved_votes(&after).is_empty(), "{after:?}");
    assert!(engine.is_leader(), "a single voter leads once its entry is durable");
}

/// The same for a voter of several: it asks for no vote before it holds its
/// entry durably, then at once.
#[test]
fn one_of_several_voters_asks_for_votes_once_its_initial_entry_is_durable() {
    let mut engine = fresh(1);
    let entry = engine.initialize(uniform(&[1, 2, 3])).unwrap();
    let before = engine.take_outputs();
    assert!(sent(&before).iter().all(|m| !matches!(m.body, MessageBody::Vote(_))), "{before:?}");
    engine.on_log_flushed(entry);
    let after = engine.take_outputs();
    assert_eq!(sent(&after).iter().filter(|m| matches!(m.body, MessageBody::Vote(_))).count(), 2, "{after:?}");
}

/// A node that knows a leader was elected (its vote is committed) belongs
/// to a cluster whose log others may hold even when its own is empty (its
/// disk lost it): initializing it again could elect a second history.
#[test]
fn a_node_that_knew_a_leader_is_not_initialized_again_with_an_empty_log() {
    let mut committed = vote(1, 1);
    committed.committed = true;
    let state = LogState { cluster_id: ClusterId::new(CLUSTER), vote: Some(committed), ..LogState::default() };
    let mut engine: TestEngine = Engine::new(NodeId(1), config(LeaderIdMode::Standard, false), &state, 1, 0);
    let again = engine.initialize(uniform(&[1, 2, 3]));
    let refused = matches!(again, Err(crate::error::InitializeError::JoinedCluster { leader: NodeId(1), .. }));
    assert!(refused, "{again:?}");
    assert!(engine.take_outputs().iter().all(|o| !matches!(o, Output::AppendLog(_))));
}

/// A vote for a candidate, no leader known: a member initialized on its own
/// after voting for another initial member is still initialized.
#[test]
fn a_node_that_only_voted_is_still_initialized() {
    let state = LogState { cluster_id: ClusterId::new(CLUSTER), vote: Some(vote(1, 2)), ..LogState::default() };
    let mut engine: TestEngine = Engine::new(NodeId(1), config(LeaderIdMode::Standard, false), &state, 1, 0);
    assert!(engine.initialize(uniform(&[1, 2, 3])).is_ok());
}

/// A node that voted for another initial member while its own entry was
/// being written does not campaign against that candidate once the entry is
/// durable: the vote it gave says an election is under way (a campaign at
/// once, at a term above it, would depose the member it just elected).
#[test]
fn a_node_that_voted_before_its_entry_was_durable_does_not_campaign_at_the_flush() {
    let mut engine = fresh(1);
    let entry = engine.initialize(uniform(&[1, 2, 3])).unwrap();
    engine.on_message(msg(3, 1, vote_request(1, 3, Some(log_id(0, 3, 1)))));
    assert_eq!(granted(&engine.take_outputs()), Some(true));
    engine.on_log_flushed(entry);
    let after = engine.take_outputs();
    assert!(saved_votes(&after).is_empty(), "campaigned against the candidate it voted for: {after:?}");
    assert_eq!(engine.vote(), vote(1, 3));
}

/// The same for a node that a leader reached first: the leader's entries
/// replaced its own, and their flush does not start a campaign against it.
#[test]
fn a_node_that_follows_a_leader_does_not_campaign_when_the_leaders_entries_are_durable() {
    let mut engine = fresh(1);
    engine.initialize(uniform(&[1, 2, 3])).unwrap();
    let leaders = Entry { log_id: log_id(0, 3, 1), payload: EntryPayload::Membership(uniform(&[1, 2, 3])) };
    let append = AppendEntries {
        vote: Vote::new_committed(Term(1), NodeId(3)),
        prev_log_id: None,
        entries: vec![leaders],
        committed: None,
        seq: 1,
        leader_node: None,
    };
    engine.on_message(msg(3, 1, MessageBody::Append(append)));
    assert_eq!(engine.log().last_log_id(), Some(log_id(0, 3, 1)), "the leader's entry replaced ours");
    engine.take_outputs();
    engine.on_log_flushed(log_id(0, 3, 1));
    let after = engine.take_outputs();
    assert!(saved_votes(&after).is_empty(), "campaigned against the leader it follows: {after:?}");
    assert_eq!(engine.current_leader(), Some(NodeId(3)));
}

/// An election asked for by the application (`Raft::trigger_elect`, as
/// right after `initialize`) waits for the initial entry like the timer's:
/// a single voter would otherwise save a vote, lead, and could come back
/// from a crash having led with an empty log, which `initialize` refuses.
#[test]
fn an_election_asked_for_before_the_initial_entry_is_durable_saves_no_vote() {
    let mut engine = fresh(1);
    let entry = engine.initialize(uniform(&[1])).unwrap();
    engine.take_outputs();
    engine.elect_now();
    let before = engine.take_outputs();
    assert!(saved_votes(&before).is_empty(), "a vote was saved before the initial entry was durable: {before:?}");
    assert!(!engine.is_leader());
    engine.on_log_flushed(entry);
    assert!(engine.is_leader(), "it leads once the entry is durable");
}

/// Nor does a learner campaign when asked: it is no voter.
#[test]
fn a_learner_asked_to_elect_does_not_campaign() {
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        entries: vec![membership_entry(&[1, 2], &[1, 2, 3])],
        ..LogState::default()
    };
    let mut engine: TestEngine = Engine::new(NodeId(3), config(LeaderIdMode::Standard, false), &state, 3, 0);
    engine.take_outputs();
    engine.elect_now();
    let outputs = engine.take_outputs();
    assert!(saved_votes(&outputs).is_empty(), "{outputs:?}");
}

fn uniform(ids: &[u64]) -> Membership<BasicNode> {
    Membership::new_uniform(nodes(ids)).unwrap()
}
