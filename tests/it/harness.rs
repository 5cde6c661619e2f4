//! Scenario lakes built row by row, closed through the library, and their outputs
//! read back as plain values for assertions.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use billrun::decimal::Dec;
use billrun::generate::usage::{usage_batch, Row};
use billrun::generate::{accounts_batch, packages_batch, payments_batch, prices_batch, put_parquet, subscriptions_batch};
use billrun::jobs::close::{self, CloseJob, CloseReport};
use billrun::jobs::JobError;
use billrun::lake::store::Lake;
use billrun::model::*;
use billrun::time::{parse_hour, partition_of, Micros, Period, HOUR};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn d(s: &str) -> Dec {
    Dec::parse(s).unwrap_or_else(|| panic!("bad decimal {s}"))
}

/// `2026-01-05T10:00` or `2026-01-05T10:00:30` (UTC) → µs.
pub fn t(s: &str) -> Micros {
    let (date, time) = s.split_once('T').expect("T");
    let mut parts = time.split(':');
    let h = parts.next().unwrap();
    let m: i64 = parts.next().unwrap_or("0").parse().unwrap();
    let sec: i64 = parts.next().unwrap_or("0").parse().unwrap();
    parse_hour(&format!("{date}T{h}")).unwrap() + m * 60_000_000 + sec * 1_000_000
}

pub const R1: &str = "r1";

pub struct Scenario {
    pub dir: tempfile::TempDir,
    pub prices: Vec<PriceRow>,
    pub accounts: Vec<Account>,
    pub payments: Vec<Payment>,
    pub packages: Vec<Package>,
    pub subscriptions: Vec<Subscription>,
    pub offers: Vec<billrun::cost::recommend::Offer>,
    /// Rows by file path (relative to the lake).
    pub files: BTreeMap<String, Vec<Row>>,
}

impl Scenario {
    pub fn new() -> Scenario {
        Scenario {
            dir: tempfile::tempdir().unwrap(),
            prices: Vec::new(),
            accounts: Vec::new(),
            payments: Vec::new(),
            packages: Vec::new(),
            subscriptions: Vec::new(),
            offers: Vec::new(),
            files: BTreeMap::new(),
        }
    }

    pub fn lake(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    /// A pay-per-use price from 2025-01-01, open-ended.
    pub fn price(&mut self, sku: &str, unit: PricingUnit, price: &str, tier: &str) -> &mut Self {
        self.price_in(sku, R1, "USD", unit, price, tier, "2025-01-01T00:00", None)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn price_in(&mut self, sku: &str, region: &str, cur: &str, unit: PricingUnit, price: &str, tier: &str, from: &str, to: Option<&str>) -> &mut Self {
        let mode = match unit {
            PricingUnit::NodeMonth | PricingUnit::NodeYear => BillingMode::YearlyMonthly,
            _ => BillingMode::PayPerUse,
        };
        let row = self.prices.len();
        self.prices.push(PriceRow {
            sku: sku.into(),
            region: region.into(),
            billing_mode: mode,
            pricing_unit: unit,
            currency: cur.into(),
            unit_price: d(price),
            tier_start: d(tier),
            effective_from: t(from),
            effective_to: to.map(t),
            billing_item: BillingItem::Compute,
            description: None,
            row,
        });
        self
    }

    pub fn account(&mut self, id: &str, balance: &str) -> &mut Account {
        self.accounts.push(Account {
            account_id: id.into(),
            account_name: format!("{id} Ltd"),
            currency: "USD".into(),
            opening_balance: d(balance),
            balance_as_of: t("2025-12-01T00:00"),
            grace_days: 15,
            retention_days: 15,
            balance_alert_threshold: None,
        });
        self.accounts.last_mut().unwrap()
    }

    pub fn payment(&mut self, id: &str, account: &str, at: &str, amount: &str) -> &mut Self {
        self.payments.push(Payment { payment_id: id.into(), account_id: account.into(), paid_at: t(at), amount: d(amount) });
        self
    }

    #[allow(clippy::too_many_arguments)]
    pub fn package(&mut self, id: &str, account: &str, sku: &str, hours: &str, price: &str, from: &str, expires: &str) -> &mut Package {
        self.packages.push(Package {
            package_id: id.into(),
            account_id: account.into(),
            region: R1.into(),
            sku: sku.into(),
            package_count: 1,
            hours_per_package: d(hours),
            price: d(price),
            purchased_at: t(from),
            effective_from: t(from),
            expires_at: t(expires),
            reset_period: ResetPeriod::None,
            alert_threshold_pct: None,
        });
        self.packages.last_mut().unwrap()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn subscription(&mut self, id: &str, account: &str, resource: &str, sku: &str, nodes: i32, months: i32, start: &str) -> &mut Subscription {
        let s = t(start);
        self.subscriptions.push(Subscription {
            subscription_id: id.into(),
            account_id: account.into(),
            region: R1.into(),
            resource_id: resource.into(),
            sku: sku.into(),
            nodes,
            unit_count: 1,
            term_unit: TermUnit::Month,
            term_count: months,
            ordered_at: s,
            start_at: s,
            end_at: billrun::time::add_months(s, months).unwrap(),
            renewal_of: None,
        });
        self.subscriptions.last_mut().unwrap()
    }

    /// A compute usage row of `nodes` nodes of a public pool, in its own partition.
    pub fn usage(&mut self, record_id: &str, account: &str, sku: &str, start: &str, end: &str, nodes: i32) -> &mut Row {
        let row = Row {
            record_id: Some(record_id.into()),
            account_id: Some(account.into()),
            region: Some(R1.into()),
            resource_id: Some(format!("res-{record_id}")),
            resource_name: None,
            module: Some("training".into()),
            sku: Some(sku.into()),
            unit_count: Some(1),
            pool_type: Some("public".into()),
            pool_id: None,
            nodes: Some(nodes),
            quantity: Some(Dec::from_int(1)),
            start: Some(t(start)),
            end: Some(t(end)),
            enterprise_project: None,
            tags: None,
        };
        let file = Self::partition_file(t(start), "part-0.parquet");
        let rows = self.files.entry(file).or_default();
        rows.push(row);
        rows.last_mut().unwrap()
    }

    pub fn partition_file(start: Micros, name: &str) -> String {
        let (date, hour) = partition_of(billrun::time::hour_floor(start)).unwrap();
        format!("usage/date={date}/hour={hour:02}/{name}")
    }

    /// Places a row in a given file.
    pub fn row_in(&mut self, file: &str, row: Row) {
        self.files.entry(file.to_string()).or_default().push(row);
    }

    pub fn write(&self) {
        let lake = Lake::open(self.lake().to_str().unwrap(), true).unwrap();
        let mut prices = self.prices.clone();
        for (i, p) in prices.iter_mut().enumerate() {
            p.row = i;
        }
        put_parquet(&lake, "catalog/prices.parquet", prices_batch(&prices)).unwrap();
        put_parquet(&lake, "accounts/accounts.parquet", accounts_batch(&self.accounts)).unwrap();
        put_parquet(&lake, "accounts/payments.parquet", payments_batch(&self.payments)).unwrap();
        put_parquet(&lake, "inventory/packages.parquet", packages_batch(&self.packages)).unwrap();
        put_parquet(&lake, "inventory/subscriptions.parquet", subscriptions_batch(&self.subscriptions)).unwrap();
        if !self.offers.is_empty() {
            put_parquet(&lake, "catalog/package_offers.parquet", billrun::generate::offers_batch(&self.offers)).unwrap();
        }
        for (file, rows) in &self.files {
            put_parquet(&lake, file, usage_batch(rows)).unwrap();
        }
    }

    pub fn close(&self, period: &str) -> Result<Outputs, JobError> {
        self.write();
        let lake = self.lake().to_str().unwrap().to_string();
        let report =
            close::run(&CloseJob { cache_bytes: 1 << 30, reason: "test".into(), ..CloseJob::new(lake.clone(), lake, Period::parse(period).unwrap()) })?;
        Ok(Outputs::read(&self.lake(), period, report))
    }
}

/// The tables of one closed period.
pub struct Outputs {
    pub report: CloseReport,
    pub line_items: Vec<RecordBatch>,
    pub invoices: Vec<RecordBatch>,
    pub settlements: Vec<RecordBatch>,
    pub alerts: Vec<RecordBatch>,
    pub rejected: Vec<RecordBatch>,
    pub ledger: Vec<RecordBatch>,
    pub status: Vec<RecordBatch>,
    pub deductions: Vec<RecordBatch>,
    pub allocation: Vec<RecordBatch>,
    pub analysis: Vec<RecordBatch>,
}

pub fn read_table(lake: &Path, table: &str, period: &str) -> Vec<RecordBatch> {
    let p = lake.join(format!("{table}/billing_period={period}/part-0.parquet"));
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    billrun::lake::inputs::decode_parquet("out", bytes.into()).unwrap()
}

impl Outputs {
    pub fn read(lake: &Path, period: &str, report: CloseReport) -> Outputs {
        Outputs {
            report,
            line_items: read_table(lake, "bills/line_items", period),
            invoices: read_table(lake, "bills/invoices", period),
            settlements: read_table(lake, "bills/settlements", period),
            alerts: read_table(lake, "bills/alerts", period),
            rejected: read_table(lake, "bills/rejected", period),
            ledger: read_table(lake, "bills/package_ledger", period),
            status: read_table(lake, "bills/account_status", period),
            deductions: read_table(lake, "bills/package_deductions", period),
            allocation: read_table(lake, "cost/allocation", period),
            analysis: read_table(lake, "cost/analysis", period),
        }
    }

    /// One column of a table as display strings (decimals trimmed, nulls "∅").
    #[allow(dead_code)]
    pub fn col(batches: &[RecordBatch], name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for b in batches {
            let a = b.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"));
            for i in 0..a.len() {
                out.push(cell(a.as_ref(), i));
            }
        }
        out
    }

    /// Rows of a table as maps from column name to display string.
    pub fn rows(batches: &[RecordBatch]) -> Vec<BTreeMap<String, String>> {
        let mut out = Vec::new();
        for b in batches {
            for i in 0..b.num_rows() {
                let mut m = BTreeMap::new();
                for (f, a) in b.schema().fields().iter().zip(b.columns()) {
                    m.insert(f.name().clone(), cell(a.as_ref(), i));
                }
                out.push(m);
            }
        }
        out
    }

    pub fn invoice(&self, account: &str) -> BTreeMap<String, String> {
        Self::rows(&self.invoices).into_iter().find(|r| r["account_id"] == account).expect("invoice")
    }

    pub fn lines_of(&self, account: &str) -> Vec<BTreeMap<String, String>> {
        Self::rows(&self.line_items).into_iter().filter(|r| r["BillingAccountId"] == account).collect()
    }

    /// `(record_id, reason)` of every rejected row, sorted.
    pub fn rejections(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = Self::rows(&self.rejected).into_iter().map(|r| (r["record_id"].clone(), r["reason"].clone())).collect();
        v.sort();
        v
    }

    pub fn reason_of(&self, record_id: &str) -> Option<String> {
        self.rejections().into_iter().find(|(r, _)| r == record_id).map(|(_, why)| why)
    }
}

fn cell(a: &dyn Array, i: usize) -> String {
    use arrow_schema::DataType::*;
    if a.is_null(i) {
        return "∅".into();
    }
    match a.data_type() {
        Utf8 => a.as_string::<i32>().value(i).to_string(),
        Int32 => a.as_primitive::<arrow_array::types::Int32Type>().value(i).to_string(),
        Int64 => a.as_primitive::<arrow_array::types::Int64Type>().value(i).to_string(),
        Boolean => a.as_boolean().value(i).to_string(),
        Decimal128(_, s) => Dec::from_scaled(a.as_primitive::<arrow_array::types::Decimal128Type>().value(i), *s).unwrap().to_string(),
        Timestamp(_, _) => billrun::time::format_ts(a.as_primitive::<arrow_array::types::TimestampMicrosecondType>().value(i)),
        List(_) => format!("list[{}]", a.as_list::<i32>().value(i).len()),
        other => format!("<{other}>"),
    }
}

pub fn ts(s: &str) -> String {
    billrun::time::format_ts(t(s))
}

pub const H: Micros = HOUR;

/// Every file under `dir` whose relative path `keep` accepts (relative path → bytes),
/// sorted; nothing when `dir` does not exist.
pub fn files_under(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                if keep(&rel) {
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
    }
    out.sort();
    out
}
