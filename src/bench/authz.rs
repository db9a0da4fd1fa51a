//! `kgate bench authz`: what authorization costs.
//!
//! Two parts in one run: the cost of one decision with 100, 10,000 and 100,000 ACL bindings,
//! answered from the decision cache and computed by the compiled matcher (issue 3's targets:
//! ≤ 1 µs cached and ≤ 20 µs uncached at 100,000 bindings); and end-to-end produce throughput
//! through two gateways in this process that differ only in authorization (TLS + SCRAM both,
//! one with a 10,000-binding policy), in alternating rounds so that drift on a shared machine
//! hits both alike (target: with ≥ 0.97 × without).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kgate_auth::{CredentialStore, Mechanism, SharedCredentials};
use kgate_labs::EmbeddedCluster;
use kgate_policies::{
    bench_decisions, synthetic_policy, AclBinding, Authorizer, AuthorizerOptions, Host, Operation,
    Permission, Principal, ResourcePattern, ResourceType, BENCH_SIZES,
};
use kgate_proxy::credentials::{CredentialAuthenticator, SaslMechanism};
use kgate_proxy::{Gateway, GatewayConfig, TlsSettings};
use serde::Serialize;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records produced per round and gateway.
    pub messages: usize,
    /// Alternating rounds (each produces through both gateways).
    pub rounds: usize,
    /// Print JSON instead of the table.
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Decision {
    bindings: usize,
    cached_ns: f64,
    uncached_ns: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    decisions: Vec<Decision>,
    record_bytes: usize,
    messages_per_round: usize,
    rounds: usize,
    without_authz_mb_s: f64,
    with_authz_mb_s: f64,
    ratio: f64,
    targets: Targets,
}

#[derive(Debug, Serialize)]
struct Targets {
    cached_ns_at_100k_max: f64,
    uncached_ns_at_100k_max: f64,
    ratio_min: f64,
    cached_met: bool,
    uncached_met: bool,
    ratio_met: bool,
}

/// Runs the benchmark and prints its figures.
///
/// # Errors
/// The embedded cluster or a gateway cannot start, or a message is not acknowledged.
pub fn run(options: Options) -> anyhow::Result<()> {
    let decisions: Vec<Decision> = bench_decisions(&BENCH_SIZES, 200_000)
        .into_iter()
        .map(|f| Decision {
            bindings: f.bindings,
            cached_ns: f.cached_ns,
            uncached_ns: f.uncached_ns,
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let (without, with) = runtime.block_on(throughput(&options))?;
    let at_100k = decisions.iter().find(|d| d.bindings == 100_000);
    let ratio = with / without;
    let report = Report {
        record_bytes: 1024,
        messages_per_round: options.messages,
        rounds: options.rounds,
        without_authz_mb_s: without,
        with_authz_mb_s: with,
        ratio,
        targets: Targets {
            cached_ns_at_100k_max: 1_000.0,
            uncached_ns_at_100k_max: 20_000.0,
            ratio_min: 0.97,
            cached_met: at_100k.is_some_and(|d| d.cached_ns <= 1_000.0),
            uncached_met: at_100k.is_some_and(|d| d.uncached_ns <= 20_000.0),
            ratio_met: ratio >= 0.97,
        },
        decisions,
    };
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mark = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!("kgate bench authz");
    println!();
    println!("decision cost      bindings     cached      uncached");
    for d in &report.decisions {
        println!(
            "                   {:>8}  {:>9.0} ns  {:>9.0} ns",
            d.bindings, d.cached_ns, d.uncached_ns
        );
    }
    println!(
        "  targets at 100,000: cached <= 1 us {}, uncached <= 20 us {}",
        mark(report.targets.cached_met),
        mark(report.targets.uncached_met)
    );
    println!();
    println!(
        "produce through kgate (TLS + SCRAM-SHA-512, 1 KiB records, acks=all, {} rounds x {} messages)",
        report.rounds, report.messages_per_round
    );
    println!(
        "  authorization off   {:>8.1} MB/s",
        report.without_authz_mb_s
    );
    println!(
        "  authorization on    {:>8.1} MB/s  (10,000-binding policy)",
        report.with_authz_mb_s
    );
    println!(
        "  ratio               {:>8.3}       target >= 0.97 {}",
        report.ratio,
        mark(report.targets.ratio_met)
    );
    Ok(())
}

async fn throughput(options: &Options) -> anyhow::Result<(f64, f64)> {
    let cluster = EmbeddedCluster::start(3).context("embedded cluster")?;
    cluster.create_topic("bench", 6)?;
    let dir = tempfile::tempdir()?;
    let certs = kgate_certs::GenerateOptions::default();
    kgate_certs::generate::init_ca(dir.path(), &certs)?;
    kgate_certs::generate::issue_server(
        dir.path(),
        &["localhost".into()],
        &["127.0.0.1".parse()?],
        &certs,
    )?;
    let mut store = CredentialStore::new();
    store.add("bench", Mechanism::ScramSha512, b"bench-secret", 4096)?;
    let users = dir.path().join("users.toml");
    store.save(&users)?;
    let credentials = SharedCredentials::load(&users)?;

    let mut policy = synthetic_policy(10_000);
    let bench: Principal = "User:bench".parse()?;
    for (rt, name, op) in [
        (ResourceType::Topic, "bench", Operation::Write),
        (
            ResourceType::Cluster,
            "kafka-cluster",
            Operation::IdempotentWrite,
        ),
    ] {
        policy.add_acl(AclBinding {
            pattern: ResourcePattern::literal(rt, name)?,
            principal: bench.clone(),
            host: Host::Any,
            operation: op,
            permission: Permission::Allow,
        });
    }
    let authz = Arc::new(kgate_proxy::authz::Authz {
        authorizer: Arc::new(Authorizer::new(policy, AuthorizerOptions::default())),
        audit: None,
        credentials: None,
        topic_ids: Default::default(),
    });
    let start = |authz: Option<Arc<kgate_proxy::authz::Authz>>| {
        let mut config = GatewayConfig::new(
            "127.0.0.1:0".parse().expect("literal address"),
            cluster
                .bootstrap_servers()
                .split(',')
                .map(str::to_owned)
                .collect(),
        );
        let tls = kgate_certs::TlsConfigHandle::load(kgate_certs::TlsSettings {
            cert: dir.path().join("server.pem"),
            key: dir.path().join("server-key.pem"),
            client_ca: None,
        });
        let credentials = credentials.clone();
        async move {
            config.tls = Some(Arc::new(TlsSettings {
                handle: tls?,
                principal_mapper: None,
            }));
            config.sasl.authenticator = Some(Arc::new(CredentialAuthenticator::new(
                credentials,
                SaslMechanism::all(),
            )));
            config.authz = authz;
            Ok::<_, anyhow::Error>(Gateway::start(config).await?)
        }
    };
    let off = start(None).await?;
    let on = start(Some(authz)).await?;
    let client = |gateway: &Gateway| {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", gateway.bootstrap_servers())
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", "SCRAM-SHA-512")
            .set("sasl.username", "bench")
            .set("sasl.password", "bench-secret")
            .set(
                "ssl.ca.location",
                dir.path().join("ca.pem").display().to_string(),
            )
            .set("linger.ms", "5")
            .set("acks", "all");
        c
    };
    let (c_off, c_on) = (client(&off), client(&on));
    // Warm-up: connections, metadata, the decision cache.
    kgate_labs::client::produce(&c_off, "bench", 1000, 1024, 64).await?;
    kgate_labs::client::produce(&c_on, "bench", 1000, 1024, 64).await?;
    let mut best = (0.0f64, 0.0f64);
    for round in 0..options.rounds.max(1) {
        let mut pair = [(&c_off, 0usize), (&c_on, 1usize)];
        if round % 2 == 1 {
            pair.reverse();
        }
        for (config, which) in pair {
            let report =
                kgate_labs::client::produce(config, "bench", options.messages, 1024, 64).await?;
            let mb_s = (options.messages * 1024) as f64
                / 1e6
                / report.elapsed.max(Duration::from_micros(1)).as_secs_f64();
            if which == 0 {
                best.0 = best.0.max(mb_s);
            } else {
                best.1 = best.1.max(mb_s);
            }
        }
    }
    off.shutdown().await;
    on.shutdown().await;
    Ok(best)
}
