//! The duplicate pass's hashes spilled to disk, so that a close's memory does not grow
//! with the month. The pass keeps a 64-bit hash of every row's record id with the row's
//! place (16 bytes a row: 1.5 GB at 94M rows); here each batch of files' hashes, grouped
//! by their top bits where they were read (`rules::dedup::Part`), is appended to one of
//! [`GROUPS`] files by bucket, and the repeated hashes are then found one group at a
//! time. Memory holds a batch of files' hashes while reading, and a group (1/64 of
//! the month's) while comparing.
//!
//! The files are nameless, in the spill directory (`[run] spill_dir`, else the
//! system's temporary directory): opened with O_TMPFILE where the system has it (else
//! removed as soon as created), so the system frees them when the pass ends, however
//! it ends — a killed close leaves nothing behind.

use crate::jobs::JobError;
use crate::rules::dedup::{self, FileRow, Part, BUCKETS};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Files the hashes are spilled to, each holding `BUCKETS / GROUPS` buckets.
const GROUPS: usize = 64;
/// Bytes of one spilled hash: the hash, the file, the row (little-endian).
const RECORD: usize = 16;

pub(crate) struct Spill {
    /// The spill directory, for errors: the files have no names there.
    dir: PathBuf,
    files: Vec<BufWriter<File>>,
}

impl Spill {
    /// A spill in `base`.
    pub fn new(base: &Path) -> Result<Spill, JobError> {
        let mut spill = Spill { dir: base.to_path_buf(), files: Vec::with_capacity(GROUPS) };
        for _ in 0..GROUPS {
            let file = tempfile::tempfile_in(base).map_err(|e| io_err(base, e))?;
            spill.files.push(BufWriter::with_capacity(64 << 10, file));
        }
        Ok(spill)
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
    pub fn suspects(self) -> Result<Vec<FileRow>, JobError> {
        use rayon::prelude::*;
        use std::os::unix::fs::FileExt;
        let dir = &self.dir;
        let files = self.files.into_iter().map(|w| w.into_inner().map_err(|e| io_err(dir, e.into_error()))).collect::<Result<Vec<File>, JobError>>()?;
        let found = files
            .into_par_iter()
            .with_max_len(1)
            .map(|file| {
                let size = file.metadata().map_err(|e| io_err(dir, e))?.len();
                let mut bytes = vec![0u8; size as usize];
                file.read_exact_at(&mut bytes, 0).map_err(|e| io_err(dir, e))?;
                drop(file);
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

fn io_err(dir: &Path, e: std::io::Error) -> JobError {
    JobError::Plan(format!("the duplicate pass's spill file in {}: {e} (set [run] spill_dir to a folder with room)", dir.display()))
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
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(dir.path()).unwrap();
        for chunk in rows.chunks(30_000) {
            seen.add(Part::new(chunk.to_vec()));
            spill.add(&Part::new(chunk.to_vec())).unwrap();
        }
        let want = seen.suspects();
        assert!(want.len() > 100, "{}", want.len());
        let spilled: u64 = spill.files.iter_mut().map(|w| w.flush().and_then(|()| w.get_ref().metadata()).unwrap().len()).sum();
        assert_eq!(spilled, 200_000 * RECORD as u64);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing named in the spill directory");
        assert_eq!(spill.suspects().unwrap(), want);
    }
}
