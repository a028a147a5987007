//! Seeds of the CI set that fail because of known engine bugs.
//!
//! The engine cannot be fixed from this crate, so these seeds are reported as
//! "known" by `sim_seeds` instead of failing it, and `tests/engine_bugs.rs`
//! holds an ignored test per bug that passes once the engine is fixed. When a
//! bug is fixed, delete its seeds here: `sim_seeds` then checks them again.

/// A deadlock after a leader demotes itself: see `tests/engine_bugs.rs`.
pub const DEMOTED_BY_UNCOMMITTED_MEMBERSHIP: &str = "demoted-by-uncommitted-membership deadlock";

/// `(seed, bug)` for every CI seed known to fail for a reason in the engine.
pub const KNOWN_ENGINE_BUG_SEEDS: &[(u64, &str)] = &[
    (93, DEMOTED_BY_UNCOMMITTED_MEMBERSHIP),
    (107, DEMOTED_BY_UNCOMMITTED_MEMBERSHIP),
    (118, DEMOTED_BY_UNCOMMITTED_MEMBERSHIP),
    (213, DEMOTED_BY_UNCOMMITTED_MEMBERSHIP),
];

/// The known engine bug behind `seed`, if any.
pub fn known_bug(seed: u64) -> Option<&'static str> {
    KNOWN_ENGINE_BUG_SEEDS.iter().find(|(s, _)| *s == seed).map(|(_, bug)| *bug)
}
