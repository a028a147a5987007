//! Compare-and-set (issue 19): seeded runs in which some client writes are
//! compare-and-sets of the value the node they reach shows, checked for
//! linearizability with a search per key (`linearizability::check`), with
//! every other check of the CI set on.
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0
//! and 100).

use ferraft_sim::seed_sets::{run_seeds, seeds_from_env};
use ferraft_sim::{Fault, SimOptions};

#[test]
fn histories_with_compare_and_set_are_linearizable() {
    let (seeds, trace) = seeds_from_env(100);
    let results = run_seeds(seeds.clone(), trace, |seed| SimOptions { cas: true, ..SimOptions::new(seed) });
    let writes: usize = results.iter().filter_map(|r| r.as_ref().ok()).map(|s| s.writes).sum();
    let mut failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    failures.sort_by_key(|f| f.seed);
    let count = seeds.end - seeds.start;
    println!("compare-and-set: {count} seeds from {}, {writes} writes, {} failed", seeds.start, failures.len());
    for failure in &failures {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{} of {count} seeds failed; first: {}", failures.len(), failures[0]);
}

/// The check has teeth: a KV that writes a compare-and-set whatever the
/// register holds (answering as if it checked) is caught.
#[test]
fn a_cas_that_writes_whatever_the_register_holds_is_caught() {
    let options = |seed| SimOptions { cas: true, fault: Fault::CasAlwaysWrites, ..SimOptions::new(seed) };
    let mut failures: Vec<_> = run_seeds(0..40, false, options).into_iter().filter_map(Result::err).collect();
    failures.sort_by_key(|f| f.seed);
    let failure = failures.first().expect("a compare-and-set that ignores its expectation was not caught in 40 seeds");
    assert!(failure.message.contains("linearizab"), "caught by an unexpected check: {failure}");
    println!("caught: {failure}");
}
