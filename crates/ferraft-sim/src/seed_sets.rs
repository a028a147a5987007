//! The one runner of seed sets, for every test target that runs seeds.
//!
//! A *set* ([`run_set`]) runs a range of seeds on a few threads, the range
//! chosen by the environment (`FERRAFT_SIM_START`, `FERRAFT_SIM_SEEDS`, else
//! the set's CI count; `FERRAFT_SIM_TRACE=1` runs one thread and prints every
//! event), and [`SetRun::report`] prints the totals and every failure with
//! the command that replays it. A *hunt* ([`caught`]) runs seeds in order
//! until a planted bug is caught: how the teeth tests show a check works.

use std::ops::Range;
use std::time::{Duration, Instant};

use crate::sim::Failure;

/// The value of the environment variable `name` as a number, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Whether the environment variable `name` is `1`.
pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// The seeds `FERRAFT_SIM_START..+FERRAFT_SIM_SEEDS` (default `0..default_count`)
/// and whether `FERRAFT_SIM_TRACE=1` asks for a trace.
pub fn seeds_from_env(default_count: u64) -> (Range<u64>, bool) {
    let start = env_u64("FERRAFT_SIM_START", 0);
    let count = env_u64("FERRAFT_SIM_SEEDS", default_count);
    (start..start + count, env_flag("FERRAFT_SIM_TRACE"))
}

/// Threads for independent seeds: a few, or one when tracing (so the trace
/// reads in order). Threads change only wall time, never a seed's run.
fn threads(trace: bool) -> usize {
    if trace {
        1
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get()).min(8)
    }
}

/// Runs `run` on every seed of `seeds` on `threads` threads; the results in
/// seed order.
fn run_parallel<R: Send>(seeds: Range<u64>, threads: usize, run: &(impl Fn(u64) -> R + Sync)) -> Vec<R> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let seeds = seeds.clone();
                scope.spawn(move || (seeds.start + t..seeds.end).step_by(threads).map(run).collect::<Vec<_>>())
            })
            .collect();
        let mut per_thread: Vec<_> =
            handles.into_iter().map(|h| h.join().expect("simulation thread panicked").into_iter()).collect();
        // seed `start + n` ran on thread `n % threads`, as its `n / threads`-th
        (0..seeds.end - seeds.start).map(|n| per_thread[n as usize % threads].next().expect("every seed ran")).collect()
    })
}

/// What one run of a seed set found.
#[derive(Debug)]
pub struct SetRun<S> {
    /// The seeds run.
    pub seeds: Range<u64>,
    /// The stats of each seed that passed, in seed order.
    pub stats: Vec<S>,
    /// Every failure, in seed order.
    pub failures: Vec<Failure>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Runs the seed set the environment chooses (default `0..default_count`):
/// `run` runs one seed, with a trace if asked.
pub fn run_set<S: Send>(default_count: u64, run: impl Fn(u64, bool) -> Result<S, Failure> + Sync) -> SetRun<S> {
    let (seeds, trace) = seeds_from_env(default_count);
    let began = Instant::now();
    let results = run_parallel(seeds.clone(), threads(trace), &|seed| run(seed, trace));
    let (mut stats, mut failures) = (Vec::new(), Vec::new());
    for result in results {
        match result {
            Ok(s) => stats.push(s),
            Err(f) => failures.push(f),
        }
    }
    SetRun { seeds, stats, failures, elapsed: began.elapsed() }
}

impl<S> SetRun<S> {
    /// How many seeds ran.
    pub fn count(&self) -> u64 {
        self.seeds.end - self.seeds.start
    }

    /// The sum of `f` over the seeds that passed.
    pub fn sum(&self, f: impl Fn(&S) -> usize) -> usize {
        self.stats.iter().map(f).sum()
    }

    /// Prints `name: N seeds from S in T s; totals, F failed` and every
    /// failure with its replay command; panics if any seed failed.
    pub fn report(&self, name: &str, totals: &str) {
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{name}: {} seeds from {} in {secs:.1}s ({:.1} seeds/s); {totals}, {} failed",
            self.count(),
            self.seeds.start,
            self.count() as f64 / secs.max(1e-9),
            self.failures.len()
        );
        for failure in &self.failures {
            eprintln!("{failure}");
        }
        if let Some(first) = self.failures.first() {
            panic!("{name}: {} of {} seeds failed; first: {first}", self.failures.len(), self.count());
        }
    }
}

/// Hunts for a planted bug (`bug` names it): runs `seeds` in order, a few at
/// once, until `run` fails on a seed in a way `counts` accepts, and returns
/// the failure of the lowest such seed (the one a run seed by seed finds);
/// panics if none does. `counts` sees failures in seed order.
pub fn caught<S: Send>(
    bug: &str,
    seeds: Range<u64>,
    run: impl Fn(u64) -> Result<S, Failure> + Sync,
    mut counts: impl FnMut(&Failure) -> bool,
) -> Failure {
    let threads = threads(false);
    let mut start = seeds.start;
    while start < seeds.end {
        let chunk = start..(start + threads as u64).min(seeds.end);
        start = chunk.end;
        for failure in run_parallel(chunk, threads, &run).into_iter().filter_map(Result::err) {
            if counts(&failure) {
                println!("{bug} caught after {} seeds: {failure}", failure.seed - seeds.start + 1);
                return failure;
            }
        }
    }
    panic!("{bug} was not caught by any of the seeds {seeds:?}");
}

/// Asserts that `failure` (of planted bug `bug`) was reported by one of the
/// checks named in `checks`, not by another one.
pub fn assert_caught_by(bug: &str, failure: &Failure, checks: &[&str]) {
    assert!(
        checks.iter().any(|check| failure.message.contains(check)),
        "{bug} caught by an unexpected check: {failure}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing_on(seed: u64, failing: &[u64]) -> Result<u64, Failure> {
        match failing.contains(&seed) {
            true => Err(Failure { seed, at_ms: 0, message: format!("planted {seed}"), test: "unit" }),
            false => Ok(seed),
        }
    }

    #[test]
    fn parallel_results_come_back_in_seed_order() {
        for threads in 1..5 {
            assert_eq!(run_parallel(3..14, threads, &|seed| seed), (3..14).collect::<Vec<_>>(), "{threads} threads");
        }
    }

    #[test]
    fn a_hunt_returns_the_lowest_seed_that_counts() {
        let failure = caught("bug", 0..100, |seed| failing_on(seed, &[5, 41, 42, 77]), |f| f.seed != 5);
        assert_eq!(failure.seed, 41);
    }

    #[test]
    #[should_panic(expected = "was not caught")]
    fn a_hunt_that_finds_nothing_fails() {
        caught("bug", 0..20, |seed| failing_on(seed, &[]), |_| true);
    }
}
