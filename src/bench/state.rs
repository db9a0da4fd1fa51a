//! `kgate bench state`: how fast several gateways agree (issue 11's targets).
//!
//! Two figures, each over several rounds against the embedded cluster:
//! - **propagation**: an ACL created through instance A (the `CreateAcls` path:
//!   `Authorizer::create_acls` on a policy kept in the state topic) until instances B and C
//!   enforce it (target p99 ≤ 1 s). The three instances are in this process; each reads the
//!   topic with its own client, exactly as three `kgate proxy` processes do.
//! - **catch-up**: a new `kgate` process (`kgate state status`) reading a topic that holds
//!   100,000 bindings and 10,000 users to its end: time and peak memory (targets ≤ 2 s,
//!   ≤ 200 MB).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kgate_auth::{CredentialStore, Mechanism, ScramCredential};
use kgate_labs::EmbeddedCluster;
use kgate_policies::{
    AclBinding, Authorizer, AuthorizerOptions, Host, Operation, Permission, Policy, Principal,
    ResourcePattern, ResourceType,
};
use kgate_state::{credential_entries, policy_entries, KafkaState, StateKey, StateOptions};
use serde::Serialize;

use super::stats::{Latency, Spread, Target};

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rounds of each measurement.
    pub rounds: usize,
    /// ACL changes per propagation round.
    pub changes: usize,
    /// ACL bindings in the catch-up topic.
    pub bindings: usize,
    /// Users in the catch-up topic.
    pub users: usize,
    /// A cluster to run against instead of the embedded one.
    pub upstream: Option<String>,
    /// Print JSON instead of the table.
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Round {
    write: Latency,
    propagation: Latency,
}

#[derive(Debug, Serialize)]
struct CatchUp {
    read_ms: f64,
    peak_mib: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    changes_per_round: usize,
    rounds: Vec<Round>,
    propagation_p50_ms: Spread,
    propagation_p99_ms: Spread,
    bindings: usize,
    users: usize,
    catch_up: Vec<CatchUp>,
    catch_up_ms: Spread,
    catch_up_peak_mib: Spread,
    targets: Vec<Target>,
}

/// State records the embedded cluster holds: it keeps at most 5 MB per partition (older
/// records are deleted, as retention would), about 200 bytes a record.
const EMBEDDED_RECORDS: usize = 20_000;

fn open(bootstrap: &str, topic: &str, key: &StateKey) -> anyhow::Result<KafkaState> {
    let mut options = StateOptions::new(bootstrap, key.clone());
    options.topic = topic.to_owned();
    options.commit_timeout = Duration::from_secs(60);
    Ok(KafkaState::open(options)?)
}

fn binding(topic: &str, user: &str) -> anyhow::Result<AclBinding> {
    Ok(AclBinding {
        pattern: ResourcePattern::new(
            ResourceType::Topic,
            kgate_policies::PatternType::Literal,
            topic,
        )?,
        principal: Principal::user(user)?,
        host: Host::Any,
        operation: Operation::Read,
        permission: Permission::Allow,
    })
}

/// Runs the benchmark.
///
/// # Errors
/// The embedded cluster, the state topic or a child process failed.
pub fn run(o: Options) -> anyhow::Result<()> {
    if o.rounds == 0 || o.changes == 0 {
        bail!("--rounds and --changes must be at least 1");
    }
    let mut o = o;
    // A topic of its own per run, so that runs against one cluster do not mix.
    let topic = format!(
        "__kgate_state_bench_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    );
    let cluster = match &o.upstream {
        Some(_) => None,
        None => {
            let cluster = EmbeddedCluster::start(3).context("cannot start the embedded cluster")?;
            // The embedded cluster cannot create topics over the protocol.
            cluster.create_topic(&topic, 1)?;
            if o.bindings + o.users > EMBEDDED_RECORDS {
                let scale = EMBEDDED_RECORDS as f64 / (o.bindings + o.users) as f64;
                o.bindings = (o.bindings as f64 * scale) as usize;
                o.users = (o.users as f64 * scale) as usize;
                eprintln!(
                    "note: the embedded cluster keeps at most 5 MB per partition; catch-up is \
                     measured with {} bindings and {} users (pass --upstream HOST:PORT, e.g. \
                     a tansu broker, for 100,000 and 10,000)",
                    o.bindings, o.users
                );
            }
            Some(cluster)
        }
    };
    let bootstrap = match (&o.upstream, &cluster) {
        (Some(u), _) => u.clone(),
        (None, Some(c)) => c.bootstrap_servers().to_owned(),
        (None, None) => bail!("no cluster"),
    };
    let key = StateKey::generate()?;
    let dir = tempfile::tempdir()?;
    let key_file = dir.path().join("state.key");
    key.write_new(&key_file)?;

    // Propagation: three instances, changes through the first.
    let mut instances = Vec::new();
    for _ in 0..3 {
        let state = open(&bootstrap, &topic, &key)?;
        let authorizer = Arc::new(Authorizer::with_store(
            state.policy(),
            AuthorizerOptions::default(),
            Arc::new(state.clone()),
        ));
        state.attach(Some(authorizer.clone()), None);
        instances.push((state, authorizer));
    }
    let mut rounds = Vec::new();
    for round in 0..o.rounds {
        let (mut writes, mut seen) = (Vec::new(), Vec::new());
        for i in 0..o.changes {
            let acl = binding(&format!("bench-{round}-{i}"), "reader")?;
            let started = Instant::now();
            instances[0].1.create_acls(vec![acl.clone()])?;
            writes.push(started.elapsed());
            let deadline = started + Duration::from_secs(10);
            while !instances[1..]
                .iter()
                .all(|(_, a)| a.policy().acls().contains(&acl))
            {
                if Instant::now() > deadline {
                    bail!("an ACL did not reach the other instances within 10 s");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            seen.push(started.elapsed());
        }
        rounds.push(Round {
            write: Latency::of(writes),
            propagation: Latency::of(seen),
        });
    }
    // The readers are done; the writer stays to read its own change back.
    for (state, _) in &instances[1..] {
        state.stop();
    }

    // Catch-up: a topic with many bindings and users, read by a new process.
    let acls = (0..o.bindings)
        .map(|i| binding(&format!("topic-{i}"), &format!("user-{}", i % 1000)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let policy = Policy::from_parts(false, [], [], acls, [])?;
    let credential = ScramCredential::from_password(Mechanism::ScramSha512, b"bench", 4096)?;
    let mut users = CredentialStore::new();
    for i in 0..o.users {
        users.insert(
            &format!("user-{i}"),
            Mechanism::ScramSha512,
            credential.clone(),
        )?;
    }
    let writer = &instances[0].0;
    writer.commit_entries(&policy_entries(&writer.policy()), &policy_entries(&policy))?;
    writer.commit_entries(&[], &credential_entries(&users))?;
    writer.stop();

    let mut catch_up = Vec::new();
    for _ in 0..o.rounds {
        let (figures, acls, users) = status(&bootstrap, &topic, &key_file)?;
        // The import replaced the propagation rounds' bindings: exactly these remain.
        if acls != o.bindings || users != o.users {
            bail!(
                "the new instance read {acls} bindings and {users} users, not {} and {}",
                o.bindings,
                o.users
            );
        }
        catch_up.push(figures);
    }

    let p50 = Spread::of(rounds.iter().map(|r| r.propagation.p50_ms).collect());
    let p99 = Spread::of(rounds.iter().map(|r| r.propagation.p99_ms).collect());
    let read = Spread::of(catch_up.iter().map(|c| c.read_ms).collect());
    let peak = Spread::of(catch_up.iter().map(|c| c.peak_mib).collect());
    let targets = vec![
        Target::at_most(
            "ACL propagation p99 (median of rounds)",
            p99.median,
            1000.0,
            "ms",
        ),
        Target::at_most("catch-up of a new instance", read.median, 2000.0, "ms"),
        Target::at_most("its peak memory", peak.median, 200.0, "MiB"),
    ];
    let report = Report {
        changes_per_round: o.changes,
        rounds,
        propagation_p50_ms: p50,
        propagation_p99_ms: p99,
        bindings: o.bindings,
        users: o.users,
        catch_up,
        catch_up_ms: read,
        catch_up_peak_mib: peak,
        targets,
    };
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let upstream = o.upstream.as_deref().map_or_else(
        || "embedded 3-broker cluster".to_owned(),
        |u| format!("upstream {u}"),
    );
    println!("kgate bench state ({upstream}, {} rounds)", o.rounds);
    println!();
    println!(
        "ACL created through A until B and C enforce it ({} changes a round):",
        o.changes
    );
    println!("  round   write p50   write p99   propagation p50   propagation p99");
    for (i, r) in report.rounds.iter().enumerate() {
        println!(
            "  {:>5}   {:>6.1} ms   {:>6.1} ms   {:>12.1} ms   {:>12.1} ms",
            i + 1,
            r.write.p50_ms,
            r.write.p99_ms,
            r.propagation.p50_ms,
            r.propagation.p99_ms
        );
    }
    println!(
        "  propagation p50 {} ms, p99 {} ms (median (min-max) of rounds)",
        p50.show(1),
        p99.show(1)
    );
    println!();
    println!(
        "A new instance reads {} bindings and {} users: {} ms, peak memory {} MiB",
        o.bindings,
        o.users,
        read.show(0),
        peak.show(1)
    );
    println!();
    for t in &report.targets {
        println!(
            "  {:<40} {:>9.1} {} {} {:.0} {}  {}",
            t.name,
            t.value,
            t.unit,
            t.comparison,
            t.limit,
            t.unit,
            t.verdict()
        );
    }
    Ok(())
}

/// Runs `kgate state status` as a new process and reads its timing and peak memory.
fn status(
    bootstrap: &str,
    topic: &str,
    key_file: &Path,
) -> anyhow::Result<(CatchUp, usize, usize)> {
    let exe = std::env::current_exe().context("cannot find the kgate binary")?;
    let out = Command::new(exe)
        .args([
            "state",
            "status",
            "--upstream",
            bootstrap,
            "--state-topic",
            topic,
        ])
        .arg("--state-key-file")
        .arg(key_file)
        .env("KGATE_LOG", "warn")
        .output()
        .context("cannot run kgate state status")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "kgate state status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let field = |name: &str| -> anyhow::Result<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("kgate state status printed no {name:?}: {text}"))
    };
    Ok((
        CatchUp {
            read_ms: field("read in:")?,
            peak_mib: field("peak memory:")?,
        },
        field("acl bindings:")? as usize,
        field("users:")? as usize,
    ))
}
