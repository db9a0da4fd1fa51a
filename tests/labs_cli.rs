//! `kgate lab` driven as an instructor and a student would: every shipped lab passes `--auto`,
//! single steps are checked in separate invocations, and broken lab files fail with the file,
//! step and field named.

mod common;

use std::path::Path;

use common::lab::{answer, kgate, kgate_in, text, typed, SMALL_LAB};

fn auto(lab: &str) {
    let state = tempfile::tempdir().expect("tempdir");
    let out = kgate(&["lab", "run", lab, "--auto"], state.path());
    assert!(out.status.success(), "{lab} --auto failed:\n{}", text(&out));
    assert!(text(&out).contains("steps passed"), "{}", text(&out));
}

#[test]
fn secure_the_cluster_passes_auto() {
    auto("secure-the-cluster");
}

#[test]
fn cloud_services_passes_auto() {
    auto("cloud-services");
}

#[test]
fn delivery_guarantees_passes_auto() {
    auto("delivery-guarantees");
}

#[test]
fn delayed_sensor_data_passes_auto() {
    auto("delayed-sensor-data");
}

#[test]
fn troubleshooting_catalogue_passes_auto() {
    auto("troubleshooting-catalogue");
}

#[test]
fn list_names_every_lab() {
    let state = tempfile::tempdir().expect("tempdir");
    let out = kgate(&["lab", "list"], state.path());
    assert!(out.status.success(), "{}", text(&out));
    for lab in [
        "secure-the-cluster",
        "cloud-services",
        "delivery-guarantees",
        "delayed-sensor-data",
        "troubleshooting-catalogue",
    ] {
        assert!(text(&out).contains(lab), "{lab} missing:\n{}", text(&out));
    }
}

#[test]
fn a_step_is_checked_in_a_separate_invocation_and_reset_clears_it() {
    let state = tempfile::tempdir().expect("tempdir");
    let file = state.path().join("small.toml");
    std::fs::write(&file, SMALL_LAB).expect("write lab");
    let file = file.display().to_string();
    let dir = state.path().join("work").display().to_string();
    // Not started yet.
    let out = kgate(
        &["lab", "check", &file, "--step", "1", "--dir", &dir],
        state.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("has not been started"),
        "{}",
        text(&out)
    );
    // Started but step 1 not done: the check fails and says so.
    std::fs::create_dir_all(&dir).expect("mkdir");
    let out = kgate(
        &["lab", "check", &file, "--step", "1", "--dir", &dir],
        state.path(),
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("certs/ca.pem is missing"),
        "{}",
        text(&out)
    );
    // The student's own command, then the check passes.
    let made = kgate_in(&["certs", "init", "--dir", "certs"], Path::new(&dir), b"");
    assert!(made.status.success(), "{}", text(&made));
    let out = kgate(
        &["lab", "check", &file, "--step", "1", "--dir", &dir],
        state.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = kgate(
        &["lab", "check", &file, "--step", "2", "--dir", &dir],
        state.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = kgate(&["lab", "reset", &file, "--dir", &dir], state.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(!Path::new(&dir).exists());
}

#[test]
fn a_wrong_check_fails_auto_naming_the_step_and_check() {
    let state = tempfile::tempdir().expect("tempdir");
    let broken = SMALL_LAB.replace(
        r#"kind = "consume", topic = "t", security = "plaintext", expect = "ok""#,
        r#"kind = "consume", topic = "t", security = "plaintext", expect = "denied""#,
    );
    let file = state.path().join("broken.toml");
    std::fs::write(&file, broken).expect("write lab");
    let out = kgate(
        &["lab", "run", &file.display().to_string(), "--auto"],
        state.path(),
    );
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("step 2 (\"Read the topic\"): check 1"),
        "the failure names the step and check:\n{err}"
    );
    assert!(err.contains("expected denied, but it worked"), "{err}");
}

#[test]
fn a_mistake_in_a_lab_file_names_file_line_step_and_field() {
    let state = tempfile::tempdir().expect("tempdir");
    let bad = SMALL_LAB.replace(r#"expect = "ok""#, r#"expect = "sometimes""#);
    let file = state.path().join("bad.toml");
    std::fs::write(&file, bad).expect("write lab");
    let name = file.display().to_string();
    let out = kgate(&["lab", "validate", &name], state.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{name}:17: step 2 (\"Read the topic\")")),
        "{err}"
    );
    assert!(err.contains("field `expect`"), "{err}");
    assert!(err.contains("sometimes"), "{err}");
    // The same file through `run` gives the same message.
    let out = kgate(&["lab", "run", &name, "--auto"], state.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("field `expect`"));
    // A reference the parser cannot see: an unknown topic.
    let bad = SMALL_LAB.replace(r#"topic = "t", security"#, r#"topic = "nope", security"#);
    std::fs::write(&file, bad).expect("write lab");
    let out = kgate(&["lab", "validate", &name], state.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("step 2 (\"Read the topic\"): field `check[0].topic`: \"nope\""),
        "{err}"
    );
}

#[test]
fn answers_are_recorded_and_graded_in_separate_invocations() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path().join("w").display().to_string();
    let lab = r#"
id = "quiz"
title = "Quiz"
summary = "one question"
[[step]]
title = "Ask"
text = "which?"
[[step.question]]
id = "q"
kind = "choice"
prompt = "Which acks setting waits for every in-sync replica?"
options = ["0", "1", "all"]
answer = "all"
"#;
    let file = state.path().join("quiz.toml");
    std::fs::write(&file, lab).expect("write");
    let file = file.display().to_string();
    std::fs::create_dir_all(&dir).expect("mkdir");
    let answer = |a: &str| answer(&file, "1", "q", &dir, a);
    answer("b");
    let out = kgate(
        &["lab", "check", &file, "--step", "1", "--dir", &dir],
        state.path(),
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("1 is not it"), "{}", text(&out));
    answer("c");
    let out = kgate(
        &["lab", "check", &file, "--step", "1", "--dir", &dir],
        state.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_guided_run_reads_commands_from_stdin() {
    let state = tempfile::tempdir().expect("tempdir");
    let file = state.path().join("small.toml");
    std::fs::write(&file, SMALL_LAB).expect("write lab");
    let dir = state.path().join("guided").display().to_string();
    let out = typed(
        &[
            "lab",
            "run",
            &file.display().to_string(),
            "--dir",
            &dir,
            "--listen",
            "127.0.0.1:0",
        ],
        b"check\nhint\nsolution\ndo\ncheck\nnext\ncheck\nstatus\nquit\n",
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("== Step 1/2: Make a CA =="), "{all}");
    assert!(
        all.contains("✘ certs/ca.pem exists"),
        "the first check fails:\n{all}"
    );
    assert!(all.contains("no more hints"), "{all}");
    assert!(all.contains("$ kgate certs init --dir certs"), "{all}");
    assert!(
        all.contains("✔ certs/ca.pem exists"),
        "the check passes after `do`:\n{all}"
    );
    assert!(all.contains("== Step 2/2: Read the topic =="), "{all}");
    assert!(all.contains("2 messages read"), "{all}");
    assert!(all.contains("steps done: 1, 2"), "{all}");
    // Progress is kept for the next invocation.
    let progress =
        std::fs::read_to_string(Path::new(&dir).join("progress.json")).expect("progress");
    assert!(progress.contains("\"step\": 1"), "{progress}");
}

#[test]
fn delayed_sensor_data_passes_auto_for_every_hidden_fault() {
    let mut seen = Vec::new();
    for seed in ["1", "2", "4", "5", "7"] {
        let state = tempfile::tempdir().expect("tempdir");
        let out = kgate(
            &[
                "lab",
                "run",
                "delayed-sensor-data",
                "--auto",
                "--seed",
                seed,
            ],
            state.path(),
        );
        assert!(out.status.success(), "seed {seed}:\n{}", text(&out));
        let all = text(&out);
        let variant = all
            .lines()
            .find_map(|l| l.strip_prefix("hidden fault of lab seed "))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_default()
            .to_owned();
        // Only the quota variant shows throttle time, reported by the brokers (the gateway).
        assert_eq!(
            all.contains("throttle_ms=250"),
            variant == "throttling",
            "seed {seed} ({variant}):\n{all}"
        );
        seen.push(variant);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "broker-outage",
            "consumer-lag",
            "network-latency",
            "slow-broker",
            "throttling"
        ],
        "seeds 1, 2, 4, 5 and 7 pick every hidden fault"
    );
}

#[test]
fn a_root_cause_analysis_is_graded_against_the_hidden_fault() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path().join("rca").display().to_string();
    // Seed 1 hides consumer lag (slow processing, one consumer); `quit` keeps the seed.
    let out = typed(
        &[
            "lab",
            "run",
            "delayed-sensor-data",
            "--seed",
            "1",
            "--dir",
            &dir,
            "--listen",
            "127.0.0.1:0",
        ],
        b"quit\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let answer_at = |step: &str, question: &str, body: &str| {
        answer("delayed-sensor-data", step, question, &dir, body)
    };
    let answer = |question: &str, body: &str| answer_at("3", question, body);
    // A plausible but wrong chain: it blames a slow broker.
    answer(
        "whys",
        "alerts are wrong because data is late\ndata is late because latency is high\n\
         latency is high on one partition\nits leader answers late\n\
         the leader answers late because broker 2 is a slow broker\n",
    );
    answer(
        "fishbone",
        "clients: slow processing in the consumer\nnetwork: congestion\ndisk: slow disk\n",
    );
    answer(
        "fault-tree",
        "alerts late = slow processing OR too few consumers",
    );
    let check = || {
        kgate(
            &[
                "lab",
                "check",
                "delayed-sensor-data",
                "--step",
                "3",
                "--dir",
                &dir,
            ],
            state.path(),
        )
    };
    let out = check();
    assert!(!out.status.success());
    let all = text(&out);
    // A cause the evidence does not support gets a hint about evidence, not the answer.
    assert!(all.contains("does not fit the evidence"), "{all}");
    assert!(!all.contains("slow processing with"), "{all}");
    assert!(
        all.contains("root cause under clients"),
        "fishbone is right:\n{all}"
    );
    assert!(all.contains("joined by AND, not OR"), "{all}");
    answer(
        "whys",
        "alerts are wrong because data is late\nthe consumer lag grows\n\
         the consumer reads slower than vehicles write\n\
         each record takes long and one consumer reads every partition\n\
         slow processing with one consumer for all partitions\n",
    );
    answer(
        "fault-tree",
        "alerts late = slow processing AND too few consumers",
    );
    let out = check();
    assert!(out.status.success(), "{}", text(&out));

    // The fix is graded against the hidden fault: restarting brokers does not fix a slow
    // consumer, adding consumers does.
    let check_fix = || {
        kgate(
            &[
                "lab",
                "check",
                "delayed-sensor-data",
                "--step",
                "4",
                "--dir",
                &dir,
            ],
            state.path(),
        )
    };
    answer_at("4", "fix", "restart all brokers and monitor them");
    let out = check_fix();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("✘ question fix"), "{}", text(&out));
    answer_at(
        "4",
        "fix",
        "add consumers to the group and alert on consumer lag",
    );
    // The answer alone is not the fix: the symptom must be gone, against the baseline.
    let out = check_fix();
    assert!(!out.status.success(), "{}", text(&out));
    answer_at("1", "first-step", "b");
    let out = kgate(
        &[
            "lab",
            "check",
            "delayed-sensor-data",
            "--step",
            "1",
            "--dir",
            &dir,
        ],
        state.path(),
    );
    assert!(out.status.success(), "the baseline: {}", text(&out));
    let out = kgate(
        &["lab", "cluster", "consumers", "3", "--dir", &dir],
        state.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = check_fix();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn status_hides_the_variant_and_students_add_and_clear_their_own_gateway_faults() {
    let state = tempfile::tempdir().expect("tempdir");
    for seed in ["1", "2", "4", "5", "7"] {
        let dir = state
            .path()
            .join(format!("seed-{seed}"))
            .display()
            .to_string();
        let out = typed(
            &[
                "lab",
                "run",
                "delayed-sensor-data",
                "--seed",
                seed,
                "--dir",
                &dir,
                "--listen",
                "127.0.0.1:0",
            ],
            b"next\nstatus\nfault latency=10ms topic=vehicle-telemetry api=fetch\nstatus\n\
              fault clear\nstatus\nfault latency=soon\nnext\nnext\nstatus\nquit\n",
        );
        let all = text(&out);
        assert!(out.status.success(), "seed {seed}: {all}");
        assert!(
            all.contains("something is now wrong in the cluster"),
            "seed {seed}: {all}"
        );
        // Until the student fixes it, the hidden fault stays in force, even in the fix step.
        assert_eq!(
            all.matches("fault in force: a hidden fault").count(),
            4,
            "seed {seed}: status shows the same hidden line, whatever the variant: {all}"
        );
        // The fix step names it no more than the others.
        for spoiler in [
            "comes back",
            "stops injecting",
            "answers 0 ms",
            "answers",
            "goes down",
            "throttle=250ms",
            "latency=150ms",
            "leader of",
        ] {
            assert!(
                !all.contains(&format!("fault in force: {spoiler}")) && !all.contains(spoiler),
                "seed {seed}: status gives away {spoiler:?}: {all}"
            );
        }
        assert!(
            all.contains("the gateway now injects: latency=10ms topic=vehicle-telemetry api=fetch"),
            "{all}"
        );
        assert!(all.contains("fault in force: yours: latency=10ms"), "{all}");
        assert!(all.contains("1 of your fault rules removed"), "{all}");
        assert!(
            all.contains("error: latency=soon: write milliseconds"),
            "{all}"
        );
    }
}

#[test]
fn a_new_lab_from_the_template_validates_and_passes_auto() {
    let state = tempfile::tempdir().expect("tempdir");
    let file = state.path().join("my-lab.toml").display().to_string();
    let out = kgate(&["lab", "new", &file], state.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("kgate lab validate"), "{}", text(&out));
    // Never over an existing file.
    let again = kgate(&["lab", "new", &file], state.path());
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("never overwritten"),
        "{}",
        text(&again)
    );
    let out = kgate(&["lab", "validate", &file], state.path());
    assert!(out.status.success(), "{}", text(&out));
    let out = kgate(&["lab", "run", &file, "--auto"], state.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("all 3 steps passed"), "{}", text(&out));
}
