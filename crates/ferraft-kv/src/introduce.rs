//! Works around a gap in the library: a fresh node learns a peer's address
//! only from a `VoteRequest` carrying `candidate_node` (or from its
//! membership, which it has not received yet), so a node added as a learner
//! cannot answer the leader's first appends and never catches up.
//!
//! While a node is being added, the node serving the request tells it the
//! addresses of every member through `POST /v1/internal/peers`; the new node
//! hands each one to its Raft node as a pre-vote request at term 0 that
//! carries the descriptor. A pre-vote changes no state on the receiver; the
//! runtime only records the address, and the answer is ignored by a leader.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use ferraft::message::VoteRequest;
use ferraft::{Envelope, Message, MessageBody, NodeId, Vote};
use serde_json::json;

use crate::api::Ctx;
use crate::kv::KvNode;
use crate::CLUSTER_ID;

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
    let mut nodes =
        ctx.raft.metrics().borrow().membership.as_ref().map(|s| s.membership.nodes().clone()).unwrap_or_default();
    nodes.insert(ctx.id, ctx.me.clone());
    nodes
}

/// Runs `op` while repeatedly introducing the cluster to `newcomers`.
pub async fn while_introducing<T>(ctx: &Ctx, newcomers: Vec<KvNode>, op: impl Future<Output = T>) -> T {
    let introduce = async {
        loop {
            let book = address_book(ctx);
            for node in &newcomers {
                let url = format!("http://{}/v1/internal/peers", node.api);
                let sent = ctx.client.post(url).json(&json!({ "nodes": book })).timeout(Duration::from_secs(1)).send();
                if let Err(e) = sent.await {
                    tracing::debug!(api = %node.api, error = %e, "cannot introduce the cluster to a new node yet");
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    tokio::select! {
        result = op => result,
        () = introduce => unreachable!("the introduction loop never ends"),
    }
}
