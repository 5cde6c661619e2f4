//! The report's figures: Polars queries over the period's published tables (the cost
//! analysis, invoices, package ledger and recommendations), on any lake the close can
//! read. Sums are exact ([`frame::exact_sum`]); a package's utilization is divided and
//! rounded by the bill run's own decimal arithmetic, not Polars'.

use crate::cost::frame::{self, dec_sums, decs, exact_sum, strs, Kind};
use crate::decimal::{mul_div_round, Dec};
use crate::lake::inputs::{decode_parquet, InputError, Result};
use crate::lake::store::Lake;
use crate::time::{format_ts, Period};
use polars::prelude::*;

/// A labelled figure: a bar of a chart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Item {
    pub label: String,
    pub value: Dec,
}

/// The figures of one currency.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Spend {
    pub currency: String,
    /// Σ `total_due` of its invoices.
    pub total_due: Dec,
    /// Σ effective cost by day (`YYYY-MM-DD`), in order.
    pub daily: Vec<Item>,
    /// Σ effective cost by module, largest first.
    pub modules: Vec<Item>,
    /// The largest resources, `resource (account)`, largest first.
    pub top_resources: Vec<Item>,
    /// Σ allocated effective cost by enterprise project, largest first.
    pub projects: Vec<Item>,
}

/// A row of the report's tables.
pub type Row = [String; 4];

/// Everything the report shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Figures {
    pub period: String,
    pub invoices: usize,
    /// By currency, in order.
    pub spend: Vec<Spend>,
    /// Quota used this period, in % of the opening quota (1 place), least used first.
    pub package_utilization: Vec<Item>,
    /// Accounts in arrears at close: `account (currency)`, the arrears.
    pub arrears: Vec<Item>,
    /// account, status, arrears, why: those in arrears, then those at risk.
    pub at_risk: Vec<Row>,
    /// account, kind, action, estimated saving: the first 50 with a saving.
    pub savings: Vec<Row>,
}

/// How many resources the top list shows per currency.
pub const TOP: usize = 15;
/// How many recommendations the savings table shows.
pub const SAVINGS: usize = 50;

fn rel(name: &str, period: Period) -> String {
    format!("{name}/billing_period={period}/part-0.parquet")
}

/// A published table of the period as a frame of the columns `wanted`.
fn table(lake: &Lake, name: &str, period: Period, wanted: &[(&'static str, Kind)]) -> Result<(String, DataFrame)> {
    let file = rel(name, period);
    let bytes = lake.get_opt(&file)?.ok_or_else(|| InputError::MissingFile { file: file.clone(), lake: lake.url().into() })?;
    let df = frame::frame(&file, &decode_parquet(&file, bytes)?, wanted)?;
    Ok((file, df))
}

fn sort_by(by: &[&str], descending: &[bool]) -> (Vec<PlSmallStr>, SortMultipleOptions) {
    let by = by.iter().map(|s| PlSmallStr::from(*s)).collect();
    (by, SortMultipleOptions::default().with_order_descending_multi(descending.to_vec()).with_maintain_order(true))
}

fn run(file: &str, q: LazyFrame) -> Result<DataFrame> {
    q.collect().map_err(frame::polars_err(file))
}

/// Σ of `value` by `keys` (sorted by them), exact.
fn summed(file: &str, df: &DataFrame, filter: Expr, keys: &[&str], value: &str) -> Result<(DataFrame, Vec<Dec>)> {
    let (by, opts) = sort_by(keys, &vec![false; keys.len()]);
    let q = df.clone().lazy().filter(filter).group_by(keys.iter().map(|k| col(*k)).collect::<Vec<_>>()).agg(exact_sum(value, value)).sort(by, opts);
    let out = run(file, q)?;
    let sums = dec_sums(file, &out, value)?;
    Ok((out, sums))
}

/// The report's figures of `period`, from the output lake.
pub fn figures(lake: &Lake, period: Period) -> Result<Figures> {
    use Kind::{Dec as D, Micros as T, Str as S};
    let (af, analysis) = table(
        lake,
        "cost/analysis",
        period,
        &[("account_id", S), ("currency", S), ("view", S), ("dimension", S), ("key", S), ("date", T), ("effective_cost", D)],
    )?;
    let (inf, invoices) =
        table(lake, "bills/invoices", period, &[("account_id", S), ("currency", S), ("status_at_close", S), ("total_due", D), ("arrears_amount", D)])?;
    let (lf, ledger) = table(lake, "bills/package_ledger", period, &[("package_id", S), ("account_id", S), ("opening_quota", D), ("used_quota", D)])?;
    let (rf, recs) = table(lake, "cost/recommendations", period, &[("account_id", S), ("kind", S), ("action", S), ("currency", S), ("estimated_saving", D)])?;

    let (totals, due) = summed(&inf, &invoices, lit(true), &["currency"], "total_due")?;
    let currencies = strs(&inf, &totals, "currency")?;

    let (daily, daily_sums) = summed(&af, &analysis, col("view").eq(lit("daily")).and(col("date").is_not_null()), &["currency", "date"], "effective_cost")?;
    let (daily_cur, daily_day) = (strs(&af, &daily, "currency")?, frame::ints(&af, &daily, "date")?);
    let (modules, module_sums) =
        summed(&af, &analysis, col("view").eq(lit("composition")).and(col("dimension").eq(lit("module"))), &["currency", "key"], "effective_cost")?;
    let (module_cur, module_key) = (strs(&af, &modules, "currency")?, strs(&af, &modules, "key")?);
    let (projects, project_sums) =
        summed(&af, &analysis, col("view").eq(lit("allocation")).and(col("dimension").eq(lit("enterprise_project"))), &["currency", "key"], "effective_cost")?;
    let (project_cur, project_key) = (strs(&af, &projects, "currency")?, strs(&af, &projects, "key")?);
    let (by, opts) = sort_by(&["currency", "effective_cost", "key", "account_id"], &[false, true, false, false]);
    let top = run(
        &af,
        analysis
            .clone()
            .lazy()
            .filter(col("view").eq(lit("top_resources")))
            .select([col("currency"), col("key"), col("account_id"), col("effective_cost")])
            .sort(by, opts),
    )?;
    let (top_cur, top_key, top_acc, top_cost) =
        (strs(&af, &top, "currency")?, strs(&af, &top, "key")?, strs(&af, &top, "account_id")?, decs(&af, &top, "effective_cost")?);

    let mut spend = Vec::new();
    for (cur, total_due) in currencies.iter().zip(due) {
        let daily: Vec<Item> = (0..daily_cur.len())
            .filter(|&k| daily_cur[k] == *cur)
            .map(|k| Item { label: daily_day[k].map(|t| format_ts(t)[..10].to_string()).unwrap_or_default(), value: daily_sums[k] })
            .collect();
        let largest_first = |cur_of: &[String], keys: &[String], sums: &[Dec]| {
            let mut items: Vec<Item> = (0..cur_of.len()).filter(|&k| cur_of[k] == *cur).map(|k| Item { label: keys[k].clone(), value: sums[k] }).collect();
            items.sort_by(|a, b| b.value.cmp(&a.value).then(a.label.cmp(&b.label)));
            items
        };
        let modules = largest_first(&module_cur, &module_key, &module_sums);
        let projects = largest_first(&project_cur, &project_key, &project_sums);
        // Every line of the period has its day and its module, and its cost is
        // allocated: the three add up to the same total, or the analysis does not say
        // what the bill says.
        let sum = |items: &[Item]| items.iter().try_fold(Dec::ZERO, |a, i| a.plus(i.value, "effective cost total"));
        let (by_day, by_module) = (sum(&daily)?, sum(&modules)?);
        let by_project = sum(&projects)?;
        if by_day != by_module || by_day != by_project {
            return Err(InputError::Table {
                file: af.clone(),
                why: format!(
                    "{cur}: the daily trend adds up to {by_day}, the composition by module to {by_module} and the allocation by project to {by_project}"
                ),
            });
        }
        let top_resources = (0..top_cur.len())
            .filter(|&k| top_cur[k] == *cur)
            .take(TOP)
            .map(|k| Item { label: format!("{} ({})", top_key[k], top_acc[k]), value: top_cost[k].unwrap_or_default() })
            .collect();
        spend.push(Spend { currency: cur.clone(), total_due, daily, modules, top_resources, projects });
    }

    let used = run(&lf, ledger.clone().lazy().filter(col("opening_quota").gt(lit(0))))?;
    let (pkg, acc, opening, used_q) =
        (strs(&lf, &used, "package_id")?, strs(&lf, &used, "account_id")?, decs(&lf, &used, "opening_quota")?, decs(&lf, &used, "used_quota")?);
    let mut package_utilization: Vec<Item> = (0..pkg.len())
        .map(|k| {
            let (u, o) = (used_q[k].unwrap_or_default().0, opening[k].unwrap_or_default().0);
            let pct = mul_div_round(u, 100 * 10_000_000_000, o).ok_or(crate::decimal::Overflow { figure: "package utilization" })?;
            Ok(Item { label: format!("{} ({})", pkg[k], acc[k]), value: Dec(pct).round_dp(1) })
        })
        .collect::<Result<_>>()?;
    package_utilization.sort_by(|a, b| a.value.cmp(&b.value).then(a.label.cmp(&b.label)));

    let late = run(&inf, invoices.clone().lazy().filter(col("status_at_close").neq(lit("active"))))?;
    let (la, ls, lc, lx) =
        (strs(&inf, &late, "account_id")?, strs(&inf, &late, "status_at_close")?, strs(&inf, &late, "currency")?, decs(&inf, &late, "arrears_amount")?);
    let arrears = (0..la.len()).map(|k| Item { label: format!("{} ({})", la[k], lc[k]), value: lx[k].unwrap_or_default() }).collect();
    let mut at_risk: Vec<Row> =
        (0..la.len()).map(|k| [la[k].clone(), ls[k].clone(), format!("{} {}", lx[k].unwrap_or_default(), lc[k]), "in arrears at close".into()]).collect();
    let risk = run(&rf, recs.clone().lazy().filter(col("kind").eq(lit("arrears_risk"))))?;
    let (ra, rx) = (strs(&rf, &risk, "account_id")?, strs(&rf, &risk, "action")?);
    at_risk.extend((0..ra.len()).map(|k| [ra[k].clone(), "active".into(), "—".into(), rx[k].clone()]));

    let saving = run(&rf, recs.lazy().filter(col("estimated_saving").gt(lit(0))).limit(SAVINGS as IdxSize))?;
    let (sa, sk, sx, sc, ss) = (
        strs(&rf, &saving, "account_id")?,
        strs(&rf, &saving, "kind")?,
        strs(&rf, &saving, "action")?,
        strs(&rf, &saving, "currency")?,
        decs(&rf, &saving, "estimated_saving")?,
    );
    let savings = (0..sa.len()).map(|k| [sa[k].clone(), sk[k].clone(), sx[k].clone(), format!("{} {}", ss[k].unwrap_or_default(), sc[k])]).collect();

    Ok(Figures { period: period.to_string(), invoices: invoices.height(), spend, package_utilization, arrears, at_risk, savings })
}
