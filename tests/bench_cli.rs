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
const ROUNDS: u64 = 3;

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
        // A number picks an array element ("curve.points.0.direct").
        cur = match part.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[part],
        };
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
    let chart = tmp.path().join("curve.svg");
    let (ok, stdout, stderr) = run_kgate(
        &[
            "bench",
            "gateway",
            "--messages",
            &MESSAGES.to_string(),
            "--rounds",
            &ROUNDS.to_string(),
            "--load-seconds",
            "0.2",
            "--connections",
            &CONNECTIONS.to_string(),
            "--chart",
            &chart.display().to_string(),
            "--json",
        ],
        tmp.path(),
        Duration::from_secs(900),
    );
    assert!(ok, "kgate bench gateway failed; stderr:\n{stderr}");
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));

    assert_eq!(report["benchmark"], "gateway");
    assert!(matches!(
        report["build"].as_str(),
        Some("debug" | "release")
    ));
    let cpus = num(&report, "cpus");
    assert!(cpus >= 1.0);
    assert_eq!(num(&report, "config.messages") as u64, MESSAGES);
    assert_eq!(num(&report, "config.record_bytes") as u64, 1024);
    assert_eq!(num(&report, "config.connections") as u64, CONNECTIONS);
    assert_eq!(num(&report, "config.rounds") as u64, ROUNDS);
    assert_eq!(num(&report, "config.policy_bindings") as u64, 10_000);
    assert!(num(&report, "config.warmup_messages") > 0.0);
    assert!(num(&report, "config.consume_factor") >= 1.0);
    // The pinned phase runs wherever there are two CPUs (and taskset).
    let pinned = report["config"]["pinned"].as_bool().expect("config.pinned");

    // A median and its range over the rounds.
    let spread = |path: &str| {
        let (median, min, max) = (
            num(&report, &format!("{path}.median")),
            num(&report, &format!("{path}.min")),
            num(&report, &format!("{path}.max")),
        );
        assert!(
            min <= median && median <= max,
            "{path}: {min} {median} {max}"
        );
        assert_eq!(
            num(&report, &format!("{path}.rounds")) as u64,
            ROUNDS,
            "{path}"
        );
        median
    };
    for path in ["direct", "plaintext", "tls_scram"] {
        let base = format!("paths.{path}");
        let mut modes = vec!["free"];
        if pinned {
            modes.push("pinned");
        } else {
            assert!(report["paths"][path]["pinned"].is_null());
        }
        for mode in modes {
            let m = format!("{base}.{mode}");
            for field in [
                "produce_mb_s",
                "consume_mb_s",
                "clients_and_cluster_cpu_s_per_gb",
            ] {
                assert!(spread(&format!("{m}.{field}")) > 0.0, "{m}.{field}");
            }
            for field in ["produce_ratio", "consume_ratio"] {
                let r = spread(&format!("{m}.{field}"));
                assert!(r > 0.0 && r < 10.0, "{m}.{field} = {r}");
                if path == "direct" {
                    assert!((r - 1.0).abs() < 1e-9, "{m}.{field} = {r}");
                }
            }
            for field in [
                "gateway_produce_cpu_s_per_gb",
                "gateway_consume_cpu_s_per_gb",
            ] {
                let v = &report["paths"][path][mode][field];
                if path == "direct" {
                    assert!(v.is_null(), "direct has no gateway: {v}");
                } else {
                    let c = spread(&format!("{m}.{field}"));
                    assert!((0.0..10_000.0).contains(&c), "{m}.{field} = {c}");
                }
            }
        }
        let p50 = num(&report, &format!("{base}.peak_latency.p50_ms"));
        let p99 = num(&report, &format!("{base}.peak_latency.p99_ms"));
        assert!(
            p50 > 0.0 && p99 >= p50 && p99 < 60_000.0,
            "{path}: {p50} {p99}"
        );
        assert_eq!(
            num(&report, &format!("{base}.peak_latency.samples")) as u64,
            ROUNDS * MESSAGES
        );
        if path == "direct" {
            assert!(report["paths"][path]["rss_kib"].is_null());
        } else {
            assert!(num(&report, &format!("{base}.rss_kib")) > 1000.0);
        }
    }

    // The curve: four loads of the slowest path's peak, every path at each.
    assert!(matches!(
        report["curve"]["slowest"].as_str(),
        Some("direct" | "plaintext" | "tls_scram")
    ));
    assert!(num(&report, "curve.peak_rate") > 0.0);
    let points = report["curve"]["points"].as_array().expect("points");
    let fractions: Vec<f64> = points
        .iter()
        .map(|p| p["fraction"].as_f64().expect("fraction"))
        .collect();
    assert_eq!(fractions, [0.10, 0.25, 0.50, 0.75]);
    for (i, point) in points.iter().enumerate() {
        for path in ["direct", "plaintext", "tls_scram"] {
            let l = format!("curve.points.{i}.{path}");
            let p50 = spread(&format!("{l}.p50_ms"));
            let p99 = spread(&format!("{l}.p99_ms"));
            assert!(p50 > 0.0 && p99 >= p50, "{l}: {p50} {p99}");
            assert!(spread(&format!("{l}.rate")) > 0.0);
            for added in ["added_p50_ms", "added_p99_ms"] {
                if path == "direct" {
                    assert!(point[path][added].is_null());
                } else {
                    spread(&format!("{l}.{added}"));
                }
            }
            // The gateway's own times, read from its admin endpoint: a part of what the
            // client waited for, never more.
            let own = [
                "held_p50_ms",
                "held_p99_ms",
                "receive_p50_ms",
                "receive_p99_ms",
                "gateway_cpu_wait_percent",
            ];
            if path == "direct" {
                for field in own {
                    assert!(point[path][field].is_null(), "{l}.{field}");
                }
            } else {
                let held_p50 = spread(&format!("{l}.held_p50_ms"));
                let held_p99 = spread(&format!("{l}.held_p99_ms"));
                assert!(
                    held_p50 > 0.0 && held_p99 >= held_p50 && held_p50 < p50,
                    "{l}: held {held_p50} / {held_p99}, send→ack p50 {p50}"
                );
                let arrival_p50 = spread(&format!("{l}.receive_p50_ms"));
                assert!(
                    arrival_p50 >= 0.0 && arrival_p50 < p50,
                    "{l}: {arrival_p50}"
                );
                let wait = spread(&format!("{l}.gateway_cpu_wait_percent"));
                assert!((0.0..=100.0).contains(&wait), "{l}: CPU wait {wait} %");
            }
        }
    }
    let svg = std::fs::read_to_string(&chart).expect("the chart was written");
    assert!(
        svg.starts_with("<svg")
            && svg.contains("kgate TLS+SCRAM p99")
            && svg.contains("held in kgate p99"),
        "{svg:.200}"
    );

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
    // Throughput, 4 latency (added and held), 4 CPU (8 when pinned), memory.
    assert_eq!(targets.len(), if pinned { 14 } else { 10 }, "{targets:?}");
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
