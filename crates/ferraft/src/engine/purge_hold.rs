//! How far a snapshot lets the log be purged: not past what a follower
//! still catching up needs, within `Config::catch_up_retain_entries`.
//!
//! A follower fed from the log needs every entry after its match; one being
//! sent a snapshot needs every entry after that snapshot, or it would need
//! another snapshot once installed (the loop between snapshot and log that
//! other Raft libraries are known for). The in-memory cache is trimmed on its
//! own schedule; this decides what the store may drop.

use super::progress::{Progress, ReplicationMode};
use super::role::Role;
use super::{Engine, Output};
use crate::entry::AppData;
use crate::log_id::{index_of, LogId};
use crate::node::{LogIndex, Node};

/// The last entry `progress`'s follower no longer needs from the log.
fn needed_after(progress: &Progress) -> LogIndex {
    match (progress.mode, progress.store.snapshot_last) {
        // the snapshot it is being sent: the log must go on after it
        (ReplicationMode::Snapshot { .. }, Some(snapshot)) => index_of(Some(snapshot)).max(progress.matched_index()),
        _ => progress.matched_index(),
    }
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// The last index a purge after a snapshot at `last` may remove: the
    /// keep margin behind it, and on a leader no entry a catching-up
    /// follower still needs, unless it lags more than the retain bound.
    pub(crate) fn purge_point(&self, last: LogIndex) -> LogIndex {
        let upto = last.saturating_back(self.config.purge_keep_entries);
        let Role::Leader(leader) = &self.role else { return upto };
        let Some(slowest) = leader.progress.values().map(needed_after).min() else { return upto };
        upto.min(slowest.max(last.saturating_back(self.config.catch_up_retain_entries)))
    }

    /// Purges memory and the store behind a snapshot covering `last`.
    pub(crate) fn purge_behind_snapshot(&mut self, last: LogId) {
        let upto = self.purge_point(last.index).min(last.index);
        if upto >= self.log.first_index() {
            if let Some(in_memory) = self.log.log_id_at(upto) {
                self.log.purge(in_memory);
            }
        }
        // the cache may have dropped these entries already: the store may not
        let Some(store_upto) = self.log.stored_log_id_at(upto) else { return };
        if Some(store_upto) > self.store_purged {
            self.store_purged = Some(store_upto);
            self.log.on_store_purged(store_upto.index);
            self.output.push(Output::PurgeLog(store_upto));
        }
    }
}
