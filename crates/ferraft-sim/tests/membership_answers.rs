//! Membership answers under heavy churn, with leader transfers right after
//! changes so leaders change in the middle of them: every request answered,
//! every answer true (issue 17; the checker is `invariants::MembershipAnswers`).
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0
//! and 100); replay one seed with a trace with `FERRAFT_SIM_START=<seed>
//! FERRAFT_SIM_SEEDS=1 FERRAFT_SIM_TRACE=1 cargo test -p ferraft-sim --test
//! membership_answers -- --nocapture`.

use std::sync::OnceLock;

use ferraft_sim::invariants::AnswerTally;
use ferraft_sim::seed_sets::{run_set, SetRun};
use ferraft_sim::{run_seed, RunStats, SimOptions};

/// The seed set under membership stress, run once per test binary for each
/// setting of the answer check (two tests read the checked run).
fn run_stressed(check_membership_answers: bool) -> &'static SetRun<RunStats> {
    static RUNS: [OnceLock<SetRun<RunStats>>; 2] = [OnceLock::new(), OnceLock::new()];
    RUNS[usize::from(check_membership_answers)].get_or_init(|| {
        run_set(100, |seed, trace| {
            run_seed(&SimOptions { membership_stress: true, check_membership_answers, trace, ..SimOptions::new(seed) })
        })
    })
}

/// The answers of every seed that passed, added up.
fn tally(run: &SetRun<RunStats>) -> AnswerTally {
    let mut tally = AnswerTally::default();
    for stats in &run.stats {
        tally += stats.membership_answers;
    }
    tally
}

#[test]
fn membership_requests_are_answered_truthfully_under_churn_and_leader_changes() {
    let run = run_stressed(true);
    run.report("membership answers", &format!("{:?}", tally(run)));
}

/// The seed set must produce the cases the checker exists for, or passing it means little.
#[test]
fn the_stressed_seeds_exercise_every_kind_of_answer() {
    let run = run_stressed(false);
    let (tally, leaders) = (tally(run), run.sum(|s| s.leaders));
    run.report("membership stress", &format!("{tally:?}, {leaders} leaders"));
    assert!(tally.succeeded > 0 && tally.unknown > 0, "{tally:?}");
    assert!(tally.nothing_happened_attributed > 0, "no refusal could be checked against the log: {tally:?}");
}

/// Issue 23, stuck changes end: across the stressed seeds (crashes and
/// partitions among them, `joint_exit_timeout_ms` from 600 ms to 30 s) some
/// joint configs do not get their new voters in time and are rolled back;
/// every safety checker and the answer checker pass on those same runs.
#[test]
fn joint_configs_whose_new_voters_do_not_answer_are_rolled_back_safely() {
    let run = run_stressed(true);
    let tally = tally(run);
    run.report("membership answers", &format!("{tally:?}"));
    assert!(tally.rolled_back > 0, "no stuck joint config was rolled back: {tally:?}");
    assert!(tally.partial >= tally.rolled_back, "{tally:?}");
}
