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
    })
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

/// The status object of the API.
pub fn status(m: &RaftMetrics<KvNode>) -> Value {
    let mut status = json!({
        "id": m.id,
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
        let peers: Map<String, Value> =
            replication.iter().map(|(id, r)| (id.to_string(), crate::catch_up_view::peer_json(r))).collect();
        status["replication"] = Value::Object(peers);
    }
    status
}
