//! Seeds of the large release runs that found bugs, pinned one by one so the
//! fixes stay fixed (the CI set covers seeds 0-499 only).

use ferraft_sim::{run_seed, SimOptions};

fn passes(seed: u64) {
    let options = SimOptions { check_membership_answers: true, ..SimOptions::new(seed) };
    if let Err(failure) = run_seed(&options) {
        panic!("{failure}");
    }
}

/// A follower's "installed" reply was lost: the leader sent it nothing for
/// 100 election timeouts, and the joint config that needed it never committed.
#[test]
fn seed_14190_a_lost_installed_reply_does_not_strand_the_follower() {
    passes(14_190);
}

/// A deposed leader's explicit joint step at index 103 was answered committed
/// when the new leader's own entry at 103 committed.
#[test]
fn seed_32046_a_step_is_answered_committed_only_for_its_own_entry() {
    passes(32_046);
}

/// A wiped node, caught up as a learner only as far as an old committed
/// config that made its old self the only voter, then removed, elected itself
/// alone after a restart (the committed-config campaign rule ignored
/// incarnations).
#[test]
fn seed_23304_of_the_wiped_disk_runs_a_wiped_node_never_elects_itself_as_its_old_self() {
    let options = SimOptions { wipe_disks: true, ..SimOptions::new(23_304) };
    if let Err(failure) = run_seed(&options) {
        panic!("{failure}");
    }
}

/// A wiped node, readmitted, promoted and made leader, restarted and
/// campaigned; a voter lagging behind the entry recording its new
/// incarnation granted its votes but addressed each reply to its old
/// incarnation, and the candidate dropped them: no leader for the rest of
/// the run (liveness).
#[test]
fn seed_21206_of_the_wiped_disk_runs_a_lagging_voters_grant_reaches_the_readmitted_candidate() {
    let options = SimOptions { wipe_disks: true, ..SimOptions::new(21_206) };
    if let Err(failure) = run_seed(&options) {
        panic!("{failure}");
    }
}

/// A learner added to a joint config (its incarnation recorded) was not
/// attributed to its AddNodes request, but to a ReplaceAllVoters request
/// whose goal the joint config held: "nothing happened" looked false. A
/// checker fix (attribution), not an engine one.
#[test]
fn seed_15238_a_learner_added_to_a_joint_config_is_its_add_nodes_requests_proposal() {
    passes(15_238);
}

/// Runs `options`, panicking with the failure.
fn passes_with(options: SimOptions) {
    if let Err(failure) = run_seed(&options) {
        panic!("{failure}");
    }
}

/// A voter removed while cut off was wiped before it heard of its removal;
/// the leader rightly marked it reverted, then kept that mark when it was
/// re-added as a learner: nothing was sent to it and the joint config
/// promoting it never committed (labelled the stale-conflict bug, wrongly).
#[test]
fn seed_1418_of_the_forward_heavy_wiped_disk_runs_a_re_added_departing_node_is_replicated_to() {
    passes_with(SimOptions { forward_heavy: true, wipe_disks: true, ..SimOptions::new(1_418) });
}

/// A new leader promoted a readmitted learner under the old incarnation it
/// had heard before the readmission, not the one its log recorded; the
/// learner dropped every message and the joint config never committed.
#[test]
fn seed_2806_of_the_forward_heavy_wiped_disk_runs_a_promotion_records_the_readmitted_incarnation() {
    passes_with(SimOptions { forward_heavy: true, wipe_disks: true, ..SimOptions::new(2_806) });
}

/// A removal without retain was answered done when a concurrent removal with
/// retain left its joint config keeping the node as a learner.
#[test]
fn seed_7307_of_the_forward_heavy_runs_a_removal_is_not_answered_by_another_that_retains() {
    passes_with(SimOptions { forward_heavy: true, ..SimOptions::new(7_307) });
}

/// A stale leader of term 2 (check-quorum off) overwrote, on a learner still
/// in term 1, an entry the leader of term 4 had committed: allowed by Raft,
/// flagged by the truncation check. A checker fix, not an engine one.
#[test]
fn seed_9927_of_the_wiped_disk_runs_a_stale_leader_may_overwrite_a_later_commit_on_a_stale_node() {
    passes_with(SimOptions { wipe_disks: true, ..SimOptions::new(9_927) });
}
