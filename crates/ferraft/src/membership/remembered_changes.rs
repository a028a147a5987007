//! Changes with a client change id whose entries left the log (purged
//! behind a snapshot, or dropped from the memory cache).
//!
//! A repeat of a change is answered from the entries its id is written in;
//! once those are compacted the id would be forgotten and a retry planned
//! again ("remove voter 3" after someone re-added 3). So the last
//! [`Config::remembered_change_ids`](crate::Config::remembered_change_ids)
//! such changes are kept here, with what answering a repeat needs, and
//! travel in the snapshot's metadata: a node that installs the snapshot, or
//! restarts from it, knows them too.
//!
//! A change holds up to three memberships, each with every member's
//! descriptor: a few hundred bytes in a small cluster, tens of KB in one of
//! hundreds of nodes. So only the newest that fit in
//! [`RememberedChanges::MAX_BYTES`] (1 MiB) encoded are kept: the record
//! goes whole in the first chunk of a snapshot transfer, which must stay
//! well below the transport's largest frame (16 MiB by default) next to its
//! 1 MiB of data.

use serde::{Deserialize, Serialize};

use super::{Membership, StoredMembership};
use crate::engine::entry_bytes::encoded_size;
use crate::log_id::{index_of, LogId};

/// One change whose first entry left the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "N: crate::Node")]
pub struct RememberedChange<N> {
    /// The change's first entry (committed); its membership carries the id.
    pub first: StoredMembership<N>,
    /// The membership before `first` (id and incarnations left out), to tell
    /// a repeat from another change under the same id; `None` when this node
    /// never held it (then a repeat is taken for the same change).
    pub before: Option<Membership<N>>,
    /// `first` is the joint step of a change that leaves it after.
    pub joint: bool,
    /// For a joint step: the first membership after it with other configs
    /// (its exit, its revert, or another change), once that left the log too.
    pub next: Option<StoredMembership<N>>,
}

/// The remembered changes, oldest first, each id once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "N: crate::Node")]
pub struct RememberedChanges<N> {
    changes: Vec<RememberedChange<N>>,
}

impl<N> Default for RememberedChanges<N> {
    fn default() -> Self {
        Self { changes: Vec::new() }
    }
}

impl<N: crate::Node> RememberedChanges<N> {
    /// The most bytes the remembered changes take encoded: beyond it the
    /// oldest go, as beyond `Config::remembered_change_ids`.
    pub const MAX_BYTES: u64 = 1 << 20;

    /// The change `change_id`, if remembered.
    pub fn get(&self, change_id: &str) -> Option<&RememberedChange<N>> {
        self.changes.iter().find(|c| c.first.membership.change_id() == Some(change_id))
    }

    /// The remembered first entry at `log_id`.
    pub fn entry(&self, log_id: LogId) -> Option<&StoredMembership<N>> {
        self.changes.iter().map(|c| &c.first).find(|f| f.log_id == Some(log_id))
    }

    /// The remembered membership that followed the joint step at `log_id`.
    pub fn next_after(&self, log_id: LogId) -> Option<&StoredMembership<N>> {
        self.changes.iter().find(|c| c.first.log_id == Some(log_id)).and_then(|c| c.next.as_ref())
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Takes in `left`, committed memberships leaving the log, in log order,
    /// the first of them preceded by `before` (if known): each change's first
    /// entry is remembered, and a remembered joint step learns what followed
    /// it. Keeps the newest `bound`.
    pub fn remember_left<'a>(
        &mut self,
        left: impl IntoIterator<Item = &'a StoredMembership<N>>,
        mut before: Option<&'a Membership<N>>,
        bound: usize,
    ) {
        for m in left {
            for joint in self.changes.iter_mut().filter(|c| c.joint && c.next.is_none()) {
                if index_of(m.log_id) > index_of(joint.first.log_id)
                    && m.membership.configs() != joint.first.membership.configs()
                {
                    joint.next = Some(m.clone());
                }
            }
            if let Some(change_id) = m.membership.change_id() {
                if self.get(change_id).is_none() {
                    let joint = m.membership.is_joint() && before.is_none_or(|b| b.configs() != m.membership.configs());
                    let before = before.map(|b| b.clone().with_change_id(None).with_incarnations(Default::default()));
                    self.changes.push(RememberedChange { first: m.clone(), before, joint, next: None });
                }
            }
            before = Some(&m.membership);
        }
        self.keep_newest(bound);
    }

    /// Adds the changes of `other` (a snapshot's) not remembered yet; keeps
    /// the newest `bound`.
    pub fn merge(&mut self, other: &Self, bound: usize) {
        for change in &other.changes {
            let id = change.first.membership.change_id();
            match self.changes.iter_mut().find(|c| c.first.membership.change_id() == id) {
                Some(known) => {
                    known.next = known.next.take().or_else(|| change.next.clone());
                    known.before = known.before.take().or_else(|| change.before.clone());
                }
                None => self.changes.push(change.clone()),
            }
        }
        self.keep_newest(bound);
    }

    /// Keeps the newest `bound` changes, and of them as many of the newest
    /// as fit in [`MAX_BYTES`](Self::MAX_BYTES).
    fn keep_newest(&mut self, bound: usize) {
        self.changes.sort_by_key(|c| c.first.log_id);
        let mut kept = 0;
        let mut bytes = 0;
        for change in self.changes.iter().rev().take(bound) {
            bytes += encoded_size(change);
            if bytes > Self::MAX_BYTES {
                break;
            }
            kept += 1;
        }
        let excess = self.changes.len() - kept;
        self.changes.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader_id::LeaderId;
    use crate::node::{BasicNode, LogIndex, NodeId, Term};

    fn stored(index: u64, voters: &[u64], change_id: Option<&str>) -> StoredMembership<BasicNode> {
        let nodes = (1..=4).map(|id| (NodeId(id), BasicNode::new(format!("n{id}")))).collect();
        let configs = vec![voters.iter().copied().map(NodeId).collect()];
        let membership = Membership::new(configs, nodes).unwrap().with_change_id(change_id.map(str::to_string));
        StoredMembership { log_id: Some(LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(index))), membership }
    }

    #[test]
    fn only_the_newest_bound_changes_are_kept() {
        let mut changes = RememberedChanges::default();
        let left = [stored(1, &[1], Some("a")), stored(2, &[1, 2], Some("b")), stored(3, &[1, 2, 3], Some("c"))];
        changes.remember_left(&left, None, 2);
        assert!(changes.get("a").is_none(), "the oldest is forgotten");
        assert_eq!(changes.get("b").unwrap().before.as_ref().unwrap().configs(), left[0].membership.configs());
        assert!(changes.get("c").is_some());
        changes.merge(
            &RememberedChanges {
                changes: vec![RememberedChange { first: left[0].clone(), before: None, joint: false, next: None }],
            },
            2,
        );
        assert!(changes.get("a").is_none(), "a merge keeps the bound too");
    }

    #[test]
    fn the_newest_changes_are_kept_within_max_bytes() {
        // a membership of 500 nodes: a remembered change takes tens of KB
        let nodes: std::collections::BTreeMap<_, _> =
            (1..=500).map(|id| (NodeId(id), BasicNode::new(format!("node-{id:03}.example.net:7000")))).collect();
        let left: Vec<_> = (1..=100)
            .map(|i| {
                let voters = [1, 2, 3 + i % 2].into_iter().map(NodeId).collect();
                let membership = Membership::new(vec![voters], nodes.clone()).unwrap();
                let log_id = LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(i));
                StoredMembership { log_id: Some(log_id), membership: membership.with_change_id(Some(format!("c{i}"))) }
            })
            .collect();
        let mut changes = RememberedChanges::default();
        changes.remember_left(&left, None, 1_000);
        let size = encoded_size(&changes);
        assert!(size <= RememberedChanges::<BasicNode>::MAX_BYTES, "{size} bytes");
        assert!(size > RememberedChanges::<BasicNode>::MAX_BYTES * 9 / 10, "as many as fit: {size} bytes");
        assert!(changes.len() < 100, "the oldest went: {} kept", changes.len());
        assert!(changes.get("c100").is_some(), "the newest stays");
        assert!(changes.get("c1").is_none(), "the oldest goes");
        let before = changes.len();
        changes.merge(&RememberedChanges::default(), 1_000);
        assert_eq!(changes.len(), before);
    }
}
