//! The duplicate pass's hashes spilled to disk, so that a close's memory does not grow
//! with the month. The pass keeps a 64-bit hash of every row's record id with the row's
//! place (16 bytes a row: 1.5 GB at 94M rows); here each batch of files' hashes, grouped
//! by their top bits where they were read (`rules::dedup::Part`), is appended to one of
//! [`GROUPS`] files by bucket, and the repeated hashes are then found one group at a
//! time. Memory holds a batch of files' hashes while reading, and a group (1/64 of
//! the month's) while comparing.
//!
//! The files live in a folder of their own under the spill directory (`[run]
//! spill_dir`, else the system's temporary directory), removed when the pass ends,
//! however it ends.

use crate::jobs::JobError;
use crate::rules::dedup::{self, FileRow, Part, BUCKETS};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Files the hashes are spilled to, each holding `BUCKETS / GROUPS` buckets.
const GROUPS: usize = 64;
/// Bytes of one spilled hash: the hash, the file, the row (little-endian).
const RECORD: usize = 16;

pub(crate) struct Spill {
    dir: PathBuf,
    files: Vec<BufWriter<File>>,
}

impl Spill {
    /// A spill in a new folder under `base`.
    pub fn new(base: &Path) -> Result<Spill, JobError> {
        let dir = fresh_dir(base, "billrun-duplicates").map_err(|e| io_err(base, e))?;
        let mut spill = Spill { dir, files: Vec::with_capacity(GROUPS) };
        for g in 0..GROUPS {
            let path = spill.path(g);
            spill.files.push(BufWriter::with_capacity(64 << 10, File::create(&path).map_err(|e| io_err(&path, e))?));
        }
        Ok(spill)
    }

    fn path(&self, group: usize) -> PathBuf {
        self.dir.join(format!("group-{group:02}.bin"))
    }

    /// Appends a batch's hashes, bucket by bucket, to their groups' files.
    pub fn add(&mut self, part: &Part) -> Result<(), JobError> {
        for b in 0..BUCKETS {
            let g = b / (BUCKETS / GROUPS);
            let w = &mut self.files[g];
            for (hash, (file, row)) in part.bucket(b) {
                let mut rec = [0u8; RECORD];
                rec[..8].copy_from_slice(&hash.to_le_bytes());
                rec[8..12].copy_from_slice(&file.to_le_bytes());
                rec[12..].copy_from_slice(&row.to_le_bytes());
                w.write_all(&rec).map_err(|e| io_err(&self.dir, e))?;
            }
        }
        Ok(())
    }

    /// The rows whose hash appears more than once, in row order: each group's file
    /// read back and compared on its own (two at a time, on the thread pool).
    pub fn suspects(mut self) -> Result<Vec<FileRow>, JobError> {
        use rayon::prelude::*;
        for w in &mut self.files {
            w.flush().map_err(|e| io_err(&self.dir, e))?;
        }
        self.files.clear();
        let groups: Vec<PathBuf> = (0..GROUPS).map(|g| self.path(g)).collect();
        let found = groups
            .par_iter()
            .with_max_len(1)
            .map(|path| {
                let mut bytes = Vec::new();
                File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| io_err(path, e))?;
                std::fs::remove_file(path).map_err(|e| io_err(path, e))?;
                let mut items: Vec<(u64, FileRow)> = bytes
                    .chunks_exact(RECORD)
                    .map(|r| {
                        let n = |a: usize, b: usize| r[a..b].iter().rev().fold(0u64, |acc, &x| acc << 8 | x as u64);
                        (n(0, 8), (n(8, 12) as u32, n(12, 16) as u32))
                    })
                    .collect();
                drop(bytes);
                Ok(dedup::repeated(&mut items))
            })
            .collect::<Result<Vec<Vec<FileRow>>, JobError>>()?;
        let mut out: Vec<FileRow> = found.into_iter().flatten().collect();
        out.sort_unstable();
        Ok(out)
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        self.files.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new, empty folder under `base` for one spill. A folder left by a run that was
/// killed (whose process id may be this one's) is never reused.
pub(crate) fn fresh_dir(base: &Path, stem: &str) -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let dir = base.join(format!("{stem}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn io_err(path: &Path, e: std::io::Error) -> JobError {
    JobError::Plan(format!("the duplicate pass's spill file {}: {e} (set [run] spill_dir to a folder with room)", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spilled pass finds the repeated hashes a pass in memory finds.
    #[test]
    fn spilled_suspects_are_those_in_memory() {
        let mut rng = crate::generate::rng::Rng::new(7);
        // Hashes drawn from 150,000 values, spread over every bucket: many repeat.
        let rows: Vec<(u64, FileRow)> = (0..200_000u32).map(|i| (rng.below(150_000).wrapping_mul(0x9E37_79B9_7F4A_7C15), (i / 1000, i % 1000))).collect();
        let mut seen = dedup::Seen::default();
        let dir = std::env::temp_dir();
        let mut spill = Spill::new(&dir).unwrap();
        for chunk in rows.chunks(30_000) {
            seen.add(Part::new(chunk.to_vec()));
            spill.add(&Part::new(chunk.to_vec())).unwrap();
        }
        let spilled_dir = spill.dir.clone();
        let want = seen.suspects();
        assert!(want.len() > 100, "{}", want.len());
        assert_eq!(spill.suspects().unwrap(), want);
        assert!(!spilled_dir.exists(), "the spill's folder is removed");
    }

    /// A folder left by an earlier run under the same name is not reused.
    #[test]
    fn a_spill_never_reuses_a_folder_left_behind() {
        let base = std::env::temp_dir();
        let first = fresh_dir(&base, "billrun-spill-test").unwrap();
        std::fs::write(first.join("left"), b"x").unwrap();
        let second = fresh_dir(&base, "billrun-spill-test").unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read_dir(&second).unwrap().count(), 0);
        std::fs::remove_dir_all(first).unwrap();
        std::fs::remove_dir_all(second).unwrap();
    }
}
