//! `ferraft bench ...`: runs the chosen benchmark and prints its report.

use std::process::ExitCode;

use crate::cli::{BenchArgs, BenchCommand, ClusterArgs, DurableArgs};

/// Runs the benchmark `args` names. Each builds its own runtime, sized by its
/// flags: call this outside any runtime.
pub fn run(args: &BenchArgs) -> ExitCode {
    match &args.command {
        BenchCommand::Minimal(m) => {
            let options = crate::minimal::MinimalOptions {
                clients: m.clients,
                operations: m.operations,
                members: m.members,
                batch: m.batch,
                workers: m.server_workers,
            };
            println!(
                "bench minimal: {} members, {} clients x {} in flight, {} writes, {} workers",
                m.members, m.clients, m.batch, m.operations, m.server_workers
            );
            match crate::minimal::run(&options) {
                Ok(report) => {
                    println!(
                        "{:.0} put/s ({} writes in {:.3} s); latency {}",
                        report.puts_per_second,
                        report.writes,
                        report.elapsed.as_secs_f64(),
                        report.latency
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        BenchCommand::Durable(d) => bench_durable(d),
        BenchCommand::CatchUp(c) => {
            println!("{}", crate::kv_server::catch_up::describe(c));
            match crate::kv_server::catch_up::run(c) {
                Ok(report) => {
                    for line in report.lines() {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        BenchCommand::Cluster(c) => bench_cluster(c),
    }
}

fn bench_cluster(args: &ClusterArgs) -> ExitCode {
    use crate::kv_server::cluster::{self, Protocol};
    println!("{}", cluster::describe(args));
    if args.table {
        return match crate::kv_server::cluster_table::run(args) {
            Ok(table) => {
                println!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let ours = match cluster::run(args) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!("ferraft: {}", ours.line(args.workload));
    if args.vs_etcd {
        match cluster::run_on(args, Protocol::Etcd) {
            Ok(etcd) => {
                println!("etcd:    {}", etcd.line(args.workload));
                println!("ratio:   {:.2}× etcd's ops/s", ours.ops_per_second / etcd.ops_per_second.max(1e-9));
            }
            // a missing etcd skips the comparison; ours stands
            Err(e) => eprintln!("warning: --vs-etcd: {e}"),
        }
    }
    ExitCode::SUCCESS
}

fn bench_durable(args: &DurableArgs) -> ExitCode {
    use crate::kv_server::{dongting, durable};
    println!("{}", durable::describe(args));
    if args.no_fsync {
        eprintln!("warning: --no-fsync: the WAL never syncs; these figures are NOT durable writes (UNSAFE)");
    }
    let ours = match durable::run(args) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", ours.line());
    if !args.vs_dongting {
        return ExitCode::SUCCESS;
    }
    match dongting::run(args) {
        Ok(theirs) => {
            for line in &theirs.lines {
                println!("  | {line}");
            }
            println!("{}", ours.line());
            println!("{}", dongting::line(&theirs));
            let p99 = theirs.latency_us.map_or(String::new(), |l| {
                format!(", p99 ratio (ferraft/dongting) {:.2}", f64::from(ours.latency_us[2]) / l[2].max(1) as f64)
            });
            println!("ratio ferraft/dongting put/s: {:.2}{p99}", ours.puts_per_second / theirs.ops_per_second);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: --vs-dongting: {e}");
            ExitCode::FAILURE
        }
    }
}
