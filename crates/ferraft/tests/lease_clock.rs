//! The read lease against a Raft task that is held up mid-turn: the clock a
//! node judges time by must be read when it handles a message, not once per
//! batch of events.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferraft::mem::{MemLogStore, MemRouter, RecordingStateMachine};
use ferraft::{
    Config, LogId, LogIndex, MessageBody, NodeId, Raft, ServerState, SnapshotJob, StateMachine, StorageError,
};
use support::{addr, nodes};

/// A state machine whose next snapshot copy holds the Raft task for a while
/// (a big copy, or the process descheduled), then says it is done.
#[derive(Clone)]
struct SlowCopy {
    inner: RecordingStateMachine<u64>,
    hold_ms: Arc<AtomicU64>,
    done_at: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl StateMachine for SlowCopy {
    type Command = u64;
    type Response = LogIndex;

    fn apply(&mut self, log_id: LogId, command: &u64) -> LogIndex {
        self.inner.apply(log_id, command)
    }

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        self.inner.snapshot()
    }

    fn snapshot_job(&mut self) -> SnapshotJob {
        let hold = self.hold_ms.swap(0, Ordering::SeqCst);
        if hold > 0 {
            std::thread::sleep(Duration::from_millis(hold));
            *self.done_at.lock().unwrap() = Some(Instant::now());
        }
        self.inner.snapshot_job()
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        self.inner.restore(data)
    }
}

/// Follower F's Raft task is held 600 ms by a snapshot copy while the
/// leader's heartbeats queue up for it. Handled after the hold, they must
/// count as heard *then*: F refuses other candidates for an election timeout
/// after it acknowledged them, which is what the leader's lease (counted
/// from when it sent them) rests on. Judged by the clock read before the
/// hold, F's stickiness ran out 600 ms early: a candidate won F's vote while
/// the leader, cut off, still answered lease reads, and missed the write the
/// new leader had acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_held_up_mid_turn_does_not_vote_away_a_live_lease() {
    let config = Config {
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 1_000,
        election_timeout_max_ms: 2_000,
        ..Config::default()
    };
    let router = MemRouter::<u64>::new();
    let ids = [1, 2, 3].map(NodeId);
    let mut rafts = std::collections::BTreeMap::new();
    let mut sms = std::collections::BTreeMap::new();
    for id in ids {
        let sm = SlowCopy { inner: RecordingStateMachine::new(), hold_ms: Arc::default(), done_at: Arc::default() };
        let store = Box::new(MemLogStore::<u64, ferraft::BasicNode>::new());
        let raft = Raft::new(id, config.clone(), router.network(), store, sm.clone()).await.expect("starts");
        router.register(addr(id), raft.clone());
        rafts.insert(id, raft);
        sms.insert(id, sm);
    }
    rafts[&ids[0]].initialize(nodes(&ids)).await.expect("initialize");
    let wait = Duration::from_secs(10);
    rafts[&ids[0]].wait(wait).metrics(|m| m.current_leader.is_some(), "a leader").await.unwrap();
    let leader = rafts[&ids[0]].metrics().borrow().current_leader.unwrap();
    let others: Vec<NodeId> = ids.iter().copied().filter(|id| *id != leader).collect();
    let (f, g) = (others[0], others[1]);
    let first = rafts[&leader].client_write(1).await.expect("write");
    for id in ids {
        rafts[&id].wait(wait).applied_at_least(first.log_id.index).await.unwrap();
    }

    // G stops hearing the leader (its candidacy will need F's vote)
    router.partition(&[g], &[g, leader]);
    // counts F's acknowledgements to the leader once F's hold is over
    let done_at = sms[&f].done_at.clone();
    let acks_after = Arc::new(AtomicUsize::new(0));
    let (flag, acks) = (done_at.clone(), acks_after.clone());
    router.set_tap(move |m| {
        if m.envelope.from == f
            && m.envelope.to == leader
            && matches!(m.body, MessageBody::AppendReply(_))
            && flag.lock().unwrap().is_some()
        {
            acks.fetch_add(1, Ordering::SeqCst);
        }
    });
    sms[&f].hold_ms.store(600, Ordering::SeqCst);
    let raft_f = rafts[&f].clone();
    tokio::spawn(async move {
        let _ = raft_f.trigger_snapshot().await;
    });
    // once F acknowledged the heartbeats that queued during the hold, the
    // leader is cut off: its lease runs on those acknowledgements
    let deadline = Instant::now() + Duration::from_secs(5);
    while acks_after.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "F never acknowledged after its hold");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    router.isolate(leader);
    let hold_over = done_at.lock().unwrap().expect("hold over");

    // 450 ms after the hold: F heard the leader that recently (it handled
    // its heartbeats then), so it must still refuse G
    tokio::time::sleep_until((hold_over + Duration::from_millis(450)).into()).await;
    rafts[&g].trigger_elect();
    let elected = rafts[&g].wait(Duration::from_millis(250)).state(ServerState::Leader).await.is_ok();
    if !elected {
        return;
    }
    let Ok(Ok(second)) = tokio::time::timeout(Duration::from_millis(250), rafts[&g].client_write(2)).await else {
        return;
    };
    assert_eq!(rafts[&leader].metrics().borrow().state, ServerState::Leader, "the old leader does not know yet");
    match rafts[&leader].lease_read().await {
        Ok(read_index) => {
            let applied: Vec<u64> = sms[&leader].inner.applied().into_iter().map(|(_, c)| c).collect();
            panic!(
                "stale lease read: node {leader} answered at read index {read_index} with {applied:?}, \
                 while node {g}, elected with follower {f}'s vote {:?} after its hold, had acknowledged write 2 at {}",
                Instant::now() - hold_over,
                second.log_id.index
            );
        }
        Err(e) => eprintln!("lease refused: {e}"),
    }
}
