//! The cost book's hour-by-hour accumulators: per account, keyed by interned names
//! (`syms.rs`), so that a line costs no allocation once its names are seen and
//! updates small tables already at hand. `CostBook::observe` feeds them;
//! `CostBook::finish` turns them into the period's sums.

use super::allocation::Method;
use super::syms::{Sym, Syms, NO_SYM};
use super::{NotebookUse, PpuResource, Sums, UsageView};
use crate::decimal::{Dec, Overflow, Qty};
use crate::lake::outputs::Names;
use crate::model::Module;
use crate::rules::records::{Commitment, Line, LineKind};
use rustc_hash::FxHashMap;

/// The hour-by-hour accumulators, keyed by interned names so that a line costs no
/// allocation once its names have been seen, and kept per account: an hour's lines
/// come account by account, so each line updates small tables that are already at
/// hand rather than probing tables of the whole period.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) syms: Syms,
    /// By account index.
    pub(super) accounts: Vec<AccountTally>,
    /// The composition sums of the account being observed.
    pub(super) pending: Pending,
    /// Per account, the resources of its lines in the last hour it had lines, in
    /// their order (see [`Tally::resource`]): each as its place in the account's
    /// [`AccountTally::resources`], its name's symbol and its name's bytes, one after
    /// another in one buffer ([`recent_entry`]), so that a line compares its name
    /// with bytes read in sequence, not ones found through the resource and the
    /// symbol tables.
    pub(super) recent: Vec<Vec<u8>>,
    /// The account whose lines are being observed, its resources so far this hour
    /// (as `recent`), and the offset in its `recent` resources to try next.
    pub(super) current: Option<u32>,
    pub(super) names_now: Vec<u8>,
    pub(super) cursor: usize,
    /// The composition values of the hour's usage lines, by what they depend on (see
    /// [`ValuesKey`]): emptied with [`Syms::here`], whose names they hold.
    pub(super) values: FxHashMap<ValuesKey, ([Sym; 8], bool)>,
    pub(super) last_values: Option<(ValuesKey, [Sym; 8], bool)>,
}

/// What a usage line's composition values depend on: its price row, kind, module
/// and kind of commitment, and its SKU and region (by address, as [`Syms::here`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct ValuesKey {
    pub(super) price_row: u32,
    pub(super) kind: u8,
    pub(super) module: u8,
    pub(super) commitment: u8,
    pub(super) sku: (usize, usize),
    pub(super) region: (usize, usize),
}

/// An hour's lines come account by account, and among one account's lines a few
/// composition values recur: they are summed here first, and the account's table
/// (cold, one of thousands) is updated once per distinct value when the account's
/// lines end. So are its lines' days (an hour's lines share one) and its public-pool
/// pay-per-use SKUs and regions.
#[derive(Debug, Default)]
pub(super) struct Pending {
    pub(super) account: Option<u32>,
    pub(super) sums: Vec<([Sym; 8], Sums)>,
    pub(super) daily: Vec<(i64, Sums)>,
    pub(super) public: Vec<((Sym, Sym), (Qty, Dec))>,
}

/// The value under `key` in a short list, opened on first use. The last entries
/// are tried first: an account's current day is its last.
fn listed<K: PartialEq, V: Default>(list: &mut Vec<(K, V)>, key: K) -> &mut V {
    let at = match list.iter().rposition(|(k, _)| *k == key) {
        Some(at) => at,
        None => {
            list.push((key, V::default()));
            list.len() - 1
        }
    };
    &mut list[at].1
}

/// Public-pool quantity and cost added to a sum of them.
fn add_public(sum: &mut (Qty, Dec), quantity: Qty, billed: Dec) -> Result<(), Overflow> {
    sum.0 = sum.0.plus(quantity, "public-pool quantity")?;
    sum.1 = sum.1.plus(billed, "public-pool cost")?;
    Ok(())
}

/// Distinct values summed in [`Pending`] before the rest go to the table directly.
const PENDING_MAX: usize = 16;

impl Pending {
    /// The lines of `account` follow: the pending sums of the one before go to its
    /// tables.
    pub(super) fn switch(&mut self, accounts: &mut Vec<AccountTally>, account: u32) -> Result<(), Overflow> {
        if self.account != Some(account) {
            self.flush(accounts)?;
            self.account = Some(account);
        }
        Ok(())
    }

    /// A line of the pending account ([`Pending::switch`]) with composition `key`.
    pub(super) fn add(&mut self, accounts: &mut Vec<AccountTally>, account: u32, key: [Sym; 8], l: &Line) -> Result<(), Overflow> {
        if let Some((_, s)) = self.sums.iter_mut().find(|(k, _)| *k == key) {
            s.add(l)?;
        } else if self.sums.len() < PENDING_MAX {
            let mut s = Sums::default();
            s.add(l)?;
            self.sums.push((key, s));
        } else {
            of(accounts, account).composition.entry(key).or_default().add(l)?;
        }
        Ok(())
    }

    /// A line of the pending account on day `day`.
    pub(super) fn day(&mut self, day: i64, l: &Line) -> Result<(), Overflow> {
        listed(&mut self.daily, day).add(l)
    }

    /// A public-pool pay-per-use line of the pending account.
    pub(super) fn public(&mut self, key: (Sym, Sym), quantity: Qty, billed: Dec) -> Result<(), Overflow> {
        add_public(listed(&mut self.public, key), quantity, billed)
    }

    pub(super) fn flush(&mut self, accounts: &mut Vec<AccountTally>) -> Result<(), Overflow> {
        if let Some(a) = self.account.take() {
            let at = of(accounts, a);
            for (k, s) in self.sums.drain(..) {
                at.composition.entry(k).or_default().merge(&s)?;
            }
            for (d, s) in self.daily.drain(..) {
                listed(&mut at.daily, d).merge(&s)?;
            }
            for (k, (q, c)) in self.public.drain(..) {
                add_public(listed(&mut at.ppu_public, k), q, c)?;
            }
        }
        Ok(())
    }
}

/// One account's accumulators.
#[derive(Debug, Default)]
pub(super) struct AccountTally {
    /// Σ EffectiveCost of the account's lines (`None`: no line yet).
    pub(super) effective: Option<Dec>,
    /// By day: an hour adds to the last day, or opens the next (a list, not a
    /// table: one cache line to find it in, not two).
    pub(super) daily: Vec<(i64, Sums)>,
    /// The account's lines by their composition values, one per dimension of
    /// [`DIMS`] ([`NO_SYM`] for none): a line costs one lookup, not one per
    /// dimension; the dimensions are summed by [`CostBook::finish`].
    pub(super) composition: FxHashMap<[Sym; 8], Sums>,
    /// The account's resources, in the order first seen: a line finds its own by
    /// its place, and an hour's lines, in the order of the hour before, walk the list
    /// rather than probe a table of the whole period.
    pub(super) resources: Vec<ResourceTally>,
    /// The place of each resource in `resources`, by name.
    pub(super) places: FxHashMap<Sym, u32>,
    /// source, target, project, tags, method (but the first of a resource's own
    /// lines' direct allocations, kept with the resource).
    pub(super) allocation: FxHashMap<AllocSyms, Dec>,
    /// By place in `resources`.
    pub(super) notebooks: FxHashMap<u32, NotebookUse>,
    /// A few SKU and region pairs an account: a list, as `daily`.
    pub(super) ppu_public: Vec<((Sym, Sym), (Qty, Dec))>,
    /// Pools and Lite resources billed pay-per-use, by place in `resources`.
    pub(super) ppu_resources: FxHashMap<u32, PpuResource>,
}

/// One resource's accumulators within its account: what a line of it updates,
/// kept small.
#[derive(Debug)]
pub(super) struct ResourceTally {
    /// Its lines' sums.
    pub(super) sums: Sums,
    /// Its usage lines' direct allocation by project, tags and method, when all its
    /// lines so far had the same (others go to the account's table).
    pub(super) direct: Option<((Sym, Sym, Method), Dec)>,
    /// The composition values of its first line, and the sums of its lines that had
    /// the same (most of a resource's lines): found beside its sums, where the
    /// account's table would be a probe into memory long gone cold. Its other lines'
    /// values go through [`Pending`].
    pub(super) composition: Option<([Sym; 8], Sums)>,
    pub(super) name: Sym,
}

impl AccountTally {
    /// The place of resource `name` in [`AccountTally::resources`], opened on first
    /// use.
    pub(super) fn place(&mut self, name: Sym) -> u32 {
        let next = self.resources.len() as u32;
        let at = *self.places.entry(name).or_insert(next);
        if at == next {
            self.resources.push(ResourceTally { name, sums: Sums::default(), direct: None, composition: None });
        }
        at
    }
}

/// An allocation's source, target, project, tags and method.
pub(super) type AllocSyms = (Sym, Sym, Sym, Sym, Method);

/// The entry of account `a` in a table by account index, opened on first use.
pub(super) fn of<T: Default>(by_account: &mut Vec<T>, a: u32) -> &mut T {
    let i = a as usize;
    if by_account.len() <= i {
        by_account.resize_with(i + 1, T::default);
    }
    &mut by_account[i]
}

/// The interned names of a line's usage row.
#[derive(Clone, Copy)]
pub(super) struct RowSyms {
    pub(super) resource: Sym,
    /// The resource's place in its account's [`AccountTally::resources`].
    pub(super) place: u32,
    pub(super) project: Sym,
    pub(super) tags: Sym,
}

impl Tally {
    /// The interned name of a line's usage row's resource, and its place in the
    /// account's [`AccountTally::resources`] (opened when new). An
    /// account's lines come together, in the order of their record ids, and an
    /// account's resources change little from hour to hour: the resources its lines
    /// had the last hour, in that order, are tried first (a comparison or two, no
    /// hashing), the tables only when neither is the name.
    pub(super) fn resource(&mut self, account: u32, name: &str) -> (Sym, u32) {
        if self.current != Some(account) {
            self.end_account();
            self.current = Some(account);
            self.cursor = 0;
        }
        let recent = self.recent.get(account as usize).map_or(&[][..], Vec::as_slice);
        let mut at = self.cursor;
        let mut found = None;
        for _ in 0..2 {
            let Some((place, sym, text, next)) = recent_entry(recent, at) else { break };
            at = next;
            if text == name.as_bytes() {
                self.cursor = next;
                found = Some((sym, place));
                break;
            }
        }
        let (sym, place) = found.unwrap_or_else(|| {
            let sym = self.syms.id(name);
            (sym, of(&mut self.accounts, account).place(sym))
        });
        let now = &mut self.names_now;
        now.extend_from_slice(&place.to_le_bytes());
        now.extend_from_slice(&sym.to_le_bytes());
        now.extend_from_slice(&(name.len() as u32).to_le_bytes());
        now.extend_from_slice(name.as_bytes());
        (sym, place)
    }

    /// The resources of the account being observed become its recent ones.
    pub(super) fn end_account(&mut self) {
        if let Some(a) = self.current.take() {
            std::mem::swap(of(&mut self.recent, a), &mut self.names_now);
            self.names_now.clear();
        }
    }

    pub(super) fn allocate(&mut self, account: u32, key: AllocSyms, amount: Dec) -> Result<(), Overflow> {
        let e = of(&mut self.accounts, account).allocation.entry(key).or_default();
        *e = e.plus(amount, "cost total")?;
        Ok(())
    }

    pub(super) fn direct_key(&mut self, l: &Line, u: Option<&UsageView<'_>>, syms: Option<RowSyms>, n: &Names<'_>) -> AllocSyms {
        let mut commitment_resource = |c: Option<Commitment>| match c {
            Some(Commitment::Package(i)) => self.syms.stable(&n.packages[i as usize].package_id),
            Some(Commitment::Subscription(i)) => self.syms.stable(&n.subs.get(i).resource_id),
            None => NO_SYM,
        };
        let (resource, method) = match (u, syms, l.kind) {
            (_, _, LineKind::Adjustment) => (NO_SYM, Method::SettlementTruncation),
            (Some(u), Some(s), _) => {
                let m = if u.module == Some(Module::DedicatedPool) { Method::PoolIdle } else { Method::Direct };
                (s.resource, m)
            }
            (_, _, LineKind::Unused) => {
                let m = if matches!(l.commitment, Some(Commitment::Subscription(_))) { Method::PoolIdle } else { Method::Direct };
                (commitment_resource(l.commitment), m)
            }
            _ => (commitment_resource(l.commitment), Method::Direct),
        };
        let (project, tags) = syms.map_or((NO_SYM, NO_SYM), |s| (s.project, s.tags));
        (resource, resource, project, tags, method)
    }
}

/// The entry of [`Tally::recent`] at byte `at` of an account's buffer: the resource's
/// place, its name's symbol, its name's bytes, and the offset of the next entry.
fn recent_entry(buf: &[u8], at: usize) -> Option<(u32, Sym, &[u8], usize)> {
    let word = |k: usize| buf.get(at + 4 * k..at + 4 * k + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let (place, sym, len) = (word(0)?, word(1)?, word(2)? as usize);
    let text = buf.get(at + 12..at + 12 + len)?;
    Some((place, sym, text, at + 12 + len))
}
