//! What each membership error tells its caller, in one place.
//!
//! The answer checker trusts an error only as far as its documented meaning
//! goes: "nothing happened" is checked against the log, "unknown" is not, and
//! a partial outcome must name a committed membership. The match has no
//! wildcard on purpose: a new error variant does not compile until it is
//! classified here (one line).

use ferraft::{BasicNode, ChangeMembershipError, StoredMembership};

/// What an error claims about the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    /// No membership entry proposed for the request will ever commit.
    NothingHappened,
    /// The request may or may not take effect: no check.
    Unknown,
    /// Some step committed (this membership) but not the final config.
    Partial(StoredMembership<BasicNode>),
}

/// Classifies `error` by its documented meaning.
pub fn meaning(error: &ChangeMembershipError<BasicNode>) -> Meaning {
    use ChangeMembershipError as E;
    match error {
        E::ForwardToLeader(_)
        | E::Invalid(_)
        | E::Mismatch { .. }
        | E::VoterAndLearner { .. }
        | E::WrongPrepareIndex { .. }
        | E::NotReady
        | E::NoPendingJoint
        | E::PreconditionFailed { .. }
        | E::BadChangeId { .. }
        | E::ChangeIdReused { .. }
        | E::PeerRefused { .. }
        | E::IncarnationUnknown { .. }
        | E::QueuedTooLong { .. }
        | E::LearnerNotReady { .. }
        | E::NotVoter { .. } => Meaning::NothingHappened,
        E::PartiallyApplied { membership } | E::RolledBack { membership } => Meaning::Partial((**membership).clone()),
        // LearnerLagging comes after the learner was added (runtime only)
        E::LeadershipLost | E::LearnerLagging { .. } | E::NotCommittedInTime { .. } | E::Fatal(_) => Meaning::Unknown,
    }
}
