//! Compare-and-set (issue 19): seeded runs in which some client writes are
//! compare-and-sets of the value the node they reach shows, checked for
//! linearizability with a search per key (`linearizability::check`), with
//! every other check of the CI set on.
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0
//! and 100).

use ferraft_sim::seed_sets::{assert_caught_by, caught, run_set};
use ferraft_sim::{run_seed, Fault, SimOptions};

#[test]
fn histories_with_compare_and_set_are_linearizable() {
    let run = run_set(100, |seed, trace| run_seed(&SimOptions { cas: true, trace, ..SimOptions::new(seed) }));
    run.report("compare-and-set", &format!("{} writes", run.sum(|s| s.writes)));
}

/// The check has teeth: a KV that writes a compare-and-set whatever the
/// register holds (answering as if it checked) is caught.
#[test]
fn a_cas_that_writes_whatever_the_register_holds_is_caught() {
    let bug = "a compare-and-set that ignores its expectation";
    let run = |seed| run_seed(&SimOptions { cas: true, fault: Fault::CasAlwaysWrites, ..SimOptions::new(seed) });
    let failure = caught(bug, 0..40, run, |_| true);
    assert_caught_by(bug, &failure, &["linearizab"]);
}
