//! Crash tests with a real process: `kill -9` at random moments must never
//! lose an entry the store reported durable, nor a vote it saved.
//!
//! The test binary re-executes itself as the child (the
//! `crash_child_process_entry_point` test, which does nothing unless
//! `FERRAFT_WAL_CRASH_CHILD_DIR` is set). The child appends, truncates,
//! purges and votes as fast as a Raft node might, and prints every step and
//! every durability report to stdout. The parent kills it after a seeded
//! random delay, reopens the WAL and checks it against what was reported.
//!
//! `FERRAFT_WAL_CRASH_KILLS=N` sets the number of kills (default 30);
//! `FERRAFT_WAL_CRASH_SEED=S` replays a run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferraft::testing::conformance::{TestData, TestDir};
use ferraft::{BasicNode, Entry, EntryPayload, FlushNotifier, LeaderId, LogId, LogIndex, LogStore, NodeId, Term, Vote};
use ferraft_wal::{WalOptions, WalStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CHILD_DIR_ENV: &str = "FERRAFT_WAL_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "FERRAFT_WAL_CRASH_CHILD_ROUND";
const CHILD_SEED_ENV: &str = "FERRAFT_WAL_CRASH_CHILD_SEED";
/// Makes the child idle after saving a committed log id.
const CHILD_IDLE_ENV: &str = "FERRAFT_WAL_CRASH_CHILD_IDLE";
/// Marks the child's protocol lines among the test harness's own output.
const MARK: &str = "@@ ";

fn options() -> WalOptions {
    // Small segments so purge deletes files and appends roll often.
    WalOptions { segment_bytes: 64 * 1024, ..WalOptions::new(NodeId(1), 1) }
}

/// The payload of entry `index` written in `term`: its length and bytes
/// follow from both, so a reader can check every recovered entry.
fn payload(index: LogIndex, term: Term) -> Bytes {
    let mut state = index.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ term.0.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    let len = (state % 300 + 1) as usize;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn make_entry(index: LogIndex, term: Term) -> Entry<TestData, BasicNode> {
    Entry {
        log_id: LogId::new(LeaderId::new(term, NodeId(1)), index),
        payload: EntryPayload::Normal(TestData::new(payload(index, term))),
    }
}

/// Prints one protocol line; a whole line per `write` so a kill never splits one.
fn say(line: std::fmt::Arguments<'_>) {
    let text = format!("{MARK}{line}\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[test]
fn crash_child_process_entry_point() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let round: u64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let seed: u64 = std::env::var(CHILD_SEED_ENV).unwrap().parse().unwrap();
    if std::env::var(CHILD_IDLE_ENV).is_ok() {
        run_idle_child(Path::new(&dir));
    }
    run_child(Path::new(&dir), round, seed);
}

/// Appends ten entries, saves the committed log id, then idles until killed.
fn run_idle_child(dir: &Path) -> ! {
    let mut store = WalStore::<TestData, BasicNode>::open(dir, options()).expect("child opens the WAL");
    store.read_state().expect("child reads state");
    let batch: Vec<_> = LogIndex(1).through(LogIndex(10)).map(|index| make_entry(index, Term(1))).collect();
    ferraft::testing::conformance::append_durably(&mut store, &batch);
    store.save_committed(Some(batch[9].log_id)).unwrap();
    say(format_args!("committed 10"));
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Works on the WAL until killed.
fn run_child(dir: &Path, round: u64, seed: u64) -> ! {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut store = WalStore::<TestData, BasicNode>::open(dir, options()).expect("child opens the WAL");
    let state = store.read_state().expect("child reads state");
    let mut terms: BTreeMap<LogIndex, Term> =
        state.entries.iter().map(|e| (e.log_id.index, e.log_id.leader_id.term)).collect();
    let mut last_purged = state.last_purged.map_or(LogIndex(0), |l| l.index);
    let mut next = terms.keys().next_back().map_or(last_purged, |i| *i) + 1;
    let durable = Arc::new(AtomicU64::new((next - 1).0));
    let notifier = {
        let durable = durable.clone();
        FlushNotifier::new(move |log_id| {
            say(format_args!("durable {} {}", log_id.index, log_id.leader_id.term));
            durable.fetch_max(log_id.index.0, Ordering::SeqCst);
        })
    };
    // Each incarnation (and each truncation in it) uses a higher term, so
    // every log id names one entry.
    let mut term = Term((round + 1) * 1000);
    say(format_args!("ready {}", next - 1));
    loop {
        // Like a Raft runtime, keep a bounded number of entries in flight.
        while next.0.saturating_sub(durable.load(Ordering::SeqCst)) > 400 {
            std::thread::sleep(Duration::from_micros(200));
        }
        match rng.gen_range(0..100) {
            0..=84 => {
                let count = rng.gen_range(1..=20);
                let batch: Vec<_> = next.until(next + count).map(|index| make_entry(index, term)).collect();
                say(format_args!("append {} {} {}", next, next + count - 1, term));
                store.append(&batch, &notifier).expect("child append");
                terms.extend(next.until(next + count).map(|index| (index, term)));
                next += count;
            }
            85..=89 if next - 1 > last_purged + 1 => {
                let lowest = (last_purged + 1).max(next.saturating_back(30));
                let since = LogIndex(rng.gen_range(lowest.0..next.0)).max(last_purged + 1);
                term = term.next();
                say(format_args!("truncate {since}"));
                store.truncate(since).expect("child truncate");
                terms.retain(|index, _| *index < since);
                next = since;
                durable.fetch_min((since - 1).0, Ordering::SeqCst);
            }
            90..=92 => {
                store.save_vote(&Vote::new(term, NodeId(1))).expect("child save vote");
                say(format_args!("vote {term}"));
            }
            93..=96 => {
                let upto = LogIndex(durable.load(Ordering::SeqCst).saturating_sub(50));
                if let Some(&upto_term) = terms.get(&upto).filter(|_| upto > last_purged) {
                    say(format_args!("purge {upto}"));
                    store.purge(LogId::new(LeaderId::new(upto_term, NodeId(1)), upto)).expect("child purge");
                    terms.retain(|index, _| *index > upto);
                    last_purged = upto;
                }
            }
            _ => {
                let index = LogIndex(durable.load(Ordering::SeqCst));
                if let Some(&committed_term) = terms.get(&index) {
                    say(format_args!("committed {index}"));
                    store.save_committed(Some(LogId::new(LeaderId::new(committed_term, NodeId(1)), index))).unwrap();
                }
            }
        }
    }
}

/// What the parent knows the child's log must hold.
#[derive(Debug, Default)]
struct Model {
    /// The child's log as it issued it: index to term.
    terms: BTreeMap<LogIndex, Term>,
    /// Every entry of `terms` up to here was reported durable.
    durable_upto: LogIndex,
    /// The highest purge point requested.
    max_purge: LogIndex,
    /// The last vote whose save returned.
    vote_term: Term,
    /// The highest committed index saved.
    max_committed: LogIndex,
    /// The child finished opening.
    ready: bool,
}

impl Model {
    fn apply(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| -> u64 { words[i].parse().unwrap() };
        let (index, term) = (|i: usize| LogIndex(number(i)), |i: usize| Term(number(i)));
        match words[0] {
            "ready" => self.ready = true,
            "append" => self.terms.extend(index(1).through(index(2)).map(|at| (at, term(3)))),
            "truncate" => {
                let since = index(1);
                self.terms.retain(|index, _| *index < since);
                self.durable_upto = self.durable_upto.min(since - 1);
            }
            // A report for an entry the child has since truncated says nothing
            // about the current log: match by log id, not index.
            "durable" if self.terms.get(&index(1)) == Some(&term(2)) => {
                self.durable_upto = self.durable_upto.max(index(1));
            }
            "durable" => {}
            "vote" => self.vote_term = term(1),
            "purge" => self.max_purge = self.max_purge.max(index(1)),
            "committed" => self.max_committed = self.max_committed.max(index(1)),
            other => panic!("unknown child line {other:?}"),
        }
    }

    /// Checks the recovered WAL against the model, then makes it the new baseline.
    fn check_and_reset(&mut self, dir: &Path, round: u64) -> usize {
        let mut store = WalStore::<TestData, BasicNode>::open(dir, options())
            .unwrap_or_else(|error| panic!("round {round}: reopening after kill -9 failed: {error}"));
        let state = store.read_state().unwrap();
        let purged = state.last_purged.map_or(LogIndex(0), |l| l.index);
        assert!(purged <= self.max_purge, "round {round}: purged {purged} beyond requested {}", self.max_purge);
        for entry in &state.entries {
            let EntryPayload::Normal(data) = &entry.payload else { panic!("round {round}: unexpected payload") };
            let (index, term) = (entry.log_id.index, entry.log_id.leader_id.term);
            assert_eq!(data.payload, payload(index, term), "round {round}: entry {index} is damaged");
        }
        let recovered: BTreeMap<LogIndex, Term> =
            state.entries.iter().map(|e| (e.log_id.index, e.log_id.leader_id.term)).collect();
        let mut checked = 0;
        for (index, term) in self.terms.range(purged + 1..).take_while(|(index, _)| **index <= self.durable_upto) {
            checked += 1;
            assert_eq!(
                recovered.get(index),
                Some(term),
                "round {round}: entry {index} (term {term}) was reported durable but is not recovered"
            );
        }
        let vote_term = state.vote.map_or(Term(0), |v| v.term());
        assert!(vote_term >= self.vote_term, "round {round}: vote {vote_term} older than saved {}", self.vote_term);
        let committed = state.committed.map_or(LogIndex(0), |c| c.index);
        assert!(committed <= self.max_committed, "round {round}: committed {committed} newer than saved");
        self.terms = recovered;
        self.durable_upto = self.terms.keys().next_back().copied().unwrap_or(LogIndex(0));
        self.ready = false;
        checked
    }
}

/// Runs one child until `kill_after` past its start (or past `ready`), then kills it.
fn run_round(dir: &Path, round: u64, seed: u64, kill_after: Duration, wait_ready: bool, model: &mut Model) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child_process_entry_point", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .env(CHILD_SEED_ENV, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning the child");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(start) = line.find(MARK).filter(|_| line.ends_with('\n')) {
                let _ = lines_tx.send(line[start + MARK.len()..].trim_end().to_string());
            }
            line.clear();
        }
    });
    let started = Instant::now();
    if wait_ready {
        loop {
            let line = lines.recv_timeout(Duration::from_secs(30)).expect("child never became ready");
            model.apply(&line);
            if model.ready {
                break;
            }
        }
    }
    let deadline = Instant::now() + kill_after;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => model.apply(&line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("round {round}: child exited by itself"),
        }
    }
    child.kill().expect("kill -9");
    let status = child.wait().unwrap();
    reader.join().unwrap();
    for line in lines.try_iter() {
        model.apply(&line);
    }
    assert!(!status.success(), "round {round}: child exited cleanly after {:?}", started.elapsed());
}

#[test]
fn kill_9_at_random_moments_loses_no_durable_entry() {
    if std::env::var(CHILD_DIR_ENV).is_ok() {
        return;
    }
    let kills: u64 = std::env::var("FERRAFT_WAL_CRASH_KILLS").map_or(30, |v| v.parse().expect("a number of kills"));
    let seed: u64 = std::env::var("FERRAFT_WAL_CRASH_SEED").map_or(0x5eed_f00d, |v| v.parse().expect("a seed"));
    eprintln!("crash test: {kills} kills, seed {seed} (FERRAFT_WAL_CRASH_SEED={seed} replays)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = TestDir::new("crash");
    let mut model = Model::default();
    let mut checked = 0;
    for round in 0..kills {
        // Mostly kill while working; sometimes during startup and recovery.
        let wait_ready = rng.gen_bool(0.9);
        let kill_after = Duration::from_micros(rng.gen_range(0..if wait_ready { 120_000 } else { 15_000 }));
        run_round(dir.path(), round, rng.gen(), kill_after, wait_ready, &mut model);
        checked += model.check_and_reset(dir.path(), round);
    }
    let last = model.terms.keys().next_back().copied().unwrap_or(LogIndex(0));
    eprintln!("crash test: {checked} durable entries checked after kills; log ends at index {last}");
    assert!(checked > 0, "no append was ever reported durable: the test tested nothing");
}

#[test]
fn committed_is_saved_lazily_without_a_clean_shutdown() {
    if std::env::var(CHILD_DIR_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("crash_committed");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child_process_entry_point", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_DIR_ENV, dir.path())
        .env(CHILD_ROUND_ENV, "0")
        .env(CHILD_SEED_ENV, "0")
        .env(CHILD_IDLE_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning the child");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("committed 10") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "child exited before saving committed");
    }
    // The writer saves a changed committed log id within 200 ms while idle.
    std::thread::sleep(Duration::from_millis(600));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut store = WalStore::<TestData, BasicNode>::open(dir.path(), options()).unwrap();
    let state = store.read_state().unwrap();
    assert_eq!(state.committed.map(|c| c.index), Some(LogIndex(10)));
    assert_eq!(state.entries.len(), 10);
}
