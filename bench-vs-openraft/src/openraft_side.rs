//! openraft's side of the comparison: the `benchmarks/minimal` workload built on
//! openraft 0.9 (storage v2 traits). An in-memory log, a state machine that keeps
//! nothing but its applied position and membership, and a "network" that calls the
//! target node's `Raft` handle directly, with no serialization.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferraft_bench::closed_loop::{run_closed_loop, ClosedLoopRun};
use ferraft_bench::minimal::MinimalOptions;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, Config, Entry, EntryPayload, LogId, OptionalSend, Raft, RaftLogReader, RaftSnapshotBuilder,
    StorageError, StoredMembership, Vote,
};

use crate::SideReport;

openraft::declare_raft_types!(
    /// Empty requests, empty responses, `u64` node ids.
    pub Bench:
        D = (),
        R = (),
        NodeId = u64,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

type NodeId = u64;
type Err = StorageError<NodeId>;

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// Log store

#[derive(Default)]
struct LogData {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
    entries: BTreeMap<u64, Entry<Bench>>,
}

/// In-memory log; clones share the same log (the clone is also the reader).
#[derive(Clone, Default)]
pub struct MemLog {
    data: Arc<Mutex<LogData>>,
}

impl RaftLogReader<Bench> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Bench>>, Err> {
        Ok(locked(&self.data).entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<Bench> for MemLog {
    type LogReader = MemLog;

    async fn get_log_state(&mut self) -> Result<LogState<Bench>, Err> {
        let data = locked(&self.data);
        let last = data.entries.values().next_back().map(|e| e.log_id).or(data.purged);
        Ok(LogState { last_purged_log_id: data.purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), Err> {
        locked(&self.data).vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, Err> {
        Ok(locked(&self.data).vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), Err> {
        locked(&self.data).committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, Err> {
        Ok(locked(&self.data).committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<Bench>) -> Result<(), Err>
    where
        I: IntoIterator<Item = Entry<Bench>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut data = locked(&self.data);
            for entry in entries {
                data.entries.insert(entry.log_id.index, entry);
            }
        }
        // Memory is "durable" as soon as it is written.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), Err> {
        locked(&self.data).entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), Err> {
        let mut data = locked(&self.data);
        let kept = data.entries.split_off(&(log_id.index + 1));
        data.entries = kept;
        data.purged = Some(log_id);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// No-op state machine

#[derive(Default)]
struct SmData {
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshots_built: u64,
    current: Option<SnapshotMeta<NodeId, BasicNode>>,
}

/// Applies nothing but its position; snapshots are empty.
#[derive(Clone, Default)]
pub struct NoopSm {
    data: Arc<Mutex<SmData>>,
}

fn empty_snapshot(meta: SnapshotMeta<NodeId, BasicNode>) -> Snapshot<Bench> {
    Snapshot { meta, snapshot: Box::new(Cursor::new(Vec::new())) }
}

impl RaftSnapshotBuilder<Bench> for NoopSm {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Bench>, Err> {
        let mut data = locked(&self.data);
        data.snapshots_built += 1;
        let meta = SnapshotMeta {
            last_log_id: data.applied,
            last_membership: data.membership.clone(),
            snapshot_id: format!("snap-{}", data.snapshots_built),
        };
        data.current = Some(meta.clone());
        Ok(empty_snapshot(meta))
    }
}

impl RaftStateMachine<Bench> for NoopSm {
    type SnapshotBuilder = NoopSm;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), Err> {
        let data = locked(&self.data);
        Ok((data.applied, data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, Err>
    where
        I: IntoIterator<Item = Entry<Bench>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut data = locked(&self.data);
        let mut responses = Vec::new();
        for entry in entries {
            data.applied = Some(entry.log_id);
            if let EntryPayload::Membership(m) = entry.payload {
                data.membership = StoredMembership::new(Some(entry.log_id), m);
            }
            responses.push(());
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, Err> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), Err> {
        let mut data = locked(&self.data);
        data.applied = meta.last_log_id;
        data.membership = meta.last_membership.clone();
        data.current = Some(meta.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Bench>>, Err> {
        Ok(locked(&self.data).current.clone().map(empty_snapshot))
    }
}

// ---------------------------------------------------------------------------
// In-process network: direct calls on the target's handle

/// Every node's handle by id; all nodes are registered before the cluster starts.
#[derive(Clone, Default)]
pub struct Directory {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<Bench>>>>,
}

/// A connection to one peer: its handle.
pub struct Peer {
    target: NodeId,
    raft: Raft<Bench>,
}

impl RaftNetworkFactory<Bench> for Directory {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Peer {
        let raft = locked(&self.nodes).get(&target).cloned().expect("every member is registered before initialize");
        Peer { target, raft }
    }
}

impl RaftNetwork<Bench> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Bench>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.raft.append_entries(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Bench>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.raft.install_snapshot(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.raft.vote(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

// ---------------------------------------------------------------------------
// The run

/// openraft's own minimal benchmark config: election timeout 200..2000 ms,
/// purge batch 1024, everything else default (heartbeat 50 ms, 300 entries per
/// AppendEntries, a snapshot every 5000 logs).
fn config() -> Result<Arc<Config>, String> {
    let config =
        Config { election_timeout_min: 200, election_timeout_max: 2000, purge_batch_size: 1024, ..Default::default() };
    Ok(Arc::new(config.validate().map_err(|e| e.to_string())?))
}

/// Runs the workload on a fresh tokio runtime with `options.workers` threads.
pub fn run(options: &MinimalOptions) -> Result<SideReport, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: &MinimalOptions) -> Result<SideReport, String> {
    let config = config()?;
    let directory = Directory::default();
    let ids: Vec<NodeId> = (1..=options.members).collect();
    let mut nodes = Vec::new();
    for id in &ids {
        let raft = Raft::new(*id, config.clone(), directory.clone(), MemLog::default(), NoopSm::default())
            .await
            .map_err(|e| e.to_string())?;
        locked(&directory.nodes).insert(*id, raft.clone());
        nodes.push(raft);
    }
    let members: BTreeMap<NodeId, BasicNode> = ids.iter().map(|id| (*id, BasicNode::new(format!("n{id}")))).collect();
    nodes[0].initialize(members).await.map_err(|e| e.to_string())?;
    let metrics = nodes[0]
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .map_err(|e| e.to_string())?;
    let leader_id = metrics.current_leader.ok_or("no leader")?;
    let leader = nodes[(leader_id - 1) as usize].clone();
    // Every member has the initial membership (and the leader's blank entry) before the clock starts.
    for node in &nodes {
        node.wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.last_applied.map(|l| l.index) >= Some(1), "initial entries applied")
            .await
            .map_err(|e| e.to_string())?;
    }

    let per_client = options.operations / options.clients;
    let write = move || {
        let leader = leader.clone();
        async move { leader.client_write(()).await.map(|_| ()).map_err(|e| e.to_string()) }
    };
    let ClosedLoopRun { mut latencies, elapsed } = run_closed_loop(options.clients, per_client, write).await?;
    for node in nodes {
        let _ = node.shutdown().await;
    }
    let total = per_client * options.clients;
    Ok(SideReport {
        puts_per_second: total as f64 / elapsed.as_secs_f64(),
        p50_us: latencies.percentile_us(50.0),
        p99_us: latencies.percentile_us(99.0),
    })
}
