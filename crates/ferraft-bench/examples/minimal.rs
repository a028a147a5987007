//! Quick runner until `ferraft bench minimal` is wired: `cargo run --release -p ferraft-bench --example minimal -- C N M`.
fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let options = ferraft_bench::minimal::MinimalOptions {
        clients: args.first().copied().unwrap_or(256),
        operations: args.get(1).copied().unwrap_or(100_000),
        members: args.get(2).copied().unwrap_or(3),
        workers: 2,
    };
    let r = ferraft_bench::minimal::run(&options).expect("bench");
    println!("{options:?}: {:.0} put/s in {:?}, {}", r.puts_per_second, r.elapsed, r.latency);
}
