//! Small state machines for tests and benchmarks.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

use crate::entry::AppData;
use crate::log_id::LogId;
use crate::node::LogIndex;
use crate::state_machine::{SnapshotJob, StateMachine};
use crate::storage::StorageError;

/// Does nothing; answers `()`. For measuring the framework alone.
#[derive(Debug, Default, Clone)]
pub struct NoopStateMachine;

impl StateMachine for NoopStateMachine {
    type Command = ();
    type Response = ();

    fn apply(&mut self, _log_id: LogId, _command: &()) {}

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        Ok(Bytes::new())
    }

    fn restore(&mut self, _data: &Bytes) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Records every applied command in order and answers with its log index.
/// Clones share the record, so a test can inspect what a node applied.
#[derive(Debug, Clone)]
pub struct RecordingStateMachine<C> {
    applied: Arc<Mutex<Vec<(LogId, C)>>>,
}

impl<C> Default for RecordingStateMachine<C> {
    fn default() -> Self {
        Self { applied: Arc::new(Mutex::new(Vec::new())) }
    }
}

impl<C: Clone> RecordingStateMachine<C> {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// The commands applied so far, in order.
    pub fn applied(&self) -> Vec<(LogId, C)> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl<C: AppData + Serialize + DeserializeOwned> StateMachine for RecordingStateMachine<C> {
    type Command = C;
    type Response = LogIndex;

    fn apply(&mut self, log_id: LogId, command: &C) -> LogIndex {
        self.applied.lock().unwrap_or_else(|p| p.into_inner()).push((log_id, command.clone()));
        log_id.index
    }

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        encode_record(&self.applied())
    }

    fn snapshot_job(&mut self) -> SnapshotJob {
        let applied = self.applied();
        Box::new(move || encode_record(&applied))
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        let applied: Vec<(LogId, C)> =
            serde_json::from_slice(data).map_err(|e| StorageError::new("decoding a snapshot", e))?;
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = applied;
        Ok(())
    }
}

fn encode_record<C: Serialize>(applied: &[(LogId, C)]) -> Result<Bytes, StorageError> {
    let json = serde_json::to_vec(applied).map_err(|e| StorageError::new("encoding a snapshot", e))?;
    Ok(Bytes::from(json))
}
