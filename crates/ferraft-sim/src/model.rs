//! The replicated application: a tiny key-value register store.
//!
//! Every write carries a globally unique value (its operation id), so a read's
//! result names the write it observed: that keeps the linearizability check
//! cheap and makes a wrong read easy to explain.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use ferraft::{BasicNode, EntryPayload, Membership};
use serde::{Deserialize, Serialize};

/// A client write: set `key` to `value`; or, with `expect`, a
/// compare-and-set that writes only if the register holds `expect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Put {
    /// The client operation id; also the value written, so values never repeat.
    pub op: u64,
    /// Which register.
    pub key: u8,
    /// The value written.
    pub value: u64,
    /// A compare-and-set: the value the register must hold (`Some(None)`: unset).
    pub expect: Option<Option<u64>>,
}

impl Put {
    /// The plain write `op` of `key` (its value is `op`).
    pub fn write(op: u64, key: u8) -> Self {
        Self { op, key, value: op, expect: None }
    }
}

/// The payload type the simulated cluster replicates.
pub type Payload = EntryPayload<Put, BasicNode>;

/// The key-value state of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvState {
    /// Register values.
    pub values: BTreeMap<u8, u64>,
}

impl KvState {
    /// Applies a write; whether it wrote (a compare-and-set whose
    /// expectation fails does not).
    pub fn apply(&mut self, put: &Put) -> bool {
        if put.expect.is_some_and(|expect| self.get(put.key) != expect) {
            return false;
        }
        self.values.insert(put.key, put.value);
        true
    }

    /// Reads a register.
    pub fn get(&self, key: u8) -> Option<u64> {
        self.values.get(&key).copied()
    }

    /// Encodes the state as snapshot bytes: `(key, value)` pairs, 9 bytes each.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.values.len() * 9);
        for (key, value) in &self.values {
            out.push(*key);
            out.extend_from_slice(&value.to_le_bytes());
        }
        Bytes::from(out)
    }

    /// Decodes snapshot bytes; panics on malformed input, which only the
    /// simulator itself produces.
    pub fn decode(data: &[u8]) -> Self {
        assert_eq!(data.len() % 9, 0, "snapshot bytes are (key, value) pairs");
        let values =
            data.chunks_exact(9).map(|c| (c[0], u64::from_le_bytes(c[1..9].try_into().expect("8 bytes")))).collect();
        Self { values }
    }

    /// A digest of the state, to compare snapshots of one index across nodes.
    pub fn digest(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.values.hash(&mut h);
        h.finish()
    }
}

/// A digest of an entry payload: equal entries have equal fingerprints, and
/// distinct client writes never collide (their op ids differ).
pub fn fingerprint(payload: &Payload) -> u64 {
    match payload {
        EntryPayload::Blank => 0,
        EntryPayload::Normal(put) => (1 << 63) | put.op,
        EntryPayload::Membership(m) => membership_digest(m) & !(1 << 63) | 1,
    }
}

/// A digest of a membership value (configs and node descriptors).
pub fn membership_digest(m: &Membership<BasicNode>) -> u64 {
    let mut h = DefaultHasher::new();
    m.configs().hash(&mut h);
    for (id, node) in m.nodes() {
        id.hash(&mut h);
        node.addr.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_encoding_round_trips() {
        let mut kv = KvState::default();
        kv.apply(&Put { value: 77, ..Put::write(1, 3) });
        kv.apply(&Put { value: u64::MAX, ..Put::write(2, 0) });
        assert_eq!(KvState::decode(&kv.encode()), kv);
    }
}
