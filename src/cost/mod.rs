//! Cost management (billing-rules §8): composition, allocation and analysis of a
//! period's spend, accumulated hour by hour from the lines the bill run produces (so
//! memory grows with resources, not rows), plus recommendations.

pub mod allocation;
pub mod frame;
pub mod recommend;
pub mod report;
pub mod rollups;
pub mod syms;
pub mod tables;
mod tally;
pub mod views;

use crate::decimal::{Dec, Overflow, Qty};
use crate::focus;
use crate::lake::inputs::UsageChunk;
use crate::lake::outputs::Names;
use crate::model::Module;
use crate::rules::records::{Commitment, Line, LineKind};
use crate::time::{Micros, DAY};
use allocation::{split, Method};
use rustc_hash::FxHashMap;
use syms::{Dictionary, Sym, Syms, NO_SYM};
use tally::{of, RowSyms, Tally, ValuesKey};

/// Billed, effective and list cost.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    pub billed: Dec,
    pub effective: Dec,
    pub list: Dec,
}

impl Sums {
    fn add(&mut self, l: &Line) -> Result<(), Overflow> {
        self.billed = self.billed.plus(l.billed, "cost total")?;
        self.effective = self.effective.plus(l.effective, "cost total")?;
        self.list = self.list.plus(l.list_cost, "cost total")?;
        Ok(())
    }
    fn merge(&mut self, o: &Sums) -> Result<(), Overflow> {
        self.billed = self.billed.plus(o.billed, "cost total")?;
        self.effective = self.effective.plus(o.effective, "cost total")?;
        self.list = self.list.plus(o.list, "cost total")?;
        Ok(())
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
    /// Each account's lines summed by their composition values, one per dimension
    /// of [`DIMS`] ([`NO_SYM`] for none): what the composition views are computed
    /// from ([`views::composition`]).
    pub values: Vec<(u32, [Sym; 8], Sums)>,
    pub daily: FxHashMap<(u32, i64), Sums>,
    /// Each account's resources and their lines' sums.
    pub resources: Vec<(u32, Sym, Sums)>,
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
    /// The names the symbols above stand for.
    pub names: Dictionary,
    /// What the hours add up to, keyed by interned names; turned into the maps
    /// above by [`CostBook::finish`].
    tally: Tally,
}

/// The composition dimensions, in the order of the values of a tally's composition tuples.
pub const DIMS: [&str; 8] = ["billing_item", "module", "product", "billing_mode", "sku", "region", "charge_category", "module_billing_item"];

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

/// The usage fields of a line, when it has a usage row. Those most lines do not need
/// (a pool's, a size) are read when asked for: each is a column of its own to reach.
struct UsageView<'a> {
    chunk: &'a UsageChunk,
    row: usize,
    resource: &'a str,
    project: Option<&'a str>,
    tags: Option<&'a str>,
    module: Option<Module>,
    sku: Option<&'a str>,
    region: Option<&'a str>,
}

impl<'a> UsageView<'a> {
    /// `nodes × unit_count`.
    fn size(&self) -> i64 {
        self.chunk.nodes.get(self.row).unwrap_or(1) * self.chunk.unit_count.get(self.row).unwrap_or(1)
    }
    fn pool_id(&self) -> Option<&'a str> {
        self.chunk.pool_id.get(self.row).filter(|s| !s.is_empty())
    }
    /// Run on the public pool (`pool_type = public`): what packages cover.
    fn public(&self) -> bool {
        self.chunk.pool_type.get(self.row) == Some("public")
    }
}

fn view<'a>(l: &Line, chunks: &'a [UsageChunk]) -> Option<UsageView<'a>> {
    let loc = l.usage?;
    let c = &chunks[loc.chunk as usize];
    let i = loc.row as usize;
    Some(UsageView {
        chunk: c,
        row: i,
        resource: c.resource_id.get(i)?,
        project: c.enterprise_project.get(i),
        tags: c.tags.get(i),
        module: l.module,
        sku: c.sku.get(i),
        region: c.region.get(i),
    })
}

impl CostBook {
    /// Accumulates the lines of one hour (or of the period's close, with no chunks).
    pub fn observe(&mut self, lines: &[Line], chunks: &[UsageChunk], n: &Names<'_>) -> Result<(), Overflow> {
        // Pools with jobs this hour, per account: capacity, cost and the jobs' weights.
        // Only then are the lines' usage fields kept: the pools need them twice.
        let pooled = lines.iter().any(|l| {
            matches!(l.kind, LineKind::PoolJob | LineKind::Committed)
                && l.usage.is_some_and(|loc| chunks[loc.chunk as usize].pool_id.get(loc.row as usize).is_some_and(|p| !p.is_empty()))
        });
        let views: Vec<Option<UsageView<'_>>> = if pooled { lines.iter().map(|l| view(l, chunks)).collect() } else { Vec::new() };
        let mut pools: FxHashMap<(u32, &str), PoolHour> = FxHashMap::default();
        for (k, (l, u)) in lines.iter().zip(&views).enumerate() {
            if let Some(pool) = u.as_ref().and_then(|u| u.pool_id()) {
                if matches!(l.kind, LineKind::PoolJob | LineKind::Committed) {
                    pools.entry((l.account, pool)).or_default().jobs.push(k);
                }
            }
        }
        if !pools.is_empty() {
            for (k, (l, u)) in lines.iter().zip(&views).enumerate() {
                if let Some(u) = u.as_ref().filter(|u| u.pool_id().is_none()) {
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
            let cost = ph.own.iter().try_fold(Dec::ZERO, |a, &k| a.plus(lines[k].effective, "pool cost"))?;
            let capacity: Qty = ph.own.iter().try_fold(Qty::ZERO, |a, &k| a.plus(lines[k].quantity, "pool capacity"))?;
            let used: Qty = ph.jobs.iter().try_fold(Qty::ZERO, |a, &k| a.plus(lines[k].quantity, "pool usage"))?;
            let mut weights: Vec<i128> = ph.jobs.iter().map(|&k| lines[k].quantity.0).collect();
            weights.push(capacity.minus(used, "pool idle capacity")?.0.max(0));
            let shares = split(cost, &weights)?;
            let pool_view = views[ph.own[0]].as_ref();
            let pool_sym = t.syms.id(pool);
            for (j, &k) in ph.jobs.iter().enumerate() {
                let u = views[k].as_ref();
                let key = (
                    pool_sym,
                    t.syms.opt(u.map(|u| u.resource)),
                    t.syms.opt(u.and_then(|u| u.project)),
                    t.syms.opt(u.and_then(|u| u.tags)),
                    Method::PoolNodeSeconds,
                );
                t.allocate(*account, key, shares[j])?;
                allocated[k] = true;
            }
            let idle = (pool_sym, pool_sym, t.syms.opt(pool_view.and_then(|u| u.project)), t.syms.opt(pool_view.and_then(|u| u.tags)), Method::PoolIdle);
            t.allocate(*account, idle, shares[ph.jobs.len()])?;
            for &k in &ph.own {
                allocated[k] = true;
            }
        }
        for (k, l) in lines.iter().enumerate() {
            let here;
            let u = if pooled {
                &views[k]
            } else {
                here = view(l, chunks);
                &here
            };
            let syms = u.as_ref().map(|u| {
                let (resource, place) = self.tally.resource(l.account, u.resource);
                RowSyms { resource, place, project: self.tally.syms.opt_here(u.project), tags: self.tally.syms.opt_here(u.tags) }
            });
            self.observe_line(l, u.as_ref(), syms, n)?;
            if !allocated[k] {
                let key = self.tally.direct_key(l, u.as_ref(), syms, n);
                match syms {
                    // A usage line's own resource: kept with the resource.
                    Some(s) if key.0 == s.resource && key.1 == s.resource => {
                        let at = of(&mut self.tally.accounts, l.account);
                        let how = (key.2, key.3, key.4);
                        match &mut at.resources[s.place as usize].direct {
                            Some((k, x)) if *k == how => *x = x.plus(l.effective, "cost total")?,
                            Some(_) => {
                                let e = at.allocation.entry(key).or_default();
                                *e = e.plus(l.effective, "cost total")?;
                            }
                            d @ None => *d = Some((how, l.effective)),
                        }
                    }
                    _ => self.tally.allocate(l.account, key, l.effective)?,
                }
            }
        }
        self.tally.pending.flush(&mut self.tally.accounts)?;
        self.tally.syms.end_hour();
        self.tally.values.clear();
        self.tally.last_values = None;
        self.tally.end_account();
        Ok(())
    }

    /// A line's composition values, one per dimension of [`DIMS`], and whether its
    /// billing item is compute.
    fn compose(names: &mut Syms, l: &Line, u: Option<&UsageView<'_>>, n: &Names<'_>) -> ([Sym; 8], bool) {
        let module = u.and_then(|u| u.module);
        let item_name = focus::billing_item(l, module, n.catalog);
        let item = names.stable(item_name);
        let module_name = names.stable(focus::module_key(module, l.kind));
        let (sku, region) = match (u, l.commitment) {
            (Some(u), _) => (u.sku.map(|s| names.here(s)), u.region.map(|s| names.here(s))),
            (None, Some(Commitment::Package(i))) => {
                let p = &n.packages[i as usize];
                (Some(names.stable(&p.sku)), Some(names.stable(&p.region)))
            }
            (None, Some(Commitment::Subscription(i))) => {
                let s = n.subs.get(i);
                (Some(names.stable(&s.sku)), Some(names.stable(&s.region)))
            }
            // A settlement adjustment has neither: it is keyed as the module view
            // keys it, so that every view adds up to the bill.
            (None, None) => {
                let own = Some(names.stable(focus::module_key(None, l.kind)));
                (own, own)
            }
        };
        let mode = names.stable(focus::billing_mode(l.kind, l.commitment));
        let values: [Option<Sym>; 8] = [
            Some(item),
            Some(module_name),
            Some(names.stable(focus::product(module, l.kind))),
            Some(mode),
            sku,
            region,
            Some(names.stable(focus::charge_category(l.kind))),
            // What each module is made of: notebook = compute + block storage, …
            Some(names.pair(module_name, item)),
        ];
        (values.map(|v| v.unwrap_or(NO_SYM)), item_name == "compute")
    }

    fn observe_line(&mut self, l: &Line, u: Option<&UsageView<'_>>, syms: Option<RowSyms>, n: &Names<'_>) -> Result<(), Overflow> {
        let module = u.and_then(|u| u.module);
        let Tally { syms: names, accounts, pending, values: memo, last_values, .. } = &mut self.tally;
        // A usage line's values depend on a few of its fields: worked out once per
        // distinct fields an hour, the line before's tried first.
        let (values, compute) = match u {
            Some(u) => {
                let address = |s: Option<&str>| s.map_or((0, usize::MAX), |s| (s.as_ptr() as usize, s.len()));
                let key = ValuesKey {
                    price_row: l.price_row.unwrap_or(u32::MAX),
                    kind: l.kind as u8,
                    module: module.map_or(u8::MAX, |m| m as u8),
                    commitment: match l.commitment {
                        None => 0,
                        Some(Commitment::Package(_)) => 1,
                        Some(Commitment::Subscription(_)) => 2,
                    },
                    sku: address(u.sku),
                    region: address(u.region),
                };
                match last_values {
                    Some((k, v, c)) if *k == key => (*v, *c),
                    _ => {
                        let (v, c) = match memo.get(&key) {
                            Some(&x) => x,
                            None => {
                                let x = Self::compose(names, l, Some(u), n);
                                memo.insert(key, x);
                                x
                            }
                        };
                        *last_values = Some((key, v, c));
                        (v, c)
                    }
                }
            }
            None => Self::compose(names, l, None, n),
        };
        let own_rows = matches!(module, Some(Module::DedicatedPool | Module::LiteCluster | Module::LiteServer));
        let public_key = match (u, l.kind) {
            // Public-pool rows carry no pool id (the row checks refuse one).
            (Some(u), LineKind::Standard) if !own_rows && compute && u.public() => {
                let sku = if values[4] != NO_SYM { values[4] } else { names.here("") };
                let region = if values[5] != NO_SYM { values[5] } else { names.here("") };
                Some((sku, region))
            }
            _ => None,
        };
        pending.switch(accounts, l.account)?;
        pending.day(l.charge_start.div_euclid(DAY), l)?;
        if let Some(key) = public_key {
            pending.public(key, l.quantity, l.billed)?;
        }
        let at = of(accounts, l.account);
        let place = match (syms, l.commitment) {
            (Some(s), _) => Some(s.place),
            (None, Some(Commitment::Package(i))) => Some(at.place(names.stable(&n.packages[i as usize].package_id))),
            (None, Some(Commitment::Subscription(i))) => Some(at.place(names.stable(&n.subs.get(i).resource_id))),
            _ => None,
        };
        at.effective = Some(at.effective.unwrap_or_default().plus(l.effective, "cost total")?);
        let held = match place {
            Some(p) => {
                let r = &mut at.resources[p as usize];
                r.sums.add(l)?;
                match &mut r.composition {
                    Some((k, s)) if *k == values => {
                        s.add(l)?;
                        true
                    }
                    Some(_) => false,
                    c @ None => {
                        let mut s = Sums::default();
                        s.add(l)?;
                        *c = Some((values, s));
                        true
                    }
                }
            }
            None => false,
        };
        if !held {
            pending.add(accounts, l.account, values, l)?;
        }
        let at = of(accounts, l.account);
        if let (Some(s), Some(Module::Notebook)) = (syms, module) {
            let nb = at.notebooks.entry(s.place).or_default();
            if compute {
                nb.last_compute = Some(nb.last_compute.map_or(l.charge_end, |t| t.max(l.charge_end)));
            } else {
                let e = nb.disk_by_day.entry(l.charge_start.div_euclid(DAY)).or_default();
                *e = e.plus(l.billed, "cost total")?;
            }
        }
        if let (Some(u), Some(s), LineKind::Standard) = (u, syms, l.kind) {
            if own_rows {
                let r = at.ppu_resources.entry(s.place).or_insert_with(|| PpuResource {
                    sku: u.sku.unwrap_or("").to_string(),
                    region: u.region.unwrap_or("").to_string(),
                    module,
                    min_size: u.size(),
                    max_size: u.size(),
                    ..PpuResource::default()
                });
                let size = u.size();
                r.min_size = r.min_size.min(size);
                r.max_size = r.max_size.max(size);
                r.cost = r.cost.plus(l.billed, "cost total")?;
                r.hours += 1;
            }
        }
        Ok(())
    }

    /// Turns the period's accumulators into the maps the tables read. Call once, after
    /// the last [`CostBook::observe`].
    pub fn finish(&mut self) -> Result<(), Overflow> {
        let t = std::mem::take(&mut self.tally);
        let s = &t.syms;
        let opt = |i: Sym| s.name(i).map(str::to_string);
        for (a, at) in t.accounts.into_iter().enumerate() {
            let a = a as u32;
            if let Some(e) = at.effective {
                self.effective.insert(a, e);
            }
            self.daily.extend(at.daily.into_iter().map(|(d, x)| ((a, d), x)));
            let held = at.resources.iter().filter_map(|r| r.composition.as_ref()).map(|(v, x)| (a, *v, *x));
            self.values.extend(at.composition.into_iter().map(|(v, x)| (a, v, x)).chain(held));
            let mut allocation = at.allocation;
            let name = |place: u32| s.string(at.resources[place as usize].name);
            self.notebooks.extend(at.notebooks.into_iter().map(|(p, x)| ((a, name(p)), x)));
            self.ppu_resources.extend(at.ppu_resources.into_iter().map(|(p, x)| ((a, name(p)), x)));
            for r in at.resources {
                if let Some(((project, tags, method), x)) = r.direct {
                    let e = allocation.entry((r.name, r.name, project, tags, method)).or_default();
                    *e = e.plus(x, "cost total")?;
                }
                self.resources.push((a, r.name, r.sums));
            }
            self.allocation.extend(allocation.into_iter().map(|((source, target, project, tags, method), x)| {
                (AllocKey { account: a, source: opt(source), target: opt(target), project: opt(project), tags: opt(tags), method }, x)
            }));
            self.ppu_public.extend(at.ppu_public.into_iter().map(|((k, r), x)| ((a, s.string(k), s.string(r)), x)));
        }
        self.names = t.syms.into_dictionary();
        Ok(())
    }

    /// Records an hour's settlements (for burn rates).
    pub fn observe_settlements(&mut self, st: &[crate::rules::records::Settlement]) -> Result<(), Overflow> {
        for s in st {
            let e = self.deductions.entry((s.account, s.hour_start.div_euclid(DAY))).or_default();
            *e = e.plus(s.deduction, "cost total")?;
        }
        Ok(())
    }

    /// Σ allocated amounts per account.
    pub fn allocated_totals(&self) -> Result<FxHashMap<u32, Dec>, Overflow> {
        let mut out: FxHashMap<u32, Dec> = FxHashMap::default();
        for (k, v) in &self.allocation {
            let e = out.entry(k.account).or_default();
            *e = e.plus(*v, "cost total")?;
        }
        Ok(out)
    }
}

/// A dedicated pool's lines in one hour: its own rows and the jobs that ran on it.
#[derive(Default)]
struct PoolHour {
    own: Vec<usize>,
    jobs: Vec<usize>,
}
