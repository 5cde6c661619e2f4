//! The SQL peer (sql/peer_bill_run.sql, run by DuckDB) and billrun agree to the cent
//! on a pay-per-use lake: an independent implementation of pricing, tiers, rounding
//! and truncation, and the like-for-like basis of the benchmark.

use crate::lakes::billrun;
use std::path::Path;
use std::process::Command;

#[test]
fn the_sql_peer_bills_exactly_what_billrun_bills() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let st = billrun()
        .args(["generate", "--ppu-only", "--no-anomalies", "--accounts", "10", "--resources", "4", "--days", "6", "--out"])
        .arg(&lake)
        .status()
        .unwrap();
    assert!(st.success());
    let st = billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).status().unwrap();
    assert_eq!(st.code(), Some(0));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let peer = tmp.path().join("peer");
    let out = Command::new(&py).arg(root.join("benches/duckdb_peer.py")).arg(&lake).arg("2026-01").arg(&peer).arg("2").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let check = format!(
        r#"
import duckdb, json
c = duckdb.connect()
L, P = {lake:?}, {peer:?}
q = lambda s: c.execute(s.replace('@LAKE@/', L + '/').replace('@PEER@/', P + '/')).fetchone()[0]
print(json.dumps({{
  "invoices": q("select count(*) from read_parquet('@LAKE@/bills/invoices/*/*.parquet')"),
  "invoice_mismatches": q("select count(*) from read_parquet('@LAKE@/bills/invoices/*/*.parquet') i full join read_parquet('@PEER@/invoices.parquet') p using (account_id) where i.usage_charges is distinct from p.usage_charges or i.truncated_amount is distinct from p.truncated_amount"),
  "settlements": q("select count(*) from read_parquet('@PEER@/settlements.parquet')"),
  "settlement_mismatches": q("select count(*) from read_parquet('@LAKE@/bills/settlements/*/*.parquet') s full join read_parquet('@PEER@/settlements.parquet') p on s.account_id = p.account_id and s.hour_start = p.hour_start where p.deduction_8 is null or s.deduction is null or cast(s.deduction * 100000000 as hugeint) <> p.deduction_8"),
  "lines": q("select count(*) from read_parquet('@PEER@/lines.parquet')"),
  "line_mismatches": q("select count(*) from (select x_UsageRecordId as record_id, cast(coalesce(x_TierStart, 0) * 36000000000000000000 as hugeint) as tier_u, cast(BilledCost * 100000000 as hugeint) as amount_8 from read_parquet('@LAKE@/bills/line_items/*/*.parquet') where ChargeCategory = 'Usage') b full join read_parquet('@PEER@/lines.parquet') p using (record_id, tier_u) where b.amount_8 is distinct from p.amount_8"),
}}))
"#,
        lake = lake.display().to_string(),
        peer = peer.display().to_string()
    );
    let out = Command::new(&py).args(["-c", &check]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["invoices"], 10, "{got}");
    assert!(got["settlements"].as_u64().unwrap() > 1000, "{got}");
    assert!(got["lines"].as_u64().unwrap() > 5000, "{got}");
    assert_eq!(got["invoice_mismatches"], 0, "{got}");
    assert_eq!(got["settlement_mismatches"], 0, "{got}");
    assert_eq!(got["line_mismatches"], 0, "{got}");
}
