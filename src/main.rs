//! `billrun`: parse the command line, run the job, map the outcome to an exit status
//! (0 done; 1 done, with rejected rows or alerts worth a look; 2 could not run).

mod cli;

use billrun::jobs::close::{self, CloseReport};
use billrun::lake::store::Lake;
use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => match billrun::config::Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("billrun: {e}");
                return ExitCode::from(2);
            }
        },
        None => billrun::config::Config::default(),
    };
    let env = match cli::Env::read(&config) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("billrun: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BILLRUN_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    if let Some(n) = cli.threads.or(config.run.threads) {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build_global() {
            eprintln!("billrun: --threads: {e}");
            return ExitCode::from(2);
        }
    }
    match run(cli.command, &config, &env) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("billrun: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cmd: Command, config: &billrun::config::Config, env: &cli::Env) -> anyhow::Result<u8> {
    match cmd {
        Command::Run(args) => {
            if let Some((job, hour)) = args.hour(config, env).map_err(anyhow::Error::msg)? {
                let r = billrun::jobs::hourly::run(&job, hour)?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    println!(
                        "settled {} hour(s) up to {}: {} settlements, {} alerts, {} rows rated of {}",
                        r.hours_settled.len(),
                        r.hour,
                        r.settlements,
                        r.alerts,
                        r.rows_rated,
                        r.rows_in
                    );
                }
                return Ok(if r.alerts > 0 || r.rows_rated < r.rows_in { 1 } else { 0 });
            }
            if let Some(job) = args.shard(config, env).map_err(anyhow::Error::msg)? {
                let m = billrun::jobs::shard::run(&job)?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&m)?);
                } else {
                    println!(
                        "billing period {} shard {}/{}: {} accounts, {} usage rows ({} rated, {} rejected); results under {}/{}",
                        m.period,
                        m.k,
                        m.n,
                        m.report.accounts,
                        m.report.rows_in,
                        m.report.rows_rated,
                        m.rows_rejected(),
                        job.output,
                        billrun::jobs::close::sinks::shard_dir(job.period, billrun::shard::Shard { k: m.k, n: m.n })
                    );
                }
                return Ok(0);
            }
            closes(args.range(config, env).map_err(anyhow::Error::msg)?, args.json, true)
        }
        Command::Commit(args) => {
            let (job, n) = args.job(config, env).map_err(anyhow::Error::msg)?;
            let report = billrun::jobs::shard::commit(&job, n)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_summary(&report, &job.output);
            }
            Ok(if report.worth_a_look() { 1 } else { 0 })
        }
        Command::Backfill(args) => closes(args.range(config, env).map_err(anyhow::Error::msg)?, args.json, false),
        Command::Generate(args) => {
            let cfg = args.config().map_err(anyhow::Error::msg)?;
            let lake = Lake::open_with(&args.out, true, env.store)?;
            let r = billrun::generate::generate(&lake, &cfg)?;
            println!(
                "generated {} usage rows in {} files: {} accounts, {} resources, {} packages, {} subscriptions, {} payments → {}",
                r.usage_rows, r.usage_files, r.accounts, r.resources, r.packages, r.subscriptions, r.payments, args.out
            );
            Ok(0)
        }
        Command::Report(args) => {
            let period = args.period().map_err(anyhow::Error::msg)?;
            let output = args.output.clone().or_else(|| config.output.clone()).or_else(|| config.input.clone()).unwrap_or_else(|| cli::DEFAULT_LAKE.into());
            let lake = Lake::open_with(&output, false, env.store)?;
            let figures = billrun::cost::report::figures::figures(&lake, period)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&figures)?);
                return Ok(0);
            }
            let page = billrun::cost::report::page(&figures);
            match &args.html {
                Some(path) => {
                    std::fs::write(path, page.as_bytes()).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
                    println!("report of {period} → {}", path.display());
                }
                None => {
                    let rel = format!("reports/billing_period={period}/report.html");
                    lake.put(&rel, page.into_bytes().into())?;
                    println!("report of {period} → {output}/{rel}");
                }
            }
            Ok(0)
        }
        Command::Demo(args) => {
            let lake = Lake::open_with(&args.lake, true, env.store)?;
            let cfg = billrun::generate::GenConfig::default();
            if !lake.exists(billrun::lake::inputs::PRICES)? {
                let r = billrun::generate::generate(&lake, &cfg)?;
                println!("generated a sample lake: {} usage rows, {} accounts → {}", r.usage_rows, r.accounts, args.lake);
            }
            let job = close::CloseJob {
                reason: "demo".into(),
                store: env.store,
                fault: env.fault,
                whole_what_if: env.whole_what_if,
                ..close::CloseJob::new(&args.lake, &args.lake, cfg.from)
            };
            let report = close::run(&job)?;
            print_summary(&report, &args.lake);
            Ok(0)
        }
    }
}

/// Runs a planned range of closes in order; stops at the first that cannot run.
fn closes(range: cli::Range, json: bool, pretty: bool) -> anyhow::Result<u8> {
    let jobs = billrun::jobs::backfill::plan(&range.template, range.from, range.to, range.cascade)?;
    if range.dry_run {
        for (k, job) in jobs.iter().enumerate() {
            let plan = close::plan(job, k > 0)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                println!("dry run — billing period {}: nothing will be written", plan.period);
                println!("  opens from: {}", plan.opens_from);
                println!("  reads {}: {}", plan.input_lake, plan.reference_tables.join(", "));
                println!("        {} usage files in {} hours, {} bytes", plan.usage_files, plan.usage_hours, plan.usage_bytes);
                println!("  writes {}:", plan.output_lake);
                for w in &plan.writes {
                    println!("    {w}");
                }
            }
        }
        return Ok(0);
    }
    let mut code = 0;
    for job in jobs {
        let report = close::run(&job)?;
        if json && pretty {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else if json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_summary(&report, &job.output);
        }
        if report.worth_a_look() {
            code = 1;
        }
    }
    Ok(code)
}

fn print_summary(r: &CloseReport, output: &str) {
    println!("billing period {}: {} accounts, {} usage files", r.period, r.accounts, r.usage_files);
    let rejected: u64 = r.rejected.values().sum();
    println!("  usage rows: {} read, {} rated, {} rejected", r.rows_in, r.rows_rated, rejected);
    for (reason, n) in &r.rejected {
        println!("    {reason:<24} {n}");
    }
    for (reason, n) in &r.rejected_orders {
        println!("  rejected subscription orders: {reason} {n}");
    }
    for (cur, due) in &r.total_due {
        println!("  total due: {due} {cur}");
    }
    println!("  accounts in arrears at close: {}", r.accounts_in_arrears);
    println!("  alerts: {}   line items: {}", r.alerts, r.lines);
    if r.settlement_changes > 0 {
        println!("  settlements changed since the hourly runs: {} (see bills/settlement_changes)", r.settlement_changes);
    }
    if r.restated > 0 {
        println!("  restated invoices: {} (see bills/restatements)", r.restated);
    }
    println!("  outputs: {output}/bills/*/billing_period={}/ and {output}/state/ ({:.2} s)", r.period, r.seconds);
}

/// jemalloc, with the settings `.cargo/config.toml` builds in: freed memory is reused
/// across the close's threads and returned to the system, so the close's resident
/// memory follows what it holds (ARCHITECTURE.md, "Memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
