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

/// The rows whose record-id hash appears more than once: candidates for comparison.
pub fn suspects(mut seen: Vec<(u64, FileRow)>) -> Vec<FileRow> {
    use rayon::slice::ParallelSliceMut;
    seen.par_sort_unstable();
    let mut out = Vec::new();
    let mut i = 0;
    while i < seen.len() {
        let mut j = i + 1;
        while j < seen.len() && seen[j].0 == seen[i].0 {
            j += 1;
        }
        if j - i > 1 {
            out.extend(seen[i..j].iter().map(|(_, fr)| *fr));
        }
        i = j;
    }
    out.sort_unstable();
    out
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

    #[test]
    fn only_repeated_hashes_are_suspects() {
        let s = suspects(vec![(1, (0, 0)), (2, (0, 1)), (1, (1, 5))]);
        assert_eq!(s, vec![(0, 0), (1, 5)]);
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
