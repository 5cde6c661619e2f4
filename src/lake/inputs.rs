//! Reading the input lake: the reference tables (catalog, inventory, accounts,
//! payments) into validated structs, and hourly usage files into column chunks.
//!
//! A reference table that breaks the contract refuses the whole run with a message
//! naming the file, the row and the field: a bill computed from a guessed price or a
//! half-read inventory is worse than no bill. A usage row that breaks the contract is
//! not a refusal: it becomes a rejected row (see `rules::checks`).

use super::columns::{ArrowColumns, ColumnProblem, DecCol, IntCol, StrCol, TsCol};
use super::store::{Lake, LakeError};
use crate::decimal::Dec;
pub use crate::model::Reference;
use crate::model::*;
pub use crate::rules::batch::{RowKeys, UsageBatch};
use crate::time::{add_months, Micros, Period, HOUR};
use arrow_array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub const PRICES: &str = "catalog/prices.parquet";
pub const PACKAGES: &str = "inventory/packages.parquet";
pub const SUBSCRIPTIONS: &str = "inventory/subscriptions.parquet";
pub const ACCOUNTS: &str = "accounts/accounts.parquet";
pub const PAYMENTS: &str = "accounts/payments.parquet";
/// Optional: packages on sale, for the package recommendation.
pub const OFFERS: &str = "catalog/package_offers.parquet";

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: not a readable Parquet file: {why}")]
    Corrupt { file: String, why: String },
    #[error("{file}: column '{column}' is missing")]
    MissingColumn { file: String, column: String },
    #[error("{file}: column '{column}' is {found}, expected {expected}")]
    WrongType { file: String, column: String, found: String, expected: &'static str },
    #[error("{file} row {row}: field '{field}': {why}")]
    Field { file: String, row: usize, field: &'static str, why: String },
    #[error("{file}: {why}")]
    Table { file: String, why: String },
    #[error("{file}: required input file is missing from lake {lake}")]
    MissingFile { file: String, lake: String },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{0}")]
    Overflow(#[from] crate::decimal::Overflow),
}

pub type Result<T> = std::result::Result<T, InputError>;

fn col_err(file: &str, column: &str, p: ColumnProblem) -> InputError {
    match p {
        ColumnProblem::Missing => InputError::MissingColumn { file: file.into(), column: column.into() },
        ColumnProblem::WrongType { found, expected } => InputError::WrongType { file: file.into(), column: column.into(), found, expected },
    }
}

/// Decodes a whole Parquet file.
/// A file that decodes into garbage must be a refusal naming it, never a crash: the
/// decoder runs under `catch_unwind`, so even a decoder bug on malformed bytes becomes
/// an error.
pub fn decode_parquet(file: &str, bytes: Bytes) -> Result<Vec<RecordBatch>> {
    decode_parquet_with(file, bytes, |b| b)
}

/// [`decode_parquet`] with the reader configured first (a projection, a selection of
/// rows), under the same guard.
pub fn decode_parquet_with(
    file: &str,
    bytes: Bytes,
    configure: impl FnOnce(ParquetRecordBatchReaderBuilder<Bytes>) -> ParquetRecordBatchReaderBuilder<Bytes>,
) -> Result<Vec<RecordBatch>> {
    decode_parquet_keyed(file, bytes, &[], false, configure)
}

/// [`decode_parquet_with`] for usage files: strings read as string views (see
/// [`decode_parquet_keyed`]).
pub fn decode_usage_with(
    file: &str,
    bytes: Bytes,
    configure: impl FnOnce(ParquetRecordBatchReaderBuilder<Bytes>) -> ParquetRecordBatchReaderBuilder<Bytes>,
) -> Result<Vec<RecordBatch>> {
    decode_parquet_keyed(file, bytes, &[], true, configure)
}

/// The usage columns of few distinct values (a file holds an hour of a region): read
/// as dictionaries, their strings are decoded once per column chunk instead of once
/// per row.
const USAGE_KEYED: [&str; 8] = ["account_id", "region", "module", "sku", "pool_type", "pool_id", "enterprise_project", "tags"];

/// [`decode_parquet_with`], the string columns named in `keyed` read as
/// `Dictionary(Int32, Utf8)`, and the others as plain strings, or as string views
/// (`Utf8View`) when `views`: a PLAIN page's strings are then pointed into, not
/// copied out one by one.
fn decode_parquet_keyed(
    file: &str,
    bytes: Bytes,
    keyed: &[&str],
    views: bool,
    configure: impl FnOnce(ParquetRecordBatchReaderBuilder<Bytes>) -> ParquetRecordBatchReaderBuilder<Bytes>,
) -> Result<Vec<RecordBatch>> {
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    let corrupt = |e: &dyn std::fmt::Display| InputError::Corrupt { file: file.into(), why: e.to_string() };
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || -> std::result::Result<Vec<RecordBatch>, String> {
        let mut meta = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).map_err(|e| e.to_string())?;
        let schema = meta.schema().clone();
        // A column with no value at all (its statistics say so) is left plain: its
        // dictionary is empty, and the decoder would then hash every null instead.
        let all_null = |name: &str| {
            let groups = meta.metadata().row_groups();
            !groups.is_empty()
                && groups.iter().all(|rg| {
                    rg.columns().iter().find(|c| c.column_path().string() == name).and_then(|c| c.statistics()).and_then(|s| s.null_count_opt())
                        == Some(rg.num_rows() as u64)
                })
        };
        // The type each string column is read as, where it is not the file's own: a
        // keyed one as `Dictionary(Int32, Utf8)`; any other as a string view when
        // `views`, else plain if the writer stored it as an Arrow dictionary (a pandas
        // category, say).
        let is_str = |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
        let hint = |f: &Field| -> Option<DataType> {
            let dict = matches!(f.data_type(), DataType::Dictionary(_, v) if is_str(v));
            if !dict && !is_str(f.data_type()) {
                return None;
            }
            if keyed.contains(&f.name().as_str()) && !all_null(f.name()) {
                Some(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)))
            } else if views {
                Some(DataType::Utf8View)
            } else {
                dict.then_some(DataType::Utf8)
            }
        };
        if schema.fields().iter().any(|f| hint(f).is_some_and(|t| &t != f.data_type())) {
            let fields: Vec<Field> = schema
                .fields()
                .iter()
                .map(|f| match hint(f) {
                    Some(t) => f.as_ref().clone().with_data_type(t),
                    None => f.as_ref().clone(),
                })
                .collect();
            let hinted = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
            meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), ArrowReaderOptions::new().with_schema(hinted)).map_err(|e| e.to_string())?;
        }
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, meta);
        let reader = configure(builder).with_batch_size(64 * 1024).build().map_err(|e| e.to_string())?;
        reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| e.to_string())
    }));
    match decoded {
        Ok(Ok(batches)) => Ok(batches),
        Ok(Err(why)) => Err(corrupt(&why)),
        Err(_) => Err(corrupt(&"the Parquet decoder failed on malformed data")),
    }
}

/// Field access for one row of a reference table, with errors that name it.
struct Cells<'a> {
    file: &'a str,
    row: usize,
}

impl Cells<'_> {
    fn bad(&self, field: &'static str, why: impl Into<String>) -> InputError {
        InputError::Field { file: self.file.into(), row: self.row, field, why: why.into() }
    }
    fn str(&self, c: &StrCol, i: usize, field: &'static str) -> Result<String> {
        match c.get(i) {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            Some(_) => Err(self.bad(field, "empty")),
            None => Err(self.bad(field, "null")),
        }
    }
    fn opt_str(&self, c: &StrCol, i: usize) -> Option<String> {
        c.get(i).map(str::to_string)
    }
    fn dec(&self, c: &DecCol, i: usize, field: &'static str) -> Result<Dec> {
        self.opt_dec(c, i, field)?.ok_or_else(|| self.bad(field, "null"))
    }
    fn opt_dec(&self, c: &DecCol, i: usize, field: &'static str) -> Result<Option<Dec>> {
        match c.get(i) {
            None => Ok(None),
            Some(Ok(d)) => Ok(Some(d)),
            Some(Err(_)) => Err(self.bad(field, "does not fit decimal(38,10)")),
        }
    }
    fn int(&self, c: &IntCol, i: usize, field: &'static str) -> Result<i32> {
        let v = c.get(i).ok_or_else(|| self.bad(field, "null"))?;
        i32::try_from(v).map_err(|_| self.bad(field, format!("{v} does not fit int32")))
    }
    fn opt_int(&self, c: &IntCol, i: usize, field: &'static str) -> Result<Option<i32>> {
        match c.get(i) {
            None => Ok(None),
            Some(v) => i32::try_from(v).map(Some).map_err(|_| self.bad(field, format!("{v} does not fit int32"))),
        }
    }
    fn ts(&self, c: &TsCol, i: usize, field: &'static str) -> Result<Micros> {
        self.opt_ts(c, i, field)?.ok_or_else(|| self.bad(field, "null"))
    }
    fn opt_ts(&self, c: &TsCol, i: usize, field: &'static str) -> Result<Option<Micros>> {
        match c.get(i) {
            None => Ok(None),
            Some(Ok(t)) => Ok(Some(t)),
            Some(Err(_)) => Err(self.bad(field, "timestamp out of range")),
        }
    }
    fn coded<T>(&self, c: &StrCol, i: usize, field: &'static str, parse: fn(&str) -> Option<T>) -> Result<T> {
        let s = self.str(c, i, field)?;
        parse(&s).ok_or_else(|| self.bad(field, format!("unknown value '{s}'")))
    }
}

macro_rules! cols {
    ($file:expr, $batch:expr, $($name:ident : $ty:ident),+ $(,)?) => {
        $(let $name = $ty::of($batch, stringify!($name)).map_err(|p| col_err($file, stringify!($name), p))?;)+
    };
}

fn read_table(lake: &Lake, rel: &str, required: bool) -> Result<Option<Vec<RecordBatch>>> {
    match lake.get_opt(rel)? {
        Some(bytes) => Ok(Some(decode_parquet(rel, bytes)?)),
        None if required => Err(InputError::MissingFile { file: rel.into(), lake: lake.url().into() }),
        None => Ok(None),
    }
}

pub fn read_prices(lake: &Lake) -> Result<Vec<PriceRow>> {
    let file = PRICES;
    let mut out = Vec::new();
    let mut row = 0usize;
    for b in read_table(lake, file, true)?.unwrap_or_default() {
        cols!(file, &b, sku: StrCol, region: StrCol, billing_mode: StrCol, pricing_unit: StrCol,
            currency: StrCol, unit_price: DecCol, tier_start: DecCol, effective_from: TsCol,
            effective_to: TsCol, billing_item: StrCol, description: StrCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let p = PriceRow {
                sku: c.str(&sku, i, "sku")?,
                region: c.str(&region, i, "region")?,
                billing_mode: c.coded(&billing_mode, i, "billing_mode", BillingMode::parse)?,
                pricing_unit: c.coded(&pricing_unit, i, "pricing_unit", PricingUnit::parse)?,
                currency: c.str(&currency, i, "currency")?,
                unit_price: c.dec(&unit_price, i, "unit_price")?,
                tier_start: c.dec(&tier_start, i, "tier_start")?,
                effective_from: c.ts(&effective_from, i, "effective_from")?,
                effective_to: c.opt_ts(&effective_to, i, "effective_to")?,
                billing_item: c.coded(&billing_item, i, "billing_item", BillingItem::parse)?,
                description: c.opt_str(&description, i),
                row,
            };
            let ppu_unit = matches!(p.pricing_unit, PricingUnit::NodeHour | PricingUnit::GbHour | PricingUnit::Count | PricingUnit::Gb);
            if ppu_unit != (p.billing_mode == BillingMode::PayPerUse) {
                return Err(c.bad("pricing_unit", format!("'{}' is not a unit of {}", p.pricing_unit, p.billing_mode)));
            }
            if p.unit_price.is_negative() {
                return Err(c.bad("unit_price", format!("negative price {}", p.unit_price)));
            }
            if p.tier_start.is_negative() {
                return Err(c.bad("tier_start", "negative"));
            }
            if p.effective_from.rem_euclid(HOUR) != 0 {
                return Err(c.bad("effective_from", "not on an hour boundary"));
            }
            if let Some(to) = p.effective_to {
                if to <= p.effective_from {
                    return Err(c.bad("effective_to", "not after effective_from"));
                }
                if to.rem_euclid(HOUR) != 0 {
                    return Err(c.bad("effective_to", "not on an hour boundary"));
                }
            }
            out.push(p);
            row += 1;
        }
    }
    check_price_overlaps(&out)?;
    Ok(out)
}

/// For one `(sku, region, billing_mode, pricing_unit, currency, tier_start)`, effective
/// intervals must not overlap; the catalog is refused as a whole otherwise.
fn check_price_overlaps(prices: &[PriceRow]) -> Result<()> {
    let mut groups: BTreeMap<(&str, &str, BillingMode, PricingUnit, &str, Dec), Vec<&PriceRow>> = BTreeMap::new();
    for p in prices {
        groups.entry((&p.sku, &p.region, p.billing_mode, p.pricing_unit, &p.currency, p.tier_start)).or_default().push(p);
    }
    let mut clashes = Vec::new();
    for rows in groups.values_mut() {
        rows.sort_by_key(|p| (p.effective_from, p.row));
        for w in rows.windows(2) {
            if w[0].effective_to.is_none_or(|e| e > w[1].effective_from) {
                clashes.push(format!("rows {} and {} ({} {} {} tier {})", w[0].row, w[1].row, w[0].sku, w[0].region, w[0].currency, w[0].tier_start));
            }
        }
    }
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(InputError::Table { file: PRICES.into(), why: format!("overlapping effective intervals: {}", clashes.join("; ")) })
    }
}

/// `defaults`: grace and retention days of accounts that leave them null.
pub fn read_accounts(lake: &Lake, defaults: (i32, i32)) -> Result<Vec<Account>> {
    let file = ACCOUNTS;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut row = 0usize;
    for b in read_table(lake, file, true)?.unwrap_or_default() {
        cols!(file, &b, account_id: StrCol, account_name: StrCol, currency: StrCol,
            opening_balance: DecCol, balance_as_of: TsCol, grace_days: IntCol,
            retention_days: IntCol, balance_alert_threshold: DecCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let a = Account {
                account_id: c.str(&account_id, i, "account_id")?,
                account_name: c.opt_str(&account_name, i).unwrap_or_default(),
                currency: c.str(&currency, i, "currency")?,
                opening_balance: c.dec(&opening_balance, i, "opening_balance")?,
                balance_as_of: c.ts(&balance_as_of, i, "balance_as_of")?,
                grace_days: c.opt_int(&grace_days, i, "grace_days")?.unwrap_or(defaults.0),
                retention_days: c.opt_int(&retention_days, i, "retention_days")?.unwrap_or(defaults.1),
                balance_alert_threshold: c.opt_dec(&balance_alert_threshold, i, "balance_alert_threshold")?,
            };
            if a.grace_days < 0 || a.grace_days > 3650 {
                return Err(c.bad("grace_days", format!("{} is not 0..=3650", a.grace_days)));
            }
            if a.retention_days < 0 || a.retention_days > 3650 {
                return Err(c.bad("retention_days", format!("{} is not 0..=3650", a.retention_days)));
            }
            if !seen.insert(a.account_id.clone()) {
                return Err(c.bad("account_id", format!("'{}' appears twice", a.account_id)));
            }
            out.push(a);
            row += 1;
        }
    }
    Ok(out)
}

pub fn read_payments(lake: &Lake, accounts: &HashMap<&str, &Account>) -> Result<Vec<Payment>> {
    let file = PAYMENTS;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut row = 0usize;
    for b in read_table(lake, file, false)?.unwrap_or_default() {
        cols!(file, &b, payment_id: StrCol, account_id: StrCol, paid_at: TsCol, amount: DecCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let p = Payment {
                payment_id: c.str(&payment_id, i, "payment_id")?,
                account_id: c.str(&account_id, i, "account_id")?,
                paid_at: c.ts(&paid_at, i, "paid_at")?,
                amount: c.dec(&amount, i, "amount")?,
            };
            if p.amount <= Dec::ZERO {
                return Err(c.bad("amount", format!("{} is not positive", p.amount)));
            }
            if !accounts.contains_key(p.account_id.as_str()) {
                return Err(c.bad("account_id", format!("unknown account '{}'", p.account_id)));
            }
            if !seen.insert(p.payment_id.clone()) {
                return Err(c.bad("payment_id", format!("'{}' appears twice", p.payment_id)));
            }
            out.push(p);
            row += 1;
        }
    }
    Ok(out)
}

pub fn read_packages(lake: &Lake, accounts: &HashMap<&str, &Account>) -> Result<Vec<Package>> {
    let file = PACKAGES;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut row = 0usize;
    for b in read_table(lake, file, false)?.unwrap_or_default() {
        cols!(file, &b, package_id: StrCol, account_id: StrCol, region: StrCol, sku: StrCol,
            package_count: IntCol, hours_per_package: DecCol, price: DecCol, purchased_at: TsCol,
            effective_from: TsCol, expires_at: TsCol, reset_period: StrCol, alert_threshold_pct: DecCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let p = Package {
                package_id: c.str(&package_id, i, "package_id")?,
                account_id: c.str(&account_id, i, "account_id")?,
                region: c.str(&region, i, "region")?,
                sku: c.str(&sku, i, "sku")?,
                package_count: c.int(&package_count, i, "package_count")?,
                hours_per_package: c.dec(&hours_per_package, i, "hours_per_package")?,
                price: c.dec(&price, i, "price")?,
                purchased_at: c.ts(&purchased_at, i, "purchased_at")?,
                effective_from: c.ts(&effective_from, i, "effective_from")?,
                expires_at: c.ts(&expires_at, i, "expires_at")?,
                reset_period: c.coded(&reset_period, i, "reset_period", ResetPeriod::parse)?,
                alert_threshold_pct: c.opt_dec(&alert_threshold_pct, i, "alert_threshold_pct")?,
            };
            if p.package_count < 1 {
                return Err(c.bad("package_count", "must be at least 1"));
            }
            if p.hours_per_package <= Dec::ZERO {
                return Err(c.bad("hours_per_package", "must be positive"));
            }
            if p.price.is_negative() || p.price.places_used() > 2 {
                return Err(c.bad("price", format!("{} is not an amount payable in cents", p.price)));
            }
            if p.expires_at <= p.effective_from {
                return Err(c.bad("expires_at", "not after effective_from"));
            }
            if let Some(pct) = p.alert_threshold_pct {
                if pct.is_negative() || pct > Dec::from_int(100) {
                    return Err(c.bad("alert_threshold_pct", format!("{pct} is not 0..=100")));
                }
            }
            if !accounts.contains_key(p.account_id.as_str()) {
                return Err(c.bad("account_id", format!("unknown account '{}'", p.account_id)));
            }
            if !seen.insert(p.package_id.clone()) {
                return Err(c.bad("package_id", format!("'{}' appears twice", p.package_id)));
            }
            out.push(p);
            row += 1;
        }
    }
    Ok(out)
}

pub fn read_subscriptions(lake: &Lake) -> Result<Vec<Subscription>> {
    let file = SUBSCRIPTIONS;
    let mut out: Vec<Subscription> = Vec::new();
    let mut seen = HashSet::new();
    let mut row = 0usize;
    for b in read_table(lake, file, false)?.unwrap_or_default() {
        cols!(file, &b, subscription_id: StrCol, account_id: StrCol, region: StrCol,
            resource_id: StrCol, sku: StrCol, nodes: IntCol, unit_count: IntCol, term_unit: StrCol,
            term_count: IntCol, ordered_at: TsCol, start_at: TsCol, end_at: TsCol, renewal_of: StrCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let s = Subscription {
                subscription_id: c.str(&subscription_id, i, "subscription_id")?,
                account_id: c.str(&account_id, i, "account_id")?,
                region: c.str(&region, i, "region")?,
                resource_id: c.str(&resource_id, i, "resource_id")?,
                sku: c.str(&sku, i, "sku")?,
                nodes: c.int(&nodes, i, "nodes")?,
                unit_count: c.int(&unit_count, i, "unit_count")?,
                term_unit: c.coded(&term_unit, i, "term_unit", TermUnit::parse)?,
                term_count: c.int(&term_count, i, "term_count")?,
                ordered_at: c.ts(&ordered_at, i, "ordered_at")?,
                start_at: c.ts(&start_at, i, "start_at")?,
                end_at: c.ts(&end_at, i, "end_at")?,
                renewal_of: c.opt_str(&renewal_of, i).filter(|s| !s.is_empty()),
            };
            for (v, f) in [(s.nodes, "nodes"), (s.unit_count, "unit_count"), (s.term_count, "term_count")] {
                if v < 1 {
                    return Err(c.bad(f, "must be at least 1"));
                }
            }
            let months = match s.term_unit {
                TermUnit::Month => s.term_count,
                TermUnit::Year => s.term_count.saturating_mul(12),
            };
            if add_months(s.start_at, months) != Some(s.end_at) {
                return Err(c.bad("end_at", format!("is not start_at plus {} {}(s)", s.term_count, s.term_unit)));
            }
            if !seen.insert(s.subscription_id.clone()) {
                return Err(c.bad("subscription_id", format!("'{}' appears twice", s.subscription_id)));
            }
            out.push(s);
            row += 1;
        }
    }
    // A renewal must name a subscription of the same resource and start where it ends.
    let by_id: HashMap<&str, (usize, &Subscription)> = out.iter().enumerate().map(|(i, s)| (s.subscription_id.as_str(), (i, s))).collect();
    for (row, s) in out.iter().enumerate() {
        if let Some(of) = &s.renewal_of {
            let c = Cells { file, row };
            let Some((_, base)) = by_id.get(of.as_str()) else {
                return Err(c.bad("renewal_of", format!("unknown subscription '{of}'")));
            };
            if base.resource_id != s.resource_id || base.account_id != s.account_id || base.region != s.region {
                return Err(c.bad("renewal_of", format!("'{of}' is for another resource")));
            }
            if s.start_at != base.end_at {
                return Err(c.bad("start_at", format!("a renewal starts at the end_at of '{of}'")));
            }
        }
    }
    Ok(out)
}

/// Grace and retention days of the rules, for accounts that leave them null.
pub const DEFAULT_WINDOWS: (i32, i32) = (15, 15);

pub fn read_reference(lake: &Lake, windows: (i32, i32)) -> Result<Reference> {
    let prices = read_prices(lake)?;
    let accounts = read_accounts(lake, windows)?;
    let (payments, packages) = {
        let by_id: HashMap<&str, &Account> = accounts.iter().map(|a| (a.account_id.as_str(), a)).collect();
        (read_payments(lake, &by_id)?, read_packages(lake, &by_id)?)
    };
    let subscriptions = read_subscriptions(lake)?;
    Ok(Reference { prices, accounts, payments, packages, subscriptions })
}

/// A batch of usage rows as the lake reads them: the core's [`UsageBatch`] over
/// Arrow columns.
pub type UsageChunk = UsageBatch<ArrowColumns>;

/// A usage file of the lake, in the order the rules read files (by path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageFile {
    pub path: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub partition_hour: Micros,
}

/// The usage files whose partitions lie in `period`, sorted by path (which sorts by
/// hour). A file under `usage/` whose folder is not a valid `date=/hour=` partition
/// refuses the run: its rows could not be placed in any period.
pub fn list_usage(lake: &Lake, period: Period) -> Result<Vec<UsageFile>> {
    let mut out = Vec::new();
    for day in period.days() {
        for l in lake.list(&format!("usage/date={day}/"))? {
            if !l.path.ends_with(".parquet") {
                continue;
            }
            let hour = parse_partition(&l.path)
                .ok_or_else(|| InputError::Table { file: l.path.clone(), why: "not under a usage/date=YYYY-MM-DD/hour=HH/ partition".into() })?;
            out.push(UsageFile { path: l.path, size: l.size, e_tag: l.e_tag, partition_hour: hour });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `usage/date=2024-01-31/hour=07/x.parquet` → the start of that hour.
pub fn parse_partition(path: &str) -> Option<Micros> {
    let mut parts = path.split('/');
    if parts.next()? != "usage" {
        return None;
    }
    let date = parts.next()?.strip_prefix("date=")?;
    let hour = parts.next()?.strip_prefix("hour=")?;
    let _file = parts.next()?;
    if parts.next().is_some() || hour.len() != 2 {
        return None;
    }
    crate::time::parse_hour(&format!("{date}T{hour}"))
}

/// Decodes one usage file into chunks. A file that is not readable Parquet, or that
/// lacks a contract column, refuses the run.
pub fn read_usage_file(file_idx: u32, f: &UsageFile, bytes: Bytes) -> Result<Vec<UsageChunk>> {
    let batches = decode_parquet_keyed(&f.path, bytes, &USAGE_KEYED, true, |b| b)?;
    usage_chunks(file_idx, f, &batches, None)
}

/// The rows of a usage file that are wanted, each keeping its row number in the file.
/// The file is decoded in one pass, but for [`NOT_RATED`] (nulls), and the wanted rows
/// are taken from each batch: the selected rows are spread over every page, so a
/// second pass over the file for them would decompress every page again.
pub fn read_usage_file_of(file_idx: u32, f: &UsageFile, bytes: Bytes, wanted: &crate::engine::Select<'_>) -> Result<Vec<UsageChunk>> {
    use parquet::arrow::ProjectionMask;
    const KEYS: [&str; 5] = ["account_id", "sku", "region", "resource_id", "pool_id"];
    let batches = decode_parquet_keyed(&f.path, bytes, &USAGE_KEYED, true, |b| {
        let schema = b.parquet_schema();
        let read = schema.columns().iter().map(|c| c.name()).filter(|n| !NOT_RATED.contains(n));
        let mask = ProjectionMask::columns(schema, read);
        b.with_projection(mask)
    })?;
    let mut rows: Vec<u32> = Vec::new();
    let mut kept = Vec::with_capacity(batches.len());
    let mut first = 0u32;
    for b in batches {
        let ids = StrCol::of(&b, "account_id").map_err(|p| col_err(&f.path, "account_id", p))?;
        // A key column that is missing or of another type selects as null here; the
        // rows selected are checked afterwards.
        let [sku, region, resource, pool] = [KEYS[1], KEYS[2], KEYS[3], KEYS[4]].map(|k| StrCol::of(&b, k).ok());
        let keep = crate::engine::select_rows(b.num_rows(), [Some(&ids), sku.as_ref(), region.as_ref(), resource.as_ref(), pool.as_ref()], wanted);
        let before = rows.len();
        rows.extend(keep.iter().enumerate().filter(|(_, &k)| k).map(|(r, _)| first + r as u32));
        first = first.saturating_add(b.num_rows() as u32);
        if rows.len() == before {
            continue;
        }
        let filtered = arrow_select::filter::filter_record_batch(&b, &arrow_array::BooleanArray::from(keep))
            .map_err(|e| InputError::Corrupt { file: f.path.clone(), why: e.to_string() })?;
        kept.push(filtered);
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let batches = kept.into_iter().map(|b| with_null_columns(&f.path, b, &NOT_RATED)).collect::<Result<Vec<_>>>()?;
    usage_chunks(file_idx, f, &batches, Some(&rows))
}

/// The usage columns a selection (what-if ratings) is read without: carried to the
/// outputs only, never checked nor rated, so they are read as nulls. About a quarter
/// of a usage file is resource names.
pub const NOT_RATED: [&str; 2] = ["resource_name", "enterprise_project"];

/// `batch` with a column of nulls for each of `names` it lacks.
fn with_null_columns(file: &str, batch: RecordBatch, names: &[&str]) -> Result<RecordBatch> {
    let missing: Vec<&str> = names.iter().copied().filter(|n| batch.column_by_name(n).is_none()).collect();
    if missing.is_empty() {
        return Ok(batch);
    }
    let (schema, mut columns, rows) = batch.into_parts();
    let mut fields: Vec<arrow_schema::FieldRef> = schema.fields().iter().cloned().collect();
    for n in missing {
        fields.push(Arc::new(arrow_schema::Field::new(n, arrow_schema::DataType::Utf8, true)));
        columns.push(arrow_array::new_null_array(&arrow_schema::DataType::Utf8, rows));
    }
    RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns).map_err(|e| InputError::Corrupt { file: file.to_string(), why: e.to_string() })
}

/// Chunks over decoded batches; `rows` holds each row's number in the file when the
/// batches are a selection of the file's rows.
fn usage_chunks(file_idx: u32, f: &UsageFile, batches: &[RecordBatch], rows: Option<&[u32]>) -> Result<Vec<UsageChunk>> {
    let file = f.path.as_str();
    let mut out = Vec::with_capacity(batches.len());
    let mut first_row = 0u32;
    let mut at = 0usize;
    for b in batches {
        cols!(file, b, record_id: StrCol, account_id: StrCol, region: StrCol, resource_id: StrCol,
            resource_name: StrCol, module: StrCol, sku: StrCol, unit_count: IntCol, pool_type: StrCol,
            pool_id: StrCol, nodes: IntCol, quantity: DecCol, start_time: TsCol, end_time: TsCol,
            enterprise_project: StrCol, tags: StrCol);
        let selected: Option<Arc<[u32]>> = rows.map(|r| Arc::from(&r[at..at + b.num_rows()]));
        out.push(UsageChunk {
            file: file_idx,
            first_row: selected.as_ref().and_then(|r| r.first().copied()).unwrap_or(first_row),
            rows: selected,
            partition_hour: f.partition_hour,
            len: b.num_rows(),
            record_id,
            account_id,
            region,
            resource_id,
            resource_name,
            module,
            sku,
            unit_count,
            pool_type,
            pool_id,
            nodes,
            quantity,
            start_time,
            end_time,
            enterprise_project,
            tags,
        });
        first_row = first_row.saturating_add(b.num_rows() as u32);
        at += b.num_rows();
    }
    Ok(out)
}

/// Shared handle to an hour's decoded usage.
pub type Chunks = Arc<Vec<UsageChunk>>;

/// The packages on sale (optional input): `sku, region, currency, hours_per_package,
/// price, term_months`.
pub fn read_offers(lake: &Lake) -> Result<Vec<crate::cost::recommend::Offer>> {
    let file = OFFERS;
    let mut out = Vec::new();
    let mut row = 0usize;
    for b in read_table(lake, file, false)?.unwrap_or_default() {
        cols!(file, &b, sku: StrCol, region: StrCol, currency: StrCol, hours_per_package: DecCol, price: DecCol, term_months: IntCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let o = crate::cost::recommend::Offer {
                sku: c.str(&sku, i, "sku")?,
                region: c.str(&region, i, "region")?,
                currency: c.str(&currency, i, "currency")?,
                hours_per_package: c.dec(&hours_per_package, i, "hours_per_package")?,
                price: c.dec(&price, i, "price")?,
                term_months: c.int(&term_months, i, "term_months")?,
            };
            if o.hours_per_package <= Dec::ZERO || o.price.is_negative() || o.term_months < 1 {
                return Err(c.bad("hours_per_package", "an offer needs positive hours, a price ≥ 0 and a term ≥ 1 month"));
            }
            out.push(o);
            row += 1;
        }
    }
    Ok(out)
}
