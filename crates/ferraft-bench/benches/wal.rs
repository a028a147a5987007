//! WAL throughput beside a raw `write + fdatasync` loop on the same file system.
//!
//! `cargo bench -p ferraft-bench --bench wal`. Each row runs for
//! `FERRAFT_WAL_BENCH_SECS` seconds (default 3) in `FERRAFT_WAL_BENCH_DIR`
//! (default: cargo's target tmp dir).
//!
//! - *closed loop*: one append of `batch` entries, wait until reported
//!   durable, repeat: a sync per append, as for a lone client.
//! - *raw*: write the same payload bytes (`batch` x entry size) to a file and
//!   `fdatasync`, repeat: the file system's ceiling for that pattern.
//! - *pipelined*: appends of one entry issued without waiting, up to 8192
//!   entries in flight: group commit coalesces them into few syncs.
//!
//! Raw and closed-loop WAL cycles alternate one by one, and each side's rate
//! is its count over the time spent in its own cycles, so both see the same
//! disk even when other work on the machine makes its speed drift.
//!
//! MB/s counts entry payload bytes; "file MB/s" counts what reached the file,
//! which for the WAL includes its framing and the entry encoding (about 18
//! bytes per entry: 14% on top of a 128-byte payload).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferraft::testing::conformance::TestData;
use ferraft::{BasicNode, Entry, EntryPayload, FlushNotifier, LeaderId, LogId, LogIndex, LogStore, NodeId, Term};
use ferraft_wal::{WalOptions, WalStore};

/// One measured row: totals over its timed cycles.
#[derive(Default)]
struct Row {
    entries: u64,
    syncs: u64,
    secs: f64,
    entry_bytes: usize,
    /// Bytes written to the file(s), framing and encoding included.
    file_bytes: u64,
}

impl Row {
    fn entries_per_sec(&self) -> f64 {
        self.entries as f64 / self.secs
    }

    fn megabytes_per_sec(&self) -> f64 {
        self.entries_per_sec() * self.entry_bytes as f64 / 1e6
    }

    fn syncs_per_sec(&self) -> f64 {
        self.syncs as f64 / self.secs
    }

    fn file_megabytes_per_sec(&self) -> f64 {
        self.file_bytes as f64 / self.secs / 1e6
    }
}

/// Bytes in the WAL segments of `dir`.
fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum()
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

/// The baseline: `write` + `fdatasync` of the same payload bytes.
struct RawLog {
    file: File,
    buf: Vec<u8>,
}

impl RawLog {
    fn open(base: &Path, entry_bytes: usize, batch: usize) -> Self {
        let file = File::create(fresh_dir(base, "raw").join("raw.log")).unwrap();
        Self { file, buf: vec![0x5a; entry_bytes * batch] }
    }

    fn cycle(&mut self) {
        self.file.write_all(&self.buf).unwrap();
        self.file.sync_data().unwrap();
    }
}

/// The WAL, appending `batch` entries per call.
struct WalLog {
    dir: PathBuf,
    wal: WalStore<TestData, BasicNode>,
    entries: Vec<Entry<TestData, BasicNode>>,
    next: LogIndex,
    durable: Arc<Durable>,
    notifier: FlushNotifier,
}

impl WalLog {
    fn open(base: &Path, entry_bytes: usize, batch: usize) -> Self {
        let dir = fresh_dir(base, "wal");
        let mut wal = WalStore::open(&dir, WalOptions::new(NodeId(1), 1)).unwrap();
        wal.read_state().unwrap();
        let payload = Bytes::from(vec![0x5au8; entry_bytes]);
        let entries = (0..batch)
            .map(|_| Entry {
                log_id: LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(0)),
                payload: EntryPayload::Normal(TestData::new(payload.clone())),
            })
            .collect();
        let durable = Arc::new(Durable::default());
        let notifier = durable.notifier();
        // Not timed: the first append creates the segment (three syncs).
        let warm_up =
            Entry { log_id: LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(1)), payload: EntryPayload::Blank };
        wal.append(&[warm_up], &notifier).unwrap();
        durable.wait_for(LogIndex(1));
        Self { dir, wal, entries, next: LogIndex(2), durable, notifier }
    }

    /// Appends one batch; waits until at most `in_flight` entries are not yet durable.
    fn cycle(&mut self, in_flight: u64) {
        for entry in &mut self.entries {
            entry.log_id.index = self.next;
            self.next += 1;
        }
        self.wal.append(&self.entries, &self.notifier).unwrap();
        self.durable.wait_for((self.next - 1).saturating_back(in_flight));
    }
}

/// Closed loop, raw and WAL cycles interleaved one by one so both see the
/// same disk: on a shared machine its speed changes from second to second.
fn compare(base: &Path, entry_bytes: usize, batch: usize, run: Duration) -> (Row, Row) {
    let mut raw_log = RawLog::open(base, entry_bytes, batch);
    let mut wal_log = WalLog::open(base, entry_bytes, batch);
    let (mut raw, mut wal) = (Row { entry_bytes, ..Row::default() }, Row { entry_bytes, ..Row::default() });
    let started = Instant::now();
    while started.elapsed() < run {
        let cycle = Instant::now();
        raw_log.cycle();
        raw.secs += cycle.elapsed().as_secs_f64();
        let cycle = Instant::now();
        wal_log.cycle(0);
        wal.secs += cycle.elapsed().as_secs_f64();
        raw.syncs += 1;
        wal.syncs += 1;
    }
    raw.entries = raw.syncs * batch as u64;
    wal.entries = wal.syncs * batch as u64;
    raw.file_bytes = raw.entries * entry_bytes as u64;
    wal.file_bytes = segment_bytes(&wal_log.dir);
    (raw, wal)
}

/// Appends of one entry, issued without waiting, up to `in_flight` pending.
fn pipelined(base: &Path, entry_bytes: usize, in_flight: u64, run: Duration) -> Row {
    let mut wal_log = WalLog::open(base, entry_bytes, 1);
    let started = Instant::now();
    while started.elapsed() < run {
        wal_log.cycle(in_flight);
    }
    wal_log.cycle(0);
    let secs = started.elapsed().as_secs_f64();
    Row { entries: (wal_log.next - 2).0, syncs: 0, secs, entry_bytes, file_bytes: segment_bytes(&wal_log.dir) }
}

fn main() {
    let secs: f64 = std::env::var("FERRAFT_WAL_BENCH_SECS").map_or(3.0, |v| v.parse().expect("seconds"));
    let run = Duration::from_secs_f64(secs);
    let base = std::env::var_os("FERRAFT_WAL_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wal-bench"), PathBuf::from);
    println!("WAL benchmark in {} ({secs} s per row)", base.display());
    println!(
        "| {:<10} | {:>5} | {:>5} | {:>12} | {:>9} | {:>10} | {:>9} | {:>10} |",
        "mode", "entry", "batch", "entries/s", "MB/s", "file MB/s", "syncs/s", "WAL/raw"
    );
    println!("|{:-<12}|{:->7}|{:->7}|{:->14}|{:->11}|{:->12}|{:->11}|{:->12}|", "", "", "", "", "", "", "", "");
    let print = |mode: &str, batch: usize, row: &Row, ratio: Option<(f64, &str)>| {
        let ratio = ratio.map_or(String::new(), |(ratio, unit)| format!("{:.0}% {unit}", ratio * 100.0));
        let syncs = if row.syncs == 0 { "-".to_string() } else { format!("{:.0}", row.syncs_per_sec()) };
        println!(
            "| {mode:<10} | {:>5} | {batch:>5} | {:>12.0} | {:>9.1} | {:>10.1} | {syncs:>9} | {ratio:>10} |",
            row.entry_bytes,
            row.entries_per_sec(),
            row.megabytes_per_sec(),
            row.file_megabytes_per_sec()
        );
    };
    for entry_bytes in [128, 4096] {
        for batch in [1, 64, 1024] {
            let (raw, wal) = compare(&base, entry_bytes, batch, run);
            print("raw", batch, &raw, None);
            let ratio = if batch == 1 {
                (wal.syncs_per_sec() / raw.syncs_per_sec(), "syncs")
            } else {
                (wal.megabytes_per_sec() / raw.megabytes_per_sec(), "MB/s")
            };
            print("wal closed", batch, &wal, Some(ratio));
        }
        print("wal pipe", 1, &pipelined(&base, entry_bytes, 8192, run / 2), None);
    }
    let _ = std::fs::remove_dir_all(&base);
}
