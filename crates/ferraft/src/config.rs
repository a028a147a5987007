//! Node configuration, with defaults and validation.

use serde::{Deserialize, Serialize};

use crate::leader_id::LeaderIdMode;

/// Why a configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Followers would time out between heartbeats and start elections.
    #[error("heartbeat_interval_ms ({heartbeat_ms}) must be less than election_timeout_min_ms ({election_min_ms})")]
    HeartbeatTooSlow {
        /// The heartbeat interval.
        heartbeat_ms: u64,
        /// The minimal election timeout.
        election_min_ms: u64,
    },
    /// The election timeout range is empty or inverted.
    #[error("election_timeout_min_ms ({min_ms}) must be less than election_timeout_max_ms ({max_ms})")]
    ElectionRange {
        /// The minimum.
        min_ms: u64,
        /// The maximum.
        max_ms: u64,
    },
    /// A limit that must be at least 1 is 0.
    #[error("{name} must be at least 1")]
    Zero {
        /// The setting.
        name: &'static str,
    },
}

testing_pub! {
    /// A protocol rule switched off on purpose, so the simulator can show its
    /// checkers catch the breakage. Public only with the `testing` feature.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum BrokenRule {
        /// Commit with a majority of the last config of a joint membership only.
        CommitWithOneConfig,
        /// Propose a membership before the previous one is committed.
        ProposeBeforeCommit,
        /// Go straight to the target config, skipping the old-new-intersect step.
        SkipOldNewIntersect,
        /// Grant a second vote in a term to another candidate.
        DoubleVote,
        /// Answer a planned membership change as done without proposing it.
        AnswerWithoutProposing,
        /// (The host's rule, not the engine's.) Answer the oldest waiting write
        /// with whatever write is applied next, matched by position instead of by
        /// log id: a write reply matched to the wrong index.
        AnswerWriteByPosition,
        /// Count a node of another incarnation than membership records as its
        /// old self (its votes and acknowledgements).
        CountOtherIncarnations,
        /// Let in messages of another cluster, and (the host's rule) take a
        /// probe's answer from another cluster for a node free to be added.
        SkipClusterCheck,
        /// On the leader's flush notice, commit without checking that this
        /// node and the leader are a quorum of every config in force.
        FlushCommitWithoutQuorum,
        /// A node that a membership it does not know committed demotes or
        /// removes never campaigns, though it was a voter of the entry before.
        DemotedNeverCampaigns,
        /// Ignore change ids when a change arrives: a repeat is planned
        /// again (against whatever the membership became) instead of being
        /// answered from the first call's entries, and an id already used
        /// for another change is not refused.
        ForgetChangeIds,
    }
}

/// How a node behaves. Start from `Config::default()` and change what you need;
/// [`Config::validate`] runs when a node starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Fixes this node's cluster id; 0 (the default) fixes none. Without it,
    /// a node gets its cluster id when initialized (a random one, or the one
    /// given to [`crate::Raft::initialize_in_cluster`]) or from the first
    /// leader that reaches it, and keeps it for good. With it, the node
    /// belongs to this cluster from its first start. Either way messages of
    /// another cluster are dropped. A store written before cluster ids were
    /// saved is taken to belong to this cluster (what such nodes sent).
    pub cluster_id: u64,
    /// How often a leader sends heartbeats.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Ask for pre-votes first so a rejoining node cannot bump the term.
    pub pre_vote: bool,
    /// A leader steps down when a quorum has not answered within an election timeout.
    pub check_quorum: bool,
    /// One leader per term, or ordered leader ids within a term.
    pub leader_id_mode: LeaderIdMode,
    /// Most entries in one AppendEntries message.
    pub max_entries_per_append: usize,
    /// Most bytes of encoded entries in one AppendEntries message (one entry
    /// larger than this still goes alone). Keep it well below the
    /// transport's largest message (16 MiB for `ferraft-net`): a message
    /// above that is dropped, and the follower would never catch up.
    pub max_append_bytes: usize,
    /// Most unacknowledged AppendEntries messages per follower.
    pub max_inflight_appends: usize,
    /// Build a snapshot about every this many applied entries; 0 = never.
    /// Each node keeps its own phase (a quarter of the interval per node id),
    /// so the members of a quorum do not all snapshot at the same index.
    pub snapshot_logs_since_last: u64,
    /// Keep this many entries before the snapshot point when purging, so slightly
    /// lagging followers can catch up from the log.
    pub purge_keep_entries: u64,
    /// After a snapshot, a leader keeps up to this many entries before the
    /// snapshot point in its store for followers still catching up: from the
    /// log, or through a snapshot that the log after it must then follow (so
    /// catch-up never loops between snapshot and log). A follower further
    /// behind gets a newer snapshot. Costs disk, not memory: entries older
    /// than the log cache are only in the store.
    pub catch_up_retain_entries: u64,
    /// Applied entries kept in memory for followers that lag; older ones stay
    /// only in the log store, and a follower that needs them gets a snapshot.
    /// Bounds memory when snapshots are rare or off.
    pub log_cache_entries: u64,
    /// Snapshot chunk size in bytes.
    pub snapshot_chunk_bytes: usize,
    /// The most snapshot bytes a second sent to each catching-up node; 0
    /// (the default) sends as fast as the follower acknowledges.
    pub snapshot_max_bytes_per_s: u64,
    /// Snapshot chunks sent to a follower before the first is acknowledged
    /// (0 counts as 1). Several hide the round trip per chunk; each is read
    /// at its offset when sent, so a transfer holds at most this many.
    pub snapshot_chunks_in_flight: usize,
    /// A joint config that leaves by itself waits this long for a majority of
    /// its new voters to be reachable and caught up; if they are not, the
    /// leader reverts it to the old voters instead (the caller hears
    /// `RolledBack`). 0 waits forever. Keep it well below twenty election
    /// timeouts, the bound within which every membership call is answered.
    pub joint_exit_timeout_ms: u64,
    /// Accept a follower whose log went backwards (its data was wiped). Off by
    /// default: a wiped voter could otherwise help lose committed entries.
    pub allow_log_reversion: bool,
    /// A learner lacking more entries than this is not promoted to voter
    /// (refused with its lag) unless the change is forced: a voter that
    /// must first catch up can stall commits.
    pub promote_max_lag_entries: u64,
    /// How many steps nicer (Linux nice value, capped at 19) than the
    /// node's own threads its background jobs run: snapshot encode and
    /// install decode, and log reads for lagging nodes. Where nodes share
    /// few cores, a catch-up then takes CPU from the clients' writes only
    /// when the Raft tasks leave it idle. 0 runs them on tokio's blocking
    /// threads at the node's priority. Ignored off Linux and in the simulator.
    pub background_job_nice: u8,
    /// A follower with no other event waiting writes and syncs its log
    /// append on its own thread when the store's writer is idle (see
    /// [`LogStore::append_inline`](crate::LogStore::append_inline)), so its
    /// acknowledgement leaves without two thread wake-ups. Never on a leader:
    /// its appends must reach the followers before it waits for its own sync.
    /// Only on a current-thread runtime (as `ferraft serve --workers 1` runs
    /// a node; by default it runs several workers): on a multi-thread one the
    /// sync would block a worker that other tasks wait on, so there appends
    /// are always handed off.
    pub follower_sync_inline: bool,
    /// How many changes with a change id are remembered once their log
    /// entries are compacted (kept in memory and in every snapshot's
    /// metadata): a repeat of one of them is answered with its first
    /// outcome; of an older one, it is planned again. 0 remembers none.
    /// Fewer are kept if these take more than
    /// [`RememberedChanges::MAX_BYTES`](crate::RememberedChanges::MAX_BYTES)
    /// (1 MiB) encoded: the newest that fit (a change of a cluster of
    /// hundreds of nodes takes tens of KB).
    pub remembered_change_ids: usize,
    /// Test-only: break one protocol rule (see `BrokenRule`).
    #[cfg(feature = "testing")]
    #[serde(skip)]
    pub broken_rule: Option<BrokenRule>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cluster_id: 0,
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            pre_vote: true,
            check_quorum: true,
            leader_id_mode: LeaderIdMode::Standard,
            max_entries_per_append: 4096,
            max_append_bytes: 4 << 20,
            max_inflight_appends: 64,
            snapshot_logs_since_last: 50_000,
            purge_keep_entries: 1_000,
            catch_up_retain_entries: 1_000_000,
            log_cache_entries: 50_000,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_max_bytes_per_s: 0,
            snapshot_chunks_in_flight: 8,
            joint_exit_timeout_ms: 5_000,
            allow_log_reversion: false,
            promote_max_lag_entries: 1_000,
            background_job_nice: 10,
            follower_sync_inline: true,
            remembered_change_ids: 1_000,
            #[cfg(feature = "testing")]
            broken_rule: None,
        }
    }
}

impl Config {
    /// Checks that the settings work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_interval_ms >= self.election_timeout_min_ms {
            return Err(ConfigError::HeartbeatTooSlow {
                heartbeat_ms: self.heartbeat_interval_ms,
                election_min_ms: self.election_timeout_min_ms,
            });
        }
        if self.election_timeout_min_ms >= self.election_timeout_max_ms {
            return Err(ConfigError::ElectionRange {
                min_ms: self.election_timeout_min_ms,
                max_ms: self.election_timeout_max_ms,
            });
        }
        for (name, value) in [
            ("heartbeat_interval_ms", self.heartbeat_interval_ms as usize),
            ("max_entries_per_append", self.max_entries_per_append),
            ("max_append_bytes", self.max_append_bytes),
            ("max_inflight_appends", self.max_inflight_appends),
            ("log_cache_entries", self.log_cache_entries as usize),
            ("snapshot_chunk_bytes", self.snapshot_chunk_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { name });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn heartbeat_not_below_election_timeout_is_an_error() {
        let config = Config { heartbeat_interval_ms: 300, ..Config::default() };
        assert!(matches!(config.validate(), Err(ConfigError::HeartbeatTooSlow { .. })));
    }

    #[test]
    fn inverted_election_range_is_an_error() {
        let config = Config { election_timeout_max_ms: 100, ..Config::default() };
        assert!(matches!(config.validate(), Err(ConfigError::ElectionRange { .. })));
    }
}
