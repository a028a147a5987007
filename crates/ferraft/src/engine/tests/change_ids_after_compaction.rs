//! A change id outlives the log entries that carried it: the leader that
//! purged them behind a snapshot still answers a repeat with the first
//! outcome, and knows the change's status.

use super::*;
use crate::engine::ChangeStatus;
use crate::error::ChangeMembershipError;
use crate::membership::ChangeGuard;

fn guard(change_id: &str) -> ChangeGuard {
    ChangeGuard { change_id: Some(change_id.to_string()), expect_membership_index: None }
}

fn answers(engine: &mut TestEngine) -> Vec<(u64, Result<StoredMembership<BasicNode>, String>)> {
    engine
        .take_outputs()
        .into_iter()
        .filter_map(|o| match o {
            Output::MembershipDone { request_id, result } => Some((request_id, result.map_err(|e| format!("{e:?}")))),
            _ => None,
        })
        .collect()
}

/// [`leader_of`] that purges its log up to the snapshot point.
fn compacting_leader(configs: &[&[u64]], all: &[u64]) -> TestEngine {
    let mut engine = leader_of(configs, all);
    engine.config = Arc::new(Config { purge_keep_entries: 0, catch_up_retain_entries: 0, ..(*engine.config).clone() });
    engine
}

/// Runs `change` under `id` to its committed end; its answer.
fn run(
    engine: &mut TestEngine,
    change: ChangeMembers<BasicNode>,
    retain: bool,
    id: &str,
) -> StoredMembership<BasicNode> {
    engine.take_outputs();
    engine.change_membership_guarded(1, change, retain, guard(id)).unwrap();
    commit_everywhere(engine);
    commit_everywhere(engine);
    match &answers(engine)[..] {
        [(1, Ok(m))] => m.clone(),
        other => panic!("{other:?}"),
    }
}

/// A snapshot of everything so far is saved: the log is purged up to `upto`.
fn compact(engine: &mut TestEngine, upto: LogId) {
    engine.on_snapshot_saved(Some(upto));
    assert_eq!(engine.log().purged(), Some(upto));
}

#[test]
fn a_compacted_removal_is_not_run_again_by_its_retry() {
    let mut engine = compacting_leader(&[&[1, 2, 3]], &[1, 2, 3]);
    let first = run(&mut engine, ChangeMembers::RemoveVoters(set(&[3])), true, "x");
    engine.change_membership(2, ChangeMembers::AddVoterIds(set(&[3])), false).unwrap();
    commit_everywhere(&mut engine);
    commit_everywhere(&mut engine);
    let committed = engine.committed().unwrap();
    compact(&mut engine, committed);
    engine.take_outputs();
    let last = engine.log().last_log_id();
    engine.change_membership_guarded(3, ChangeMembers::RemoveVoters(set(&[3])), true, guard("x")).unwrap();
    assert_eq!(engine.log().last_log_id(), last, "nothing proposed");
    assert!(engine.effective().unwrap().is_voter(NodeId(3)));
    assert_eq!(answers(&mut engine), vec![(3, Ok(first.clone()))]);
    assert_eq!(engine.change_status("x"), ChangeStatus::Committed { membership: first });
    // another change under the id is still told apart
    let other = engine.change_membership_guarded(4, ChangeMembers::RemoveVoters(set(&[3])), false, guard("x"));
    assert!(matches!(other, Err(ChangeMembershipError::ChangeIdReused { .. })), "{other:?}");
    let other = engine.change_membership_guarded(5, ChangeMembers::RemoveVoters(set(&[2])), true, guard("x"));
    assert!(matches!(other, Err(ChangeMembershipError::ChangeIdReused { .. })), "{other:?}");
    assert_eq!(engine.log().last_log_id(), last, "nothing proposed");
}

#[test]
fn a_compacted_joint_change_answers_with_its_exit() {
    let mut engine = compacting_leader(&[&[1, 2, 3]], &[1, 2, 3, 4, 5]);
    let change = ChangeMembers::ReplaceAllVoters(set(&[1, 4, 5]));
    let exit = run(&mut engine, change.clone(), false, "j");
    let joint = engine.log().membership_at(index_of(exit.log_id).prev()).unwrap().clone();
    assert!(joint.membership.is_joint());
    // a later change, then a snapshot past all of them
    run(&mut engine, ChangeMembers::AddNodes(nodes(&[6])), false, "later");
    let committed = engine.committed().unwrap();
    compact(&mut engine, committed);
    assert!(engine.log().memberships_after(LogIndex(0)).all(|m| m.log_id > exit.log_id));
    engine.take_outputs();
    let last = engine.log().last_log_id();
    engine.change_membership_guarded(2, change.clone(), false, guard("j")).unwrap();
    assert_eq!(engine.log().last_log_id(), last, "nothing proposed");
    assert_eq!(answers(&mut engine), vec![(2, Ok(exit.clone()))]);
    assert_eq!(engine.change_status("j"), ChangeStatus::Committed { membership: exit });
    let other = engine.change_membership_guarded(3, ChangeMembers::ReplaceAllVoters(set(&[1, 4])), false, guard("j"));
    assert!(matches!(other, Err(ChangeMembershipError::ChangeIdReused { .. })), "{other:?}");
}

/// Simulator seed 2 (change ids on): the change's entry was the membership
/// in force at the purge point, which the log keeps while its entry is
/// purged; the membership before it was gone, so a different change under
/// the id was taken for a repeat and answered with its success.
#[test]
fn a_change_kept_as_the_membership_in_force_is_told_from_another_under_its_id() {
    let mut engine = compacting_leader(&[&[1, 2, 3]], &[1, 2, 3]);
    let moved = ChangeMembers::SetNodes([(NodeId(1), BasicNode::new("n1-moved"))].into());
    let first = run(&mut engine, moved, true, "s");
    let committed = engine.committed().unwrap();
    compact(&mut engine, committed);
    assert_eq!(engine.membership().unwrap().log_id, first.log_id, "its entry is the one in force");
    assert!(first.log_id <= engine.log().purged(), "and purged");
    engine.take_outputs();
    let last = engine.log().last_log_id();
    let reuse = ChangeMembers::SetNodes([(NodeId(2), BasicNode::new("n2-moved"))].into());
    let other = engine.change_membership_guarded(3, reuse, true, guard("s"));
    assert!(matches!(other, Err(ChangeMembershipError::ChangeIdReused { .. })), "{other:?}");
    assert_eq!(engine.log().last_log_id(), last, "nothing proposed");
}
