//! What the process benchmarks share: the local `ferraft serve` nodes they
//! start, stopping on Ctrl-C or SIGTERM, and killing every node however a run
//! ends (a benchmark never leaves servers behind).

use std::future::Future;
use std::path::Path;

use ferraft_kv::harness::LocalNode;

/// Nodes 1..=`count` (not started), each with `workers` runtime threads.
pub(super) fn local_nodes(exe: &Path, dir: &Path, count: u64, workers: u16) -> Vec<LocalNode> {
    (1..=count)
        .map(|id| {
            let mut node = LocalNode::new(exe, id, dir);
            node.workers = Some(workers);
            node
        })
        .collect()
}

/// Runs `bench` until it ends or the user stops it (Ctrl-C, SIGTERM).
pub(super) async fn until_stopped<T>(bench: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::select! {
        result = bench => result,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        _ = terminated() => Err("terminated".to_owned()),
    }
}

/// Kills every node; after a failed run, first shows the end of each log.
pub(super) async fn stop_nodes(nodes: &mut [LocalNode], failed: bool) {
    if failed {
        print_logs(nodes);
    }
    for node in nodes {
        node.kill9().await;
    }
}

/// Resolves on SIGTERM (never, if it cannot be watched).
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

fn print_logs(nodes: &[LocalNode]) {
    for node in nodes {
        if let Ok(log) = std::fs::read_to_string(&node.log) {
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            for line in tail.iter().rev() {
                eprintln!("node {}: {line}", node.id);
            }
        }
    }
}
