//! Cost allocation (billing-rules §8): every unit of a period's effective cost goes to
//! exactly one resource, enterprise project and tag set. A dedicated pool's cost in an
//! hour is split among the jobs that ran on it in proportion to their node-seconds;
//! what no job used stays with the pool as idle. Splits are exact: shares are rounded
//! down to 1e-8 and the remainder goes to the largest share, so the allocations of a
//! period add up to its total effective cost to the last digit.

use crate::decimal::Dec;
use arrow_buffer::i256;

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

/// Splits `amount` (a multiple of 1e-8) among `weights` in proportion, exactly: each
/// share is rounded down to 1e-8 and the remainder goes to the largest share (the first
/// of equal ones). Weights must be non-negative with a positive sum.
pub fn split(amount: Dec, weights: &[i128]) -> Vec<Dec> {
    let total: i128 = weights.iter().sum();
    if weights.is_empty() || total <= 0 {
        return weights.iter().map(|_| Dec::ZERO).collect();
    }
    let units = amount.0 / 100; // 1e-8 units
    let total256 = i256::from_i128(total);
    let mut shares: Vec<i128> = weights
        .iter()
        .map(|&w| {
            // units × w / total, truncated toward zero (exact through 256 bits).
            let p = i256::from_i128(units).wrapping_mul(i256::from_i128(w));
            p.checked_div(total256).and_then(|q| q.to_i128()).unwrap_or(0)
        })
        .collect();
    let given: i128 = shares.iter().sum();
    let rest = units - given;
    if rest != 0 {
        let mut best = 0;
        for (i, &w) in weights.iter().enumerate() {
            if w > weights[best] {
                best = i;
            }
        }
        shares[best] += rest;
    }
    shares.into_iter().map(|s| Dec(s * 100)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn shares_add_up_and_the_remainder_goes_to_the_largest() {
        let s = split(d("1.00000000"), &[1, 1, 1]);
        assert_eq!(s, vec![d("0.33333334"), d("0.33333333"), d("0.33333333")]);
        let s = split(d("1.00000000"), &[1, 2]);
        assert_eq!(s, vec![d("0.33333333"), d("0.66666667")]);
        let s = split(d("-0.00000005"), &[1, 1]);
        assert_eq!(s.iter().try_fold(Dec::ZERO, |a, b| a.checked_add(*b)).unwrap(), d("-0.00000005"));
        assert_eq!(split(d("5"), &[0, 0]), vec![Dec::ZERO, Dec::ZERO]);
    }
}
