//! kafka-python (3.x, from pip in the venv `./test.sh` creates) through kgate with
//! SCRAM-SHA-256 over TLS. kafka-python cannot talk to the embedded cluster directly (its
//! ApiVersions and group versions are too new for it); through kgate it works, because kgate
//! answers ApiVersions itself and caps versions to what the cluster parses.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KGATE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "kafka-python is needed: run ./test.sh (it creates .venv with kafka-python), \
         or set KGATE_PYTHON to a python with kafka-python installed"
    );
    venv
}

/// Runs `produce_consume.py` as alice (SCRAM-SHA-256 over TLS) against `gateway`; returns
/// its JSON result line and every value read, sorted.
async fn produce_consume(
    gateway: &kgate_proxy::Gateway,
    pki: &common::Pki,
    topic: &'static str,
    group: &'static str,
    n: usize,
) -> (serde_json::Value, Vec<u64>) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/produce_consume.py");
    let bootstrap = gateway.bootstrap_servers();
    let ca = pki.path("ca.pem");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .args([
                bootstrap.as_str(),
                ca.as_str(),
                "SCRAM-SHA-256",
                "alice",
                "alice-secret",
                topic,
                group,
                &n.to_string(),
            ])
            .output()
            .expect("run python")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python failed:\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let result: serde_json::Value = serde_json::from_str(last).expect("json line");
    let mut all: Vec<u64> = result["partitions"]
        .as_object()
        .expect("partitions")
        .values()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_u64())
        .collect();
    all.sort_unstable();
    (result, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_produces_and_consumes_in_a_group_over_scram_sha_256() {
    let topic = "clicks";
    let cluster = common::cluster_with_topic(topic, 4);
    let pki = common::Pki::new();
    let mut config = common::gateway_config(&cluster);
    config.tls = Some(pki.tls(false));
    config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
    let (gateway, _) = common::start_gateway(config).await;
    let (result, all) = produce_consume(&gateway, &pki, topic, "py-group", 300).await;
    assert_eq!(result["produced"], 300, "{result}");
    assert_eq!(result["consumed"], 300, "{result}");
    assert_eq!(result["in_order"], true, "{result}");
    let partitions = result["partitions"].as_object().expect("partitions");
    assert!(partitions.len() > 1, "spread over partitions: {result}");
    assert_eq!(all, (0..300).collect::<Vec<u64>>());
    gateway.shutdown().await;
}

/// The seeds' scenario with kafka-python: Engineering writes `system_logs` only, Marketing
/// reads `customer_feedback` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_sees_the_seeds_scenario_enforced() {
    let cluster = common::cluster_with_topic("customer_feedback", 3);
    cluster.create_topic("system_logs", 3).expect("topic");
    let pki = common::Pki::new();
    let mut config = common::gateway_config(&cluster);
    config.tls = Some(pki.tls(false));
    config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
    config.authz = Some(common::authz(
        pki.dir.path(),
        include_str!("../policies/examples/seeds.toml"),
    ));
    let (gateway, _) = common::start_gateway(config).await;
    let admin = common::sasl_ssl_client(
        &gateway.bootstrap_servers(),
        &pki,
        "SCRAM-SHA-512",
        "admin",
        "admin-secret",
    );
    common::produce(&admin, "customer_feedback", 7, 1).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/seeds.py");
    let (bootstrap, ca) = (gateway.bootstrap_servers(), pki.path("ca.pem"));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .args([bootstrap.as_str(), ca.as_str()])
            .output()
            .expect("run python")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python failed:\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let r: serde_json::Value = serde_json::from_str(last).expect("json line");
    assert_eq!(r["bob_writes_system_logs"], "ok", "{last}");
    // Bob may not describe customer_feedback (29); alice may, but may not write it: kafka-python's
    // idempotent producer already fails at InitProducerId with 31, as against a Kafka broker.
    for key in [
        "bob_writes_customer_feedback",
        "alice_writes_customer_feedback",
    ] {
        let answer = r[key].as_str().unwrap_or_default();
        assert!(answer.contains("AuthorizationFailed"), "{key}: {last}");
    }
    assert_eq!(r["alice_reads_customer_feedback"], 7, "{last}");
    gateway.shutdown().await;
}

/// kafka-python through gateway faults: retriable produce errors are retried (nothing lost,
/// nothing doubled) and a fetch connection dropped by kgate is re-established.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_rides_out_injected_errors_and_a_dropped_connection() {
    let topic = "retries";
    let cluster = common::cluster_with_topic(topic, 3);
    let pki = common::Pki::new();
    let mut config = common::gateway_config(&cluster);
    config.tls = Some(pki.tls(false));
    config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
    let (gateway, _) = common::start_gateway(config).await;
    let faults = gateway.shared().config.faults.clone();
    for rule in [
        "error=NOT_ENOUGH_REPLICAS topic=retries api=produce count=3",
        "disconnect principal=User:alice api=fetch count=1",
    ] {
        faults.add(rule.parse().expect("rule")).expect("add");
    }
    let (result, all) = produce_consume(&gateway, &pki, topic, "py-faults", 200).await;
    assert_eq!(result["produced"], 200, "{result}");
    assert_eq!(result["consumed"], 200, "nothing doubled: {result}");
    assert_eq!(
        all,
        (0..200).collect::<Vec<u64>>(),
        "nothing lost: {result}"
    );
    let injected = faults.injected();
    assert_eq!(injected.errors, 3, "{injected:?}");
    assert_eq!(injected.disconnects, 1, "{injected:?}");
    gateway.shutdown().await;
}
