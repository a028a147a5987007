//! The key-value map: key → (value, index of the write that last set it),
//! split into copy-on-write shards so a snapshot's point-in-time copy costs
//! one reference count per shard, whatever the number of keys.
//!
//! Each shard is a std hash map behind an `Arc`. A snapshot clones the list
//! of `Arc`s; a write to a shard the snapshot still shares copies that shard
//! first (`Arc::make_mut`), a few hundred keys, and later writes to it are
//! in place again. Point reads and writes stay those of a std hash map, the
//! hottest code of the durable benchmark (an ordered map spent ~12 µs per put
//! comparing keys). A persistent hash trie (`imbl`) would make the copy O(1)
//! too, but every read and write would chase a pointer per level; it was
//! not measured against this.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use ferraft::LogIndex;

/// A key's value and the index of its last write.
pub type Versioned = (Arc<str>, LogIndex);

type Shard = HashMap<Arc<str>, Versioned>;

/// Shards of every map: a copy is this many reference counts; the first
/// write to a shared shard copies about keys / this many entries.
const SHARDS: usize = 1024;

/// The map; cloning it is the O(shards) point-in-time copy.
#[derive(Clone)]
pub struct KvMap {
    shards: Box<[Arc<Shard>]>,
    hasher: RandomState,
    len: usize,
}

impl Default for KvMap {
    fn default() -> Self {
        let hasher = RandomState::new();
        let shards = (0..SHARDS).map(|_| Arc::new(HashMap::with_hasher(hasher.clone()))).collect();
        Self { shards, hasher, len: 0 }
    }
}

impl KvMap {
    /// Bits 32.. of the hash pick the shard: the shard's own table uses the
    /// low bits for its bucket and the top 7 as tags, which stay spread.
    fn shard_of(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) >> 32) as usize % SHARDS
    }

    fn shard_mut(&mut self, key: &str) -> &mut Shard {
        let at = self.shard_of(key);
        Arc::make_mut(&mut self.shards[at])
    }

    /// The value and last-write index of `key`.
    pub fn get(&self, key: &str) -> Option<&Versioned> {
        self.shards[self.shard_of(key)].get(key)
    }

    /// The stored key (to share its allocation) and its value.
    pub fn get_key_value(&self, key: &str) -> Option<(&Arc<str>, &Versioned)> {
        self.shards[self.shard_of(key)].get_key_value(key)
    }

    /// Sets `key`; answers what it held.
    pub fn insert(&mut self, key: Arc<str>, value: Versioned) -> Option<Versioned> {
        let old = self.shard_mut(&key).insert(key, value);
        self.len += usize::from(old.is_none());
        old
    }

    /// Removes `key`; answers the stored key and what it held.
    pub fn remove_entry(&mut self, key: &str) -> Option<(Arc<str>, Versioned)> {
        let at = self.shard_of(key);
        // a miss must not copy a shard a snapshot shares
        if !self.shards[at].contains_key(key) {
            return None;
        }
        let removed = Arc::make_mut(&mut self.shards[at]).remove_entry(key);
        self.len -= usize::from(removed.is_some());
        removed
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every key and its value, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Versioned)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }
}

impl FromIterator<(Arc<str>, Versioned)> for KvMap {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, Versioned)>>(entries: I) -> Self {
        let mut map = Self::default();
        for (key, value) in entries {
            map.insert(key, value);
        }
        map
    }
}

impl PartialEq for KvMap {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().all(|(key, value)| other.get(key) == Some(value))
    }
}

impl Eq for KvMap {}

impl std::fmt::Debug for KvMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str, index: LogIndex) -> (Arc<str>, Versioned) {
        (key.into(), (value.into(), index))
    }

    #[test]
    fn a_copy_keeps_what_the_map_held_when_it_was_taken() {
        let mut map: KvMap = (0..5000).map(|i| entry(&format!("k{i}"), "old", LogIndex(i))).collect();
        let copy = map.clone();
        for i in 0..5000 {
            map.insert(format!("k{i}").into(), ("new".into(), LogIndex(i + 10_000)));
        }
        map.remove_entry("k0");
        map.insert("added".into(), ("x".into(), LogIndex(1)));
        assert_eq!(copy.len(), 5000);
        assert!(copy.iter().all(|(_, (value, _))| &**value == "old"));
        assert_eq!(copy.get("k0"), Some(&("old".into(), LogIndex(0))));
        assert_eq!(copy.get("added"), None);
        assert_eq!(map.len(), 5000);
        assert_eq!(map.get("k1"), Some(&("new".into(), LogIndex(10_001))));
    }

    #[test]
    fn a_copy_shares_every_shard_until_a_write_touches_one() {
        let mut map: KvMap = (0..5000).map(|i| entry(&format!("k{i}"), "v", LogIndex(i))).collect();
        let copy = map.clone();
        let shared = |map: &KvMap, copy: &KvMap| {
            map.shards.iter().zip(copy.shards.iter()).filter(|(a, b)| Arc::ptr_eq(a, b)).count()
        };
        assert_eq!(shared(&map, &copy), SHARDS);
        map.insert("k1".into(), ("w".into(), LogIndex(9)));
        assert_eq!(shared(&map, &copy), SHARDS - 1, "only the written shard is copied");
        map.remove_entry("absent");
        assert_eq!(shared(&map, &copy), SHARDS - 1, "a delete of an absent key copies nothing");
    }

    #[test]
    fn len_counts_inserts_of_new_keys_and_removals_of_present_ones() {
        let mut map = KvMap::default();
        assert!(map.is_empty());
        map.insert("a".into(), ("1".into(), LogIndex(1)));
        map.insert("a".into(), ("2".into(), LogIndex(2)));
        map.insert("b".into(), ("3".into(), LogIndex(3)));
        assert_eq!(map.len(), 2);
        assert_eq!(map.remove_entry("a").map(|(k, v)| (k, v.1)), Some(("a".into(), LogIndex(2))));
        assert_eq!(map.remove_entry("a"), None);
        assert_eq!(map.len(), 1);
        assert_eq!(map.iter().count(), 1);
    }
}
