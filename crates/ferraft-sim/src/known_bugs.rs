//! Engine bugs the simulator found, now fixed, and how it recognizes them.
//!
//! A liveness failure showing the symptom of one of these bugs starts with
//! [`KNOWN_BUG_PREFIX`] and names it, so a regression is diagnosed at once.
//! `sim_seeds` fails on such seeds like on any other (while a bug was open it
//! excused them: see [`is_known`]); `tests/engine_bugs.rs` pins each bug as a
//! scripted scenario. The stale lease read (fixed in 5c737ac) has no symptom
//! recognizer: a stale read is a linearizability failure.

use ferraft::LogId;

use crate::disk::SimDisk;

/// Starts the message of a failure that shows a known engine bug's symptom.
pub const KNOWN_BUG_PREFIX: &str = "looks like a known engine bug again: ";

/// A deadlock after a leader demotes itself: see `tests/engine_bugs.rs`.
pub const DEMOTED_BY_UNCOMMITTED_MEMBERSHIP: &str = "demoted-by-uncommitted-membership deadlock";

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

/// Whether a failure message was attributed to a known engine bug (for runs
/// against an engine that still has them, e.g. to bisect).
pub fn is_known(message: &str) -> bool {
    message.starts_with(KNOWN_BUG_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_log_id as id;
    use crate::model::Put;
    use ferraft::{BasicNode, Entry, EntryPayload, Incarnation};

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
}
