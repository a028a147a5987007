//! Node addresses: refused before they are committed when they cannot be an
//! address, and a node whose advertised address differs from what the
//! membership records for it says so (status, metrics, a WARN with the fix).

use ferraft::{ChangeMembers, NodeId, RaftMetrics};
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::kv::KvNode;
use crate::KvRaft;

/// Whether `addr` reads as `host:port`: a non-empty host (a name, an IPv4
/// address or a bracketed IPv6 address) and a port from 1 to 65535. Nothing
/// is resolved: a name may only exist where the node runs.
pub fn is_host_port(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else { return false };
    let port_ok = port.parse::<u16>().is_ok_and(|port| port > 0);
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']').is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        }
    };
    port_ok && host_ok
}

/// Refuses node id 0: the metrics write 0 for "no leader"
/// (`ferraft_leader_id`), so a node 0 leading would read as none.
pub fn check_id(id: NodeId) -> Result<(), ApiError> {
    if id == NodeId(0) {
        return Err(ApiError::bad_request(
            "node id 0 is reserved (the metrics use 0 for \"no leader\"): node ids start at 1; nothing was changed",
        )
        .with("node_id", id));
    }
    Ok(())
}

/// Refuses a node descriptor with id 0 or addresses that are not `host:port`.
pub fn check_node(id: NodeId, node: &KvNode) -> Result<(), ApiError> {
    check_id(id)?;
    for (what, addr) in [("raft", &node.raft), ("api", &node.api)] {
        if !is_host_port(addr) {
            return Err(ApiError::bad_request(format!(
                "node {id}: {what} address {addr:?} is not host:port; nothing was changed"
            ))
            .with("node_id", id));
        }
    }
    Ok(())
}

/// Refuses a change that names node id 0 or would record an address that is
/// not `host:port`.
pub fn check_change(change: &ChangeMembers<KvNode>) -> Result<(), ApiError> {
    match change {
        ChangeMembers::AddVoters(nodes)
        | ChangeMembers::AddNodes(nodes)
        | ChangeMembers::SetNodes(nodes)
        | ChangeMembers::ReplaceAllNodes(nodes) => nodes.iter().try_for_each(|(id, node)| check_node(*id, node)),
        ChangeMembers::AddVoterIds(ids)
        | ChangeMembers::RemoveVoters(ids)
        | ChangeMembers::ReplaceAllVoters(ids)
        | ChangeMembers::RemoveNodes(ids) => ids.iter().try_for_each(|id| check_id(*id)),
    }
}

/// The addresses this node advertises that differ from the ones the
/// membership records for it: `{"raft": {"membership": .., "advertised": ..}}`
/// (and/or `"api"`), or `None` when they agree or it is not a member.
pub fn mismatch(me: &KvNode, metrics: &RaftMetrics<KvNode>) -> Option<Value> {
    let recorded = metrics.membership.as_ref()?.membership.node(metrics.id)?;
    let mut differing = Map::new();
    for (what, ours, theirs) in [("raft", &me.raft, &recorded.raft), ("api", &me.api, &recorded.api)] {
        if ours != theirs {
            differing.insert(what.into(), json!({ "membership": theirs, "advertised": ours }));
        }
    }
    (!differing.is_empty()).then_some(Value::Object(differing))
}

/// The operator command that records what this node advertises.
pub fn fix_command(id: NodeId, me: &KvNode) -> String {
    format!("ferraft ctl change set-nodes {id}={},{}", me.raft, me.api)
}

/// The `/metrics` lines of the address check.
pub fn mismatch_metric(me: &KvNode, metrics: &RaftMetrics<KvNode>) -> String {
    let value = u64::from(mismatch(me, metrics).is_some());
    format!(
        "# HELP ferraft_address_mismatch 1 when the membership records other addresses for this node than it advertises.\n\
         # TYPE ferraft_address_mismatch gauge\nferraft_address_mismatch {value}\n"
    )
}

/// Logs a WARN, with the command that fixes it, whenever the membership
/// starts recording other addresses for this node than it advertises (after
/// a restart on a new address, or a wrong `set-nodes`). Ends with the node.
pub fn spawn_mismatch_warnings(raft: KvRaft, me: KvNode) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut metrics = raft.metrics();
        let mut warned: Option<Value> = None;
        loop {
            let seen = mismatch(&me, &metrics.borrow_and_update());
            if let Some(differing) = seen.as_ref().filter(|_| seen != warned) {
                let id = raft.id();
                tracing::warn!(
                    node = %id,
                    mismatch = %differing,
                    "the membership records other addresses for this node than it advertises; peers use the \
                     recorded ones. If this node moved, record its new addresses: {}",
                    fix_command(id, &me)
                );
            }
            warned = seen;
            if metrics.changed().await.is_err() {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_port_is_an_address() {
        for good in ["127.0.0.1:7001", "node-1.example:80", "[::1]:9", "localhost:65535"] {
            assert!(is_host_port(good), "{good}");
        }
        for bad in ["notanaddr", "h:", ":80", "h:0", "h:65536", "h:p", "a b:1", "[::1:9", "[x]:9", ""] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}
