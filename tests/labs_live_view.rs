//! The instructor's live view and the class view in a real browser: headless Chromium driven by
//! playwright-core (`tests/browser/live_view.cjs`). `./test.sh` installs playwright-core under
//! `${XDG_CACHE_HOME:-~/.cache}/kgate/browser` and sets `KGATE_BROWSER_TESTS=1`; without that
//! variable and without Chromium the test says why it is skipped.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SMALL_LAB: &str = r#"
id = "small"
title = "A small lab"
summary = "certificates"
[environment]
topics = [{ name = "t", partitions = 1, messages = 2 }]

[[step]]
title = "Make a CA"
text = "kgate certs init --dir certs"
commands = ["kgate certs init --dir certs"]
check = [{ kind = "file", path = "certs/ca.pem" }]

[[step]]
title = "Read the topic"
text = "anyone can"
check = [{ kind = "consume", topic = "t", security = "plaintext", expect = "ok", min = 2 }]
"#;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kgate` and waits for a stdout line containing `marker`; returns the URL in it.
fn start(args: &[&str], stdin: &[u8], marker: &str) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(args)
        .env("KGATE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin).expect("stdin");
        // Keep standard input open: the guided run waits for more.
        std::mem::forget(pipe);
    }
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let wanted = marker.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.find("http://").filter(|_| line.contains(&wanted)) {
                let url: String = line[i..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send(url);
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no {marker:?} line from kgate {args:?}"));
    (Killed(child), url)
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
    let admin = live
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    // The class view, and two students reporting to it.
    let (_class, class) = start(
        &["lab", "serve", "--listen", "127.0.0.1:0"],
        b"",
        "class view:",
    );
    let lab_file = state.path().join("small.toml");
    std::fs::write(&lab_file, SMALL_LAB).expect("write lab");
    let lab_file = lab_file.display().to_string();
    let alice_dir = state.path().join("alice").display().to_string();
    let alice = Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(["lab", "run", &lab_file, "--auto", "--dir", &alice_dir])
        .args(["--class", &class, "--student", "alice"])
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
            &class,
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
    assert_ne!(v["states"]["bob"][1], "done", "{v}");
}
