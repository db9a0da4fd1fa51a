//! `kgate demo`: the gateway in front of an embedded cluster, ready for clients in seconds.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use kgate_auth::{CredentialStore, Mechanism, SharedCredentials};
use kgate_labs::EmbeddedCluster;
use kgate_proxy::credentials::{CredentialAuthenticator, SaslMechanism};
use kgate_proxy::{Gateway, GatewayConfig, TlsSettings};
use rand::distr::{Alphanumeric, SampleString};

/// Arguments of `kgate demo`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kgate demo
  kgate demo --listen 127.0.0.1:19092 --self-test

Starts a 3-broker Kafka-protocol cluster inside this process (no Kafka needed), creates a CA
and a server certificate in a temporary directory, a user `demo` with a random password, and
the gateway with SASL_SSL in front of the cluster. It prints the client settings and runs until
Ctrl-C. --self-test produces and consumes 1,000 messages through the gateway with those
settings and exits.

The admin endpoint (loopback) serves /metrics and accepts fault rules, so in a second terminal:
  kgate fault add latency=300ms topic=telemetry api=produce
  kgate fault add error=NOT_LEADER_OR_FOLLOWER topic=demo api=produce count=5
  kgate fault clear")]
pub struct DemoArgs {
    /// Where the gateway's bootstrap listener binds (broker N gets this port + 1 + N).
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "IP:PORT")]
    pub listen: SocketAddr,
    /// Number of brokers in the embedded cluster.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub brokers: i32,
    /// Produce and consume through the gateway, report, and exit.
    #[arg(long)]
    pub self_test: bool,
    /// The admin endpoint (metrics, fault rules); the demo goes on without it if the port is
    /// taken.
    #[arg(long, default_value = "127.0.0.1:9644", value_name = "IP:PORT")]
    pub admin_listen: SocketAddr,
}

/// The demo's reload: its users file (the certificate is made fresh for each run).
struct DemoReload(SharedCredentials);

impl kgate_proxy::admin::Reload for DemoReload {
    fn reload(&self) -> Result<String, String> {
        self.0
            .reload()
            .map(|()| "users reloaded".into())
            .map_err(|e| e.to_string())
    }
}

/// Runs `kgate demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let cluster =
        EmbeddedCluster::start(args.brokers).context("cannot start the embedded cluster")?;
    for (topic, partitions) in [
        ("demo", 6),
        ("telemetry", 6),
        ("customer_feedback", 3),
        ("system_logs", 3),
    ] {
        cluster.create_topic(topic, partitions)?;
    }
    let dir = tempfile::Builder::new()
        .prefix("kgate-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let options = kgate_certs::GenerateOptions::default();
    kgate_certs::generate::init_ca(dir.path(), &options)?;
    kgate_certs::generate::issue_server(
        dir.path(),
        &["localhost".into()],
        &[args.listen.ip()],
        &options,
    )?;
    let password = Alphanumeric.sample_string(&mut rand::rng(), 20);
    let mut store = CredentialStore::new();
    for m in [Mechanism::ScramSha512, Mechanism::ScramSha256] {
        store.add("demo", m, password.as_bytes(), 4096)?;
    }
    let users = dir.path().join("users.toml");
    store.save(&users)?;
    let credentials = SharedCredentials::load(&users)?;
    let handle = kgate_certs::TlsConfigHandle::load(kgate_certs::TlsSettings {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server-key.pem"),
        client_ca: None,
    })?;
    let upstream = cluster
        .bootstrap_servers()
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut config = GatewayConfig::new(args.listen, upstream);
    config.tls = Some(Arc::new(TlsSettings {
        handle,
        principal_mapper: None,
    }));
    config.sasl.authenticator = Some(Arc::new(CredentialAuthenticator::new(
        credentials.clone(),
        SaslMechanism::all(),
    )));
    let gateway = Gateway::start(config).await.with_context(|| {
        format!(
            "cannot start the gateway on {} (is the port in use? try --listen 127.0.0.1:0)",
            args.listen
        )
    })?;
    let bootstrap = gateway.bootstrap_servers();
    let ca = dir.path().join("ca.pem");
    let properties = client_properties(&bootstrap, &password, &ca);
    let props_file = dir.path().join("client.properties");
    std::fs::write(&props_file, &properties)
        .with_context(|| format!("cannot write {}", props_file.display()))?;
    println!(
        "kgate demo is running: a {}-broker cluster behind the gateway.",
        args.brokers
    );
    println!();
    println!("  bootstrap.servers  {bootstrap}");
    println!("  user               demo (password below; it exists only for this run)");
    println!("  topics             demo, telemetry, customer_feedback, system_logs");
    println!("  CA certificate     {}", ca.display());
    println!();
    println!("librdkafka / kcat settings ({}):", props_file.display());
    for line in properties.lines() {
        println!("  {line}");
    }
    println!();
    println!("kafka-python:");
    println!(
        "  KafkaProducer(bootstrap_servers='{bootstrap}', security_protocol='SASL_SSL',\n\
         \x20               sasl_mechanism='SCRAM-SHA-512', sasl_plain_username='demo',\n\
         \x20               sasl_plain_password='{password}', ssl_cafile='{}')",
        ca.display()
    );
    println!();
    // The demo is a playground on loopback: fault rules are allowed, for whoever can read
    // the token file (`kgate fault` finds it by the port).
    let token = kgate_proxy::admin_token::generate();
    let admin = match kgate_proxy::admin::AdminServer::start(
        args.admin_listen,
        gateway.shared().clone(),
        Arc::new(DemoReload(credentials)),
        kgate_proxy::admin::AdminOptions {
            allow_faults: true,
            token: Some(token.as_str().into()),
        },
    )
    .await
    {
        Ok(admin) => {
            let at = admin.addr();
            // Removed when the demo stops.
            let token_file = kgate_proxy::admin_token::store_owned(
                &kgate_proxy::admin_token::default_path(at.port()),
                &token,
            )?;
            println!("Admin endpoint: http://{at}/metrics  — inject faults from another terminal:");
            println!("  kgate fault add latency=300ms topic=telemetry api=produce --admin {at}");
            println!("  kgate fault list --admin {at}     kgate fault clear --admin {at}");
            println!();
            Some((admin, token_file))
        }
        Err(e) => {
            println!(
                "(no admin endpoint: {} is not free: {e}; pass --admin-listen 127.0.0.1:0)",
                args.admin_listen
            );
            println!();
            None
        }
    };
    if args.self_test {
        let result = self_test(&bootstrap, &password, &ca).await;
        if let Some((admin, token_file)) = admin {
            admin.stop();
            drop(token_file);
        }
        gateway.shutdown().await;
        drop(cluster);
        return result;
    }
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    println!("stopping");
    if let Some((admin, token_file)) = admin {
        admin.stop();
        drop(token_file);
    }
    gateway.shutdown().await;
    drop(cluster);
    Ok(())
}

fn client_properties(bootstrap: &str, password: &str, ca: &Path) -> String {
    format!(
        "bootstrap.servers={bootstrap}\nsecurity.protocol=SASL_SSL\nsasl.mechanisms=SCRAM-SHA-512\n\
         sasl.username=demo\nsasl.password={password}\nssl.ca.location={}\n",
        ca.display()
    )
}

async fn self_test(bootstrap: &str, password: &str, ca: &Path) -> anyhow::Result<()> {
    let mut client = rdkafka::ClientConfig::new();
    for line in client_properties(bootstrap, password, ca).lines() {
        if let Some((k, v)) = line.split_once('=') {
            client.set(k, v);
        }
    }
    let n = 1000;
    let report = kgate_labs::client::produce(&client, "demo", n, 100, 50)
        .await
        .context("self-test: producing through the gateway failed")?;
    let got = kgate_labs::client::consume(
        &client,
        "demo",
        "kgate-demo-self-test",
        n,
        Duration::from_secs(60),
    )
    .await
    .context("self-test: consuming through the gateway failed")?;
    let total: usize = got.values().map(Vec::len).sum();
    println!(
        "self-test: produced {} and consumed {total} messages over SASL_SSL (SCRAM-SHA-512) across {} partitions in {:.2?}",
        report.acked,
        got.len(),
        report.elapsed
    );
    anyhow::ensure!(total == n, "self-test: consumed {total} of {n} messages");
    Ok(())
}
