//! `billrun report`: one self-contained HTML page per period, for people: daily cost
//! trend, composition by module, top resources, cost by enterprise project, package
//! utilization and the accounts at risk. Charts are inline SVG drawn from the period's output tables; the page
//! loads nothing from the network and runs no script.

pub mod figures;

use crate::decimal::Dec;
use crate::lake::inputs::InputError;
use crate::lake::store::Lake;
use crate::time::Period;
use figures::{Figures, Item};
use std::fmt::Write;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn pairs(items: &[Item]) -> Vec<(String, Dec)> {
    items.iter().map(|i| (i.label.clone(), i.value)).collect()
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
    Ok(page(&figures::figures(lake, period)?))
}

/// The page of a period's figures.
pub fn page(f: &Figures) -> String {
    let period = &f.period;
    let mut body = String::new();
    let _ = write!(body, "<h1>Bill run report — {period}</h1><p class=\"totals\">");
    for s in &f.spend {
        let _ = write!(body, "<span>Total due: <b>{} {}</b></span> ", s.total_due, esc(&s.currency));
    }
    let _ = write!(body, "<span>{} invoices</span></p>", f.invoices);

    for s in &f.spend {
        let cur = &s.currency;
        let slug = cur.to_lowercase();
        let _ = write!(body, "<section><h2>Spend in {}</h2>", esc(cur));
        body.push_str(&columns(&format!("daily-trend-{slug}"), &format!("Daily effective cost ({cur})"), &pairs(&s.daily), cur));
        body.push_str(&bars(&format!("composition-{slug}"), &format!("Composition by module ({cur})"), &pairs(&s.modules), cur));
        body.push_str(&bars(&format!("top-resources-{slug}"), &format!("Top resources ({cur})"), &pairs(&s.top_resources), cur));
        body.push_str(&bars(&format!("projects-{slug}"), &format!("Allocated by enterprise project ({cur})"), &pairs(&s.projects), cur));
        body.push_str("</section>");
    }

    body.push_str("<section><h2>Packages</h2>");
    body.push_str(&bars("package-utilization", "Package quota used this period (%)", &pairs(&f.package_utilization), "%"));
    body.push_str("</section>");

    let rows = |rows: &[figures::Row]| rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>();
    body.push_str("<section><h2>Accounts at risk</h2>");
    body.push_str(&bars("arrears", "Arrears at close", &pairs(&f.arrears), ""));
    body.push_str(&html_table(&["account", "status", "arrears", "why"], &rows(&f.at_risk)));
    body.push_str("</section>");

    body.push_str("<section><h2>Recommendations</h2>");
    body.push_str(&html_table(&["account", "kind", "action", "estimated saving"], &rows(&f.savings)));
    body.push_str("</section>");

    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Bill run report {period}</title><style>{CSS}</style></head><body>{body}</body></html>"
    )
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}h1{font-size:22px}h2{font-size:18px;margin-top:2em}\
figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}svg.chart text{font-size:11px;fill:#333}\
rect.bar{fill:#3b7dd8}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
.totals span{margin-right:2em}";
