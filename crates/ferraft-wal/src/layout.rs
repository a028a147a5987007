//! Where every entry lives: the ordered segments and their record offsets.
//!
//! The store decides placement itself, synchronously, when a call arrives;
//! the writer thread only executes the resulting file operations. Keeping the
//! decisions in one place makes them deterministic and testable without I/O.

use ferraft::LogIndex;

use crate::segment::Segment;

/// The segments of the log, ordered by first index, with no gaps between them.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    segments: Vec<Segment>,
    segment_bytes: u64,
}

/// Where a new record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The segment (by first index) that receives the record.
    pub segment: LogIndex,
    /// The byte offset of the record in that segment.
    pub offset: u64,
    /// Whether the segment must be created first (the previous one is full).
    pub create: bool,
}

/// The file operations a truncation needs, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TruncatePlan {
    /// Segments to delete, last first.
    pub delete: Vec<LogIndex>,
    /// The segment to cut and the length to cut it to.
    pub cut: Option<(LogIndex, u64)>,
}

impl Layout {
    /// A layout over recovered segments.
    pub fn new(segments: Vec<Segment>, segment_bytes: u64) -> Self {
        Self { segments, segment_bytes }
    }

    /// The segments, oldest first.
    #[cfg(test)]
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The index the next appended entry continues at, if any segment exists.
    pub fn next_index(&self) -> Option<LogIndex> {
        self.segments.last().map(Segment::next_index)
    }

    /// Places a record of `len` bytes for entry `index`, starting a new
    /// segment when the current one is full or does not continue at `index`.
    pub fn place(&mut self, index: LogIndex, len: u64) -> Placement {
        let roll = match self.segments.last() {
            None => true,
            Some(last) => last.next_index() != index || (!last.is_empty() && last.len_bytes + len > self.segment_bytes),
        };
        if roll {
            self.segments.push(Segment::new(index));
        }
        let last = self.segments.last_mut().expect("a segment exists after rolling");
        let offset = last.len_bytes;
        last.offsets.push(offset);
        last.len_bytes += len;
        Placement { segment: last.first_index, offset, create: roll }
    }

    /// Forgets every entry with index `>= since`.
    pub fn truncate(&mut self, since: LogIndex) -> TruncatePlan {
        let mut plan = TruncatePlan::default();
        while self.segments.last().is_some_and(|last| last.first_index >= since) {
            let removed = self.segments.pop().expect("checked non-empty");
            plan.delete.push(removed.first_index);
        }
        if let Some(last) = self.segments.last_mut() {
            if let Some((start, _)) = last.record_span(since) {
                last.offsets.truncate((since - last.first_index) as usize);
                last.len_bytes = start;
                plan.cut = Some((last.first_index, start));
            }
        }
        plan
    }

    /// Forgets the segments whose entries are all `<= upto`; returns them,
    /// oldest first. The segment still holding a later entry stays whole.
    pub fn purge(&mut self, upto: LogIndex) -> Vec<LogIndex> {
        let mut purged = 0;
        while let Some(segment) = self.segments.get(purged) {
            let next = self.segments.get(purged + 1).map_or(segment.next_index(), |s| s.first_index);
            if next > upto + 1 {
                break;
            }
            purged += 1;
        }
        self.segments.drain(..purged).map(|s| s.first_index).collect()
    }

    /// The records from `first` up to (not including) `end` that lie in the
    /// segment holding `first`: read with one call, then continue at `next`.
    pub fn run(&self, first: LogIndex, end: LogIndex) -> Option<Run> {
        let position = self.segments.partition_point(|s| s.first_index <= first).checked_sub(1)?;
        let segment = &self.segments[position];
        let last = end.min(segment.next_index()).checked_prev().filter(|last| *last >= first)?;
        let (start, _) = segment.record_span(first)?;
        let (_, stop) = segment.record_span(last)?;
        Some(Run { segment: segment.first_index, start, end: stop, next: last + 1 })
    }
}

/// Consecutive records in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// The segment holding them.
    pub segment: LogIndex,
    /// Byte offset of the first record.
    pub start: u64,
    /// Byte offset just past the last record.
    pub end: u64,
    /// The index after the last record of the run.
    pub next: LogIndex,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::SEGMENT_HEADER_BYTES;

    const HEADER: u64 = SEGMENT_HEADER_BYTES;

    /// Ten-byte records, three per segment.
    fn layout_with(entries: u64) -> Layout {
        let mut layout = Layout::new(Vec::new(), HEADER + 30);
        for index in LogIndex(1).through(LogIndex(entries)) {
            layout.place(index, 10);
        }
        layout
    }

    fn firsts(layout: &Layout) -> Vec<LogIndex> {
        layout.segments().iter().map(|s| s.first_index).collect()
    }

    #[test]
    fn full_segment_rolls() {
        let mut layout = layout_with(3);
        assert_eq!(layout.place(LogIndex(4), 10), Placement { segment: LogIndex(4), offset: HEADER, create: true });
        assert_eq!(
            layout.place(LogIndex(5), 10),
            Placement { segment: LogIndex(4), offset: HEADER + 10, create: false }
        );
    }

    #[test]
    fn oversized_record_gets_a_segment_of_its_own() {
        let mut layout = Layout::new(Vec::new(), HEADER + 30);
        assert!(layout.place(LogIndex(1), 1000).create);
        assert!(layout.place(LogIndex(2), 10).create);
    }

    #[test]
    fn truncate_deletes_later_segments_and_cuts_the_one_holding_since() {
        let mut layout = layout_with(8);
        let plan = layout.truncate(LogIndex(5));
        assert_eq!(plan, TruncatePlan { delete: vec![LogIndex(7)], cut: Some((LogIndex(4), HEADER + 10)) });
        assert_eq!(layout.next_index(), Some(LogIndex(5)));
        assert_eq!(layout.place(LogIndex(5), 10).offset, HEADER + 10);
    }

    #[test]
    fn truncate_at_a_segment_start_continues_in_the_previous_segment() {
        let mut layout = layout_with(8);
        let plan = layout.truncate(LogIndex(4));
        assert_eq!(plan, TruncatePlan { delete: vec![LogIndex(7), LogIndex(4)], cut: None });
        assert_eq!(layout.next_index(), Some(LogIndex(4)));
        assert!(layout.place(LogIndex(4), 10).create, "previous segment is full");
    }

    #[test]
    fn truncate_past_the_end_changes_nothing() {
        let mut layout = layout_with(2);
        assert_eq!(layout.truncate(LogIndex(3)), TruncatePlan::default());
        assert_eq!(layout.next_index(), Some(LogIndex(3)));
    }

    #[test]
    fn purge_keeps_the_segment_holding_live_entries() {
        let mut layout = layout_with(8);
        assert_eq!(layout.purge(LogIndex(5)), vec![LogIndex(1)]);
        assert_eq!(firsts(&layout), vec![LogIndex(4), LogIndex(7)]);
        assert_eq!(layout.purge(LogIndex(6)), vec![LogIndex(4)]);
        assert_eq!(firsts(&layout), vec![LogIndex(7)]);
    }

    #[test]
    fn purge_past_the_end_drops_every_segment() {
        let mut layout = layout_with(8);
        assert_eq!(layout.purge(LogIndex(100)), vec![LogIndex(1), LogIndex(4), LogIndex(7)]);
        assert_eq!(layout.next_index(), None);
        assert_eq!(layout.place(LogIndex(101), 10), Placement { segment: LogIndex(101), offset: HEADER, create: true });
    }

    #[test]
    fn run_stays_within_one_segment() {
        let layout = layout_with(8);
        assert_eq!(
            layout.run(LogIndex(1), LogIndex(9)),
            Some(Run { segment: LogIndex(1), start: HEADER, end: HEADER + 30, next: LogIndex(4) })
        );
        assert_eq!(
            layout.run(LogIndex(5), LogIndex(6)),
            Some(Run { segment: LogIndex(4), start: HEADER + 10, end: HEADER + 20, next: LogIndex(6) })
        );
        assert_eq!(
            layout.run(LogIndex(7), LogIndex(100)),
            Some(Run { segment: LogIndex(7), start: HEADER, end: HEADER + 20, next: LogIndex(9) })
        );
        assert_eq!(layout.run(LogIndex(9), LogIndex(10)), None);
        assert_eq!(layout.run(LogIndex(0), LogIndex(10)), None);
        assert_eq!(layout.run(LogIndex(3), LogIndex(3)), None);
    }
}
