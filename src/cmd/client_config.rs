//! `kgate client-config`: the client settings that work against this gateway.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::{Args, ValueEnum};

use crate::config;

/// Client library to print settings for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// librdkafka properties (confluent-kafka-python, kcat, rdkafka, node-rdkafka, ...).
    Librdkafka,
    /// Java client properties (kafka-console-*, Kafka Streams, Connect, AdminClient).
    Java,
    /// kafka-python keyword arguments.
    KafkaPython,
}

/// Arguments of `kgate client-config`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kgate client-config --user alice --format librdkafka --bootstrap kafka-gw.example.com:9093 --ca certs/ca.pem
  kgate client-config --user alice --format java --config kgate.toml > alice.properties
  kgate client-config --cert certs/alice.pem --key certs/alice-key.pem --format kafka-python --config kgate.toml

The password is never printed: fill in the one given to `kgate users add`.")]
pub struct ClientConfigArgs {
    /// The SASL user (omit with --cert for mTLS).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Which client library.
    #[arg(long, value_enum, default_value = "librdkafka")]
    pub format: Format,
    /// SASL mechanism.
    #[arg(long, default_value = "SCRAM-SHA-512", value_name = "MECHANISM")]
    pub mechanism: String,
    /// The gateway's bootstrap address as clients reach it (default: from --config).
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: Option<String>,
    /// The CA certificate clients trust (default: next to the server certificate in --config).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A client certificate for mTLS instead of SASL.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The gateway's configuration file, to take the address and CA from.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs `kgate client-config`.
pub fn run(args: ClientConfigArgs) -> anyhow::Result<()> {
    print!("{}", render(&args)?);
    Ok(())
}

/// The settings as text.
///
/// # Errors
/// Missing address or CA, or an unknown mechanism, with the fix.
pub fn render(args: &ClientConfigArgs) -> anyhow::Result<String> {
    if kgate_proxy::credentials::SaslMechanism::from_name(&args.mechanism).is_none() {
        bail!(
            "unknown mechanism {:?} (use SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN)",
            args.mechanism
        );
    }
    let file = match &args.config {
        Some(path) => Some((config::load_checked(path)?, path.clone())),
        None => None,
    };
    // In a lab directory the running lab publishes its gateway's address.
    let lab_dir = match &args.config {
        Some(path) => path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_owned(),
        None => PathBuf::from("."),
    };
    let lab_bootstrap = kgate_labs::env::published_address(&lab_dir);
    let bootstrap = match (&args.bootstrap, &file) {
        (Some(b), _) => b.clone(),
        (None, Some((f, _))) => {
            let listen = f.listen.as_ref().map(|l| l.get_ref().clone());
            let port = listen
                .as_deref()
                .and_then(|l| l.rsplit_once(':'))
                .map(|(_, p)| p.to_owned());
            match (f.advertised_host.as_ref(), port, lab_bootstrap) {
                (Some(h), Some(p), _) => format!("{}:{p}", h.get_ref()),
                (None, Some(_), _) => listen.unwrap_or_default(),
                (_, None, Some(lab)) => lab,
                _ => bail!("the config file has no listen address: pass --bootstrap HOST:PORT"),
            }
        }
        (None, None) => match lab_bootstrap {
            Some(lab) => lab,
            None => bail!(
                "pass --bootstrap HOST:PORT (the gateway's address) or --config kgate.toml \
                 (in a lab directory, while `kgate lab run` runs, the lab gateway's address is known)"
            ),
        },
    };
    let ca = match (&args.ca, &file) {
        (Some(ca), _) => ca.clone(),
        (None, None) if lab_dir.join("certs/ca.pem").exists() && args.bootstrap.is_none() => {
            PathBuf::from("certs/ca.pem")
        }
        (None, Some((f, path))) => match &f.cert {
            Some(cert) => config::resolve(path, cert.get_ref())
                .parent()
                .map(|d| d.join("ca.pem"))
                .unwrap_or_else(|| PathBuf::from("ca.pem")),
            None => bail!("the config file has no cert: pass --ca FILE"),
        },
        (None, None) => bail!(
            "pass --ca FILE (the CA that signed the gateway's certificate, e.g. certs/ca.pem)"
        ),
    };
    let ca = ca.display().to_string();
    let mtls = args.cert.as_ref().zip(args.key.as_ref());
    let user = match (&args.user, mtls) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(_)) => None,
        (None, None) => bail!(
            "pass --user NAME (a user made with `kgate users add`), or --cert and --key for mTLS"
        ),
    };
    let secret = user
        .as_ref()
        .map(|u| format!("<password of {u}>"))
        .unwrap_or_default();
    let out = match (args.format, &user, mtls) {
        (Format::Librdkafka, Some(u), _) => format!(
            "bootstrap.servers={bootstrap}\nsecurity.protocol=SASL_SSL\nsasl.mechanisms={}\n\
             sasl.username={u}\nsasl.password={secret}\nssl.ca.location={ca}\n",
            args.mechanism
        ),
        (Format::Librdkafka, None, Some((c, k))) => format!(
            "bootstrap.servers={bootstrap}\nsecurity.protocol=SSL\nssl.ca.location={ca}\n\
             ssl.certificate.location={}\nssl.key.location={}\n",
            c.display(),
            k.display()
        ),
        (Format::Java, Some(u), _) => {
            let module = if args.mechanism == "PLAIN" {
                "org.apache.kafka.common.security.plain.PlainLoginModule"
            } else {
                "org.apache.kafka.common.security.scram.ScramLoginModule"
            };
            format!(
                "bootstrap.servers={bootstrap}\nsecurity.protocol=SASL_SSL\nsasl.mechanism={}\n\
                 sasl.jaas.config={module} required username=\"{u}\" password=\"{secret}\";\n\
                 ssl.truststore.type=PEM\nssl.truststore.location={ca}\n",
                args.mechanism
            )
        }
        (Format::Java, None, Some((c, k))) => format!(
            "bootstrap.servers={bootstrap}\nsecurity.protocol=SSL\nssl.truststore.type=PEM\n\
             ssl.truststore.location={ca}\nssl.keystore.type=PEM\n\
             # Java wants the certificate and key in one PEM file: cat {} {} > client.pem\n\
             ssl.keystore.location=client.pem\n",
            c.display(),
            k.display()
        ),
        (Format::KafkaPython, Some(u), _) => format!(
            "bootstrap_servers='{bootstrap}',\nsecurity_protocol='SASL_SSL',\nsasl_mechanism='{}',\n\
             sasl_plain_username='{u}',\nsasl_plain_password='{secret}',\nssl_cafile='{ca}',\n",
            args.mechanism
        ),
        (Format::KafkaPython, None, Some((c, k))) => format!(
            "bootstrap_servers='{bootstrap}',\nsecurity_protocol='SSL',\nssl_cafile='{ca}',\n\
             ssl_certfile='{}',\nssl_keyfile='{}',\n",
            c.display(),
            k.display()
        ),
        (_, None, None) => unreachable!("checked above"),
    };
    Ok(out)
}
