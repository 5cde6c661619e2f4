//! The exact split of a dedicated pool's cost (billing-rules §8): a pool's cost in an
//! hour is split among the jobs that ran on it in proportion to their
//! `nodes × unit_count × duration_s`, what no job used staying with the pool as idle.
//! Shares are rounded down to 1e-8 and the remainder goes to the largest share, so the
//! allocations of a period add up to its total effective cost to the last digit.

use crate::decimal::{mul_div_trunc, Dec, Overflow};

/// Splits `amount` (a multiple of 1e-8) among `weights` in proportion, exactly: each
/// share is rounded down to 1e-8 (toward zero) and the remainder goes to the largest
/// share (the first of equal ones). Weights must be non-negative; with no positive
/// weight every share is 0.
pub fn split(amount: Dec, weights: &[i128]) -> Result<Vec<Dec>, Overflow> {
    const FIGURE: Overflow = Overflow { figure: "pool cost split" };
    let total = weights.iter().try_fold(0i128, |a, &w| a.checked_add(w)).ok_or(FIGURE)?;
    if weights.is_empty() || total <= 0 {
        return Ok(weights.iter().map(|_| Dec::ZERO).collect());
    }
    let units = amount.0 / 100; // 1e-8 units
    let mut shares: Vec<i128> = weights.iter().map(|&w| mul_div_trunc(units, w, total).ok_or(FIGURE)).collect::<Result<_, _>>()?;
    let given = shares.iter().try_fold(0i128, |a, &s| a.checked_add(s)).ok_or(FIGURE)?;
    let rest = units.checked_sub(given).ok_or(FIGURE)?;
    if rest != 0 {
        let mut best = 0;
        for (i, &w) in weights.iter().enumerate() {
            if w > weights[best] {
                best = i;
            }
        }
        shares[best] = shares[best].checked_add(rest).ok_or(FIGURE)?;
    }
    shares.into_iter().map(|s| s.checked_mul(100).and_then(Dec::within).ok_or(FIGURE)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn shares_add_up_and_the_remainder_goes_to_the_largest() {
        let s = split(d("1.00000000"), &[1, 1, 1]).unwrap();
        assert_eq!(s, vec![d("0.33333334"), d("0.33333333"), d("0.33333333")]);
        let s = split(d("1.00000000"), &[1, 2]).unwrap();
        assert_eq!(s, vec![d("0.33333333"), d("0.66666667")]);
        let s = split(d("-0.00000005"), &[1, 1]).unwrap();
        assert_eq!(s.iter().try_fold(Dec::ZERO, |a, b| a.checked_add(*b)).unwrap(), d("-0.00000005"));
        assert_eq!(split(d("5"), &[0, 0]).unwrap(), vec![Dec::ZERO, Dec::ZERO]);
    }

    /// Weights that cannot be summed refuse, never split as zero.
    #[test]
    fn weights_beyond_128_bits_refuse() {
        assert_eq!(split(d("1"), &[i128::MAX, 1]), Err(Overflow { figure: "pool cost split" }));
    }

    proptest! {
        /// Allocations add up: Σ shares = the amount, each share within 1e-8 of its
        /// exact proportion but the one that takes the remainder.
        #[test]
        fn shares_always_add_up(cents8 in -10_000_000_000i64..10_000_000_000, weights in prop::collection::vec(0..1_000_000_000_000i64, 1..8)) {
            let amount = Dec(i128::from(cents8) * 100);
            let w: Vec<i128> = weights.iter().map(|&x| i128::from(x)).collect();
            let s = split(amount, &w).unwrap();
            let sum = s.iter().try_fold(Dec::ZERO, |a, b| a.checked_add(*b)).unwrap();
            if w.iter().sum::<i128>() > 0 {
                prop_assert_eq!(sum, amount);
            } else {
                prop_assert_eq!(sum, Dec::ZERO);
            }
        }
    }
}
