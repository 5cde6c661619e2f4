//! One run of a period at a time. A lock is an object created with put-if-absent
//! (atomic on S3 and on a local disk) that names its holder; it is removed when the
//! run ends, however it ends. A lock whose holder died without removing it — its
//! process is gone from this host, or the lock is older than the stale limit — is
//! taken over.

use super::JobError;
use crate::lake::store::{Lake, LakeError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Holder {
    run_id: String,
    pid: u32,
    host: String,
    /// Seconds since the Unix epoch.
    started_at: u64,
}

pub struct Lock {
    lake: Lake,
    rel: String,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn host() -> String {
    std::env::var("HOSTNAME").ok().or_else(|| std::fs::read_to_string("/etc/hostname").ok()).map(|h| h.trim().to_string()).unwrap_or_else(|| "unknown".into())
}

impl Lock {
    /// Takes the lock of `scope` (e.g. `billing_period=2026-01`), or says who holds it.
    pub fn acquire(lake: &Lake, scope: &str, run_id: &str, stale_after: Duration) -> Result<Lock, JobError> {
        let rel = format!("_locks/{scope}.json");
        let me = Holder { run_id: run_id.into(), pid: std::process::id(), host: host(), started_at: now() };
        let body = serde_json::to_vec(&me).map_err(|e| JobError::Bug(format!("lock {rel}: {e}")))?;
        for attempt in 0..2 {
            match lake.put_if_absent(&rel, body.clone().into()) {
                Ok(()) => return Ok(Lock { lake: lake.clone(), rel }),
                Err(LakeError::AlreadyExists { .. }) => {
                    let held: Option<Holder> = lake.get_opt(&rel)?.and_then(|b| serde_json::from_slice(&b).ok());
                    let age = held.as_ref().map(|h| now().saturating_sub(h.started_at)).unwrap_or(u64::MAX);
                    // A holder on this host whose process is gone died without unlocking.
                    let dead = held.as_ref().is_some_and(|h| {
                        h.host == me.host
                            && h.pid != me.pid
                            && std::path::Path::new("/proc/self").exists()
                            && !std::path::Path::new(&format!("/proc/{}", h.pid)).exists()
                    });
                    if attempt == 0 && (dead || age > stale_after.as_secs()) {
                        tracing::warn!(lock = %rel, age_secs = age, "taking over a stale lock");
                        lake.delete(&rel)?;
                        continue;
                    }
                    let who = match held {
                        Some(h) => format!("run {} (pid {} on {}, for {} s)", h.run_id, h.pid, h.host, age),
                        None => "a run whose lock cannot be read".into(),
                    };
                    return Err(JobError::Held(format!(
                        "{scope} is held by {who}: lock {}/{rel}. If that run is gone, delete the lock or wait for it to go stale after {} s",
                        lake.url(),
                        stale_after.as_secs()
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobError::Held(format!("{scope}: could not take over its stale lock {rel}")))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.lake.delete(&self.rel);
    }
}
