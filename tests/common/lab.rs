//! Helpers of the `kgate lab` tests (`tests/labs_*.rs`): the `kgate` binary run as a student
//! or an instructor would (arguments, typed input, a working directory), its output read as
//! they read it, and a small lab file.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A two-step lab: make a CA (a `file` check), then read a seeded topic (a real consumer).
pub const SMALL_LAB: &str = r#"
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

/// Runs `kgate` with its lab state under `state` (`XDG_STATE_HOME`) and nothing on stdin.
pub fn kgate(args: &[&str], state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(args)
        .env("XDG_STATE_HOME", state)
        .env("KGATE_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("kgate runs")
}

/// Runs `kgate` in `cwd` with `input` on stdin, as a student types it in a guided run.
pub fn kgate_in(args: &[&str], cwd: &Path, input: &[u8]) -> Output {
    run_typed(args, Some(cwd), input)
}

/// Runs `kgate` with `input` on stdin, in the tests' working directory.
pub fn typed(args: &[&str], input: &[u8]) -> Output {
    run_typed(args, None, input)
}

fn run_typed(args: &[&str], cwd: Option<&Path>, input: &[u8]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kgate"));
    command
        .args(args)
        .env("KGATE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let mut child = command.spawn().expect("spawn kgate");
    {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("type into kgate");
    }
    child.wait_with_output().expect("wait for kgate")
}

/// `kgate lab answer LAB --step STEP --question QUESTION --dir DIR`, the answer on stdin;
/// asserts that it was recorded.
pub fn answer(lab: &str, step: &str, question: &str, dir: &str, body: &str) {
    let out = typed(
        &[
            "lab",
            "answer",
            lab,
            "--step",
            step,
            "--question",
            question,
            "--dir",
            dir,
        ],
        body.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// Standard output then standard error, as the terminal shows them.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The text of `all` from the first `from` to the next `to` after it (or to the end).
pub fn section<'a>(all: &'a str, from: &str, to: &str) -> &'a str {
    let start = all
        .find(from)
        .unwrap_or_else(|| panic!("no {from:?} in:\n{all}"));
    let rest = &all[start..];
    let end = rest[from.len()..]
        .find(to)
        .map_or(rest.len(), |e| e + from.len());
    &rest[..end]
}

/// A `kgate` process killed when dropped, with the standard input the test keeps typing into.
pub struct Running {
    pub child: Child,
    pub stdin: Option<std::process::ChildStdin>,
    /// Every stdout line after the one [`start`] waited for.
    pub lines: mpsc::Receiver<String>,
}

impl Running {
    /// Types `input` into the running command.
    pub fn type_in(&mut self, input: &str) {
        if let Some(pipe) = self.stdin.as_mut() {
            pipe.write_all(input.as_bytes()).expect("type into kgate");
            pipe.flush().expect("flush");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kgate` with `input` typed (its stdin stays open: a guided run waits for more) and
/// waits up to a minute for a stdout line containing `marker` and a URL; returns the process
/// and that line.
pub fn start(args: &[&str], input: &[u8], marker: &str) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(args)
        .env("KGATE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kgate");
    let mut stdin = child.stdin.take();
    if let Some(pipe) = stdin.as_mut() {
        pipe.write_all(input).expect("type into kgate");
    }
    let stdout = child.stdout.take().expect("stdout");
    let (found_tx, found_rx) = mpsc::channel();
    let (lines_tx, lines) = mpsc::channel();
    let wanted = marker.to_owned();
    std::thread::spawn(move || {
        let mut found = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !found && line.contains(&wanted) && line.contains("http://") {
                found = true;
                let _ = found_tx.send(line);
            } else {
                let _ = lines_tx.send(line);
            }
        }
    });
    let line = found_rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no {marker:?} line from kgate {args:?}"));
    (
        Running {
            child,
            stdin,
            lines,
        },
        line,
    )
}

/// The first `http://...` URL in `line`.
pub fn url_in(line: &str) -> String {
    let i = line.find("http://").expect("a URL in the line");
    line[i..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ')')
        .collect()
}

/// The word after `key` in `line` (`--class-token TOKEN` → `TOKEN`).
pub fn word_after(line: &str, key: &str) -> Option<String> {
    line.split(key)
        .nth(1)?
        .split_whitespace()
        .next()
        .map(|w| w.trim_end_matches(')').to_owned())
}

/// One HTTP/1.1 request to `addr` (`HOST:PORT`); returns the status and the body.
pub fn http(addr: &str, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send head");
    s.write_all(body.as_bytes()).expect("send body");
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
