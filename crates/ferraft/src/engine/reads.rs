//! Linearizable reads by read index, and lease reads.

use super::role::Role;
use super::{Engine, Output};
use crate::entry::AppData;
use crate::error::ReadError;
use crate::log_id::index_of;
use crate::node::{LogIndex, Node, NodeId};

/// A read waiting for a quorum to confirm this leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRead {
    /// The caller's id for it.
    pub request_id: u64,
    /// What must be applied before the read may run.
    pub read_index: LogIndex,
    /// Acknowledgements of messages with at least this sequence confirm it.
    pub seq: u64,
    /// The follower that asked for this read index (`None`: a read here).
    pub asker: Option<NodeId>,
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// Registers a linearizable read. `Output::ReadReady` follows once a quorum
    /// confirmed this node still leads after the read arrived; the read index
    /// is at least this term's first entry, so no extra blank-entry round is needed.
    pub fn read_index(&mut self, request_id: u64) -> Result<(), ReadError<N>> {
        let committed = index_of(self.committed);
        let Role::Leader(leader) = &mut self.role else {
            return Err(ReadError::ForwardToLeader(self.forward_to_leader()));
        };
        let read_index = leader.read_floor(committed);
        leader.reads.push_back(PendingRead { request_id, read_index, seq: leader.seq + 1, asker: None });
        leader.read_round_needed = true;
        self.maybe_confirm_reads();
        Ok(())
    }

    /// A read index served from the leader lease, with no round trip: valid
    /// while a quorum acknowledged a message sent within the lease window
    /// (followers refuse other candidates for an election timeout after
    /// hearing from the leader).
    pub fn lease_read(&self) -> Result<LogIndex, ReadError<N>> {
        let Role::Leader(leader) = &self.role else {
            return Err(ReadError::ForwardToLeader(self.forward_to_leader()));
        };
        let committed = index_of(self.committed);
        // a TimeoutNow sent, even by a transfer that gave up, may still make
        // its target campaign, and voters grant it despite this lease
        if leader.transfer.is_some() || leader.lease_forfeited || committed < leader.term_start_index {
            return Err(ReadError::LeaseExpired);
        }
        let lease_ms = self.config.election_timeout_min_ms * 9 / 10;
        let Some(membership) = self.effective() else { return Err(ReadError::LeaseExpired) };
        let valid = membership.is_quorum(|id| {
            id == self.id
                || leader.progress.get(&id).is_some_and(|p| p.acked_seq > 0 && p.acked_sent_ms + lease_ms > self.now_ms)
        });
        if valid {
            Ok(leader.read_floor(committed))
        } else {
            Err(ReadError::LeaseExpired)
        }
    }

    /// Releases reads whose confirmation round a quorum has acknowledged.
    pub(crate) fn maybe_confirm_reads(&mut self) {
        let committed = index_of(self.committed);
        let Role::Leader(leader) = &mut self.role else { return };
        if committed < leader.term_start_index {
            return;
        }
        let Some(membership) = self.log.effective_membership() else { return };
        let mut confirmed = Vec::new();
        while let Some(read) = leader.reads.front() {
            // a read index above the commit (followers' flush notices) waits
            // for it: a follower that asked then gets a commit point that
            // covers it, instead of learning it with the next heartbeat
            if read.read_index > committed {
                break;
            }
            let quorum = membership
                .membership
                .is_quorum(|id| id == self.id || leader.progress.get(&id).is_some_and(|p| p.acked_seq >= read.seq));
            if !quorum {
                break;
            }
            confirmed.extend(leader.reads.pop_front());
        }
        for read in confirmed {
            match read.asker {
                Some(asker) => self.answer_read_index(asker, read.request_id, read.read_index),
                None => {
                    self.output.push(Output::ReadReady { request_id: read.request_id, read_index: read.read_index })
                }
            }
        }
    }

    /// One heartbeat round serves every read registered since the last round.
    pub(crate) fn flush_read_round(&mut self) {
        if let Role::Leader(leader) = &mut self.role {
            if std::mem::take(&mut leader.read_round_needed) && !leader.reads.is_empty() {
                self.broadcast_append();
            }
        }
    }
}
