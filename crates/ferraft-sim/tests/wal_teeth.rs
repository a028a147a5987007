//! The WAL seed set has teeth: a bug planted in the WAL is caught by some
//! seed of the set, by the check the bug breaks.

use ferraft_sim::{run_seed, Failure, Fault, SimOptions};
use ferraft_wal::PlantedBug;

/// The WAL seed set's CI size (`tests/wal_seeds.rs`).
const CI_SEEDS: u64 = 200;

/// Runs the WAL set's CI seeds with `bug` planted until one fails; the
/// failure must name one of `rules`.
fn caught(bug: PlantedBug, rules: &[&str]) -> Failure {
    for seed in 0..CI_SEEDS {
        let options = SimOptions { wal: true, fault: Fault::Wal(bug), ..SimOptions::new(seed) };
        if let Err(failure) = run_seed(&options) {
            assert!(
                rules.iter().any(|r| failure.message.contains(r)),
                "{bug:?} caught by an unexpected check: {failure}"
            );
            println!("{bug:?} caught: {failure}");
            return failure;
        }
    }
    panic!("{bug:?} was not caught by any of the {CI_SEEDS} CI seeds of the WAL set");
}

#[test]
fn a_wal_that_reports_a_batch_durable_before_syncing_it_is_caught() {
    caught(PlantedBug::ReportBeforeSync, &["reported durable"]);
}

#[test]
fn a_wal_recovery_that_trusts_records_without_their_checksum_is_caught() {
    // the garbage it trusts shows as a recovered state the contract forbids, or as
    // corruption found at a later open (a torn tail must never read as corrupt)
    caught(PlantedBug::TrustRecordsWithoutChecksum, &["WAL recovery", "never appended", "corrupt WAL data"]);
}
