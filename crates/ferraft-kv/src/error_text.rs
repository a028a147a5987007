//! What the server tells its users when a membership change is refused.
//!
//! The library's messages name its own API (`add_learner`, `SetNodes`, an
//! `Option`'s debug form), which means nothing to someone using the HTTP API
//! or `ferraft ctl`: these name the requests and commands instead.

use ferraft::{ChangeMembersError, ChangeMembershipError, NodeId};

use crate::kv::KvNode;

/// The message for a refused membership change.
pub fn change_message(e: &ChangeMembershipError<KvNode>) -> String {
    match e {
        ChangeMembershipError::Invalid(invalid) => change_members_message(invalid),
        ChangeMembershipError::Mismatch { voters, learners } => format!(
            "the membership is not as expected: the voters are {}, the learners {}",
            ids(voters.iter()),
            ids(learners.iter())
        ),
        ChangeMembershipError::WrongPrepareIndex { given, pending: Some(pending) } => format!(
            "{given} is not the index of the prepared membership: that is {pending} \
             (the prepare_index that `ferraft ctl prepare` printed)"
        ),
        ChangeMembershipError::WrongPrepareIndex { given, pending: None } => {
            format!("{given} is not the index of a prepared membership: none is pending")
        }
        ChangeMembershipError::NoPendingJoint => {
            "no prepared (joint) membership is pending: start one with `ferraft ctl prepare` \
             (POST /v1/cluster/membership/prepare)"
                .into()
        }
        other => other.to_string(),
    }
}

fn change_members_message(e: &ChangeMembersError) -> String {
    match e {
        ChangeMembersError::NotLearner { node_id } => format!(
            "node {node_id} is not a learner: add it first with `ferraft ctl add-learner {node_id} --raft .. --api ..` \
             (POST /v1/cluster/learners), then make it a voter"
        ),
        ChangeMembersError::NodeIsVoter { node_id } => format!(
            "node {node_id} is a voter: remove it first with `ferraft ctl change remove-voters {node_id}` \
             (change remove_voters), then remove the node"
        ),
        ChangeMembersError::NodeExists { node_id } => format!(
            "node {node_id} is already a member with other addresses: change them with \
             `ferraft ctl change set-nodes` (change set_nodes)"
        ),
        other => other.to_string(),
    }
}

fn ids<'a>(ids: impl Iterator<Item = &'a NodeId>) -> String {
    let list: Vec<String> = ids.map(NodeId::to_string).collect();
    if list.is_empty() {
        "none".into()
    } else {
        format!("[{}]", list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferraft::LogIndex;

    /// Library names a user of the API or ctl cannot act on.
    const LIBRARY_WORDS: &[&str] = &["add_learner", "SetNodes", "RemoveVoters", "Some(", "None", "{"];

    #[test]
    fn refusals_name_requests_and_commands_not_library_items() {
        let errors: Vec<ChangeMembershipError<KvNode>> = vec![
            ChangeMembersError::NotLearner { node_id: NodeId(9) }.into(),
            ChangeMembersError::NodeIsVoter { node_id: NodeId(2) }.into(),
            ChangeMembersError::NodeExists { node_id: NodeId(3) }.into(),
            ChangeMembershipError::Mismatch { voters: [NodeId(1), NodeId(2)].into(), learners: [].into() },
            ChangeMembershipError::WrongPrepareIndex { given: LogIndex(36), pending: Some(LogIndex(37)) },
            ChangeMembershipError::WrongPrepareIndex { given: LogIndex(36), pending: None },
            ChangeMembershipError::NoPendingJoint,
        ];
        for e in &errors {
            let message = change_message(e);
            for word in LIBRARY_WORDS {
                assert!(!message.contains(word), "{message:?} names {word:?}");
            }
        }
        assert!(change_message(&errors[0]).contains("ferraft ctl add-learner 9"));
        assert!(change_message(&errors[4]).contains("that is 37"));
    }
}
