//! Helps a node that is being added catch up, working around two gaps in the
//! library (reported in the ferraft-kv notes):
//!
//! 1. A fresh node learns a peer's address only from a `VoteRequest` carrying
//!    `candidate_node` (or from its membership, which it has not received
//!    yet), so it cannot answer the leader's first appends. The node serving
//!    the request tells the newcomer every member's address through
//!    `POST /v1/internal/peers`; the newcomer hands each one to its Raft node
//!    as a pre-vote request at term 0 carrying the descriptor. A pre-vote
//!    changes no state; the runtime records the address and a leader ignores
//!    the answer.
//! 2. The leader starts a new member's progress after its own last entry, so
//!    with no further write it only sends heartbeats, which the empty
//!    follower accepts: it never receives the log. Appending a no-op entry
//!    makes the leader probe, find the gap and stream the log.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferraft::log_id::index_of;
use ferraft::{Message, NodeId, ServerState, Vote};
use serde_json::json;

use crate::api::Ctx;
use crate::kv::{Command, KvNode};
use crate::CLUSTER_ID;

/// How often a newcomer is nudged.
const NUDGE_INTERVAL: Duration = Duration::from_millis(300);
/// How many nudges follow the end of the request that added it.
const NUDGES_AFTER: usize = 20;

/// Hands the addresses in `nodes` to the local Raft node.
pub fn learn_addresses(ctx: &Ctx, nodes: &BTreeMap<NodeId, KvNode>) {
    for (id, node) in nodes {
        if *id == ctx.id {
            continue;
        }
        match address_message(ctx.id, *id, node) {
            Ok(message) => ctx.raft.receive(message),
            Err(e) => tracing::warn!(error = %e, "cannot build an address introduction; skipped"),
        }
    }
}

/// A pre-vote request at term 0 from `from` carrying its descriptor. Built
/// through serde rather than struct literals, so a field the library adds to
/// its messages turns into a logged skip here, never a build failure.
fn address_message(to: NodeId, from: NodeId, node: &KvNode) -> Result<Message<Command, KvNode>, serde_json::Error> {
    let value = json!({
        "envelope": { "cluster_id": CLUSTER_ID, "from": from, "to": to },
        "body": { "Vote": {
            "candidate_node": node,
            "vote": serde_json::to_value(Vote::new(0, from))?,
            "last_log_id": null,
            "pre_vote": true,
            "transfer": false,
        } },
    });
    serde_json::from_value(value)
}

/// The address book this node can share: every member plus itself.
fn address_book(ctx: &Ctx) -> BTreeMap<NodeId, KvNode> {
    let metrics = ctx.raft.metrics();
    let mut nodes = metrics.borrow().membership.as_ref().map(|s| s.membership.nodes().clone()).unwrap_or_default();
    nodes.insert(ctx.id, ctx.me.clone());
    nodes
}

/// Newcomers the leader has not matched any entry with yet; empty when this
/// node is not the leader (the leader's own request does the work).
fn lagging(ctx: &Ctx, newcomers: &[(NodeId, KvNode)]) -> Vec<(NodeId, KvNode)> {
    let metrics = ctx.raft.metrics();
    let m = metrics.borrow();
    if m.state != ServerState::Leader {
        return Vec::new();
    }
    let in_membership = |id: &NodeId| m.membership.as_ref().is_some_and(|s| s.membership.is_member(*id));
    newcomers
        .iter()
        .filter(|(id, _)| in_membership(id) || m.replication.as_ref().is_some_and(|r| r.contains_key(id)))
        .filter(|(id, _)| m.replication.as_ref().and_then(|r| r.get(id)).is_none_or(|p| index_of(p.matched) == 0))
        .cloned()
        .collect()
}

/// Introduces the cluster to `newcomers` and, if the leader has not matched
/// them yet, appends a no-op. Returns whether nothing more is needed.
async fn nudge(ctx: &Ctx, newcomers: &[(NodeId, KvNode)], before_commit: bool) -> bool {
    let lagging = if before_commit { newcomers.to_vec() } else { lagging(ctx, newcomers) };
    if lagging.is_empty() {
        return true;
    }
    let book = address_book(ctx);
    for (_, node) in &lagging {
        let url = format!("http://{}/v1/internal/peers", node.api);
        let sent = ctx.client.post(url).json(&json!({ "nodes": book })).timeout(Duration::from_secs(1)).send();
        if let Err(e) = sent.await {
            tracing::debug!(api = %node.api, error = %e, "cannot introduce the cluster to a new node yet");
        }
    }
    if !self::lagging(ctx, newcomers).is_empty() {
        let _ = tokio::time::timeout(Duration::from_secs(1), ctx.raft.client_write(Command::Noop)).await;
    }
    false
}

/// Runs `op` (which adds `newcomers`) while nudging them, then keeps nudging
/// in the background until the leader replicates to them (or a few seconds pass).
pub async fn while_introducing<T>(ctx: &Arc<Ctx>, newcomers: Vec<(NodeId, KvNode)>, op: impl Future<Output = T>) -> T {
    if newcomers.is_empty() {
        return op.await;
    }
    let during = async {
        loop {
            nudge(ctx, &newcomers, true).await;
            tokio::time::sleep(NUDGE_INTERVAL).await;
        }
    };
    let result = tokio::select! {
        result = op => result,
        () = during => unreachable!("the nudge loop never ends"),
    };
    let ctx = ctx.clone();
    tokio::spawn(async move {
        for _ in 0..NUDGES_AFTER {
            if nudge(&ctx, &newcomers, false).await {
                return;
            }
            tokio::time::sleep(NUDGE_INTERVAL).await;
        }
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferraft::MessageBody;

    #[test]
    fn the_introduction_is_a_term_0_pre_vote_carrying_the_address() {
        let node = KvNode { raft: "h:1".into(), api: "h:2".into() };
        let message = address_message(4, 1, &node).unwrap();
        assert_eq!((message.envelope.from, message.envelope.to, message.envelope.cluster_id), (1, 4, CLUSTER_ID));
        let MessageBody::Vote(request) = message.body else { panic!("not a vote request") };
        assert!(request.pre_vote && !request.transfer);
        assert_eq!(request.candidate_node, Some(node));
        assert_eq!(request.vote, Vote::new(0, 1));
    }
}
