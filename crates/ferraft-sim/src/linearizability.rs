//! A linearizability checker for read/write registers.
//!
//! Wing & Gong's search with Lowe's memoization, as in porcupine: walk the
//! history in real-time order, try to linearize each pending call, backtrack
//! when a return is reached whose call could not be placed, and cache every
//! (linearized set, state) pair already explored. Keys are independent
//! registers, so the history is split per key first (P-compositionality),
//! which keeps each search small.
//!
//! A key that saw a compare-and-set gets the search whatever its length (the
//! zone test is exact only for plain reads and writes; on a relaxed history,
//! each successful compare-and-set split into a read of what it expected and
//! a write, each failed one dropped, it can still prove a violation). A
//! search that spends its budget leaves the zone test's verdict.

use std::collections::{BTreeMap, HashSet};

use crate::history::{Op, OpKind};

/// Checks the whole history; on failure names the key and an operation that
/// could not be placed.
pub fn check(ops: &[Op]) -> Result<(), String> {
    let mut by_key: BTreeMap<u8, Vec<Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key).or_default().push(*op);
    }
    for (key, ops) in by_key {
        let has_cas = ops.iter().any(|op| matches!(op.kind, OpKind::Cas { .. }));
        let relaxed = relax_cas(&ops);
        obvious_violation(&relaxed).map_err(|e| format!("key {key}: {e}"))?;
        check_zones(&relaxed).map_err(|e| format!("key {key}: {e}"))?;
        if has_cas {
            if let Some(result) = search_register(&ops, CAS_SEARCH_BUDGET) {
                result.map_err(|e| format!("key {key} (with compare-and-set): {e}"))?;
            }
        } else if ops.len() <= SEARCH_LIMIT {
            // an inconclusive search (budget spent) leaves the zone test's verdict
            if let Some(result) = search_register(&ops, SEARCH_BUDGET) {
                result.map_err(|e| format!("key {key}: the zone test passed but the search disagrees: {e}"))?;
            }
        }
    }
    Ok(())
}

/// Histories up to this many operations per key also get the exhaustive
/// search, as a cross-check of the zone test.
const SEARCH_LIMIT: usize = 40;

/// Search steps allowed for the cross-check: highly concurrent histories can
/// make the search exponential even when linearizable.
const SEARCH_BUDGET: u64 = 200_000;

/// Search steps allowed for a key with compare-and-sets, of any length.
const CAS_SEARCH_BUDGET: u64 = 1_000_000;

/// The plain register history a linearizable history with compare-and-sets
/// maps to: a successful one becomes a read of what it expected and a write
/// over the same span (placed just before each other in any linearization),
/// a failed one (it changed nothing) is dropped.
pub fn relax_cas(ops: &[Op]) -> Vec<Op> {
    let mut relaxed = Vec::with_capacity(ops.len());
    for op in ops {
        match op.kind {
            OpKind::Cas { succeeded: false, .. } => {}
            OpKind::Cas { expect, value, succeeded: true } => {
                relaxed.push(Op { kind: OpKind::Read(expect), ..*op });
                relaxed.push(Op { kind: OpKind::Write(value), ..*op });
            }
            _ => relaxed.push(*op),
        }
    }
    relaxed
}

/// The exact polynomial test for registers whose writes have unique values
/// (Gibbons & Korach; in the form of Golab, Li & Shah, PODC 2011).
///
/// A value's *cluster* is its write plus the reads returning it. With `f` the
/// earliest completion and `s` the latest invocation in the cluster, its zone
/// is *forward* `[f, s]` when `f < s` (its ops cannot all overlap: the value
/// must stay in place over that span) and *backward* otherwise. The history is
/// linearizable iff no read precedes its write, no two forward zones overlap,
/// and no backward zone lies inside a forward one. The initial (unwritten)
/// value is a cluster whose write happens before everything.
///
/// Unlike the search this cannot blow up on long, highly concurrent histories,
/// which the simulator's slow commits after partitions produce.
pub fn check_zones(ops: &[Op]) -> Result<(), String> {
    let mut clusters: BTreeMap<Option<u64>, (u64, u64)> = BTreeMap::new();
    clusters.insert(None, (0, 0));
    for op in ops {
        let value = match op.kind {
            OpKind::Write(v) | OpKind::Read(Some(v)) => Some(v),
            OpKind::Read(None) => None,
            // (exact for plain reads and writes only: given a relaxed history)
            OpKind::Cas { .. } => continue,
        };
        let (first_complete, last_invoke) = clusters.entry(value).or_insert((op.complete, op.invoke));
        *first_complete = (*first_complete).min(op.complete);
        *last_invoke = (*last_invoke).max(op.invoke);
    }
    let zones: Vec<(Option<u64>, bool, u64, u64)> =
        clusters.into_iter().map(|(v, (f, s))| if f < s { (v, true, f, s) } else { (v, false, s, f) }).collect();
    for (i, a) in zones.iter().enumerate() {
        for b in &zones[i + 1..] {
            let (forward, other) = match (a.1, b.1) {
                (false, false) => continue,
                (true, true) => {
                    if a.2 < b.3 && b.2 < a.3 {
                        return Err(format!(
                            "not linearizable: values {:?} and {:?} each had to stay in place over overlapping \
                             spans [{}, {}] and [{}, {}]",
                            a.0, b.0, a.2, a.3, b.2, b.3
                        ));
                    }
                    continue;
                }
                (true, false) => (a, b),
                (false, true) => (b, a),
            };
            if forward.2 < other.2 && other.3 < forward.3 {
                return Err(format!(
                    "not linearizable: value {:?} had to stay in place over [{}, {}], but value {:?} was written \
                     and read entirely inside it, in [{}, {}]",
                    forward.0, forward.2, forward.3, other.0, other.2, other.3
                ));
            }
        }
    }
    Ok(())
}

/// Cheap, definite violations of a register with unique values (plain
/// reads and writes: see [`relax_cas`]), found before
/// the (exponential in the worst case) search and explained precisely: a read
/// returning a value never written or written only after the read returned,
/// or a value overwritten by a write that completed before the read began.
pub fn obvious_violation(ops: &[Op]) -> Result<(), String> {
    let writes: std::collections::HashMap<u64, &Op> = ops
        .iter()
        .filter_map(|op| match op.kind {
            OpKind::Write(v) => Some((v, op)),
            OpKind::Read(_) | OpKind::Cas { .. } => None,
        })
        .collect();
    for read in ops {
        let OpKind::Read(value) = read.kind else { continue };
        let source = match value {
            None => None,
            Some(v) => match writes.get(&v) {
                None => return Err(format!("a read returned {v}, which no completed write wrote")),
                Some(w) if w.invoke > read.complete => {
                    return Err(format!("a read done at stamp {} returned {v}, written later", read.complete))
                }
                Some(w) => Some(*w),
            },
        };
        // a write entirely between the source write's end and the read's start overwrote it
        let newer = ops.iter().find(|w| {
            matches!(w.kind, OpKind::Write(_))
                && w.complete < read.invoke
                && source.is_none_or(|s| s.complete < w.invoke)
        });
        if let Some(newer) = newer {
            return Err(format!(
                "stale read: read [{}, {}] returned {value:?}, but write {:?} [{}, {}] completed after it and before the read",
                read.invoke, read.complete, newer.kind, newer.invoke, newer.complete
            ));
        }
    }
    Ok(())
}

/// The register model: a write always succeeds; a read must see the value;
/// a compare-and-set succeeds exactly when the register holds what it expects.
fn step(state: Option<u64>, op: &Op) -> Option<Option<u64>> {
    match op.kind {
        OpKind::Write(value) => Some(Some(value)),
        OpKind::Read(value) => (value == state).then_some(state),
        OpKind::Cas { expect, value, succeeded: true } => (state == expect).then_some(Some(value)),
        OpKind::Cas { expect, succeeded: false, .. } => (state != expect).then_some(state),
    }
}

/// Checks one register's history (initially unwritten) by exhaustive search.
pub fn check_register(ops: &[Op]) -> Result<(), String> {
    search_register(ops, u64::MAX).expect("unbounded search concludes")
}

/// The search, giving up (`None`) after `budget` steps.
pub fn search_register(ops: &[Op], budget: u64) -> Option<Result<(), String>> {
    let mut steps = 0u64;
    let n = ops.len();
    // events 0..2n: call of op i is 2i, return is 2i+1; then head and tail sentinels
    let (head, tail) = (2 * n, 2 * n + 1);
    let mut order: Vec<usize> = (0..2 * n).collect();
    order.sort_by_key(|e| if e % 2 == 0 { ops[e / 2].invoke } else { ops[e / 2].complete });
    let mut next = vec![tail; 2 * n + 2];
    let mut prev = vec![head; 2 * n + 2];
    let mut last = head;
    for &e in &order {
        next[last] = e;
        prev[e] = last;
        last = e;
    }
    next[last] = tail;
    prev[tail] = last;

    let unlink = |e: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, q) = (prev[e], next[e]);
        next[p] = q;
        prev[q] = p;
    };
    let relink = |e: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, q) = (prev[e], next[e]);
        next[p] = e;
        prev[q] = e;
    };

    let mut linearized = vec![0u64; n.div_ceil(64)];
    let mut cache: HashSet<(Vec<u64>, Option<u64>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<u64>)> = Vec::new();
    let mut state: Option<u64> = None;
    let mut deepest: (usize, usize) = (0, usize::MAX);
    let mut e = next[head];
    while next[head] != tail {
        steps += 1;
        if steps > budget {
            return None;
        }
        if e % 2 == 0 {
            let i = e / 2;
            if let Some(new_state) = step(state, &ops[i]) {
                linearized[i / 64] |= 1 << (i % 64);
                if cache.insert((linearized.clone(), new_state)) {
                    stack.push((e, state));
                    state = new_state;
                    unlink(e, &mut next, &mut prev);
                    unlink(e + 1, &mut next, &mut prev);
                    e = next[head];
                    continue;
                }
                linearized[i / 64] &= !(1 << (i % 64));
            }
            e = next[e];
        } else {
            if stack.len() >= deepest.0 {
                deepest = (stack.len(), e / 2);
            }
            let Some((call, old_state)) = stack.pop() else {
                return Some(Err(explain(ops, deepest.1)));
            };
            let i = call / 2;
            state = old_state;
            linearized[i / 64] &= !(1 << (i % 64));
            relink(call + 1, &mut next, &mut prev);
            relink(call, &mut next, &mut prev);
            e = next[call];
        }
    }
    Some(Ok(()))
}

fn explain(ops: &[Op], stuck: usize) -> String {
    let Some(op) = ops.get(stuck) else { return "not linearizable".to_string() };
    let what = match op.kind {
        OpKind::Write(v) => format!("write of {v}"),
        OpKind::Read(v) => format!("read returning {v:?}"),
        OpKind::Cas { expect, value, succeeded } => {
            format!("compare-and-set of {expect:?} to {value} ({})", if succeeded { "done" } else { "refused" })
        }
    };
    format!("not linearizable: no order places the {what} invoked at stamp {} and done at {}", op.invoke, op.complete)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: u8, value: u64, invoke: u64, complete: u64) -> Op {
        Op { key, kind: OpKind::Write(value), invoke, complete }
    }

    fn read(key: u8, value: Option<u64>, invoke: u64, complete: u64) -> Op {
        Op { key, kind: OpKind::Read(value), invoke, complete }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let ops = [write(0, 1, 1, 2), read(0, Some(1), 3, 4), write(0, 2, 5, 6), read(0, Some(2), 7, 8)];
        check(&ops).unwrap();
    }

    #[test]
    fn concurrent_writes_may_be_read_in_either_order() {
        let ops = [write(0, 1, 1, 5), write(0, 2, 2, 6), read(0, Some(1), 7, 8)];
        check(&ops).unwrap();
        let ops = [write(0, 1, 1, 5), write(0, 2, 2, 6), read(0, Some(2), 7, 8)];
        check(&ops).unwrap();
    }

    #[test]
    fn stale_read_is_caught() {
        let ops = [write(0, 1, 1, 2), write(0, 2, 3, 4), read(0, Some(1), 5, 6)];
        let err = check(&ops).unwrap_err();
        assert!(err.contains("key 0"), "{err}");
    }

    #[test]
    fn read_of_unwritten_after_write_is_caught() {
        let ops = [write(3, 1, 1, 2), read(3, None, 3, 4)];
        assert!(check(&ops).is_err());
    }

    #[test]
    fn reads_going_back_in_time_are_caught() {
        // both writes done; two later reads see 2 then 1
        let ops = [write(0, 1, 1, 10), write(0, 2, 2, 11), read(0, Some(2), 12, 13), read(0, Some(1), 14, 15)];
        assert!(check(&ops).is_err());
    }

    #[test]
    fn keys_are_independent() {
        let ops = [write(0, 1, 1, 2), write(1, 2, 3, 4), read(0, Some(1), 5, 6), read(1, Some(2), 5, 6)];
        check(&ops).unwrap();
    }

    /// The zone test and the exhaustive search agree on random small histories.
    #[test]
    fn zone_test_agrees_with_the_search() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(7);
        let (mut good, mut bad) = (0, 0);
        for _ in 0..3000 {
            let n = rng.gen_range(1..9);
            let mut ops = Vec::new();
            let mut written = Vec::new();
            for i in 0..n {
                let invoke = rng.gen_range(1..30);
                let complete = invoke + rng.gen_range(1..12);
                if rng.gen_bool(0.5) || written.is_empty() {
                    let value = 100 + i as u64;
                    written.push(value);
                    ops.push(write(0, value, invoke, complete));
                } else {
                    let value = if rng.gen_bool(0.2) { None } else { Some(written[rng.gen_range(0..written.len())]) };
                    ops.push(read(0, value, invoke, complete));
                }
            }
            // distinct stamps, as the history gives
            for (k, op) in ops.iter_mut().enumerate() {
                op.invoke = op.invoke * 100 + 2 * k as u64;
                op.complete = op.complete * 100 + 2 * k as u64 + 1;
            }
            let search = check_register(&ops).is_ok();
            let zones = obvious_violation(&ops).is_ok() && check_zones(&ops).is_ok();
            assert_eq!(search, zones, "disagree on {ops:?}");
            if search {
                good += 1
            } else {
                bad += 1
            }
        }
        assert!(good > 100 && bad > 100, "{good} linearizable, {bad} not");
    }

    fn cas(expect: Option<u64>, value: u64, succeeded: bool, invoke: u64, complete: u64) -> Op {
        Op { key: 0, kind: OpKind::Cas { expect, value, succeeded }, invoke, complete }
    }

    #[test]
    fn a_cas_on_the_value_in_place_is_linearizable() {
        let ops =
            [write(0, 1, 1, 2), cas(Some(1), 2, true, 3, 4), read(0, Some(2), 5, 6), cas(Some(1), 3, false, 7, 8)];
        check(&ops).unwrap();
        let ops = [cas(None, 1, true, 1, 2), read(0, Some(1), 3, 4)];
        check(&ops).unwrap();
    }

    #[test]
    fn a_cas_that_succeeded_on_an_overwritten_value_is_caught() {
        let ops = [write(0, 1, 1, 2), write(0, 2, 3, 4), cas(Some(1), 3, true, 5, 6)];
        assert!(check(&ops).is_err());
    }

    /// Caught by the search only: the relaxed history drops refused ones.
    #[test]
    fn a_cas_refused_while_the_register_held_its_expectation_is_caught() {
        let ops = [write(0, 1, 1, 2), cas(Some(1), 5, false, 3, 4)];
        assert!(obvious_violation(&relax_cas(&ops)).is_ok() && check_zones(&relax_cas(&ops)).is_ok());
        let err = check(&ops).unwrap_err();
        assert!(err.contains("compare-and-set"), "{err}");
    }

    /// Caught by the search only: relaxed, both are a read of 1 and a write.
    #[test]
    fn two_cas_from_one_value_cannot_both_succeed() {
        let ops = [write(0, 1, 1, 2), cas(Some(1), 2, true, 3, 6), cas(Some(1), 3, true, 4, 7)];
        assert!(check_zones(&relax_cas(&ops)).is_ok());
        assert!(check(&ops).is_err());
        // one of them refused: fine
        let ops = [write(0, 1, 1, 2), cas(Some(1), 2, true, 3, 6), cas(Some(1), 3, false, 4, 7)];
        check(&ops).unwrap();
    }

    #[test]
    fn a_long_concurrent_history_finishes() {
        let mut ops = Vec::new();
        for i in 0..200u64 {
            ops.push(write(0, i + 1, i * 2, i * 2 + 5));
            ops.push(read(0, Some(i + 1), i * 2 + 6, i * 2 + 7));
        }
        check(&ops).unwrap();
    }
}
