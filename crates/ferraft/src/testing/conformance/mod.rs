//! A conformance suite for any [`LogStore`]: the rules every store must keep.
//!
//! Each rule is a public function taking an `open` closure that opens a store
//! over a directory; calling it again with the same directory (after the
//! previous store was dropped) must reopen the same data. A store without
//! files (in memory) can key its data by the path. Run everything with
//! [`run_all`], or call the functions one by one to get one test per rule:
//!
//! ```
//! use std::collections::HashMap;
//! use std::path::{Path, PathBuf};
//!
//! use ferraft::mem::MemLogStore;
//! use ferraft::testing::conformance::{self, TestData};
//! use ferraft::BasicNode;
//!
//! // an in-memory store keyed by the directory: reopening finds the same data
//! let mut stores: HashMap<PathBuf, MemLogStore<TestData, BasicNode>> = HashMap::new();
//! conformance::run_all(&mut |dir: &Path| Ok(stores.entry(dir.to_path_buf()).or_default().clone()));
//! ```
//!
//! `MemLogStore`, the WAL (`ferraft-wal`) and the simulator's disk all run it.
//!
//! Rules that need durability wait for the store's notifier (or take
//! `AppendDurability::Durable` at its word) before reopening.

mod log_rules;
mod range_rules;
mod state_rules;
mod support;

pub use log_rules::*;
pub use range_rules::*;
pub use state_rules::*;
pub use support::{append_durably, blank, entries, entry, log_id, membership_entry, TestData, TestDir};

use std::path::Path;

use crate::{BasicNode, LogStore, StorageError};

/// Runs every rule of the suite against the store `open` opens.
pub fn run_all<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    new_store_reads_empty_state(open);
    append_reports_durability_of_the_last_entry(open);
    append_then_reopen_keeps_entries(open);
    appends_in_many_calls_keep_order(open);
    every_payload_kind_round_trips(open);
    truncate_then_append_replaces_tail(open);
    truncate_everything_then_append_restarts_log(open);
    truncate_past_last_entry_changes_nothing(open);
    purge_keeps_unpurged_entries(open);
    purge_past_last_entry_continues_after_purge_point(open);
    mutations_apply_in_call_order(open);
    vote_survives_reopen(open);
    cluster_id_survives_reopen(open);
    incarnation_lives_with_the_data(open);
    latest_vote_wins_after_reopen(open);
    committed_after_reopen_is_never_newer_than_saved(open);
    snapshot_survives_reopen(open);
    newer_snapshot_replaces_older(open);
    staged_snapshot_replaces_the_saved_one_only_when_saved(open);
    partial_snapshot_resumes_only_the_same_bytes(open);
    state_survives_many_reopens(open);
    read_range_returns_the_entries_in_order(open);
    read_range_stops_at_the_last_entry(open);
    read_range_of_purged_entries_is_empty(open);
    read_range_sees_appends_made_before_it(open);
    read_range_runs_beside_appends(open);
    read_range_racing_a_purge_returns_entries_or_nothing(open);
}
