//! `kgate sim` driven as a user would: the built binary, short simulated runs, a scratch
//! directory for `--out`, and the exact error a user sees for a broken scenario file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KGATE: &str = env!("CARGO_BIN_EXE_kgate");

/// A fresh directory under cargo's per-target scratch space, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sim_cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sim(args: &[&str]) -> Output {
    Command::new(KGATE).arg("sim").args(args).output().unwrap()
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

const SHORT: [&str; 6] = ["--rate", "500/s", "--duration", "5s", "--seed", "9"];

#[test]
fn compare_prints_the_four_services_side_by_side() {
    let mut args = vec!["compare", "--workload", "telemetry"];
    args.extend(SHORT);
    let out = sim(&args);
    assert_ok(&out);
    let text = stdout(&out);
    let header = text.lines().nth(1).unwrap_or_default();
    for service in ["kafka", "eventhubs", "kinesis", "pubsub"] {
        assert!(header.contains(service), "{header}");
    }
    assert!(text.contains("latency p99 ms"), "{text}");
    assert!(text.contains("cost per month USD"), "{text}");
    assert!(
        stderr(&out).is_empty(),
        "no progress bar when stderr is not a terminal"
    );
}

#[test]
fn compare_json_is_one_document_and_repeats_byte_for_byte() {
    let mut args = vec![
        "compare",
        "--workload",
        "payments",
        "--services",
        "kafka,pubsub",
        "--format",
        "json",
    ];
    args.extend(SHORT);
    let a = sim(&args);
    let b = sim(&args);
    assert_ok(&a);
    let doc: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(doc["seed"], 9);
    assert_eq!(doc["services"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["services"][0]["service"], "kafka");
    assert!(doc["services"][1]["latency"]["p99_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(a.stdout, b.stdout, "one seed, one report");
}

#[test]
fn compare_csv_has_a_row_per_service() {
    let mut args = vec![
        "compare",
        "--services",
        "kinesis,eventhubs",
        "--format",
        "csv",
    ];
    args.extend(SHORT);
    let out = sim(&args);
    assert_ok(&out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("service,produced,"));
    assert!(lines[1].starts_with("kinesis,"));
    assert!(lines[2].starts_with("eventhubs,"));
}

#[test]
fn run_with_out_writes_time_series_trails_and_charts() {
    let dir = scratch("run-out");
    let scenario = dir.join("crash.toml");
    std::fs::write(
        &scenario,
        "name = \"crash\"\ndescription = \"d\"\nseed = 2\nduration = \"8s\"\nservices = [\"kafka\", \"pubsub\"]\n\
         [workload]\nkind = \"telemetry\"\nrate = \"400/s\"\n\
         [kafka]\nacks = \"1\"\nreplication_p50_ms = 20\nreplication_p99_ms = 20\n\
         [[fault]]\nkind = \"broker_crash\"\nbroker = 0\nat = \"3s\"\n",
    )
    .unwrap();
    let results = dir.join("results");
    let out = sim(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        results.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let table = stdout(&out);
    assert!(table.contains("causal trails"), "{table}");
    assert!(table.contains("broker_crash on kafka"), "{table}");
    for file in [
        "summary.csv",
        "trails.csv",
        "report.json",
        "timeseries-kafka.csv",
        "timeseries-pubsub.csv",
        "lag.svg",
        "lag.png",
        "latency.svg",
        "latency.png",
        "throughput.png",
        "throttled.svg",
    ] {
        let path = results.join(file);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 100, "{} missing or empty", path.display());
    }
    let png = std::fs::read(results.join("lag.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let trails = std::fs::read_to_string(results.join("trails.csv")).unwrap();
    assert!(trails.contains("mechanism,leader_election"), "{trails}");
    assert!(stderr(&out).contains("wrote"), "{}", stderr(&out));
}

#[test]
fn run_json_names_the_lost_messages() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("simulator/scenarios/leader-crash-acks1.toml");
    let dir = scratch("run-json");
    let scenario = dir.join("short.toml");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("duration = \"2m\"", "duration = \"50s\"");
    std::fs::write(&scenario, text).unwrap();
    let out = sim(&["run", scenario.to_str().unwrap(), "--format", "json"]);
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kafka = &doc["services"][0];
    assert!(
        kafka["lost"]["count"].as_u64().unwrap() > 0,
        "acks=1 loses the unreplicated tail"
    );
    assert!(!kafka["lost"]["ids"].as_array().unwrap().is_empty());
    let codes: Vec<&str> = doc["trails"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["code"].as_str())
        .collect();
    assert!(codes.contains(&"log_truncation"), "{codes:?}");
    assert!(codes.contains(&"messages_lost"), "{codes:?}");
}

#[test]
fn bad_scenario_file_names_file_line_and_field() {
    let dir = scratch("bad");
    let scenario = dir.join("bad.toml");
    std::fs::write(
        &scenario,
        "name = \"x\"\n\n[workload]\nkind = \"telemetry\"\nrate = \"fast\"\n",
    )
    .unwrap();
    let out = sim(&["run", scenario.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "bad configuration exits 64: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&format!("{}:5: workload.rate:", scenario.display())),
        "{err}"
    );
    assert!(err.contains("expected a rate such as 5000/s"), "{err}");
}

#[test]
fn unknown_service_is_a_one_line_error() {
    let out = sim(&[
        "compare",
        "--services",
        "kafka,rabbitmq",
        "--duration",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("kgate: unknown service `rabbitmq`"),
        "{err}"
    );
}

#[test]
fn profiles_lists_every_number_with_its_source() {
    let out = sim(&["profiles"]);
    assert_ok(&out);
    let text = stdout(&out);
    for service in ["kafka", "eventhubs", "eventgrid", "kinesis", "pubsub"] {
        assert!(text.contains(&format!("{service} — ")), "{service} missing");
    }
    assert!(text.contains("shard_write_records_per_s"), "{text}");
    assert!(text
        .contains("https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html"));
    let json = sim(&["profiles", "--service", "kinesis", "--format", "json"]);
    assert_ok(&json);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc.as_array().map(Vec::len), Some(1));
    assert_eq!(doc[0]["params"]["shard_write_records_per_s"]["value"], 1000);
    assert_eq!(
        doc[0]["params"]["shard_write_records_per_s"]["as_of"],
        "2026-11"
    );
}

#[test]
fn every_subcommand_help_shows_an_example() {
    for sub in ["compare", "run", "profiles"] {
        let out = sim(&[sub, "--help"]);
        assert_ok(&out);
        let text = stdout(&out);
        assert!(text.contains("Example"), "{sub}: {text}");
        assert!(text.contains(&format!("kgate sim {sub}")), "{sub}: {text}");
    }
}
