//! The `ferraft` binary: `serve`, `ctl` and `demo`.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use ferraft_kv::cli::{BenchArgs, BenchCommand, Cli, ClusterArgs, DurableArgs, ServeArgs, Top};
use ferraft_kv::server::{ServeOptions, Server};

/// glibc's malloc was a quarter of the durable benchmark's CPU; mimalloc cuts
/// the CPU per durable put by ~40% (measured side by side, 2000 in flight).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc asks the kernel for transparent huge pages on its arena, and a
/// 2 MiB page stays resident while any object on it lives: the scattered
/// small allocations of log entries, messages and replies then kept ~40 MiB
/// more resident (`bench durable --in-flight 2000`: peak RSS 285-294 MiB
/// with them, 249 without) for no throughput measured. Setting
/// `MIMALLOC_ALLOW_THP` (e.g. to 1) leaves the choice to mimalloc.
fn keep_small_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

fn main() -> ExitCode {
    keep_small_pages();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            let rendered = e.to_string();
            let parts: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            let message = format!("{} (see --help)", parts.join(" "));
            if wants_json_errors() {
                println!("{}", serde_json::json!({ "error": { "code": "usage", "message": message } }));
            } else {
                eprintln!("{message}");
            }
            return ExitCode::from(2);
        }
    };
    if let Top::Bench(args) = &cli.command {
        return bench(args);
    }
    let mut builder = match &cli.command {
        Top::Serve(ServeArgs { workers: Some(workers), .. }) => runtime_with(*workers),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Top::Serve(args) => runtime.block_on(serve(args)),
        Top::Ctl(args) => ExitCode::from(runtime.block_on(ferraft_kv::ctl::run(args))),
        Top::Bench(_) => unreachable!("handled before the runtime starts"),
        Top::Demo => match runtime.block_on(ferraft_kv::demo::run()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo failed: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `ferraft ctl --json ...`: a script that asked for JSON gets its usage
/// errors as JSON error objects too, though the command line did not parse.
fn wants_json_errors() -> bool {
    let mut args = std::env::args().skip(1);
    args.next().as_deref() == Some("ctl") && args.take_while(|a| a != "--").any(|a| a == "--json")
}

/// A runtime of `workers` threads; with one, everything runs on this thread.
fn runtime_with(workers: u16) -> tokio::runtime::Builder {
    if workers == 1 {
        return tokio::runtime::Builder::new_current_thread();
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(usize::from(workers));
    builder
}

/// Benchmarks build their own runtime, sized by their flags.
fn bench(args: &BenchArgs) -> ExitCode {
    match &args.command {
        BenchCommand::Minimal(m) => {
            let options = ferraft_bench::minimal::MinimalOptions {
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
            match ferraft_bench::minimal::run(&options) {
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
            println!("{}", ferraft_kv::bench::catch_up::describe(c));
            match ferraft_kv::bench::catch_up::run(c) {
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
    use ferraft_kv::bench::cluster::{self, Protocol};
    println!("{}", cluster::describe(args));
    if args.table {
        return match ferraft_kv::bench::cluster_table::run(args) {
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
    use ferraft_kv::bench::{dongting, durable};
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

async fn serve(args: ServeArgs) -> ExitCode {
    init_logging();
    let options = ServeOptions {
        id: ferraft::NodeId(args.id),
        data_dir: args.data_dir,
        raft_listen: args.raft_listen,
        api_listen: args.api_listen,
        raft_advertise: args.raft_advertise,
        api_advertise: args.api_advertise,
        snapshot_max_bytes_per_s: args.snapshot_max_mib_per_s.saturating_mul(1024 * 1024),
    };
    let server = match Server::start(options).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRAFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,ferraft::runtime=info,ferraft_kv=info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
