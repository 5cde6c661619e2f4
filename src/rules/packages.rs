//! Prepaid resource packages (billing-rules §3): which packages serve a row, in which
//! order they are drawn down, monthly resets, lapse, amortized effective cost and the
//! usage alert.

use crate::decimal::{mul_div_round, products_le, Dec, Overflow, Qty};
use crate::model::{Package, PoolType, ResetPeriod};
use crate::time::{Micros, Period};

/// A package's quota for one reset period: `package_count × hours_per_package`.
pub fn quota(p: &Package) -> Option<Qty> {
    Qty::from_dec(p.hours_per_package)?.times_int(p.package_count as i64)
}

/// Number of calendar months that intersect `[from, to)` (partial months count).
pub fn months_in_force(from: Micros, to: Micros) -> i64 {
    let (Some(a), Some(b)) = (Period::containing(from), Period::containing(to - 1)) else { return 1 };
    ((b.year - a.year) as i64 * 12 + b.month as i64 - a.month as i64 + 1).max(1)
}

/// The quota spread by amortization: one quota, or one per month in force.
pub fn total_quota(p: &Package) -> Option<Qty> {
    let q = quota(p)?;
    match p.reset_period {
        ResetPeriod::None => Some(q),
        ResetPeriod::Month => q.times_int(months_in_force(p.effective_from, p.expires_at)),
    }
}

/// `price / total_quota × covered`, rounded half away from zero to 8 places.
pub fn amortized(p: &Package, covered: Qty) -> Result<Dec, Overflow> {
    const FIGURE: Overflow = Overflow { figure: "package's amortized cost" };
    let total = total_quota(p).ok_or(FIGURE)?;
    let cents8 = mul_div_round(p.price.0, covered.0, total.0.checked_mul(100).ok_or(FIGURE)?).ok_or(FIGURE)?;
    cents8.checked_mul(100).and_then(Dec::within).ok_or(FIGURE)
}

/// `remaining ≤ pct% × quota`, exactly.
pub fn at_or_below_pct(remaining: Qty, quota: Qty, pct: Dec) -> bool {
    // remaining × 100 × 1e10 ≤ pct.0 × quota
    products_le((remaining.0, 100 * 10_000_000_000), (pct.0, quota.0))
}

pub fn in_force(p: &Package, t: Micros) -> bool {
    p.effective_from <= t && t < p.expires_at
}

pub fn intersects(p: &Package, period: Period) -> bool {
    p.effective_from < period.end() && period.start() < p.expires_at
}

/// The state of one package within a billing period.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageState {
    /// Index into the run's package list.
    pub idx: u32,
    pub quota: Qty,
    pub opening: Qty,
    pub remaining: Qty,
    pub used: Qty,
    pub alerted: bool,
}

/// One draw on a package for part of a row.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Draw {
    pub package: u32,
    pub quantity: Qty,
    /// The package's remaining quota (this reset period) after the draw.
    pub remaining_after: Qty,
    /// How many packages could serve the row when it was deducted.
    pub applicable: u32,
    /// The remaining quota after the draw, when this draw crossed the alert threshold.
    pub alert: Option<Qty>,
}

/// The packages of one account, in deduction order.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PackageBook {
    pub states: Vec<PackageState>,
}

impl PackageBook {
    /// Opens the account's packages for `period`. `carried` gives the closing quota
    /// and alert flag of the previous period, where one was closed.
    pub fn open(packages: &[Package], mine: &[u32], period: Period, carried: &dyn Fn(u32) -> Option<(Qty, bool)>) -> PackageBook {
        let mut states: Vec<PackageState> = Vec::new();
        for &i in mine {
            let p = &packages[i as usize];
            if !intersects(p, period) {
                continue;
            }
            let Some(q) = quota(p) else { continue };
            let prev = carried(i);
            let opening = match (p.reset_period, prev) {
                (ResetPeriod::Month, _) => q,
                (ResetPeriod::None, Some((rem, _))) => rem,
                (ResetPeriod::None, None) => q,
            };
            let alerted = prev.map(|(_, a)| a).unwrap_or(false);
            states.push(PackageState { idx: i, quota: q, opening, remaining: opening, used: Qty::ZERO, alerted });
        }
        // Earliest expiry first, then earlier purchase, then smaller id.
        states.sort_by(|a, b| {
            let (pa, pb) = (&packages[a.idx as usize], &packages[b.idx as usize]);
            (pa.expires_at, pa.purchased_at, &pa.package_id).cmp(&(pb.expires_at, pb.purchased_at, &pb.package_id))
        });
        PackageBook { states }
    }

    /// Plans the draws for up to `q` of a row of `(region, sku, pool_type)` starting at
    /// `t`, without changing any quota: a row that is then rejected consumes nothing.
    pub fn plan(&self, packages: &[Package], region: &str, sku: &str, pool_type: PoolType, t: Micros, q: Qty) -> Result<Vec<Draw>, Overflow> {
        let mut left = q;
        let mut draws = Vec::new();
        if pool_type != PoolType::Public || left.is_zero() {
            return Ok(draws);
        }
        let mut applicable = 0u32;
        for s in &self.states {
            let p = &packages[s.idx as usize];
            if s.remaining.is_zero() || p.sku != sku || p.region != region || !in_force(p, t) {
                continue;
            }
            applicable += 1;
            if left.is_zero() {
                continue;
            }
            let take = left.min(s.remaining);
            left = left.minus(take, "quantity left to cover")?;
            draws.push(Draw { package: s.idx, quantity: take, remaining_after: s.remaining.minus(take, "package quota")?, applicable: 0, alert: None });
        }
        for d in &mut draws {
            d.applicable = applicable;
        }
        Ok(draws)
    }

    /// Applies planned draws; each draw that takes its package's remaining quota to or
    /// below the alert threshold for the first time in the package's life says so.
    pub fn commit(&mut self, packages: &[Package], plan: &[Draw]) -> Result<Vec<Draw>, Overflow> {
        let mut out = Vec::with_capacity(plan.len());
        for d in plan {
            let Some(s) = self.states.iter_mut().find(|s| s.idx == d.package) else { continue };
            let p = &packages[s.idx as usize];
            s.remaining = s.remaining.minus(d.quantity, "package quota")?;
            s.used = s.used.plus(d.quantity, "package quota used")?;
            let mut alert = None;
            if let Some(pct) = p.alert_threshold_pct {
                if !s.alerted && at_or_below_pct(s.remaining, s.quota, pct) {
                    s.alerted = true;
                    alert = Some(s.remaining);
                }
            }
            out.push(Draw { alert, ..*d });
        }
        Ok(out)
    }

    /// Plans and commits at once; returns the draws and the part no package covered.
    pub fn draw(&mut self, packages: &[Package], region: &str, sku: &str, pool_type: PoolType, t: Micros, q: Qty) -> Result<(Vec<Draw>, Qty), Overflow> {
        let plan = self.plan(packages, region, sku, pool_type, t, q)?;
        let mut covered = Qty::ZERO;
        for d in &plan {
            covered = covered.plus(d.quantity, "package-covered quantity")?;
        }
        Ok((self.commit(packages, &plan)?, q.minus(covered, "pay-per-use quantity")?))
    }
}

/// A package ledger's figures as the contract's decimals show them (10 places):
/// opening, lapsed and closing rounded, used the difference, so the table reads
/// `closing = opening − used − lapsed` exactly (billing-rules §10). Used quantities
/// of microsecond durations rarely terminate in 10 places: the shown `used` is then
/// within 2e-10 of the exact one. (The next period opens from the exact closing,
/// which it shows rounded the same way.)
pub fn ledger_shown(opening: Qty, lapsed: Qty, closing: Qty) -> Result<[Dec; 4], Overflow> {
    let (opening, lapsed, closing) = (opening.to_dec(), lapsed.to_dec(), closing.to_dec());
    let used = opening.minus(lapsed, "package quota used")?.minus(closing, "package quota used")?;
    Ok([opening, used, lapsed, closing])
}

/// What a package's quota does at the end of a period: it lapses at a monthly reset
/// or at an expiry within the period; otherwise it carries over.
pub fn lapses_at_close(p: &Package, period: Period) -> bool {
    match p.reset_period {
        ResetPeriod::Month => true,
        ResetPeriod::None => p.expires_at <= period.end(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_hour;

    fn pkg(id: &str, expires: &str, purchased: &str, hours: &str) -> Package {
        Package {
            package_id: id.into(),
            account_id: "a".into(),
            region: "r".into(),
            sku: "s".into(),
            package_count: 1,
            hours_per_package: Dec::parse(hours).unwrap(),
            price: Dec::parse("100").unwrap(),
            purchased_at: parse_hour(purchased).unwrap(),
            effective_from: parse_hour("2024-01-01T00").unwrap(),
            expires_at: parse_hour(expires).unwrap(),
            reset_period: ResetPeriod::None,
            alert_threshold_pct: None,
        }
    }

    fn q(s: &str) -> Qty {
        Qty::from_dec(Dec::parse(s).unwrap()).unwrap()
    }

    #[test]
    fn earliest_expiry_then_purchase_then_id_is_drawn_first() {
        let ps = vec![
            pkg("c", "2024-03-01T00", "2023-12-01T00", "1"),
            pkg("b", "2024-02-01T00", "2023-12-02T00", "1"),
            pkg("a", "2024-02-01T00", "2023-12-02T00", "1"),
            pkg("z", "2024-02-01T00", "2023-11-01T00", "1"),
        ];
        let period = Period::parse("2024-01").unwrap();
        let mut book = PackageBook::open(&ps, &[0, 1, 2, 3], period, &|_| None);
        let order: Vec<&str> = book.states.iter().map(|s| ps[s.idx as usize].package_id.as_str()).collect();
        assert_eq!(order, vec!["z", "a", "b", "c"]);
        let t = parse_hour("2024-01-05T00").unwrap();
        let (draws, left) = book.draw(&ps, "r", "s", PoolType::Public, t, q("2.5")).unwrap();
        assert_eq!(draws.iter().map(|d| d.package).collect::<Vec<_>>(), vec![3, 2, 1]);
        assert_eq!(draws[2].quantity, q("0.5"));
        assert!(left.is_zero());
    }

    #[test]
    fn packages_serve_public_pools_of_their_region_and_sku_only() {
        let ps = vec![pkg("a", "2024-02-01T00", "2023-12-01T00", "1")];
        let period = Period::parse("2024-01").unwrap();
        let mut book = PackageBook::open(&ps, &[0], period, &|_| None);
        let t = parse_hour("2024-01-05T00").unwrap();
        assert_eq!(book.draw(&ps, "r", "s", PoolType::Dedicated, t, q("1")).unwrap().1, q("1"));
        assert_eq!(book.draw(&ps, "other", "s", PoolType::Public, t, q("1")).unwrap().1, q("1"));
        assert_eq!(book.draw(&ps, "r", "other", PoolType::Public, t, q("1")).unwrap().1, q("1"));
        assert_eq!(book.draw(&ps, "r", "s", PoolType::Public, t, q("3")).unwrap().1, q("2"));
    }

    #[test]
    fn a_monthly_package_amortizes_over_every_month_it_touches() {
        let mut p = pkg("a", "2024-03-15T00", "2023-12-01T00", "10");
        p.reset_period = ResetPeriod::Month;
        p.effective_from = parse_hour("2024-01-20T00").unwrap();
        assert_eq!(months_in_force(p.effective_from, p.expires_at), 3);
        assert_eq!(total_quota(&p), Some(q("30")));
        assert_eq!(amortized(&p, q("3")).unwrap(), Dec::parse("10").unwrap());
    }

    #[test]
    fn threshold_comparison_is_exact() {
        assert!(at_or_below_pct(q("2"), q("10"), Dec::parse("20").unwrap()));
        assert!(!at_or_below_pct(q("2.0000000001"), q("10"), Dec::parse("20").unwrap()));
    }
}
