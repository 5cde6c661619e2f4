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
    for id in ["daily-trend-usd", "composition-usd", "top-resources-usd", "package-utilization", "arrears"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "chart {id} is on the page");
    }
    // The daily trend has one column per day of January with cost.
    let daily = dom.split("id=\"daily-trend-usd\"").nth(1).unwrap().split("</svg>").next().unwrap();
    assert_eq!(daily.matches("<rect").count(), 31);
    let top = dom.split("id=\"top-resources-usd\"").nth(1).unwrap().split("</svg>").next().unwrap();
    assert_eq!(top.matches("<rect").count(), 15);
}
