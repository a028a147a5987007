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
    /// A planted bug (`Fault::CasAlwaysWrites`).
    cas_always_writes: bool,
}

impl SimKv {
    /// A KV over `state`, journaling into `journal`.
    pub fn new(state: Arc<Mutex<KvState>>, journal: Journal) -> Self {
        Self { state, journal, cas_always_writes: false }
    }

    /// Plants the bug of writing a compare-and-set whatever the register holds.
    pub fn with_cas_always_writing(self, on: bool) -> Self {
        Self { cas_always_writes: on, ..self }
    }
}

impl StateMachine for SimKv {
    type Command = Put;
    /// The op id of the write applied, so the simulator can check that each
    /// write reply names the caller's own write.
    type Response = u64;

    fn apply(&mut self, log_id: LogId, command: &Put) -> u64 {
        let mut state = self.state.lock().expect("single-threaded");
        let wrote = match self.cas_always_writes {
            // the planted bug: the expectation is reported, not enforced
            true if command.expect.is_some() => {
                let matched = command.expect == Some(state.get(command.key));
                state.apply(&Put { expect: None, ..command.clone() });
                matched
            }
            _ => state.apply(command),
        };
        drop(state);
        self.journal.push(Record::Applied { log_id, op: command.op, wrote });
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
