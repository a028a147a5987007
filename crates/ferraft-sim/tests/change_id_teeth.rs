//! The change id checkers have teeth: with the engine ignoring change ids
//! when a change arrives (`BrokenRule::ForgetChangeIds`: repeats planned
//! again, reused ids not refused), a fixed set of seeds running the change id
//! workload must fail on a change id rule. Only seeds that pass without the
//! broken rule count (the workload is off by default while the library bugs
//! it found are open, and some seeds fail on those).

use ferraft::config::BrokenRule;
use ferraft_sim::seed_sets::{self, assert_caught_by};
use ferraft_sim::{run_seed, Failure, Fault, SimOptions};

const SEEDS: std::ops::Range<u64> = 0..200;

const RULES: &[&str] = &["change id at most once", "change id answers", "change status", "membership answers"];

#[test]
fn forgetting_change_ids_is_caught() {
    let fault = Fault::Broken(BrokenRule::ForgetChangeIds);
    let options =
        |seed, fault| SimOptions { fault, change_ids: true, membership_stress: true, ..SimOptions::new(seed) };
    let passes_without_fault = |failure: &Failure| run_seed(&options(failure.seed, Fault::None)).is_ok();
    let failure =
        seed_sets::caught("ForgetChangeIds", SEEDS, |seed| run_seed(&options(seed, fault)), passes_without_fault);
    assert_caught_by("ForgetChangeIds", &failure, RULES);
}
