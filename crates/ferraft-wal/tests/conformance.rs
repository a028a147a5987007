//! The conformance suite, run against the WAL with small segments (so rules
//! cross segment boundaries) and without syncing.

use std::path::Path;

use ferraft::testing::conformance::{self, TestData};
use ferraft::{BasicNode, NodeId, StorageError};
use ferraft_wal::{WalOptions, WalStore};

/// Segments of 4 KiB: most rules then span several segments.
fn open_small_segments(dir: &Path) -> Result<WalStore<TestData, BasicNode>, StorageError> {
    WalStore::open(dir, WalOptions { segment_bytes: 4096, ..WalOptions::new(NodeId(1), 1) })
}

/// One test per rule, so a failure names the rule it broke.
macro_rules! rules {
    ($($rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                conformance::$rule(&mut open_small_segments);
            }
        )*
    };
}

rules!(
    new_store_reads_empty_state,
    append_reports_durability_of_the_last_entry,
    append_then_reopen_keeps_entries,
    appends_in_many_calls_keep_order,
    every_payload_kind_round_trips,
    truncate_then_append_replaces_tail,
    truncate_everything_then_append_restarts_log,
    truncate_past_last_entry_changes_nothing,
    purge_keeps_unpurged_entries,
    purge_past_last_entry_continues_after_purge_point,
    mutations_apply_in_call_order,
    vote_survives_reopen,
    cluster_id_survives_reopen,
    incarnation_lives_with_the_data,
    latest_vote_wins_after_reopen,
    committed_after_reopen_is_never_newer_than_saved,
    snapshot_survives_reopen,
    newer_snapshot_replaces_older,
    staged_snapshot_replaces_the_saved_one_only_when_saved,
    state_survives_many_reopens,
    read_range_returns_the_entries_in_order,
    read_range_stops_at_the_last_entry,
    read_range_of_purged_entries_is_empty,
    read_range_sees_appends_made_before_it,
    read_range_runs_beside_appends,
    read_range_racing_a_purge_returns_entries_or_nothing,
);

#[test]
fn whole_suite_passes_with_default_segments() {
    conformance::run_all(&mut |dir: &Path| WalStore::<TestData, BasicNode>::open(dir, WalOptions::new(NodeId(1), 1)));
}

#[test]
fn whole_suite_passes_without_sync() {
    conformance::run_all(&mut |dir: &Path| {
        WalStore::<TestData, BasicNode>::open(
            dir,
            WalOptions { sync: false, segment_bytes: 4096, ..WalOptions::new(NodeId(1), 1) },
        )
    });
}
