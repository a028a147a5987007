//! `bench cluster --table`: the README's table in one command: puts at 1,
//! 64 and 256 closed-loop clients and linearizable gets at 64, each on a
//! fresh cluster, with etcd's figures beside ours when `--vs-etcd` is given.

use super::cluster::{run_on, ClusterReport, Protocol};
use super::thousands;
use crate::cli::{ClusterArgs, ClusterWorkload};

/// The loads of the table: what, and with how many clients.
const ROWS: [(ClusterWorkload, u64); 4] =
    [(ClusterWorkload::Put, 1), (ClusterWorkload::Put, 64), (ClusterWorkload::Put, 256), (ClusterWorkload::Get, 64)];

/// One row: ours and, if asked, etcd's.
struct Row {
    workload: ClusterWorkload,
    clients: u64,
    ours: ClusterReport,
    etcd: Option<Result<ClusterReport, String>>,
}

/// Runs every row; prints each result as it comes, then the table in markdown.
pub fn run(args: &ClusterArgs) -> Result<String, String> {
    let etcd_available = if args.vs_etcd {
        match super::etcd::locate() {
            Ok(_) => true,
            Err(e) => {
                eprintln!("warning: {e}");
                false
            }
        }
    } else {
        false
    };
    let load_before = load_average();
    let mut rows = Vec::new();
    for (workload, clients) in ROWS {
        let row_args = ClusterArgs { workload, clients, table: false, ..args.clone() };
        let ours = run_on(&row_args, Protocol::Ferraft)?;
        println!("ferraft {workload:?} x{clients}: {}", ours.line(workload));
        let etcd = etcd_available.then(|| run_on(&row_args, Protocol::Etcd));
        match &etcd {
            Some(Ok(report)) => println!("etcd    {workload:?} x{clients}: {}", report.line(workload)),
            Some(Err(e)) => println!("etcd    {workload:?} x{clients}: failed: {e}"),
            None => {}
        }
        rows.push(Row { workload, clients, ours, etcd });
    }
    let load_after = load_average();
    Ok(format!("{}\nload average (1 min) before: {load_before}, after: {load_after}", table(&rows)))
}

/// `p50 / p99` in milliseconds.
fn latency(report: &ClusterReport) -> String {
    let [p50, _, p99, _] = report.latency_us;
    format!("{:.2} / {:.2} ms", f64::from(p50) / 1000.0, f64::from(p99) / 1000.0)
}

fn cpu(report: &ClusterReport) -> String {
    report.server_cpu_us_per_op.map_or("?".to_owned(), |us| format!("{us:.0} µs"))
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| load | clients | ferraft ops/s | p50 / p99 | server CPU/op | etcd ops/s | p50 / p99 | server CPU/op | ratio |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in rows {
        let what = match row.workload {
            ClusterWorkload::Put => "put",
            ClusterWorkload::Get => "linearizable get",
            ClusterWorkload::Mixed => "mixed",
        };
        let ours = &row.ours;
        let theirs = match &row.etcd {
            Some(Ok(etcd)) => format!(
                "{} | {} | {} | {:.2}×",
                thousands(etcd.ops_per_second),
                latency(etcd),
                cpu(etcd),
                ours.ops_per_second / etcd.ops_per_second.max(1e-9)
            ),
            Some(Err(_)) => "failed | | | ".to_owned(),
            None => "– | | | ".to_owned(),
        };
        let failed = if ours.failed > 0 { format!(" ({} failed)", ours.failed) } else { String::new() };
        out.push_str(&format!(
            "| {what} | {} | {}{failed} | {} | {} | {theirs} |\n",
            row.clients,
            thousands(ours.ops_per_second),
            latency(ours),
            cpu(ours)
        ));
    }
    out
}

/// The 1-minute load average, to say how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
