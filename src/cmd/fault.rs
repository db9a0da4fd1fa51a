//! `kgate fault`: add, list and remove the fault rules of a running gateway through its
//! admin endpoint.
//!
//! The rules themselves are checked here first, so a typo is reported with the fix before
//! anything is sent; the gateway checks them again.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use kgate_proxy::faults::FaultRule;

const EXAMPLES: &str = "\
Examples:
  kgate proxy --config kgate.toml --admin-listen 127.0.0.1:9644 --allow-faults
  kgate fault add latency=300ms principal=User:alice
  kgate fault add error=NOT_LEADER_OR_FOLLOWER topic=orders api=produce count=3
  kgate fault add disconnect client-id=slow-consumer every=10
  kgate fault add throttle=250ms principal=User:batch api=produce
  kgate fault list
  kgate fault remove 2
  kgate fault clear

A rule is one effect and any filters:
  effects  latency=300ms | latency=2s | throttle=250ms | error=NAME_OR_CODE | disconnect
  filters  principal=User:NAME  client-id=ID  topic=NAME  api=produce|fetch|metadata|...
           count=N (then the rule goes)  every=N (one matching request in N)
An error fails a produce before it is written. Without api= it hits produce and fetch only;
name the API to fail list-offsets, metadata, offset-commit, offset-fetch, find-coordinator,
join-group, heartbeat, sync-group, leave-group or init-producer-id (the broker's answer is
replaced by the error). A latency holds the response back: it leaves no earlier than that
long after its request (responses keep their order, as in Kafka); a throttle does the same and reports it in the response's
throttle_time_ms (produce and fetch), as a broker quota does, so clients count it.";

/// Arguments of `kgate fault`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct FaultArgs {
    /// The gateway's admin endpoint.
    #[arg(
        long,
        global = true,
        value_name = "IP:PORT",
        env = "KGATE_ADMIN",
        default_value = "127.0.0.1:9644"
    )]
    admin: SocketAddr,
    /// The gateway's admin token file (its admin_token_file); default: the per-port file
    /// kgate writes under $XDG_RUNTIME_DIR/kgate or ~/.cache/kgate.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "KGATE_ADMIN_TOKEN_FILE"
    )]
    token_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: FaultCommand,
}

#[derive(Debug, Subcommand)]
enum FaultCommand {
    /// Add a rule (the gateway must run with --allow-faults); prints its id.
    #[command(after_help = EXAMPLES)]
    Add {
        /// The rule, e.g. latency=300ms principal=User:alice.
        #[arg(required = true, value_name = "WORD")]
        rule: Vec<String>,
    },
    /// List the rules in force and how often each applied.
    List,
    /// Remove one rule by its id.
    Remove {
        /// The id `add` and `list` print (#3 or 3).
        id: String,
    },
    /// Remove every rule.
    Clear,
    /// Check a rule without a gateway: prints it as the gateway reads it.
    Check {
        /// The rule.
        #[arg(required = true, value_name = "WORD")]
        rule: Vec<String>,
    },
}

/// Runs `kgate fault`.
///
/// # Errors
/// A rule with a mistake, or an endpoint that cannot be reached or refuses.
pub fn run(args: FaultArgs) -> anyhow::Result<()> {
    let text = match &args.command {
        FaultCommand::Add { rule } | FaultCommand::Check { rule } => {
            let text = rule.join(" ");
            let parsed: FaultRule = text
                .parse()
                .map_err(|e| anyhow::anyhow!("fault rule {text:?}: {e}"))?;
            parsed.to_string()
        }
        _ => String::new(),
    };
    let (method, path, body) = match args.command {
        FaultCommand::Check { .. } => {
            println!("{text}");
            return Ok(());
        }
        FaultCommand::Add { .. } => ("POST", "/faults".to_owned(), text),
        FaultCommand::List => ("GET", "/faults".to_owned(), String::new()),
        FaultCommand::Clear => ("DELETE", "/faults".to_owned(), String::new()),
        FaultCommand::Remove { id } => {
            let n: u64 = id.trim_start_matches('#').parse().with_context(|| {
                format!("{id:?} is not a rule id (write e.g. 3; `kgate fault list` shows them)")
            })?;
            ("DELETE", format!("/faults/{n}"), String::new())
        }
    };
    let token = if method == "GET" {
        None
    } else {
        let file = args
            .token_file
            .clone()
            .unwrap_or_else(|| kgate_proxy::admin_token::default_path(args.admin.port()));
        Some(kgate_proxy::admin_token::read(&file).with_context(|| {
            format!(
                "changes need the gateway's admin token: pass --token-file (the gateway's \
                 admin_token_file), or run as the user who started the gateway at {}",
                args.admin
            )
        })?)
    };
    let (status, reply) = http(args.admin, method, &path, &body, token.as_deref())?;
    if status == 200 {
        print!("{reply}");
        return Ok(());
    }
    bail!(
        "the gateway at {} refused ({status}): {}",
        args.admin,
        reply.trim_end()
    );
}

/// One HTTP/1.1 request to the admin endpoint; returns the status and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).with_context(|| {
        format!(
            "cannot reach the admin endpoint at {addr} (start kgate proxy with --admin-listen {addr} --allow-faults, or pass --admin)"
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let auth = token.map_or_else(String::new, |t| format!("authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .with_context(|| format!("cannot send to {addr}"))?;
    let mut reply = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut reply)
        .with_context(|| format!("no answer from {addr}"))?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply.split_once("\r\n\r\n").with_context(|| {
        format!("{addr} did not answer in HTTP (is it kgate's admin endpoint?)")
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("{addr} answered without an HTTP status"))?;
    Ok((status, body.to_owned()))
}
