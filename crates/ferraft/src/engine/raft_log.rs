//! The engine's view of the log: entries after the last purge, and the
//! membership entries among them.

use std::collections::{BTreeMap, VecDeque};

use crate::entry::{AppData, Entry};
use crate::log_id::{index_of, LogId};
use crate::membership::{Membership, RememberedChanges, StoredMembership};
use crate::node::{LogIndex, Node, NodeId};

/// The log after the purge point, kept in memory (the store holds it durably).
///
/// Memory is bounded by the snapshot policy: entries are purged once a snapshot
/// covers them.
#[derive(Debug, Clone)]
pub struct RaftLog<C, N> {
    purged: Option<LogId>,
    entries: VecDeque<Entry<C, N>>,
    /// Memberships in log order: the one in force at the purge point (from the
    /// snapshot) first, then every membership entry after it.
    memberships: Vec<StoredMembership<N>>,
    /// Encoded sizes of the held entries (catch-up lag in bytes).
    bytes: super::entry_bytes::EntryBytes,
    /// Log ids of entries purged from memory that the store may still hold.
    evicted: super::evicted_ids::EvictedIds,
    /// The latest descriptor of each node named only by memberships purged
    /// from here: a leader that a joint config left out leads on until the
    /// config's exit commits, and once a snapshot purged the membership that
    /// named it, it still sends its address, and its followers still find
    /// it, so their acknowledgements reach it.
    forgotten_nodes: BTreeMap<NodeId, N>,
    /// Changes with a change id whose entries left here (see
    /// [`RememberedChanges`]), at most `remembered_bound`.
    remembered: RememberedChanges<N>,
    remembered_bound: usize,
    /// The last committed membership that left here: what the next one to
    /// leave followed.
    last_left: Option<Membership<N>>,
}

impl<C: AppData, N: Node> RaftLog<C, N> {
    /// A log starting after `purged`, with the membership in force there,
    /// remembering `remembered` (a snapshot's) and up to `bound` changes with
    /// an id whose entries leave it.
    pub fn new(
        purged: Option<LogId>,
        base_membership: Option<StoredMembership<N>>,
        remembered: RememberedChanges<N>,
        bound: usize,
    ) -> Self {
        Self {
            purged,
            entries: VecDeque::new(),
            memberships: base_membership.into_iter().collect(),
            bytes: Default::default(),
            evicted: Default::default(),
            forgotten_nodes: BTreeMap::new(),
            remembered,
            remembered_bound: bound,
            last_left: None,
        }
    }

    /// The last entry covered by a snapshot and removed.
    pub fn purged(&self) -> Option<LogId> {
        self.purged
    }

    /// The first index still held.
    pub fn first_index(&self) -> LogIndex {
        self.purged.map_or(LogIndex(1), |p| p.index + 1)
    }

    /// The last log id, including the purge point when the log is empty.
    pub fn last_log_id(&self) -> Option<LogId> {
        self.entries.back().map(|e| e.log_id).or(self.purged)
    }

    /// The last index, 0 when the log is empty.
    pub fn last_index(&self) -> LogIndex {
        self.last_log_id().map_or(LogIndex(0), |l| l.index)
    }

    /// The log id at `index`, if held (the purge point counts).
    pub fn log_id_at(&self, index: LogIndex) -> Option<LogId> {
        if index == LogIndex(0) {
            return None;
        }
        if self.purged.map(|p| p.index) == Some(index) {
            return self.purged;
        }
        self.get(index).map(|e| e.log_id)
    }

    /// The log id at `index` as the store holds it: like
    /// [`log_id_at`](Self::log_id_at), and also for entries purged from
    /// memory since the store last purged.
    pub fn stored_log_id_at(&self, index: LogIndex) -> Option<LogId> {
        self.log_id_at(index).or_else(|| (index < self.first_index()).then(|| self.evicted.log_id_at(index)).flatten())
    }

    /// The store purged up to `index`: forget the evicted log ids it held.
    pub fn on_store_purged(&mut self, index: LogIndex) {
        self.evicted.forget_upto(index);
    }

    /// Whether `log_id` is in this log (or is the purge point). `None` always is.
    pub fn contains(&self, log_id: Option<LogId>) -> bool {
        match log_id {
            None => true,
            Some(l) => self.log_id_at(l.index) == Some(l),
        }
    }

    /// The entry at `index`, if held.
    pub fn get(&self, index: LogIndex) -> Option<&Entry<C, N>> {
        let first = self.first_index();
        if index < first {
            return None;
        }
        self.entries.get((index - first) as usize)
    }

    /// Clones up to `max` entries starting at `from`.
    #[cfg(any(test, feature = "testing"))]
    pub fn slice(&self, from: LogIndex, max: usize) -> Vec<Entry<C, N>> {
        self.slice_within(from, max, u64::MAX)
    }

    /// Like [`slice`](Self::slice), and no more than `max_bytes` of encoded
    /// entries (at least one): what fits in one message.
    pub fn slice_within(&self, from: LogIndex, max: usize, max_bytes: u64) -> Vec<Entry<C, N>> {
        let first = self.first_index();
        if from < first {
            return Vec::new();
        }
        let skip = (from - first) as usize;
        let count = self.bytes.count_within(skip, max, max_bytes);
        self.entries.range(skip.min(self.entries.len())..).take(count).cloned().collect()
    }

    /// Appends one entry; its index must follow the last.
    pub fn push(&mut self, entry: Entry<C, N>) {
        debug_assert_eq!(entry.log_id.index, self.last_index() + 1, "log must stay contiguous");
        if let Some(m) = entry.membership() {
            self.memberships.push(StoredMembership { log_id: Some(entry.log_id), membership: m.clone() });
        }
        self.bytes.push(super::entry_bytes::encoded_size(&entry));
        self.entries.push_back(entry);
    }

    /// Encoded bytes of the entries after `index` (estimated for purged ones).
    pub fn bytes_after(&self, index: LogIndex) -> u64 {
        self.bytes.after(index, self.first_index())
    }

    /// Removes every entry with index `>= since`.
    pub fn truncate(&mut self, since: LogIndex) {
        let first = self.first_index();
        let keep = since.saturating_sub(first) as usize;
        self.entries.truncate(keep);
        self.bytes.truncate(keep);
        self.memberships.retain(|m| index_of(m.log_id) < since);
    }

    /// Removes entries up to and including `upto`, keeping the membership in force there.
    pub fn purge(&mut self, upto: LogId) {
        if upto.index < self.first_index() {
            return;
        }
        let count = ((upto.index - self.first_index() + 1) as usize).min(self.entries.len());
        for entry in self.entries.drain(..count) {
            self.evicted.record(entry.log_id);
        }
        self.bytes.drain_front(count);
        self.purged = Some(upto);
        let base = self.memberships.iter().rposition(|m| m.log_id.map_or(LogIndex(0), |l| l.index) <= upto.index);
        if let Some(base) = base {
            let dropped: Vec<_> = self.memberships.drain(..base).collect();
            // purged entries are committed: their changes are remembered
            self.remembered.remember_left(&dropped, self.last_left.as_ref(), self.remembered_bound);
            if let Some(last) = dropped.last() {
                self.last_left = Some(last.membership.clone());
            }
            self.forget(dropped);
        }
    }

    /// The changes with an id a snapshot covering up to `index` remembers:
    /// those that left here and those the log holds up to `index`.
    pub fn changes_upto(&self, index: LogIndex) -> RememberedChanges<N> {
        let mut changes = self.remembered.clone();
        let mut held: Vec<_> = self.memberships.iter().filter(|m| index_of(m.log_id) <= index).collect();
        held.sort_by_key(|m| m.log_id);
        changes.remember_left(held, self.last_left.as_ref(), self.remembered_bound);
        changes
    }

    /// The changes with an id whose entries left here.
    pub fn remembered(&self) -> &RememberedChanges<N> {
        &self.remembered
    }

    /// Keeps the node descriptors of memberships leaving the log.
    fn forget(&mut self, dropped: impl IntoIterator<Item = StoredMembership<N>>) {
        for stored in dropped {
            for (id, node) in stored.membership.nodes() {
                self.forgotten_nodes.insert(*id, node.clone());
            }
        }
    }

    /// Replaces the log's prefix with a snapshot's: keeps entries after the
    /// snapshot only when the log holds the snapshot's last entry.
    pub fn install_snapshot(&mut self, last: LogId, membership: StoredMembership<N>, changes: &RememberedChanges<N>) {
        self.remembered.merge(changes, self.remembered_bound);
        if self.contains(Some(last)) {
            self.purge(last);
        } else {
            self.entries.clear();
            self.evicted.clear();
            self.bytes.clear();
            self.purged = Some(last);
            // what preceded the snapshot's membership is not known here
            self.last_left = None;
            let dropped = std::mem::take(&mut self.memberships);
            self.forget(dropped);
        }
        if self.memberships.first().and_then(|m| m.log_id) <= membership.log_id {
            let (dropped, kept): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.memberships).into_iter().partition(|m| m.log_id <= membership.log_id);
            self.memberships = kept;
            self.forget(dropped);
            self.memberships.insert(0, membership);
        }
    }

    /// The membership in force: the last one in the log (use-at-once rule).
    pub fn effective_membership(&self) -> Option<&StoredMembership<N>> {
        self.memberships.last()
    }

    /// The last membership at or before `index`.
    pub fn membership_at(&self, index: LogIndex) -> Option<&StoredMembership<N>> {
        self.memberships.iter().rev().find(|m| m.log_id.map_or(LogIndex(0), |l| l.index) <= index)
    }

    /// The membership in force just before the membership entry at `index`:
    /// held here, or, for the oldest membership held (the one in force at the
    /// purge point), the last one that left. `None` when this log never held
    /// it (it started from a snapshot, or restarted).
    pub fn membership_before(&self, index: LogIndex) -> Option<&Membership<N>> {
        let oldest_held = self.memberships.first().map(|m| index_of(m.log_id));
        match self.membership_at(index.prev()) {
            Some(held) => Some(&held.membership),
            None if oldest_held == Some(index) => self.last_left.as_ref(),
            None => None,
        }
    }

    /// The membership entries after `index`, in log order.
    pub fn memberships_after(&self, index: LogIndex) -> impl Iterator<Item = &StoredMembership<N>> {
        self.memberships.iter().filter(move |m| m.log_id.map_or(LogIndex(0), |l| l.index) > index)
    }

    /// The descriptor of `id` in the latest membership this log knows that
    /// names it, else in the latest purged one that did.
    pub fn latest_node(&self, id: NodeId) -> Option<&N> {
        self.known_node(id).or_else(|| self.forgotten_node(id))
    }

    /// The descriptor of `id` in the latest membership this log still holds
    /// that names it.
    pub fn known_node(&self, id: NodeId) -> Option<&N> {
        self.memberships.iter().rev().find_map(|m| m.membership.node(id))
    }

    /// The descriptor of `id` in the latest purged membership that named it:
    /// possibly outdated (the id may since name a node at another address
    /// that this log's memberships do not name yet).
    pub fn forgotten_node(&self, id: NodeId) -> Option<&N> {
        self.forgotten_nodes.get(&id)
    }

    /// Whether some membership this log still knows names `id` as a member.
    pub fn ever_names(&self, id: crate::node::NodeId) -> bool {
        self.memberships.iter().any(|m| m.membership.is_member(id))
    }

    /// The membership entry before the effective one, if still known.
    pub fn previous_membership(&self) -> Option<&StoredMembership<N>> {
        let n = self.memberships.len();
        (n >= 2).then(|| &self.memberships[n - 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryPayload;
    use crate::leader_id::LeaderId;
    use crate::membership::Membership;
    use crate::{BasicNode, NodeId, Term};

    type Log = RaftLog<u64, BasicNode>;

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(LeaderId::new(Term(term), NodeId(1)), LogIndex(index))
    }

    fn membership_entry(term: u64, index: u64, voters: &[u64]) -> Entry<u64, BasicNode> {
        let nodes = voters.iter().map(|v| (NodeId(*v), BasicNode::new(format!("n{v}")))).collect();
        Entry { log_id: id(term, index), payload: EntryPayload::Membership(Membership::new_uniform(nodes).unwrap()) }
    }

    impl Entry<u64, BasicNode> {
        fn payload_membership(self) -> Membership<BasicNode> {
            match self.payload {
                EntryPayload::Membership(m) => m,
                _ => unreachable!("a membership entry"),
            }
        }
    }

    fn blank(term: u64, index: u64) -> Entry<u64, BasicNode> {
        Entry { log_id: id(term, index), payload: EntryPayload::Blank }
    }

    #[test]
    fn truncate_reverts_the_effective_membership() {
        let mut log = Log::new(None, None, Default::default(), 0);
        log.push(membership_entry(1, 1, &[1]));
        log.push(blank(1, 2));
        log.push(membership_entry(1, 3, &[1, 2]));
        assert_eq!(log.effective_membership().unwrap().log_id, Some(id(1, 3)));
        log.truncate(LogIndex(3));
        assert_eq!(log.effective_membership().unwrap().log_id, Some(id(1, 1)));
        assert_eq!(log.last_log_id(), Some(id(1, 2)));
    }

    #[test]
    fn purge_keeps_the_membership_in_force() {
        let mut log = Log::new(None, None, Default::default(), 0);
        log.push(membership_entry(1, 1, &[1]));
        log.push(blank(1, 2));
        log.push(blank(1, 3));
        log.purge(id(1, 2));
        assert_eq!(log.first_index(), LogIndex(3));
        assert_eq!(log.log_id_at(LogIndex(2)), Some(id(1, 2)));
        assert_eq!(log.get(LogIndex(2)), None);
        assert_eq!(log.effective_membership().unwrap().log_id, Some(id(1, 1)));
        assert_eq!(log.slice(LogIndex(3), 10).len(), 1);
    }

    /// Seed 600386 (WAL=1): leader 3 proposed [{1},{1,4}] at 204, leaving
    /// itself out until the exit committed; snapshots at 206 and 211 purged
    /// entry 194, the last that named it, and neither it nor its followers
    /// knew its address: no acknowledgement reached it for 20 s.
    #[test]
    fn a_node_named_only_by_purged_memberships_keeps_its_address() {
        let mut log = Log::new(None, None, Default::default(), 0);
        log.push(membership_entry(1, 1, &[3, 1]));
        log.push(membership_entry(1, 2, &[1, 4]));
        log.push(blank(1, 3));
        log.purge(id(1, 3));
        assert!(!log.ever_names(NodeId(3)));
        assert_eq!(log.latest_node(NodeId(3)), Some(&BasicNode::new("n3")), "after a purge");
        let m =
            StoredMembership { log_id: Some(id(2, 6)), membership: membership_entry(2, 6, &[1]).payload_membership() };
        log.install_snapshot(id(2, 9), m, &Default::default());
        assert_eq!(log.latest_node(NodeId(3)), Some(&BasicNode::new("n3")), "after a snapshot replaced the log");
        assert_eq!(log.latest_node(NodeId(4)), Some(&BasicNode::new("n4")));
        assert_eq!(log.latest_node(NodeId(5)), None);
    }

    #[test]
    fn snapshot_not_in_log_replaces_it() {
        let mut log = Log::new(None, None, Default::default(), 0);
        log.push(blank(1, 1));
        log.push(blank(1, 2));
        let m = StoredMembership {
            log_id: Some(id(2, 4)),
            membership: Membership::new_uniform([(NodeId(1), BasicNode::new("a"))].into()).unwrap(),
        };
        log.install_snapshot(id(2, 5), m, &Default::default());
        assert_eq!(log.last_log_id(), Some(id(2, 5)));
        assert_eq!(log.get(LogIndex(5)), None, "the snapshot replaced the entries");
        assert_eq!(log.get(LogIndex(1)), None);
        assert_eq!(log.effective_membership().unwrap().log_id, Some(id(2, 4)));
    }
}
