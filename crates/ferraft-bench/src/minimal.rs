//! The framework-overhead benchmark: the same workload as openraft's
//! `benchmarks/minimal`. One process, 1/3/5 nodes, in-memory log store, a no-op
//! state machine, an in-process network of direct calls, empty requests; `C`
//! closed-loop clients each writing one entry at a time, `N` writes in total.

use std::collections::BTreeMap;
use std::time::Duration;

use ferraft::mem::{MemLogStore, MemRouter, NoopStateMachine};
use ferraft::{BasicNode, Config, NodeId, Raft};

use crate::closed_loop::{run_closed_loop, ClosedLoopRun};

/// What to run.
#[derive(Debug, Clone)]
pub struct MinimalOptions {
    /// Concurrent clients.
    pub clients: u64,
    /// Total writes.
    pub operations: u64,
    /// Cluster size (1, 3 or 5).
    pub members: u64,
    /// Writes each client keeps in flight (1 = one at a time).
    pub batch: u64,
    /// Tokio worker threads.
    pub workers: usize,
}

/// What it measured.
#[derive(Debug, Clone)]
pub struct MinimalReport {
    /// Writes per second.
    pub puts_per_second: f64,
    /// Writes done.
    pub writes: u64,
    /// Wall time of the write phase.
    pub elapsed: Duration,
    /// Latency percentiles.
    pub latency: String,
}

/// Runs the benchmark on a fresh multi-threaded tokio runtime.
pub fn run(options: &MinimalOptions) -> Result<MinimalReport, String> {
    if !(1..=9).contains(&options.members) {
        return Err(format!("members must be 1..=9, got {}", options.members));
    }
    if options.clients == 0 || options.batch == 0 || options.operations < options.clients * options.batch {
        return Err("need at least one client, a batch of at least 1, and a batch of writes per client".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: &MinimalOptions) -> Result<MinimalReport, String> {
    let router = MemRouter::<()>::new();
    let config = Config { election_timeout_min_ms: 1000, election_timeout_max_ms: 2000, ..Config::default() };
    let ids: Vec<NodeId> = (1..=options.members).map(NodeId).collect();
    let mut nodes = Vec::new();
    for id in &ids {
        let raft: Raft<NoopStateMachine> =
            Raft::new(*id, config.clone(), router.network(), Box::new(MemLogStore::new()), NoopStateMachine)
                .await
                .map_err(|e| e.to_string())?;
        router.register(format!("n{id}"), raft.clone());
        nodes.push(raft);
    }
    let members: BTreeMap<NodeId, BasicNode> = ids.iter().map(|id| (*id, BasicNode::new(format!("n{id}")))).collect();
    nodes[0].initialize(members).await.map_err(|e| e.to_string())?;
    let leader_id = nodes[0].wait(Duration::from_secs(10)).for_leader().await.map_err(|e| e.to_string())?;
    let leader = nodes[(leader_id.0 - 1) as usize].clone();
    let batch = options.batch;
    let rounds = options.operations / options.clients / batch;
    let write = move || {
        let leader = leader.clone();
        async move {
            if batch == 1 {
                return leader.client_write(()).await.map(|_| ()).map_err(|e| e.to_string());
            }
            let writes: Vec<_> = (0..batch)
                .map(|_| {
                    let leader = leader.clone();
                    tokio::spawn(async move { leader.client_write(()).await.map(|_| ()) })
                })
                .collect();
            for w in writes {
                w.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    };
    let ClosedLoopRun { mut latencies, elapsed } = run_closed_loop(options.clients, rounds, write).await?;
    for node in nodes {
        let _ = node.shutdown().await;
    }
    let writes = rounds * batch * options.clients;
    Ok(MinimalReport {
        puts_per_second: writes as f64 / elapsed.as_secs_f64(),
        writes,
        elapsed,
        latency: latencies.summary(),
    })
}
