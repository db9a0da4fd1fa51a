//! `kgate users` driven as a user would: the built binary, a scratch directory, passwords on
//! standard input or in a file, and the exact one-line errors a user sees.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const KGATE: &str = env!("CARGO_BIN_EXE_kgate");

const PASSWORD: &str = "correct horse battery staple";

/// A fresh directory under cargo's per-target scratch space, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("users_cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `kgate users ARGS...` in `cwd` with `stdin` piped in.
fn users(cwd: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(KGATE)
        .current_dir(cwd)
        .env_remove("KGATE_USERS")
        .arg("users")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child may exit before reading (e.g. on a usage error); a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// Asserts exit code 2 and a single `kgate: ...` line on stderr containing every `needle`.
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("kgate: "), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}

#[test]
fn add_list_remove_round_trip() {
    let cwd = scratch("round-trip");
    let out = users(
        &cwd,
        &["add", "alice", "--password-stdin", "--users", "users.toml"],
        &format!("{PASSWORD}\n"),
    );
    assert_ok(&out);
    assert!(
        stdout(&out).contains("SCRAM-SHA-256, SCRAM-SHA-512"),
        "{}",
        stdout(&out)
    );

    let out = users(
        &cwd,
        &[
            "add",
            "bob",
            "--mechanism",
            "SCRAM-SHA-512",
            "--iterations",
            "8192",
            "--password-stdin",
            "--users",
            "users.toml",
        ],
        "bob-secret",
    );
    assert_ok(&out);

    let out = users(&cwd, &["list", "--users", "users.toml"], "");
    assert_ok(&out);
    let listing = stdout(&out);
    assert!(
        listing.contains("alice  SCRAM-SHA-256 (4096 iterations), SCRAM-SHA-512 (4096 iterations)"),
        "{listing}"
    );
    assert!(
        listing.contains("bob    SCRAM-SHA-512 (8192 iterations)"),
        "{listing}"
    );

    // The file the gateway reads checks the password, with either mechanism.
    let store = kgate_auth::CredentialStore::load(&cwd.join("users.toml")).unwrap();
    assert_eq!(
        kgate_auth::plain::authenticate(&store, format!("\0alice\0{PASSWORD}").as_bytes()).unwrap(),
        "alice"
    );
    for mechanism in kgate_auth::Mechanism::ALL {
        assert!(store
            .credential("alice", mechanism)
            .unwrap()
            .verify_password(mechanism, PASSWORD.as_bytes()));
    }

    let out = users(
        &cwd,
        &[
            "remove",
            "alice",
            "--mechanism",
            "SCRAM-SHA-256",
            "--users",
            "users.toml",
        ],
        "",
    );
    assert_ok(&out);
    let out = users(&cwd, &["remove", "bob", "--users", "users.toml"], "");
    assert_ok(&out);
    let out = users(&cwd, &["list", "--users", "users.toml"], "");
    assert_ok(&out);
    let listing = stdout(&out);
    assert!(
        listing.contains("alice  SCRAM-SHA-512 (4096 iterations)"),
        "{listing}"
    );
    assert!(!listing.contains("bob"), "{listing}");
    assert!(!listing.contains("SCRAM-SHA-256"), "{listing}");
}

#[test]
fn file_is_private_and_holds_no_password() {
    let cwd = scratch("private");
    std::fs::write(cwd.join("pw.txt"), format!("{PASSWORD}\n")).unwrap();
    let out = users(
        &cwd,
        &[
            "add",
            "carol",
            "--password-file",
            "pw.txt",
            "--users",
            "users.toml",
        ],
        "",
    );
    assert_ok(&out);
    let text = std::fs::read_to_string(cwd.join("users.toml")).unwrap();
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!text.contains("battery"), "{text}");
    assert!(text.contains("stored_key"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(cwd.join("users.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    // No temporary file is left behind. The empty lock file stays: removing it would let a
    // writer that already opened it and one that creates a new one both hold "the" lock.
    let mut names: Vec<String> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["pw.txt", "users.toml", "users.toml.lock"]);
    assert_eq!(std::fs::read(cwd.join("users.toml.lock")).unwrap(), b"");
}

#[test]
fn add_refuses_to_overwrite_without_replace() {
    let cwd = scratch("replace");
    let args = ["add", "dave", "--password-stdin", "--users", "users.toml"];
    assert_ok(&users(&cwd, &args, "first"));
    let before = std::fs::read_to_string(cwd.join("users.toml")).unwrap();
    let out = users(&cwd, &args, "second");
    assert_one_line_error(&out, &["dave", "users.toml", "--replace"]);
    assert_eq!(
        std::fs::read_to_string(cwd.join("users.toml")).unwrap(),
        before
    );

    let mut replace = args.to_vec();
    replace.push("--replace");
    assert_ok(&users(&cwd, &replace, "second"));
    let store = kgate_auth::CredentialStore::load(&cwd.join("users.toml")).unwrap();
    assert_eq!(store.verify_password("dave", b"second"), Some(true));
}

#[test]
fn errors_are_one_line_naming_the_file_and_the_fix() {
    let cwd = scratch("errors");

    // Missing users file on list and remove.
    let out = users(&cwd, &["list", "--users", "nope.toml"], "");
    assert_one_line_error(&out, &["nope.toml", "does not exist", "kgate users add"]);
    let out = users(&cwd, &["remove", "alice", "--users", "nope.toml"], "");
    assert_one_line_error(&out, &["nope.toml", "does not exist", "kgate users add"]);

    // Empty password on stdin: nothing is written.
    let out = users(
        &cwd,
        &["add", "alice", "--password-stdin", "--users", "users.toml"],
        "",
    );
    assert_one_line_error(
        &out,
        &["empty password on standard input", "--password-stdin"],
    );
    let out = users(
        &cwd,
        &["add", "alice", "--password-stdin", "--users", "users.toml"],
        "\n",
    );
    assert_one_line_error(&out, &["empty password"]);
    assert!(!cwd.join("users.toml").exists());

    // Wrong password file path.
    let out = users(
        &cwd,
        &[
            "add",
            "alice",
            "--password-file",
            "missing.pw",
            "--users",
            "users.toml",
        ],
        "",
    );
    assert_one_line_error(&out, &["missing.pw", "--password-file"]);

    // Unknown user.
    assert_ok(&users(
        &cwd,
        &["add", "alice", "--password-stdin", "--users", "users.toml"],
        "pw",
    ));
    let out = users(&cwd, &["remove", "carol", "--users", "users.toml"], "");
    assert_one_line_error(&out, &["carol", "users.toml", "kgate users list"]);

    // A damaged file: file, line and fix.
    std::fs::write(cwd.join("bad.toml"), "# users\n[users.alice\n").unwrap();
    let out = users(&cwd, &["list", "--users", "bad.toml"], "");
    assert_one_line_error(&out, &["bad.toml:2:", "kgate users add"]);
}

#[test]
fn password_is_never_an_argument() {
    let cwd = scratch("no-arg");
    let out = users(
        &cwd,
        &[
            "add",
            "alice",
            "--password",
            "secret",
            "--users",
            "users.toml",
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(!cwd.join("users.toml").exists());
    // And one password source is required.
    let out = users(&cwd, &["add", "alice", "--users", "users.toml"], "");
    assert!(!out.status.success());
}

#[test]
fn help_shows_an_example() {
    let out = users(Path::new("."), &["add", "--help"], "");
    assert_ok(&out);
    let help = stdout(&out);
    assert!(help.contains("Examples:"), "{help}");
    assert!(help.contains("--password-stdin"), "{help}");
    assert!(!help.contains("--password <"), "{help}");
}

#[test]
fn concurrent_adds_from_many_processes_lose_no_user() {
    let dir = scratch("concurrent");
    let children: Vec<_> = (0..12)
        .map(|i| {
            let mut child = Command::new(KGATE)
                .current_dir(&dir)
                .env_remove("KGATE_USERS")
                .args(["users", "add", &format!("user{i}"), "--password-stdin"])
                .args(["--users", "users.toml", "--iterations", "4096"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let _ = child.stdin.take().unwrap().write_all(PASSWORD.as_bytes());
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = stdout(&users(&dir, &["list", "--users", "users.toml"], ""));
    for i in 0..12 {
        assert!(
            listed.lines().any(|l| l.starts_with(&format!("user{i} "))),
            "user{i} lost:\n{listed}"
        );
    }
}
