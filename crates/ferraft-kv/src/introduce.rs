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
use ferraft::message::VoteRequest;
use ferraft::{Envelope, Message, MessageBody, NodeId, ServerState, Vote};
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
        let request = VoteRequest {
            candidate_node: Some(node.clone()),
            vote: Vote::new(0, *id),
            last_log_id: None,
            pre_vote: true,
            transfer: false,
        };
        let envelope = Envelope { cluster_id: CLUSTER_ID, from: *id, to: ctx.id };
        ctx.raft.receive(Message { envelope, body: MessageBody::Vote(request) });
    }
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
