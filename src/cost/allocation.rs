//! Cost allocation (billing-rules §8): every unit of a period's effective cost goes to
//! exactly one resource, enterprise project and tag set, by one of these methods. The
//! exact split of a pool's cost among its jobs is a billing rule:
//! `rules/allocation.rs`.

/// How an amount was allocated (FOCUS 1.3 `AllocatedMethodId`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// The line's own resource.
    Direct,
    /// A job's share of its dedicated pool's hour, by node-seconds.
    PoolNodeSeconds,
    /// The part of a pool's hour that no job used.
    PoolIdle,
    /// The hour's truncation of the settlement, kept at the account.
    SettlementTruncation,
}

impl Method {
    pub fn id(self) -> &'static str {
        match self {
            Method::Direct => "direct",
            Method::PoolNodeSeconds => "pool-node-seconds",
            Method::PoolIdle => "pool-idle",
            Method::SettlementTruncation => "settlement-truncation",
        }
    }
    pub fn details(self) -> &'static str {
        match self {
            Method::Direct => "the cost of the resource's own usage",
            Method::PoolNodeSeconds => "the pool's cost in the hour, split among the jobs on it in proportion to nodes × unit_count × seconds",
            Method::PoolIdle => "the part of the pool's cost in the hour that no job used",
            Method::SettlementTruncation => "the cut-off part of the hourly settlement, never billed",
        }
    }
}

pub use crate::rules::allocation::split;
