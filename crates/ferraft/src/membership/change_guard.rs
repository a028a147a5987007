//! What a caller can attach to a planned membership change: an identity and a
//! precondition.

use serde::{Deserialize, Serialize};

use crate::node::LogIndex;

/// Identity and precondition of a planned change.
///
/// With a `change_id`, repeating the call (after a timeout, a leader change,
/// a restart of the client) returns the outcome of the first call instead of
/// applying the change twice: the id travels in the membership entries the
/// change proposes, so any leader finds it. An id names one change: a call
/// under it that asks for another change (other members, or another
/// `retain`) fails with `ChangeIdReused` and changes nothing. With
/// `expect_membership_index`, the change applies only if the membership in
/// force is the entry at that log index, checked when the call arrives and
/// again when the leader gets to it; otherwise it fails with
/// `PreconditionFailed` and nothing happens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeGuard {
    /// The caller's id for the change (at most [`ChangeGuard::MAX_CHANGE_ID_BYTES`] bytes).
    pub change_id: Option<String>,
    /// Apply only if the membership in force is the entry at this index.
    pub expect_membership_index: Option<LogIndex>,
}

impl ChangeGuard {
    /// Longest change id accepted, in bytes: it is stored in the log.
    pub const MAX_CHANGE_ID_BYTES: usize = 128;
}
