//! Closed-loop clients: each sends one operation, waits for it, sends the
//! next. Shared by ferraft's benchmarks and the side-by-side comparison with
//! openraft, so both systems are timed by the same loop.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::latency::Latencies;

/// What a closed-loop run measured.
#[derive(Debug, Default)]
pub struct ClosedLoopRun {
    /// Every operation's latency.
    pub latencies: Latencies,
    /// From the first operation sent to the last one answered.
    pub elapsed: Duration,
}

/// Runs `clients` tokio tasks, each doing `rounds` operations one after
/// another; the first failure ends the run with its error.
pub async fn run_closed_loop<Op, Fut>(clients: u64, rounds: u64, op: Op) -> Result<ClosedLoopRun, String>
where
    Op: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                for _ in 0..rounds {
                    let t = Instant::now();
                    op().await?;
                    latencies.record(t.elapsed());
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    for task in tasks {
        latencies.merge(task.await.map_err(|e| e.to_string())??);
    }
    Ok(ClosedLoopRun { latencies, elapsed: started.elapsed() })
}
