//! Cluster membership: configs, quorums, and planning a change.
//!
//! See the [membership guide](crate::docs::membership) for the algorithm.

mod change;
mod change_targets;
mod config;
mod quorum;

pub use change::{ChangeMembers, ChangeMembersError};
pub use config::{Membership, MembershipError, StoredMembership};
pub use quorum::{committed_index, is_quorum};
