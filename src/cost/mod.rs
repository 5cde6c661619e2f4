//! Cost management (billing-rules §8): composition, allocation and analysis of a
//! period's spend, accumulated hour by hour from the lines the bill run produces (so
//! memory grows with resources, not rows), plus recommendations.

pub mod allocation;
pub mod recommend;
pub mod report;
pub mod tables;

use crate::decimal::{Dec, Qty};
use crate::lake::inputs::UsageChunk;
use crate::lake::outputs::Names;
use crate::model::Module;
use crate::rules::records::{Commitment, Line, LineKind};
use crate::time::{Micros, DAY};
use allocation::{split, Method};
use rustc_hash::FxHashMap;

/// Billed, effective and list cost.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    pub billed: Dec,
    pub effective: Dec,
    pub list: Dec,
}

impl Sums {
    fn add(&mut self, l: &Line) {
        self.billed = self.billed.add(l.billed);
        self.effective = self.effective.add(l.effective);
        self.list = self.list.add(l.list_cost);
    }
}

/// Where an allocated amount went.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocKey {
    pub account: u32,
    /// The resource whose line carried the cost.
    pub source: Option<String>,
    /// The resource the cost is allocated to.
    pub target: Option<String>,
    pub project: Option<String>,
    pub tags: Option<String>,
    pub method: Method,
}

#[derive(Debug, Default)]
pub struct CostBook {
    pub composition: FxHashMap<(u32, &'static str, String), Sums>,
    pub daily: FxHashMap<(u32, i64), Sums>,
    pub resources: FxHashMap<(u32, String), (Sums, Option<Module>)>,
    pub allocation: FxHashMap<AllocKey, Dec>,
    /// Σ EffectiveCost of each account's lines.
    pub effective: FxHashMap<u32, Dec>,
    /// Per account and notebook id: when its compute last ran, its disk's cost by day.
    pub notebooks: FxHashMap<(u32, String), NotebookUse>,
    /// Pay-per-use public-pool usage per account, SKU and region: quantity and cost.
    pub ppu_public: FxHashMap<(u32, String, String), (Qty, Dec)>,
    /// Pools and Lite resources billed pay-per-use (their own rows).
    pub ppu_resources: FxHashMap<(u32, String), PpuResource>,
    /// Settlement deductions per account and day.
    pub deductions: FxHashMap<(u32, i64), Dec>,
    /// What the hours add up to, keyed by interned names; turned into the maps
    /// above by [`CostBook::finish`].
    tally: Tally,
}

/// A name interned for the period: an index into [`Syms`].
type Sym = u32;
/// The absent name.
const NO_SYM: Sym = Sym::MAX;

/// The period's distinct names (resources, SKUs, projects, tags, …), each stored once.
#[derive(Debug, Default)]
struct Syms {
    ids: FxHashMap<Box<str>, Sym>,
    names: Vec<Box<str>>,
}

impl Syms {
    fn id(&mut self, s: &str) -> Sym {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as Sym;
        self.names.push(s.into());
        self.ids.insert(s.into(), i);
        i
    }
    fn opt(&mut self, s: Option<&str>) -> Sym {
        s.map_or(NO_SYM, |s| self.id(s))
    }
    fn name(&self, i: Sym) -> Option<&str> {
        self.names.get(i as usize).map(|b| &**b)
    }
    fn string(&self, i: Sym) -> String {
        self.name(i).unwrap_or_default().to_string()
    }
}

/// The composition dimensions, in the order of [`Tally::composition`]'s index.
const DIMS: [&str; 8] = ["billing_item", "module", "product", "billing_mode", "sku", "region", "charge_category", "module_billing_item"];

/// The hour-by-hour accumulators, keyed by interned names so that a line costs no
/// allocation once its names have been seen.
#[derive(Debug, Default)]
struct Tally {
    syms: Syms,
    composition: FxHashMap<(u32, u8, Sym), Sums>,
    resources: FxHashMap<(u32, Sym), (Sums, Option<Module>)>,
    /// account, source, target, project, tags, method.
    allocation: FxHashMap<(u32, Sym, Sym, Sym, Sym, Method), Dec>,
    notebooks: FxHashMap<(u32, Sym), NotebookUse>,
    ppu_public: FxHashMap<(u32, Sym, Sym), (Qty, Dec)>,
    ppu_resources: FxHashMap<(u32, Sym), PpuResource>,
    /// A scratch buffer for composed names.
    buf: String,
}

/// A pool or Lite resource billed pay-per-use in the period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PpuResource {
    pub sku: String,
    pub region: String,
    pub module: Option<Module>,
    pub min_size: i64,
    pub max_size: i64,
    pub cost: Dec,
    pub hours: i64,
}

/// What a notebook did in the period (for the idle-notebook recommendation).
#[derive(Clone, Debug, Default)]
pub struct NotebookUse {
    pub last_compute: Option<Micros>,
    pub disk_by_day: FxHashMap<i64, Dec>,
}

/// The usage fields of a line, when it has a usage row.
struct UsageView<'a> {
    size: i64,
    resource: &'a str,
    project: Option<&'a str>,
    tags: Option<&'a str>,
    module: Option<Module>,
    pool_id: Option<&'a str>,
    sku: Option<&'a str>,
    region: Option<&'a str>,
}

fn view<'a>(l: &Line, chunks: &'a [UsageChunk]) -> Option<UsageView<'a>> {
    let loc = l.usage?;
    let c = &chunks[loc.chunk as usize];
    let i = loc.row as usize;
    Some(UsageView {
        size: c.nodes.get(i).unwrap_or(1) * c.unit_count.get(i).unwrap_or(1),
        resource: c.resource_id.get(i)?,
        project: c.enterprise_project.get(i),
        tags: c.tags.get(i),
        module: c.module.get(i).and_then(Module::parse),
        pool_id: c.pool_id.get(i).filter(|s| !s.is_empty()),
        sku: c.sku.get(i),
        region: c.region.get(i),
    })
}

fn billing_item_of_module(m: Option<Module>) -> &'static str {
    match m {
        Some(Module::Obs) => "object_storage",
        Some(Module::Sfs) => "file_storage",
        Some(Module::Evs) => "block_storage",
        Some(Module::Smn) => "notification",
        Some(Module::Lts) => "logs",
        _ => "compute",
    }
}

/// The platform's composition of a module: notebook = compute + EVS; ExeML =
/// training + deployment + notification (billing-rules §1).
fn product(m: Option<Module>, kind: LineKind) -> &'static str {
    match (m, kind) {
        (_, LineKind::Purchase) => "purchases",
        (_, LineKind::Adjustment) => "settlement",
        (Some(Module::Notebook | Module::Evs), _) => "notebook",
        (Some(Module::ExemlTraining | Module::ExemlDeployment | Module::Smn), _) => "exeml",
        (Some(m), _) => m.product(),
        (None, _) => "commitments",
    }
}

impl CostBook {
    /// Accumulates the lines of one hour (or of the period's close, with no chunks).
    pub fn observe(&mut self, lines: &[Line], chunks: &[UsageChunk], n: &Names<'_>) {
        // Pools with jobs this hour, per account: capacity, cost and the jobs' weights.
        let mut pools: FxHashMap<(u32, &str), PoolHour> = FxHashMap::default();
        for (k, l) in lines.iter().enumerate() {
            if let Some(u) = view(l, chunks) {
                if let Some(pool) = u.pool_id {
                    if matches!(l.kind, LineKind::PoolJob | LineKind::Committed) {
                        pools.entry((l.account, pool)).or_default().jobs.push(k);
                    }
                }
            }
        }
        for (k, l) in lines.iter().enumerate() {
            if let Some(u) = view(l, chunks) {
                if u.pool_id.is_none() {
                    if let Some(p) = pools.get_mut(&(l.account, u.resource)) {
                        p.own.push(k);
                    }
                }
            }
        }
        let mut allocated = vec![false; lines.len()];
        let t = &mut self.tally;
        for ((account, pool), ph) in &pools {
            if ph.own.is_empty() {
                continue;
            }
            let cost = ph.own.iter().fold(Dec::ZERO, |a, &k| a.add(lines[k].effective));
            let capacity: Qty = ph.own.iter().fold(Qty::ZERO, |a, &k| a.add(lines[k].quantity));
            let used: Qty = ph.jobs.iter().fold(Qty::ZERO, |a, &k| a.add(lines[k].quantity));
            let mut weights: Vec<i128> = ph.jobs.iter().map(|&k| lines[k].quantity.0).collect();
            weights.push(capacity.sub(used).0.max(0));
            let shares = split(cost, &weights);
            let pool_view = view(&lines[ph.own[0]], chunks);
            let pool_sym = t.syms.id(pool);
            for (j, &k) in ph.jobs.iter().enumerate() {
                let u = view(&lines[k], chunks);
                let key = (
                    *account,
                    pool_sym,
                    t.syms.opt(u.as_ref().map(|u| u.resource)),
                    t.syms.opt(u.as_ref().and_then(|u| u.project)),
                    t.syms.opt(u.as_ref().and_then(|u| u.tags)),
                    Method::PoolNodeSeconds,
                );
                t.allocate(key, shares[j]);
                allocated[k] = true;
            }
            let idle = (
                *account,
                pool_sym,
                pool_sym,
                t.syms.opt(pool_view.as_ref().and_then(|u| u.project)),
                t.syms.opt(pool_view.as_ref().and_then(|u| u.tags)),
                Method::PoolIdle,
            );
            t.allocate(idle, shares[ph.jobs.len()]);
            for &k in &ph.own {
                allocated[k] = true;
            }
        }
        for (k, l) in lines.iter().enumerate() {
            let u = view(l, chunks);
            self.observe_line(l, u.as_ref(), n);
            if !allocated[k] {
                let key = self.tally.direct_key(l, u.as_ref(), n);
                self.tally.allocate(key, l.effective);
            }
        }
    }

    fn observe_line(&mut self, l: &Line, u: Option<&UsageView<'_>>, n: &Names<'_>) {
        let module = u.and_then(|u| u.module);
        let item = match l.price_row {
            Some(r) => n.catalog.row(r).billing_item.as_str(),
            None => billing_item_of_module(module),
        };
        let module_name = match (module, l.kind) {
            (Some(m), _) => m.as_str(),
            (None, LineKind::Purchase) => "purchase",
            (None, LineKind::Adjustment) => "settlement",
            (None, _) => "commitment",
        };
        let (sku, region) = match (u, l.commitment) {
            (Some(u), _) => (u.sku.unwrap_or(""), u.region.unwrap_or("")),
            (None, Some(Commitment::Package(i))) => (n.packages[i as usize].sku.as_str(), n.packages[i as usize].region.as_str()),
            (None, Some(Commitment::Subscription(i))) => (n.subs.get(i).sku.as_str(), n.subs.get(i).region.as_str()),
            (None, None) => ("", ""),
        };
        let mode = match (l.kind, l.commitment) {
            (LineKind::PoolJob, _) => "dedicated_pool",
            (_, Some(Commitment::Package(_))) => "package",
            (_, Some(Commitment::Subscription(_))) => "yearly_monthly",
            _ => "pay_per_use",
        };
        let t = &mut self.tally;
        // What each module is made of: notebook = compute + block storage, …
        let mut pair = std::mem::take(&mut t.buf);
        pair.clear();
        pair.push_str(module_name);
        pair.push('/');
        pair.push_str(item);
        let values: [&str; 8] = [item, module_name, product(module, l.kind), mode, sku, region, l.kind.charge_category(), &pair];
        for (dim, value) in values.into_iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            let sym = t.syms.id(value);
            t.composition.entry((l.account, dim as u8, sym)).or_default().add(l);
        }
        t.buf = pair;
        self.daily.entry((l.account, l.charge_start.div_euclid(DAY))).or_default().add(l);
        let e = self.effective.entry(l.account).or_default();
        *e = e.add(l.effective);
        let resource = match (u, l.commitment) {
            (Some(u), _) => Some(u.resource),
            (None, Some(Commitment::Package(i))) => Some(n.packages[i as usize].package_id.as_str()),
            (None, Some(Commitment::Subscription(i))) => Some(n.subs.get(i).resource_id.as_str()),
            _ => None,
        };
        if let Some(r) = resource {
            let r = t.syms.id(r);
            let e = t.resources.entry((l.account, r)).or_insert((Sums::default(), module));
            e.0.add(l);
        }
        if let (Some(u), Some(Module::Notebook)) = (u, module) {
            let r = t.syms.id(u.resource);
            let nb = t.notebooks.entry((l.account, r)).or_default();
            if item == "compute" {
                nb.last_compute = Some(nb.last_compute.map_or(l.charge_end, |t| t.max(l.charge_end)));
            } else {
                let e = nb.disk_by_day.entry(l.charge_start.div_euclid(DAY)).or_default();
                *e = e.add(l.billed);
            }
        }
        if let (Some(u), LineKind::Standard) = (u, l.kind) {
            match module {
                Some(Module::DedicatedPool | Module::LiteCluster | Module::LiteServer) => {
                    let key = (l.account, t.syms.id(u.resource));
                    let r = t.ppu_resources.entry(key).or_insert_with(|| PpuResource {
                        sku: u.sku.unwrap_or("").to_string(),
                        region: u.region.unwrap_or("").to_string(),
                        module,
                        min_size: u.size,
                        max_size: u.size,
                        ..PpuResource::default()
                    });
                    r.min_size = r.min_size.min(u.size);
                    r.max_size = r.max_size.max(u.size);
                    r.cost = r.cost.add(l.billed);
                    r.hours += 1;
                }
                _ if item == "compute" && u.pool_id.is_none() => {
                    let key = (l.account, t.syms.id(u.sku.unwrap_or("")), t.syms.id(u.region.unwrap_or("")));
                    let e = t.ppu_public.entry(key).or_default();
                    e.0 = e.0.add(l.quantity);
                    e.1 = e.1.add(l.billed);
                }
                _ => {}
            }
        }
    }

    /// Turns the period's accumulators into the maps the tables read. Call once, after
    /// the last [`CostBook::observe`].
    pub fn finish(&mut self) {
        let t = std::mem::take(&mut self.tally);
        let s = &t.syms;
        let opt = |i: Sym| s.name(i).map(str::to_string);
        self.composition = t.composition.into_iter().map(|((a, d, v), x)| ((a, DIMS[d as usize], s.string(v)), x)).collect();
        self.resources = t.resources.into_iter().map(|((a, r), x)| ((a, s.string(r)), x)).collect();
        self.allocation = t
            .allocation
            .into_iter()
            .map(|((account, source, target, project, tags, method), x)| {
                (AllocKey { account, source: opt(source), target: opt(target), project: opt(project), tags: opt(tags), method }, x)
            })
            .collect();
        self.notebooks = t.notebooks.into_iter().map(|((a, r), x)| ((a, s.string(r)), x)).collect();
        self.ppu_public = t.ppu_public.into_iter().map(|((a, k, r), x)| ((a, s.string(k), s.string(r)), x)).collect();
        self.ppu_resources = t.ppu_resources.into_iter().map(|((a, r), x)| ((a, s.string(r)), x)).collect();
    }

    /// Records an hour's settlements (for burn rates).
    pub fn observe_settlements(&mut self, st: &[crate::rules::records::Settlement]) {
        for s in st {
            let e = self.deductions.entry((s.account, s.hour_start.div_euclid(DAY))).or_default();
            *e = e.add(s.deduction);
        }
    }

    /// Σ allocated amounts per account.
    pub fn allocated_totals(&self) -> FxHashMap<u32, Dec> {
        let mut out: FxHashMap<u32, Dec> = FxHashMap::default();
        for (k, v) in &self.allocation {
            let e = out.entry(k.account).or_default();
            *e = e.add(*v);
        }
        out
    }
}

impl Tally {
    fn allocate(&mut self, key: (u32, Sym, Sym, Sym, Sym, Method), amount: Dec) {
        let e = self.allocation.entry(key).or_default();
        *e = e.add(amount);
    }

    fn direct_key(&mut self, l: &Line, u: Option<&UsageView<'_>>, n: &Names<'_>) -> (u32, Sym, Sym, Sym, Sym, Method) {
        let commitment_resource = |c: Commitment| match c {
            Commitment::Package(i) => n.packages[i as usize].package_id.as_str(),
            Commitment::Subscription(i) => n.subs.get(i).resource_id.as_str(),
        };
        let (resource, method) = match (u, l.kind) {
            (_, LineKind::Adjustment) => (None, Method::SettlementTruncation),
            (Some(u), _) => {
                let m = if u.module == Some(Module::DedicatedPool) { Method::PoolIdle } else { Method::Direct };
                (Some(u.resource), m)
            }
            (None, LineKind::Unused) => {
                let m = if matches!(l.commitment, Some(Commitment::Subscription(_))) { Method::PoolIdle } else { Method::Direct };
                (l.commitment.map(commitment_resource), m)
            }
            (None, _) => (l.commitment.map(commitment_resource), Method::Direct),
        };
        let resource = self.syms.opt(resource);
        (
            l.account,
            resource,
            resource,
            self.syms.opt(u.and_then(|u| u.project)),
            self.syms.opt(u.and_then(|u| u.tags)),
            method,
        )
    }
}

/// A dedicated pool's lines in one hour: its own rows and the jobs that ran on it.
#[derive(Default)]
struct PoolHour {
    own: Vec<usize>,
    jobs: Vec<usize>,
}
