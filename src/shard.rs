//! Which shard an account is in (data contract, "Shards"): `pmod(xxhash64(account_id),
//! N)` exactly as Apache Spark SQL computes it — XXH64 of the id's UTF-8 bytes with
//! seed 42, read as a signed 64-bit integer, taken modulo `N` into `0..N`. A null id
//! hashes to the seed, as Spark's `xxhash64(NULL)` does. A Spark job that shuffles usage
//! by this function and billrun's shard runs agree on every row's shard.
//!
//! Part of the pure core: no I/O.

use std::fmt;

/// Spark's seed for `xxhash64`.
pub const SEED: u64 = 42;

/// Spark SQL's `xxhash64(s)` of a string (`None`: SQL NULL).
pub fn xxhash64(s: Option<&str>) -> i64 {
    match s {
        Some(s) => twox_hash::XxHash64::oneshot(SEED, s.as_bytes()) as i64,
        None => SEED as i64,
    }
}

/// Shard `k` of `n`: the accounts whose `pmod(xxhash64(account_id), n)` is `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub k: u32,
    pub n: u32,
}

impl Shard {
    /// `"K/N"`, with `0 <= K < N`.
    pub fn parse(s: &str) -> Option<Shard> {
        let (k, n) = s.split_once('/')?;
        let (k, n) = (k.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?);
        (n >= 1 && k < n).then_some(Shard { k, n })
    }

    /// The shard of `account_id` among `n`.
    pub fn of(account_id: Option<&str>, n: u32) -> u32 {
        xxhash64(account_id).rem_euclid(n as i64) as u32
    }

    /// Whether `account_id` (a usage row's, an account's, a package's, …) is in this
    /// shard.
    pub fn owns(&self, account_id: Option<&str>) -> bool {
        self.n == 1 || Shard::of(account_id, self.n) == self.k
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_documented_vector() {
        // Spark SQL reference, `xxhash64`: SELECT xxhash64('Spark', array(123), 2) …;
        // the contract's vector is the one-argument form.
        assert_eq!(xxhash64(Some("ABC")), 4105715581806190027);
        assert_eq!(xxhash64(None), 42);
    }

    #[test]
    fn pmod_is_never_negative() {
        for id in ["ABC", "acct-0001", "", "ü", "acct-9999"] {
            for n in 1..20 {
                let s = Shard::of(Some(id), n);
                assert!(s < n);
                assert_eq!(s as i64, xxhash64(Some(id)).rem_euclid(n as i64));
            }
        }
    }

    #[test]
    fn parse_k_of_n() {
        assert_eq!(Shard::parse("2/7"), Some(Shard { k: 2, n: 7 }));
        assert_eq!(Shard::parse("7/7"), None);
        assert_eq!(Shard::parse("0/0"), None);
        assert_eq!(Shard::parse("x/2"), None);
    }
}
