//! The JSON shapes of memberships and node status.

use ferraft::log_id::index_of;
use ferraft::{RaftMetrics, ServerState, StoredMembership};
use serde_json::{json, Map, Value};

use crate::kv::KvNode;

/// The membership object `M` of the API.
pub fn membership(stored: Option<&StoredMembership<KvNode>>, committed: bool) -> Value {
    let Some(stored) = stored else {
        return json!({"log_index": 0, "committed": false, "configs": [], "voters": [], "learners": [], "nodes": {}});
    };
    let m = &stored.membership;
    json!({
        "log_index": index_of(stored.log_id),
        "committed": committed,
        "configs": m.configs(),
        "voters": m.voter_set(),
        "learners": m.learner_set(),
        "nodes": m.nodes(),
        "incarnations": incarnations(m),
    })
}

/// Each member's recorded incarnation, as hex (issue 18); a member missing
/// is not known yet.
fn incarnations(m: &ferraft::Membership<KvNode>) -> Value {
    m.incarnations().iter().map(|(id, i)| (id.to_string(), json!(format!("{i:016x}")))).collect()
}

/// The membership object of a change's result: the library answers a change
/// only once its (final) entry is committed, though this node's published
/// metrics may not show that commit yet.
pub fn membership_result(stored: &StoredMembership<KvNode>) -> Value {
    membership(Some(stored), true)
}

/// The role as written in the status object.
pub fn role(state: ServerState) -> &'static str {
    match state {
        ServerState::Uninitialized => "uninitialized",
        ServerState::Learner => "learner",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Leader => "leader",
        ServerState::Removed => "removed",
        #[allow(unreachable_patterns)]
        _ => "unknown",
    }
}

/// The status object of a node advertising `me`: [`status`], and whether
/// the membership records other addresses for it (`address_mismatch`).
pub fn status_of(m: &RaftMetrics<KvNode>, me: &KvNode) -> Value {
    let mut status = status(m);
    status["address_mismatch"] = crate::address_check::mismatch(me, m).unwrap_or(Value::Null);
    status
}

/// The status object of the API.
pub fn status(m: &RaftMetrics<KvNode>) -> Value {
    let mut status = json!({
        "id": m.id,
        "cluster_id": crate::cluster_identity::cluster_id_json(m),
        "incarnation": format!("{:016x}", m.incarnation),
        "incarnation_mismatch": crate::incarnation_view::self_mismatch(m),
        "role": role(m.state),
        "term": m.current_term,
        "leader": m.current_leader,
        "last_log_index": m.last_log_index,
        "committed": index_of(m.committed),
        "applied": index_of(m.last_applied),
        "snapshot_index": m.snapshot.map(|s| s.index),
        "membership": membership(m.membership.as_ref(), m.membership_committed),
    });
    if let Some(replication) = &m.replication {
        let peers: Map<String, Value> = replication
            .iter()
            .map(|(id, r)| {
                let mut peer = crate::catch_up_view::peer_json(r);
                if let Some(refusal) = m.refused_peers.get(id) {
                    peer["refused"] = json!(refusal.to_string());
                }
                (id.to_string(), peer)
            })
            .collect();
        status["replication"] = Value::Object(peers);
    }
    status
}

/// The answer of `GET /v1/cluster/changes/{id}`.
pub fn change_status(change_id: &str, status: &ferraft::ChangeStatus<KvNode>) -> Value {
    use ferraft::ChangeStatus as S;
    let (state, extra) = match status {
        S::Pending => ("pending", json!({})),
        S::Proposed { log_id } => ("proposed", json!({ "log_index": log_id.index })),
        S::Joint { membership } => ("joint", json!({ "membership": membership_result(membership) })),
        S::Committed { membership } => ("committed", json!({ "membership": membership_result(membership) })),
        S::RolledBack { membership } => ("rolled_back", json!({ "membership": membership_result(membership) })),
        S::Superseded { membership } => ("superseded", json!({ "membership": membership_result(membership) })),
        S::Failed { reason } => ("failed", json!({ "reason": reason })),
        S::Unknown => ("unknown", json!({})),
    };
    let mut answer = json!({ "change_id": change_id, "status": state });
    if let (Some(answer), Some(extra)) = (answer.as_object_mut(), extra.as_object()) {
        answer.extend(extra.clone());
    }
    answer
}

#[cfg(test)]
mod tests {
    use ferraft::{LeaderId, LogId, LogIndex, Membership, NodeId, Term};

    use super::*;

    /// The API's JSON carries node ids and indexes as plain numbers (and
    /// node ids as the keys of `nodes`), as before they had types of their own.
    #[test]
    fn the_membership_object_shows_ids_and_indexes_as_plain_numbers() {
        let node = |port: u16| KvNode { raft: format!("h:{port}"), api: format!("h:{}", port + 1) };
        let members = [(NodeId(1), node(7001)), (NodeId(2), node(7003))].into();
        let membership = Membership::new(vec![[NodeId(1)].into()], members).unwrap();
        let log_id = LogId::new(LeaderId::new(Term(3), NodeId(1)), LogIndex(12));
        let stored = StoredMembership { log_id: Some(log_id), membership };
        let expected = json!({
            "log_index": 12,
            "committed": true,
            "configs": [[1]],
            "voters": [1],
            "learners": [2],
            "nodes": {"1": {"raft": "h:7001", "api": "h:7002"}, "2": {"raft": "h:7003", "api": "h:7004"}},
            "incarnations": {},
        });
        assert_eq!(serde_json::to_string(&membership_result(&stored)).unwrap(), expected.to_string());
    }
}
