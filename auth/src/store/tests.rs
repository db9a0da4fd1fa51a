use std::path::Path;

use super::*;

fn sample() -> CredentialStore {
    let mut store = CredentialStore::new();
    store
        .add("alice", Mechanism::ScramSha256, b"alice-secret", 4096)
        .unwrap();
    store
        .add("alice", Mechanism::ScramSha512, b"alice-secret", 8192)
        .unwrap();
    store
        .add("bob", Mechanism::ScramSha512, b"bob-secret", 4096)
        .unwrap();
    store
}

fn parse_error(text: &str) -> (usize, usize, String) {
    match CredentialStore::from_toml(text, Path::new("users.toml")) {
        Err(e @ StoreError::Parse { line, column, .. }) => (line, column, e.to_string()),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn file_round_trips_and_holds_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let store = sample();
    store.save(&path).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("alice-secret") && !text.contains("bob-secret"));
    assert!(text.contains("[users.alice.SCRAM-SHA-512]"), "{text}");
    assert_eq!(CredentialStore::load(&path).unwrap(), store);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn save_tightens_permissions_of_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    fs::write(&path, "").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        sample().save(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn usernames_needing_quotes_survive_the_file() {
    let mut store = CredentialStore::new();
    for name in ["we,ird=name", "with space", "Ünïcødé", "a.b", "\"quoted\""] {
        store
            .add(name, Mechanism::ScramSha256, b"pw", 4096)
            .unwrap();
    }
    let text = store.to_toml();
    assert_eq!(
        CredentialStore::from_toml(&text, Path::new("u.toml")).unwrap(),
        store
    );
}

#[test]
fn empty_file_is_an_empty_store() {
    assert!(CredentialStore::from_toml("", Path::new("u.toml"))
        .unwrap()
        .is_empty());
    assert!(CredentialStore::from_toml("[users]\n", Path::new("u.toml"))
        .unwrap()
        .is_empty());
}

#[test]
fn missing_file_is_a_read_error_naming_it() {
    let err = CredentialStore::load(Path::new("/nonexistent/users.toml")).unwrap_err();
    assert!(matches!(err, StoreError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/users.toml"));
    assert!(
        CredentialStore::load_or_empty(Path::new("/nonexistent/users.toml"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bad_files_name_line_and_fix() {
    let good = sample().to_toml();
    let entry_line = good
        .lines()
        .position(|l| l.starts_with("[users.alice.SCRAM-SHA-256]"))
        .unwrap()
        + 1;

    let (line, _, msg) = parse_error("[users.alice.SCRAM-SHA-256\nsalt = 1\n");
    assert_eq!(line, 1);
    assert!(msg.starts_with("users.toml:1:"), "{msg}");
    assert!(msg.contains("kgate users add"), "{msg}");

    let text = good.replacen("SCRAM-SHA-256]", "SCRAM-SHA-1]", 1);
    let (line, _, msg) = parse_error(&text);
    assert_eq!(line, entry_line, "{msg}");
    assert!(msg.contains("unknown mechanism \"SCRAM-SHA-1\""), "{msg}");
    assert!(msg.contains("use SCRAM-SHA-256 or SCRAM-SHA-512"), "{msg}");

    let text = good.replacen("iterations = 4096", "iterations = 1000", 1);
    let (line, column, msg) = parse_error(&text);
    assert_eq!((line, column), (entry_line + 1, 14), "{msg}");
    assert!(msg.contains("iterations 1000 out of range"), "{msg}");

    let text = good.replacen("salt = \"", "salt = \"!", 1);
    let (line, _, msg) = parse_error(&text);
    assert_eq!(line, entry_line + 2, "{msg}");
    assert!(
        msg.contains("salt of alice/SCRAM-SHA-256 is not valid Base64"),
        "{msg}"
    );
    assert!(
        msg.contains("kgate users add alice --mechanism SCRAM-SHA-256"),
        "{msg}"
    );

    let text = good.replacen("salt = ", "password = \"x\"\nsalt = ", 1);
    let (line, _, msg) = parse_error(&text);
    assert_eq!(line, entry_line + 2, "{msg}");
    assert!(msg.contains("password"), "{msg}");

    let (line, _, msg) = parse_error("[users.\"\"]\n");
    assert_eq!(line, 1);
    assert!(msg.contains("invalid username"), "{msg}");

    let (line, _, msg) = parse_error("\n[users.carol]\n");
    assert_eq!(line, 2);
    assert!(msg.contains("has no credential"), "{msg}");

    // A stored key of the wrong length (SHA-512 key under SHA-256).
    let s512 = sample().export("bob", Mechanism::ScramSha512).unwrap();
    let key512 = s512
        .split(',')
        .find_map(|f| f.strip_prefix("stored_key="))
        .unwrap();
    let text = format!(
        "[users.x.SCRAM-SHA-256]\niterations = 4096\nsalt = \"YQ==\"\n\
         server_key = \"{key512}\"\nstored_key = \"{key512}\"\n"
    );
    let (line, _, msg) = parse_error(&text);
    assert_eq!(line, 5, "{msg}");
    assert!(msg.contains("needs 32"), "{msg}");
}

#[test]
fn add_refuses_existing_and_set_replaces() {
    let mut store = sample();
    let before = store.credential("alice", Mechanism::ScramSha256).cloned();
    assert!(matches!(
        store.add("alice", Mechanism::ScramSha256, b"new", 4096),
        Err(StoreError::AlreadyExists { .. })
    ));
    store
        .set("alice", Mechanism::ScramSha256, b"new", 4096)
        .unwrap();
    assert_ne!(
        store.credential("alice", Mechanism::ScramSha256).cloned(),
        before
    );
    assert_eq!(store.verify_password("alice", b"new"), Some(true));
}

#[test]
fn add_validates_name_and_iterations() {
    let mut store = CredentialStore::new();
    assert!(matches!(
        store.add("", Mechanism::ScramSha256, b"pw", 4096),
        Err(StoreError::Credential(CredentialError::EmptyUsername))
    ));
    assert!(matches!(
        store.add("a\nb", Mechanism::ScramSha256, b"pw", 4096),
        Err(StoreError::Credential(CredentialError::UnprintableUsername))
    ));
    assert!(matches!(
        store.add("a", Mechanism::ScramSha256, b"pw", 100),
        Err(StoreError::Credential(CredentialError::TooFewIterations))
    ));
    assert!(matches!(
        store.add("a", Mechanism::ScramSha256, b"pw", 20000),
        Err(StoreError::Credential(CredentialError::TooManyIterations))
    ));
}

#[test]
fn salts_are_kafka_style_and_differ() {
    let store = sample();
    let a = store.credential("alice", Mechanism::ScramSha256).unwrap();
    let b = store.credential("alice", Mechanism::ScramSha512).unwrap();
    assert_ne!(a.salt(), b.salt());
    assert!(a
        .salt()
        .iter()
        .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
}

#[test]
fn remove_and_delete() {
    let mut store = sample();
    assert!(matches!(
        store.remove("carol"),
        Err(StoreError::UnknownUser(_))
    ));
    store.remove("bob").unwrap();
    assert!(store.user("bob").is_none());

    assert_eq!(store.delete("alice", Mechanism::ScramSha512), Ok(()));
    let err = store.delete("alice", Mechanism::ScramSha512).unwrap_err();
    assert_eq!(
        (err.clone(), err.kafka_error_code()),
        (CredentialError::NotFound, 91)
    );
    store.delete("alice", Mechanism::ScramSha256).unwrap();
    assert!(store.is_empty(), "the user goes with its last credential");
    assert_eq!(
        store.delete("", Mechanism::ScramSha256),
        Err(CredentialError::EmptyUsername)
    );
}

#[test]
fn list_shows_mechanisms_and_iterations_only() {
    let list = sample().list();
    assert_eq!(
        list,
        vec![
            UserSummary {
                name: "alice".into(),
                mechanisms: vec![
                    (Mechanism::ScramSha256, 4096),
                    (Mechanism::ScramSha512, 8192)
                ],
            },
            UserSummary {
                name: "bob".into(),
                mechanisms: vec![(Mechanism::ScramSha512, 4096)],
            },
        ]
    );
}

#[test]
fn upsert_salted_password_matches_a_password_credential() {
    let m = Mechanism::ScramSha256;
    let salted = crypto::salted_password(m, b"pw", b"salt", 4096);
    let mut store = CredentialStore::new();
    store
        .upsert_salted_password("carol", m, 4096, b"salt", &salted)
        .unwrap();
    let expected =
        ScramCredential::from_password_and_salt(m, b"pw", b"salt".to_vec(), 4096).unwrap();
    assert_eq!(store.credential("carol", m), Some(&expected));

    for (name, iterations, salted_password, error, message) in [
        (
            "carol",
            4095,
            &salted[..],
            CredentialError::TooFewIterations,
            "Too few iterations",
        ),
        (
            "carol",
            -1,
            &salted[..],
            CredentialError::TooFewIterations,
            "Too few iterations",
        ),
        (
            "carol",
            16385,
            &salted[..],
            CredentialError::TooManyIterations,
            "Too many iterations",
        ),
        (
            "",
            4096,
            &salted[..],
            CredentialError::EmptyUsername,
            "Username must not be empty",
        ),
    ] {
        let err = store
            .upsert_salted_password(name, m, iterations, b"salt", salted_password)
            .unwrap_err();
        assert_eq!(err, error);
        assert_eq!(err.to_string(), message);
        assert_eq!(err.kafka_error_code(), 93);
    }
    let err = store
        .upsert_salted_password("carol", m, 4096, b"salt", b"short")
        .unwrap_err();
    assert!(matches!(err, CredentialError::Unacceptable(_)));
    assert_eq!(err.kafka_error_code(), 93);
}

fn upsertion(name: &str, mechanism: i8, iterations: i32) -> Upsertion {
    let m = Mechanism::from_kafka_type(mechanism).unwrap_or(Mechanism::ScramSha256);
    Upsertion {
        name: name.into(),
        mechanism,
        iterations,
        salt: b"salt".to_vec(),
        salted_password: crypto::salted_password(m, b"pw", b"salt", 4096),
    }
}

#[test]
fn alter_applies_per_user_with_kafka_errors() {
    let mut store = sample();
    let deletions = [
        Deletion {
            name: "bob".into(),
            mechanism: 2,
        },
        Deletion {
            name: "nobody".into(),
            mechanism: 1,
        },
    ];
    let upsertions = [
        upsertion("carol", 1, 4096),
        upsertion("carol", 2, 4096),
        upsertion("dave", 1, 4096),
        upsertion("dave", 1, 4096),
        upsertion("erin", 3, 4096),
        upsertion("alice", 1, 4096),
        upsertion("alice", 2, 100),
    ];
    let results = store.alter(&deletions, &upsertions);
    let codes: Vec<(&str, i16)> = results
        .iter()
        .map(|(n, r)| {
            (
                n.as_str(),
                r.as_ref().map_or_else(|e| e.kafka_error_code(), |_| 0),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("bob", 0),
            ("nobody", 91),
            ("carol", 0),
            ("dave", 92),
            ("erin", 33),
            ("alice", 93),
        ]
    );
    assert!(store.user("bob").is_none());
    assert_eq!(store.user("carol").unwrap().iter().count(), 2);
    assert!(store.user("dave").is_none());
    // alice's valid SHA-256 upsertion was not applied: all or nothing per user.
    assert_eq!(store.verify_password("alice", b"alice-secret"), Some(true));
}

#[test]
fn kafka_credential_strings_import_and_export() {
    // Built from the RFC 7677 vector: user/pencil.
    let kafka = "salt=W22ZaJ0SNY7soEsUEjb6gQ==,\
                 stored_key=WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,\
                 server_key=wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=,iterations=4096";
    let mut store = CredentialStore::new();
    store.import("user", Mechanism::ScramSha256, kafka).unwrap();
    assert_eq!(store.verify_password("user", b"pencil"), Some(true));
    assert_eq!(
        store.export("user", Mechanism::ScramSha256).as_deref(),
        Some(kafka)
    );
    assert!(store
        .import("user", Mechanism::ScramSha256, "salt=YQ==")
        .is_err());
    assert_eq!(store.export("user", Mechanism::ScramSha512), None);
}

#[test]
fn shared_reload_keeps_old_credentials_on_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    sample().save(&path).unwrap();
    let shared = SharedCredentials::load(&path).unwrap();
    let before = shared.snapshot();
    assert_eq!(before.len(), 2);

    fs::write(&path, "[users.alice\n").unwrap();
    let err = shared.reload().unwrap_err();
    assert!(err.to_string().contains("users.toml:1:"), "{err}");
    assert_eq!(shared.snapshot(), before);

    let mut changed = sample();
    changed.remove("bob").unwrap();
    changed.save(&path).unwrap();
    shared.reload().unwrap();
    assert_eq!(shared.snapshot().len(), 1);
    // A snapshot taken before the reload is unchanged.
    assert_eq!(before.len(), 2);
}

#[test]
fn shared_update_saves_then_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let shared = SharedCredentials::with_store(&path, CredentialStore::new());
    let salted = crypto::salted_password(Mechanism::ScramSha512, b"pw", b"salt", 4096);
    shared
        .update(|s| s.upsert_salted_password("zed", Mechanism::ScramSha512, 4096, b"salt", &salted))
        .unwrap()
        .unwrap();
    assert!(shared.snapshot().user("zed").is_some());
    assert!(CredentialStore::load(&path).unwrap().user("zed").is_some());

    // A write that fails changes nothing.
    let broken = SharedCredentials::with_store(
        dir.path().join("missing/users.toml"),
        CredentialStore::new(),
    );
    assert!(matches!(
        broken.update(|s| s.remove("x")),
        Err(StoreError::Write { .. })
    ));
    assert!(broken.snapshot().is_empty());
    let debug = format!("{shared:?}");
    assert!(debug.contains("users: 1"), "{debug}");
}

#[test]
fn debug_of_upsertion_is_redacted() {
    let text = format!("{:?}", upsertion("a", 1, 4096));
    assert!(text.contains("<redacted>"));
}

#[test]
fn shared_update_keeps_a_change_made_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    sample().save(&path).unwrap();
    let shared = SharedCredentials::load(&path).unwrap();
    // `kgate users add carol` in another process, before the gateway reloaded.
    {
        let _lock = CredentialLock::acquire(&path).unwrap();
        let mut store = CredentialStore::load(&path).unwrap();
        store
            .add("carol", Mechanism::ScramSha256, b"pw", 4096)
            .unwrap();
        store.save(&path).unwrap();
    }
    let salted = crypto::salted_password(Mechanism::ScramSha512, b"pw", b"salt", 4096);
    shared
        .update(|s| s.upsert_salted_password("zed", Mechanism::ScramSha512, 4096, b"salt", &salted))
        .unwrap()
        .unwrap();
    let on_disk = CredentialStore::load(&path).unwrap();
    for user in ["alice", "bob", "carol", "zed"] {
        assert!(on_disk.user(user).is_some(), "{user} kept");
        assert!(shared.snapshot().user(user).is_some(), "{user} in force");
    }
    // A file someone left broken is not overwritten.
    fs::write(&path, "[users.alice\n").unwrap();
    assert!(matches!(
        shared.update(|s| s.remove("bob")),
        Err(StoreError::Parse { .. })
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), "[users.alice\n");
}
