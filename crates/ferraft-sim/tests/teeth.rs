//! The checkers have teeth: each fault the simulator can inject into its own
//! layer breaks an assumption Raft relies on, and a run of the CI seed set with
//! the fault on must be reported as failing by the expected checker.
//!
//! The engine's own test-only switches (`Config::broken_rule`) each turn off
//! one protocol rule (one breaks the runtime's node host instead); the CI
//! seed set must catch every one.

use ferraft::config::BrokenRule;
use ferraft_sim::seed_sets::{self, assert_caught_by};
use ferraft_sim::{run_seed, Failure, Fault, SimOptions};

/// The CI seed set (`tests/sim_seeds.rs`), where every planted bug must be caught.
const CI_SEEDS: std::ops::Range<u64> = 0..500;

/// The faults below break the protocol itself; a wrong membership answer is
/// then only a symptom, and the answer check (with its own teeth test at the
/// end) would report it before the checker each test is about.
const CHECK_MEMBERSHIP_ANSWERS: bool = false;

/// Runs CI seeds with `fault` until one fails; the failure must name one of `rules`.
fn caught(fault: Fault, rules: &[&str]) -> Failure {
    let options =
        |seed| SimOptions { fault, check_membership_answers: CHECK_MEMBERSHIP_ANSWERS, ..SimOptions::new(seed) };
    let failure = seed_sets::caught(&format!("{fault:?}"), CI_SEEDS, |seed| run_seed(&options(seed)), |_| true);
    assert_caught_by(&format!("{fault:?}"), &failure, rules);
    failure
}

#[test]
fn a_disk_that_loses_votes_is_caught() {
    caught(
        Fault::LoseVote,
        &["election safety", "committed entries never lost", "leader completeness", "log matching"],
    );
}

#[test]
fn a_lying_fsync_is_caught() {
    caught(Fault::LyingFsync, &["membership safety", "committed entries never lost", "leader completeness"]);
}

/// A forged ack may also stall the cluster first (a leader then sees the real
/// follower's log "go backwards" and stops replicating to it): only a safety
/// failure counts, as for a wiped node counted as its old self. Under the
/// schedule of 0e291e6, CI seed 2 stalls before any seed breaks safety.
#[test]
fn acks_delivered_under_another_sender_are_caught() {
    let fault = Fault::ForgeAckSender;
    let rules = ["membership safety", "committed entries never lost"];
    let options =
        |seed| SimOptions { fault, check_membership_answers: CHECK_MEMBERSHIP_ANSWERS, ..SimOptions::new(seed) };
    let is_safety = |failure: &Failure| rules.iter().any(|r| failure.message.contains(r));
    // panics when no CI seed breaks safety
    seed_sets::caught("ForgeAckSender", CI_SEEDS, |seed| run_seed(&options(seed)), is_safety);
}

#[test]
fn reads_that_skip_read_index_are_caught() {
    caught(Fault::StaleReads, &["linearizability"]);
}

#[test]
fn a_cluster_that_never_recovers_fails_liveness() {
    caught(Fault::NeverHeals, &["liveness"]);
}

const SAFETY: &[&str] = &[
    "election safety",
    "membership safety",
    "committed entries never lost",
    "leader completeness",
    "log matching",
    "state machine safety",
    "linearizab",
];

#[test]
fn committing_with_one_config_of_a_joint_membership_is_caught() {
    caught(Fault::Broken(BrokenRule::CommitWithOneConfig), SAFETY);
}

#[test]
fn proposing_a_membership_before_the_previous_commits_is_caught() {
    caught(Fault::Broken(BrokenRule::ProposeBeforeCommit), SAFETY);
}

#[test]
fn skipping_the_old_new_intersect_step_is_caught() {
    caught(Fault::Broken(BrokenRule::SkipOldNewIntersect), SAFETY);
}

#[test]
fn granting_two_votes_in_one_term_is_caught() {
    caught(Fault::Broken(BrokenRule::DoubleVote), SAFETY);
}

/// Runs CI seeds with the answer check on and `fault` until one fails that
/// passes without the fault (while the engine still fails the check on some
/// seeds, those say nothing about the fault); the failure must name `rule`.
fn caught_by_answers(fault: Fault, rule: &str) -> Failure {
    let options = |seed, fault| SimOptions { fault, check_membership_answers: true, ..SimOptions::new(seed) };
    let passes_without_fault = |failure: &Failure| run_seed(&options(failure.seed, Fault::None)).is_ok();
    let run = |seed| run_seed(&options(seed, fault));
    let failure = seed_sets::caught(&format!("{fault:?}"), CI_SEEDS, run, passes_without_fault);
    assert_caught_by(&format!("{fault:?}"), &failure, &[rule]);
    failure
}

#[test]
fn answering_a_change_done_without_making_it_is_caught() {
    caught_by_answers(Fault::Broken(BrokenRule::AnswerWithoutProposing), "membership answers");
}

/// A planted bug in the runtime's node host, not the engine: a write is
/// answered with whichever write is applied next. The simulator runs the
/// runtime's own host, so the bug shows in its write replies.
#[test]
fn a_write_reply_matched_to_the_wrong_index_is_caught() {
    caught(Fault::Broken(BrokenRule::AnswerWriteByPosition), &["write answers"]);
}

/// A follower that commits on its leader's flush notice although the two are
/// not a quorum (five voters, or a joint membership).
#[test]
fn committing_on_the_leaders_flush_without_a_quorum_is_caught() {
    caught(Fault::Broken(BrokenRule::FlushCommitWithoutQuorum), SAFETY);
}

/// The same planted bug, caught where it happens: the follower's commit is
/// checked against the simulated disks, as a leader's is.
#[test]
fn a_follower_commit_without_a_durable_quorum_is_caught_when_made() {
    caught(Fault::Broken(BrokenRule::FlushCommitWithoutQuorum), &["on its leader's flush notice"]);
}
