//! Publishing a period's tables: all of them, or none.
//!
//! Object stores have no rename and no multi-object transaction, but completing a
//! multipart upload makes one object appear whole, atomically. So every table is first
//! written and sealed (all parts uploaded, nothing visible), the current version of
//! each table is set aside by a server-side copy, and only then are the uploads
//! completed, all at once. If any completion (or the manifest) fails, the
//! tables already replaced are restored from their copies and the new ones removed:
//! the previous complete outputs stay readable. A process killed inside that short
//! window leaves some tables of the new run and some of the old; the next run (same
//! inputs, same bytes) repairs it, and the manifest's checksums tell a reader which
//! run each table belongs to.

use super::JobError;
use crate::lake::outputs::Written;
use crate::lake::store::{Lake, Sealed};

fn backup_path(rel: &str) -> String {
    format!("_rollback/{rel}")
}

/// Completes every sealed upload and writes the manifest, or restores what was there.
pub fn publish(lake: &Lake, sealed: Vec<(Written, Sealed)>, manifest: (String, Vec<u8>)) -> Result<Vec<Written>, JobError> {
    // Set the current versions aside.
    let mut had_previous = Vec::with_capacity(sealed.len());
    for (w, _) in &sealed {
        let exists = lake.exists(&w.path)?;
        if exists {
            lake.copy(&w.path, &backup_path(&w.path))?;
        }
        had_previous.push(exists);
    }
    let (meta, uploads): (Vec<Written>, Vec<Sealed>) = sealed.into_iter().unzip();
    let mut done: Vec<usize> = Vec::new();
    let mut written = Vec::with_capacity(meta.len());
    let mut failure: Option<JobError> = None;
    for (i, (w, r)) in meta.into_iter().zip(lake.complete_all(uploads)).enumerate() {
        match r {
            Ok(()) => {
                done.push(i);
                written.push(w);
            }
            Err(e) => {
                if failure.is_none() {
                    failure = Some(e.into());
                }
            }
        }
    }
    if failure.is_none() {
        if let Err(e) = lake.put(&manifest.0, manifest.1.into()) {
            failure = Some(e.into());
        }
    }
    match failure {
        None => {
            for (&i, w) in done.iter().zip(&written) {
                if had_previous[i] {
                    let _ = lake.delete(&backup_path(&w.path));
                }
            }
            Ok(written)
        }
        Some(e) => {
            let mut restore_errors = Vec::new();
            for (k, &i) in done.iter().enumerate() {
                let rel = &written[k].path;
                let r = if had_previous[i] { lake.copy(&backup_path(rel), rel) } else { lake.delete(rel) };
                if let Err(re) = r {
                    restore_errors.push(format!("{rel}: {re}"));
                }
            }
            if restore_errors.is_empty() {
                Err(e)
            } else {
                Err(JobError::Plan(format!("{e}; restoring the previous outputs also failed ({}): re-run the period", restore_errors.join("; "))))
            }
        }
    }
}
