//! How a joint membership is to be left, recorded in the joint entry itself.
//!
//! A joint config is a temporary state. Whoever leads when it must end, after
//! any number of leader changes and restarts, reads from the entry how the
//! caller that entered it wanted it left: nothing of it lives only in the memory
//! of the leader that proposed it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::node::NodeId;

/// How a joint membership `[old, new]` ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JointExit {
    /// Leave for `new` as soon as the joint entry commits, whoever leads then
    /// (a planned `change_membership`). When false the joint config waits for an
    /// explicit commit or abort (the prepare / commit / abort steps).
    pub automatic: bool,
    /// Voters of `old` only that stay as learners once `new` is in force; every
    /// other voter of `old` only leaves the cluster.
    pub keep_as_learners: BTreeSet<NodeId>,
}
