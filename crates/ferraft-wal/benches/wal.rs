//! WAL throughput beside a raw `write + fdatasync` loop on the same file system.
//!
//! `cargo bench -p ferraft-wal --bench wal`. Each row runs for
//! `FERRAFT_WAL_BENCH_SECS` seconds (default 2) in `FERRAFT_WAL_BENCH_DIR`
//! (default: cargo's target tmp dir).
//!
//! - *closed loop*: one append of `batch` entries, wait until reported
//!   durable, repeat: a sync per append, as for a lone client.
//! - *raw*: write the same payload bytes (`batch` x entry size) to a file and
//!   `fdatasync`, repeat: the file system's ceiling for that pattern.
//! - *pipelined*: appends of `batch` entries issued without waiting, up to
//!   1024 entries in flight: group commit coalesces them into fewer syncs.
//!
//! MB/s counts entry payload bytes; the WAL also writes its framing and the
//! entry encoding (about 20 bytes per entry).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferraft::{BasicNode, Entry, EntryPayload, FlushNotifier, LeaderId, LogId, LogIndex, LogStore};
use ferraft_wal::conformance::TestData;
use ferraft_wal::{WalOptions, WalStore};

/// One measured row: totals over all its slices.
#[derive(Default)]
struct Row {
    entries: u64,
    syncs: u64,
    secs: f64,
    entry_bytes: usize,
}

impl Row {
    fn add(&mut self, other: Row) {
        self.entries += other.entries;
        self.syncs += other.syncs;
        self.secs += other.secs;
        self.entry_bytes = other.entry_bytes;
    }

    fn entries_per_sec(&self) -> f64 {
        self.entries as f64 / self.secs
    }

    fn megabytes_per_sec(&self) -> f64 {
        self.entries_per_sec() * self.entry_bytes as f64 / 1e6
    }

    fn syncs_per_sec(&self) -> f64 {
        self.syncs as f64 / self.secs
    }
}

/// The highest index reported durable, and a way to wait for it.
#[derive(Default)]
struct Durable {
    index: Mutex<LogIndex>,
    changed: Condvar,
}

impl Durable {
    fn notifier(self: &Arc<Self>) -> FlushNotifier {
        let durable = self.clone();
        FlushNotifier::new(move |log_id: LogId| {
            *durable.index.lock().unwrap() = log_id.index;
            durable.changed.notify_one();
        })
    }

    fn wait_for(&self, index: LogIndex) {
        let mut durable = self.index.lock().unwrap();
        while *durable < index {
            durable = self.changed.wait(durable).unwrap();
        }
    }
}

fn fresh_dir(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn raw_row(base: &Path, entry_bytes: usize, batch: usize, run: Duration) -> Row {
    let dir = fresh_dir(base, "raw");
    let mut file = File::create(dir.join("raw.log")).unwrap();
    let buf = vec![0x5au8; entry_bytes * batch];
    let (started, mut syncs) = (Instant::now(), 0u64);
    while started.elapsed() < run {
        file.write_all(&buf).unwrap();
        file.sync_data().unwrap();
        syncs += 1;
    }
    Row { entries: syncs * batch as u64, syncs, secs: started.elapsed().as_secs_f64(), entry_bytes }
}

fn wal_row(base: &Path, entry_bytes: usize, batch: usize, in_flight: usize, run: Duration) -> Row {
    let dir = fresh_dir(base, "wal");
    let mut wal = WalStore::<TestData, BasicNode>::open(&dir, WalOptions::new(1, 1)).unwrap();
    wal.read_state().unwrap();
    let payload = Bytes::from(vec![0x5au8; entry_bytes]);
    let mut entries: Vec<Entry<TestData, BasicNode>> = (0..batch)
        .map(|_| Entry {
            log_id: LogId::new(LeaderId::new(1, 1), 0),
            payload: EntryPayload::Normal(TestData::new(payload.clone())),
        })
        .collect();
    let durable = Arc::new(Durable::default());
    let notifier = durable.notifier();
    // Not timed: the first append creates the segment (three syncs).
    let warm_up = Entry { log_id: LogId::new(LeaderId::new(1, 1), 1), payload: EntryPayload::Blank };
    wal.append(&[warm_up], &notifier).unwrap();
    durable.wait_for(1);
    let (started, mut next, mut appends) = (Instant::now(), 2, 0u64);
    while started.elapsed() < run {
        for entry in &mut entries {
            entry.log_id.index = next;
            next += 1;
        }
        wal.append(&entries, &notifier).unwrap();
        appends += 1;
        durable.wait_for((next - 1).saturating_sub(in_flight as u64));
    }
    durable.wait_for(next - 1);
    let secs = started.elapsed().as_secs_f64();
    drop(wal);
    // Closed loop: one sync per append. Pipelined: syncs are not counted.
    let syncs = if in_flight == 0 { appends } else { 0 };
    Row { entries: next - 2, syncs, secs, entry_bytes }
}

/// Slices per row (alternating raw and WAL).
const SLICES: u32 = 8;

fn main() {
    let secs: f64 = std::env::var("FERRAFT_WAL_BENCH_SECS").map_or(2.0, |v| v.parse().expect("seconds"));
    let run = Duration::from_secs_f64(secs);
    let base = std::env::var_os("FERRAFT_WAL_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wal-bench"), PathBuf::from);
    println!("WAL benchmark in {} ({secs} s per row)", base.display());
    println!(
        "| {:<10} | {:>5} | {:>5} | {:>12} | {:>9} | {:>9} | {:>10} |",
        "mode", "entry", "batch", "entries/s", "MB/s", "syncs/s", "WAL/raw"
    );
    println!("|{:-<12}|{:->7}|{:->7}|{:->14}|{:->11}|{:->11}|{:->12}|", "", "", "", "", "", "", "");
    let print = |mode: &str, batch: usize, row: &Row, ratio: Option<(f64, &str)>| {
        let ratio = ratio.map_or(String::new(), |(ratio, unit)| format!("{:.0}% {unit}", ratio * 100.0));
        let syncs = if row.syncs == 0 { "-".to_string() } else { format!("{:.0}", row.syncs_per_sec()) };
        println!(
            "| {mode:<10} | {:>5} | {batch:>5} | {:>12.0} | {:>9.1} | {syncs:>9} | {ratio:>10} |",
            row.entry_bytes,
            row.entries_per_sec(),
            row.megabytes_per_sec()
        );
    };
    // The disk may be shared and its speed drifts: alternate raw and WAL in
    // short slices so both see the same conditions.
    let slice = run / SLICES;
    for entry_bytes in [128, 4096] {
        for batch in [1, 64, 1024] {
            let (mut raw, mut wal) = (Row::default(), Row::default());
            for _ in 0..SLICES {
                raw.add(raw_row(&base, entry_bytes, batch, slice));
                wal.add(wal_row(&base, entry_bytes, batch, 0, slice));
            }
            print("raw", batch, &raw, None);
            let ratio = if batch == 1 {
                (wal.syncs_per_sec() / raw.syncs_per_sec(), "syncs")
            } else {
                (wal.megabytes_per_sec() / raw.megabytes_per_sec(), "MB/s")
            };
            print("wal closed", batch, &wal, Some(ratio));
        }
        let pipelined = wal_row(&base, entry_bytes, 1, 1024, run);
        print("wal pipe", 1, &pipelined, None);
    }
    let _ = std::fs::remove_dir_all(&base);
}
