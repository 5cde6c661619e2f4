//! The period's names (resources, SKUs, projects, tags, …) interned as symbols, so
//! that the cost book's tallies are keyed by integers; and what is kept of them once
//! the period is tallied, for the views to name their keys.

use crate::text::same_bytes;
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;

/// A name interned for the period: an index into [`Syms`].
pub type Sym = u32;
/// The absent name.
pub const NO_SYM: Sym = Sym::MAX;

/// The period's distinct names (resources, SKUs, projects, tags, …), each stored once.
#[derive(Debug, Default)]
pub struct Syms {
    /// Each name's symbol, by the hash of its bytes (kept with it); the bytes are
    /// the name's span of `text`, so a name is not also held in a box of its own.
    ids: HashTable<(u64, Sym)>,
    /// The names' bytes, one after another in the order they were first seen (an
    /// hour's resources then lie in the order the next hour reads them), and each
    /// name's span.
    text: String,
    spans: Vec<(usize, usize)>,
    /// Names that stay put for the whole run (constants, catalog and inventory
    /// fields), by address and length: found without hashing their bytes.
    stable: FxHashMap<(usize, usize), Sym>,
    /// `module/billing_item` pairs.
    pairs: FxHashMap<(Sym, Sym), Sym>,
    /// Names borrowed from the usage chunks of the hour being observed, by address and
    /// length (a usage column read as a dictionary holds each name once): emptied
    /// when the hour is done, since the chunks' memory is then reused.
    here: FxHashMap<(usize, usize), Sym>,
}

impl Syms {
    pub fn id(&mut self, s: &str) -> Sym {
        let hash = FxBuildHasher.hash_one(s.as_bytes());
        let (text, spans) = (&self.text, &self.spans);
        let same = |i: Sym| spans.get(i as usize).is_some_and(|&(from, to)| same_bytes(&text.as_bytes()[from..to], s.as_bytes()));
        if let Some(&(_, i)) = self.ids.find(hash, |&(h, i)| h == hash && same(i)) {
            return i;
        }
        let i = self.spans.len() as Sym;
        self.spans.push((self.text.len(), self.text.len() + s.len()));
        self.text.push_str(s);
        self.ids.insert_unique(hash, (hash, i), |&(h, _)| h);
        i
    }
    pub fn opt(&mut self, s: Option<&str>) -> Sym {
        s.map_or(NO_SYM, |s| self.id(s))
    }
    /// The id of a name borrowed from the hour's usage chunks.
    pub fn here(&mut self, s: &str) -> Sym {
        self.by_address(s, false)
    }
    pub fn opt_here(&mut self, s: Option<&str>) -> Sym {
        s.map_or(NO_SYM, |s| self.here(s))
    }
    /// The id of a name that lives, unchanged, as long as the run's reference data:
    /// never one borrowed from a usage chunk, whose memory is reused.
    pub fn stable(&mut self, s: &str) -> Sym {
        self.by_address(s, true)
    }
    /// The id of a name found by its address and length in `stable` or `here`.
    fn by_address(&mut self, s: &str, stable: bool) -> Sym {
        let key = (s.as_ptr() as usize, s.len());
        let known = if stable { &self.stable } else { &self.here };
        if let Some(&i) = known.get(&key) {
            return i;
        }
        let i = self.id(s);
        if stable { &mut self.stable } else { &mut self.here }.insert(key, i);
        i
    }
    pub fn pair(&mut self, module: Sym, item: Sym) -> Sym {
        if let Some(&i) = self.pairs.get(&(module, item)) {
            return i;
        }
        let name = format!("{}/{}", self.name(module).unwrap_or_default(), self.name(item).unwrap_or_default());
        let i = self.id(&name);
        self.pairs.insert((module, item), i);
        i
    }
    pub fn name(&self, i: Sym) -> Option<&str> {
        self.spans.get(i as usize).map(|&(from, to)| &self.text[from..to])
    }
    pub fn string(&self, i: Sym) -> String {
        self.name(i).unwrap_or_default().to_string()
    }
}

impl Syms {
    /// The hour's usage chunks are done with: forget the names found by their address.
    pub fn end_hour(&mut self) {
        self.here.clear();
    }

    /// The names alone, for reading: the tables that find them are dropped.
    pub fn into_dictionary(self) -> Dictionary {
        Dictionary { text: self.text, spans: self.spans }
    }
}

/// The period's names by symbol, once the tallies are done.
#[derive(Debug, Default)]
pub struct Dictionary {
    text: String,
    spans: Vec<(usize, usize)>,
}

impl Dictionary {
    pub fn name(&self, i: Sym) -> Option<&str> {
        self.spans.get(i as usize).map(|&(from, to)| &self.text[from..to])
    }
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}
