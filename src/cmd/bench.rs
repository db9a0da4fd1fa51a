//! `kgate bench`: benchmark programs. Each subcommand is one benchmark; the measuring is in
//! `crate::bench`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Arguments of `kgate bench`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  cargo run --release -- bench gateway
  cargo run --release -- bench hostile --rounds 3
  kgate bench authz
  kgate bench sim --json

Benchmarks are programs, not tests: run them from a release build on an otherwise idle machine.")]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The gateway's throughput, load-latency curve, CPU per GB (free-running and pinned) and
    /// memory per connection, against the embedded cluster: direct, through kgate in
    /// plaintext, through kgate with TLS + SCRAM and a 10,000-binding policy.
    Gateway(GatewayArgs),
    /// A producer's throughput, and kgate's memory and log, while clients that never log in
    /// attack it: idle TLS connections, trickling handshakes, wrong-password logins.
    Hostile(HostileArgs),
    /// Authorization: decision cost at 100, 10,000 and 100,000 bindings (cached and not), and
    /// produce throughput through kgate with authorization on vs off.
    #[command(after_help = "\
Examples:
  kgate bench authz
  kgate bench authz --messages 400000 --rounds 5 --json

Issue 3's targets are printed beside the figures: <= 1 us cached and <= 20 us uncached at
100,000 bindings; throughput with authorization >= 0.97 x without.")]
    Authz(AuthzArgs),
    /// The simulator: simulated events per CPU second (one core) and per wall second (the
    /// services run in parallel) for a four-service comparison, the wall time of ten minutes at
    /// 50,000 messages/s (far above the quotas), and peak memory of a one-hour run.
    #[command(after_help = "\
Examples:
  kgate bench sim
  kgate bench sim --json

Targets, printed beside the figures: >= 1,000,000 simulated events per CPU second; the
ten-minute overload run in < 20 s of wall time; <= 200 MB for the one-hour run.")]
    Sim {
        /// Print one JSON document instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Several gateways sharing state through the cluster: how long an ACL change takes to be
    /// enforced by the other instances, and how long a new instance takes to read a large
    /// state (with its peak memory).
    #[command(after_help = "\
Examples:
  kgate bench state
  kgate bench state --rounds 5 --upstream 127.0.0.1:9092 --json

Issue 11's targets: propagation p99 <= 1 s; a new instance reads 100,000 bindings and 10,000
users in <= 2 s with <= 200 MB.")]
    State(StateBenchArgs),
}

/// Arguments of `kgate bench state`.
#[derive(Debug, Args)]
pub struct StateBenchArgs {
    /// Rounds of each measurement.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub rounds: usize,
    /// ACL changes per propagation round.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub changes: usize,
    /// ACL bindings in the topic a new instance reads.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub bindings: usize,
    /// Users in that topic.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub users: usize,
    /// Run against this cluster (a topic of its own per run) instead of the embedded one,
    /// which keeps only 5 MB per partition (the catch-up sizes are scaled down to fit it).
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Option<String>,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kgate bench authz`.
#[derive(Debug, Args)]
pub struct AuthzArgs {
    /// Records (1 KiB) produced per round through each gateway (each round opens new
    /// connections, so rounds must be long enough for the setup not to dominate).
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    pub messages: usize,
    /// Alternating rounds; the best round of each side counts.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub rounds: usize,
    /// Print one JSON document with every figure instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kgate bench gateway`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kgate bench gateway
  kgate bench gateway --messages 200000 --rounds 5 --chart latency.svg
  kgate bench gateway --no-pin --json

In one run, against the embedded 3-broker cluster, librdkafka produces 1 KiB records
(acks=all) and a consumer reads them back: (1) directly, (2) through a kgate child process in
plaintext passthrough, (3) through a kgate child with TLS, SCRAM-SHA-512 and a policy of
10,000 ACL bindings; the paths take turns in every round. Printed, as median (min-max) over
the rounds: MB/s each way and the ratio to direct; kgate's CPU seconds per GB forwarded,
producing and consuming apart (from /proc/<pid>/stat), free-running and again with kgate
pinned to the last CPU and the clients and cluster to the others (taskset); send->ack
latency at 10, 25, 50 and 75 % of the slowest path's peak, with the p50 and p99 kgate adds
(path minus direct, same round), also drawn as an SVG chart. Then it opens --connections
idle TLS connections to a fresh kgate, authenticates each with SCRAM-SHA-512, and divides
kgate's RSS growth by their number. Targets printed beside the figures: issue 15's (TLS+SCRAM
added p99 <= 1 ms and added p50 <= 0.2 ms at 50 % of the slowest path's peak; kgate CPU
<= 0.15 s/GB plaintext and <= 0.5 s/GB TLS, producing and consuming, free-running and pinned)
and issue 2's (TLS+SCRAM produce throughput >= 0.90 x direct, <= 64 KiB per idle
authenticated connection). The open-files limit is raised as needed (soft up to hard).")]
pub struct GatewayArgs {
    /// Records produced per path and peak round (each consumed 3 times); big enough that a
    /// round costs kgate a good many of /proc's 10 ms CPU ticks.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub messages: usize,
    /// Rounds of every phase; figures are the median and range over them.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub rounds: usize,
    /// Seconds each paced run of the load-latency curve lasts.
    #[arg(long, default_value_t = 3.0, value_name = "S")]
    pub load_seconds: f64,
    /// Leave out the pinned peak phase.
    #[arg(long)]
    pub no_pin: bool,
    /// Where to write the load-latency chart (SVG).
    #[arg(long, default_value = "kgate-bench-gateway.svg", value_name = "FILE")]
    pub chart: PathBuf,
    /// Idle authenticated connections opened for the memory figure.
    #[arg(long, default_value_t = 2_000, value_name = "N")]
    pub connections: usize,
    /// Run this kgate binary as the gateway (default: this one), e.g. an older build, so
    /// two builds are measured by the same benchmark.
    #[arg(long, value_name = "FILE")]
    pub gateway_binary: Option<PathBuf>,
    /// Print one JSON document with every figure instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kgate bench hostile`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kgate bench hostile
  cargo run --release -- bench hostile --records 1000000 --rounds 3 --json

Against the embedded 3-broker cluster, a kgate child process with TLS, SCRAM-SHA-512,
--allow-all-authenticated and its default log level (info). Each round, a librdkafka producer
sends --records 1 KiB records (acks=all) alone, then again while the attack runs: --idle TLS
connections that never authenticate, --trickle TLS handshakes sending their ClientHello one
byte a second (both reopened whenever kgate closes them), and --wrong-logins-per-s complete
SCRAM exchanges with a wrong password; a real user logs in twice a second meanwhile. After
--hold-s at full strength the producer runs; the attack stops on its own when it is done. Every client is on 127.0.0.1, so kgate's
max_connections_per_ip is raised to fit the attack (its default, 1000, would refuse most of it
at accept). Printed: records lost (from the cluster's high watermarks), the producer's
throughput under attack / alone, kgate's peak RSS (sampled from /proc every 100 ms) and how
much its log grew, per round and as median (min-max). Issue 12's targets: nothing lost,
ratio >= 0.8, log growth < 1 MiB. The attack's clients share the machine with the producer
and the cluster, so on few cores the ratio includes their cost too. The open-files limit is
raised as needed (soft up to hard).")]
pub struct HostileArgs {
    /// Records (1 KiB) produced per phase (alone, attacked) and round.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub records: usize,
    /// Rounds; figures are given per round and as median and range.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub rounds: usize,
    /// Idle TLS connections that never authenticate.
    #[arg(long, default_value_t = 2_000, value_name = "N")]
    pub idle: usize,
    /// TLS handshakes trickling one byte a second.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub trickle: usize,
    /// Wrong-password SCRAM-SHA-512 logins started per second.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub wrong_logins_per_s: u32,
    /// Seconds the attack runs at full strength before the producer starts (the default
    /// outlasts kgate's 10 s TLS handshake timeout: trickling handshakes are being cut and
    /// reopened while the producer runs).
    #[arg(long, default_value_t = 11.0, value_name = "S")]
    pub hold_s: f64,
    /// Print one JSON document with every figure instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kgate bench ...`.
///
/// # Errors
/// The benchmark's error.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Gateway(a) => crate::bench::gateway::run(crate::bench::gateway::Options {
            messages: a.messages,
            rounds: a.rounds,
            load_seconds: a.load_seconds,
            pin: !a.no_pin,
            chart: Some(a.chart),
            connections: a.connections,
            gateway_binary: a.gateway_binary,
            json: a.json,
        }),
        BenchCommand::Hostile(a) => crate::bench::hostile::run(crate::bench::hostile::Options {
            records: a.records,
            rounds: a.rounds,
            idle: a.idle,
            trickle: a.trickle,
            wrong_logins_per_s: a.wrong_logins_per_s,
            hold_s: a.hold_s,
            json: a.json,
        }),
        BenchCommand::Authz(a) => crate::bench::authz::run(crate::bench::authz::Options {
            messages: a.messages,
            rounds: a.rounds,
            json: a.json,
        }),
        BenchCommand::Sim { json } => crate::cmd::bench_sim::run_bench(json),
        BenchCommand::State(a) => crate::bench::state::run(crate::bench::state::Options {
            rounds: a.rounds,
            changes: a.changes,
            bindings: a.bindings,
            users: a.users,
            upstream: a.upstream,
            json: a.json,
        }),
    }
}
