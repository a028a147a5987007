//! `change_status(id)` tells where a change stands as the committed log shows it.
//!
//! Asked of a leader (which holds every committed entry, or remembers the
//! changes whose entries it compacted), the status must agree with the
//! committed entries tagged with the id (see `change_id_once`):
//!
//! - `Unknown` or `Failed`: no committed entry carries the id;
//! - `Committed` / `RolledBack`: the membership it names committed, at or
//!   after the id's first committed entry;
//! - `Joint` / `Superseded`: the id's first committed entry is a joint step.
//!
//! `Pending` and `Proposed` are not judged: a new leader may not know yet
//! that an entry committed.

use ferraft::{BasicNode, ChangeStatus, NodeId};

use super::change_id_once::Runs;
use super::{Check, CommittedNeverLost, Violation};

const RULE: &str = "change status";

/// Judges `status`, which leader `node` gave for `change_id`, against the committed `runs`.
pub fn check_status(
    node: NodeId,
    change_id: &str,
    status: &ChangeStatus<BasicNode>,
    runs: &Runs,
    chain: &CommittedNeverLost,
) -> Check {
    let run = runs.get(change_id).map(Vec::as_slice).unwrap_or_default();
    let first = run.first();
    let wrong = match status {
        ChangeStatus::Unknown | ChangeStatus::Failed { .. } => first.is_some(),
        ChangeStatus::Committed { membership } | ChangeStatus::RolledBack { membership } => {
            !(membership.log_id.is_some_and(|l| chain.holds(l))
                && first.is_some_and(|(f, _)| Some(f.index) <= membership.log_id.map(|l| l.index)))
        }
        ChangeStatus::Joint { .. } | ChangeStatus::Superseded { .. } => !first.is_some_and(|(_, m)| m.is_joint()),
        ChangeStatus::Pending | ChangeStatus::Proposed { .. } => false,
    };
    if !wrong {
        return Ok(());
    }
    let shown: Vec<String> = run.iter().map(|(l, m)| format!("{l}: {m}")).collect();
    Err(Violation {
        rule: RULE,
        detail: format!(
            "leader n{node} says change id {change_id:?} stands {status:?}; the id's committed entries: [{}]",
            shown.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use ferraft::{Membership, StoredMembership, Term};

    use super::*;
    use crate::invariants::test_log_id as id;

    #[test]
    fn unknown_for_a_committed_change_is_caught() {
        let nodes = (1..=3).map(|n| (NodeId(n), BasicNode::new(format!("n{n}")))).collect();
        let membership = Membership::new(vec![(1..=3).map(NodeId).collect()], nodes).unwrap();
        let mut chain = CommittedNeverLost::default();
        chain.observe_commit(NodeId(1), id(1, 1, 1), Term(1)).unwrap();
        let runs: Runs = [("a".to_string(), vec![(id(1, 1, 1), membership.clone())])].into();
        assert!(check_status(NodeId(1), "a", &ChangeStatus::Unknown, &runs, &chain).is_err());
        assert!(check_status(NodeId(1), "b", &ChangeStatus::Unknown, &runs, &chain).is_ok());
        let committed =
            ChangeStatus::Committed { membership: StoredMembership { log_id: Some(id(1, 1, 1)), membership } };
        assert!(check_status(NodeId(1), "a", &committed, &runs, &chain).is_ok());
        assert!(check_status(NodeId(1), "b", &committed, &runs, &chain).is_err());
    }
}
