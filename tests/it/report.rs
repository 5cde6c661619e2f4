//! The HTML report, rendered by headless Chromium: the charts are there, drawn from
//! the period's figures, and the page needs no network.

use crate::lakes::billrun;
use std::process::Command;

fn chromium() -> Option<String> {
    if let Ok(c) = std::env::var("CHROMIUM") {
        return Some(c);
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().find(|p| std::path::Path::new(p).exists()).map(|p| p.to_string())
}

#[test]
fn the_report_renders_its_charts_in_a_browser() {
    let Some(browser) = chromium() else {
        assert!(std::env::var("CI").is_err(), "chromium is not installed: run the tests with scripts/test.sh");
        eprintln!("chromium not installed; run scripts/test.sh to include this check");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    assert!(billrun().args(["generate", "--accounts", "12", "--resources", "3", "--out"]).arg(&lake).status().unwrap().success());
    let st = billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).status().unwrap();
    assert!(matches!(st.code(), Some(0 | 1)));
    let page = tmp.path().join("report.html");
    let out = billrun().args(["report", "--period", "2026-01", "--output"]).arg(&lake).arg("--html").arg(&page).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "self-contained");

    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", tmp.path().join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("Bill run report"), "chromium rendered the page: {}", String::from_utf8_lossy(&out.stderr));
    for id in ["daily-trend-usd", "composition-usd", "top-resources-usd", "projects-usd", "package-utilization", "arrears"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "chart {id} is on the page");
    }
    // The daily trend has one column per day of January with cost.
    let daily = dom.split("id=\"daily-trend-usd\"").nth(1).unwrap().split("</svg>").next().unwrap();
    assert_eq!(daily.matches("<rect").count(), 31);
    let top = dom.split("id=\"top-resources-usd\"").nth(1).unwrap().split("</svg>").next().unwrap();
    assert_eq!(top.matches("<rect").count(), 15);
}

/// `billrun report --json` on two closed months with packages, subscriptions and
/// accounts falling into arrears: every figure equals the same figure DuckDB computes
/// from the period's published tables (`tests/report_check.py`), to the last digit.
#[test]
fn the_report_figures_equal_what_duckdb_computes_from_the_published_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let gen = billrun().args(["generate", "--accounts", "30", "--resources", "4", "--months", "2", "--out"]).arg(&lake).status().unwrap();
    assert!(gen.success());
    for period in ["2026-01", "2026-02"] {
        let st = billrun().args(["run", "--period", period, "--input"]).arg(&lake).status().unwrap();
        assert!(matches!(st.code(), Some(0 | 1)));
    }
    let figures = |period: &str| {
        let out = billrun().args(["report", "--period", period, "--json", "--output"]).arg(&lake).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(py).arg(root.join("tests/report_check.py")).arg(&lake).arg(period).output().expect("python3 with duckdb");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (got, want)
    };
    for period in ["2026-01", "2026-02"] {
        let (got, want) = figures(period);
        for field in ["period", "invoices", "spend", "package_utilization", "arrears"] {
            assert_eq!(got[field], want[field], "{period}: {field}");
        }
        // The tables: who is at risk and why, and the savings with their amounts.
        let rows = |v: &serde_json::Value| {
            v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect::<Vec<_>>()).collect::<Vec<_>>()
        };
        let at_risk = rows(&got["at_risk"]);
        let accounts: Vec<&str> = at_risk.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(serde_json::json!(accounts), want["at_risk_accounts"], "{period}");
        let actions: Vec<&str> = at_risk.iter().filter(|r| r[1] == "active").map(|r| r[3].as_str()).collect();
        assert_eq!(serde_json::json!(actions), want["at_risk_actions"], "{period}");
        let savings: Vec<serde_json::Value> = rows(&got["savings"])
            .into_iter()
            .map(|r| {
                let (amount, currency) = r[3].split_once(' ').unwrap();
                let mantissa = billrun::decimal::Dec::parse(amount).unwrap().0.to_string();
                serde_json::json!([r[0], r[1], r[2], mantissa, currency])
            })
            .collect();
        assert!(!savings.is_empty(), "{period}");
        assert_eq!(serde_json::json!(savings), want["savings"], "{period}");
        // The figures are there to compare: the sample lake has them all.
        let spend = &got["spend"][0];
        assert_eq!(spend["daily"].as_array().unwrap().len(), if period == "2026-01" { 31 } else { 28 });
        assert!(spend["modules"].as_array().unwrap().len() >= 4, "{spend}");
        assert_eq!(spend["top_resources"].as_array().unwrap().len(), 15);
        assert!(spend["projects"].as_array().unwrap().len() >= 3, "{spend}");
        assert!(!got["package_utilization"].as_array().unwrap().is_empty());
    }
    // February closes with accounts in arrears.
    assert!(!figures("2026-02").0["arrears"].as_array().unwrap().is_empty());
}
