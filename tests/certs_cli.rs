//! `kgate certs` driven as a user would: the built binary, a scratch directory, and the exact
//! one-line errors a user sees.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KGATE: &str = env!("CARGO_BIN_EXE_kgate");

/// A fresh directory under cargo's per-target scratch space, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("certs_cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `kgate certs ARGS...` in `cwd`.
fn certs(cwd: &Path, args: &[&str]) -> Output {
    Command::new(KGATE)
        .current_dir(cwd)
        .arg("certs")
        .args(args)
        .output()
        .unwrap()
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

#[test]
fn missing_ca_is_one_line_naming_the_file_and_the_fix() {
    let cwd = scratch("missing-ca");
    for args in [
        &["client", "--dir", "pki", "--name", "alice"][..],
        &["server", "--dir", "pki", "--dns", "localhost"][..],
    ] {
        let out = certs(&cwd, args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(
            stderr(&out),
            "kgate: pki/ca.pem not found: run `kgate certs init --dir pki` first\n"
        );
        assert!(stdout(&out).is_empty());
    }
    assert!(!cwd.join("pki").join("alice-key.pem").exists());
}

#[test]
fn init_server_client_write_the_files() {
    let cwd = scratch("full");
    let out = certs(&cwd, &["init", "--dir", "certs"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("certs/ca.pem"), "{}", stdout(&out));

    let out = certs(
        &cwd,
        &[
            "server",
            "--dir",
            "certs",
            "--dns",
            "localhost",
            "--ip",
            "127.0.0.1",
        ],
    );
    assert_ok(&out);
    assert!(
        stdout(&out).contains("CN=localhost,O=kgate"),
        "{}",
        stdout(&out)
    );

    let out = certs(
        &cwd,
        &[
            "client", "--dir", "certs", "--name", "alice", "--days", "30",
        ],
    );
    assert_ok(&out);
    assert!(stdout(&out).contains("User:CN=alice"), "{}", stdout(&out));

    let dir = cwd.join("certs");
    for file in [
        "ca.pem",
        "ca-key.pem",
        "server.pem",
        "server-key.pem",
        "alice.pem",
        "alice-key.pem",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(text.starts_with("-----BEGIN "), "{file}");
    }
    // The server file carries the chain: leaf then CA.
    let server = std::fs::read_to_string(dir.join("server.pem")).unwrap();
    assert_eq!(server.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca-key.pem", "server-key.pem", "alice-key.pem"] {
            let mode = std::fs::metadata(dir.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
}

#[test]
fn refuses_to_overwrite_without_force() {
    let cwd = scratch("force");
    assert_ok(&certs(&cwd, &["init", "--dir", "certs"]));
    let key = std::fs::read(cwd.join("certs/ca-key.pem")).unwrap();

    let out = certs(&cwd, &["init", "--dir", "certs"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "kgate: certs/ca.pem already exists: pass --force to overwrite it\n"
    );
    assert_eq!(std::fs::read(cwd.join("certs/ca-key.pem")).unwrap(), key);

    assert_ok(&certs(&cwd, &["init", "--dir", "certs", "--force"]));
    assert_ne!(std::fs::read(cwd.join("certs/ca-key.pem")).unwrap(), key);
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let cwd = scratch("bad-input");
    assert_ok(&certs(&cwd, &["init", "--dir", "certs"]));

    let out = certs(&cwd, &["client", "--dir", "certs", "--name", "../evil"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("kgate: invalid client name \"../evil\""),
        "{}",
        stderr(&out)
    );

    let out = certs(&cwd, &["server", "--dir", "certs", "--ip", "not-an-ip"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--ip"), "{}", stderr(&out));

    let out = certs(
        &cwd,
        &["client", "--dir", "certs", "--name", "bob", "--days", "0"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), "kgate: --days must be at least 1\n");
}

#[test]
fn every_subcommand_help_shows_an_example() {
    let cwd = scratch("help");
    for sub in ["init", "server", "client"] {
        let out = certs(&cwd, &[sub, "--help"]);
        assert_ok(&out);
        assert!(
            stdout(&out).contains(&format!("Example:\n  kgate certs {sub} --dir certs")),
            "{sub}: {}",
            stdout(&out)
        );
    }
}
