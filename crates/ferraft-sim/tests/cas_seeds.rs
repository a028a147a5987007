//! Compare-and-set (issue 19): seeded runs in which some client writes are
//! compare-and-sets of the value the node they reach shows, checked for
//! linearizability with a search per key (`linearizability::check`), with
//! every other check of the CI set on.
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0
//! and 100).

use ferraft_sim::{run_seed, Fault, SimOptions};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run(seeds: std::ops::Range<u64>, fault: Fault) -> Vec<Result<ferraft_sim::RunStats, ferraft_sim::Failure>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8) as u64;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    (seeds.start + t..seeds.end)
                        .step_by(threads as usize)
                        .map(|seed| run_seed(&SimOptions { cas: true, fault, ..SimOptions::new(seed) }))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("simulation thread panicked")).collect()
    })
}

#[test]
fn histories_with_compare_and_set_are_linearizable() {
    let start = env_u64("FERRAFT_SIM_START", 0);
    let count = env_u64("FERRAFT_SIM_SEEDS", 100);
    let results = run(start..start + count, Fault::None);
    let writes: usize = results.iter().filter_map(|r| r.as_ref().ok()).map(|s| s.writes).sum();
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    println!("compare-and-set: {count} seeds from {start}, {writes} writes, {} failed", failures.len());
    for failure in &failures {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{} of {count} seeds failed; first: {}", failures.len(), failures[0]);
}

/// The check has teeth: a KV that writes a compare-and-set whatever the
/// register holds (answering as if it checked) is caught.
#[test]
fn a_cas_that_writes_whatever_the_register_holds_is_caught() {
    let failure = run(0..40, Fault::CasAlwaysWrites).into_iter().find_map(Result::err);
    let failure = failure.expect("a compare-and-set that ignores its expectation was not caught in 40 seeds");
    assert!(failure.message.contains("linearizab"), "caught by an unexpected check: {failure}");
    println!("caught: {failure}");
}
