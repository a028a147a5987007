//! The log ids of entries the in-memory cache dropped but the store still
//! holds, kept as one leader id per run of entries (a run per term, so a
//! handful): enough to name any of them, as a purge of the store must.

use std::collections::VecDeque;

use crate::leader_id::LeaderId;
use crate::log_id::LogId;
use crate::node::LogIndex;

/// Where each leader's run of evicted entries starts, oldest first.
#[derive(Debug, Clone, Default)]
pub struct EvictedIds {
    runs: VecDeque<(LogIndex, LeaderId)>,
}

impl EvictedIds {
    /// Records an entry leaving the cache (in log order).
    pub fn record(&mut self, log_id: LogId) {
        if self.runs.back().map(|(_, leader)| *leader) != Some(log_id.leader_id) {
            self.runs.push_back((log_id.index, log_id.leader_id));
        }
    }

    /// The log id of evicted entry `index`, if it was recorded.
    pub fn log_id_at(&self, index: LogIndex) -> Option<LogId> {
        let run = self.runs.partition_point(|(first, _)| *first <= index).checked_sub(1)?;
        Some(LogId::new(self.runs[run].1, index))
    }

    /// Forgets the entries up to `index` (the store purged them).
    pub fn forget_upto(&mut self, index: LogIndex) {
        while self.runs.get(1).is_some_and(|(first, _)| *first <= index + 1) {
            self.runs.pop_front();
        }
    }

    /// Forgets everything (the log was replaced by a snapshot).
    pub fn clear(&mut self) {
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{NodeId, Term};

    #[test]
    fn names_each_evicted_entry_by_its_run() {
        let mut ids = EvictedIds::default();
        for (term, index) in [(1, 3), (1, 4), (2, 5), (2, 6), (4, 7)] {
            ids.record(LogId::new(LeaderId::new(Term(term), NodeId(1)), LogIndex(index)));
        }
        assert_eq!(ids.log_id_at(LogIndex(2)), None, "never recorded");
        assert_eq!(ids.log_id_at(LogIndex(4)), Some(LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(4))));
        assert_eq!(ids.log_id_at(LogIndex(6)), Some(LogId::new(LeaderId::new(Term(2), NodeId(1)), LogIndex(6))));
        ids.forget_upto(LogIndex(5));
        assert_eq!(ids.runs.len(), 2, "the run holding 6 stays");
        assert_eq!(ids.log_id_at(LogIndex(6)), Some(LogId::new(LeaderId::new(Term(2), NodeId(1)), LogIndex(6))));
    }
}
