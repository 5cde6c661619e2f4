//! `billrun report`: one self-contained HTML page per period, for people: daily cost
//! trend, composition by module, top resources, package utilization and the accounts
//! at risk. Charts are inline SVG drawn from the period's output tables; the page
//! loads nothing from the network and runs no script.

use crate::decimal::Dec;
use crate::lake::columns::{DecCol, StrCol, TsCol};
use crate::lake::inputs::{decode_parquet, InputError};
use crate::lake::store::Lake;
use crate::time::{format_ts, Period};
use arrow_array::RecordBatch;
use std::collections::BTreeMap;
use std::fmt::Write;

fn table(lake: &Lake, name: &str, period: Period) -> Result<Vec<RecordBatch>, InputError> {
    let rel = format!("{name}/billing_period={period}/part-0.parquet");
    match lake.get_opt(&rel)? {
        Some(b) => decode_parquet(&rel, b),
        None => Err(InputError::MissingFile { file: rel, lake: lake.url().into() }),
    }
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Rows of string/decimal/timestamp cells of a table, by column name.
struct Rows {
    cols: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

#[derive(Clone, Debug)]
enum Cell {
    S(Option<String>),
    D(Option<Dec>),
    T(Option<i64>),
}

impl Rows {
    fn read(batches: &[RecordBatch], wanted: &[&str]) -> Rows {
        let mut rows = Vec::new();
        for b in batches {
            for i in 0..b.num_rows() {
                let mut r = Vec::new();
                for c in wanted {
                    let cell = if let Ok(s) = StrCol::of(b, c) {
                        Cell::S(s.get(i).map(str::to_string))
                    } else if let Ok(d) = DecCol::of(b, c) {
                        Cell::D(d.get(i).and_then(Result::ok))
                    } else if let Ok(t) = TsCol::of(b, c) {
                        Cell::T(t.get(i).and_then(Result::ok))
                    } else {
                        Cell::S(None)
                    };
                    r.push(cell);
                }
                rows.push(r);
            }
        }
        Rows { cols: wanted.iter().map(|s| s.to_string()).collect(), rows }
    }
    fn idx(&self, c: &str) -> usize {
        self.cols.iter().position(|x| x == c).expect("column asked for")
    }
    fn s<'a>(&self, r: &'a [Cell], c: &str) -> &'a str {
        match &r[self.idx(c)] {
            Cell::S(Some(s)) => s,
            _ => "",
        }
    }
    fn d(&self, r: &[Cell], c: &str) -> Dec {
        match &r[self.idx(c)] {
            Cell::D(Some(d)) => *d,
            _ => Dec::ZERO,
        }
    }
    fn t(&self, r: &[Cell], c: &str) -> Option<i64> {
        match &r[self.idx(c)] {
            Cell::T(t) => *t,
            _ => None,
        }
    }
}

/// A horizontal bar chart: one bar per item, widths in proportion to the values
/// (integer arithmetic on the exact decimals).
fn bars(id: &str, title: &str, items: &[(String, Dec)], unit: &str) -> String {
    let max = items.iter().map(|(_, v)| v.0.max(0)).max().unwrap_or(0).max(1);
    let (row_h, label_w, bar_w) = (22i128, 260i128, 420i128);
    let h = row_h * items.len() as i128 + 10;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg class=\"chart\" id=\"{id}\" role=\"img\" width=\"{}\" height=\"{h}\" viewBox=\"0 0 {} {h}\">",
        esc(title),
        label_w + bar_w + 150,
        label_w + bar_w + 150
    );
    for (k, (label, v)) in items.iter().enumerate() {
        let y = row_h * k as i128 + 4;
        let w = (v.0.max(0) * bar_w / max).max(1);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect class=\"bar\" x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"{}\"><title>{}: {} {unit}</title></rect><text x=\"{}\" y=\"{}\">{}</text>",
            label_w - 6,
            y + 15,
            esc(label),
            row_h - 6,
            esc(label),
            v,
            label_w + w + 6,
            y + 15,
            v.round_dp(2)
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// A column chart over days: one column per day.
fn columns(id: &str, title: &str, items: &[(String, Dec)], unit: &str) -> String {
    let max = items.iter().map(|(_, v)| v.0.max(0)).max().unwrap_or(0).max(1);
    let (col_w, plot_h) = (22i128, 220i128);
    let w = col_w * items.len() as i128 + 60;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg class=\"chart\" id=\"{id}\" role=\"img\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\">",
        esc(title),
        plot_h + 40,
        plot_h + 40
    );
    for (k, (label, v)) in items.iter().enumerate() {
        let h = (v.0.max(0) * plot_h / max).max(1);
        let x = 40 + col_w * k as i128;
        let _ = write!(
            s,
            "<rect class=\"bar\" x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{h}\"><title>{}: {} {unit}</title></rect>",
            plot_h - h + 10,
            col_w - 4,
            esc(label),
            v
        );
        if k % 5 == 0 {
            let _ = write!(s, "<text x=\"{x}\" y=\"{}\">{}</text>", plot_h + 30, esc(label.get(5..).unwrap_or(label)));
        }
    }
    s.push_str("</svg></figure>");
    s
}

fn html_table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// Builds the report of `period` from the output lake.
pub fn render(lake: &Lake, period: Period) -> Result<String, InputError> {
    let analysis =
        Rows::read(&table(lake, "cost/analysis", period)?, &["account_id", "currency", "view", "dimension", "key", "date", "effective_cost", "billed_cost"]);
    let invoices =
        Rows::read(&table(lake, "bills/invoices", period)?, &["account_id", "currency", "total_due", "status_at_close", "arrears_amount", "closing_balance"]);
    let ledger = Rows::read(&table(lake, "bills/package_ledger", period)?, &["package_id", "account_id", "opening_quota", "used_quota", "lapsed_quota"]);
    let recs = Rows::read(&table(lake, "cost/recommendations", period)?, &["account_id", "kind", "action", "estimated_saving", "currency"]);

    let mut currencies: BTreeMap<String, Dec> = BTreeMap::new();
    for r in &invoices.rows {
        let e = currencies.entry(invoices.s(r, "currency").to_string()).or_default();
        *e = e.plus(invoices.d(r, "total_due"), "cost total")?;
    }
    let mut body = String::new();
    let _ = write!(body, "<h1>Bill run report — {period}</h1><p class=\"totals\">");
    for (c, v) in &currencies {
        let _ = write!(body, "<span>Total due: <b>{v} {}</b></span> ", esc(c));
    }
    let _ = write!(body, "<span>{} invoices</span></p>", invoices.rows.len());

    for cur in currencies.keys() {
        let of = |r: &[Cell]| analysis.s(r, "currency") == cur;
        let mut daily: BTreeMap<i64, Dec> = BTreeMap::new();
        let mut modules: BTreeMap<String, Dec> = BTreeMap::new();
        let mut top: Vec<(String, Dec)> = Vec::new();
        for r in analysis.rows.iter().filter(|r| of(r)) {
            match (analysis.s(r, "view"), analysis.s(r, "dimension")) {
                ("daily", _) => {
                    if let Some(t) = analysis.t(r, "date") {
                        let e = daily.entry(t).or_default();
                        *e = e.plus(analysis.d(r, "effective_cost"), "cost total")?;
                    }
                }
                ("composition", "module") => {
                    let e = modules.entry(analysis.s(r, "key").to_string()).or_default();
                    *e = e.plus(analysis.d(r, "effective_cost"), "cost total")?;
                }
                ("top_resources", _) => top.push((format!("{} ({})", analysis.s(r, "key"), analysis.s(r, "account_id")), analysis.d(r, "effective_cost"))),
                _ => {}
            }
        }
        let daily: Vec<(String, Dec)> = daily.into_iter().map(|(t, v)| (format_ts(t)[..10].to_string(), v)).collect();
        let mut modules: Vec<(String, Dec)> = modules.into_iter().collect();
        modules.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(15);
        let slug = cur.to_lowercase();
        let _ = write!(body, "<section><h2>Spend in {}</h2>", esc(cur));
        body.push_str(&columns(&format!("daily-trend-{slug}"), &format!("Daily effective cost ({cur})"), &daily, cur));
        body.push_str(&bars(&format!("composition-{slug}"), &format!("Composition by module ({cur})"), &modules, cur));
        body.push_str(&bars(&format!("top-resources-{slug}"), &format!("Top resources ({cur})"), &top, cur));
        body.push_str("</section>");
    }

    let mut util: Vec<(String, Dec)> = ledger
        .rows
        .iter()
        .filter(|r| ledger.d(r, "opening_quota") > Dec::ZERO)
        .map(|r| {
            let pct = crate::decimal::mul_div_round(ledger.d(r, "used_quota").0, 100 * 10_000_000_000, ledger.d(r, "opening_quota").0).unwrap_or(0);
            (format!("{} ({})", ledger.s(r, "package_id"), ledger.s(r, "account_id")), Dec(pct).round_dp(1))
        })
        .collect();
    util.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    body.push_str("<section><h2>Packages</h2>");
    body.push_str(&bars("package-utilization", "Package quota used this period (%)", &util, "%"));
    body.push_str("</section>");

    let mut at_risk: Vec<Vec<String>> = invoices
        .rows
        .iter()
        .filter(|r| invoices.s(r, "status_at_close") != "active")
        .map(|r| {
            vec![
                invoices.s(r, "account_id").to_string(),
                invoices.s(r, "status_at_close").to_string(),
                format!("{} {}", invoices.d(r, "arrears_amount"), invoices.s(r, "currency")),
                "in arrears at close".to_string(),
            ]
        })
        .collect();
    for r in recs.rows.iter().filter(|r| recs.s(r, "kind") == "arrears_risk") {
        at_risk.push(vec![recs.s(r, "account_id").into(), "active".into(), "—".into(), recs.s(r, "action").into()]);
    }
    let risk_items: Vec<(String, Dec)> = invoices
        .rows
        .iter()
        .filter(|r| invoices.s(r, "status_at_close") != "active")
        .map(|r| (format!("{} ({})", invoices.s(r, "account_id"), invoices.s(r, "currency")), invoices.d(r, "arrears_amount")))
        .collect();
    body.push_str("<section><h2>Accounts at risk</h2>");
    body.push_str(&bars("arrears", "Arrears at close", &risk_items, ""));
    body.push_str(&html_table(&["account", "status", "arrears", "why"], &at_risk));
    body.push_str("</section>");

    let savings: Vec<Vec<String>> = recs
        .rows
        .iter()
        .filter(|r| recs.d(r, "estimated_saving") > Dec::ZERO)
        .take(50)
        .map(|r| {
            vec![
                recs.s(r, "account_id").into(),
                recs.s(r, "kind").into(),
                recs.s(r, "action").into(),
                format!("{} {}", recs.d(r, "estimated_saving"), recs.s(r, "currency")),
            ]
        })
        .collect();
    body.push_str("<section><h2>Recommendations</h2>");
    body.push_str(&html_table(&["account", "kind", "action", "estimated saving"], &savings));
    body.push_str("</section>");

    Ok(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Bill run report {period}</title><style>{CSS}</style></head><body>{body}</body></html>"
    ))
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}h1{font-size:22px}h2{font-size:18px;margin-top:2em}\
figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}svg.chart text{font-size:11px;fill:#333}\
rect.bar{fill:#3b7dd8}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
.totals span{margin-right:2em}";
