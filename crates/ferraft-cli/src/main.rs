//! The `ferraft` binary: `serve`, `ctl`, `demo` and `bench`.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use cli::{Cli, ServeArgs, Top};
use ferraft_kv::server::{ServeOptions, Server};

mod cli;

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
        return ferraft_bench::command::run(args);
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
        snapshot_every: args.snapshot_every,
        background_job_nice: args.background_job_nice,
        follower_sync_inline: args.follower_sync_inline,
        max_api_connections: args.max_api_connections.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    match ferraft_kv::open_files::raise_to_hard_limit() {
        Some(limit) if limit.now > limit.before => {
            tracing::info!(from = limit.before, to = limit.now, "raised the open-file limit to its hard limit");
        }
        Some(limit) => tracing::debug!(limit = limit.now, "open-file limit"),
        None => tracing::warn!("cannot read the open-file limit"),
    }
    let server = match Server::start(options).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let failure = tokio::select! {
        _ = wait_for_signal() => None,
        failure = server.failed() => Some(failure),
    };
    tracing::info!("shutting down");
    server.shutdown().await;
    match failure {
        None => ExitCode::SUCCESS,
        Some(failure) => {
            eprintln!("error: the node stopped: {failure} (its data dir holds every acknowledged write; fix the cause and start it again)");
            ExitCode::from(1)
        }
    }
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
