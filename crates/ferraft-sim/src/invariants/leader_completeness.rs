//! Leader completeness: a leader of term `t` holds every entry committed in a
//! term before `t` (Raft §5.4). Checked at the moment a node becomes leader,
//! against the committed chain.
//!
//! Only strictly older terms are required: a slow candidate of an old term may
//! still win an election after a newer leader committed something, and that is
//! allowed (it cannot commit anything: its term is stale everywhere).

use ferraft::{LeaderId, NodeId};

use super::{Check, CommittedNeverLost, LogView, Violation};

const RULE: &str = "leader completeness";

/// Stateless: the committed chain is the state.
#[derive(Debug, Default)]
pub struct LeaderCompleteness;

impl LeaderCompleteness {
    /// `node` just became leader as `leader_id` with `log`.
    pub fn observe_new_leader(
        &self,
        node: NodeId,
        leader_id: LeaderId,
        log: &(impl LogView + ?Sized),
        committed: &CommittedNeverLost,
    ) -> Check {
        for (index, log_id, term) in committed.entries_from(log.first_known_index()) {
            if term >= leader_id.term {
                continue;
            }
            let found = log.log_id_at(index);
            if found != Some(log_id) {
                let found = found.map_or("nothing".to_string(), |l| l.to_string());
                return Err(Violation {
                    rule: RULE,
                    detail: format!(
                        "node {node} became leader {leader_id} holding {found} at index {index}, \
                         but {log_id} was committed there in term {term}"
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferraft::{LogId, Term};

    use crate::invariants::test_log_id as id;

    #[test]
    fn a_leader_missing_an_older_committed_entry_is_caught() {
        let mut committed = CommittedNeverLost::default();
        committed.observe_commit(NodeId(1), id(1, 1, 1), Term(1)).unwrap();
        committed.observe_commit(NodeId(1), id(1, 1, 2), Term(1)).unwrap();
        let check = LeaderCompleteness;
        let complete = [id(1, 1, 1), id(1, 1, 2)];
        check.observe_new_leader(NodeId(2), LeaderId::new(Term(2), NodeId(2)), &complete[..], &committed).unwrap();
        let missing = [id(1, 1, 1)];
        assert!(check
            .observe_new_leader(NodeId(3), LeaderId::new(Term(3), NodeId(3)), &missing[..], &committed)
            .is_err());
    }

    #[test]
    fn a_stale_term_leader_is_not_required_to_hold_newer_commits() {
        let mut committed = CommittedNeverLost::default();
        committed.observe_commit(NodeId(1), id(5, 1, 1), Term(5)).unwrap();
        let empty: [LogId; 0] = [];
        LeaderCompleteness
            .observe_new_leader(NodeId(2), LeaderId::new(Term(4), NodeId(2)), &empty[..], &committed)
            .unwrap();
    }
}
