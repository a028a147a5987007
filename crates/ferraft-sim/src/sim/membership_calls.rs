//! What the simulator tells the membership answer checker about the
//! membership calls it makes: who was asked what, and what the call returned.

use ferraft::runtime::{IndexResult, InitializeResult, MembershipResult, ReadResult, WriteResult};
use ferraft::{BasicNode, LogIndex};

use super::Simulation;
use crate::host_parts::SimReply;
use crate::invariants::{Asked, RequestHandle};
use crate::journal::Record;
use crate::kv_machine::SimKv;

impl Simulation {
    /// Tells the answer checker node `i` is asked `asked` now.
    pub(super) fn issue_membership_request(
        &mut self,
        i: usize,
        request_id: Option<u64>,
        asked: Asked,
    ) -> RequestHandle {
        let engine = self.nodes[i].engine();
        let leader = engine.filter(|e| e.is_leader()).map(|e| e.vote().leader_id);
        self.checkers.answers.issue(self.nodes[i].id, request_id, asked, leader, self.now)
    }

    /// Tells the answer checker a change could not be asked: node down.
    pub(super) fn membership_call_returned(&mut self, handle: RequestHandle, called: Option<()>) {
        if called.is_none() {
            // the node was down: the call was never made
            self.checkers.answers.proposed(handle, None);
        }
    }

    /// Tells the answer checker which entry an explicit joint step on node
    /// `i` proposed (`Some(Some(index))`); a refusal was answered within the
    /// call, through its reply.
    pub(super) fn step_returned(&mut self, i: usize, handle: RequestHandle, result: Option<Option<LogIndex>>) {
        match result {
            Some(None) => {}
            Some(Some(index)) => {
                let log_id = self.nodes[i].engine().and_then(|e| e.log().log_id_at(index));
                self.checkers.answers.proposed(handle, log_id);
            }
            None => self.checkers.answers.proposed(handle, None),
        }
    }

    /// A reply for write `op` on node `i`.
    pub(super) fn write_reply(&self, i: usize, op: u64) -> SimReply<WriteResult<SimKv, BasicNode>> {
        let journal = self.nodes[i].journal.clone();
        SimReply::new(move |result| journal.push(Record::WriteAnswered { op, result }))
    }

    /// A reply for a read of `key` on node `i` invoked at stamp `invoke`:
    /// the value is read from the node's KV when the answer comes.
    pub(super) fn read_reply(&self, i: usize, key: u8, invoke: u64) -> SimReply<ReadResult<BasicNode>> {
        let journal = self.nodes[i].journal.clone();
        let kv = self.nodes[i].kv.clone();
        SimReply::new(move |result: ReadResult<BasicNode>| {
            let value = result.ok().map(|_| kv.lock().expect("single-threaded").get(key));
            journal.push(Record::ReadAnswered { key, invoke, value });
        })
    }

    /// A reply for an `initialize` on node `i`.
    pub(super) fn initialize_reply(&self, i: usize) -> SimReply<InitializeResult> {
        let journal = self.nodes[i].journal.clone();
        SimReply::new(move |result| journal.push(Record::InitializeAnswered(result)))
    }

    /// A reply for membership request `request_id` on node `i`.
    pub(super) fn membership_reply(&self, i: usize, request_id: u64) -> SimReply<MembershipResult<BasicNode>> {
        let journal = self.nodes[i].journal.clone();
        SimReply::new(move |result| journal.push(Record::MembershipAnswered { request_id, result }))
    }

    /// A reply for the explicit joint step `handle` on node `i`.
    pub(super) fn step_reply(&self, i: usize, handle: RequestHandle) -> SimReply<IndexResult<BasicNode>> {
        let journal = self.nodes[i].journal.clone();
        SimReply::new(move |result| journal.push(Record::StepAnswered { handle, result }))
    }
}
