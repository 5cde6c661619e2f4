//! The jobs a scheduler starts: closing a period, backfilling a range. Each turns a
//! validated description of the work into a run over the lakes and a report.

pub mod backfill;
pub mod close;
pub mod hourly;
pub mod lock;
pub mod publish;
pub mod restate;
pub mod shard;
pub mod what_if;

use crate::lake::inputs::InputError;
use crate::lake::store::LakeError;

/// Why a job could not run. Every variant maps to exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{0}")]
    Plan(String),
    /// A figure beyond the 38 digits of the contract's decimals.
    #[error(transparent)]
    Overflow(#[from] crate::engine::AccountOverflow),
    /// A total over accounts beyond the 38 digits of the contract's decimals.
    #[error("{0}; the run is refused")]
    Total(#[from] crate::decimal::Overflow),
    #[error("{0}")]
    Held(String),
    #[error("conservation check failed, nothing was published: {0} (this is likely a bug in billrun)")]
    Conservation(String),
    #[error("internal error: {0} (this is likely a bug in billrun)")]
    Bug(String),
}
