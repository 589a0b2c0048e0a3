//! An invocation's stored journal: appended to by every checkpoint and commit, read whole by
//! claims and reads.

use wf_core::JournalEntry;

/// The entries of one invocation's journal, in order, kept as the lists its appends brought:
/// an append moves its list in (or into the room left at the end of the last one), so a
/// journal never regrows and copies what it holds (a workflow's first checkpoint brings most
/// of its journal; each later one appended a couple of entries and regrew it all).
#[derive(Debug, Default)]
#[cfg_attr(test, derive(Clone))]
pub(super) struct Journal {
    parts: Vec<Vec<JournalEntry>>,
    len: usize,
}

impl Journal {
    /// Appends `entries`.
    pub(super) fn append(&mut self, mut entries: Vec<JournalEntry>) {
        if entries.is_empty() {
            return;
        }
        self.len += entries.len();
        match self.parts.last_mut() {
            Some(last) if last.capacity() - last.len() >= entries.len() => {
                last.append(&mut entries);
            }
            _ => self.parts.push(entries),
        }
    }

    /// How many entries it holds.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Its entries, in order, as one list.
    pub(super) fn to_vec(&self) -> Vec<JournalEntry> {
        let mut all = Vec::with_capacity(self.len);
        for part in &self.parts {
            all.extend_from_slice(part);
        }
        all
    }

    /// Keeps the first `len` entries (an undone append).
    pub(super) fn truncate(&mut self, len: usize) {
        while self.len > len {
            let Some(last) = self.parts.last_mut() else {
                break;
            };
            let drop = (self.len - len).min(last.len());
            last.truncate(last.len() - drop);
            self.len -= drop;
            if last.is_empty() {
                self.parts.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wf_core::Op;

    fn entries(seqs: std::ops::Range<u32>) -> Vec<JournalEntry> {
        seqs.map(|seq| JournalEntry {
            seq,
            op: Op::Random(u64::from(seq)),
        })
        .collect()
    }

    #[test]
    fn appends_read_back_in_order_and_truncate_across_parts() {
        let mut j = Journal::default();
        j.append(entries(0..3));
        j.append(Vec::new());
        let mut roomy = Vec::with_capacity(10);
        roomy.extend(entries(3..5));
        j.append(roomy);
        // Fits in the room the last list left: moved into it, not kept apart.
        j.append(entries(5..8));
        j.append(entries(8..9));
        assert_eq!(j.len(), 9);
        assert_eq!(j.to_vec(), entries(0..9));
        j.truncate(4);
        assert_eq!((j.len(), j.to_vec()), (4, entries(0..4)));
        j.truncate(3);
        assert_eq!((j.len(), j.to_vec()), (3, entries(0..3)));
        j.append(entries(3..4));
        assert_eq!(j.to_vec(), entries(0..4));
        j.truncate(0);
        assert_eq!((j.len(), j.to_vec()), (0, Vec::new()));
    }
}
