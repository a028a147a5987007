//! Recovery from injected faults: torn tails, bit flips, missing files,
//! someone else's data dir. Each test is named after the fault it injects.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ferraft::testing::conformance::{append_durably, entries, entry, log_id, TestData, TestDir};
use ferraft::{BasicNode, Entry, EntryPayload, FlushNotifier, LogIndex, LogStore, NodeId, StorageError, Term, Vote};
use ferraft_wal::{Corruption, WalError, WalOptions, WalStore};

type Store = WalStore<TestData, BasicNode>;

/// Segments without preallocation, so a file's length is where its records
/// end (most tests here find records by it).
fn options(segment_bytes: u64) -> WalOptions {
    WalOptions { segment_bytes, preallocate: false, ..WalOptions::new(NodeId(1), 1) }
}

fn preallocated(segment_bytes: u64) -> WalOptions {
    WalOptions { segment_bytes, ..WalOptions::new(NodeId(1), 1) }
}

fn open(dir: &Path, segment_bytes: u64) -> Result<Store, StorageError> {
    WalStore::open(dir, options(segment_bytes))
}

fn read_entries(dir: &Path, segment_bytes: u64) -> Result<Vec<Entry<TestData, BasicNode>>, StorageError> {
    open(dir, segment_bytes)?.read_state().map(|state| state.entries)
}

fn wal_error(error: &StorageError) -> &WalError {
    WalError::from_storage(error).unwrap_or_else(|| panic!("not a WAL error: {error}"))
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    files.sort();
    files
}

/// An entry whose payload is `len` bytes derived from its index.
fn sized_entry(index: u64, len: usize) -> Entry<TestData, BasicNode> {
    let payload = Bytes::from((0..len).map(|i| (index as usize * 31 + i) as u8).collect::<Vec<_>>());
    Entry { log_id: log_id(1, index), payload: EntryPayload::Normal(TestData::new(payload)) }
}

/// Writes entries one at a time and returns each record's end offset in the
/// (single) segment file.
fn write_one_by_one(dir: &Path, count: u64) -> (PathBuf, Vec<u64>) {
    let mut store = open(dir, 1 << 20).unwrap();
    store.read_state().unwrap();
    let mut ends = Vec::new();
    for index in 1..=count {
        append_durably(&mut store, &[entry(1, index)]);
        let segment = segment_files(dir).pop().unwrap();
        ends.push(fs::metadata(&segment).unwrap().len());
    }
    drop(store);
    (segment_files(dir).pop().unwrap(), ends)
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record_recovers_the_prefix() {
    let dir = TestDir::new("torn_tail_last_record");
    let (segment, ends) = write_one_by_one(dir.path(), 10);
    let original = fs::read(&segment).unwrap();
    let last_start = ends[8];
    for cut in last_start..original.len() as u64 {
        fs::write(&segment, &original[..cut as usize]).unwrap();
        assert_eq!(read_entries(dir.path(), 1 << 20).unwrap(), entries(1, 1..=9), "cut at byte {cut}");
        assert_eq!(fs::metadata(&segment).unwrap().len(), last_start, "torn bytes are cut off at {cut}");
    }
    fs::write(&segment, &original).unwrap();
    assert_eq!(read_entries(dir.path(), 1 << 20).unwrap(), entries(1, 1..=10));
}

#[test]
fn torn_tail_anywhere_after_the_header_keeps_every_whole_record() {
    let dir = TestDir::new("torn_tail_anywhere");
    let (segment, ends) = write_one_by_one(dir.path(), 10);
    let original = fs::read(&segment).unwrap();
    for cut in 24..original.len() as u64 {
        fs::write(&segment, &original[..cut as usize]).unwrap();
        let whole = ends.iter().filter(|end| **end <= cut).count() as u64;
        assert_eq!(read_entries(dir.path(), 1 << 20).unwrap(), entries(1, 1..=whole), "cut at byte {cut}");
    }
}

#[test]
fn appends_after_a_cut_torn_tail_survive_the_next_restart() {
    let dir = TestDir::new("append_after_torn_tail");
    let (segment, ends) = write_one_by_one(dir.path(), 5);
    fs::write(&segment, &fs::read(&segment).unwrap()[..(ends[4] - 3) as usize]).unwrap();
    let mut store = open(dir.path(), 1 << 20).unwrap();
    assert_eq!(store.read_state().unwrap().entries, entries(1, 1..=4));
    append_durably(&mut store, &entries(2, 5..=7));
    drop(store);
    let mut expected = entries(1, 1..=4);
    expected.extend(entries(2, 5..=7));
    assert_eq!(read_entries(dir.path(), 1 << 20).unwrap(), expected);
}

#[test]
fn bit_flip_anywhere_is_a_torn_tail_in_the_last_record_or_a_clear_error() {
    let dir = TestDir::new("bit_flips");
    // Three ~300-byte entries per 1 KiB segment: two segments.
    let segment_bytes = 1024;
    let batch: Vec<_> = (1..=6).map(|index| sized_entry(index, 300)).collect();
    let mut store = open(dir.path(), segment_bytes).unwrap();
    store.read_state().unwrap();
    for entry in &batch {
        append_durably(&mut store, std::slice::from_ref(entry));
    }
    drop(store);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2, "the test needs a sealed segment and a last one");
    let last_record_start = {
        let len = fs::metadata(&files[1]).unwrap().len();
        len - (len - 24) / 3
    };
    for (file_number, file) in files.iter().enumerate() {
        let original = fs::read(file).unwrap();
        for byte in 0..original.len() {
            let mut damaged = original.clone();
            damaged[byte] ^= 1 << (byte % 8);
            fs::write(file, &damaged).unwrap();
            let in_last_record = file_number == 1 && byte as u64 >= last_record_start;
            match read_entries(dir.path(), segment_bytes) {
                Ok(recovered) if in_last_record => assert_eq!(recovered, batch[..5], "flip at {file:?}:{byte}"),
                Ok(_) => panic!("flip at {file:?}:{byte} went unnoticed"),
                Err(error) if in_last_record => panic!("flip at {file:?}:{byte} in the last record: {error}"),
                Err(error) => assert!(
                    matches!(wal_error(&error), WalError::Corrupt { .. }),
                    "flip at {file:?}:{byte} gave {error}"
                ),
            }
            fs::write(file, &original).unwrap();
        }
    }
    assert_eq!(read_entries(dir.path(), segment_bytes).unwrap(), batch);
}

#[test]
fn corrupt_record_before_the_tail_refuses_to_start() {
    let dir = TestDir::new("corrupt_middle");
    let (segment, ends) = write_one_by_one(dir.path(), 10);
    let mut bytes = fs::read(&segment).unwrap();
    bytes[ends[3] as usize + 10] ^= 0x40;
    fs::write(&segment, &bytes).unwrap();
    let error = open(dir.path(), 1 << 20).unwrap_err();
    match wal_error(&error) {
        WalError::Corrupt { offset, problem: Corruption::RecordChecksum, .. } => assert_eq!(*offset, ends[3]),
        other => panic!("unexpected error {other}"),
    }
    assert!(error.to_string().contains("corrupt"), "message names the problem: {error}");
}

/// One batch of ten records whose fifth is damaged, nothing synced after
/// it: all ten were one write, unsynced until its sync returned, so the
/// damage is what a power cut leaves of a write whose pages went to disk out
/// of order, and the store keeps the four before it. The segment file.
fn damage_the_fifth_of_one_write(dir: &Path) -> PathBuf {
    let mut store = open(dir, 1 << 20).unwrap();
    store.read_state().unwrap();
    append_durably(&mut store, &entries(1, 1..=10));
    drop(store);
    let segment = segment_files(dir).pop().unwrap();
    let mut bytes = fs::read(&segment).unwrap();
    let record_bytes = (bytes.len() - 24) / 10;
    bytes[24 + 4 * record_bytes + 10] ^= 0x40;
    fs::write(&segment, &bytes).unwrap();
    segment
}

#[test]
fn a_damaged_record_followed_only_by_records_of_its_own_write_is_a_torn_tail() {
    let dir = TestDir::new("damaged_inside_the_last_write");
    damage_the_fifth_of_one_write(dir.path());
    assert_eq!(read_entries(dir.path(), 1 << 20).unwrap(), entries(1, 1..=4));
}

/// Segments written before writes were marked (format version 3) still
/// open, under the rule they were written for: any intact record after a
/// damaged one is corruption.
#[test]
fn a_version_3_segment_opens_and_an_intact_record_after_a_damaged_one_is_corruption() {
    let dir = TestDir::new("version_3_segment");
    let segment = damage_the_fifth_of_one_write(dir.path());
    let mut bytes = fs::read(&segment).unwrap();
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    let header_checksum = crc32c::crc32c(&bytes[..20]);
    bytes[20..24].copy_from_slice(&header_checksum.to_le_bytes());
    fs::write(&segment, &bytes).unwrap();
    let error = open(dir.path(), 1 << 20).unwrap_err();
    assert!(matches!(wal_error(&error), WalError::Corrupt { problem: Corruption::RecordChecksum, .. }), "{error}");
    // the version 3 segment itself reads: undamaged, all ten come back
    let record_bytes = (bytes.len() - 24) / 10;
    bytes[24 + 4 * record_bytes + 10] ^= 0x40;
    fs::write(&segment, &bytes).unwrap();
    assert_eq!(read_entries(dir.path(), 1 << 20).unwrap(), entries(1, 1..=10));
}

#[test]
fn missing_segment_refuses_to_start() {
    let dir = TestDir::new("missing_segment");
    let mut store = open(dir.path(), 1024).unwrap();
    store.read_state().unwrap();
    append_durably(&mut store, &(1..=9).map(|i| sized_entry(i, 300)).collect::<Vec<_>>());
    drop(store);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 3);
    fs::remove_file(&files[1]).unwrap();
    let error = open(dir.path(), 1024).unwrap_err();
    assert!(
        matches!(wal_error(&error), WalError::MissingEntries { first_missing: LogIndex(4), next_present: LogIndex(7) }),
        "{error}"
    );
}

#[test]
fn data_dir_of_another_node_or_cluster_is_refused() {
    let dir = TestDir::new("identity");
    let mut store = open(dir.path(), 1 << 20).unwrap();
    store.read_state().unwrap();
    append_durably(&mut store, &entries(1, 1..=3));
    drop(store);
    for (node_id, cluster_id) in [(2, 1), (1, 2)] {
        let error = Store::open(dir.path(), WalOptions::new(NodeId(node_id), cluster_id)).unwrap_err();
        assert!(matches!(
            wal_error(&error),
            WalError::WrongIdentity { found_node_id: NodeId(1), found_cluster_id: 1, .. }
        ));
    }
    assert_eq!(read_entries(dir.path(), 1 << 20).unwrap(), entries(1, 1..=3));
}

#[test]
fn data_without_identity_file_is_refused() {
    let dir = TestDir::new("no_identity");
    let mut store = open(dir.path(), 1 << 20).unwrap();
    store.read_state().unwrap();
    append_durably(&mut store, &entries(1, 1..=3));
    drop(store);
    fs::remove_file(dir.path().join("IDENTITY")).unwrap();
    let error = open(dir.path(), 1 << 20).unwrap_err();
    assert!(matches!(wal_error(&error), WalError::MissingIdentity { .. }), "{error}");
}

#[test]
fn second_open_of_the_same_dir_is_refused() {
    let dir = TestDir::new("locked");
    let _first = open(dir.path(), 1 << 20).unwrap();
    let error = open(dir.path(), 1 << 20).unwrap_err();
    assert!(matches!(wal_error(&error), WalError::Locked { .. }), "{error}");
}

#[test]
fn damaged_newest_meta_slot_falls_back_to_the_previous_vote() {
    let dir = TestDir::new("meta_slot");
    let mut store = open(dir.path(), 1 << 20).unwrap();
    store.read_state().unwrap();
    // the new file's state is in slot 0; each save goes to the other slot
    store.save_vote(&Vote::new(Term(1), NodeId(1))).unwrap(); // sequence 2: slot 1
    store.save_vote(&Vote::new(Term(2), NodeId(1))).unwrap(); // sequence 3: slot 0
    drop(store);
    let meta = dir.path().join("META");
    let mut bytes = fs::read(&meta).unwrap();
    bytes[20] ^= 1; // a torn save of the newest slot looks like this
    fs::write(&meta, &bytes).unwrap();
    assert_eq!(open(dir.path(), 1 << 20).unwrap().read_state().unwrap().vote, Some(Vote::new(Term(1), NodeId(1))));
    bytes[4096 + 20] ^= 1;
    fs::write(&meta, &bytes).unwrap();
    let error = open(dir.path(), 1 << 20).unwrap_err();
    assert!(matches!(wal_error(&error), WalError::Corrupt { problem: Corruption::NoValidMetaSlot, .. }), "{error}");
}

/// Saves a snapshot at 3 holding `data` (after entries 1..=`entries`), then
/// flips a bit in its last data byte.
fn save_damaged_snapshot(dir: &Path, entries_before: u64, data: &'static [u8]) {
    let mut store = open(dir, 1 << 20).unwrap();
    store.read_state().unwrap();
    if entries_before > 0 {
        append_durably(&mut store, &entries(1, 1..=entries_before));
    }
    store.save_snapshot(&snapshot_at_3(data)).unwrap();
    drop(store);
    let path = dir.join("SNAPSHOT");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 4;
    fs::write(&path, &bytes).unwrap();
}

#[test]
fn damaged_snapshot_data_opens_but_fails_its_first_full_read() {
    let dir = TestDir::new("snapshot_flip");
    save_damaged_snapshot(dir.path(), 5, b"state machine bytes");
    // open reads only the header and metadata: no full read at startup
    let state = open(dir.path(), 1 << 20).unwrap().read_state().unwrap();
    let snapshot = state.snapshot.expect("the snapshot is handed out");
    assert_eq!(state.entries.len(), 5, "the log is untouched");
    // the checksum it is sent under is the one written: a follower refuses these bytes
    assert_eq!(snapshot.data.checksum(), crc32c(b"state machine bytes"));
    // the node's read at startup (to load its state) finds the damage
    let error = std::io::Read::read_to_end(&mut snapshot.data.checked_reader(), &mut Vec::new()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    // and a backup never hands it on
    let error = ferraft_wal::read_saved_snapshot::<BasicNode>(dir.path()).unwrap_err();
    assert!(matches!(error, WalError::Corrupt { problem: Corruption::RecordChecksum, .. }), "{error}");
}

#[test]
fn damaged_snapshot_of_an_interrupted_install_refuses_to_open_and_keeps_the_log() {
    let dir = TestDir::new("snapshot_flip_install");
    // the log ends before the snapshot: recovery would finish an install
    // by removing the log, on the word of the snapshot's metadata
    save_damaged_snapshot(dir.path(), 2, b"state machine bytes");
    let error = open(dir.path(), 1 << 20).unwrap_err();
    assert!(matches!(wal_error(&error), WalError::Corrupt { .. }), "{error}");
    assert_eq!(segment_files(dir.path()).len(), 1, "the log is kept for an operator");
}

fn crc32c(bytes: &[u8]) -> u32 {
    ferraft::SnapshotData::from(bytes.to_vec()).checksum()
}

/// A snapshot covering entries up to 3, holding `data`.
fn snapshot_at_3(data: &'static [u8]) -> ferraft::Snapshot<BasicNode> {
    ferraft::Snapshot {
        meta: ferraft::SnapshotMeta {
            last_log_id: Some(log_id(1, 3)),
            membership: ferraft::StoredMembership { log_id: None, membership: empty_membership() },
            changes: Default::default(),
        },
        data: Bytes::from_static(data).into(),
    }
}

fn empty_membership() -> ferraft::Membership<BasicNode> {
    let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
    ferraft::Membership::new_uniform(nodes).unwrap()
}

#[test]
fn leftover_temp_files_are_removed_on_open() {
    let dir = TestDir::new("temp_files");
    drop(open(dir.path(), 1 << 20).unwrap());
    fs::write(dir.path().join("SNAPSHOT.tmp"), b"half a snapshot").unwrap();
    fs::write(dir.path().join("00000000000000000001.wal.tmp"), b"half a header").unwrap();
    drop(open(dir.path(), 1 << 20).unwrap());
    assert!(!dir.path().join("SNAPSHOT.tmp").exists());
    assert!(!dir.path().join("00000000000000000001.wal.tmp").exists());
}

#[test]
fn segments_roll_at_the_configured_size() {
    let dir = TestDir::new("roll");
    let mut store = open(dir.path(), 1024).unwrap();
    store.read_state().unwrap();
    append_durably(&mut store, &(1..=30).map(|i| sized_entry(i, 100)).collect::<Vec<_>>());
    drop(store);
    let files = segment_files(dir.path());
    assert!(files.len() >= 3, "{} segments", files.len());
    for file in &files[..files.len() - 1] {
        let len = fs::metadata(file).unwrap().len();
        assert!(len <= 1024 && len > 1024 - 120, "{file:?} is {len} bytes");
    }
}

#[test]
fn purge_deletes_whole_segments_only() {
    let dir = TestDir::new("purge_segments");
    let mut store = open(dir.path(), 1024).unwrap();
    store.read_state().unwrap();
    append_durably(&mut store, &(1..=30).map(|i| sized_entry(i, 100)).collect::<Vec<_>>());
    let before = segment_files(dir.path());
    store.purge(log_id(1, 14)).unwrap();
    store.sync().unwrap();
    let after = segment_files(dir.path());
    let holding_15 =
        before.iter().rposition(|f| f.file_name().unwrap().to_str().unwrap() <= "00000000000000000015.wal");
    assert_eq!(after, before[holding_15.unwrap()..], "segments before the one holding entry 15 are gone");
    drop(store);
    let mut store = open(dir.path(), 1024).unwrap();
    let state = store.read_state().unwrap();
    assert_eq!(state.last_purged, Some(log_id(1, 14)));
    assert_eq!(state.entries, (15..=30).map(|i| sized_entry(i, 100)).collect::<Vec<_>>());
}

#[test]
fn entries_reads_ranges_including_unsynced_appends() {
    let dir = TestDir::new("entries_range");
    let mut store = open(dir.path(), 1024).unwrap();
    store.read_state().unwrap();
    store.append(&entries(1, 1..=50), &FlushNotifier::new(|_| {})).unwrap();
    assert_eq!(store.entries(LogIndex(10)..LogIndex(20)).unwrap(), entries(1, 10..=19));
    assert_eq!(store.entries(LogIndex(45)..).unwrap(), entries(1, 45..=50));
    store.purge(log_id(1, 20)).unwrap();
    assert_eq!(store.entries(..=LogIndex(22)).unwrap(), entries(1, 21..=22));
    assert_eq!(store.entries(LogIndex(60)..LogIndex(70)).unwrap(), Vec::new());
    assert_eq!(store.last_index(), LogIndex(50));
}

#[test]
fn append_that_skips_an_index_is_rejected() {
    let dir = TestDir::new("not_contiguous");
    let mut store = open(dir.path(), 1 << 20).unwrap();
    store.read_state().unwrap();
    append_durably(&mut store, &entries(1, 1..=3));
    let error = store.append(&entries(1, 5..=6), &FlushNotifier::new(|_| {})).unwrap_err();
    assert!(
        matches!(wal_error(&error), WalError::NotContiguous { expected: LogIndex(4), found: LogIndex(5) }),
        "{error}"
    );
    append_durably(&mut store, &entries(1, 4..=4));
    assert_eq!(store.entries(..).unwrap(), entries(1, 1..=4));
}

#[test]
fn truncate_into_purged_entries_is_rejected() {
    let dir = TestDir::new("truncate_purged");
    let mut store = open(dir.path(), 1 << 20).unwrap();
    store.read_state().unwrap();
    append_durably(&mut store, &entries(1, 1..=10));
    store.purge(log_id(1, 5)).unwrap();
    let error = store.truncate(LogIndex(3)).unwrap_err();
    assert!(
        matches!(wal_error(&error), WalError::TruncatePurged { since: LogIndex(3), last_purged: LogIndex(5) }),
        "{error}"
    );
}

#[test]
fn no_sync_mode_reports_appends_durable_at_once() {
    let dir = TestDir::new("no_sync");
    let mut store = Store::open(dir.path(), WalOptions { sync: false, ..WalOptions::new(NodeId(1), 1) }).unwrap();
    store.read_state().unwrap();
    let durability = store.append(&entries(1, 1..=3), &FlushNotifier::new(|_| panic!("not called"))).unwrap();
    assert_eq!(durability, ferraft::AppendDurability::Durable);
    drop(store);
    let mut store = Store::open(dir.path(), WalOptions { sync: false, ..WalOptions::new(NodeId(1), 1) }).unwrap();
    assert_eq!(store.read_state().unwrap().entries, entries(1, 1..=3));
}

/// The offset just past the last non-zero byte: where a preallocated
/// segment's records end.
fn data_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b != 0).map_or(0, |last| last + 1)
}

#[test]
fn preallocated_segments_are_full_size_and_every_entry_recovers() {
    let dir = TestDir::new("preallocated");
    let segment_bytes = 4096;
    let mut store = Store::open(dir.path(), preallocated(segment_bytes)).unwrap();
    store.read_state().unwrap();
    let first: Vec<_> = (1..=40).map(|i| sized_entry(i, 300)).collect();
    for chunk in first.chunks(7) {
        append_durably(&mut store, chunk);
    }
    drop(store);
    let files = segment_files(dir.path());
    assert!(files.len() >= 3, "{} segments", files.len());
    for file in &files {
        assert_eq!(fs::metadata(file).unwrap().len(), segment_bytes, "{file:?} is preallocated");
    }
    // Sealed segments end in zeros too; recovery must read past them.
    let mut store = Store::open(dir.path(), preallocated(segment_bytes)).unwrap();
    assert_eq!(store.read_state().unwrap().entries, first);
    let more: Vec<_> = (41..=45).map(|i| sized_entry(i, 300)).collect();
    append_durably(&mut store, &more);
    drop(store);
    let all: Vec<_> = first.into_iter().chain(more).collect();
    let recovered = Store::open(dir.path(), preallocated(segment_bytes)).unwrap().read_state().unwrap().entries;
    assert_eq!(recovered, all);
}

#[test]
fn a_torn_record_before_the_zeros_of_a_preallocated_segment_is_cut() {
    let dir = TestDir::new("preallocated_torn");
    let mut store = Store::open(dir.path(), preallocated(1 << 20)).unwrap();
    store.read_state().unwrap();
    for index in 1..=10 {
        append_durably(&mut store, &[sized_entry(index, 100)]);
    }
    drop(store);
    let segment = segment_files(dir.path()).pop().unwrap();
    let original = fs::read(&segment).unwrap();
    let end = data_end(&original);
    // The last record's tail (or its middle) never reached the disk.
    for (from, to) in [(end - 3, end), (end - 60, end - 20)] {
        let mut torn = original.clone();
        torn[from..to].fill(0);
        fs::write(&segment, &torn).unwrap();
        let recovered = Store::open(dir.path(), preallocated(1 << 20)).unwrap().read_state().unwrap().entries;
        let expected: Vec<_> = (1..=9).map(|i| sized_entry(i, 100)).collect();
        assert_eq!(recovered, expected, "bytes {from}..{to} zeroed");
    }
}

#[test]
fn zeroed_records_at_the_end_of_a_sealed_preallocated_segment_are_missing_entries() {
    let dir = TestDir::new("preallocated_sealed_zeroed");
    let segment_bytes = 1024;
    let mut store = Store::open(dir.path(), preallocated(segment_bytes)).unwrap();
    store.read_state().unwrap();
    for index in 1..=6 {
        append_durably(&mut store, &[sized_entry(index, 300)]);
    }
    drop(store);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2, "the test needs a sealed segment and a last one");
    let mut sealed = fs::read(&files[0]).unwrap();
    let end = data_end(&sealed);
    // Three records of one size; the whole last one reads as unwritten
    // zeros, as if its write were lost.
    let record = (end - 24) / 3;
    assert_eq!((end - 24) % 3, 0);
    sealed[end - record..end].fill(0);
    fs::write(&files[0], &sealed).unwrap();
    let error = Store::open(dir.path(), preallocated(segment_bytes)).unwrap_err();
    assert!(matches!(wal_error(&error), WalError::MissingEntries { .. }), "{error}");
}

#[test]
fn a_snapshot_written_into_a_sink_but_not_made_current_is_removed_on_open() {
    let dir = TestDir::new("staged_without_save");
    let mut store = open(dir.path(), 1 << 20).unwrap();
    store.read_state().unwrap();
    let snapshot = snapshot_at_3(b"state");
    let mut sink = store.snapshot_sink(&snapshot.meta).unwrap();
    std::io::Write::write_all(&mut sink, b"state").unwrap();
    // a crash runs no destructors: the built snapshot is never let go
    std::mem::forget(sink.finish().unwrap());
    let staged: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(staged.iter().any(|n| n.to_str().unwrap().starts_with("SNAPSHOT.staged")), "{staged:?}");
    drop(store);
    // A crash before it was saved: the staging file is removed on open.
    let mut store = open(dir.path(), 1 << 20).unwrap();
    assert_eq!(store.read_state().unwrap().snapshot, None);
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!left.iter().any(|n| n.to_str().unwrap().starts_with("SNAPSHOT")), "{left:?}");
}

/// Rewrites `dir`'s META as a build from before cluster ids wrote it:
/// version-1 slots (magic `FRMT`) holding vote, committed and purge point.
fn write_version_1_meta(dir: &Path, vote: Option<Vote>) {
    let payload = postcard::to_allocvec(&(vote, None::<ferraft::LogId>, None::<ferraft::LogId>)).unwrap();
    let mut bytes = vec![0u8; 2 * 4096];
    let slot = &mut bytes[4096..4096 + 512];
    slot[..4].copy_from_slice(b"FRMT");
    slot[4..12].copy_from_slice(&1u64.to_le_bytes());
    slot[12..14].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    slot[14..14 + payload.len()].copy_from_slice(&payload);
    let crc = crc32c::crc32c(&slot[..14 + payload.len()]);
    slot[14 + payload.len()..18 + payload.len()].copy_from_slice(&crc.to_le_bytes());
    fs::write(dir.join("META"), bytes).unwrap();
}

#[test]
fn a_data_dir_written_before_cluster_ids_opens_in_the_cluster_its_identity_names() {
    let dir = TestDir::new("wal-version-1-meta");
    let legacy = WalOptions { preallocate: false, ..WalOptions::new(NodeId(1), 0x77) };
    let mut store = Store::open(dir.path(), legacy.clone()).unwrap();
    store.read_state().unwrap();
    append_durably(&mut store, &entries(1, 1..=3));
    store.close().unwrap();
    write_version_1_meta(dir.path(), Some(Vote::new(Term(4), NodeId(1))));

    let mut store = Store::open(dir.path(), legacy.clone()).unwrap();
    let state = store.read_state().unwrap();
    assert_eq!(state.cluster_id, ferraft::ClusterId::new(0x77));
    assert_eq!(state.vote, Some(Vote::new(Term(4), NodeId(1))));
    assert_eq!(state.entries, entries(1, 1..=3));
    // saving anything writes the new version, which keeps the id
    store.save_vote(&Vote::new(Term(5), NodeId(1))).unwrap();
    store.close().unwrap();
    let state = Store::open(dir.path(), legacy).unwrap().read_state().unwrap();
    assert_eq!((state.cluster_id, state.vote), (ferraft::ClusterId::new(0x77), Some(Vote::new(Term(5), NodeId(1)))));
}

#[test]
fn an_unused_data_dir_written_before_cluster_ids_belongs_to_no_cluster() {
    let dir = TestDir::new("wal-version-1-meta-unused");
    let legacy = WalOptions { preallocate: false, ..WalOptions::new(NodeId(1), 0x77) };
    Store::open(dir.path(), legacy.clone()).unwrap().close().unwrap();
    write_version_1_meta(dir.path(), None);
    assert_eq!(Store::open(dir.path(), legacy).unwrap().read_state().unwrap().cluster_id, None);
}
