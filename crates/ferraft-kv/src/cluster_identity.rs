//! The cluster id in the server: given at `init` or generated, and shown in
//! the status and the metrics.

use ferraft::{ClusterId, InitializeError, LogId, NodeId, RaftMetrics};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::kv::KvNode;
use crate::KvRaft;

/// The cluster id of an `init` body (hex digits), if one is given.
pub fn parse_cluster_id(text: Option<&str>) -> Result<Option<ClusterId>, ApiError> {
    text.map(|text| text.parse::<ClusterId>().map_err(|e| ApiError::bad_request(e.to_string()))).transpose()
}

/// Initializes `raft` with `members`, in the cluster `cluster_id` when given,
/// else in a new cluster with a random id. A node already in another cluster
/// than the one given is refused even when its voters match (a repeated
/// `init` with the same voters is otherwise a no-op success).
pub async fn initialize(
    raft: &KvRaft,
    members: std::collections::BTreeMap<NodeId, KvNode>,
    cluster_id: Option<ClusterId>,
) -> Result<LogId, InitializeError> {
    if let (Some(ours), Some(given)) = (raft.cluster_id(), cluster_id) {
        if ours != given {
            return Err(InitializeError::OtherCluster { ours, given });
        }
    }
    match cluster_id {
        Some(cluster_id) => raft.initialize_in_cluster(members, cluster_id).await,
        None => raft.initialize(members).await,
    }
}

/// The status object's `cluster_id`: hex digits, or null before the node
/// belongs to a cluster.
pub fn cluster_id_json(metrics: &RaftMetrics<KvNode>) -> Value {
    json!(metrics.cluster_id.map(|id| id.to_string()))
}

/// The `/metrics` lines naming the cluster: an info gauge labelled with the
/// id (absent before the node belongs to a cluster).
pub fn cluster_id_metric(metrics: &RaftMetrics<KvNode>) -> String {
    match metrics.cluster_id {
        Some(id) => format!(
            "# HELP ferraft_cluster_info The cluster this node belongs to.\n\
             # TYPE ferraft_cluster_info gauge\nferraft_cluster_info{{cluster_id=\"{id}\"}} 1\n"
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_init_cluster_id_is_hex_or_refused() {
        assert_eq!(parse_cluster_id(None).unwrap(), None);
        assert_eq!(parse_cluster_id(Some("c0ffee")).unwrap(), ClusterId::new(0xc0ffee));
        assert_eq!(parse_cluster_id(Some("not hex")).unwrap_err().code(), crate::error::Code::BadRequest);
        assert_eq!(parse_cluster_id(Some("0")).unwrap_err().code(), crate::error::Code::BadRequest);
    }
}
