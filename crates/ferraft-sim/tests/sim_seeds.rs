//! The CI seed set: many seeded runs of the simulator, each checked after every
//! step, for liveness once faults stop, and for linearizability at the end.
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0 and
//! 500), `FERRAFT_SIM_TRACE=1` prints every event (use with one seed).

use ferraft_sim::seed_sets::run_set;
use ferraft_sim::{run_seed, RunStats, SimOptions};

/// Issue 17: today's engine fails the membership answer check on 52 of the
/// 500 CI seeds (see `tests/membership_answers.rs`); on again once fixed.
const CHECK_MEMBERSHIP_ANSWERS: bool = true;

#[test]
fn sim_seeds() {
    let run = run_set(500, |seed, trace| {
        run_seed(&SimOptions { trace, check_membership_answers: CHECK_MEMBERSHIP_ANSWERS, ..SimOptions::new(seed) })
    });
    let sum = |f: fn(&RunStats) -> usize| run.sum(f);
    run.report(
        "ferraft-sim",
        &format!(
            "{} writes, {} reads, {} leaders, {} crashes, {} memberships committed, {} snapshots installed, \
             {} messages",
            sum(|s| s.writes),
            sum(|s| s.reads),
            sum(|s| s.leaders),
            sum(|s| s.crashes),
            sum(|s| s.memberships),
            sum(|s| s.snapshots_installed),
            sum(|s| s.delivered),
        ),
    );
}
