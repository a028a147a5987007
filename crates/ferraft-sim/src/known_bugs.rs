//! Engine bugs the simulator found, now fixed, and how it recognizes them.
//!
//! A liveness failure showing the symptom of one of these bugs starts with
//! [`KNOWN_BUG_PREFIX`] and names it, so a regression is diagnosed at once.
//! `sim_seeds` fails on such seeds like on any other (while a bug was open it
//! excused them: see [`is_known`]); `tests/engine_bugs.rs` pins each bug as a
//! scripted scenario. The stale lease read (fixed in 5c737ac) has no symptom
//! recognizer: a stale read is a linearizability failure.

use ferraft::engine::Engine;
use ferraft::log_id::index_of;
use ferraft::{BasicNode, LogId};

use crate::disk::SimDisk;
use crate::model::Put;

/// Starts the message of a failure that shows a known engine bug's symptom.
pub const KNOWN_BUG_PREFIX: &str = "looks like a known engine bug again: ";

/// A deadlock after a leader demotes itself: see `tests/engine_bugs.rs`.
pub const DEMOTED_BY_UNCOMMITTED_MEMBERSHIP: &str = "demoted-by-uncommitted-membership deadlock";

/// The same deadlock where the demoted node holds the uncommitted membership
/// and restarted with a saved commit point lagging the entry before it, so it
/// does not know that entry committed either: see `tests/engine_bugs.rs`.
pub const DEMOTED_WITH_LAGGING_COMMIT_POINT: &str = "demoted-by-uncommitted-membership deadlock, commit point lagging";

/// Which demoted-node deadlock `engine` shows, if any: it is not a voter of
/// the membership in force, which it does not know committed, and it is a
/// voter of the last membership it knows committed
/// ([`DEMOTED_BY_UNCOMMITTED_MEMBERSHIP`]) or else of the entry before the
/// one in force ([`DEMOTED_WITH_LAGGING_COMMIT_POINT`]). Either way it
/// should campaign; a stall while one of these does not is the bug again.
pub fn demoted_deadlock_kind(engine: &Engine<Put, BasicNode>) -> Option<&'static str> {
    let id = engine.id();
    let in_force = engine.membership()?;
    if in_force.membership.is_voter(id) || engine.membership_committed() {
        return None;
    }
    let committed = engine.log().membership_at(index_of(engine.committed()));
    if committed.is_some_and(|m| m.membership.is_voter(id)) {
        return Some(DEMOTED_BY_UNCOMMITTED_MEMBERSHIP);
    }
    let before = engine.log().previous_membership();
    before.is_some_and(|m| m.membership.is_voter(id)).then_some(DEMOTED_WITH_LAGGING_COMMIT_POINT)
}

/// A leader stops replicating to a follower after a stale conflict reply: see `tests/engine_bugs.rs`.
pub const STALE_CONFLICT_MARKS_REVERTED: &str = "stale-conflict-reply marks follower reverted";

/// An initial member that crashes right after `initialize` keeps its vote but
/// loses its log, and then refuses `initialize`: see `tests/engine_bugs.rs`.
pub const INITIALIZE_NOT_DURABLE: &str = "initialize-not-durable-before-campaign";

/// Whether a leader's mark that a follower's log went backwards, the follower
/// having matched `matched`, shows the stale-conflict bug: the follower's
/// disk still holds `matched`, so its log did not go backwards. A follower
/// whose disk was wiped (or lost acknowledged writes) did go backwards and is
/// rightly marked; a stall after that is another matter (sim seed 1418 of the
/// forward-heavy runs with wiped disks was mislabelled this bug).
pub fn marks_a_log_that_did_not_go_backwards(matched: Option<LogId>, follower_disk: &SimDisk) -> bool {
    matched.is_some_and(|m| follower_disk.holds_now(m))
}

/// `(seed, bug)`: example seeds showing each bug with the engine of commit
/// 3fe6a88 (before the fixes in 0dc5c3d). Any change to the engine or to the
/// simulator's schedule moves a bug to other seeds, hence the scripted tests.
pub const KNOWN_ENGINE_BUG_SEEDS: &[(u64, &str)] = &[
    (137, DEMOTED_BY_UNCOMMITTED_MEMBERSHIP),
    (176, DEMOTED_BY_UNCOMMITTED_MEMBERSHIP),
    (219, DEMOTED_BY_UNCOMMITTED_MEMBERSHIP),
    (187, STALE_CONFLICT_MARKS_REVERTED),
    (307, STALE_CONFLICT_MARKS_REVERTED),
    (531, STALE_CONFLICT_MARKS_REVERTED),
    (2926, INITIALIZE_NOT_DURABLE),
];

/// Like [`KNOWN_ENGINE_BUG_SEEDS`], in the WAL=1 MEMBERSHIP_STRESS=1 runs
/// with the engine of commit c822948 (before the fix in `campaign_rights`).
pub const KNOWN_WAL_MEMBERSHIP_BUG_SEEDS: &[(u64, &str)] = &[
    (21978, DEMOTED_WITH_LAGGING_COMMIT_POINT),
    (22167, DEMOTED_WITH_LAGGING_COMMIT_POINT),
    (31048, DEMOTED_WITH_LAGGING_COMMIT_POINT),
];

/// Whether a failure message was attributed to a known engine bug (for runs
/// against an engine that still has them, e.g. to bisect).
pub fn is_known(message: &str) -> bool {
    message.starts_with(KNOWN_BUG_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_log_id as id;
    use ferraft::{Config, Entry, EntryPayload, Incarnation, LogState, Membership, NodeId};
    use std::collections::BTreeMap;
    use std::collections::BTreeSet;
    use std::sync::Arc;

    fn disk_holding(upto: u64) -> SimDisk<Put> {
        let mut disk = SimDisk::new(Incarnation::new(1));
        let entries: Vec<Entry<Put, BasicNode>> =
            (1..=upto).map(|i| Entry { log_id: id(1, 1, i), payload: EntryPayload::Blank }).collect();
        disk.append(&entries);
        disk.fsync(false);
        disk
    }

    #[test]
    fn a_follower_still_holding_what_it_matched_shows_the_stale_conflict_bug() {
        assert!(marks_a_log_that_did_not_go_backwards(Some(id(1, 1, 3)), &disk_holding(5)));
    }

    #[test]
    fn a_wiped_follower_marked_reverted_is_not_the_stale_conflict_bug() {
        let mut disk = disk_holding(5);
        disk.wipe(Incarnation::new(2));
        assert!(!marks_a_log_that_did_not_go_backwards(Some(id(1, 1, 3)), &disk));
        assert!(!marks_a_log_that_did_not_go_backwards(Some(id(1, 1, 3)), &SimDisk::<Put>::new(None)));
    }

    /// Node 2 after `[{1,2}]`, the joint `[{1,2},{1}]` and `[{1}] learners
    /// {2}`, knowing entries up to `committed` committed.
    fn demoted_node_2(committed: Option<u64>) -> Engine<Put, BasicNode> {
        let set = |ids: &[u64]| ids.iter().map(|i| NodeId(*i)).collect::<BTreeSet<_>>();
        let nodes = [1, 2].map(|i| (NodeId(i), BasicNode::new(format!("n{i}")))).into();
        let configs = [vec![set(&[1, 2])], vec![set(&[1, 2]), set(&[1])], vec![set(&[1])]];
        let entries = (1..)
            .zip(configs)
            .map(|(i, c)| Entry {
                log_id: id(1, 1, i),
                payload: EntryPayload::Membership(Membership::new(c, BTreeMap::clone(&nodes)).unwrap()),
            })
            .collect();
        let state = LogState { entries, committed: committed.map(|i| id(1, 1, i)), ..LogState::default() };
        Engine::new(NodeId(2), Arc::new(Config { cluster_id: 7, ..Config::default() }), &state, 2, 0)
    }

    #[test]
    fn a_demoted_node_is_told_apart_by_what_it_knows_committed() {
        assert_eq!(demoted_deadlock_kind(&demoted_node_2(None)), Some(DEMOTED_WITH_LAGGING_COMMIT_POINT));
        assert_eq!(demoted_deadlock_kind(&demoted_node_2(Some(1))), Some(DEMOTED_BY_UNCOMMITTED_MEMBERSHIP));
        assert_eq!(demoted_deadlock_kind(&demoted_node_2(Some(2))), Some(DEMOTED_BY_UNCOMMITTED_MEMBERSHIP));
        assert_eq!(demoted_deadlock_kind(&demoted_node_2(Some(3))), None, "its demotion committed: a learner");
    }
}
