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

/// The period's record-id hashes, kept batch by batch: each file's grouped by
/// their top bits where it was read (a counting sort of a few MB, in cache, on the
/// worker that decoded the file), then a batch's files gathered bucket by bucket into
/// one allocation (at scale, large enough to be returned to the system when freed,
/// rather than held by the allocator through the rating). The repeated hashes are then found
/// bucket by bucket: a bucket's hashes gathered from every batch, sorted in cache and
/// walked. Nothing is appended to period-wide tables as the files come, so no table
/// grows and moves, and no step waits on one thread.
#[derive(Default)]
pub struct Seen {
    parts: Vec<Part>,
    /// Hashes pushed one at a time, grouped when the suspects are asked for.
    loose: Vec<(u64, FileRow)>,
}

const BUCKET_BITS: u32 = 10;
/// Buckets of the hashes, by their top bits.
pub const BUCKETS: usize = 1 << BUCKET_BITS;

fn bucket(hash: u64) -> usize {
    (hash >> (64 - BUCKET_BITS)) as usize
}

/// Hashes grouped by bucket: bucket `b`'s are `items[starts[b]..starts[b + 1]]`.
pub struct Part {
    items: Vec<(u64, FileRow)>,
    starts: Vec<usize>,
}

impl Part {
    pub fn new(items: Vec<(u64, FileRow)>) -> Part {
        let mut starts = vec![0usize; BUCKETS + 1];
        for (h, _) in &items {
            starts[bucket(*h) + 1] += 1;
        }
        for b in 0..BUCKETS {
            starts[b + 1] += starts[b];
        }
        let mut next = starts.clone();
        let mut grouped = vec![(0u64, (0u32, 0u32)); items.len()];
        for x in items {
            let at = &mut next[bucket(x.0)];
            grouped[*at] = x;
            *at += 1;
        }
        Part { items: grouped, starts }
    }

    /// Several parts as one, gathered bucket by bucket (in parallel).
    pub fn merge(parts: Vec<Part>) -> Part {
        use rayon::prelude::*;
        let mut starts = vec![0usize; BUCKETS + 1];
        for b in 0..BUCKETS {
            starts[b + 1] = starts[b] + parts.iter().map(|p| p.bucket(b).len()).sum::<usize>();
        }
        let mut items = vec![(0u64, (0u32, 0u32)); starts[BUCKETS]];
        let mut slices: Vec<&mut [(u64, FileRow)]> = Vec::with_capacity(BUCKETS);
        let mut rest = items.as_mut_slice();
        for b in 0..BUCKETS {
            let (head, tail) = rest.split_at_mut(starts[b + 1] - starts[b]);
            slices.push(head);
            rest = tail;
        }
        slices.into_par_iter().enumerate().for_each(|(b, into)| {
            let mut at = 0;
            for p in &parts {
                let from = p.bucket(b);
                into[at..at + from.len()].copy_from_slice(from);
                at += from.len();
            }
        });
        Part { items, starts }
    }

    /// Bucket `b`'s hashes.
    pub fn bucket(&self, b: usize) -> &[(u64, FileRow)] {
        &self.items[self.starts[b]..self.starts[b + 1]]
    }
}

impl Seen {
    pub fn push(&mut self, hash: u64, at: FileRow) {
        self.loose.push((hash, at));
    }

    /// Hashes already grouped: a file's ([`Part::new`]) or a batch's ([`Part::merge`]).
    pub fn add(&mut self, part: Part) {
        self.parts.push(part);
    }

    /// The rows whose record-id hash appears more than once: candidates for
    /// comparison, in row order.
    pub fn suspects(mut self) -> Vec<FileRow> {
        use rayon::prelude::*;
        if !self.loose.is_empty() {
            self.parts.push(Part::new(std::mem::take(&mut self.loose)));
        }
        let parts = &self.parts;
        let mut out: Vec<FileRow> = (0..BUCKETS)
            .into_par_iter()
            .map_init(Vec::new, |b_items: &mut Vec<(u64, FileRow)>, b| {
                b_items.clear();
                for p in parts {
                    b_items.extend_from_slice(p.bucket(b));
                }
                repeated(b_items)
            })
            .flatten_iter()
            .collect();
        out.sort_unstable();
        out
    }
}

/// The rows of `items` whose hash appears more than once there (`items` is sorted).
pub fn repeated(items: &mut [(u64, FileRow)]) -> Vec<FileRow> {
    items.sort_unstable_by_key(|x| x.0);
    items.chunk_by(|x, y| x.0 == y.0).filter(|g| g.len() > 1).flatten().map(|(_, fr)| *fr).collect()
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
                Rejection::new(Reason::ConflictingDuplicate, format!("record '{id}' appears {n} times with different content; no copy is rated"))
            };
            out.insert(fr, why);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The suspects of rows seen as a close sees them: a file's hashes grouped as a
    /// part where the file was read (file 1), parts merged (files 2 and 3), or pushed
    /// one at a time (file 0).
    fn suspects(seen: Vec<(u64, FileRow)>) -> Vec<FileRow> {
        let mut s = Seen::default();
        let part = |f: u32| Part::new(seen.iter().copied().filter(|x| x.1 .0 == f).collect());
        s.add(part(1));
        s.add(Part::merge(vec![part(2), part(3)]));
        for &(h, at) in seen.iter().filter(|x| x.1 .0 == 0) {
            s.push(h, at);
        }
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
            seen in proptest::collection::vec(((0u64..4, 0u64..6), (0u32..4, 0u32..50)), 0..300)
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
