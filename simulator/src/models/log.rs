//! A partition's log: the records a partitioned service (Kafka, Event Hubs, Kinesis) stores, as
//! a window of offsets that is trimmed from the front once every reader is past it.

use std::collections::VecDeque;

use crate::time::SimTime;
use crate::workload::Msg;

/// One stored record (32 bytes: logs of millions stay small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rec {
    pub id: u64,
    pub key: u64,
    pub created: SimTime,
    pub size: u32,
    /// 0 for none, else the index + 1 of the fault that disturbed this record's journey.
    pub cause: u32,
}

impl Rec {
    pub fn new(m: &Msg) -> Rec {
        Rec {
            id: m.id,
            key: m.key,
            created: m.created,
            size: m.size,
            cause: 0,
        }
    }
}

/// Offsets `base..end()` of one partition.
#[derive(Debug, Default)]
pub(crate) struct Log {
    recs: VecDeque<Rec>,
    base: u64,
}

impl Log {
    /// The offset the next record gets.
    pub fn end(&self) -> u64 {
        self.base + self.recs.len() as u64
    }

    /// The oldest offset still stored.
    pub fn start(&self) -> u64 {
        self.base
    }

    /// Appends and returns the record's offset.
    pub fn push(&mut self, r: Rec) -> u64 {
        self.recs.push_back(r);
        self.end() - 1
    }

    /// The record at `offset`, if still stored.
    pub fn get(&self, offset: u64) -> Option<&Rec> {
        offset
            .checked_sub(self.base)
            .and_then(|i| self.recs.get(i as usize))
    }

    /// Removes every record at or after `offset`; returns them.
    pub fn truncate(&mut self, offset: u64) -> Vec<Rec> {
        let keep = offset.saturating_sub(self.base).min(self.recs.len() as u64) as usize;
        self.recs.split_off(keep).into()
    }

    /// Drops records below `offset`.
    pub fn trim_below(&mut self, offset: u64) {
        while self.base < offset && self.recs.pop_front().is_some() {
            self.base += 1;
        }
    }

    /// Drops the front record (retention); returns it.
    pub fn pop_front(&mut self) -> Option<Rec> {
        let r = self.recs.pop_front()?;
        self.base += 1;
        Some(r)
    }

    /// The front record.
    pub fn front(&self) -> Option<&Rec> {
        self.recs.front()
    }

    /// Records at or after `from`.
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = &Rec> {
        let skip = from.saturating_sub(self.base) as usize;
        self.recs.iter().skip(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64) -> Rec {
        Rec {
            id,
            key: 0,
            created: SimTime::ZERO,
            size: 1,
            cause: 0,
        }
    }

    #[test]
    fn offsets_survive_trimming_and_truncation() {
        let mut l = Log::default();
        for i in 0..10 {
            assert_eq!(l.push(rec(i)), i);
        }
        l.trim_below(4);
        assert_eq!(l.start(), 4);
        assert_eq!(l.get(4).map(|r| r.id), Some(4));
        assert_eq!(l.get(3), None);
        let cut = l.truncate(7);
        assert_eq!(cut.iter().map(|r| r.id).collect::<Vec<_>>(), vec![7, 8, 9]);
        assert_eq!(l.end(), 7);
    }
}
