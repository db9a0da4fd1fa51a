//! The `kgate` binary: argument parsing and wiring only.
//!
//! Each subcommand lives in its own module under `cmd/`; the libraries do the work.
//! Exit codes: 0 success, 2 error, 64 bad configuration or usage.

mod bench;
mod cmd;
mod config;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A Kafka security gateway and a Kafka teaching lab in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "kgate",
    version,
    about,
    long_about = None,
    after_help = "\
Quick start (no Kafka needed):
  kgate demo

Put it in front of a real cluster:
  kgate certs init --dir certs && kgate certs server --dir certs --dns kafka-gw.example.com
  kgate users add alice --users users.toml --password-stdin
  kgate proxy --upstream 10.0.0.1:9092 --listen 0.0.0.0:9093 --advertised-host kafka-gw.example.com \\
              --cert certs/server.pem --key certs/server-key.pem --users users.toml
  kgate client-config --user alice --bootstrap kafka-gw.example.com:9093 --ca certs/ca.pem"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway in front of a Kafka cluster.
    Proxy(Box<cmd::proxy::ProxyArgs>),
    /// The gateway in front of an embedded 3-broker cluster: try kgate with no Kafka at all.
    Demo(cmd::demo::DemoArgs),
    /// Create a CA, the gateway's certificate and client certificates.
    Certs(cmd::certs::CertsArgs),
    /// Manage the users file (salted SCRAM credentials; no password is ever stored).
    Users(cmd::users::UsersArgs),
    /// Manage Kafka ACLs in the policy file, and check what they allow.
    Acl(cmd::acl::AclArgs),
    /// Bind roles (DeveloperRead, ResourceOwner, ...) to principals in the policy file.
    Role(cmd::role::RoleArgs),
    /// Inject latency, errors or disconnects for one principal, client or topic (running gateway).
    Fault(cmd::fault::FaultArgs),
    /// Print the client settings that work against this gateway.
    ClientConfig(cmd::client_config::ClientConfigArgs),
    /// Check a configuration file.
    Config(cmd::config::ConfigArgs),
    /// Replay one workload on models of Kafka, Event Hubs, Kinesis and Pub/Sub.
    Sim(cmd::sim::SimArgs),
    /// Guided webinar labs on the embedded cluster: secure it, compare clouds, find root causes.
    Lab(cmd::lab::LabArgs),
    /// Benchmark programs: gateway, authorization, simulator.
    Bench(cmd::bench::BenchArgs),
    /// The Kafka APIs and versions the gateway serves, with Kafka's checks for each.
    Versions(cmd::versions::VersionsArgs),
    /// The policy and users several gateways share through a topic of the cluster.
    State(cmd::state::StateArgs),
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Logs of a lab run go to a file in its directory: the gateway runs in-process, and its
/// warnings (a refused password, which a check provokes on purpose) must not land between
/// check results.
fn init_tracing_to_file(path: &std::path::Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return false;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    true
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let lab_log = match &cli.command {
        Command::Lab(args) => cmd::lab::log_path(args),
        _ => None,
    };
    if !lab_log.as_deref().is_some_and(init_tracing_to_file) {
        // The lab runs a gateway in-process: per-connection lines would drown the lesson.
        init_tracing(if matches!(cli.command, Command::Lab(_)) {
            "warn"
        } else {
            "info"
        });
    }
    let result = match cli.command {
        Command::Proxy(args) => cmd::proxy::run(*args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Certs(args) => cmd::certs::run(args),
        Command::Users(args) => cmd::users::run(args),
        Command::Acl(args) => cmd::acl::run(args),
        Command::Role(args) => cmd::role::run(args),
        Command::Fault(args) => cmd::fault::run(args),
        Command::ClientConfig(args) => cmd::client_config::run(args),
        Command::Config(args) => match cmd::config::run(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(64),
            Err(e) => Err(e),
        },
        Command::Sim(args) => cmd::sim::run(args),
        Command::Lab(args) => cmd::lab::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Versions(args) => cmd::versions::run(args),
        Command::State(args) => cmd::state::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(config) = err.downcast_ref::<config::ConfigErrors>() {
                eprintln!("{config}");
                return ExitCode::from(64);
            }
            eprintln!("kgate: {err:#}");
            ExitCode::from(2)
        }
    }
}
