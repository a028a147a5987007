//! Membership errors told with the membership they were checked against.

use ferraft::{ChangeMembersError, ChangeMembershipError};

use crate::error::ApiError;
use crate::kv::KvNode;
use crate::KvRaft;

/// The API error for a refused change; a change naming a node that is not a
/// member says what the members are, so the caller sees the mistake.
pub fn explain(raft: &KvRaft, error: ChangeMembershipError<KvNode>) -> ApiError {
    let unknown = matches!(
        error,
        ChangeMembershipError::Invalid(ChangeMembersError::UnknownNode { .. } | ChangeMembersError::NotLearner { .. })
    );
    let api_error = ApiError::from(error);
    if !unknown {
        return api_error;
    }
    let metrics = raft.metrics().borrow().clone();
    let Some(stored) = metrics.membership else { return api_error };
    let (voters, learners) = (stored.membership.voter_set(), stored.membership.learner_set());
    match api_error {
        ApiError::Reply { code, message, extra } => ApiError::Reply {
            code,
            message: format!("{message} (current voters {voters:?}, learners {learners:?})"),
            extra,
        }
        .with("voters", serde_json::json!(voters))
        .with("learners", serde_json::json!(learners)),
        other => other,
    }
}
