//! The rating order of an hour's rows, and a chunk's dictionary columns resolved once
//! a distinct value: both only make the engine fast, and are held to plain
//! references by their tests.

use crate::rules::batch::Entries;
use crate::rules::pricing::Catalog;
use crate::time::Micros;

/// A checked row's place in the rating order: account, start time, record id, then
/// its run of rows and its place in the run.
pub(super) type Pos<'a> = (u32, Micros, &'a str, u32, u32);

/// `order` (positions in file order) sorted as `Pos` sorts. Accounts are indices: the
/// positions are first placed by account, by counting (an hour has a few rows an
/// account), and only each account's own rows are then sorted. Most rows of an account
/// and hour share their start time, so the order falls to the record ids: they are
/// compared by their first 16 bytes as one number, and in full only where those are
/// the same, with the start time as another number before them.
pub(super) fn rating_order(order: Vec<Pos<'_>>) -> Vec<Pos<'_>> {
    let head = |s: &str| {
        let mut b = [0u8; 16];
        let n = s.len().min(16);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        u128::from_be_bytes(b)
    };
    // Where each account's positions start, and (last) where they all end.
    let accounts = order.iter().map(|p| p.0 as usize + 1).max().unwrap_or(0);
    let mut starts = vec![0u32; accounts + 1];
    for p in &order {
        starts[p.0 as usize + 1] += 1;
    }
    for a in 1..=accounts {
        starts[a] += starts[a - 1];
    }
    // The start time's sign bit flipped: signed order as unsigned.
    let mut keys: Vec<(u64, u128, u32)> = vec![(0, 0, 0); order.len()];
    let mut next = starts.clone();
    for (n, p) in order.iter().enumerate() {
        let at = &mut next[p.0 as usize];
        keys[*at as usize] = (p.1 as u64 ^ (1 << 63), head(p.2), n as u32);
        *at += 1;
    }
    // Positions are numbered in (run, row) order: the number breaks the last ties.
    for w in starts.windows(2) {
        keys[w[0] as usize..w[1] as usize]
            .sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| order[a.2 as usize].2.cmp(order[b.2 as usize].2)).then(a.2.cmp(&b.2)));
    }
    keys.iter().map(|k| order[k.2 as usize]).collect()
}

/// A usage chunk's dictionary columns resolved once a distinct value rather than once
/// a row: the index of each account key (`None`: not in accounts) and whether each SKU
/// key is in the catalog. A row whose column has no dictionary is looked up itself.
#[derive(Debug, Default)]
pub(super) struct Keys {
    pub(super) accounts: Option<Vec<Option<u32>>>,
    pub(super) skus: Option<Vec<bool>>,
    /// The pay-per-use price keys of the SKU and region dictionaries' pairs.
    pub(super) prices: Option<PriceKeys>,
    /// With a [`RowSelection`], the rows it rates.
    pub(super) wanted: Option<Vec<bool>>,
}

/// The pay-per-use price key ([`Catalog::ppu_key`]) of each pair of a chunk's SKU and
/// region dictionary values, found once a chunk: a row is then priced by its keys
/// into the two dictionaries, without hashing its names.
#[derive(Debug)]
pub(super) struct PriceKeys {
    regions: usize,
    /// By `sku × regions + region`; `None` for a pair with a null value.
    keys: Vec<Option<Option<u32>>>,
}

impl PriceKeys {
    /// Dictionaries of a few values each (a pair a price row at most): larger ones
    /// (`None`) are left to the lookup by name.
    pub(super) fn of<E: Entries>(catalog: &Catalog, skus: &E, regions: &E) -> Option<PriceKeys> {
        if skus.len() * regions.len() > 1 << 16 {
            return None;
        }
        let keys = (0..skus.len())
            .flat_map(|s| (0..regions.len()).map(move |g| (s, g)))
            .map(|(s, g)| Some(catalog.ppu_key(skus.entry(s)?, regions.entry(g)?)))
            .collect();
        Some(PriceKeys { regions: regions.len(), keys })
    }

    /// The key of the pair at SKU key `sku` and region key `region` (`None`: not
    /// known here).
    pub(super) fn get(&self, sku: usize, region: usize) -> Option<Option<u32>> {
        (region < self.regions).then(|| self.keys.get(sku * self.regions + region).copied().flatten()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A chunk's price keys are the catalog's keys of each pair of its SKU and region
    /// dictionaries' values, in any order, with nulls and pairs the catalog lacks.
    #[test]
    fn price_keys_are_the_catalogs_by_dictionary_entry() {
        use crate::rules::pricing::test_ppu_row as row;
        /// A dictionary of owned values.
        struct Dict(Vec<Option<String>>);
        impl Entries for Dict {
            fn len(&self) -> usize {
                self.0.len()
            }
            fn entry(&self, k: usize) -> Option<&str> {
                self.0.get(k)?.as_deref()
            }
        }
        let dict = |v: &[Option<&str>]| Dict(v.iter().map(|s| s.map(str::to_string)).collect());
        let catalog = Catalog::new(vec![row("s0", "r0"), row("s1", "r1"), row("s2", "r0"), row("s2", "r2")]).unwrap();
        let skus = dict(&[Some("s2"), None, Some("s0"), Some("s9"), Some("s1")]);
        let regions = dict(&[Some("r2"), Some("r0"), None, Some("r1")]);
        let p = PriceKeys::of(&catalog, &skus, &regions).unwrap();
        let mut found = 0;
        for s in 0..skus.len() {
            for g in 0..regions.len() {
                let want = skus.entry(s).zip(regions.entry(g)).map(|(s, g)| catalog.ppu_key(s, g));
                assert_eq!(p.get(s, g), want, "SKU entry {s}, region entry {g}");
                found += usize::from(matches!(want, Some(Some(_))));
            }
        }
        assert_eq!(found, 4, "every price pair is found once");
        assert_eq!(p.get(0, regions.len()), None, "a region key past the dictionary is not known here");
        // Dictionaries too large to pair up are left to the lookup by name.
        let many = Dict((0..300).map(|i| Some(format!("x{i}"))).collect());
        assert!(PriceKeys::of(&catalog, &many, &many).is_none());
    }

    proptest! {
        /// The rating order by number keys is the order of the positions themselves:
        /// record ids that share 16 bytes or more, that end inside them, or that hold
        /// NUL bytes (a shorter id padded reads as the same number), and start times
        /// either side of the epoch.
        #[test]
        fn rating_order_is_the_positions_order(
            rows in proptest::collection::vec((prop_oneof![0u32..4, 0u32..300], prop_oneof![Just(-1i64), Just(0i64), Just(3_600_000_000i64), any::<i64>()],
                "(res-0000-000-nb-disk-49|res-0000-000-nb|ab\\x00?|ab|)[a-c\\x00]{0,3}"), 0..200)
        ) {
            // Positions as the engine numbers them: runs of rows in order, rows in a run.
            let order: Vec<Pos<'_>> = rows.iter().enumerate().map(|(n, (a, t, id))| (*a, *t, id.as_str(), n as u32 / 7, n as u32 % 7)).collect();
            let mut plain = order.clone();
            plain.sort_unstable();
            prop_assert_eq!(rating_order(order), plain);
        }
    }
}
