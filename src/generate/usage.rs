//! The synthetic world: accounts with their resources, commitments and payments, and
//! the usage rows each hour of it produces.

use super::{GenConfig, Rng, REGIONS};
use crate::decimal::Dec;
use crate::lake::outputs::{col_dec, col_i32, col_string, col_ts};
use crate::model::*;
use crate::time::{add_months, Micros, DAY, HOUR};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use std::sync::Arc;

mod commitments;

/// When a resource runs.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// Every hour, whole.
    Always,
    /// Weekdays from `from` to `to` o'clock, starting `offset_min` past the hour.
    Workday { from: i64, to: i64, offset_min: i64 },
    /// Jobs that start with probability `per_mille`‰ each hour and last `len` hours.
    Jobs { per_mille: u64, len: i64 },
    /// Within `[from, to)` only, whole hours.
    Window { from: Micros, to: Micros },
}

#[derive(Clone, Debug)]
pub struct Resource {
    pub id: String,
    pub name: String,
    pub account: usize,
    pub region: &'static str,
    pub module: Module,
    pub sku: &'static str,
    pub unit_count: i32,
    pub pool_type: PoolType,
    pub pool_id: Option<String>,
    pub nodes: i32,
    /// GB for storage, messages per hour for notifications, GB per hour for logs.
    pub quantity: Dec,
    pub schedule: Schedule,
    pub project: Option<String>,
    pub tags: Option<String>,
    /// Node count varies by day (a pay-per-use pool that scales).
    pub scales: bool,
}

/// One usage row as written (every field optional, so anomalies can be written too).
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub record_id: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub module: Option<String>,
    pub sku: Option<String>,
    pub unit_count: Option<i32>,
    pub pool_type: Option<String>,
    pub pool_id: Option<String>,
    pub nodes: Option<i32>,
    pub quantity: Option<Dec>,
    pub start: Option<Micros>,
    pub end: Option<Micros>,
    pub enterprise_project: Option<String>,
    pub tags: Option<String>,
}

pub struct World {
    cfg: GenConfig,
    pub accounts: Vec<Account>,
    pub resources: Vec<Resource>,
    pub packages: Vec<Package>,
    pub subscriptions: Vec<Subscription>,
    pub payments: Vec<Payment>,
    rng: Rng,
}

fn d(s: &str) -> Dec {
    Dec::parse(s).expect("literal decimal")
}

const PROJECTS: &[&str] = &["default", "vision", "speech", "recsys", "platform"];
const TEAMS: &[&str] = &["research", "ml-platform", "search", "ads", "data"];

impl World {
    pub fn new(cfg: &GenConfig) -> World {
        let rng = Rng::new(cfg.seed);
        let mut w =
            World { cfg: cfg.clone(), accounts: Vec::new(), resources: Vec::new(), packages: Vec::new(), subscriptions: Vec::new(), payments: Vec::new(), rng };
        for a in 0..cfg.accounts {
            w.add_account(a);
        }
        if cfg.ppu_only {
            w.packages.clear();
            w.subscriptions.clear();
            w.resources.retain(|r| r.pool_type == PoolType::Public && r.sku != "modelarts.vm.gpu.a100" && !r.id.ends_with("-npu-eur"));
            for a in &mut w.accounts {
                a.opening_balance = Dec::from_int(100_000_000);
            }
        }
        w
    }

    fn add_account(&mut self, a: usize) {
        let mut r = self.rng.fork(a as u64 + 1);
        let id = format!("acct-{a:05}");
        let eur = a % 7 == 6;
        let large = a.is_multiple_of(10);
        let tight = a % 10 == 1;
        let short_windows = a % 9 == 4 || a % 20 == 1;
        let start = self.cfg.from.start();
        let opening = if tight {
            Dec::from_int(r.range(5, 40))
        } else if large {
            Dec::from_int(r.range(200_000, 500_000))
        } else {
            Dec::from_int(r.range(2_000, 20_000))
        };
        self.accounts.push(Account {
            account_id: id.clone(),
            account_name: format!("Customer {a}"),
            currency: if eur { "EUR" } else { "USD" }.into(),
            opening_balance: opening,
            balance_as_of: start - 3 * DAY,
            grace_days: if short_windows { 2 } else { 15 },
            retention_days: if short_windows { 3 } else { 15 },
            balance_alert_threshold: (a.is_multiple_of(3)).then(|| Dec::from_int(if tight { 3 } else { 1_000 })),
        });
        // Payments: a top-up before the period (counts in the opening balance), and for
        // tight accounts one on the 12th at 00:00 exactly (a settlement instant).
        self.payments.push(Payment {
            payment_id: format!("pay-{a:05}-0"),
            account_id: id.clone(),
            paid_at: start - DAY,
            amount: Dec::from_int(r.range(1, 50)),
        });
        if tight && a % 2 == 1 {
            for m in 0..self.cfg.months as i32 {
                let at = add_months(start, m).unwrap_or(start) + 11 * DAY;
                self.payments.push(Payment {
                    payment_id: format!("pay-{a:05}-{}", m + 1),
                    account_id: id.clone(),
                    paid_at: at,
                    amount: Dec::from_int(r.range(2_000, 6_000)),
                });
            }
        }
        let region = if eur { REGIONS[0] } else { REGIONS[a % 2] };
        let n = if large { self.cfg.resources_per_account * 5 } else { self.cfg.resources_per_account };
        for k in 0..n {
            self.add_resource(&mut r, a, k, region, eur);
        }
        self.add_commitments(&mut r, a, region, eur);
    }

    fn add_resource(&mut self, r: &mut Rng, a: usize, k: usize, region: &'static str, eur: bool) {
        let project = Some(r.pick(PROJECTS).to_string());
        let tags = Some(format!(r#"{{"team":"{}","env":"{}"}}"#, r.pick(TEAMS), if r.chance(1, 3) { "dev" } else { "prod" }));
        let base = Resource {
            id: String::new(),
            name: String::new(),
            account: a,
            region,
            module: Module::Notebook,
            sku: "modelarts.vm.cpu.2u",
            unit_count: 1,
            pool_type: PoolType::Public,
            pool_id: None,
            nodes: 1,
            quantity: Dec::from_int(1),
            schedule: Schedule::Always,
            project,
            tags,
            scales: false,
        };
        let push = |w: &mut World, suffix: &str, f: &dyn Fn(&mut Resource)| {
            let mut res = base.clone();
            res.id = format!("{}-{a:05}-{k:03}{suffix}", "res");
            f(&mut res);
            res.name = format!("{} {}", res.module, res.id);
            w.resources.push(res);
        };
        let gpu = ["modelarts.vm.gpu.t4", "modelarts.vm.gpu.v100"][k % 2];
        match k % 6 {
            0 => {
                // A notebook: compute on weekdays, its EVS disk always.
                let uc = [1, 4][r.below(2) as usize];
                let off = r.range(0, 40);
                push(self, "-nb", &|x| {
                    x.module = Module::Notebook;
                    x.unit_count = uc;
                    x.schedule = Schedule::Workday { from: 8, to: 19, offset_min: off };
                });
                // Its EVS disk, billed from creation until deletion whether the
                // notebook runs or not: usage of the notebook itself, in GB.
                let gb = Dec::from_int(r.range(20, 200));
                let nb = format!("res-{a:05}-{k:03}-nb");
                push(self, "-evs", &|x| {
                    x.module = Module::Notebook;
                    x.sku = "evs.ssd";
                    x.quantity = gb;
                });
                if let Some(last) = self.resources.last_mut() {
                    last.id = nb;
                    last.name = format!("notebook {a}-{k} disk");
                    // Some notebooks stop computing after the first week.
                    if k.is_multiple_of(12) {
                        if let Some(nb) = self.resources.iter_mut().rev().nth(1) {
                            nb.schedule = Schedule::Window { from: i64::MIN / 2, to: self.cfg.from.start() + 7 * DAY };
                        }
                    }
                }
            }
            1 => {
                let nodes = r.range(1, 4) as i32;
                let len = r.range(2, 8);
                push(self, "-train", &|x| {
                    x.module = Module::Training;
                    x.sku = gpu;
                    x.nodes = nodes;
                    x.schedule = Schedule::Jobs { per_mille: 40, len };
                });
            }
            2 => {
                let uc = r.range(1, 2) as i32;
                push(self, "-svc", &|x| {
                    x.module = Module::InferenceRealtime;
                    x.sku = if eur { "modelarts.vm.gpu.t4" } else { gpu };
                    x.unit_count = uc;
                });
            }
            3 => {
                let gb = Dec(r.range(10_000, 5_000_000) as i128 * 10_000_000);
                push(self, "-obs", &|x| {
                    x.module = Module::Obs;
                    x.sku = "obs.standard";
                    x.quantity = gb;
                });
                let gb = Dec::from_int(r.range(100, 2_000));
                push(self, "-sfs", &|x| {
                    x.module = Module::Sfs;
                    x.sku = "sfs.capacity";
                    x.quantity = gb;
                });
            }
            4 => {
                // An ExeML project: training, deployment and notifications.
                push(self, "-exeml-train", &|x| {
                    x.module = Module::ExemlTraining;
                    x.sku = "modelarts.vm.gpu.t4";
                    x.schedule = Schedule::Jobs { per_mille: 25, len: 3 };
                });
                push(self, "-exeml-deploy", &|x| {
                    x.module = Module::ExemlDeployment;
                    x.sku = "modelarts.vm.cpu.2u";
                    x.unit_count = 2;
                });
                push(self, "-exeml-sms", &|x| {
                    x.module = Module::Smn;
                    x.sku = "smn.sms";
                    x.quantity = Dec::from_int(3);
                    x.schedule = Schedule::Jobs { per_mille: 100, len: 1 };
                });
                push(self, "-exeml-mail", &|x| {
                    x.module = Module::Smn;
                    x.sku = "smn.email";
                    x.quantity = Dec::from_int(40);
                    x.schedule = Schedule::Jobs { per_mille: 150, len: 1 };
                });
            }
            _ => {
                push(self, "-logs", &|x| {
                    x.module = Module::Lts;
                    x.sku = "lts.ingest";
                    x.quantity = d("0.0021");
                });
                push(self, "-batch", &|x| {
                    x.module = Module::InferenceBatch;
                    x.sku = "modelarts.vm.npu.910b";
                    x.schedule = Schedule::Jobs { per_mille: 20, len: 2 };
                });
                push(self, "-wf", &|x| {
                    x.module = Module::Workflow;
                    x.sku = "modelarts.vm.cpu.2u";
                    x.schedule = Schedule::Jobs { per_mille: 60, len: 1 };
                });
            }
        }
    }

    /// The usage files of hour `h`: `(file name, rows)`.
    pub fn hour(&self, h: Micros) -> Vec<(String, Vec<Row>)> {
        let mut main = Vec::new();
        let hour_no = h.div_euclid(HOUR);
        for (i, res) in self.resources.iter().enumerate() {
            let mut r = self.rng.fork(hour_no as u64 ^ ((i as u64) << 32));
            if let Some((s, e)) = active(res, h, &mut r, self.rng.fork(i as u64)) {
                self.metered(res, s, e, &mut r, hour_no, &mut main);
            }
        }
        let mut extra = Vec::new();
        if self.cfg.anomalies {
            self.anomalies(h, &main, &mut extra);
        }
        vec![("part-0.parquet".to_string(), main), ("part-1.parquet".to_string(), extra)]
    }

    /// The rows of a resource's use from `s` to `e` within one hour: one, or one per
    /// metering slot it touches ([`GenConfig::meter_minutes`]) for time-metered usage,
    /// their record ids numbered within the hour.
    fn metered(&self, res: &Resource, s: Micros, e: Micros, r: &mut Rng, hour_no: i64, out: &mut Vec<Row>) {
        let step = i64::from(self.cfg.meter_minutes) * 60_000_000;
        if step >= HOUR || matches!(res.module, Module::Smn | Module::Lts) {
            out.push(self.row(res, s, e, r, hour_no));
            return;
        }
        let h = hour_no * HOUR;
        let (mut from, mut k) = (s, 0);
        while from < e {
            let to = (h + ((from - h) / step + 1) * step).min(e);
            let mut row = self.row(res, from, to, r, hour_no);
            row.record_id = row.record_id.map(|id| format!("{id}.{k}"));
            out.push(row);
            (from, k) = (to, k + 1);
        }
    }

    fn row(&self, res: &Resource, s: Micros, e: Micros, r: &mut Rng, hour_no: i64) -> Row {
        let acct = &self.accounts[res.account];
        let nodes = if res.scales {
            let day = hour_no / 24;
            res.nodes + (day % 3) as i32
        } else {
            res.nodes
        };
        let quantity = match res.module {
            Module::Smn => Dec::from_int(r.range(1, res.quantity.0.max(ONE) as i64 / ONE as i64 * 2)),
            Module::Lts => Dec(res.quantity.0 * r.range(1, 30) as i128),
            _ => res.quantity,
        };
        Row {
            record_id: Some(if res.sku.starts_with("evs.") { format!("{}-disk-{}", res.id, hour_no) } else { format!("{}-{}", res.id, hour_no) }),
            account_id: Some(acct.account_id.clone()),
            region: Some(res.region.into()),
            resource_id: Some(res.id.clone()),
            resource_name: Some(res.name.clone()),
            module: Some(res.module.as_str().into()),
            sku: Some(res.sku.into()),
            unit_count: Some(res.unit_count),
            pool_type: Some(res.pool_type.as_str().into()),
            pool_id: res.pool_id.clone(),
            nodes: Some(nodes),
            quantity: Some(quantity),
            start: Some(s),
            end: Some(e),
            enterprise_project: res.project.clone(),
            tags: res.tags.clone(),
        }
    }

    /// One row breaking each rule, spread over the first days of each month.
    fn anomalies(&self, h: Micros, main: &[Row], extra: &mut Vec<Row>) {
        let month_start = crate::time::Period::containing(h).map(|p| p.start()).unwrap_or(h);
        let k = (h - month_start) / HOUR;
        let Some(base) = main.iter().find(|r| r.module.as_deref() == Some("notebook")).or(main.first()) else { return };
        let tag = |r: &mut Row, what: &str| r.record_id = Some(format!("anomaly-{what}-{}", h / HOUR));
        match k {
            3 => {
                let mut r = base.clone();
                tag(&mut r, "null-account");
                r.account_id = None;
                extra.push(r);
                let mut r = base.clone();
                tag(&mut r, "bad-module");
                r.module = Some("spaceship".into());
                extra.push(r);
            }
            4 => {
                let mut r = base.clone();
                tag(&mut r, "wrong-partition");
                r.start = Some(h + HOUR);
                r.end = Some(h + HOUR + 60_000_000);
                extra.push(r);
                let mut r = base.clone();
                tag(&mut r, "out-of-period");
                r.start = Some(month_start - HOUR);
                r.end = Some(month_start - HOUR + 60_000_000);
                extra.push(r);
            }
            5 => {
                let mut r = base.clone();
                tag(&mut r, "backwards");
                r.end = r.start.map(|s| s - 1);
                extra.push(r);
                let mut r = base.clone();
                tag(&mut r, "across-hours");
                r.end = Some(h + HOUR + 1);
                extra.push(r);
                let mut r = base.clone();
                tag(&mut r, "negative");
                r.quantity = Some(Dec::from_int(-1));
                extra.push(r);
            }
            6 => {
                // An exact repeat of a row of the hour: rated once.
                extra.push(base.clone());
                let mut r = base.clone();
                tag(&mut r, "unknown-account");
                r.account_id = Some("acct-nobody".into());
                extra.push(r);
                let mut r = base.clone();
                tag(&mut r, "unknown-sku");
                r.sku = Some("modelarts.vm.quantum.1q".into());
                extra.push(r);
            }
            7 | 30 => {
                // The same record id at 07:00 and again at 30:00 with other content:
                // both copies rejected, although the first arrives a day earlier.
                let mut r = base.clone();
                r.record_id = Some("anomaly-conflict".into());
                if k == 30 {
                    r.nodes = Some(r.nodes.unwrap_or(1) + 1);
                }
                extra.push(r);
            }
            _ => {}
        }
    }
}

const ONE: i128 = 10_000_000_000;

/// The active part of hour `h` for a resource, if any.
fn active(res: &Resource, h: Micros, r: &mut Rng, stable: Rng) -> Option<(Micros, Micros)> {
    let hod = (h.rem_euclid(DAY)) / HOUR;
    let dow = (h.div_euclid(DAY) + 3).rem_euclid(7); // 0 = Monday
    match &res.schedule {
        Schedule::Always => Some((h, h + HOUR)),
        Schedule::Window { from, to } => (*from <= h && h < *to).then_some((h, h + HOUR)),
        Schedule::Workday { from, to, offset_min } => {
            if dow >= 5 && *to - *from < 24 {
                return None;
            }
            if hod < *from || hod >= *to {
                return None;
            }
            let s = if hod == *from { h + offset_min * 60_000_000 } else { h };
            let e = if hod == *to - 1 && *offset_min > 0 { h + HOUR - offset_min * 30_000_000 } else { h + HOUR };
            (e > s).then_some((s, e))
        }
        Schedule::Jobs { per_mille, len } => {
            // A job runs in hour h if one started in the last `len` hours.
            let hour_no = h / HOUR;
            for back in 0..*len {
                let mut s = stable.fork((hour_no - back) as u64);
                if s.below(1000) < *per_mille {
                    let start_min = s.range(0, 59);
                    let dur_min = s.range(20, *len * 60);
                    let js = (hour_no - back) * HOUR + start_min * 60_000_000;
                    let je = js + dur_min * 60_000_000;
                    let (a, b) = (js.max(h), je.min(h + HOUR));
                    if b > a {
                        let _ = r.next();
                        return Some((a, b));
                    }
                }
            }
            None
        }
    }
}

pub fn usage_schema() -> Arc<Schema> {
    use crate::lake::outputs::{dec_type, ts_type};
    Arc::new(Schema::new(vec![
        Field::new("record_id", DataType::Utf8, true),
        Field::new("account_id", DataType::Utf8, true),
        Field::new("region", DataType::Utf8, true),
        Field::new("resource_id", DataType::Utf8, true),
        Field::new("resource_name", DataType::Utf8, true),
        Field::new("module", DataType::Utf8, true),
        Field::new("sku", DataType::Utf8, true),
        Field::new("unit_count", DataType::Int32, true),
        Field::new("pool_type", DataType::Utf8, true),
        Field::new("pool_id", DataType::Utf8, true),
        Field::new("nodes", DataType::Int32, true),
        Field::new("quantity", dec_type(), true),
        Field::new("start_time", ts_type(), true),
        Field::new("end_time", ts_type(), true),
        Field::new("enterprise_project", DataType::Utf8, true),
        Field::new("tags", DataType::Utf8, true),
    ]))
}

pub fn usage_batch(rows: &[Row]) -> RecordBatch {
    let s = |f: fn(&Row) -> Option<String>| col_string(rows.iter().map(f));
    let cols: Vec<ArrayRef> = vec![
        s(|r| r.record_id.clone()),
        s(|r| r.account_id.clone()),
        s(|r| r.region.clone()),
        s(|r| r.resource_id.clone()),
        s(|r| r.resource_name.clone()),
        s(|r| r.module.clone()),
        s(|r| r.sku.clone()),
        col_i32(rows.iter().map(|r| r.unit_count)),
        s(|r| r.pool_type.clone()),
        s(|r| r.pool_id.clone()),
        col_i32(rows.iter().map(|r| r.nodes)),
        col_dec(rows.iter().map(|r| r.quantity)),
        col_ts(rows.iter().map(|r| r.start)),
        col_ts(rows.iter().map(|r| r.end)),
        s(|r| r.enterprise_project.clone()),
        s(|r| r.tags.clone()),
    ];
    RecordBatch::try_new(usage_schema(), cols).expect("usage schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Period;

    /// Finer metering cuts each hour's use into rows of one slot each, covering the
    /// same time, with record ids of their own.
    #[test]
    fn finer_metering_covers_the_same_time_in_slots() {
        let cfg = |meter_minutes| GenConfig { accounts: 12, days: Some(1), meter_minutes, ..GenConfig::default() };
        let (hourly, fine) = (World::new(&cfg(60)), World::new(&cfg(20)));
        let start = Period { year: 2026, month: 1 }.start();
        let (mut rows60, mut rows20) = (0, 0);
        for h in (0..24).map(|i| start + i * HOUR) {
            let main = |w: &World| w.hour(h).swap_remove(0).1;
            let (a, b) = (main(&hourly), main(&fine));
            let covered = |rows: &[Row]| {
                let mut by: std::collections::BTreeMap<String, i64> = Default::default();
                for r in rows {
                    *by.entry(r.resource_id.clone().unwrap()).or_default() += r.end.unwrap() - r.start.unwrap();
                }
                by
            };
            assert_eq!(covered(&a), covered(&b), "hour {h}");
            for r in b.iter().filter(|r| !matches!(r.module.as_deref(), Some("smn" | "lts"))) {
                let (s, e) = (r.start.unwrap() - h, r.end.unwrap() - h);
                assert_eq!(s / (20 * 60_000_000), (e - 1) / (20 * 60_000_000), "a row within one 20-minute slot");
            }
            let ids: std::collections::BTreeSet<_> = b.iter().map(|r| r.record_id.clone()).collect();
            assert_eq!(ids.len(), b.len(), "record ids unique");
            (rows60, rows20) = (rows60 + a.len(), rows20 + b.len());
        }
        assert!(rows20 > 2 * rows60, "{rows20} rows at 20 minutes against {rows60} hourly");
    }
}
