//! `kgate sim`: one workload on models of Kafka, Event Hubs, Kinesis and Pub/Sub, side by side.
//!
//! Argument parsing and output only; the simulation lives in `kgate-sim`.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kgate_sim::{
    ProfileSet, Progress, Report, Scenario, ServiceKind, SimError, Trace, WorkloadSpec,
};

use crate::config::{ConfigErrors, Problem};

/// Arguments of `kgate sim`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kgate sim compare --workload telemetry --rate 5000/s --duration 10m
  kgate sim run simulator/scenarios/leader-crash-acks1.toml --out results/
  kgate sim profiles")]
pub struct SimArgs {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Offer one workload to several services and compare what each delivers.
    #[command(after_help = "\
Example:
  kgate sim compare --workload telemetry --rate 5000/s --duration 10m \\
                    --services kafka,eventhubs,kinesis,pubsub --out results/ --seed 42

Workloads: telemetry (vehicle health readings), clickstream (hot sessions, bursty),
payments (many accounts, order matters), or a trace file (CSV or JSON lines of
timestamp,key,size). Services: kafka, eventhubs, eventgrid, kinesis, pubsub.")]
    Compare(CompareArgs),
    /// Run a scenario file: a workload, services, scheduled faults and a seed.
    #[command(after_help = "\
Example:
  kgate sim run simulator/scenarios/leader-crash-acks1.toml --out results/ --format json

The scenario format is documented in simulator/src/scenario.rs; ready-made scenarios
are in simulator/scenarios/.")]
    Run(RunArgs),
    /// List each service profile and the source of every number in it.
    #[command(after_help = "\
Examples:
  kgate sim profiles
  kgate sim profiles --service kinesis --format json")]
    Profiles(ProfilesArgs),
}

/// How to print a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A side-by-side table for people.
    Table,
    /// One JSON document.
    Json,
    /// One CSV row per service.
    Csv,
}

#[derive(Debug, Args)]
struct Output {
    /// Also write CSV time series, trails, report.json and charts (SVG, PNG) into DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// What to print on standard output.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// telemetry, clickstream, payments, or the path of a trace file.
    #[arg(long, default_value = "telemetry", value_name = "WORKLOAD")]
    workload: String,
    /// Offered messages per second, e.g. 5000/s or 300/min (ignored for traces).
    // Hyphen values reach the rate parser, which says why `-5/s` is wrong; clap would call it
    // an unexpected argument.
    #[arg(
        long,
        default_value = "5000/s",
        value_name = "RATE",
        allow_hyphen_values = true
    )]
    rate: String,
    /// How long the producer runs, e.g. 90s, 10m, 1h.
    #[arg(
        long,
        default_value = "1m",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    duration: String,
    /// Comma-separated services.
    #[arg(
        long,
        default_value = "kafka,eventhubs,kinesis,pubsub",
        value_name = "LIST"
    )]
    services: String,
    /// Seed of every random choice; the same seed gives the same report.
    #[arg(long, default_value_t = kgate_sim::scenario::DEFAULT_SEED, value_name = "N")]
    seed: u64,
    /// Directory of edited profile files replacing the embedded ones.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
    #[command(flatten)]
    output: Output,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Replace the scenario's seed.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    #[command(flatten)]
    output: Output,
}

#[derive(Debug, Args)]
struct ProfilesArgs {
    /// Only this service.
    #[arg(long, value_name = "SERVICE")]
    service: Option<String>,
    /// Directory of edited profile files replacing the embedded ones.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
    /// table or json.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// Runs `kgate sim`.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    match args.command {
        SimCommand::Compare(a) => compare(a),
        SimCommand::Run(a) => run_scenario(a),
        SimCommand::Profiles(a) => profiles(a),
    }
}

/// Turns a located file error into the binary's configuration error (exit code 64).
fn file_error(err: SimError) -> anyhow::Error {
    match err {
        SimError::File { location, message } => ConfigErrors {
            path: PathBuf::from(&location.file),
            problems: vec![Problem {
                line: Some(location.line),
                field: location
                    .field
                    .unwrap_or_else(|| format!("column {}", location.column)),
                message,
            }],
        }
        .into(),
        other => anyhow::Error::new(other),
    }
}

fn parse_services(list: &str) -> anyhow::Result<Vec<ServiceKind>> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let kind = ServiceKind::parse(name).with_context(|| {
            format!("unknown service `{name}` in --services; expected kafka, eventhubs, eventgrid, kinesis or pubsub")
        })?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    anyhow::ensure!(!out.is_empty(), "--services names no service");
    Ok(out)
}

fn compare(a: CompareArgs) -> anyhow::Result<()> {
    let duration =
        kgate_sim::parse_duration(&a.duration).map_err(|m| anyhow::anyhow!("--duration: {m}"))?;
    let rate = kgate_sim::parse_rate(&a.rate).map_err(|m| anyhow::anyhow!("--rate: {m}"))?;
    let services = parse_services(&a.services)?;
    let path = Path::new(&a.workload);
    let workload = if path.extension().is_some() || path.is_file() {
        WorkloadSpec::trace(Trace::from_file(path).map_err(file_error)?)
    } else {
        WorkloadSpec::named(&a.workload, rate).map_err(|e| anyhow::anyhow!("--workload: {e}"))?
    };
    let mut scenario = Scenario::compare(workload, duration, &services)?.with_seed(a.seed);
    if let Some(dir) = &a.profiles {
        scenario.profiles = ProfileSet::load_dir(dir).map_err(file_error)?;
        scenario.validate().map_err(file_error)?;
    }
    let report = run_with_progress(&scenario)?;
    emit(&report, &a.output)
}

fn run_scenario(a: RunArgs) -> anyhow::Result<()> {
    let mut scenario = Scenario::from_file(&a.scenario).map_err(file_error)?;
    if let Some(seed) = a.seed {
        scenario = scenario.with_seed(seed);
    }
    let report = run_with_progress(&scenario)?;
    emit(&report, &a.output)
}

/// Runs with a progress bar on standard error, shown only on a terminal and only once the run
/// has taken more than a second.
fn run_with_progress(scenario: &Scenario) -> anyhow::Result<Report> {
    let terminal = std::io::stderr().is_terminal();
    let start = Instant::now();
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::hidden());
    let mut shown = false;
    let mut tick = |p: Progress| {
        if !terminal {
            return;
        }
        if !shown && start.elapsed() > Duration::from_secs(1) {
            shown = true;
            bar.set_draw_target(ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} [{bar:40}] {percent:>3}% {msg} ({elapsed})")
            {
                bar.set_style(style.progress_chars("=> "));
            }
        }
        bar.set_message(format!("{} ({}/{})", p.service, p.index + 1, p.of));
        bar.set_position((p.fraction * 1000.0) as u64);
    };
    let report = scenario.run_with_progress(&mut tick).map_err(file_error);
    bar.finish_and_clear();
    report
}

fn emit(report: &Report, output: &Output) -> anyhow::Result<()> {
    let text = match output.format {
        Format::Table => report.to_table(),
        Format::Json => report.to_json() + "\n",
        Format::Csv => report.to_csv(),
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("writing the report");
        }
    }
    if let Some(dir) = &output.out {
        let written = report.write_dir(dir)?;
        eprintln!("wrote {} files to {}", written.len(), dir.display());
    }
    Ok(())
}

fn profiles(a: ProfilesArgs) -> anyhow::Result<()> {
    let set = match &a.profiles {
        Some(dir) => ProfileSet::load_dir(dir).map_err(file_error)?,
        None => ProfileSet::embedded()?,
    };
    let only = match &a.service {
        Some(s) => Some(ServiceKind::parse(s).with_context(|| format!("unknown service `{s}`"))?),
        None => None,
    };
    let mut chosen = Vec::new();
    for kind in ServiceKind::ALL
        .into_iter()
        .filter(|&k| only.is_none_or(|o| o == k))
    {
        chosen.push(set.get(kind).map_err(file_error)?);
    }
    let text = match a.format {
        Format::Json => serde_json::to_string_pretty(&chosen)? + "\n",
        Format::Table | Format::Csv => {
            let mut out = String::new();
            for p in chosen {
                out.push_str(&format!(
                    "{} — {} ({})\n  {}\n",
                    p.service, p.name, p.file, p.description
                ));
                for (name, param) in &p.params {
                    let unit = param
                        .unit
                        .as_deref()
                        .map(|u| format!(" {u}"))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "  {name:<38} {:<16} {} (as of {})",
                        format!("{}{unit}", param.value),
                        param.source_url,
                        param.as_of
                    ));
                    if let Some(note) = &param.note {
                        out.push_str(&format!("\n  {:<38} {}", "", note));
                    }
                    out.push('\n');
                }
                out.push('\n');
            }
            out
        }
    };
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: SimCommand,
    }

    #[test]
    fn a_negative_rate_reaches_the_rate_parser() {
        let cli = Cli::try_parse_from(["sim", "compare", "--rate", "-5/s"]).unwrap();
        let SimCommand::Compare(a) = cli.command else {
            panic!("not compare");
        };
        assert_eq!(a.rate, "-5/s");
        let err = compare(a).unwrap_err().to_string();
        assert!(
            err.starts_with("--rate: rate `-5/s` must be above 0"),
            "{err}"
        );
    }
}
