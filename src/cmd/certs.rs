//! `kgate certs`: create the CA, the gateway's certificate and client certificates.
//!
//! Argument parsing and reporting only; `kgate_certs::generate` does the work and its errors
//! already name the file and the fix.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use kgate_certs::generate::{self, GenerateOptions, Generated};

/// Arguments of `kgate certs`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kgate certs init   --dir certs
  kgate certs server --dir certs --dns localhost --ip 127.0.0.1
  kgate certs client --dir certs --name alice")]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Create a private CA: DIR/ca.pem and DIR/ca-key.pem.
    #[command(after_help = "\
Example:
  kgate certs init --dir certs

Then issue the gateway's certificate with `kgate certs server`. Keep ca-key.pem secret: whoever
holds it can mint client certificates the gateway accepts.")]
    Init(CommonArgs),

    /// Issue the gateway's certificate, signed by the CA: DIR/server.pem and DIR/server-key.pem.
    #[command(after_help = "\
Example:
  kgate certs server --dir certs --dns localhost --dns kafka.example.com --ip 127.0.0.1

Clients check that the address they connect to is one of the --dns or --ip names.
Use the result with: kgate proxy --cert certs/server.pem --key certs/server-key.pem")]
    Server(ServerArgs),

    /// Issue a client certificate for mTLS, subject CN=NAME: DIR/NAME.pem and DIR/NAME-key.pem.
    #[command(after_help = "\
Example:
  kgate certs client --dir certs --name alice

With the default mapping rules the gateway sees the principal User:CN=alice.
The gateway requires client certificates when started with --client-ca certs/ca.pem.")]
    Client(ClientArgs),
}

/// Flags every subcommand takes.
#[derive(Debug, Args)]
struct CommonArgs {
    /// Directory of the CA and of the files written (created by `init` if missing).
    #[arg(long, value_name = "DIR", default_value = "certs")]
    dir: PathBuf,

    /// Validity in days [default: 3650 for the CA, 365 for other certificates].
    #[arg(long, value_name = "DAYS")]
    days: Option<u32>,

    /// Overwrite files that already exist.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct ServerArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// DNS name clients use to reach the gateway (repeat or comma-separate for several).
    /// Without --dns and --ip: localhost and 127.0.0.1.
    #[arg(long = "dns", value_name = "NAME", value_delimiter = ',')]
    dns: Vec<String>,

    /// IP address clients use to reach the gateway (repeat or comma-separate for several).
    #[arg(long = "ip", value_name = "IP", value_delimiter = ',')]
    ip: Vec<IpAddr>,
}

#[derive(Debug, Args)]
struct ClientArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// The client's name: the certificate subject becomes CN=NAME.
    #[arg(long, value_name = "NAME")]
    name: String,
}

impl CommonArgs {
    fn options(&self) -> GenerateOptions {
        GenerateOptions {
            days: self.days,
            force: self.force,
        }
    }
}

/// Runs `kgate certs`.
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    match args.command {
        CertsCommand::Init(common) => {
            let ca = generate::init_ca(&common.dir, &common.options())?;
            report("CA", &ca);
            println!(
                "next: kgate certs server --dir {} --dns localhost --ip 127.0.0.1",
                common.dir.display()
            );
        }
        CertsCommand::Server(mut server) => {
            if server.dns.is_empty() && server.ip.is_empty() {
                server.dns.push("localhost".into());
                server.ip.push(IpAddr::from([127, 0, 0, 1]));
            }
            let cert = generate::issue_server(
                &server.common.dir,
                &server.dns,
                &server.ip,
                &server.common.options(),
            )?;
            report("server certificate", &cert);
            let names: Vec<String> = server
                .dns
                .iter()
                .cloned()
                .chain(server.ip.iter().map(IpAddr::to_string))
                .collect();
            println!("  names     {}", names.join(", "));
            println!(
                "use: kgate proxy --cert {} --key {} [--client-ca {}]",
                cert.cert.display(),
                cert.key.display(),
                ca_path(&server.common.dir).display()
            );
        }
        CertsCommand::Client(client) => {
            let cert =
                generate::issue_client(&client.common.dir, &client.name, &client.common.options())?;
            report("client certificate", &cert);
            println!("  principal User:{} (default mapping rules)", cert.subject);
            println!(
                "client settings: ssl.certificate.location={} ssl.key.location={} \
                 ssl.ca.location={}",
                cert.cert.display(),
                cert.key.display(),
                ca_path(&client.common.dir).display()
            );
        }
    }
    Ok(())
}

fn ca_path(dir: &Path) -> PathBuf {
    dir.join(generate::CA_CERT_FILE)
}

fn report(what: &str, generated: &Generated) {
    println!(
        "wrote {what} {} and private key {} (mode 0600)",
        generated.cert.display(),
        generated.key.display()
    );
    println!("  subject   {}", generated.subject);
    println!("  serial    {}", generated.serial);
    println!("  expires   {}", generated.not_after.date());
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(Debug, Subcommand)]
    enum Top {
        Certs(CertsArgs),
    }

    fn parse(args: &[&str]) -> CertsCommand {
        let mut argv = vec!["kgate", "certs"];
        argv.extend_from_slice(args);
        let Top::Certs(certs) = Cli::try_parse_from(argv).unwrap().command;
        certs.command
    }

    #[test]
    fn parses_server_names_repeated_or_comma_separated() {
        let CertsCommand::Server(server) = parse(&[
            "server",
            "--dir",
            "x",
            "--dns",
            "a,b",
            "--dns",
            "c",
            "--ip",
            "127.0.0.1",
        ]) else {
            panic!("not server");
        };
        assert_eq!(server.dns, ["a", "b", "c"]);
        assert_eq!(server.ip, [IpAddr::from([127, 0, 0, 1])]);
        assert_eq!(server.common.dir, PathBuf::from("x"));
    }

    #[test]
    fn parses_days_force_and_default_dir() {
        let CertsCommand::Client(client) =
            parse(&["client", "--name", "alice", "--days", "7", "--force"])
        else {
            panic!("not client");
        };
        assert_eq!(client.name, "alice");
        assert_eq!(client.common.days, Some(7));
        assert!(client.common.force);
        assert_eq!(client.common.dir, PathBuf::from("certs"));
    }

    #[test]
    fn every_subcommand_help_has_an_example() {
        let mut cli = Cli::command();
        cli.build();
        let certs = cli.find_subcommand_mut("certs").unwrap();
        for sub in ["init", "server", "client"] {
            let help = certs
                .find_subcommand_mut(sub)
                .unwrap()
                .render_long_help()
                .to_string();
            assert!(
                help.contains(&format!("kgate certs {sub} --dir certs")),
                "{sub}: {help}"
            );
        }
    }
}
