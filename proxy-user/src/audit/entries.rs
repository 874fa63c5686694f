//! Reading entries out of the audit tree in seq order, value by value, where one value holds
//! the records of one group commit (see [`veil_core::audit::group`]).

use std::collections::VecDeque;

use super::{AuditError, AuditStore};
use veil_core::audit::{group, seq_from_key, seq_key, Entry};

/// The entries (records and the anchor) whose seqs are in a range, oldest first or newest
/// first. Each value is decoded whole when the walk reaches it; an entry that cannot be
/// decoded ends the walk with its error.
pub(super) struct Entries {
    values: sled::Iter,
    /// Decoded entries of the current value still to hand out, in walking order.
    buffered: VecDeque<Entry>,
    first: u64,
    last: u64,
    newest_first: bool,
    done: bool,
}

impl AuditStore {
    /// The entries with seqs in `first..=last`, oldest first, or newest first when
    /// `newest_first`.
    pub(super) fn entries(
        &self,
        first: u64,
        last: u64,
        newest_first: bool,
    ) -> Result<Entries, AuditError> {
        // The value holding `first` is the first whose key is at least `first`, the one
        // holding `last` the first whose key is at least `last`; nothing past it is read.
        let values = match self.tree.range(seq_key(last)..).next().transpose()? {
            // `max`: an empty range (`first` past `last`) is never an inverted one.
            Some((end, _)) => self
                .tree
                .range(seq_key(first)..=seq_key(seq_from_key(&end)?.max(first))),
            None => self.tree.range(seq_key(first)..),
        };
        Ok(Entries {
            values,
            buffered: VecDeque::new(),
            first,
            last,
            newest_first,
            done: first > last,
        })
    }
}

impl Entries {
    /// Decodes the next value in walking order into `buffered`, keeping the entries in range;
    /// `false` when there is none.
    fn refill(&mut self) -> Result<bool, AuditError> {
        let next = if self.newest_first {
            self.values.next_back()
        } else {
            self.values.next()
        };
        let Some(value) = next.transpose()?.map(|(_, value)| value) else {
            return Ok(false);
        };
        let entries = group::decode(&value)?;
        let (first, last) = (self.first, self.last);
        let in_range = entries
            .into_iter()
            .filter(|entry| (first..=last).contains(&entry.seq()));
        if self.newest_first {
            self.buffered.extend(in_range.rev());
        } else {
            self.buffered.extend(in_range);
        }
        Ok(true)
    }
}

impl Iterator for Entries {
    type Item = Result<Entry, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if let Some(entry) = self.buffered.pop_front() {
                return Some(Ok(entry));
            }
            match self.refill() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.done = true;
        None
    }
}
