//! The command line: clap structs, then their resolution into validated jobs. Nothing
//! below this module knows a flag existed.

use billrun::config::Config;
use billrun::generate::GenConfig;
use billrun::jobs::close::{self, CloseJob, Fault};
use billrun::lake::store::StoreOptions;
use billrun::time::Period;
use clap::{Args, Parser, Subcommand};

pub const DEFAULT_LAKE: &str = "data/lake";

/// What the environment says for this run, read once here and handed down as fields:
/// the object stores' retry limit and two test hooks. Nothing below reads it again.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub store: StoreOptions,
    pub fault: Option<Fault>,
    pub whole_what_if: bool,
    /// The system's temporary directory (`TMPDIR`), where large months spill.
    pub temp_dir: std::path::PathBuf,
}

impl Env {
    /// `BILLRUN_STORE_MAX_RETRIES` (or its older name `BILLRUN_S3_MAX_RETRIES`; over
    /// the config's `s3.max_retries`, default 8), for every object store,
    /// `BILLRUN_INJECT_FAULT` (`drop-line` or `lose-rejected`) and
    /// `BILLRUN_WHOLE_WHAT_IF`.
    pub fn read(cfg: &Config) -> Result<Env, String> {
        let mut retries = cfg.s3.max_retries;
        for name in ["BILLRUN_S3_MAX_RETRIES", "BILLRUN_STORE_MAX_RETRIES"] {
            if let Ok(v) = std::env::var(name) {
                retries = Some(v.parse::<usize>().map_err(|_| format!("{name} '{v}' is not a count"))?);
            }
        }
        let fault = match std::env::var("BILLRUN_INJECT_FAULT") {
            Ok(v) => Some(Fault::parse(&v).ok_or_else(|| format!("BILLRUN_INJECT_FAULT '{v}' is not drop-line or lose-rejected"))?),
            Err(_) => None,
        };
        Ok(Env {
            store: StoreOptions { max_retries: retries.unwrap_or(StoreOptions::default().max_retries) },
            fault,
            whole_what_if: std::env::var_os("BILLRUN_WHOLE_WHAT_IF").is_some(),
            temp_dir: std::env::temp_dir(),
        })
    }
}

#[derive(Parser, Debug)]
#[command(name = "billrun", version, about = "Exact batch bill run over a Parquet lake")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Worker threads for rating (default: the config's, else one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// The pipeline's configuration file (TOML); flags override it.
    #[arg(long, global = true)]
    pub config: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Close a billing period.
    Run(RunArgs),
    /// Re-run a range of periods, in order.
    Backfill(BackfillArgs),
    /// Write a synthetic input lake.
    Generate(GenerateArgs),
    /// Generate a sample lake under data/lake if there is none, close its first month,
    /// and print a summary.
    Demo(DemoArgs),
    /// Write a self-contained HTML report of a closed period.
    Report(ReportArgs),
    /// Publish a period closed in shards (`run --period P --shard K/N`, K = 0..N-1).
    Commit(CommitArgs),
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// The billing period, YYYY-MM.
    #[arg(long)]
    pub period: String,
    /// How many shards the period was run in.
    #[arg(long)]
    pub shards: u32,
    #[command(flatten)]
    pub lakes: Lakes,
    /// Print the report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

impl CommitArgs {
    pub fn job(&self, cfg: &Config, env: &Env) -> Result<(CloseJob, u32), String> {
        let p = period(&self.period, "period")?;
        if self.shards == 0 {
            return Err("--shards must be at least 1".into());
        }
        Ok((self.lakes.template(p, cfg, env), self.shards))
    }
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The closed billing period, YYYY-MM.
    #[arg(long)]
    pub period: String,
    /// The output lake of the bill run (default: the config's, else data/lake).
    #[arg(long)]
    pub output: Option<String>,
    /// Where to write the page (default: reports/billing_period=YYYY-MM/report.html in
    /// the output lake).
    #[arg(long)]
    pub html: Option<std::path::PathBuf>,
    /// Print the report's figures as JSON instead of writing the page.
    #[arg(long)]
    pub json: bool,
}

impl ReportArgs {
    pub fn period(&self) -> Result<Period, String> {
        period(&self.period, "period")
    }
}

#[derive(Args, Debug)]
pub struct Lakes {
    /// Why the period(s) are closed (again): recorded with every restated invoice.
    #[arg(long, default_value = "re-run")]
    pub reason: String,
    /// Input lake: a local path, file:///abs/path, s3://, gs://, az:// or abfss://
    /// (default: the config's, else data/lake).
    #[arg(long)]
    pub input: Option<String>,
    /// Output lake (default: the config's, else the input lake).
    #[arg(long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The billing period to close, YYYY-MM.
    #[arg(long, required_unless_present = "hour", conflicts_with = "hour")]
    pub period: Option<String>,
    /// Settle one hour, YYYY-MM-DDTHH (from the last checkpoint up to it).
    #[arg(long)]
    pub hour: Option<String>,
    #[command(flatten)]
    pub lakes: Lakes,
    /// Print the report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Also re-close, in order, the periods after this one that are already closed.
    #[arg(long)]
    pub cascade: bool,
    /// Print what would be read and written, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Execute the period for shard K of N only (0-based): results under
    /// <output>/_shards/, published by `billrun commit`.
    #[arg(long, value_name = "K/N", conflicts_with_all = ["hour", "cascade", "dry_run"])]
    pub shard: Option<String>,
    /// With --shard: read the shard's usage from this staged layout
    /// (<STAGED>/billing_period=P/n=N/k=K/) instead of scanning the period's usage.
    #[arg(long, value_name = "STAGED", requires = "shard")]
    pub usage: Option<String>,
}

#[derive(Args, Debug)]
pub struct BackfillArgs {
    #[arg(long)]
    pub from: String,
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub lakes: Lakes,
    /// Also re-close, in order, the periods after --to that are already closed.
    #[arg(long)]
    pub cascade: bool,
    /// Print the reports as JSON lines instead of summaries.
    #[arg(long)]
    pub json: bool,
    /// Print what would be read and written, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Where to write the lake.
    #[arg(long, default_value = DEFAULT_LAKE)]
    pub out: String,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First month, YYYY-MM.
    #[arg(long, default_value = "2026-01")]
    pub from: String,
    #[arg(long, default_value_t = 1)]
    pub months: u32,
    #[arg(long, default_value_t = 40)]
    pub accounts: usize,
    /// Ordinary resources per account (large accounts get five times as many).
    #[arg(long, default_value_t = 6)]
    pub resources: usize,
    /// Do not inject rows that break the rules.
    #[arg(long)]
    pub no_anomalies: bool,
    /// Write usage for the first N days of each month only (small test lakes).
    #[arg(long)]
    pub days: Option<u32>,
    /// Pay-per-use usage only (no packages, subscriptions or pools; no arrears).
    #[arg(long)]
    pub ppu_only: bool,
    /// Minutes a time-metered usage row covers at most, a divisor of 60 (finer
    /// metering: more rows for the same resources).
    #[arg(long, default_value_t = 60)]
    pub meter_minutes: u32,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[arg(long, default_value = DEFAULT_LAKE)]
    pub lake: String,
}

fn period(s: &str, flag: &str) -> Result<Period, String> {
    Period::parse(s).ok_or_else(|| format!("--{flag} '{s}' is not a month YYYY-MM"))
}

impl Lakes {
    fn template(&self, p: Period, cfg: &Config, env: &Env) -> CloseJob {
        let input = self.input.clone().or_else(|| cfg.input.clone()).unwrap_or_else(|| DEFAULT_LAKE.into());
        let output = self.output.clone().or_else(|| cfg.output.clone()).unwrap_or_else(|| input.clone());
        CloseJob {
            input,
            output,
            period: p,
            cache_bytes: cfg.run.cache_mib.map(|m| m << 20).unwrap_or(close::DEFAULT_CACHE_BYTES),
            stale_lock: cfg.run.stale_lock_minutes.map(|m| std::time::Duration::from_secs(m * 60)).unwrap_or(close::DEFAULT_STALE_LOCK),
            windows: (
                cfg.accounts.grace_days.unwrap_or(billrun::lake::inputs::DEFAULT_WINDOWS.0),
                cfg.accounts.retention_days.unwrap_or(billrun::lake::inputs::DEFAULT_WINDOWS.1),
            ),
            reason: self.reason.clone(),
            store: env.store,
            fault: env.fault,
            whole_what_if: env.whole_what_if,
            shard: None,
            staged: None,
            spill_dir: Some(cfg.run.spill_dir.clone().unwrap_or_else(|| env.temp_dir.clone())),
            block_rows: close::RATING_BLOCK_ROWS,
        }
    }
}

/// A range of closes, before the output lake has been consulted.
pub struct Range {
    pub dry_run: bool,
    pub template: CloseJob,
    pub from: Period,
    pub to: Period,
    pub cascade: bool,
}

impl RunArgs {
    /// The hour to settle, for `run --hour`, with its job.
    pub fn hour(&self, cfg: &Config, env: &Env) -> Result<Option<(CloseJob, billrun::time::Micros)>, String> {
        let Some(h) = &self.hour else { return Ok(None) };
        let at = billrun::time::parse_hour(h).ok_or_else(|| format!("--hour '{h}' is not YYYY-MM-DDTHH"))?;
        let p = Period::containing(at).ok_or_else(|| format!("--hour '{h}' is out of range"))?;
        Ok(Some((self.lakes.template(p, cfg, env), at)))
    }

    /// The shard run asked for, with its job (`--shard K/N`).
    pub fn shard(&self, cfg: &Config, env: &Env) -> Result<Option<CloseJob>, String> {
        let Some(s) = &self.shard else { return Ok(None) };
        let shard = billrun::shard::Shard::parse(s).ok_or_else(|| format!("--shard '{s}' is not K/N with 0 <= K < N"))?;
        let p = period(self.period.as_deref().unwrap_or_default(), "period")?;
        Ok(Some(CloseJob { shard: Some(shard), staged: self.usage.clone(), ..self.lakes.template(p, cfg, env) }))
    }

    pub fn range(&self, cfg: &Config, env: &Env) -> Result<Range, String> {
        let p = period(self.period.as_deref().unwrap_or_default(), "period")?;
        Ok(Range { dry_run: self.dry_run, template: self.lakes.template(p, cfg, env), from: p, to: p, cascade: self.cascade })
    }
}

impl BackfillArgs {
    pub fn range(&self, cfg: &Config, env: &Env) -> Result<Range, String> {
        let (from, to) = (period(&self.from, "from")?, period(&self.to, "to")?);
        if from > to {
            return Err(format!("--from {from} is after --to {to}"));
        }
        Ok(Range { dry_run: self.dry_run, template: self.lakes.template(from, cfg, env), from, to, cascade: self.cascade })
    }
}

impl GenerateArgs {
    pub fn config(&self) -> Result<GenConfig, String> {
        if self.accounts == 0 {
            return Err("--accounts must be at least 1".into());
        }
        if self.meter_minutes == 0 || 60 % self.meter_minutes != 0 {
            return Err(format!("--meter-minutes must divide 60, not {}", self.meter_minutes));
        }
        Ok(GenConfig {
            seed: self.seed,
            from: period(&self.from, "from")?,
            months: self.months.max(1),
            accounts: self.accounts,
            resources_per_account: self.resources.max(1),
            anomalies: !self.no_anomalies,
            days: self.days,
            ppu_only: self.ppu_only,
            meter_minutes: self.meter_minutes,
        })
    }
}
