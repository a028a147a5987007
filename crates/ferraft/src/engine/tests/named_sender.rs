//! Every request a receiver must answer names its sender's address: a
//! receiver with no data (or whose memberships never named the sender) has
//! no other way to reach it.

use super::*;

/// Node 1 voted in the committed `{1,2,3}` while the uncommitted `[{2,3}]`
/// drops it: it still campaigns (a voter of the committed config), and voters
/// that never knew its address must be able to answer it.
#[test]
fn a_candidate_an_uncommitted_config_drops_still_names_itself() {
    let dropped = Membership::new(vec![set(&[2, 3])], nodes(&[2, 3])).unwrap();
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        committed: Some(log_id(1, 1, 1)),
        entries: vec![
            membership_entry(&[1, 2, 3], &[1, 2, 3]),
            Entry { log_id: log_id(1, 2, 2), payload: EntryPayload::Membership(dropped) },
        ],
        ..LogState::default()
    };
    let mut engine = Engine::new(NodeId(1), config(LeaderIdMode::Standard, false), &state, 1, 0);
    engine.take_outputs();
    engine.on_tick(10_000);
    let outputs = engine.take_outputs();
    let requests: Vec<_> = sent(&outputs)
        .into_iter()
        .filter_map(|m| match &m.body {
            MessageBody::Vote(request) => Some(request.candidate_node.clone()),
            _ => None,
        })
        .collect();
    assert!(!requests.is_empty(), "node 1 campaigns as a voter of the committed config");
    assert!(requests.iter().all(|node| *node == Some(BasicNode::new("n1"))), "{requests:?}");
}
