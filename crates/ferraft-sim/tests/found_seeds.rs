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

/// Node 5 needed the vote of node 4, whose log lagged so far that it still
/// counted removed node 3 as a voter and granted it every new term; node 5
/// ignored node 3's requests and learned each term one round late, and no
/// leader was elected for 20 s (liveness). Seeds 1418, 2806 (forward-heavy,
/// wiped disks), 7307 (forward-heavy) and 9927 (wiped disks) found bugs under
/// the schedule of af15595 only: their scripted tests in `tests/engine_bugs.rs`,
/// the engine's tests and the checker's tests pin them.
#[test]
fn seed_3477_of_the_membership_stress_runs_a_candidate_learns_the_terms_a_removed_node_takes() {
    passes_with(SimOptions { membership_stress: true, ..SimOptions::new(3_477) });
}

/// A node that an uncommitted membership demoted (or removed) held it alone
/// and restarted with a saved commit point lagging the joint entry before
/// it: it never campaigned, and the others, needing its vote, were refused
/// (liveness). Also seeds 21978 and 31048, and 12 more in 0..40000, under
/// the schedule of c822948; the scripted tests in `tests/engine_bugs.rs` and
/// the engine's `campaign_rights` tests pin it.
#[test]
fn seed_22167_of_the_wal_membership_stress_runs_a_node_holding_its_own_demotion_campaigns() {
    passes_with(SimOptions { wal: true, membership_stress: true, ..SimOptions::new(22_167) });
}

/// Power went inside a leader's snapshot install on a node whose log lacked
/// the snapshot's last entry; the WAL's recovery finished the install (the
/// log went, as the install would have dropped it) and the checker took the
/// durable entries gone for lost ones. A checker fix (also seeds 513, and
/// 26878 of the membership-stress runs with WAL=1).
#[test]
fn seed_1136_of_the_wal_lease_stress_runs_a_finished_interrupted_install_loses_no_entry() {
    passes_with(SimOptions { wal: true, lease_stress: true, ..SimOptions::new(1_136) });
}

/// Leader 3 proposed the joint config [{1},{1,4}], which leaves it out, and
/// led on to commit its exit; snapshots on every node then purged entry 194,
/// the last membership that named node 3, so neither node 3 (in its
/// heartbeats) nor its followers knew its address, and no acknowledgement
/// reached it: nothing committed for 20 s (liveness). The log now keeps the
/// descriptors of nodes only purged memberships named.
#[test]
fn seed_600386_of_the_wal_runs_a_leader_left_out_of_its_config_keeps_its_address() {
    passes_with(SimOptions { wal: true, ..SimOptions::new(600_386) });
}

/// A checker fix: leader 4 of term 2, cut off, was deposed by leader 1's
/// term-3 append, which also carried leader 1's commit point; the checker
/// took the commit the node learned as a follower in that call for one it
/// made as leader, and judged it by the joint config in its own log (leader
/// 1 had since reverted that config and committed under the old one).
#[test]
fn seed_800210_of_the_wal_forward_heavy_wiped_runs_a_deposed_leader_commits_as_a_follower() {
    passes_with(SimOptions { wal: true, forward_heavy: true, wipe_disks: true, ..SimOptions::new(800_210) });
}

/// Voter 3 knew the leader's commit past entries it had not synced, and a
/// snapshot chunk ending at one of them came: it answered "held" at once,
/// crashed, and came back without them. The leader, told they were held,
/// saw the log go backwards and stopped replicating to it, and the joint
/// config [{1,2,3,4},{1,3}] that needed it never committed (liveness). A
/// follower now says a snapshot is held only once the entries it covers
/// are durable here.
#[test]
fn seed_1304899_of_the_forward_heavy_runs_a_snapshot_is_held_only_once_durable() {
    passes_with(SimOptions { forward_heavy: true, ..SimOptions::new(1_304_899) });
}

/// A prepare {1} -> {1} dropping learner 2 was aborted (leaving {1} with
/// learner 2); a prepare {1} -> {1} keeping 2 was then answered with the
/// aborted prepare's index, taken for a repeat whose commit had left what
/// was in force. A repeat now has to be the same request, and what is in
/// force what its commit leaves.
#[test]
fn seed_3403094_of_the_wal_wiped_membership_stress_runs_an_abort_is_no_commit_of_another_prepare() {
    passes_with(SimOptions { wal: true, wipe_disks: true, membership_stress: true, ..SimOptions::new(3_403_094) });
}

/// With change ids on: a repeat of "remove voter 1" came while the first
/// call under its id was still queued; the first call was proposed,
/// committed and answered before the repeat's turn, and the repeat was then
/// planned again against the new membership and answered "node 1 is not a
/// member". A queued repeat now follows what its first call proposed, also
/// once that is only in the log.
#[test]
fn seed_56_with_change_ids_a_queued_repeat_follows_its_first_call_after_it_finished() {
    passes_with(SimOptions { change_ids: true, ..SimOptions::new(56) });
}

/// With change ids on: the change's entry was the membership the log kept
/// in force at the purge point; a different change under its id was taken
/// for a repeat (see the engine test
/// `a_change_kept_as_the_membership_in_force_is_told_from_another_under_its_id`).
#[test]
fn seed_2_with_change_ids_a_reused_id_is_refused_after_a_purge() {
    passes_with(SimOptions { change_ids: true, ..SimOptions::new(2) });
}

/// With change ids on: leader 1 refused a call under "c1" ("the change
/// leaves no voter"); another leader took a call under the id and it
/// committed; leader 1, leading again, still reported the change failed
/// from its remembered refusal. A refusal now yields to the log.
#[test]
fn seed_354_with_change_ids_a_remembered_refusal_yields_to_the_committed_change() {
    passes_with(SimOptions { change_ids: true, ..SimOptions::new(354) });
}
