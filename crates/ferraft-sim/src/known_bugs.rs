//! Known engine bugs, and how the simulator recognizes them.
//!
//! The engine cannot be fixed from this crate. A failure the simulator can
//! attribute to a known bug (by its symptom, checked in the simulation) starts
//! with [`KNOWN_BUG_PREFIX`]; `sim_seeds` reports such seeds without failing,
//! and `tests/engine_bugs.rs` holds an ignored test per bug that passes once
//! the engine is fixed. When a bug is fixed, delete its recognizer: `sim_seeds`
//! then fails on any seed that still shows the symptom.

/// Starts the message of a failure attributed to a known engine bug.
pub const KNOWN_BUG_PREFIX: &str = "known engine bug: ";

/// A deadlock after a leader demotes itself: see `tests/engine_bugs.rs`.
pub const DEMOTED_BY_UNCOMMITTED_MEMBERSHIP: &str = "demoted-by-uncommitted-membership deadlock";

/// A leader stops replicating to a follower after a stale conflict reply: see `tests/engine_bugs.rs`.
pub const STALE_CONFLICT_MARKS_REVERTED: &str = "stale-conflict-reply marks follower reverted";

/// An initial member that crashes right after `initialize` keeps its vote but
/// loses its log, and then refuses `initialize`: see `tests/engine_bugs.rs`.
pub const INITIALIZE_NOT_DURABLE: &str = "initialize-not-durable-before-campaign";

/// `(seed, bug)`: example seeds showing each bug with the engine of commit
/// 3fe6a88. Any change to the engine or to the simulator's schedule moves a
/// bug to other seeds; `tests/engine_bugs.rs` pins each as a scripted scenario.
pub const KNOWN_ENGINE_BUG_SEEDS: &[(u64, &str)] = &[
    (137, DEMOTED_BY_UNCOMMITTED_MEMBERSHIP),
    (176, DEMOTED_BY_UNCOMMITTED_MEMBERSHIP),
    (219, DEMOTED_BY_UNCOMMITTED_MEMBERSHIP),
    (187, STALE_CONFLICT_MARKS_REVERTED),
    (307, STALE_CONFLICT_MARKS_REVERTED),
    (531, STALE_CONFLICT_MARKS_REVERTED),
    (2926, INITIALIZE_NOT_DURABLE),
];

/// Whether a failure message was attributed to a known engine bug.
pub fn is_known(message: &str) -> bool {
    message.starts_with(KNOWN_BUG_PREFIX)
}
