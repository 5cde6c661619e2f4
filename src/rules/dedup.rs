//! Duplicate records (billing-rules §9, §10): the same `record_id` twice with the same
//! content is rated once and the repeats are rejected `duplicate`; with different
//! content, every copy is rejected `conflicting_duplicate`. The copy rated is the
//! first by file path, then row.
//!
//! A conflicting copy may sit in a later hour than the first one, so the verdicts are
//! decided for the whole period before any hour is rated. The month-wide pass keeps
//! only a 64-bit hash per row; the rare rows whose hash repeats are then compared by
//! their full content.

use super::checks::Rejection;
use crate::model::Reason;
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};

/// A row of the period: `(file index, row in file)`. Files are indexed in path order.
pub type FileRow = (u32, u32);

pub fn id_hash(record_id: &str) -> u64 {
    let mut h = FxHasher::default();
    record_id.hash(&mut h);
    h.finish()
}

/// The period's record-id hashes, spread by their top bits over buckets as they come:
/// each bucket is then sorted on its own (a few MB, in cache, in parallel) rather than
/// the month's hashes sorted as one array.
pub struct Seen {
    buckets: Vec<Vec<(u64, FileRow)>>,
}

const BUCKET_BITS: u32 = 10;

impl Default for Seen {
    fn default() -> Self {
        Seen { buckets: (0..1usize << BUCKET_BITS).map(|_| Vec::new()).collect() }
    }
}

impl Seen {
    pub fn push(&mut self, hash: u64, at: FileRow) {
        self.buckets[(hash >> (64 - BUCKET_BITS)) as usize].push((hash, at));
    }

    pub fn extend(&mut self, items: impl IntoIterator<Item = (u64, FileRow)>) {
        for (h, at) in items {
            self.push(h, at);
        }
    }

    /// The rows whose record-id hash appears more than once: candidates for
    /// comparison, in row order.
    pub fn suspects(self) -> Vec<FileRow> {
        use rayon::prelude::*;
        let mut out: Vec<FileRow> = self
            .buckets
            .into_par_iter()
            .flat_map_iter(|mut b| {
                b.sort_unstable();
                let repeated: Vec<FileRow> = b.chunk_by(|x, y| x.0 == y.0).filter(|g| g.len() > 1).flatten().map(|(_, fr)| *fr).collect();
                repeated
            })
            .collect();
        out.sort_unstable();
        out
    }
}

/// Decides the verdicts for the suspect rows, given each one's `record_id` and its
/// content (any canonical encoding of the input columns). Returns the rejected copies.
pub fn verdicts(rows: Vec<(FileRow, String, String)>) -> FxHashMap<FileRow, Rejection> {
    let mut groups: FxHashMap<String, Vec<(FileRow, String)>> = FxHashMap::default();
    for (fr, id, content) in rows {
        groups.entry(id).or_default().push((fr, content));
    }
    let mut out = FxHashMap::default();
    for (id, mut copies) in groups {
        if copies.len() < 2 {
            continue;
        }
        copies.sort_by_key(|(fr, _)| *fr);
        let same = copies.iter().all(|(_, c)| *c == copies[0].1);
        let n = copies.len();
        for (k, (fr, _)) in copies.into_iter().enumerate() {
            if same && k == 0 {
                continue;
            }
            let why = if same {
                Rejection::new(Reason::Duplicate, format!("repeat of record '{id}' ({n} identical copies, the first is rated)"))
            } else {
                Rejection::new(
                    Reason::ConflictingDuplicate,
                    format!("record '{id}' appears {n} times with different content; no copy is rated"),
                )
            };
            out.insert(fr, why);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suspects(seen: Vec<(u64, FileRow)>) -> Vec<FileRow> {
        let mut s = Seen::default();
        s.extend(seen);
        s.suspects()
    }

    #[test]
    fn only_repeated_hashes_are_suspects() {
        let s = suspects(vec![(1, (0, 0)), (2, (0, 1)), (1, (1, 5))]);
        assert_eq!(s, vec![(0, 0), (1, 5)]);
    }

    proptest::proptest! {
        /// Bucketed, the suspects are those of one sorted array: hashes that differ
        /// only in their low bits, or only in their top bits, and repeats anywhere.
        #[test]
        fn bucketed_suspects_are_the_whole_arrays(
            seen in proptest::collection::vec(((0u64..4, 0u64..6), (0u32..3, 0u32..50)), 0..300)
        ) {
            let seen: Vec<(u64, FileRow)> = seen.into_iter().map(|((hi, lo), fr)| ((hi << 62) | (lo * 0x9e37), fr)).collect();
            let mut plain = seen.clone();
            plain.sort_unstable();
            let mut expected: Vec<FileRow> = Vec::new();
            for (k, x) in plain.iter().enumerate() {
                let same = |o: Option<&(u64, FileRow)>| o.is_some_and(|o| o.0 == x.0);
                if same(k.checked_sub(1).and_then(|p| plain.get(p))) || same(plain.get(k + 1)) {
                    expected.push(x.1);
                }
            }
            expected.sort_unstable();
            proptest::prop_assert_eq!(suspects(seen), expected);
        }
    }

    #[test]
    fn identical_copies_keep_the_first_and_conflicts_reject_all() {
        let v = verdicts(vec![
            ((1, 0), "a".into(), "x".into()),
            ((0, 3), "a".into(), "x".into()),
            ((0, 4), "b".into(), "x".into()),
            ((2, 0), "b".into(), "y".into()),
            ((3, 0), "c".into(), "z".into()),
        ]);
        assert_eq!(v.get(&(1, 0)).unwrap().reason, Reason::Duplicate);
        assert!(!v.contains_key(&(0, 3)));
        assert_eq!(v.get(&(0, 4)).unwrap().reason, Reason::ConflictingDuplicate);
        assert_eq!(v.get(&(2, 0)).unwrap().reason, Reason::ConflictingDuplicate);
        assert!(!v.contains_key(&(3, 0)));
    }
}
