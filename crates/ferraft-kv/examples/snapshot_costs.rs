//! What a KV snapshot costs, piece by piece, on one thread: the point-in-time
//! copy taken on the Raft task (against a full copy of the map, as before),
//! and decoding a snapshot (binary against the earlier JSON), each the median
//! of several runs. `cargo run --release -p ferraft-kv --example snapshot_costs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferraft::LogIndex;
use ferraft_kv::kv::{decode, KvMap};
use ferraft_kv::kv_map::Versioned;
use ferraft_kv::snapshot_format;

const RUNS: usize = 5;

fn median(mut runs: Vec<Duration>) -> String {
    runs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!("median {:.3} ms (range {:.3}–{:.3})", ms(runs[runs.len() / 2]), ms(runs[0]), ms(runs[runs.len() - 1]))
}

fn timed(mut run: impl FnMut()) -> String {
    median(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                run();
                started.elapsed()
            })
            .collect(),
    )
}

fn entries(keys: usize, value_bytes: usize) -> Vec<(Arc<str>, Versioned)> {
    (0..keys)
        .map(|i| (Arc::from(format!("key{i:010}")), (Arc::from("v".repeat(value_bytes)), ferraft::LogIndex(i as u64))))
        .collect()
}

fn copies(keys: usize) {
    let entries = entries(keys, 256);
    let std_map: HashMap<_, _> = entries.iter().cloned().collect();
    let sharded: KvMap = entries.into_iter().collect();
    println!("{keys} keys: full copy of a std map {}", timed(|| drop(std::hint::black_box(std_map.clone()))));
    println!("{keys} keys: copy of the sharded map  {}", timed(|| drop(std::hint::black_box(sharded.clone()))));
}

fn decodes(keys: usize, value_bytes: usize) {
    let map: KvMap = entries(keys, value_bytes).into_iter().collect();
    let mut binary = Vec::new();
    snapshot_format::write(&mut binary, &map, LogIndex(1)).expect("encodes");
    #[derive(serde::Serialize)]
    struct OldJson<'a> {
        last_command: LogIndex,
        kvs: HashMap<&'a str, (&'a str, LogIndex)>,
    }
    let kvs = map.iter().map(|(k, (v, i))| (&**k, (&**v, *i))).collect();
    let json = serde_json::to_vec(&OldJson { last_command: LogIndex(1), kvs }).expect("encodes");
    let mib = binary.len() / (1024 * 1024);
    println!(
        "{keys} keys of {value_bytes} B ({mib} MiB): decode binary {}",
        timed(|| { drop(std::hint::black_box(decode(&mut &binary[..]).expect("decodes"))) })
    );
    println!(
        "{keys} keys of {value_bytes} B ({mib} MiB): decode JSON   {}",
        timed(|| { drop(std::hint::black_box(decode(&mut &json[..]).expect("decodes"))) })
    );
    let mut sink = Vec::with_capacity(binary.len());
    println!(
        "{keys} keys of {value_bytes} B ({mib} MiB): encode binary {}",
        timed(|| {
            sink.clear();
            snapshot_format::write(&mut sink, &map, LogIndex(1)).expect("encodes")
        })
    );
}

fn main() {
    copies(100_000);
    copies(1_000_000);
    decodes(16_384, 16_384);
    decodes(100_000, 256);
}
