//! Running byte counts of the log, so the leader can say how many bytes a
//! follower lacks without walking or re-encoding the entries it lacks.
//!
//! Each entry's size is its postcard encoding counted (not written) once, when
//! it enters the log: the same encoding the WAL stores, minus its record
//! framing. Differences of running totals then answer "bytes after index i"
//! in constant time.

use std::collections::VecDeque;

use crate::node::LogIndex;

/// Cumulative encoded sizes of the entries held in memory.
#[derive(Debug, Clone, Default)]
pub struct EntryBytes {
    /// The running total just before the first held entry.
    base: u64,
    /// `totals[k]`: the running total through the `k`-th held entry.
    totals: VecDeque<u64>,
}

impl EntryBytes {
    /// Counts one more entry of `size` bytes at the end.
    pub fn push(&mut self, size: u64) {
        let last = self.totals.back().copied().unwrap_or(self.base);
        self.totals.push_back(last + size);
    }

    /// Keeps only the first `keep` entries.
    pub fn truncate(&mut self, keep: usize) {
        self.totals.truncate(keep);
    }

    /// Forgets the first `count` entries (purged).
    pub fn drain_front(&mut self, count: usize) {
        let count = count.min(self.totals.len());
        if count > 0 {
            self.base = self.totals[count - 1];
            self.totals.drain(..count);
        }
    }

    /// Forgets every entry (a snapshot replaced the log).
    pub fn clear(&mut self) {
        self.base = self.totals.back().copied().unwrap_or(self.base);
        self.totals.clear();
    }

    /// How many entries from the `skip`-th held one on (at most `max`) fit
    /// in `max_bytes`: at least one, however large, when one is held.
    pub fn count_within(&self, skip: usize, max: usize, max_bytes: u64) -> usize {
        let before = if skip == 0 { self.base } else { self.totals.get(skip - 1).copied().unwrap_or(self.base) };
        let sizes = self.totals.range(skip.min(self.totals.len())..).scan(before, |previous, total| {
            let size = total - *previous;
            *previous = *total;
            Some(size)
        });
        count_fitting(sizes, max, max_bytes)
    }

    /// Bytes of the entries after `index`, for a log whose first held entry
    /// is `first`. Entries before `first` are gone from memory: they are
    /// counted at the average size of the held ones (an estimate; such a
    /// follower needs a snapshot anyway).
    pub fn after(&self, index: LogIndex, first: LogIndex) -> u64 {
        let last_total = self.totals.back().copied().unwrap_or(self.base);
        if index + 1 >= first {
            let skip = (index + 1 - first) as usize;
            let before = if skip == 0 { self.base } else { self.totals.get(skip - 1).copied().unwrap_or(last_total) };
            return last_total - before;
        }
        let held = last_total - self.base;
        let average = if self.totals.is_empty() { 0 } else { held / self.totals.len() as u64 };
        held + (first.prev() - index) * average
    }
}

/// How many of the leading items of encoded `sizes`, at most `max`, fit in
/// `max_bytes`: at least one when there is one, however large (it must go
/// alone). The one rule for what one message carries.
pub(crate) fn count_fitting(sizes: impl IntoIterator<Item = u64>, max: usize, max_bytes: u64) -> usize {
    let (mut count, mut bytes) = (0, 0);
    for size in sizes.into_iter().take(max) {
        if count > 0 && bytes + size > max_bytes {
            break;
        }
        (count, bytes) = (count + 1, bytes + size);
    }
    count
}

/// The encoded size of `value`, counted without encoding it.
pub fn encoded_size<T: serde::Serialize>(value: &T) -> u64 {
    postcard::experimental::serialized_size(value).map_or(0, |n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(sizes: &[u64]) -> EntryBytes {
        let mut bytes = EntryBytes::default();
        sizes.iter().for_each(|s| bytes.push(*s));
        bytes
    }

    #[test]
    fn bytes_after_an_index_are_the_sizes_of_the_later_entries() {
        // entries 1..=4 of 10, 20, 30, 40 bytes
        let bytes = counted(&[10, 20, 30, 40]);
        assert_eq!(bytes.after(LogIndex(0), LogIndex(1)), 100);
        assert_eq!(bytes.after(LogIndex(2), LogIndex(1)), 70);
        assert_eq!(bytes.after(LogIndex(4), LogIndex(1)), 0);
        assert_eq!(bytes.after(LogIndex(9), LogIndex(1)), 0);
    }

    #[test]
    fn purge_and_truncate_keep_the_counts_of_what_is_held() {
        let mut bytes = counted(&[10, 20, 30, 40]);
        bytes.drain_front(2); // entries 3, 4 held
        assert_eq!(bytes.after(LogIndex(2), LogIndex(3)), 70);
        assert_eq!(bytes.after(LogIndex(3), LogIndex(3)), 40);
        // entries 1 and 2 are estimated at the average of the held ones (35)
        assert_eq!(bytes.after(LogIndex(0), LogIndex(3)), 70 + 2 * 35);
        bytes.truncate(1);
        bytes.push(5);
        assert_eq!(bytes.after(LogIndex(2), LogIndex(3)), 35);
    }

    #[test]
    fn an_entry_is_counted_at_its_encoded_size() {
        let payload = vec![7u8; 1000];
        assert!(encoded_size(&payload) >= 1000);
        assert!(encoded_size(&payload) < 1010);
    }
}
