//! The pipeline's configuration file (TOML): what describes the pipeline — its lakes,
//! account defaults, object-store behaviour, run tuning — as opposed to flags, which
//! tune one run and override it.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The input lake: a local path, `file:///abs/path`, `s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix` or `abfss://…`.
    pub input: Option<String>,
    /// The output lake (default: the input lake).
    pub output: Option<String>,
    #[serde(default)]
    pub run: RunConfig,
    #[serde(default)]
    pub accounts: AccountDefaults,
    #[serde(default)]
    pub s3: S3Config,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Rating threads (default: one per core).
    pub threads: Option<usize>,
    /// Keep a month's decoded usage in memory when its Parquet is smaller than this
    /// many MiB (default 256); larger months are decoded twice instead.
    pub cache_mib: Option<u64>,
    /// A period lock older than this many minutes belongs to a dead run (default 360).
    pub stale_lock_minutes: Option<u64>,
    /// Where a large month's duplicate pass spills its record-id hashes (16 bytes a
    /// usage row; default: the system's temporary directory).
    pub spill_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountDefaults {
    /// Grace days for accounts whose `grace_days` is null (the rules' default: 15).
    pub grace_days: Option<i32>,
    /// Retention days for accounts whose `retention_days` is null (default: 15).
    pub retention_days: Option<i32>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Retries of a transient object-store error, with exponential backoff (default 8).
    pub max_retries: Option<usize>,
}

impl Config {
    pub fn load(path: &std::path::Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("config {}: {e}", path.display()))?;
        let c: Config = toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        for (v, name) in [(c.accounts.grace_days, "accounts.grace_days"), (c.accounts.retention_days, "accounts.retention_days")] {
            if let Some(d) = v {
                if !(0..=3650).contains(&d) {
                    return Err(format!("config {}: {name} = {d} is not 0..=3650", path.display()));
                }
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("inptu = 'x'").is_err());
        let c: Config = toml::from_str("input = 's3://b/in'\n[accounts]\ngrace_days = 3\n").unwrap();
        assert_eq!(c.accounts.grace_days, Some(3));
    }
}
