//! `kgate bench gateway` driven as a user would: a small run of the built binary with
//! `--json`, checking that every figure is there and sane (not the targets: those are for
//! release builds on an idle machine), and that no gateway child outlives the run.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const MESSAGES: u64 = 2000;
const CONNECTIONS: u64 = 50;

/// Runs the binary with `args`, TMPDIR set to `tmp`; returns (status ok, stdout, stderr).
fn run_kgate(args: &[&str], tmp: &Path, limit: Duration) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(args)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kgate");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kgate {args:?} still running after {limit:?}; stderr:\n{}",
                err_reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        status.success(),
        out_reader.join().expect("stdout reader"),
        err_reader.join().expect("stderr reader"),
    )
}

fn num(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for part in path.split('.') {
        cur = &cur[part];
    }
    let n = cur
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {cur}"));
    assert!(n.is_finite(), "{path} = {n}");
    n
}

/// Processes whose command line mentions `needle` (the gateway children get files of the
/// benchmark's temporary directory as arguments).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!("{}: {cmdline}", name.to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn bench_gateway_reports_every_figure_as_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, stdout, stderr) = run_kgate(
        &[
            "bench",
            "gateway",
            "--messages",
            &MESSAGES.to_string(),
            "--connections",
            &CONNECTIONS.to_string(),
            "--json",
        ],
        tmp.path(),
        Duration::from_secs(600),
    );
    assert!(ok, "kgate bench gateway failed; stderr:\n{stderr}");
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));

    assert_eq!(report["benchmark"], "gateway");
    assert!(matches!(
        report["build"].as_str(),
        Some("debug" | "release")
    ));
    assert!(num(&report, "cpus") >= 1.0);
    assert_eq!(num(&report, "config.messages") as u64, MESSAGES);
    assert_eq!(num(&report, "config.record_bytes") as u64, 1024);
    assert_eq!(num(&report, "config.connections") as u64, CONNECTIONS);
    let warmup = num(&report, "config.warmup_messages") as u64;
    assert!(warmup > 0);
    let rounds = num(&report, "config.rounds") as u64;
    assert!(rounds >= 1);
    let consume_factor = num(&report, "config.consume_factor") as u64;
    assert!(consume_factor >= 1);

    for path in ["direct", "plaintext", "tls_scram"] {
        let p = |field: &str| num(&report, &format!("paths.{path}.{field}"));
        for field in ["produce_mb_s", "consume_mb_s", "half_load_rate"] {
            assert!(p(field) > 0.0, "{path}.{field} = {}", p(field));
        }
        for field in ["produce_ratio", "consume_ratio"] {
            let r = p(field);
            assert!(r > 0.0 && r < 10.0, "{path}.{field} = {r}");
        }
        for phase in ["peak_latency", "half_load_latency"] {
            let p50 = p(&format!("{phase}.p50_ms"));
            let p99 = p(&format!("{phase}.p99_ms"));
            assert!(
                p50 > 0.0 && p99 >= p50,
                "{path}.{phase}: p50 {p50}, p99 {p99}"
            );
            assert!(p99 < 60_000.0, "{path}.{phase}: p99 {p99} ms");
            // At peak: the best round; at half load: every round's samples.
            let rounds = if phase == "peak_latency" { 1 } else { rounds };
            assert_eq!(p(&format!("{phase}.samples")) as u64, rounds * MESSAGES);
        }
        let gateway = &report["paths"][path]["gateway"];
        if path == "direct" {
            assert!(gateway.is_null(), "direct has no gateway: {gateway}");
            assert!((p("produce_ratio") - 1.0).abs() < 1e-9);
            assert!((p("consume_ratio") - 1.0).abs() < 1e-9);
        } else {
            let g = |field: &str| num(&report, &format!("paths.{path}.gateway.{field}"));
            assert_eq!(
                g("bytes_forwarded") as u64,
                rounds * (MESSAGES + consume_factor * (MESSAGES + warmup)) * 1024,
                "{path}: produced + consumed record bytes"
            );
            for field in ["cpu_s_produce", "cpu_s_consume", "cpu_s_per_gb"] {
                assert!(g(field) >= 0.0, "{path}.gateway.{field} = {}", g(field));
            }
            assert!(g("cpu_s_per_gb") < 10_000.0);
            assert!(
                g("rss_kib") > 1000.0,
                "{path}: gateway RSS {} KiB",
                g("rss_kib")
            );
        }
    }

    assert!(num(&report, "half_load.rate") > 0.0);
    num(&report, "half_load.added_p99_ms");
    num(&report, "half_load.added_p99_ms_plaintext");

    let idle = |field: &str| num(&report, &format!("idle_connections.{field}"));
    assert_eq!(idle("count") as u64, CONNECTIONS);
    assert_eq!(
        idle("alive_after") as u64,
        CONNECTIONS,
        "every connection still served"
    );
    assert!(idle("open_s") > 0.0);
    assert!(idle("rss_before_kib") > 1000.0);
    assert!(idle("rss_after_kib") > idle("rss_before_kib"));
    let per = idle("kib_per_connection");
    assert!(per > 0.0 && per < 4096.0, "KiB per connection = {per}");
    let fds = idle("fds_added") as u64;
    assert!(
        (2 * CONNECTIONS..=2 * CONNECTIONS + 10).contains(&fds),
        "a client and an upstream socket per connection: {fds} fds added"
    );

    let targets = report["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 4, "{targets:?}");
    for t in targets {
        assert!(t["name"].as_str().is_some_and(|n| !n.is_empty()));
        assert!(t["value"].as_f64().is_some_and(f64::is_finite), "{t}");
        assert!(t["limit"].as_f64().is_some_and(|l| l > 0.0), "{t}");
        assert!(t["pass"].is_boolean(), "{t}");
    }
    assert!(num(&report, "elapsed_s") > 0.0);

    // Every gateway child was killed: none still runs with the benchmark's files.
    let left = processes_mentioning(&tmp.path().display().to_string());
    assert!(left.is_empty(), "gateway children left running: {left:?}");
}

#[test]
fn bench_gateway_refuses_a_too_small_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, stdout, stderr) = run_kgate(
        &["bench", "gateway", "--messages", "10"],
        tmp.path(),
        Duration::from_secs(60),
    );
    assert!(
        !ok,
        "a run of 10 messages should be refused; stdout:\n{stdout}"
    );
    assert!(
        stderr.contains("--messages must be at least 100"),
        "stderr: {stderr}"
    );
}
