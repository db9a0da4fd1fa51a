//! The gateway's CLI driven as a user drives it: the built `kgate` binary for `proxy`,
//! `demo`, `client-config` and `config check`, with real clients and their errors.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn kgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kgate"));
    c.env("KGATE_LOG", "warn");
    c
}

fn run(args: &[&str], dir: &Path) -> Output {
    kgate()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run kgate")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A loopback port `p` such that `p..p + count` are all free now: a gateway listens on `p`
/// and serves broker `n` on `p + 1 + n` (the default port base), so every one of them must be
/// free, not just the first (another test may hold the next one).
fn free_port_block(count: u16) -> u16 {
    for _ in 0..100 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = first.local_addr().expect("addr").port();
        if u32::from(port) + u32::from(count) > 65_535 {
            continue;
        }
        let rest: Result<Vec<_>, _> = (1..count)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", port + i)))
            .collect();
        if rest.is_ok() {
            return port;
        }
    }
    panic!("no block of {count} free loopback ports");
}

fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    http_with(port, method, path, None)
}

fn http_with(port: u16, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("admin endpoint");
    let auth = token.map_or_else(String::new, |t| format!("authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: localhost:{port}\r\n{auth}\r\n"
    )
    .expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn config_check_accepts_a_good_file_and_names_line_and_fix_for_a_bad_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert!(run(&["certs", "init", "--dir", "certs"], d)
        .status
        .success());
    assert!(run(
        &["certs", "server", "--dir", "certs", "--dns", "localhost"],
        d
    )
    .status
    .success());
    std::fs::write(
        d.join("kgate.toml"),
        "listen = \"127.0.0.1:9093\"\nupstream = [\"127.0.0.1:9092\"]\ncert = \"certs/server.pem\"\nkey = \"certs/server-key.pem\"\n",
    )
    .expect("write");
    let out = run(&["config", "check", "kgate.toml"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "kgate.toml: ok"
    );

    std::fs::write(
        d.join("bad.toml"),
        "listen = \"127.0.0.1:9093\"\nupstream = [\"kafka\"]\nusers = \"missing-users.toml\"\n",
    )
    .expect("write");
    let out = run(&["config", "check", "bad.toml"], d);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2: upstream"), "{err}");
    assert!(
        err.contains("bad.toml:3: users") && err.contains("kgate users add"),
        "{err}"
    );

    std::fs::write(
        d.join("typo.toml"),
        "listen = \"127.0.0.1:9093\"\nclient_cert = \"x\"\n",
    )
    .expect("write");
    let out = run(&["config", "check", "typo.toml"], d);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.toml:2") && err.contains("unknown field"),
        "{err}"
    );

    let out = run(&["config", "check", "nowhere.toml"], d);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere.toml"));
}

#[test]
fn client_config_prints_working_settings_and_explains_missing_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = run(
        &[
            "client-config",
            "--user",
            "alice",
            "--format",
            "java",
            "--bootstrap",
            "gw:9093",
            "--ca",
            "certs/ca.pem",
        ],
        d,
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("security.protocol=SASL_SSL"));
    assert!(text.contains("ScramLoginModule required username=\"alice\""));
    assert!(!text.contains("secret"), "no password is printed");
    let out = run(
        &[
            "client-config",
            "--user",
            "alice",
            "--format",
            "kafka-python",
            "--bootstrap",
            "gw:9093",
            "--ca",
            "ca.pem",
            "--mechanism",
            "PLAIN",
        ],
        d,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sasl_mechanism='PLAIN'"));

    let out = run(
        &["client-config", "--user", "alice", "--bootstrap", "gw:9093"],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca FILE"));
    let out = run(
        &[
            "client-config",
            "--user",
            "alice",
            "--bootstrap",
            "gw:9093",
            "--ca",
            "x",
            "--mechanism",
            "GSSAPI",
        ],
        d,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mechanism"));
}

#[test]
fn demo_self_test_round_trips_through_the_gateway() {
    let runtime = tempfile::tempdir().expect("tempdir");
    let out = kgate()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--self-test",
        ])
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("security.protocol=SASL_SSL"), "{stdout}");
    assert!(stdout.contains("kgate fault add latency=300ms"), "{stdout}");
    // The admin token `kgate fault` reads lived in a directory private to the user who
    // started the demo, and went with the demo.
    let dir = runtime.path().join("kgate");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&dir).expect("token dir").permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("token dir")
        .filter_map(Result::ok)
        .collect();
    assert!(left.is_empty(), "the demo leaves no token file: {left:?}");
    assert!(stdout.contains("Admin endpoint"), "{stdout}");
    assert!(
        stdout.contains("self-test: produced 1000 and consumed 1000 messages"),
        "{stdout}"
    );
}

#[test]
fn proxy_without_a_users_file_says_how_to_make_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert!(run(&["certs", "init", "--dir", "certs"], d)
        .status
        .success());
    assert!(run(&["certs", "server", "--dir", "certs"], d)
        .status
        .success());
    let out = run(
        &[
            "proxy",
            "--upstream",
            "127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
            "--cert",
            "certs/server.pem",
            "--key",
            "certs/server-key.pem",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kgate users add"), "{err}");
    let out = run(
        &[
            "proxy",
            "--upstream",
            "127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--users",
            "u.toml",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("c.pem"));
}

#[test]
fn proxy_does_not_start_without_an_authorization_choice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert!(run(&["certs", "init", "--dir", "certs"], d)
        .status
        .success());
    assert!(run(&["certs", "server", "--dir", "certs"], d)
        .status
        .success());
    let mut add = kgate()
        .args([
            "users",
            "add",
            "alice",
            "--users",
            "users.toml",
            "--password-stdin",
        ])
        .current_dir(d)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("users add");
    {
        use std::io::Write;
        let mut stdin = add.stdin.take().expect("stdin");
        stdin.write_all(b"alice-secret").expect("password");
    }
    assert!(add.wait().expect("users add").success());
    let base = [
        "proxy",
        "--upstream",
        "127.0.0.1:1",
        "--listen",
        "127.0.0.1:0",
        "--cert",
        "certs/server.pem",
        "--key",
        "certs/server-key.pem",
        "--users",
        "users.toml",
    ];
    // Neither --policy nor --allow-all-authenticated: refused before anything listens.
    let out = run(&base, d);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--policy FILE") && err.contains("--allow-all-authenticated"),
        "{err}"
    );
    // Both at once: clap refuses the combination.
    let mut both = base.to_vec();
    both.extend(["--policy", "p.toml", "--allow-all-authenticated"]);
    let out = run(&both, d);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both in a config file: named with its line.
    std::fs::write(
        d.join("kgate.toml"),
        "policy = \"p.toml\"\nallow_all_authenticated = true\n",
    )
    .expect("config");
    let out = run(&["config", "check", "kgate.toml"], d);
    assert_eq!(out.status.code(), Some(64));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("kgate.toml:2: allow_all_authenticated"),
        "{text}"
    );
    // The explicit choice gets past the check (and then fails on the unreachable upstream).
    let mut explicit = base.to_vec();
    explicit.push("--allow-all-authenticated");
    let out = run(&explicit, d);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("authorization is OFF"), "{err}");
    assert!(err.contains("cannot start the gateway"), "{err}");
}

#[test]
fn a_broker_port_already_taken_refuses_the_start_and_names_it() {
    let cluster = common::cluster_with_topic("t", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert!(run(&["certs", "init", "--dir", "certs"], d)
        .status
        .success());
    assert!(run(&["certs", "server", "--dir", "certs"], d)
        .status
        .success());
    std::fs::write(d.join("users.toml"), "").expect("users");
    // Broker 1 would be served on base + 1: someone else holds that port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let base = (port - 1).to_string();
    let out = run(
        &[
            "proxy",
            "--upstream",
            cluster.bootstrap_servers(),
            "--listen",
            "127.0.0.1:0",
            "--broker-port-base",
            &base,
            "--cert",
            "certs/server.pem",
            "--key",
            "certs/server-key.pem",
            "--users",
            "users.toml",
            "--allow-all-authenticated",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("node 1"),
        "{err}"
    );
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_serves_authorizes_reports_metrics_reloads_and_stops_on_sigterm() {
    let cluster = common::cluster_with_topic("system_logs", 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert!(run(&["certs", "init", "--dir", "certs"], d)
        .status
        .success());
    assert!(run(
        &[
            "certs",
            "server",
            "--dir",
            "certs",
            "--dns",
            "localhost",
            "--ip",
            "127.0.0.1"
        ],
        d
    )
    .status
    .success());
    let mut add = kgate()
        .args([
            "users",
            "add",
            "bob",
            "--users",
            "users.toml",
            "--password-stdin",
        ])
        .current_dir(d)
        .stdin(Stdio::piped())
        .spawn()
        .expect("users add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(b"bob-secret")
        .expect("password");
    assert!(add.wait().expect("wait").success());
    let acl = run(
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:bob",
            "--producer",
            "--topic",
            "system_logs",
            "--policy",
            "policy.toml",
        ],
        d,
    );
    assert!(
        acl.status.success(),
        "{}",
        String::from_utf8_lossy(&acl.stderr)
    );
    // The listener and the broker ports after it, then an admin port outside that block.
    let port = free_port_block(6);
    let admin = loop {
        let admin = free_port();
        if !(port..port + 6).contains(&admin) {
            break admin;
        }
    };
    let listen = format!("127.0.0.1:{port}");
    let admin_listen = format!("127.0.0.1:{admin}");
    let child = kgate()
        .args([
            "proxy",
            "--upstream",
            cluster.bootstrap_servers(),
            "--listen",
            &listen,
            "--cert",
            "certs/server.pem",
            "--key",
            "certs/server-key.pem",
            "--users",
            "users.toml",
            "--policy",
            "policy.toml",
            "--audit-log",
            "audit.jsonl",
            "--admin-listen",
            &admin_listen,
            "--admin-token-file",
            "admin.token",
            "--fault",
            "latency=1ms api=list-offsets count=1000",
        ])
        .current_dir(d)
        .spawn()
        .expect("proxy");
    let mut child = Killer(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", admin)).is_err() {
        assert!(Instant::now() < deadline, "proxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http(admin, "GET", "/healthz").0, 200);
    assert_eq!(http(admin, "GET", "/readyz").0, 200);

    let pki = common::Pki {
        dir: tempfile::tempdir().expect("tempdir"),
    };
    std::fs::copy(d.join("certs/ca.pem"), pki.dir.path().join("ca.pem")).expect("ca");
    let bob = common::sasl_ssl_client(&listen, &pki, "SCRAM-SHA-256", "bob", "bob-secret");
    common::produce(&bob, "system_logs", 20, 4).await;

    let (status, metrics) = http(admin, "GET", "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("kgate_auth_success_total"), "{metrics}");
    assert!(
        metrics.contains("kgate_authorization_enforced 1\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("kgate_auth_success_total 0\n"),
        "{metrics}"
    );
    // The produce requests were timed: how long kgate held each, how long each took to arrive.
    for metric in [
        "kgate_request_held_seconds",
        "kgate_request_receive_seconds",
    ] {
        let count = |series: &str| -> u64 {
            let line = metrics
                .lines()
                .find(|l| l.starts_with(series))
                .unwrap_or_else(|| panic!("no {series} in {metrics}"));
            line.rsplit(' ').next().unwrap().parse().expect("a count")
        };
        let produced = count(&format!("{metric}_count{{api=\"Produce\"}}"));
        assert!(produced >= 1, "{metrics}");
        assert_eq!(
            count(&format!("{metric}_bucket{{api=\"Produce\",le=\"+Inf\"}}")),
            produced
        );
    }

    // The --fault rule is in force from the start; without --allow-faults it cannot be changed.
    let (status, body) = http(admin, "GET", "/faults");
    assert_eq!(status, 200);
    assert!(
        body.contains("#1 latency=1ms api=list-offsets count=1000"),
        "{body}"
    );
    // Changes need the admin token kgate wrote (0600) to --admin-token-file.
    let token_path = d.join("admin.token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_path)
            .expect("token file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_path).expect("token");
    let token = Some(token.trim());
    let (status, body) = http(admin, "POST", "/reload");
    assert_eq!(status, 401, "no token: {body}");
    let (status, body) = http_with(admin, "DELETE", "/faults", token);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-faults"), "{body}");

    let (status, body) = http_with(admin, "POST", "/reload", token);
    assert_eq!(status, 200, "{body}");
    std::fs::write(d.join("policy.toml"), "[[acl]]\nprincipal = \"nobody\"\n").expect("write");
    let (status, body) = http_with(admin, "POST", "/reload", token);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("policy"), "{body}");
    // The old policy is still in force.
    common::produce(&bob, "system_logs", 5, 1).await;

    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "proxy did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful exit: {status}");
    let audit = std::fs::read_to_string(d.join("audit.jsonl")).expect("audit");
    assert!(
        audit.contains("\"authentication\"") && audit.contains("User:bob"),
        "{audit}"
    );
}
