//! What the simulator tells the membership answer checker about the
//! membership calls it makes: who was asked what, and what the call returned.

use ferraft::{BasicNode, ChangeMembershipError, LogIndex};

use super::Simulation;
use crate::invariants::{Asked, RequestHandle};

impl Simulation {
    /// Tells the answer checker node `i` is asked `asked` now.
    pub(super) fn issue_membership_request(
        &mut self,
        i: usize,
        request_id: Option<u64>,
        asked: Asked,
    ) -> RequestHandle {
        let engine = self.nodes[i].engine.as_ref();
        let leader = engine.filter(|e| e.is_leader()).map(|e| e.vote().leader_id);
        self.checkers.answers.issue(self.nodes[i].id, request_id, asked, leader, self.now)
    }

    /// Tells the answer checker what a membership call on node `i` returned:
    /// `Some(index)` for the entry it proposed (prepare / commit / abort).
    pub(super) fn membership_call_returned(
        &mut self,
        i: usize,
        handle: RequestHandle,
        result: Option<Result<Option<LogIndex>, ChangeMembershipError<BasicNode>>>,
    ) {
        let answers = &mut self.checkers.answers;
        match result {
            Some(Ok(None)) => {}
            Some(Ok(Some(index))) => {
                let log_id = self.nodes[i].engine.as_ref().and_then(|e| e.log().log_id_at(index));
                answers.proposed(handle, log_id);
            }
            Some(Err(e)) => {
                let result = answers.refused(handle, &e);
                self.check(result);
            }
            // the node was down: the call was never made
            None => answers.proposed(handle, None),
        }
    }
}
