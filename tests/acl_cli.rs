//! `kgate acl` and `kgate role` end to end: the built binary on a policy file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(args)
        .env_remove("KGATE_POLICY")
        .output()
        .expect("run kgate")
}

/// Runs kgate with `--policy <file>` appended and expects success; returns stdout.
fn ok(policy: &Path, args: &[&str]) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--policy", policy.to_str().unwrap()]);
    let out = kgate(&all);
    assert!(
        out.status.success(),
        "kgate {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs kgate with `--policy <file>` appended and expects a one-line error; returns it.
fn fails(policy: &Path, args: &[&str]) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--policy", policy.to_str().unwrap()]);
    let out = kgate(&all);
    assert!(!out.status.success(), "kgate {all:?} succeeded");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one-line error expected: {err}");
    assert!(err.starts_with("kgate: "), "{err}");
    err
}

/// A fresh directory per test under Cargo's test scratch space, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_policy() -> (TempDir, PathBuf) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "acl_cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.toml");
    (TempDir(dir), path)
}

#[test]
fn add_list_check_remove() {
    let (_dir, p) = temp_policy();
    let out = ok(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "orders",
        ],
    );
    assert_eq!(
        out.trim(),
        "added:   User:alice ALLOW Read on Topic LITERAL \"orders\" from host *"
    );
    ok(
        &p,
        &[
            "acl",
            "add",
            "--deny-principal",
            "User:bob",
            "--operation",
            "Write",
            "--topic",
            "payments-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    ok(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:*",
            "--operation",
            "All",
            "--topic",
            "payments-",
            "--resource-pattern-type",
            "prefixed",
            "--allow-host",
            "10.0.0.5",
        ],
    );

    let list = ok(&p, &["acl", "list"]);
    assert!(
        list.contains("Topic LITERAL \"orders\":\n  User:alice ALLOW Read from host *"),
        "{list}"
    );
    assert!(list.contains("User:bob DENY Write from host *"), "{list}");
    let matching = ok(
        &p,
        &[
            "acl",
            "list",
            "--topic",
            "payments-eu",
            "--resource-pattern-type",
            "match",
        ],
    );
    assert!(
        matching.contains("Topic PREFIXED \"payments-\""),
        "{matching}"
    );
    assert!(!matching.contains("orders"), "{matching}");

    let check = |args: &[&str]| ok(&p, args).trim().to_owned();
    assert_eq!(
        check(&["acl", "check", "User:alice", "Read", "topic:orders"]),
        "ALLOW  acl: User:alice ALLOW Read on Topic LITERAL \"orders\" from host *"
    );
    assert_eq!(
        check(&["acl", "check", "User:alice", "Describe", "topic:orders"])
            .split_whitespace()
            .next(),
        Some("ALLOW")
    );
    assert_eq!(
        check(&["acl", "check", "User:alice", "Write", "topic:orders"]),
        "DENY  no rule matched: default deny"
    );
    assert_eq!(
        check(&[
            "acl",
            "check",
            "User:bob",
            "Write",
            "topic:payments-eu",
            "--host",
            "10.0.0.5"
        ]),
        "DENY  acl: User:bob DENY Write on Topic PREFIXED \"payments-\" from host *"
    );
    assert!(check(&[
        "acl",
        "check",
        "User:carol",
        "Write",
        "topic:payments-eu",
        "--host",
        "10.0.0.5"
    ])
    .starts_with("ALLOW"));
    assert!(check(&[
        "acl",
        "check",
        "User:carol",
        "Write",
        "topic:payments-eu",
        "--host",
        "10.0.0.6"
    ])
    .starts_with("DENY"));
    assert!(
        check(&["acl", "check", "User:carol", "Write", "topic:payments-eu"]).starts_with("DENY")
    );
    assert!(check(&[
        "acl",
        "check",
        "User:carol",
        "Write",
        "topic:payments-eu",
        "--super-user",
        "User:carol"
    ])
    .starts_with("ALLOW  super user"));

    let removed = ok(
        &p,
        &[
            "acl",
            "remove",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "orders",
        ],
    );
    assert!(
        removed.starts_with("removed: User:alice ALLOW Read"),
        "{removed}"
    );
    assert!(check(&["acl", "check", "User:alice", "Read", "topic:orders"]).starts_with("DENY"));
    // Remove everything on a prefixed resource.
    let removed = ok(
        &p,
        &[
            "acl",
            "remove",
            "--topic",
            "payments-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    assert_eq!(removed.lines().count(), 2, "{removed}");
    assert_eq!(ok(&p, &["acl", "list"]).trim(), "no ACL matches");
}

#[test]
fn producer_and_consumer_conveniences() {
    let (_dir, p) = temp_policy();
    let out = ok(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:app",
            "--producer",
            "--topic",
            "events",
            "--transactional-id",
            "tx",
            "--idempotent",
        ],
    );
    assert_eq!(out.lines().count(), 6, "{out}");
    let out = ok(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:app",
            "--consumer",
            "--topic",
            "events",
            "--group",
            "app",
        ],
    );
    assert!(
        out.contains("exists:  User:app ALLOW Describe on Topic"),
        "{out}"
    );
    for (op, res) in [
        ("Write", "topic:events"),
        ("Create", "topic:events"),
        ("Read", "topic:events"),
        ("Read", "group:app"),
        ("Write", "transactional-id:tx"),
        ("IdempotentWrite", "cluster"),
    ] {
        assert!(
            ok(&p, &["acl", "check", "User:app", op, res]).starts_with("ALLOW"),
            "{op} {res}"
        );
    }
    let err = fails(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:app",
            "--consumer",
            "--topic",
            "events",
        ],
    );
    assert!(err.contains("--consumer needs --group"), "{err}");
    let err = fails(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:app",
            "--producer",
            "--operation",
            "Read",
            "--topic",
            "events",
        ],
    );
    assert!(
        err.contains("--operation cannot be combined with --producer"),
        "{err}"
    );
}

#[test]
fn bad_input_changes_nothing() {
    let (_dir, p) = temp_policy();
    ok(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "orders",
        ],
    );
    let before = std::fs::read(&p).unwrap();

    let err = fails(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Reed",
            "--topic",
            "orders",
        ],
    );
    assert!(
        err.contains("unknown operation `Reed`: expected one of All, Read"),
        "{err}"
    );
    let err = fails(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "alice",
            "--operation",
            "Read",
            "--topic",
            "orders",
        ],
    );
    assert!(
        err.contains("malformed principal `alice`: write Type:name, e.g. User:alice"),
        "{err}"
    );
    let err = fails(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "user:alice",
            "--topic",
            "orders",
        ],
    );
    assert!(
        err.contains("principal types are case-sensitive, write User:alice"),
        "{err}"
    );
    let err = fails(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "x",
            "--allow-host",
            "web1",
        ],
    );
    assert!(err.contains("bad host `web1`"), "{err}");
    let err = fails(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--cluster",
        ],
    );
    assert!(err.contains("Cluster resources only support"), "{err}");
    let err = fails(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--topic",
            "x",
            "--resource-pattern-type",
            "match",
        ],
    );
    assert!(err.contains("--resource-pattern-type"), "{err}");
    let err = fails(&p, &["acl", "add", "--operation", "Read", "--topic", "x"]);
    assert!(err.contains("no principal"), "{err}");
    let err = fails(&p, &["acl", "check", "User:alice", "Read", "topix:orders"]);
    assert!(err.contains("bad resource `topix:orders`"), "{err}");
    let err = fails(
        &p,
        &[
            "role",
            "bind",
            "--principal",
            "User:a",
            "--role",
            "Reader",
            "--topic",
            "t",
        ],
    );
    assert!(err.contains("unknown role `Reader`"), "{err}");
    let err = fails(
        &p,
        &[
            "role",
            "bind",
            "--principal",
            "User:a",
            "--role",
            "SecurityAdmin",
            "--topic",
            "t",
        ],
    );
    assert!(err.contains("grants nothing on Topic"), "{err}");
    assert_eq!(
        std::fs::read(&p).unwrap(),
        before,
        "the policy file changed"
    );

    // A bad file: refused with file, line and reason; left as it was.
    let mut broken = before.clone();
    broken.extend_from_slice(b"\n[[acl]]\nprincipal = \"alice\"\npermission = \"Allow\"\noperation = \"Read\"\nresource_type = \"Topic\"\nname = \"t\"\n");
    std::fs::write(&p, &broken).unwrap();
    let err = fails(
        &p,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Read",
            "--topic",
            "t",
        ],
    );
    assert!(err.contains("policy.toml:"), "{err}");
    assert!(err.contains("malformed principal `alice`"), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), broken);

    let missing = p.with_file_name("missing.toml");
    let err = fails(&missing, &["acl", "list"]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn roles_and_groups() {
    let (_dir, p) = temp_policy();
    ok(&p, &["role", "add-member", "Group:marketing", "User:alice"]);
    ok(&p, &["role", "add-member", "engineering", "User:bob"]);
    ok(&p, &["role", "add-member", "Group:admins", "User:root"]);
    ok(
        &p,
        &[
            "role",
            "bind",
            "--principal",
            "Group:marketing",
            "--role",
            "DeveloperRead",
            "--topic",
            "customer_feedback",
        ],
    );
    ok(
        &p,
        &[
            "role",
            "bind",
            "--principal",
            "Group:engineering",
            "--role",
            "DeveloperWrite",
            "--topic",
            "system_logs",
        ],
    );
    let out = ok(
        &p,
        &[
            "role",
            "bind",
            "--principal",
            "Group:admins",
            "--role",
            "SystemAdmin",
        ],
    );
    assert_eq!(
        out.trim(),
        "bound:   Group:admins SystemAdmin on the whole cluster"
    );

    let check = |args: &[&str]| ok(&p, args).trim().to_owned();
    assert_eq!(
        check(&[
            "acl",
            "check",
            "User:alice",
            "Read",
            "topic:customer_feedback"
        ]),
        "ALLOW  role binding: Group:marketing DeveloperRead on Topic LITERAL \"customer_feedback\""
    );
    assert!(check(&[
        "acl",
        "check",
        "User:alice",
        "Write",
        "topic:customer_feedback"
    ])
    .starts_with("DENY"));
    assert!(
        check(&["acl", "check", "User:bob", "Write", "topic:system_logs"]).starts_with("ALLOW")
    );
    assert!(check(&["acl", "check", "User:bob", "Read", "topic:system_logs"]).starts_with("DENY"));
    assert!(check(&["acl", "check", "User:root", "Alter", "cluster"]).starts_with("ALLOW"));
    assert!(check(&[
        "acl",
        "check",
        "User:mallory",
        "Write",
        "topic:system_logs",
        "--member-of",
        "engineering"
    ])
    .starts_with("ALLOW"));

    let list = ok(&p, &["role", "list", "--principal", "Group:marketing"]);
    assert!(
        list.contains("Group:marketing DeveloperRead on Topic LITERAL \"customer_feedback\""),
        "{list}"
    );
    assert!(
        list.contains("Group:marketing members: User:alice"),
        "{list}"
    );
    assert!(!list.contains("SystemAdmin"), "{list}");

    let show = kgate(&["role", "show", "DeveloperRead"]);
    let show = String::from_utf8(show.stdout).unwrap();
    assert!(show.starts_with("DeveloperRead: "), "{show}");
    assert!(show.contains("  Topic: Read, Describe"), "{show}");
    let all = String::from_utf8(kgate(&["role", "show"]).stdout).unwrap();
    assert_eq!(
        all.lines().filter(|l| !l.starts_with(' ')).count(),
        10,
        "{all}"
    );

    let out = ok(
        &p,
        &[
            "role",
            "unbind",
            "--principal",
            "Group:marketing",
            "--role",
            "DeveloperRead",
            "--topic",
            "customer_feedback",
        ],
    );
    assert!(out.starts_with("unbound:"), "{out}");
    assert!(check(&[
        "acl",
        "check",
        "User:alice",
        "Read",
        "topic:customer_feedback"
    ])
    .starts_with("DENY"));
    ok(&p, &["role", "remove-member", "Group:admins", "User:root"]);
    assert!(check(&["acl", "check", "User:root", "Alter", "cluster"]).starts_with("DENY"));
}

#[test]
fn help_shows_examples() {
    for args in [
        &["acl", "--help"][..],
        &["acl", "add", "--help"],
        &["role", "--help"],
        &["role", "bind", "--help"],
    ] {
        let out = kgate(args);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Examples:"), "{args:?}: {text}");
        assert!(text.contains("--policy"), "{args:?}: {text}");
    }
}

#[test]
fn concurrent_acl_adds_from_many_processes_lose_none() {
    let (_dir, policy) = temp_policy();
    let children: Vec<_> = (0..12)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_kgate"))
                .args(["acl", "add", "--allow-principal", &format!("User:u{i}")])
                .args(["--operation", "Read", "--topic", &format!("t{i}")])
                .args(["--policy", policy.to_str().unwrap()])
                .env_remove("KGATE_POLICY")
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    let listed = ok(&policy, &["acl", "list"]);
    for i in 0..12 {
        assert!(
            listed.contains(&format!("User:u{i}")),
            "u{i} lost:\n{listed}"
        );
    }
}
