//! The real WAL on a disk that writes pages back out of order
//! (`sim_fs::Writeback::AnyOrder`, by pages or sectors), cut in the middle
//! of a batch of many pages: whatever subset of its blocks reached the disk, the store
//! opens with every entry synced before the batch, and takes appends after.
//!
//! The WAL seed set meets this case rarely (its batches are mostly shorter
//! than a page), so it is pinned here over many disks.

use std::path::Path;
use std::sync::Arc;

use ferraft::testing::conformance::{entries, entry, TestData};
use ferraft::{BasicNode, FlushNotifier, LogStore};
use ferraft_sim::sim_fs::{SimDiskFs, Writeback, PAGE_BYTES, SECTOR_BYTES};
use ferraft_wal::{SteppedIo, WalOptions, WalStepper, WalStore};

type Store = WalStore<TestData, BasicNode>;

const DIR: &str = "/data/wal";

fn open(disk: &SimDiskFs, preallocate: bool) -> Result<(Store, WalStepper), ferraft::StorageError> {
    let io = SteppedIo { fs: Arc::new(disk.boot()), new_incarnation: 1, planted_bug: None };
    let options = WalOptions { segment_bytes: 1 << 20, preallocate, ..WalOptions::new(ferraft::NodeId(1), 1) };
    WalStore::open_stepped(Path::new(DIR), options, io)
}

#[test]
fn a_power_cut_in_a_batch_of_many_pages_keeps_what_was_synced_before_it() {
    let mut first_record_lost = 0;
    for seed in 0..200 {
        let block_bytes = if seed % 4 < 2 { PAGE_BYTES } else { SECTOR_BYTES };
        let disk = SimDiskFs::with_writeback(seed, Writeback::AnyOrder { block_bytes });
        let preallocate = seed % 2 == 0;
        let (mut store, stepper) = open(&disk, preallocate).unwrap();
        store.read_state().unwrap();
        store.append(&entries(1, 1..=3), &FlushNotifier::new(|_| {})).unwrap();
        stepper.step().unwrap();
        store.append(&entries(1, 4..=400), &FlushNotifier::new(|_| {})).unwrap();
        // the batch's write lands in the page cache; the power goes at its sync
        disk.crash_after_ops(1);
        assert!(stepper.step().is_err(), "seed {seed}: the power went during the batch");
        drop((store, stepper));

        let (mut store, stepper) = open(&disk, preallocate).unwrap_or_else(|error| panic!("seed {seed}: {error}"));
        let recovered = store.read_state().unwrap().entries;
        assert!(recovered.len() >= 3, "seed {seed}: what was synced survives");
        assert_eq!(recovered, entries(1, 1..=recovered.len() as u64), "seed {seed}: a prefix of what was appended");
        first_record_lost += usize::from(recovered.len() == 3);
        let next = recovered.len() as u64 + 1;
        store.append(&[entry(2, next)], &FlushNotifier::new(|_| {})).unwrap();
        stepper.step().unwrap();
        assert_eq!(store.entries(ferraft::LogIndex(next)..).unwrap(), vec![entry(2, next)], "seed {seed}");
    }
    println!("{first_record_lost} of 200 cuts lost the batch from its first record");
    assert!(first_record_lost > 20, "the cuts rarely lost the first record ({first_record_lost})");
}
