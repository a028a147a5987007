//! The LogStore conformance suite, run against `MemLogStore` (reopening a
//! directory finds the store that was opened on it: its clones share state).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ferraft::mem::MemLogStore;
use ferraft::testing::conformance::{self, TestData};
use ferraft::BasicNode;

#[test]
fn mem_log_store_keeps_every_rule() {
    let mut stores: HashMap<PathBuf, MemLogStore<TestData, BasicNode>> = HashMap::new();
    conformance::run_all(&mut |dir: &Path| Ok(stores.entry(dir.to_path_buf()).or_default().clone()));
}
