//! Cost optimization (billing-rules §8): recommendations with the saving of each.
//!
//! Purchases are judged by re-rating, not by rule of thumb: for each account the best
//! candidate purchase — a monthly subscription for a pay-per-use pool or Lite resource
//! that ran at a fixed size, or packages for pay-per-use public compute — is added to
//! the inventory and the period is rated again for that account. The saving is the
//! difference of the two invoices' `total_due`, purchase included. The other kinds
//! (lapsing packages, idle notebooks paying for disks, accounts about to fall into
//! arrears) are estimates from the period's figures, with their evidence, computed by
//! Polars queries: the projection of each package's ledger row to its expiry, and the
//! sums over the cost book (an idle notebook's disk cost, an account's last week of
//! deductions).

use super::frame::{bools, dec_column, dec_sums, exact_sum, i128s, ints, polars_err, u32s};
use super::CostBook;
use crate::decimal::{mul_div_round, Dec, Overflow, Qty};
use crate::lake::inputs::InputError;
use crate::model::*;
use crate::rules::packages;
use crate::rules::pricing::Catalog;
use crate::time::{add_months, format_ts, Period, DAY};
use polars::prelude::*;
use rustc_hash::FxHashMap;

/// A package that can be bought (optional input `catalog/package_offers.parquet`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub sku: String,
    pub region: String,
    pub currency: String,
    pub hours_per_package: Dec,
    pub price: Dec,
    pub term_months: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Purchase {
    Subscription(Subscription),
    Package(Package),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    pub account: u32,
    pub id: String,
    pub kind: &'static str,
    pub resource: Option<String>,
    pub sku: Option<String>,
    pub region: Option<String>,
    pub action: String,
    pub saving: Dec,
    /// The saving was measured by re-rating the period with the purchase.
    pub verified: bool,
    pub current_cost: Option<Dec>,
    pub alternative_cost: Option<Dec>,
    pub evidence: String,
    pub purchase: Option<Purchase>,
}

/// The best candidate purchase of each account, by estimated saving (positive only).
pub fn purchase_candidates(
    book: &CostBook,
    accounts: &[Account],
    catalog: &Catalog,
    offers: &[Offer],
    period: Period,
) -> Result<Vec<Recommendation>, Overflow> {
    let mut best: FxHashMap<u32, Recommendation> = FxHashMap::default();
    let start = period.start();
    let mut consider = |r: Recommendation| {
        if r.saving <= Dec::ZERO {
            return;
        }
        match best.get(&r.account) {
            Some(b) if (b.saving, &b.id) >= (r.saving, &r.id) => {}
            _ => {
                best.insert(r.account, r);
            }
        }
    };
    let mut resources: Vec<_> = book.ppu_resources.iter().collect();
    resources.sort_by(|a, b| a.0.cmp(b.0));
    for ((acct, resource), r) in resources {
        let a = &accounts[*acct as usize];
        if r.min_size != r.max_size || r.hours * 10 < period.hours() * 9 {
            continue; // scaled, or not running most of the period: a subscription would refuse or idle
        }
        let Some(row) = catalog.term_price(&r.sku, &r.region, &a.currency, PricingUnit::NodeMonth, start) else { continue };
        let Some(price) = row.unit_price.0.checked_mul(r.min_size as i128).map(|v| Dec(v).round_dp(2)) else { continue };
        let sub = Subscription {
            subscription_id: format!("recommended-{resource}"),
            account_id: a.account_id.clone(),
            region: r.region.clone(),
            resource_id: resource.clone(),
            sku: r.sku.clone(),
            nodes: r.min_size.clamp(1, i32::MAX as i64) as i32,
            unit_count: 1,
            term_unit: TermUnit::Month,
            term_count: 1,
            ordered_at: start,
            start_at: start,
            end_at: add_months(start, 1).unwrap_or(start),
            renewal_of: None,
        };
        consider(Recommendation {
            account: *acct,
            id: format!("subscription:{resource}"),
            kind: "subscription",
            resource: Some(resource.clone()),
            sku: Some(r.sku.clone()),
            region: Some(r.region.clone()),
            action: format!("subscribe {resource} monthly ({} × {} at {} per node-month) instead of paying per use", r.min_size, r.sku, row.unit_price),
            saving: r.cost.minus(price, "estimated saving")?,
            verified: false,
            current_cost: Some(r.cost),
            alternative_cost: Some(price),
            evidence: format!("{} pay-per-use hours at a fixed size of {} cost {}", r.hours, r.min_size, r.cost),
            purchase: Some(Purchase::Subscription(sub)),
        });
    }
    let mut public: Vec<_> = book.ppu_public.iter().collect();
    public.sort_by(|a, b| a.0.cmp(b.0));
    for ((acct, sku, region), (qty, cost)) in public {
        let a = &accounts[*acct as usize];
        for o in offers.iter().filter(|o| &o.sku == sku && &o.region == region && o.currency == a.currency) {
            let Some(per) = Qty::from_dec(o.hours_per_package) else { continue };
            if per.is_zero() {
                continue;
            }
            let count = qty.0 / per.0;
            if count < 1 || count > i32::MAX as i128 {
                continue;
            }
            let price = o.price.0.checked_mul(count).and_then(Dec::within).ok_or(Overflow { figure: "package offer price" })?;
            let covered_cost =
                mul_div_round(cost.0, per.0 * count, qty.0).and_then(Dec::within).ok_or(Overflow { figure: "package-covered cost" })?.round_dp(2);
            let pkg = Package {
                package_id: format!("recommended-{sku}-{region}"),
                account_id: a.account_id.clone(),
                region: region.clone(),
                sku: sku.clone(),
                package_count: count as i32,
                hours_per_package: o.hours_per_package,
                price,
                purchased_at: start,
                effective_from: start,
                expires_at: add_months(start, o.term_months.max(1)).unwrap_or(start),
                reset_period: ResetPeriod::None,
                alert_threshold_pct: None,
            };
            consider(Recommendation {
                account: *acct,
                id: format!("package:{sku}:{region}"),
                kind: "package",
                resource: None,
                sku: Some(sku.clone()),
                region: Some(region.clone()),
                action: format!("buy {count} × {} node-hour packages of {sku} in {region} at {} each", o.hours_per_package, o.price),
                saving: covered_cost.minus(price, "estimated saving")?,
                verified: false,
                current_cost: Some(*cost),
                alternative_cost: Some(price),
                evidence: format!("{} node-hours of {sku} in {region} paid per use, {}", qty.to_dec(), cost),
                purchase: Some(Purchase::Package(pkg)),
            });
        }
    }
    let mut out: Vec<Recommendation> = best.into_values().collect();
    out.sort_by_key(|r| r.account);
    Ok(out)
}

/// Packages whose quota will lapse unused at the current burn rate: a Polars query
/// over the package ledger ([`lapse_projection`]); the saving is the quota's amortized
/// value, by the package rule.
pub fn lapsing_packages(ledger: &[crate::engine::LedgerRow], pkgs: &[Package], period: Period) -> Result<Vec<Recommendation>, InputError> {
    let mut out = Vec::new();
    for lapse in lapse_projection(ledger, pkgs, period)? {
        let l = &ledger[lapse.row as usize];
        let p = &pkgs[l.package as usize];
        out.push(Recommendation {
            account: l.account,
            id: format!("package_lapse:{}", p.package_id),
            kind: "package_lapse",
            resource: Some(p.package_id.clone()),
            sku: Some(p.sku.clone()),
            region: Some(p.region.clone()),
            action: format!("use {} node-hours of {} in {} before {}, or they lapse", lapse.at_risk.to_dec(), p.sku, p.region, format_ts(lapse.when)),
            saving: packages::amortized(p, lapse.at_risk)?,
            verified: false,
            current_cost: None,
            alternative_cost: None,
            evidence: format!(
                "{} used of {} this period ({} per day); {} left",
                l.used.to_dec(),
                l.opening.to_dec(),
                lapse.burn_per_day.to_dec(),
                l.closing.to_dec()
            ),
            purchase: None,
        });
    }
    Ok(out)
}

/// A ledger row whose quota is at risk of lapsing.
#[derive(Debug, PartialEq, Eq)]
struct Lapse {
    row: u32,
    burn_per_day: Qty,
    at_risk: Qty,
    when: i64,
}

const LAPSES: &str = "cost/recommendations (lapsing packages)";

/// The ledger rows at risk, in ledger order, from [`lapse_query`]; a figure that would
/// not fit refuses the run, as the engine's checked arithmetic does.
fn lapse_projection(ledger: &[crate::engine::LedgerRow], pkgs: &[Package], period: Period) -> Result<Vec<Lapse>, InputError> {
    let err = polars_err(LAPSES);
    let package = |l: &crate::engine::LedgerRow| &pkgs[l.package as usize];
    let qty = |name: &str, f: fn(&crate::engine::LedgerRow) -> Qty| Int128Chunked::from_vec(name.into(), ledger.iter().map(|l| f(l).0).collect()).into_column();
    let frame = DataFrame::new(
        ledger.len(),
        vec![
            Column::new("row".into(), (0..ledger.len() as u32).collect::<Vec<_>>()),
            Column::new("from".into(), ledger.iter().map(|l| package(l).effective_from).collect::<Vec<_>>()),
            Column::new("until".into(), ledger.iter().map(|l| package(l).expires_at).collect::<Vec<_>>()),
            Column::new("monthly".into(), ledger.iter().map(|l| package(l).reset_period == ResetPeriod::Month).collect::<Vec<_>>()),
            qty("used", |l| l.used),
            qty("closing", |l| l.closing),
            qty("lapsed", |l| l.lapsed),
        ],
    )
    .map_err(&err)?;
    let at_risk = lapse_query(frame, period).map_err(&err)?;
    let (rows, when) = (u32s(LAPSES, &at_risk, "row")?, ints(LAPSES, &at_risk, "when")?);
    let (burn, risk) = (i128s(LAPSES, &at_risk, "burn")?, i128s(LAPSES, &at_risk, "at_risk")?);
    let (product_fits, difference_fits) = (bools(LAPSES, &at_risk, "product_fits")?, bools(LAPSES, &at_risk, "difference_fits")?);
    let mut out = Vec::with_capacity(rows.len());
    for (k, row) in rows.into_iter().enumerate() {
        if !product_fits[k] {
            return Err(Overflow { figure: "package burn" }.into());
        }
        if !difference_fits[k] {
            return Err(Overflow { figure: "package quota at expiry" }.into());
        }
        out.push(Lapse { row, burn_per_day: Qty(burn[k]), at_risk: Qty(risk[k]), when: when[k].unwrap_or(period.end()) });
    }
    Ok(out)
}

/// A package is at risk when it outlives the period and either resets monthly (what
/// lapsed at the period's end is at risk) or expires in the next period with more left
/// than it will use by then at the period's burn rate: closing − burn × whole days
/// left. The burn rate is the quota used per whole day in force (at least one),
/// truncated toward zero as the engine divides. Quantities are the engine's `Qty`
/// mantissas as `Int128`; Polars' integer arithmetic wraps, so the query flags a
/// product or a difference that would pass i128 rather than trust it.
fn lapse_query(frame: DataFrame, period: Period) -> PolarsResult<DataFrame> {
    let (ps, pe, next_end) = (period.start(), period.end(), period.next().end());
    let clamp = |e: Expr, low: Expr| when(e.clone().lt(low.clone())).then(low).otherwise(e);
    let later = |e: Expr, t: i64| when(e.clone().gt(lit(t))).then(e).otherwise(lit(t));
    let earlier = |e: Expr, t: i64| when(e.clone().lt(lit(t))).then(e).otherwise(lit(t));
    let days = clamp((earlier(col("until"), pe) - later(col("from"), ps)).floor_div(lit(DAY)), lit(1i64)).cast(DataType::Int128);
    // A floor, raised by one where a negative quotient was inexact: a truncation.
    let floor = col("used").floor_div(col("days"));
    let inexact_negative = col("used").lt(lit(0i128)).and((floor.clone() * col("days")).neq(col("used")));
    let burn = floor + when(inexact_negative).then(lit(1i128)).otherwise(lit(0i128));
    let one_off = col("monthly").not().and(col("until").gt(lit(pe))).and(col("until").lt_eq(lit(next_end)));
    let resets = col("monthly").and(col("until").gt(lit(pe)));
    // |burn| ≤ i128::MAX ÷ days left, so burn × days left fits …
    let bound = lit(i128::MAX).floor_div(clamp(col("days_left"), lit(1i128)));
    let product_fits = col("burn").lt_eq(bound.clone()).and(col("burn").gt_eq(lit(0i128) - bound));
    // … and so does closing − burn × days left.
    let product = col("burn") * col("days_left");
    let difference_fits = when(product.clone().gt_eq(lit(0i128)))
        .then(col("closing").gt_eq(lit(i128::MIN) + product.clone()))
        .otherwise(col("closing").lt_eq(lit(i128::MAX) + product.clone()));
    let if_one_off = |then: Expr, otherwise: Expr| when(col("one_off")).then(then).otherwise(otherwise);
    frame
        .lazy()
        .filter(one_off.clone().or(resets))
        .with_columns([days.alias("days"), one_off.alias("one_off")])
        .with_columns([burn.alias("burn"), (col("until") - lit(pe)).floor_div(lit(DAY)).cast(DataType::Int128).alias("days_left")])
        .with_columns([
            if_one_off(product_fits, lit(true)).alias("product_fits"),
            if_one_off(difference_fits, lit(true)).alias("difference_fits"),
            if_one_off(col("closing") - product, col("lapsed")).alias("at_risk"),
            if_one_off(col("until"), lit(pe)).alias("when"),
        ])
        .filter(col("at_risk").gt(lit(0i128)).or(col("product_fits").not()).or(col("difference_fits").not()))
        .select([col("row"), col("burn"), col("at_risk"), col("when"), col("product_fits"), col("difference_fits")])
        .collect()
}

/// Notebooks whose EVS disk kept billing while their compute had not run for at
/// least `idle_days` days at the period's end.
pub fn idle_notebooks(book: &CostBook, period: Period, idle_days: i64) -> Result<Vec<Recommendation>, InputError> {
    let mut nbs: Vec<_> = book.notebooks.iter().filter(|(_, u)| !u.disk_by_day.is_empty()).collect();
    nbs.sort_by(|a, b| a.0.cmp(b.0));
    // Each notebook idle long enough, and since when; then its disk's cost since then.
    let mut idle = Vec::new();
    for (k, (_, usage)) in nbs.iter().enumerate() {
        let since = usage.last_compute.unwrap_or(period.start()).max(period.start());
        let days = (period.end() - since) / DAY;
        if days >= idle_days {
            idle.push((k as u32, since, days));
        }
    }
    let (mut nb, mut day, mut since_day, mut cost) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &(k, since, _) in &idle {
        for (d, c) in &nbs[k as usize].1.disk_by_day {
            nb.push(k);
            day.push(*d);
            since_day.push(since.div_euclid(DAY));
            cost.push(c.0);
        }
    }
    const WHAT: &str = "cost/recommendations (idle notebooks)";
    let rows = nb.len();
    let disk = DataFrame::new(
        rows,
        vec![Column::new("nb".into(), nb), Column::new("day".into(), day), Column::new("since".into(), since_day), dec_column(WHAT, "cost", cost)?],
    )
    .map_err(polars_err(WHAT))?;
    let since = disk.lazy().filter(col("day").gt_eq(col("since"))).group_by([col("nb")]).agg(exact_sum("cost", "cost")).collect().map_err(polars_err(WHAT))?;
    let disk_since: FxHashMap<u32, Dec> = u32s(WHAT, &since, "nb")?.into_iter().zip(dec_sums(WHAT, &since, "cost")?).collect();
    let mut out = Vec::new();
    for (k, _, idle) in idle {
        let ((acct, nb), usage) = nbs[k as usize];
        let disk = disk_since.get(&k).copied().unwrap_or_default();
        let per_month = mul_div_round(disk.0, 30, idle as i128).and_then(Dec::within).ok_or(Overflow { figure: "idle disk cost" })?.round_dp(2);
        out.push(Recommendation {
            account: *acct,
            id: format!("idle_notebook:{nb}"),
            kind: "idle_notebook",
            resource: Some(nb.clone()),
            sku: None,
            region: None,
            action: format!("delete notebook {nb} or release its EVS disk: it has not computed for {idle} days"),
            saving: per_month,
            verified: false,
            current_cost: Some(disk),
            alternative_cost: Some(Dec::ZERO),
            evidence: match usage.last_compute {
                Some(t) => format!("compute last ran until {}; its disk cost {} since", format_ts(t), disk),
                None => format!("no compute this period; its disk cost {disk}"),
            },
            purchase: None,
        });
    }
    Ok(out)
}

/// Accounts that will go into arrears within `horizon_days` at the burn rate of the
/// period's last 7 days.
pub fn arrears_risk(book: &CostBook, balances: &[(u32, Dec, Phase)], period: Period, horizon_days: i64) -> Result<Vec<Recommendation>, InputError> {
    let week_of = last_week_deductions(book, period)?;
    let mut out = Vec::new();
    for &(acct, balance, phase) in balances {
        if phase != Phase::Active || balance.is_negative() {
            continue;
        }
        let week = week_of.get(&acct).copied().unwrap_or_default();
        if week <= Dec::ZERO {
            continue;
        }
        // days left = balance / (week / 7)
        let days_left = mul_div_round(balance.0, 7, week.0).unwrap_or(i128::MAX);
        if days_left > horizon_days as i128 {
            continue;
        }
        let month_need = mul_div_round(week.0, 30, 7).and_then(Dec::within).ok_or(Overflow { figure: "month's deductions" })?.round_dp(2);
        out.push(Recommendation {
            account: acct,
            id: "arrears_risk".into(),
            kind: "arrears_risk",
            resource: None,
            sku: None,
            region: None,
            action: format!("top up at least {}: the balance lasts about {days_left} more days", month_need.minus(balance, "top-up")?.max(Dec::ZERO)),
            saving: Dec::ZERO,
            verified: false,
            current_cost: Some(week),
            alternative_cost: None,
            evidence: format!("balance {balance} at close; {week} deducted in the last 7 days"),
            purchase: None,
        });
    }
    Ok(out)
}

/// Each account's settlement deductions in the period's last 7 days.
fn last_week_deductions(book: &CostBook, period: Period) -> Result<FxHashMap<u32, Dec>, InputError> {
    const WHAT: &str = "cost/recommendations (arrears risk)";
    let last_day = (period.end() - 1).div_euclid(DAY);
    let (mut acct, mut day, mut amount) = (Vec::new(), Vec::new(), Vec::new());
    for ((a, d), x) in &book.deductions {
        acct.push(*a);
        day.push(*d);
        amount.push(x.0);
    }
    let rows = acct.len();
    let deductions = DataFrame::new(rows, vec![Column::new("acct".into(), acct), Column::new("day".into(), day), dec_column(WHAT, "amount", amount)?])
        .map_err(polars_err(WHAT))?;
    let week = deductions
        .lazy()
        .filter(col("day").gt_eq(lit(last_day - 6)).and(col("day").lt_eq(lit(last_day))))
        .group_by([col("acct")])
        .agg(exact_sum("amount", "amount"))
        .collect()
        .map_err(polars_err(WHAT))?;
    Ok(u32s(WHAT, &week, "acct")?.into_iter().zip(dec_sums(WHAT, &week, "amount")?).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LedgerRow;

    /// The projection as plain checked arithmetic, row by row: what the query must equal.
    fn reference(ledger: &[LedgerRow], pkgs: &[Package], period: Period) -> Result<Vec<Lapse>, Overflow> {
        let (ps, pe) = (period.start(), period.end());
        let mut out = Vec::new();
        for (row, l) in ledger.iter().enumerate() {
            let p = &pkgs[l.package as usize];
            let in_force_days = ((p.expires_at.min(pe) - p.effective_from.max(ps)) / DAY).max(1);
            let burn_per_day = Qty(l.used.0 / in_force_days as i128);
            let (at_risk, when) = match p.reset_period {
                ResetPeriod::None if p.expires_at > pe && p.expires_at <= period.next().end() => {
                    let burn = burn_per_day.0.checked_mul(((p.expires_at - pe) / DAY) as i128).ok_or(Overflow { figure: "package burn" })?;
                    (l.closing.minus(Qty(burn), "package quota at expiry")?, p.expires_at)
                }
                ResetPeriod::Month if p.expires_at > pe => (l.lapsed, pe),
                _ => continue,
            };
            if at_risk.0 > 0 {
                out.push(Lapse { row: row as u32, burn_per_day, at_risk, when });
            }
        }
        Ok(out)
    }

    fn package(from: i64, until: i64, reset: ResetPeriod) -> Package {
        Package {
            package_id: "P".into(),
            account_id: "A".into(),
            region: "r".into(),
            sku: "s".into(),
            package_count: 1,
            hours_per_package: Dec::from_int(100),
            price: Dec::from_int(10),
            purchased_at: from,
            effective_from: from,
            expires_at: until,
            reset_period: reset,
            alert_threshold_pct: None,
        }
    }

    fn row(package: u32, used: i128, closing: i128, lapsed: i128) -> LedgerRow {
        LedgerRow {
            package,
            account: 0,
            opening: Qty(used + closing + lapsed),
            used: Qty(used),
            lapsed: Qty(lapsed),
            closing: Qty(closing),
            shown: [Dec::ZERO; 4],
        }
    }

    #[test]
    fn the_query_projects_as_the_engine_divides() {
        let period = Period::parse("2024-02").unwrap();
        let (ps, pe, next_end) = (period.start(), period.end(), period.next().end());
        let pkgs = vec![
            package(ps - 40 * DAY, pe + 9 * DAY, ResetPeriod::None),    // expires in March: at risk if little is used
            package(ps + 3 * DAY + 7, pe + 9 * DAY, ResetPeriod::None), // bought mid-period: fewer days in force
            package(ps, next_end + DAY, ResetPeriod::None),             // outlives March: not at risk yet
            package(ps, pe, ResetPeriod::None),                         // expired with the period
            package(ps, pe + 90 * DAY, ResetPeriod::Month),             // resets: what lapsed is at risk
            package(ps, pe + 5, ResetPeriod::None),                     // less than a day left
            package(pe - 5, pe + 2 * DAY, ResetPeriod::None),           // in force less than a day
        ];
        let mut ledger = Vec::new();
        for p in 0..pkgs.len() as u32 {
            for (used, closing, lapsed) in [(29 * 7, 100, 0), (29 * 70 + 13, 100, 5), (0, 1, 0), (0, 0, 0), (-29 * 7 - 1, 50, 3), (1, 0, 0)] {
                ledger.push(row(p, used, closing, lapsed));
            }
        }
        let got = lapse_projection(&ledger, &pkgs, period).unwrap();
        assert_eq!(got, reference(&ledger, &pkgs, period).unwrap());
        // Each kind is there: one-off with fewer or more days, monthly, the day's edge.
        for p in [0, 1, 4, 5, 6] {
            assert!(got.iter().any(|l| ledger[l.row as usize].package == p), "package {p}");
        }
        assert!(!got.iter().any(|l| [2, 3].contains(&ledger[l.row as usize].package)));
        // 203 used in 29 days is 7 a day; 9 days left burn 63 of the 100.
        assert_eq!(got[0], Lapse { row: 0, burn_per_day: Qty(7), at_risk: Qty(37), when: pe + 9 * DAY });
    }

    #[test]
    fn a_projection_past_i128_is_refused_not_wrapped() {
        let period = Period::parse("2024-02").unwrap();
        // In force for less than a day (so one), with 9 days left after the period.
        let pkgs = vec![package(period.end() - 5, period.end() + 9 * DAY, ResetPeriod::None)];
        for (used, closing, figure) in [(i128::MAX / 8, 0, "package burn"), (i128::MAX / 9, i128::MIN + 5, "package quota at expiry")] {
            let ledger = vec![row(0, used, closing, 0)];
            assert_eq!(reference(&ledger, &pkgs, period).err(), Some(Overflow { figure }));
            assert!(matches!(lapse_projection(&ledger, &pkgs, period), Err(InputError::Overflow(Overflow { figure: f })) if f == figure), "{figure}");
        }
    }
}
