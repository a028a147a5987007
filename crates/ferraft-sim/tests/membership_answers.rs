//! Membership answers under heavy churn, with leader transfers right after
//! changes so leaders change in the middle of them: every request answered,
//! every answer true (issue 17; the checker is `invariants::MembershipAnswers`).
//!
//! Replay one seed with a trace: `FERRAFT_SIM_START=<seed> FERRAFT_SIM_TRACE=1
//! cargo test -p ferraft-sim --test membership_answers -- --include-ignored --nocapture`.

use ferraft_sim::invariants::AnswerTally;
use ferraft_sim::{run_seed, Failure, RunStats, SimOptions};

/// The fixed seed set.
const SEEDS: std::ops::Range<u64> = 0..100;

/// Runs the seed set (or the one seed `FERRAFT_SIM_START` names) under membership stress.
fn run_stressed(check_membership_answers: bool) -> Vec<Result<RunStats, Failure>> {
    let trace = std::env::var("FERRAFT_SIM_TRACE").is_ok_and(|v| v == "1");
    let seeds: Vec<u64> = match std::env::var("FERRAFT_SIM_START").ok().and_then(|v| v.parse().ok()) {
        Some(seed) => vec![seed],
        None => SEEDS.collect(),
    };
    let options =
        |seed| SimOptions { membership_stress: true, check_membership_answers, trace, ..SimOptions::new(seed) };
    seeds.into_iter().map(|seed| run_seed(&options(seed))).collect()
}

#[test]
fn membership_requests_are_answered_truthfully_under_churn_and_leader_changes() {
    let failed: Vec<Failure> = run_stressed(true).into_iter().filter_map(Result::err).collect();
    for failure in &failed {
        eprintln!("{failure}");
    }
    assert!(failed.is_empty(), "{} seeds failed; first: {}", failed.len(), failed[0]);
}

/// The seed set must produce the cases the checker exists for, or passing it means little.
#[test]
fn the_stressed_seeds_exercise_every_kind_of_answer() {
    let mut tally = AnswerTally::default();
    let mut leaders = 0;
    for result in run_stressed(false) {
        let stats = result.unwrap_or_else(|failure| panic!("{failure}"));
        tally += stats.membership_answers;
        leaders += stats.leaders;
    }
    println!("{tally:?}, {leaders} leaders");
    assert!(tally.succeeded > 0 && tally.unknown > 0, "{tally:?}");
    assert!(tally.nothing_happened_attributed > 0, "no refusal could be checked against the log: {tally:?}");
}

/// Issue 23, stuck changes end: across the stressed seeds (crashes and
/// partitions among them, `joint_exit_timeout_ms` from 600 ms to 30 s) some
/// joint configs do not get their new voters in time and are rolled back;
/// every safety checker and the answer checker pass on those same runs.
#[test]
fn joint_configs_whose_new_voters_do_not_answer_are_rolled_back_safely() {
    let mut tally = AnswerTally::default();
    for result in run_stressed(true) {
        tally += result.unwrap_or_else(|failure| panic!("{failure}")).membership_answers;
    }
    assert!(tally.rolled_back > 0, "no stuck joint config was rolled back: {tally:?}");
    assert!(tally.partial >= tally.rolled_back, "{tally:?}");
}
