//! Issue 14, driven as a student and an instructor would: the stumbles of the guided labs, and
//! delayed-sensor-data's hidden faults told apart by evidence and fixed with `kgate lab cluster`.

mod common;

use std::collections::BTreeMap;

use common::lab::{kgate, kgate_in, section, text};

#[test]
fn lab_one_guided_has_no_stumbles() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path().join("lab1");
    let d = dir.display().to_string();
    // A student types each step: `do` runs the solution, `check` proves it.
    let input = "check\nnext\ndo\ncheck\nnext\ndo\ncheck\nnext\ndo\ncheck\nnext\ndo\ncheck\nnext\n\
                 check\nanswer\nb\nanswer\ncheck\nnext\n\
                 answer\nTopicAuthorizationFailed\ncheck\n\
                 answer client-error\n\ncheck\n\
                 answer client-error\nAuthorizationException\ncheck\nsolution\nquit\n";
    let out = kgate_in(
        &[
            "lab",
            "run",
            "secure-the-cluster",
            "--dir",
            &d,
            "--listen",
            "127.0.0.1:0",
        ],
        state.path(),
        input.as_bytes(),
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    // No raw log lines between check results: the wrong-password check's warning goes to the
    // lab's gateway.log.
    assert!(
        !all.contains("WARN") && !all.contains("kgate::auth"),
        "log lines in the guided run:\n{all}"
    );
    let log = std::fs::read_to_string(dir.join("gateway.log")).expect("gateway.log");
    assert!(log.contains("authentication failed"), "{log}");
    // The engineering check shows the topic's denial, not the group's.
    let eng = section(
        &all,
        "engineering cannot read system_logs",
        "admin (super user)",
    );
    assert!(eng.contains("TOPIC_AUTHORIZATION_FAILED"), "{eng}");
    assert!(!eng.contains("GROUP_AUTHORIZATION_FAILED"), "{eng}");
    let mkt = section(
        &all,
        "marketing cannot read system_logs",
        "marketing cannot write",
    );
    assert!(mkt.contains("TOPIC_AUTHORIZATION_FAILED"), "{mkt}");
    // `answer` after everything is answered does not ask again.
    assert!(
        all.contains("every question of this step has an answer"),
        "{all}"
    );
    // Step 7: the word the lab printed in step 6, and hint 2's word, are right; an empty line
    // keeps the saved answer.
    let step7 = &all[all.find("== Step 7/7").expect("step 7")..];
    assert_eq!(
        step7.matches("✔ question client-error").count(),
        3,
        "TopicAuthorizationFailed, kept, AuthorizationException:\n{step7}"
    );
    assert!(step7.contains("your answer is kept"), "{step7}");
    assert!(!step7.contains("✘ question client-error"), "{step7}");
    // `kgate client-config` in the lab directory knows the lab gateway's address.
    let cc = kgate_in(
        &[
            "client-config",
            "--user",
            "marketing",
            "--ca",
            "certs/ca.pem",
        ],
        &dir,
        b"",
    );
    let printed = text(&cc);
    assert!(cc.status.success(), "{printed}");
    let addr = std::fs::read_to_string(dir.join("gateway.addr")).expect("gateway.addr");
    assert!(
        printed.contains(&format!("bootstrap.servers={}", addr.trim())),
        "{printed}"
    );
    assert!(
        all.contains(addr.trim()),
        "the guided run showed another address"
    );
    // Without --ca too: the lab's CA.
    let cc = kgate_in(&["client-config", "--user", "marketing"], &dir, b"");
    assert!(
        text(&cc).contains("ssl.ca.location=certs/ca.pem"),
        "{}",
        text(&cc)
    );
}

#[test]
fn rca_answers_are_kept_and_solutions_and_graders_help_without_giving_away() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path().join("lab4");
    let d = dir.display().to_string();
    // Seed 4 hides a slow broker. A three-why chain, then a wrong cause.
    let input = "check\nnext\ncheck\nnext\n\
                 answer whys\nalerts are wrong\ndata is late\nthe network is congested\n\ncheck\n\
                 answer whys\nalerts are wrong\ndata is late\npartition 1 is slow\nits leader is slow\nthe network between clients and brokers is congested\n\ncheck\n\
                 solution\nquit\n";
    let out = kgate_in(
        &[
            "lab",
            "run",
            "delayed-sensor-data",
            "--seed",
            "4",
            "--dir",
            &d,
            "--listen",
            "127.0.0.1:0",
        ],
        state.path(),
        input.as_bytes(),
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let step3 = &all[all.find("== Step 3/4").expect("step 3")..];
    assert!(
        step3.contains("3 answer(s): a 5-whys chain"),
        "a three-why chain is not 5 whys:\n{step3}"
    );
    assert!(
        step3.contains("does not fit the evidence"),
        "a wrong cause gets an evidence hint:\n{step3}"
    );
    assert!(
        !step3.contains("ask why once more"),
        "not `ask why once more` for a wrong cause:\n{step3}"
    );
    // Step 3's solution is not empty: the model answers of the hidden fault.
    let solution = &step3[step3.rfind("solution:").expect("solution")..];
    assert!(solution.contains("whys:"), "{solution}");
    assert!(solution.contains("fault-tree:"), "{solution}");
    // The baseline's leaders are spread and step 2 did not move them.
    let base = section(&all, "baseline: produce", "question first-step");
    let now = section(&all, "the same probe, now", "pipeline's metrics");
    for (p, b) in [(0, 1), (1, 2), (2, 3)] {
        let line = format!("partition {p} (leader broker {b})");
        assert!(base.contains(&line), "{line} in the baseline:\n{base}");
        assert!(now.contains(&line), "{line} in step 2:\n{now}");
    }
}

#[test]
fn auto_names_one_seed_and_the_catalogue_explains_its_numbers() {
    let state = tempfile::tempdir().expect("tempdir");
    let out = kgate_in(
        &["lab", "run", "delayed-sensor-data", "--auto", "--seed", "4"],
        state.path(),
        b"",
    );
    let all = text(&out);
    let out_env = kgate(
        &["lab", "run", "troubleshooting-catalogue", "--auto"],
        state.path(),
    );
    let cat = text(&out_env);
    assert!(out.status.success(), "{all}");
    assert!(out_env.status.success(), "{cat}");
    let seeds: Vec<&str> = all
        .match_indices("seed ")
        .map(|(i, _)| {
            all[i + 5..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("")
        })
        .filter(|s| !s.is_empty())
        .collect();
    assert!(
        !seeds.is_empty() && seeds.iter().all(|s| *s == "4"),
        "{seeds:?}\n{all}"
    );
    assert!(
        !cat.contains("lab seed"),
        "no lab seed without hidden faults:\n{cat}"
    );
    // Step 5 says what p50 measures.
    let slow = section(&cat, "slow answers from every broker", "the gateway delays");
    let p50: f64 = slow
        .split("p50_ms=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("p50");
    // Two delays of 200 ms: at least 300 ms; a loaded machine (CI with builds beside it)
    // adds queueing on top, seen up to ~740 ms, so the upper bound is loose.
    assert!((300.0..1200.0).contains(&p50), "{slow}");
    let lab = kgate_labs::Lab::find("troubleshooting-catalogue").expect("lab");
    assert!(lab.steps[4].text.contains("about 400 ms is two delays"));
    // AllBrokersDown 1/1 is explained, in the step and next to the error.
    assert!(lab.steps[1].text.contains("1/1 brokers are down"));
    if cat.contains("AllBrokersDown") {
        assert!(cat.contains("hence `1/1`"), "{cat}");
    }
    // The storm, eager then cooperative: the thrown-out consumer's partitions are re-read
    // from their last commit with either protocol (duplicates in both); cooperative pauses
    // no one who keeps their partitions, so fewer records wait.
    let storm = |name: &str| {
        let run = section(&cat, name, "✔ ");
        // The report's table: `duplicated    14870`, `latency p99 ms    397`.
        let metric = |key: &str| -> f64 {
            run.lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {key:?} row in {run}"))
        };
        (metric("duplicated "), metric("latency p99 ms "))
    };
    let (eager_dups, eager_p99) = storm("✔ a rebalance storm with the eager protocol");
    let (coop_dups, coop_p99) = storm("✔ the same storm with the cooperative protocol");
    assert!(coop_dups > 0.0, "moved partitions are re-read:\n{cat}");
    // The same kind of records (the thrown-out consumer's uncommitted ones) are processed
    // twice; the two runs draw their timings differently, so the counts differ a little.
    assert!(
        (coop_dups - eager_dups).abs() <= 0.02 * eager_dups,
        "about the same records are processed twice: {coop_dups} vs {eager_dups}"
    );
    assert!(coop_p99 < eager_p99, "{coop_p99} vs {eager_p99}");
    let text = &lab.steps[0].text;
    assert!(
        text.contains("starts from their last committed offset"),
        "{text}"
    );
    assert!(text.contains("Nor does it stop the storm"), "{text}");
    assert!(
        cat.contains("✔ question cooperative-duplicates"),
        "the question on where the duplicates come from:\n{cat}"
    );
}

/// What step 2's evidence of delayed-sensor-data says, as an operator reads it.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Diagnosis {
    ConsumerLag,
    SlowBroker(i32),
    BrokerOutage,
    Throttling,
    NetworkLatency,
}

#[derive(Debug, Default)]
struct BrokerRow {
    broker: f64,
    network: f64,
    throttle: f64,
}

fn number_after(line: &str, key: &str) -> f64 {
    line.split(key)
        .nth(1)
        .and_then(|v| {
            v.trim_start()
                .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .next()
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
}

fn diagnose(evidence: &str) -> Diagnosis {
    let mut rows: BTreeMap<i32, BrokerRow> = BTreeMap::new();
    let mut lag = 0.0;
    let mut shrinks = 0.0;
    for line in evidence.lines().map(str::trim) {
        if line.starts_with("broker ") && line.contains("round trip") {
            let id = number_after(line, "broker ") as i32;
            rows.insert(
                id,
                BrokerRow {
                    broker: number_after(line, "= broker"),
                    network: number_after(line, "+ network"),
                    throttle: number_after(line, "+ throttle"),
                },
            );
        }
        if line.starts_with("consumer lag per partition:") {
            lag = line
                .split(": ")
                .skip(2)
                .map(|v| {
                    v.split(',')
                        .next()
                        .unwrap_or("0")
                        .trim()
                        .parse::<f64>()
                        .unwrap_or(0.0)
                })
                .sum();
        }
        if line.starts_with("replication:") {
            shrinks = number_after(line, "replication:");
        }
    }
    assert!(!rows.is_empty(), "no per-broker evidence:\n{evidence}");
    let slow = |v: f64| v >= 50.0;
    if rows.values().any(|r| slow(r.throttle)) {
        return Diagnosis::Throttling;
    }
    if shrinks > 0.0 {
        return Diagnosis::BrokerOutage;
    }
    let slow_brokers: Vec<i32> = rows
        .iter()
        .filter(|(_, r)| slow(r.broker))
        .map(|(id, _)| *id)
        .collect();
    if let [one] = slow_brokers.as_slice() {
        return Diagnosis::SlowBroker(*one);
    }
    if rows.values().all(|r| slow(r.network)) {
        return Diagnosis::NetworkLatency;
    }
    assert!(lag > 0.0, "nothing out of the ordinary:\n{evidence}");
    Diagnosis::ConsumerLag
}

#[test]
fn every_hidden_fault_is_told_apart_by_evidence_and_fixed_by_the_student() {
    // Seeds 1, 2, 4, 5, 7 pick the five variants.
    let expected = [
        ("1", "consumer-lag", Diagnosis::ConsumerLag, "consumers 3"),
        ("2", "throttling", Diagnosis::Throttling, "raise-quota"),
        (
            "4",
            "slow-broker",
            Diagnosis::SlowBroker(2),
            "move-leader vehicle-telemetry 1 3",
        ),
        (
            "5",
            "network-latency",
            Diagnosis::NetworkLatency,
            "repair-network",
        ),
        (
            "7",
            "broker-outage",
            Diagnosis::BrokerOutage,
            "restart-broker 3",
        ),
    ];
    let mut seen = Vec::new();
    for (seed, name, want, fix) in expected {
        let state = tempfile::tempdir().expect("tempdir");
        let dir = state.path().join("lab");
        let d = dir.display().to_string();
        let out = kgate_in(
            &[
                "lab",
                "run",
                "delayed-sensor-data",
                "--auto",
                "--seed",
                seed,
                "--dir",
                &d,
            ],
            state.path(),
            b"",
        );
        let all = text(&out);
        assert!(out.status.success(), "seed {seed}:\n{all}");
        assert!(all.contains(&format!("seed {seed}: {name}")), "{all}");
        let evidence = section(&all, "the same probe, now", "pipeline's metrics");
        let got = diagnose(evidence);
        assert_eq!(got, want, "seed {seed} ({name}):\n{evidence}");
        seen.push(got);
        // Undo the student's fix: the fix check must fail, the symptom is back.
        std::fs::remove_file(dir.join("cluster-ops.txt")).expect("the fix was recorded");
        let check = [
            "lab",
            "check",
            "delayed-sensor-data",
            "--step",
            "4",
            "--dir",
            &d,
        ];
        let unfixed = kgate_in(&check, state.path(), b"");
        assert!(
            !unfixed.status.success(),
            "{name}: the fix check passes without a fix:\n{}",
            text(&unfixed)
        );
        // The student applies the fix from the lab directory.
        let mut op = vec!["lab", "cluster"];
        op.extend(fix.split(' '));
        let applied = kgate_in(&op, &dir, b"");
        assert!(applied.status.success(), "{}", text(&applied));
        let fixed = kgate_in(&check, state.path(), b"");
        assert!(
            fixed.status.success(),
            "{name}: the fix `{fix}` does not clear the symptom:\n{}",
            text(&fixed)
        );
    }
    for (i, a) in seen.iter().enumerate() {
        for b in &seen[i + 1..] {
            assert_ne!(a, b, "two variants look the same");
        }
    }
}

#[test]
fn the_fix_check_fails_against_the_baseline_when_latency_stays_high() {
    // Seed 4 (slow broker): restarting broker 2 does not replace its disk; p99 stays 400 ms
    // against a baseline of a few ms.
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path().join("lab");
    let d = dir.display().to_string();
    let out = kgate_in(
        &[
            "lab",
            "run",
            "delayed-sensor-data",
            "--auto",
            "--seed",
            "4",
            "--dir",
            &d,
        ],
        state.path(),
        b"",
    );
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(dir.join("cluster-ops.txt"), "restart-broker 2\n").expect("write");
    let check = kgate_in(
        &[
            "lab",
            "check",
            "delayed-sensor-data",
            "--step",
            "4",
            "--dir",
            &d,
        ],
        state.path(),
        b"",
    );
    let all = text(&check);
    assert!(!check.status.success(), "{all}");
    assert!(all.contains("more than 2× the baseline"), "{all}");
}
