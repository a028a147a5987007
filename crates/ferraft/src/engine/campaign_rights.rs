//! Who may start an election. Voters campaign; learners and removed nodes do
//! not (they would only disrupt), except while the membership that made them
//! so may not be in force for good and the others may need them to lead.

use super::Engine;
use crate::entry::AppData;
use crate::incarnation::incarnations_agree;
use crate::log_id::index_of;
use crate::membership::StoredMembership;
use crate::node::Node;

impl<C: AppData, N: Node> Engine<C, N> {
    /// An election asked for now (`Raft::trigger_elect`): a campaign for a
    /// real vote at once, by a node that may campaign at all (a vote saved
    /// before an initial entry is durable is what `may_campaign` prevents).
    pub fn elect_now(&mut self) {
        if !self.is_leader() && self.may_campaign() {
            self.campaign(false, false);
        }
    }

    /// Whether an election timeout starts a campaign. Votes are always
    /// counted by the membership in force (the last in the log, committed or
    /// not), which is what keeps elections safe (Raft thesis §4.1), so letting
    /// a non-voter campaign is a liveness matter only: its own vote does not
    /// count, and it leads only with a quorum of that membership.
    pub(crate) fn may_campaign(&self) -> bool {
        if self.removed_by_quorum || self.durable.is_none() {
            // nothing durable yet (an initialize not flushed): a vote saved
            // now could survive a crash that loses the entry, and the node
            // would come back elected once with an empty log, looking fresh
            return false;
        }
        self.is_voter() || self.is_voter_of_committed_membership() || self.may_finish_own_removal()
    }

    /// A voter of the last committed membership keeps campaigning while a
    /// membership without it is pending: it may hold that entry alone, and
    /// the others may need its vote (Raft thesis §4.2.2).
    fn is_voter_of_committed_membership(&self) -> bool {
        self.log.membership_at(index_of(self.committed)).is_some_and(|m| self.is_voter_of(m))
    }

    /// A node that the membership in force makes a learner or removes, and
    /// that is a voter of the membership entry before it, campaigns while it
    /// does not know that entry committed. Its known commit point may lag
    /// (it restarted, and a store's saved commit point may lag), so
    /// [`is_voter_of_committed_membership`](Self::is_voter_of_committed_membership)
    /// does not see that the entry before committed. The others may hold only
    /// that entry before, still need this node's vote, and are refused
    /// because its log is longer: no one else can win (sim seeds 21978, 22167
    /// and 31048 of the WAL=1 MEMBERSHIP_STRESS=1 runs). As leader it
    /// commits the membership that demotes it and hands over, as a leader
    /// removed by its own proposal does (Raft thesis §4.2.2: a server not in
    /// its latest configuration still starts elections, as it may be needed
    /// until that configuration commits). Once it knows that membership
    /// committed, it stops.
    fn may_finish_own_removal(&self) -> bool {
        !self.breaks(crate::config::BrokenRule::DemotedNeverCampaigns)
            && !self.is_voter()
            && !self.membership_committed()
            && self.log.previous_membership().is_some_and(|m| self.is_voter_of(m))
    }

    /// As the incarnation that membership records: a wiped node holding an
    /// old config that named its old self is not that voter.
    fn is_voter_of(&self, stored: &StoredMembership<N>) -> bool {
        stored.membership.is_voter(self.id)
            && incarnations_agree(stored.membership.incarnation(self.id), self.incarnation)
    }
}
