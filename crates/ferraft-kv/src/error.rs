//! API errors: the codes and statuses of the HTTP contract, and how the
//! library's errors map onto them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferraft::{
    ChangeMembersError, ChangeMembershipError, Fatal, ForceNewClusterError, ForwardToLeader, InitializeError, NodeId,
    ReadError, TransferError, WriteError,
};
use serde_json::{json, Map, Value};

use crate::kv::KvNode;

/// The error codes of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 400: malformed input; nothing happened.
    BadRequest,
    /// 404: key absent.
    NotFound,
    /// 503: this node is not part of a cluster yet.
    NotInitialized,
    /// 503: no leader is known right now.
    NoLeader,
    /// 409: a precondition failed.
    Conflict,
    /// 504: the outcome is unknown.
    Timeout,
    /// 500: the outcome is unknown.
    Internal,
    /// 405: the path exists but not with this method; nothing happened.
    MethodNotAllowed,
    /// 404: no endpoint has this path; nothing happened.
    NoSuchEndpoint,
    /// 503: (readiness) this node is behind its leader or cannot reach it.
    NotReady,
    /// 410: (watch) the changes from the index asked are no longer held.
    Compacted,
    /// 503: this node was removed from the cluster; nothing happened.
    NotMember,
    /// 500: a membership change took effect in part (a step of it committed);
    /// the answer carries the committed membership in force.
    PartiallyApplied,
}

impl Code {
    /// Every code, for the documentation check.
    pub const ALL: [Code; 13] = [
        Code::BadRequest,
        Code::NotFound,
        Code::NotInitialized,
        Code::NoLeader,
        Code::Conflict,
        Code::Timeout,
        Code::Internal,
        Code::MethodNotAllowed,
        Code::NoSuchEndpoint,
        Code::NotReady,
        Code::Compacted,
        Code::NotMember,
        Code::PartiallyApplied,
    ];

    /// The code as written in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::NotFound => "not_found",
            Code::NotInitialized => "not_initialized",
            Code::NoLeader => "no_leader",
            Code::Conflict => "conflict",
            Code::Timeout => "timeout",
            Code::Internal => "internal",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::NoSuchEndpoint => "no_such_endpoint",
            Code::NotReady => "not_ready",
            Code::Compacted => "compacted",
            Code::PartiallyApplied => "partially_applied",
            Code::NotMember => "not_member",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BadRequest => StatusCode::BAD_REQUEST,
            Code::NotFound | Code::NoSuchEndpoint => StatusCode::NOT_FOUND,
            Code::NotInitialized | Code::NoLeader | Code::NotReady | Code::NotMember => StatusCode::SERVICE_UNAVAILABLE,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::Conflict => StatusCode::CONFLICT,
            Code::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Code::Internal | Code::PartiallyApplied => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Compacted => StatusCode::GONE,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// Answer with this error.
    Reply {
        /// The code.
        code: Code,
        /// Human text.
        message: String,
        /// Extra fields of the error object.
        extra: Map<String, Value>,
    },
    /// No leader is known yet (an election may be running): wait for one,
    /// then relay the request to it.
    NoLeaderYet,
    /// This node is not the leader: the request goes to the leader's API.
    Forward {
        /// The leader's id.
        leader_id: NodeId,
        /// The leader's descriptor, when known.
        leader: Option<KvNode>,
    },
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError::Reply { code, message: message.into(), extra: Map::new() }
    }

    /// Adds an extra field to the error object (ids and indexes as plain numbers).
    pub fn with(mut self, name: &str, value: impl serde::Serialize) -> Self {
        if let ApiError::Reply { extra, .. } = &mut self {
            extra.insert(name.to_owned(), json!(value));
        }
        self
    }

    /// `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, message)
    }

    /// `timeout`: the outcome is unknown.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(Code::Timeout, message)
    }

    /// `not_initialized`.
    pub fn not_initialized() -> Self {
        Self::new(Code::NotInitialized, "this node is not part of a cluster yet: initialize it or add it as a learner")
    }

    /// `not_member`.
    pub fn not_member() -> Self {
        Self::new(
            Code::NotMember,
            "this node was removed from the cluster: send requests to a member, or add it back as a learner",
        )
    }

    /// `no_leader`.
    pub fn no_leader() -> Self {
        Self::new(Code::NoLeader, "no leader is known right now; retry shortly")
    }

    /// The code of this error (forwarding counts as `no_leader`).
    pub fn code(&self) -> Code {
        match self {
            ApiError::Reply { code, .. } => *code,
            ApiError::Forward { .. } | ApiError::NoLeaderYet => Code::NoLeader,
        }
    }

    /// The JSON body of this error.
    pub fn body(&self) -> Value {
        match self {
            ApiError::Reply { code, message, extra } => {
                let mut error = extra.clone();
                error.insert("code".into(), code.as_str().into());
                error.insert("message".into(), message.clone().into());
                json!({ "error": error })
            }
            ApiError::NoLeaderYet => ApiError::no_leader().body(),
            ApiError::Forward { leader_id, .. } => {
                json!({"error": {"code": "no_leader", "message": format!("the leader {leader_id} cannot be reached"), "leader": leader_id}})
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.code().status(), axum::Json(self.body())).into_response()
    }
}

fn forward(f: ForwardToLeader<KvNode>) -> ApiError {
    match f.leader_id {
        Some(leader_id) => ApiError::Forward { leader_id, leader: f.leader_node },
        None => ApiError::NoLeaderYet,
    }
}

fn fatal(f: Fatal) -> ApiError {
    ApiError::new(Code::Internal, format!("the raft node failed: {f}"))
}

impl From<WriteError<KvNode>> for ApiError {
    fn from(e: WriteError<KvNode>) -> Self {
        match e {
            WriteError::ForwardToLeader(f) => forward(f),
            WriteError::LeadershipLost => ApiError::timeout(e.to_string()),
            WriteError::Fatal(f) => fatal(f),
            // a variant added to the library later: its outcome is unknown to this server
            #[allow(unreachable_patterns)]
            _ => ApiError::new(Code::Internal, "unexpected error from the raft node"),
        }
    }
}

impl From<ReadError<KvNode>> for ApiError {
    fn from(e: ReadError<KvNode>) -> Self {
        match e {
            ReadError::ForwardToLeader(f) => forward(f),
            ReadError::NotConfirmed | ReadError::LeaseExpired => ApiError::new(Code::NoLeader, e.to_string()),
            ReadError::Fatal(f) => fatal(f),
            // a variant added to the library later: its outcome is unknown to this server
            #[allow(unreachable_patterns)]
            _ => ApiError::new(Code::Internal, "unexpected error from the raft node"),
        }
    }
}

impl From<ForceNewClusterError> for ApiError {
    fn from(e: ForceNewClusterError) -> Self {
        match e {
            ForceNewClusterError::NotConfirmed | ForceNewClusterError::NotMember => {
                ApiError::new(Code::Conflict, e.to_string())
            }
            ForceNewClusterError::NotInitialized => ApiError::new(Code::NotInitialized, e.to_string()),
            ForceNewClusterError::Fatal(f) => fatal(f),
            // a variant added to the library later: its outcome is unknown to this server
            #[allow(unreachable_patterns)]
            _ => ApiError::new(Code::Internal, "unexpected error from the raft node"),
        }
    }
}

impl From<InitializeError> for ApiError {
    fn from(e: InitializeError) -> Self {
        match e {
            InitializeError::NotAllowed
            | InitializeError::OtherCluster { .. }
            | InitializeError::JoinedCluster { .. }
            | InitializeError::ClusterFormed { .. }
            | InitializeError::MemberOfOtherCluster { .. }
            | InitializeError::InProgress => ApiError::new(Code::Conflict, e.to_string()),
            InitializeError::Invalid(_) | InitializeError::NotInMembers { .. } => ApiError::bad_request(e.to_string()),
            InitializeError::Fatal(f) => fatal(f),
            // a variant added to the library later: its outcome is unknown to this server
            #[allow(unreachable_patterns)]
            _ => ApiError::new(Code::Internal, "unexpected error from the raft node"),
        }
    }
}

impl From<ChangeMembershipError<KvNode>> for ApiError {
    fn from(e: ChangeMembershipError<KvNode>) -> Self {
        let message = crate::error_text::change_message(&e);
        match e {
            ChangeMembershipError::ForwardToLeader(f) => forward(f),
            ChangeMembershipError::Invalid(ChangeMembersError::Invalid(_)) => ApiError::bad_request(message),
            ChangeMembershipError::Invalid(_) => ApiError::new(Code::Conflict, message),
            ChangeMembershipError::VoterAndLearner { node_id } => {
                ApiError::bad_request(message).with("node_id", node_id)
            }
            ChangeMembershipError::Mismatch { voters, learners } => {
                ApiError::new(Code::Conflict, message).with("voters", json!(voters)).with("learners", json!(learners))
            }
            ChangeMembershipError::WrongPrepareIndex { given, pending } => {
                ApiError::new(Code::Conflict, message).with("given", given).with("pending", json!(pending))
            }
            ChangeMembershipError::IncarnationUnknown { node_id } => {
                ApiError::new(Code::Conflict, message).with("node_id", node_id)
            }
            ChangeMembershipError::PeerRefused { node_id, .. } => {
                ApiError::new(Code::Conflict, message).with("node_id", node_id)
            }
            ChangeMembershipError::NotReady
            | ChangeMembershipError::QueuedTooLong { .. }
            | ChangeMembershipError::NoPendingJoint
            | ChangeMembershipError::LearnerLagging { .. } => ApiError::new(Code::Conflict, message),
            ChangeMembershipError::LeadershipLost | ChangeMembershipError::NotCommittedInTime { .. } => {
                ApiError::timeout(message)
            }
            ChangeMembershipError::PartiallyApplied { membership }
            | ChangeMembershipError::RolledBack { membership } => ApiError::new(Code::PartiallyApplied, message)
                .with("membership", crate::membership_json::membership(Some(&*membership), true)),
            ChangeMembershipError::PreconditionFailed { expected, actual } => ApiError::new(Code::Conflict, message)
                .with("expected_membership_index", expected)
                .with("membership", crate::membership_json::membership(Some(&*actual), true)),
            ChangeMembershipError::BadChangeId { .. } => ApiError::bad_request(message),
            ChangeMembershipError::ChangeIdReused { change_id } => {
                ApiError::new(Code::Conflict, message).with("change_id", change_id)
            }
            ChangeMembershipError::LearnerNotReady { node_id, lag_entries, lag_bytes } => {
                ApiError::new(Code::Conflict, message)
                    .with("node_id", node_id)
                    .with("lag_entries", lag_entries)
                    .with("lag_bytes", lag_bytes)
            }
            ChangeMembershipError::NotVoter { node_id } => {
                ApiError::new(Code::Conflict, message).with("node_id", node_id)
            }
            ChangeMembershipError::Fatal(f) => fatal(f),
            // a variant added to the library later: its outcome is unknown to this server
            #[allow(unreachable_patterns)]
            _ => ApiError::new(Code::Internal, "unexpected error from the raft node"),
        }
    }
}

impl From<TransferError<KvNode>> for ApiError {
    fn from(e: TransferError<KvNode>) -> Self {
        let message = e.to_string();
        match e {
            TransferError::ForwardToLeader(f) => forward(f),
            TransferError::NotVoter { .. } | TransferError::NoTarget => ApiError::new(Code::Conflict, message),
            TransferError::Timeout => ApiError::timeout(message),
            TransferError::Fatal(f) => fatal(f),
            // a variant added to the library later: its outcome is unknown to this server
            #[allow(unreachable_patterns)]
            _ => ApiError::new(Code::Internal, "unexpected error from the raft node"),
        }
    }
}

impl From<Fatal> for ApiError {
    fn from(f: Fatal) -> Self {
        fatal(f)
    }
}
