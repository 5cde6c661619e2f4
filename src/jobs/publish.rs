//! Publishing a period's tables: all of them, or none.
//!
//! Object stores have no rename and no multi-object transaction, but completing a
//! multipart upload makes one object appear whole, atomically. So every table is first
//! written and sealed (all parts uploaded, nothing visible), the current version of
//! each table is set aside by a server-side copy, and only then are the uploads
//! completed, one after the other. If any completion (or the manifest) fails, the
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
    let mut done: Vec<usize> = Vec::new();
    let mut written = Vec::with_capacity(sealed.len());
    let mut failure: Option<JobError> = None;
    for (i, (w, s)) in sealed.into_iter().enumerate() {
        if failure.is_some() {
            drop(s); // aborts the upload
            continue;
        }
        match s.complete() {
            Ok(()) => {
                done.push(i);
                written.push(w);
            }
            Err(e) => failure = Some(e.into()),
        }
    }
    if failure.is_none() {
        if let Err(e) = lake.put(&manifest.0, manifest.1.into()) {
            failure = Some(e.into());
        }
    }
    match failure {
        None => {
            for (w, had) in written.iter().zip(&had_previous) {
                if *had {
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
                Err(JobError::Plan(format!(
                    "{e}; restoring the previous outputs also failed ({}): re-run the period",
                    restore_errors.join("; ")
                )))
            }
        }
    }
}
