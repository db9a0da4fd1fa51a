//! The `kgate` binary: argument parsing and wiring only.
//!
//! Each subcommand lives in its own module under `cmd/`; the libraries do the work.
//! Exit codes: 0 success, 2 error, 64 bad configuration or usage.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A Kafka security gateway and a Kafka teaching lab in one binary.
#[derive(Debug, Parser)]
#[command(name = "kgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay one workload on models of Kafka, Event Hubs, Kinesis and Pub/Sub.
    Sim(cmd::sim::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(args) => cmd::sim::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kgate: {err:#}");
            ExitCode::from(2)
        }
    }
}
