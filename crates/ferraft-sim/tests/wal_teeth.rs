//! The WAL seed set has teeth: a bug planted in the WAL is caught by some
//! seed of the set, by the check the bug breaks.

use ferraft_sim::seed_sets::{assert_caught_by, caught};
use ferraft_sim::{run_seed, Failure, Fault, SimOptions};
use ferraft_wal::PlantedBug;

/// The WAL seed set's CI size (`tests/wal_seeds.rs`).
const CI_SEEDS: u64 = 200;

/// Runs the WAL set's CI seeds with `bug` planted until one fails; the
/// failure must name one of `rules`.
fn caught_in_wal_seeds(bug: PlantedBug, rules: &[&str]) -> Failure {
    let run = |seed| run_seed(&SimOptions { wal: true, fault: Fault::Wal(bug), ..SimOptions::new(seed) });
    let failure = caught(&format!("{bug:?}"), 0..CI_SEEDS, run, |_| true);
    assert_caught_by(&format!("{bug:?}"), &failure, rules);
    failure
}

#[test]
fn a_wal_that_reports_a_batch_durable_before_syncing_it_is_caught() {
    caught_in_wal_seeds(PlantedBug::ReportBeforeSync, &["reported durable"]);
}

#[test]
fn a_wal_that_calls_an_inline_append_durable_before_syncing_it_is_caught() {
    caught_in_wal_seeds(PlantedBug::InlineDurableWithoutSync, &["reported durable", "acknowledged", "lost"]);
}

#[test]
fn a_wal_recovery_that_trusts_records_without_their_checksum_is_caught() {
    // the garbage it trusts shows as a recovered state the contract forbids, or as
    // corruption found at a later open (a torn tail must never read as corrupt)
    caught_in_wal_seeds(
        PlantedBug::TrustRecordsWithoutChecksum,
        &["WAL recovery", "never appended", "corrupt WAL data"],
    );
}
