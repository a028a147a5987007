//! The wiped-disk fault: a node comes back with an empty disk and a new
//! incarnation under its old id, which must never cost a committed write.

use ferraft::{ChangeMembers, Incarnation, NodeId};
use rand::seq::IteratorRandom;
use rand::Rng;

use super::Simulation;
use crate::host_parts::SimReply;

/// The incarnation of node `id`'s first disk.
pub(super) fn first_incarnation(id: NodeId) -> Option<Incarnation> {
    Incarnation::new(id.0)
}

impl Simulation {
    /// With the fault on, sometimes replaces crashed node `id`'s disk by an
    /// empty one of a new incarnation: only while every config of a leader's
    /// membership keeps a majority of members that are their recorded self
    /// and no membership request is open, else no operator path could bring
    /// the cluster back (that takes force-new-cluster); and not inside the
    /// window `docs::operations` leaves open (below).
    pub(super) fn maybe_wipe(&mut self, id: NodeId) {
        if !self.options.wipe_disks || !self.rng.gen_bool(0.5) || !self.may_wipe(id) {
            return;
        }
        // unique per run: one crash per node at a time
        let number = (self.now + 1) * 1_000 + id.0;
        let incarnation = Incarnation::new(number);
        let node = &mut self.nodes[Self::idx(id)];
        node.disk.lock().expect("single-threaded").wipe(incarnation);
        // the real WAL's disk goes too: before, only the shadow disk was
        // wiped, and the WAL recovered the old vote and log (every WAL=1
        // WIPE_DISKS=1 seed with a wipe failed "the vote saved last was None")
        if let Some(wal) = node.wal.as_mut() {
            wal.wipe(number);
        }
        self.stats.wipes += 1;
        self.trace(|| format!("n{id}'s disk is wiped: new incarnation {incarnation:?}"));
    }

    fn may_wipe(&self, id: NodeId) -> bool {
        // a change still queued may go on to a config the wiped node is
        // needed in, and only force-new-cluster gets out of that
        if self.checkers.answers.has_open() || self.checkers.answers.has_open_promotion() {
            return false;
        }
        // the window the operations guide leaves open: a voter whose
        // membership does not record the node's incarnation (an initial
        // member that initialized without its answer and has not received
        // a leader's record since) counts a wiped node's vote, and operators
        // are told not to lose a disk then (seed 1303650 of the lease-stress
        // runs with wipes: node 3 initialized while cut off and later won
        // the vote of node 1 wiped)
        let unrecorded = self.nodes.iter().filter_map(|n| n.engine()).any(|e| {
            e.membership()
                .map(|m| &m.membership)
                .is_some_and(|m| e.id() != id && m.is_voter(e.id()) && m.is_voter(id) && m.incarnation(id) == 0)
        });
        if unrecorded {
            return false;
        }
        let leader = self.nodes.iter().filter_map(|n| n.engine()).find(|e| e.is_leader());
        let Some(membership) = leader.and_then(|e| e.membership()).map(|m| &m.membership) else { return false };
        let stale = |member: NodeId| {
            let recorded = membership.incarnation(member);
            let disk =
                Incarnation::wire(self.nodes[Self::idx(member)].disk.lock().expect("single-threaded").incarnation());
            // not recorded yet counts as not itself: the cluster cannot tell
            member == id || recorded != disk
        };
        membership.configs().iter().all(|config| config.iter().filter(|m| !stale(**m)).count() * 2 > config.len())
    }

    /// Before a membership change on leader `i`, the operator asks each
    /// wiped member who it is now, so the change can record its new
    /// incarnation.
    pub(super) fn probe_wiped(&mut self, i: usize) {
        if !self.options.wipe_disks {
            return;
        }
        let Some(membership) = self.nodes[i].engine().and_then(|e| e.membership()) else { return };
        let wiped: Vec<NodeId> = membership
            .membership
            .nodes()
            .keys()
            .copied()
            .filter(|id| self.nodes[Self::idx(*id)].disk.lock().expect("single-threaded").was_wiped())
            .collect();
        for id in wiped {
            // the answer reaches the engine, which records the incarnation
            let node = self.node_addr(id);
            self.call(i, |host| host.probe_peer(id, node, SimReply::new(|_| ())));
        }
    }

    /// While leader `i`'s membership names a member that is not its recorded
    /// self, the operator's churn does nothing but bring it back, as the
    /// operations guide says: a wiped voter is demoted to learner (retained),
    /// which records its new incarnation (a learner's is recorded once the
    /// leader heard it, from the probe). Whether such a member exists.
    pub(super) fn readmit_wiped(&mut self, i: usize) -> bool {
        if !self.options.wipe_disks {
            return false;
        }
        let Some(membership) = self.nodes[i].engine().and_then(|e| e.membership()) else { return false };
        let m = membership.membership.clone();
        let stale = m.nodes().keys().copied().filter(|id| {
            let disk =
                Incarnation::wire(self.nodes[Self::idx(*id)].disk.lock().expect("single-threaded").incarnation());
            m.incarnation(*id) != disk
        });
        let Some(id) = stale.choose(&mut self.rng) else { return false };
        if !m.is_voter(id) {
            // the probe above told the leader its new incarnation: the
            // leader records it by itself
            return true;
        }
        let change = ChangeMembers::RemoveVoters([id].into());
        let request_id = self.next_request;
        self.next_request += 1;
        self.trace(|| format!("operator readmits wiped n{id}"));
        self.request_change(i, request_id, change, true);
        true
    }
}
