//! tansu (a Kafka-compatible broker written by others, installed by `./test.sh` with
//! `cargo install tansu`) as an upstream for the end-to-end tests: one broker with memory
//! storage on a free loopback port, killed when dropped. It runs in a temporary directory
//! (tansu reads a `.env` file from its working directory).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long tansu may take to accept connections, and one `tansu topic create` to finish.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const TOPIC_TIMEOUT: Duration = Duration::from_secs(20);

/// A running tansu broker.
pub struct Tansu {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The tansu binary: `$KGATE_TANSU`, else `tansu` on PATH, else `~/.cargo/bin/tansu`. A
/// missing binary fails the test (with how to get it) rather than skipping it.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KGATE_TANSU") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("tansu"))
        .find(|p| p.is_file());
    if let Some(p) = on_path {
        return p;
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("HOME or CARGO_HOME");
    let p = cargo_home.join("bin/tansu");
    assert!(
        p.is_file(),
        "tansu is needed: run ./test.sh (it runs `cargo install tansu --version 0.6.0 --locked \
         --features dynostore`), or set KGATE_TANSU to the binary"
    );
    p
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Tansu {
    /// Starts a broker and creates `topics` (name, partitions) on it.
    pub fn start(topics: &[(&str, i32)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("tansu.log");
        // The port is free when chosen; should another process take it before tansu binds,
        // tansu exits and the next try picks another.
        let mut last_error = String::new();
        for _ in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            let url = format!("tcp://{addr}");
            let out = std::fs::File::create(&log).expect("log file");
            let err = out.try_clone().expect("log file");
            let mut child = Command::new(binary())
                .arg("broker")
                .current_dir(dir.path())
                .args(["--listener-url", &url])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", "memory://tansu/"])
                // Its defaults come from these variables too: none of the caller's may leak in.
                .env_remove("CLUSTER_ID")
                .env_remove("LISTENER_URL")
                .env_remove("ADVERTISED_LISTENER_URL")
                .env_remove("STORAGE_ENGINE")
                .env_remove("SCHEMA_REGISTRY")
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("start tansu");
            match wait_ready(&mut child, addr, &log) {
                Ok(()) => {
                    let tansu = Self {
                        child,
                        addr,
                        log,
                        _dir: dir,
                    };
                    for (name, partitions) in topics {
                        tansu.create_topic(name, *partitions);
                    }
                    return tansu;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = e;
                }
            }
        }
        panic!("tansu did not start: {last_error}");
    }

    /// The broker's address, as a bootstrap server.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// What the broker wrote to stdout and stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Creates a topic with `tansu topic create`; retried until the broker answers.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_with(name, partitions, &[]);
    }

    /// Creates a topic with topic configs (`cleanup.policy=delete`).
    pub fn create_topic_with(&self, name: &str, partitions: i32, configs: &[&str]) {
        let deadline = Instant::now() + TOPIC_TIMEOUT;
        let url = format!("tcp://{}", self.addr);
        loop {
            let mut child = Command::new(binary())
                .args(["topic", "create", name])
                .current_dir(self._dir.path())
                .args(["--broker", &url])
                .args(["--partitions", &partitions.to_string()])
                .args(configs.iter().flat_map(|c| ["--config", c]))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run tansu topic create");
            let status = loop {
                if let Some(status) = child.try_wait().expect("wait") {
                    break Some(status);
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let output = child.wait_with_output().expect("output");
            match status {
                Some(s) if s.success() => return,
                // A retry after an attempt that created it (this broker is ours alone).
                Some(_) if String::from_utf8_lossy(&output.stderr).contains("already exists") => {
                    return
                }
                Some(s) if Instant::now() < deadline => {
                    eprintln!(
                        "tansu topic create {name}: {s}: {}{}; retrying",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
                _ => panic!(
                    "tansu topic create {name} failed within {TOPIC_TIMEOUT:?}: {}{}\nbroker log:\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr),
                    self.log_text()
                ),
            }
        }
    }
}

/// Waits until the broker accepts connections, or it exits, or the time is up.
fn wait_ready(child: &mut Child, addr: SocketAddr, log: &std::path::Path) -> Result<(), String> {
    let log_text = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("tansu exited with {status}:\n{}", log_text()));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "tansu did not listen on {addr} within {START_TIMEOUT:?}:\n{}",
                log_text()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
