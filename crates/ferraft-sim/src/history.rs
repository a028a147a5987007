//! The client history: what clients invoked and what they were told.
//!
//! Times are *stamps* from one global counter rather than simulated
//! milliseconds, so two events in the same millisecond are still ordered the
//! way they really happened and the linearizability check stays exact.

use std::collections::HashMap;

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Wrote this (globally unique) value.
    Write(u64),
    /// Read this value (`None`: never written).
    Read(Option<u64>),
    /// Compare-and-set: wrote `value` if the register held `expect`
    /// (`succeeded`), else left it (and so it held something else).
    Cas {
        /// The value required.
        expect: Option<u64>,
        /// The (globally unique) value written on success.
        value: u64,
        /// Whether it wrote.
        succeeded: bool,
    },
}

/// One completed client operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// The register.
    pub key: u8,
    /// Read or write, and the value.
    pub kind: OpKind,
    /// Stamp at invocation.
    pub invoke: u64,
    /// Stamp at completion.
    pub complete: u64,
}

#[derive(Debug, Clone, Copy)]
struct PendingWrite {
    key: u8,
    invoke: u64,
    complete: Option<u64>,
    /// A compare-and-set's expectation.
    expect: Option<Option<u64>>,
    /// Whether it wrote, once applied.
    wrote: bool,
}

/// Records operations as the simulation runs.
///
/// A write completes when the first node applies it: it is committed then, and
/// that is the earliest moment any client could learn it. A write never applied
/// by the end of the run is left out: no read can have observed it, so leaving
/// it out neither hides nor invents a violation.
#[derive(Debug, Default)]
pub struct History {
    stamp: u64,
    writes: HashMap<u64, PendingWrite>,
    write_order: Vec<u64>,
    reads: Vec<Op>,
}

impl History {
    /// The next stamp.
    pub fn stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }

    /// A client proposed write `op` of `key` (its value is `op`).
    pub fn invoke_write(&mut self, op: u64, key: u8) {
        self.invoke_cas(op, key, None);
    }

    /// A client proposed write `op` of `key`; a compare-and-set of `expect` if given.
    pub fn invoke_cas(&mut self, op: u64, key: u8, expect: Option<Option<u64>>) {
        let invoke = self.stamp();
        self.writes.insert(op, PendingWrite { key, invoke, complete: None, expect, wrote: true });
        self.write_order.push(op);
    }

    /// The write `op` was refused (not the leader): it never happened.
    pub fn cancel_write(&mut self, op: u64) {
        if self.writes.remove(&op).is_some() {
            self.write_order.retain(|o| *o != op);
        }
    }

    /// Whether write `op` was applied somewhere.
    pub fn is_applied(&self, op: u64) -> bool {
        self.writes.get(&op).is_some_and(|w| w.complete.is_some())
    }

    /// Whether write `op` was invoked and not cancelled.
    pub fn is_invoked(&self, op: u64) -> bool {
        self.writes.contains_key(&op)
    }

    /// Some node applied write `op` (`wrote`: false for a compare-and-set
    /// whose expectation failed; every node applies it alike, so the first
    /// tells); false if it was cancelled (never invoked).
    pub fn write_applied(&mut self, op: u64, wrote: bool) -> bool {
        let stamp = self.stamp + 1;
        let Some(write) = self.writes.get_mut(&op) else { return false };
        if write.complete.is_none() {
            write.complete = Some(stamp);
            write.wrote = wrote;
            self.stamp = stamp;
        }
        true
    }

    /// A read of `key` invoked at stamp `invoke` returned `value` now.
    pub fn read_done(&mut self, key: u8, invoke: u64, value: Option<u64>) {
        let complete = self.stamp();
        self.reads.push(Op { key, kind: OpKind::Read(value), invoke, complete });
    }

    /// Completed operations: applied writes and returned reads.
    pub fn completed(&self) -> Vec<Op> {
        let writes = self.write_order.iter().filter_map(|op| {
            let w = self.writes[op];
            let kind = match w.expect {
                None => OpKind::Write(*op),
                Some(expect) => OpKind::Cas { expect, value: *op, succeeded: w.wrote },
            };
            w.complete.map(|complete| Op { key: w.key, kind, invoke: w.invoke, complete })
        });
        writes.chain(self.reads.iter().copied()).collect()
    }

    /// Number of writes proposed and reads returned.
    pub fn counts(&self) -> (usize, usize) {
        (self.writes.len(), self.reads.len())
    }
}
