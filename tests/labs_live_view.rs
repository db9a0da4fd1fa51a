//! The instructor's live view and the class view in a real browser: headless Chromium driven by
//! playwright-core (`tests/browser/live_view.cjs`). `./test.sh` installs playwright-core under
//! `${XDG_CACHE_HOME:-~/.cache}/kgate/browser` and sets `KGATE_BROWSER_TESTS=1`; without that
//! variable and without Chromium the test says why it is skipped.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::lab::{http, start, text, url_in, word_after, SMALL_LAB};

/// Starts `kgate lab serve` on a free loopback port; returns it, its URL and the class token
/// it printed.
fn class_view() -> (common::lab::Running, String, String) {
    let (class, line) = start(
        &["lab", "serve", "--listen", "127.0.0.1:0"],
        b"",
        "class view:",
    );
    let url = url_in(&line);
    let token = class
        .lines
        .recv_timeout(Duration::from_secs(10))
        .ok()
        .and_then(|l| word_after(&l, "class token:"))
        .expect("a `class token:` line");
    (class, url, token)
}

/// playwright-core: where `./test.sh` says (`KGATE_PLAYWRIGHT_CORE`), or where it installs it.
fn playwright() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KGATE_PLAYWRIGHT_CORE").map(PathBuf::from) {
        return dir.join("package.json").exists().then_some(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    ["kgate/browser", "kgate/node"]
        .iter()
        .map(|d| base.join(d).join("node_modules/playwright-core"))
        .find(|dir| dir.join("package.json").exists())
}

#[test]
fn the_live_view_and_the_class_view_work_in_a_browser() {
    let required = std::env::var_os("KGATE_BROWSER_TESTS").is_some();
    let chromium = PathBuf::from("/usr/bin/chromium");
    let (Some(pw), true) = (playwright(), chromium.exists()) else {
        assert!(
            !required,
            "KGATE_BROWSER_TESTS is set but Chromium or playwright-core is missing"
        );
        eprintln!("skipped: install chromium and playwright-core (./test.sh does)");
        return;
    };
    let state = tempfile::tempdir().expect("tempdir");
    // The instructor's lab with its live view, on the step with the hidden fault.
    let dir = state.path().join("lab").display().to_string();
    let (_lab, live) = start(
        &[
            "lab",
            "run",
            "delayed-sensor-data",
            "--seed",
            "4",
            "--dir",
            &dir,
            "--listen",
            "127.0.0.1:0",
            "--view",
            "127.0.0.1:0",
        ],
        b"next\n",
        "live view:",
    );
    let live = url_in(&live);
    let admin = live
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    // The class view, and two students reporting to it.
    let (_class, class, token) = class_view();
    let lab_file = state.path().join("small.toml");
    std::fs::write(&lab_file, SMALL_LAB).expect("write lab");
    let lab_file = lab_file.display().to_string();
    let alice_dir = state.path().join("alice").display().to_string();
    let alice = Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(["lab", "run", &lab_file, "--auto", "--dir", &alice_dir])
        .args([
            "--class",
            &class,
            "--class-token",
            &token,
            "--student",
            "alice",
        ])
        .env("KGATE_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("alice");
    assert!(alice.status.success(), "{alice:?}");
    let bob_dir = state.path().join("bob").display().to_string();
    let mut bob = Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(["lab", "run", &lab_file, "--dir", &bob_dir])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--class",
            &format!("{class}?token={token}"),
            "--student",
            "bob",
        ])
        .env("KGATE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bob");
    bob.stdin
        .take()
        .expect("stdin")
        .write_all(b"do\ncheck\nquit\n")
        .expect("bob types");
    assert!(bob.wait().expect("bob").success());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/live_view.cjs");
    let out = Command::new("node")
        .arg(&script)
        .env("PLAYWRIGHT_CORE", &pw)
        .env("LIVE_URL", &live)
        .env("CLASS_URL", &class)
        .env("ADMIN", &admin)
        .env("KGATE_EXE", env!("CARGO_BIN_EXE_kgate"))
        .output()
        .expect("node runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(report.trim()).expect("one JSON line");
    assert_eq!(v["brokers"], serde_json::json!(["1", "2", "3"]), "{v}");
    assert!(v["faultMs"].as_u64().is_some_and(|ms| ms <= 2000), "{v}");
    assert_eq!(v["forged"], 401, "a page cannot add faults: {v}");
    assert!(
        v["fontPx"].as_f64().is_some_and(|px| px >= 20.0),
        "projector size: {v}"
    );
    assert_eq!(
        v["states"]["alice"],
        serde_json::json!(["done", "done"]),
        "{v}"
    );
    assert_eq!(v["states"]["bob"][0], "done", "{v}");
    let columns = v["columns"].to_string();
    for c in ["produced/s", "read/s by lab", "leader's produce p99", "lag"] {
        assert!(columns.contains(c), "column {c:?}: {v}");
    }
    assert_ne!(v["states"]["bob"][1], "done", "{v}");
}

#[test]
fn the_class_view_takes_progress_only_with_the_class_token() {
    let state = tempfile::tempdir().expect("tempdir");
    let (_class, class, token) = class_view();
    let addr = class
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let lab_file = state.path().join("small.toml");
    std::fs::write(&lab_file, SMALL_LAB).expect("write lab");
    let lab_file = lab_file.display().to_string();
    let student = |name: &str, class_args: &[&str]| {
        let dir = state.path().join(name).display().to_string();
        Command::new(env!("CARGO_BIN_EXE_kgate"))
            .args(["lab", "run", &lab_file, "--auto", "--dir", &dir])
            .args(class_args)
            .args(["--student", name])
            .env("KGATE_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("kgate lab run")
    };
    // The token in the URL the instructor printed, and as --class-token.
    let with_url = format!("{class}?token={token}");
    let alice = student("alice", &["--class", &with_url]);
    assert!(alice.status.success(), "{}", text(&alice));
    assert!(!text(&alice).contains("refused"), "{}", text(&alice));
    let carol = student("carol", &["--class", &class, "--class-token", &token]);
    assert!(carol.status.success(), "{}", text(&carol));
    // Without a token the command is refused before the lab starts, saying what to pass.
    let bob = student("bob", &["--class", &class]);
    assert_eq!(bob.status.code(), Some(2), "{}", text(&bob));
    assert!(
        text(&bob).contains("needs the class token: pass --class-token"),
        "{}",
        text(&bob)
    );
    assert!(!text(&bob).contains("Step 1"), "{}", text(&bob));
    // Another class's token: the lab runs, the class view refuses, and the student is told.
    let mallory = student(
        "mallory",
        &["--class", &class, "--class-token", "0123456789abcdef"],
    );
    assert!(mallory.status.success(), "{}", text(&mallory));
    let said = text(&mallory);
    assert!(
        said.contains("the class view refused your progress: HTTP/1.1 403 Forbidden"),
        "{said}"
    );
    assert!(said.contains("not the class token"), "{said}");
    // Posts by anything else: no Authorization is 401 naming the fix, a wrong one is 403.
    let forged = r#"{"student":"eve","lab":"small","steps":[{"title":"x","state":"done"}]}"#;
    let (status, body) = http(&addr, "POST", "/progress", &[], forged);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("--class-token"), "{body}");
    let (status, _) = http(
        &addr,
        "POST",
        "/progress",
        &["authorization: Bearer 0123456789abcdef"],
        forged,
    );
    assert_eq!(status, 403);
    let (status, _) = http(
        &addr,
        "POST",
        "/progress",
        &[&format!("authorization: Bearer {token}x")],
        forged,
    );
    assert_eq!(status, 403);
    // The page shows exactly the students who had the token.
    let (status, state_json) = http(&addr, "GET", "/state", &[], "");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&state_json).expect("JSON");
    let mut names: Vec<&str> = v["students"]
        .as_array()
        .expect("students")
        .iter()
        .filter_map(|s| s["student"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "carol"], "{v}");
    // The page itself stays readable, with or without the token in its URL.
    assert_eq!(http(&addr, "GET", "/", &[], "").0, 200);
    assert_eq!(
        http(&addr, "GET", &format!("/?token={token}"), &[], "").0,
        200
    );
}

#[test]
fn the_live_view_shows_produce_and_consume_rates_and_says_what_they_measure() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path().join("lab").display().to_string();
    let (mut lab, line) = start(
        &[
            "lab",
            "run",
            "delayed-sensor-data",
            "--seed",
            "4",
            "--dir",
            &dir,
            "--listen",
            "127.0.0.1:0",
            "--view",
            "127.0.0.1:0",
        ],
        b"",
        "live view:",
    );
    let addr = url_in(&line)
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let state_now = || -> serde_json::Value {
        let (status, body) = http(&addr, "GET", "/state", &[], "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    };
    let before = state_now();
    assert!(before["lag_age_s"].is_null(), "no probe yet: {before}");
    // The instructor's step 1: the baseline probe produces and reads through the gateway.
    lab.type_in("check\n");
    let (mut produced, mut consumed) = (0.0f64, 0.0f64);
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let last = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the probe never showed in the live view"
        );
        std::thread::sleep(Duration::from_millis(300));
        let v = state_now();
        let rows = v["partitions"].as_array().cloned().unwrap_or_default();
        for r in &rows {
            produced = produced.max(r["produce_rate"].as_f64().unwrap_or(0.0));
            consumed = consumed.max(r["consume_rate"].as_f64().unwrap_or(0.0));
        }
        let read: u64 = rows.iter().filter_map(|r| r["read_by_lab"].as_u64()).sum();
        if read >= 30 && !v["lag_age_s"].is_null() {
            break v;
        }
    };
    assert!(
        produced > 0.0,
        "a produce rate while the probe wrote: {last}"
    );
    assert!(
        consumed > 0.0,
        "a consume rate while the probe read: {last}"
    );
    // Latency is a broker figure: each partition shows its leader's.
    let brokers = last["brokers"].as_array().expect("brokers");
    for row in last["partitions"].as_array().expect("partitions") {
        let leader = row["leader"].as_i64().expect("leader");
        let broker = brokers
            .iter()
            .find(|b| b["id"].as_i64() == Some(leader))
            .expect("the leader is listed");
        assert!(broker["produce_requests"].as_u64() > Some(0), "{last}");
        assert_eq!(
            row["leader_produce_p99_ms"], broker["produce_p99_ms"],
            "{last}"
        );
        assert_eq!(row["lag"], 0, "the baseline left no lag: {last}");
    }
    // The page says whose reads it counts and how old the lag is.
    let (_, page) = http(&addr, "GET", "/", &[], "");
    assert!(
        page.contains("students' own"),
        "the page names what it counts"
    );
    assert!(page.contains("last probe"), "the page dates the lag");
    lab.type_in("quit\n");
}
