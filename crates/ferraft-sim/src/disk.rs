//! A simulated disk: what survives a crash.
//!
//! Appends land in the page cache and become durable only at the next
//! simulated fsync, which is when the engine hears `on_log_flushed`. A crash
//! drops every entry appended since the last fsync. Votes, the committed log
//! id, truncations, purges and snapshots are durable when written (the store
//! contract lets `save_committed` be lazy; being eager is one valid choice).

use std::collections::{BTreeMap, BTreeSet};

use ferraft::log_id::index_of;
use ferraft::{
    BasicNode, ClusterId, Entry, EntryPayload, Incarnation, LogId, LogIndex, LogState, NodeId, Snapshot, Vote,
};

use crate::model::Put;

/// An entry as stored.
pub type SimEntry = Entry<Put, BasicNode>;

/// One node's disk, holding entries of commands `C` (the simulator's
/// [`Put`]; any, for the store conformance suite).
#[derive(Debug, Clone)]
pub struct SimDisk<C = Put> {
    /// The data's incarnation: kept through crashes, new on a wipe.
    incarnation: Option<Incarnation>,
    /// This disk replaced a wiped one.
    wiped: bool,
    /// The disk it replaced: what that one held durably was acknowledged
    /// truthfully, so a commit counted on it was sound when made.
    previous: Option<Box<SimDisk<C>>>,
    /// Saved synchronously, like the vote.
    cluster_id: Option<ClusterId>,
    vote: Option<Vote>,
    /// The last vote saved in an older term than `vote`: what a disk that
    /// loses vote writes (the `LoseVote` fault) falls back to.
    older_vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    /// Entries after `last_purged`, durable or not.
    entries: Vec<Entry<C, BasicNode>>,
    /// Entries up to this index are durable.
    synced: LogIndex,
    snapshot: Option<Snapshot<BasicNode>>,
    /// The entry last written at each index, kept after a purge: what the
    /// node applied there, for the checkers (the host hands only client
    /// writes to the state machine).
    written: BTreeMap<LogIndex, Entry<C, BasicNode>>,
}

impl<C> Default for SimDisk<C> {
    fn default() -> Self {
        Self {
            incarnation: None,
            wiped: false,
            previous: None,
            cluster_id: None,
            vote: None,
            older_vote: None,
            committed: None,
            last_purged: None,
            entries: Vec::new(),
            synced: LogIndex(0),
            snapshot: None,
            written: BTreeMap::new(),
        }
    }
}

impl<C: Clone> SimDisk<C> {
    /// A new, empty disk with `incarnation`.
    pub fn new(incarnation: Option<Incarnation>) -> Self {
        Self { incarnation, ..Self::default() }
    }

    /// The disk was wiped (or the machine replaced): everything is gone, and
    /// the data starts a new incarnation.
    pub fn wipe(&mut self, incarnation: Option<Incarnation>) {
        let previous = Some(Box::new(std::mem::take(self)));
        *self = Self { wiped: true, previous, ..Self::new(incarnation) };
    }

    /// Whether this disk replaced a wiped one.
    pub fn was_wiped(&self) -> bool {
        self.wiped
    }

    /// The data's incarnation.
    pub fn incarnation(&self) -> Option<Incarnation> {
        self.incarnation
    }

    /// Persists the cluster id.
    pub fn save_cluster_id(&mut self, cluster_id: ClusterId) {
        self.cluster_id = Some(cluster_id);
    }

    /// Persists the vote.
    pub fn save_vote(&mut self, vote: Vote) {
        if let Some(old) = self.vote {
            if old.term() < vote.term() {
                self.older_vote = Some(old);
            }
        }
        self.vote = Some(vote);
    }

    /// The vote saved last.
    pub fn vote(&self) -> Option<Vote> {
        self.vote
    }

    /// Persists the committed log id.
    pub fn save_committed(&mut self, committed: Option<LogId>) {
        self.committed = committed;
    }

    /// The committed log id last saved.
    pub fn committed(&self) -> Option<LogId> {
        self.committed
    }

    /// Appends entries to the page cache.
    pub fn append(&mut self, entries: &[Entry<C, BasicNode>]) {
        self.entries.extend_from_slice(entries);
        for e in entries {
            self.written.insert(e.log_id.index, e.clone());
        }
    }

    /// The entry written last at `index`, even if purged since.
    pub fn written_at(&self, index: LogIndex) -> Option<&Entry<C, BasicNode>> {
        self.written.get(&index)
    }

    /// The configs of the membership in force at `index`, as this disk shows
    /// it: its latest membership entry up to there, else its snapshot's.
    pub fn membership_at(&self, index: LogIndex) -> Option<Vec<BTreeSet<NodeId>>> {
        let entry = self.entries.iter().rev().filter(|e| e.log_id.index <= index).find_map(|e| match &e.payload {
            EntryPayload::Membership(m) => Some(m.configs().to_vec()),
            _ => None,
        });
        entry.or_else(|| {
            let snapshot = self.snapshot.as_ref().filter(|s| index_of(s.meta.last_log_id) <= index)?;
            Some(snapshot.meta.membership.membership.configs().to_vec())
        })
    }

    /// The last log id on disk (durable or not), including the purge point.
    pub fn last_log_id(&self) -> Option<LogId> {
        self.entries.last().map(|e| e.log_id).or(self.last_purged)
    }

    /// Deletes entries from `since` on, returning their log ids.
    pub fn truncate(&mut self, since: LogIndex) -> Vec<LogId> {
        let keep = self.entries.iter().take_while(|e| e.log_id.index < since).count();
        let removed = self.entries.drain(keep..).map(|e| e.log_id).collect();
        self.written.split_off(&since);
        self.synced = self.synced.min(since.saturating_back(1));
        removed
    }

    /// Deletes entries up to `upto` (covered by the snapshot).
    pub fn purge(&mut self, upto: LogId) {
        self.entries.retain(|e| e.log_id.index > upto.index);
        self.last_purged = self.last_purged.max(Some(upto));
        self.synced = self.synced.max(upto.index);
    }

    /// The entries from `range.start` on, as far as held and below `range.end`
    /// (like `LogStore::read_range`: nothing when the start is purged).
    pub fn read_range(&self, range: std::ops::Range<LogIndex>) -> Vec<Entry<C, BasicNode>> {
        let Some(first) = self.entries.first().map(|e| e.log_id.index) else { return Vec::new() };
        if range.start < first {
            return Vec::new();
        }
        let skip = (range.start - first) as usize;
        self.entries.iter().skip(skip).take(range.end.saturating_sub(range.start) as usize).cloned().collect()
    }

    /// Persists a snapshot.
    pub fn save_snapshot(&mut self, snapshot: Snapshot<BasicNode>) {
        self.snapshot = Some(snapshot);
    }

    /// The saved snapshot.
    pub fn snapshot(&self) -> Option<&Snapshot<BasicNode>> {
        self.snapshot.as_ref()
    }

    /// Fsync: everything appended so far is durable. Returns the last log id,
    /// to report to the engine. A `lying` disk reports without syncing.
    pub fn fsync(&mut self, lying: bool) -> Option<LogId> {
        // the purge point counts: entries appended and then purged (a snapshot
        // covered them before the fsync) must still be reported flushed
        let last = self.last_log_id();
        if !lying {
            self.synced = self.synced.max(last.map_or(LogIndex(0), |l| l.index));
        }
        last
    }

    /// A store that syncs by itself (the WAL) reported entries up to
    /// `index` durable.
    pub fn synced_up_to(&mut self, index: LogIndex) {
        self.synced = self.synced.max(index.min(index_of(self.last_log_id())));
    }

    /// A store recovered `state` after a crash (checked against this disk
    /// first): it may hold more than was reported durable (unsynced writes
    /// that survived) and an older purge point or committed log id.
    pub fn adopt_recovered(&mut self, state: &LogState<C, BasicNode>) {
        self.entries = state.entries.clone();
        for entry in &state.entries {
            self.written.insert(entry.log_id.index, entry.clone());
        }
        self.last_purged = state.last_purged;
        self.committed = state.committed;
        self.synced = index_of(self.last_log_id());
        // a save the power cut may have landed whole
        self.vote = state.vote;
        self.cluster_id = state.cluster_id;
        self.snapshot = state.snapshot.as_ref().map(in_memory);
    }

    /// Whether `log_id` would survive a crash now, or did on the disk this
    /// one replaced until it was wiped.
    pub fn durably_holds(&self, log_id: LogId) -> bool {
        self.holds_now(log_id) || self.previous.as_ref().is_some_and(|p| p.durably_holds(log_id))
    }

    /// Whether `log_id` would survive a crash now, on this disk (not on the
    /// one it replaced).
    pub fn holds_now(&self, log_id: LogId) -> bool {
        if self.last_purged.is_some_and(|p| p.index >= log_id.index) {
            // covered by the snapshot, which only holds committed entries
            return true;
        }
        log_id.index <= self.synced && self.entries.iter().rev().any(|e| e.log_id == log_id)
    }

    /// The machine crashed: unsynced appends are gone. With `lose_vote`, the
    /// last vote write is lost too (a broken disk, for the teeth tests).
    pub fn crash(&mut self, lose_vote: bool) {
        let synced = self.synced;
        self.entries.retain(|e| e.log_id.index <= synced);
        self.written.split_off(&(synced + 1));
        if lose_vote && self.older_vote != self.vote {
            self.vote = self.older_vote;
        }
    }

    /// What a restarting node reads back.
    pub fn log_state(&self) -> LogState<C, BasicNode> {
        LogState {
            cluster_id: self.cluster_id,
            incarnation: self.incarnation,
            vote: self.vote,
            committed: self.committed,
            last_purged: self.last_purged,
            entries: self.entries.clone(),
            snapshot: self.snapshot.clone(),
        }
    }
}

/// A copy of `snapshot` whose bytes are in memory: a recovered WAL
/// snapshot's data is read from the file of the life that recovered it,
/// which a later crash closes, and a shadow copy read through it then
/// differs from everything (every WAL seed with a restart after a
/// snapshot failed "the snapshot saved last was not recovered").
pub(crate) fn in_memory(snapshot: &Snapshot<BasicNode>) -> Snapshot<BasicNode> {
    match snapshot.data.to_bytes() {
        Ok(bytes) => Snapshot { meta: snapshot.meta.clone(), data: bytes.into() },
        // unreadable right after recovery: kept as it is, and the next check says so
        Err(_) => snapshot.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferraft::{LeaderId, Term};

    fn entry(index: u64) -> SimEntry {
        Entry { log_id: LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(index)), payload: EntryPayload::Blank }
    }

    #[test]
    fn crash_drops_unsynced_appends_only() {
        let mut disk = SimDisk::<Put>::default();
        disk.append(&[entry(1), entry(2)]);
        disk.fsync(false);
        disk.append(&[entry(3)]);
        assert!(!disk.durably_holds(entry(3).log_id));
        disk.crash(false);
        assert_eq!(disk.log_state().entries.len(), 2);
    }

    #[test]
    fn a_lying_fsync_loses_the_entries_it_reported() {
        let mut disk = SimDisk::<Put>::default();
        disk.append(&[entry(1)]);
        assert_eq!(disk.fsync(true), Some(entry(1).log_id));
        disk.crash(false);
        assert!(disk.log_state().entries.is_empty());
    }

    #[test]
    fn a_broken_disk_forgets_the_last_vote() {
        let mut disk = SimDisk::<Put>::default();
        disk.save_vote(Vote::new(Term(1), NodeId(1)));
        disk.save_vote(Vote::new(Term(2), NodeId(3)));
        disk.crash(true);
        assert_eq!(disk.log_state().vote, Some(Vote::new(Term(1), NodeId(1))));
    }
}
