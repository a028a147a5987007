//! Cluster membership: configs, quorums, and planning a change.
//!
//! See the [membership guide](crate::docs::membership) for the algorithm.

mod change;
mod change_guard;
mod change_targets;
mod config;
mod joint_exit;
mod quorum;
mod remembered_changes;

pub use change::{ChangeMembers, ChangeMembersError};
pub use change_guard::ChangeGuard;
pub use config::{Membership, MembershipError, StoredMembership};
pub use joint_exit::JointExit;
pub use quorum::{committed_index, is_quorum};
pub use remembered_changes::{RememberedChange, RememberedChanges};
