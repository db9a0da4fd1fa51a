//! Issue 12's hostile-load test, bounded and on loopback: the real `kgate proxy` process
//! (TLS + SCRAM-SHA-512, kgate's default log level) attacked by clients that never log in
//! while a librdkafka producer sends records through it, driven by `kgate bench hostile`
//! exactly as a user runs it, at a smaller scale: 500 idle TLS connections, 50 TLS handshakes
//! trickling a byte a second, 20 wrong-password SCRAM logins a second, 20,000 records of
//! 1 KiB alone and then under attack, the attack held 11 s first (past kgate's 10 s TLS
//! handshake timeout, so the trickling handshakes are cut and reopened while the producer
//! runs). Everything binds 127.0.0.1 only (the gateway child and the embedded cluster); the
//! run stops on its own in about 15 s and is killed after `LIMIT`.
//!
//! Bounds, and why:
//! - nothing lost: the cluster's high watermarks hold every record sent, alone and attacked,
//!   and librdkafka reports no failed delivery;
//! - throughput under attack ≥ `MIN_RATIO` × alone. The target is 0.8 and
//!   `kgate bench hostile` reports the real figure against it; this test runs on a shared
//!   2-core CI machine with a debug build, where the attack's own clients (the TLS handshakes
//!   of 550 connections and 20 logins a second), the embedded cluster and the producer all
//!   share the two cores with kgate and with another build, and where a 20,000-record run
//!   lasts a fraction of a second: such short runs vary by ±40 % from one to the next on an
//!   idle machine (0.89 and 1.36 in two runs). 0.4 still catches the failure the issue is
//!   about, a data path starved by the attack (the producer stalling behind login work or
//!   refused connections);
//! - kgate's peak RSS ≤ `MAX_RSS_MIB`: about 30 MiB at rest in a debug build, plus the
//!   attack's ~600 open connections at well under issue 2's 64 KiB budget each (~40 MiB),
//!   with room for the allocator — memory growing with the attack's duration or the log
//!   would exceed it;
//! - the log grows by less than 1 MiB during the attack (the bound);
//! - kgate refuses every wrong password with SASL_AUTHENTICATION_FAILED, closes every
//!   trickling handshake at its 10 s timeout, refuses none of the idle connections (the cap
//!   per address is raised to fit the attack), and a real user's logins meanwhile all work.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const RECORDS: u64 = 20_000;
const IDLE: u64 = 500;
const TRICKLE: u64 = 50;
const WRONG_LOGINS_PER_S: u64 = 20;
const HOLD_S: f64 = 11.0;
/// The whole run (cluster and gateway start, baseline, ramp, hold, attacked run, stop).
const LIMIT: Duration = Duration::from_secs(60);
const MIN_RATIO: f64 = 0.4;
const MAX_RSS_MIB: f64 = 160.0;
const MAX_LOG_BYTES: f64 = 1024.0 * 1024.0;

/// Runs the binary with `args`, TMPDIR set to `tmp`; kills it after `limit`.
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

/// Processes whose command line mentions `needle` (the gateway child gets files of the
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
fn kgate_keeps_serving_a_producer_under_a_pre_authentication_attack() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let (ok, stdout, stderr) = run_kgate(
        &[
            "bench",
            "hostile",
            "--records",
            &RECORDS.to_string(),
            "--idle",
            &IDLE.to_string(),
            "--trickle",
            &TRICKLE.to_string(),
            "--wrong-logins-per-s",
            &WRONG_LOGINS_PER_S.to_string(),
            "--hold-s",
            &HOLD_S.to_string(),
            "--rounds",
            "1",
            "--json",
        ],
        tmp.path(),
        LIMIT,
    );
    assert!(ok, "kgate bench hostile failed; stderr:\n{stderr}");
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));
    let context = format!("report:\n{stdout}\nstderr:\n{stderr}");
    eprintln!("kgate bench hostile took {:?}", started.elapsed());

    assert_eq!(report["benchmark"], "hostile");
    assert_eq!(num(&report, "config.records") as u64, RECORDS);
    assert_eq!(num(&report, "config.idle") as u64, IDLE);
    assert_eq!(num(&report, "config.trickle") as u64, TRICKLE);
    assert_eq!(report["config"]["log_level"], "info", "{context}");
    let round = &report["rounds"][0];

    // Nothing lost, alone or attacked.
    for phase in ["baseline", "attack"] {
        let warmup = num(&report, "config.warmup_records") as u64;
        assert_eq!(num(round, &format!("{phase}.sent")) as u64, RECORDS);
        assert_eq!(
            num(round, &format!("{phase}.appended")) as u64,
            RECORDS + warmup,
            "{phase}: the cluster does not hold every record sent; {context}"
        );
        assert_eq!(num(round, &format!("{phase}.lost")), 0.0, "{context}");
        assert_eq!(
            num(round, &format!("{phase}.failed_deliveries")),
            0.0,
            "{context}"
        );
    }
    assert_eq!(num(&report, "summary.records_lost"), 0.0, "{context}");

    // The producer keeps its pace.
    let ratio = num(round, "throughput_ratio");
    assert!(
        ratio >= MIN_RATIO,
        "throughput under attack {ratio:.2} x alone, below {MIN_RATIO}; {context}"
    );

    // Memory and log stay bounded.
    let rss_mib = num(round, "rss_peak_kib") / 1024.0;
    assert!(
        rss_mib <= MAX_RSS_MIB,
        "kgate peaked at {rss_mib:.1} MiB, over {MAX_RSS_MIB} MiB; {context}"
    );
    let log = num(round, "log_growth_bytes");
    assert!(
        log > 0.0,
        "kgate logged nothing at level info during the attack; {context}"
    );
    assert!(
        log < MAX_LOG_BYTES,
        "kgate's log grew by {log} bytes during the attack; {context}"
    );

    // The attack really happened and got what it should.
    let a = &round["attackers"];
    assert_eq!(
        num(a, "idle_open_at_produce") as u64,
        IDLE,
        "every idle connection was open while the producer ran; {context}"
    );
    assert_eq!(num(a, "idle_failed"), 0.0, "{context}");
    assert!(
        num(a, "trickle_closed_by_kgate") as u64 >= TRICKLE,
        "kgate cut every trickling handshake at least once; {context}"
    );
    let cut_after = num(a, "trickle_closed_after_s");
    assert!(
        (9.0..=15.0).contains(&cut_after),
        "trickling handshakes cut after {cut_after} s, not at the 10 s TLS handshake timeout; {context}"
    );
    let wrong = num(a, "wrong_logins");
    let refused = num(a, "wrong_logins_refused");
    assert!(
        wrong >= HOLD_S * WRONG_LOGINS_PER_S as f64 * 0.8,
        "only {wrong} wrong logins were attempted; {context}"
    );
    assert_eq!(num(a, "wrong_logins_accepted"), 0.0, "{context}");
    // Logins still in flight when the attack stopped were abandoned by the attacker.
    assert!(
        refused >= wrong - (WRONG_LOGINS_PER_S as f64) * 6.0 && refused > 0.0,
        "{refused} of {wrong} wrong logins got SASL_AUTHENTICATION_FAILED; {context}"
    );
    assert!(num(a, "legit_logins") >= 10.0, "{context}");
    assert_eq!(
        num(a, "legit_login_failures"),
        0.0,
        "a real user could not log in during the attack; {context}"
    );

    // No gateway child outlives the run.
    let needle = tmp.path().to_string_lossy().into_owned();
    let left = processes_mentioning(&needle);
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
