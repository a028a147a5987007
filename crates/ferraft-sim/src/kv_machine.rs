//! The simulated KV as a real [`StateMachine`], run by the shared node host.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferraft::{LogId, StateMachine, StorageError};

use crate::journal::{Journal, Record};
use crate::model::{KvState, Put};

/// One node's KV. Its state is shared with the simulator, which reads it
/// for reads and the final checks.
pub struct SimKv {
    state: Arc<Mutex<KvState>>,
    journal: Journal,
}

impl SimKv {
    /// A KV over `state`, journaling into `journal`.
    pub fn new(state: Arc<Mutex<KvState>>, journal: Journal) -> Self {
        Self { state, journal }
    }
}

impl StateMachine for SimKv {
    type Command = Put;
    /// The op id of the write applied, so the simulator can check that each
    /// write reply names the caller's own write.
    type Response = u64;

    fn apply(&mut self, log_id: LogId, command: &Put) -> u64 {
        self.state.lock().expect("single-threaded").apply(command);
        self.journal.push(Record::Applied { log_id, op: command.op });
        command.op
    }

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        Ok(self.state.lock().expect("single-threaded").encode())
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        *self.state.lock().expect("single-threaded") = KvState::decode(data);
        self.journal.push(Record::Restored);
        Ok(())
    }
}
