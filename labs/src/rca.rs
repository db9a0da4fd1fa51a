//! Grading answers: choices, free text, and root-cause analyses (5 whys, fishbone, fault tree)
//! against a causal trail — one declared in the lab file for live faults, or the simulator's.

use kgate_sim::{CausalTrail, Stage};

use crate::check::{sim_pick, Evidence};
use crate::lab::{parse_pick, Question, QuestionKind, TrailSpec, FISHBONE_CATEGORIES};

/// A graded answer.
#[derive(Debug, Clone)]
pub struct Grade {
    /// Right?
    pub passed: bool,
    /// What was right or missing.
    pub feedback: Vec<String>,
}

impl Grade {
    fn new() -> Self {
        Grade {
            passed: true,
            feedback: Vec::new(),
        }
    }
    fn fail(&mut self, why: String) {
        self.passed = false;
        self.feedback.push(why);
    }
    fn note(&mut self, what: String) {
        self.feedback.push(what);
    }
}

/// Words people use for the simulator's trail codes.
fn aliases(code: &str) -> &'static [&'static str] {
    match code {
        "broker_crash" => &[
            "broker crash",
            "broker failure",
            "broker down",
            "broker died",
        ],
        "leader_failover" => &["failover", "leader change", "leader moved"],
        "network_partition" => &["network partition", "network split", "unreachable"],
        "added_latency" => &["network latency", "latency", "slow network"],
        "slow_consumer" => &["slow consumer", "slow processing", "processing too slow"],
        "consumer_crash" => &["consumer crash", "consumer died"],
        "disk_full" => &["disk full", "no space"],
        "throttling_spike" => &["throttling", "quota", "throttled"],
        "rebalance_storm" => &["rebalance storm", "rebalances", "rebalancing"],
        "leader_election" => &["leader election", "new leader", "election"],
        "log_truncation" => &["truncat", "log truncation"],
        "isr_shrink" => &["isr shrink", "out of sync", "in-sync replica"],
        "producer_retry" => &["retry", "retries", "resend"],
        "max_poll_exceeded" => &["max.poll.interval", "max poll", "poll interval"],
        "rebalance" => &["rebalance"],
        "token_bucket_exhausted" | "server_busy" | "provisioned_throughput_exceeded" => &[
            "throttl",
            "quota",
            "throughput unit",
            "shard limit",
            "server busy",
        ],
        "consumer_lag" => &["lag"],
        "end_to_end_latency" => &["latency", "late", "delay"],
        "under_replicated_partitions" => &["under-replicated", "under replicated", "isr"],
        "messages_lost" => &["lost", "loss", "missing"],
        "duplicates" => &["duplicate"],
        "late_data" => &["late", "delay"],
        _ => &[],
    }
}

/// Keywords of the simulator's trail, stage by stage.
pub fn trail_from_sim(trail: &CausalTrail) -> TrailSpec {
    let words = |stage: Stage| -> Vec<String> {
        let mut out = Vec::new();
        for code in trail.codes(stage) {
            out.push(code.to_owned());
            out.push(code.replace('_', " "));
            out.extend(aliases(code).iter().map(|s| (*s).to_owned()));
        }
        out
    };
    let category = match trail.fault.as_str() {
        "broker_crash" | "leader_failover" => vec!["technology", "equipment"],
        "network_partition" | "added_latency" => vec!["network", "environment"],
        "slow_consumer" | "consumer_crash" => vec!["clients", "technology"],
        "disk_full" => vec!["disk", "equipment"],
        "throttling_spike" => vec!["quotas", "configuration"],
        _ => vec!["configuration", "clients"],
    };
    TrailSpec {
        fault: words(Stage::Fault),
        mechanism: words(Stage::Mechanism),
        metric: words(Stage::Metric),
        symptom: words(Stage::Symptom),
        category: category.into_iter().map(str::to_owned).collect(),
        gate: None,
        events: Vec::new(),
    }
}

fn norm(s: &str) -> String {
    s.to_lowercase().replace(['_', '-'], " ")
}

/// The words of a text: letters, digits and `=`/`.` (so `acks=1` stays one word).
fn words_of(s: &str) -> Vec<String> {
    norm(s)
        .split(|c: char| !(c.is_alphanumeric() || c == '=' || c == '.'))
        .map(|w| w.trim_matches('.').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// A keyword word matches a text word with the same stem: numbers exactly, words by their
/// first five letters (`consumers` ~ `consumer`, `slow` ~ `slower`).
fn same_stem(keyword: &str, word: &str) -> bool {
    if keyword.chars().all(|c| c.is_ascii_digit()) {
        return keyword == word;
    }
    let stem: String = keyword.chars().take(5).collect();
    word.starts_with(&stem)
}

/// Whether `text` names one of `keywords`: the phrase itself, or all of its words in any
/// order and form ("slow processing" ~ "processing was too slow"), so a right answer is not
/// refused for its wording.
fn mentions(text: &str, keywords: &[String]) -> bool {
    let t = norm(text);
    let words = words_of(text);
    keywords.iter().any(|k| {
        let k = norm(k);
        if k.trim().is_empty() {
            return false;
        }
        if t.contains(&k) {
            return true;
        }
        let parts = words_of(&k);
        !parts.is_empty() && parts.iter().all(|p| words.iter().any(|w| same_stem(p, w)))
    })
}

/// Kinds of cause a student may name, each with the evidence that shows it: the feedback for
/// a cause the trail does not support points at evidence, never at the answer.
const EVIDENCE_HINTS: &[(&[&str], &str)] = &[
    (
        &[
            "down",
            "outage",
            "crash",
            "under replicated",
            "isr",
            "failover",
            "offline",
        ],
        "a broker outage leaves a trail: ISR shrinks, partitions under-replicated, leaders \
         moved, client errors. Did step 2's evidence show those?",
    ),
    (
        &["quota", "throttl"],
        "a quota leaves throttle time the brokers report to the client (throttle_ms and the \
         throttle column per broker). Was there any?",
    ),
    (
        &["consumer", "processing", "poll", "rebalanc"],
        "a consumer-side cause shows as lag per partition while produce latency stays at the \
         baseline. Is that what step 2 measured?",
    ),
    (
        &[
            "network",
            "congest",
            "round trip",
            "rtt",
            "bandwidth",
            "routing",
        ],
        "network delay sits between the client and the broker: the client's round trip grows \
         while the broker's own time (kgate ⇄ broker) stays at the baseline. Compare the two \
         columns per broker.",
    ),
    (
        &["broker", "disk", "overload", "cpu", "gc", "leader"],
        "a slow broker shows in its own time (kgate ⇄ broker), on the partitions it leads, \
         while the network part stays at the baseline. Compare the two columns per broker.",
    ),
];

/// The evidence hint for the kind of cause `text` names, if it names one.
fn evidence_hint(text: &str) -> Option<&'static str> {
    EVIDENCE_HINTS.iter().find_map(|(words, hint)| {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        mentions(text, &words).then_some(*hint)
    })
}

/// Strips `1.`, `why 2:`, `- ` prefixes from an answer line.
fn strip_label(line: &str) -> &str {
    let mut l = line.trim();
    if let Some(rest) = l.strip_prefix('-') {
        l = rest.trim();
    }
    let lower = l.to_lowercase();
    if lower.starts_with("why") {
        if let Some((_, rest)) = l.split_once(':') {
            return rest.trim();
        }
    }
    let digits = l.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        let rest = &l[digits..];
        if let Some(r) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')')) {
            return r.trim();
        }
    }
    l
}

/// The right option of a choice question.
pub fn right_choice(q: &Question, evidence: &Evidence) -> Option<String> {
    if let Some(a) = &q.answer {
        return Some(a.clone());
    }
    let (max, metric) = parse_pick(q.answer_from_sim.as_deref()?).ok()?;
    sim_pick(evidence.sim.as_ref()?, max, &metric)
}

/// Grades one answer.
pub fn grade(q: &Question, answer: &str, trail: Option<&TrailSpec>, evidence: &Evidence) -> Grade {
    let mut g = Grade::new();
    let answer = answer.trim();
    if answer.is_empty() {
        g.fail("not answered yet (type `answer`)".into());
        return g;
    }
    match q.kind {
        QuestionKind::Choice => {
            let Some(right) = right_choice(q, evidence) else {
                g.fail(
                    "the right option could not be computed: the step's simulator run is \
                     missing, or services tie on that metric"
                        .into(),
                );
                return g;
            };
            let picked = pick_option(q, answer);
            if picked.as_deref() == Some(right.as_str()) {
                g.note(format!("right: {right}"));
            } else {
                g.fail(format!(
                    "{} is not it",
                    picked.unwrap_or_else(|| format!("{answer:?}"))
                ));
            }
        }
        QuestionKind::Text => {
            if mentions(answer, &q.accept) {
                g.note("right".into());
            } else {
                g.fail("that misses the point; try `hint`".into());
            }
        }
        QuestionKind::FiveWhys => match trail {
            Some(t) => five_whys(answer, t, &mut g),
            None => g.fail("no causal trail to grade against".into()),
        },
        QuestionKind::Fishbone => match trail {
            Some(t) => fishbone(answer, t, &mut g),
            None => g.fail("no causal trail to grade against".into()),
        },
        QuestionKind::FaultTree => match trail {
            Some(t) => fault_tree(answer, t, &mut g),
            None => g.fail("no causal trail to grade against".into()),
        },
    }
    g
}

/// The option an answer names: the text, its letter (`b`) or its number (`2`).
pub fn pick_option(q: &Question, answer: &str) -> Option<String> {
    let a = answer.trim();
    if let Some(o) = q.options.iter().find(|o| o.eq_ignore_ascii_case(a)) {
        return Some(o.clone());
    }
    let lower = a.to_ascii_lowercase();
    if let (Some(c), 1) = (lower.bytes().next(), lower.len()) {
        if c.is_ascii_lowercase() {
            return q.options.get(usize::from(c - b'a')).cloned();
        }
    }
    if let Ok(n) = a.parse::<usize>() {
        return n.checked_sub(1).and_then(|i| q.options.get(i)).cloned();
    }
    None
}

fn five_whys(answer: &str, t: &TrailSpec, g: &mut Grade) {
    let whys: Vec<&str> = answer
        .lines()
        .map(strip_label)
        .filter(|l| !l.is_empty())
        .collect();
    if whys.len() < 5 {
        g.fail(format!(
            "{} answer(s): a 5-whys chain starts at the problem and asks \"why?\" about five \
             times; write at least five lines, one answer per line",
            whys.len()
        ));
        return;
    }
    let effects: Vec<String> = t
        .symptom
        .iter()
        .chain(&t.metric)
        .chain(&t.mechanism)
        .cloned()
        .collect();
    if !effects.is_empty() && !whys.iter().any(|w| mentions(w, &effects)) {
        g.fail("no answer names what was observed or how the system reacted (the symptoms and mechanism)".into());
    }
    let last = whys.last().copied().unwrap_or_default();
    if mentions(last, &t.fault) {
        g.note(format!("root cause found in why {}: {last}", whys.len()));
    } else if whys.iter().any(|w| mentions(w, &t.fault)) {
        g.fail("the root cause is in your chain, but not at the end: keep asking why from there, and stop at it".into());
    } else if let Some(hint) = evidence_hint(last) {
        g.fail(format!(
            "the cause at the end of your chain does not fit the evidence: {hint}"
        ));
    } else {
        g.fail("the last answer is not the root cause yet: ask why once more".into());
    }
}

fn fishbone(answer: &str, t: &TrailSpec, g: &mut Grade) {
    let mut categories = std::collections::BTreeSet::new();
    let mut root_under: Option<String> = None;
    for line in answer.lines().map(strip_label).filter(|l| !l.is_empty()) {
        let Some((cat, cause)) = line.split_once(':') else {
            g.fail(format!("{line:?}: write `category: cause`"));
            continue;
        };
        let cat = cat.trim().to_lowercase();
        if !FISHBONE_CATEGORIES.contains(&cat.as_str()) {
            g.fail(format!(
                "unknown category {cat:?} (use {})",
                FISHBONE_CATEGORIES.join(", ")
            ));
            continue;
        }
        categories.insert(cat.clone());
        if mentions(cause, &t.fault) && root_under.is_none() {
            root_under = Some(cat);
        }
    }
    if categories.len() < 3 {
        g.fail(format!(
            "{} categor{}: brainstorm causes under at least three bones",
            categories.len(),
            if categories.len() == 1 { "y" } else { "ies" }
        ));
    }
    match root_under {
        None => g.fail(
            "none of the causes is the root cause: which one does step 2's evidence support? \
             (network vs broker time per broker, throttle time, lag per partition, ISR changes)"
                .into(),
        ),
        Some(cat) if !t.category.is_empty() && !t.category.contains(&cat) => g.fail(format!(
            "the root cause is there, under {cat:?}: is that the kind of cause your evidence \
             shows? Name what it is ({}) and put it under the bone of that kind",
            "a component, a setting, the network, a client"
        )),
        Some(cat) => g.note(format!("root cause under {cat}")),
    }
}

fn fault_tree(answer: &str, t: &TrailSpec, g: &mut Grade) {
    let text = answer.lines().collect::<Vec<_>>().join(" ");
    let Some((top, below)) = text.split_once('=') else {
        g.fail("write `top event = event AND|OR event ...`".into());
        return;
    };
    let effects: Vec<String> = t.symptom.iter().chain(&t.metric).cloned().collect();
    if !effects.is_empty() && !mentions(top, &effects) {
        g.fail(format!(
            "{:?} at the top is not the failure that was observed",
            top.trim()
        ));
    }
    let words: Vec<String> = below
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_uppercase()
        })
        .collect();
    if let Some(gate) = &t.gate {
        let other = if gate == "AND" { "OR" } else { "AND" };
        if !words.iter().any(|w| w == gate) {
            g.fail(format!(
                "the basic events must be joined by {gate}{}",
                if words.iter().any(|w| w == other) {
                    format!(", not {other}")
                } else {
                    String::new()
                }
            ));
        }
    }
    for (i, event) in t.events.iter().enumerate() {
        if !mentions(below, event) {
            g.fail(format!(
                "a basic event is missing (event {} of {})",
                i + 1,
                t.events.len()
            ));
        }
    }
    if g.passed {
        g.note("the tree has the right events and gate".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail() -> TrailSpec {
        TrailSpec {
            fault: vec!["acks=1".into(), "acks 1".into()],
            mechanism: vec!["leader election".into()],
            metric: vec![],
            symptom: vec!["lost".into(), "missing".into()],
            category: vec!["configuration".into()],
            gate: Some("AND".into()),
            events: vec![
                vec!["acks=1".into(), "acks 1".into()],
                vec!["leader crash".into(), "broker crash".into()],
            ],
        }
    }

    fn q(kind: QuestionKind) -> Question {
        Question {
            id: "q".into(),
            kind,
            prompt: String::new(),
            options: vec!["kafka".into(), "kinesis".into()],
            answer: Some("kinesis".into()),
            accept: vec!["idempot".into()],
            answer_from_sim: None,
        }
    }

    #[test]
    fn five_whys_ending_in_the_root_cause_pass() {
        let a = "1. messages are missing downstream\n2. the leader crashed and a follower was elected\n\
                 3. the follower had not copied them\n4. the leader acknowledged before copying\n\
                 5. the producer used acks=1";
        let g = grade(
            &q(QuestionKind::FiveWhys),
            a,
            Some(&trail()),
            &Evidence::default(),
        );
        assert!(g.passed, "{:?}", g.feedback);
    }

    #[test]
    fn a_three_why_chain_is_not_five_whys() {
        let a = "messages are missing\nthe leader crashed\nthe producer used acks=1";
        let g = grade(
            &q(QuestionKind::FiveWhys),
            a,
            Some(&trail()),
            &Evidence::default(),
        );
        assert!(!g.passed);
        assert!(g.feedback[0].contains("five"), "{:?}", g.feedback);
    }

    #[test]
    fn five_whys_stopping_early_fail() {
        let a = "messages are missing\nthey were never read\nthe consumer group lost them\n\
                 the records were gone\nsomething happened";
        let g = grade(
            &q(QuestionKind::FiveWhys),
            a,
            Some(&trail()),
            &Evidence::default(),
        );
        assert!(!g.passed);
        assert!(g.feedback.iter().any(|f| f.contains("ask why once more")));
    }

    #[test]
    fn a_wrong_cause_gets_a_hint_about_evidence_not_the_answer() {
        let a = "messages are missing\nthe leader crashed\na new leader was elected\n\
                 the new leader lacked them\nthe network between the brokers is congested";
        let g = grade(
            &q(QuestionKind::FiveWhys),
            a,
            Some(&trail()),
            &Evidence::default(),
        );
        assert!(!g.passed);
        let f = g.feedback.join(" ");
        assert!(f.contains("evidence") && f.contains("network"), "{f}");
        assert!(!f.contains("acks"), "gives the answer away: {f}");
    }

    #[test]
    fn fishbone_needs_the_root_cause_under_its_bone() {
        let good = "configuration: producer acks=1\nnetwork: slow link\nclients: retries off";
        let t = trail();
        assert!(
            grade(
                &q(QuestionKind::Fishbone),
                good,
                Some(&t),
                &Evidence::default()
            )
            .passed
        );
        let wrong = "network: producer acks=1\nclients: x\ndisk: y";
        let g = grade(
            &q(QuestionKind::Fishbone),
            wrong,
            Some(&t),
            &Evidence::default(),
        );
        assert!(!g.passed);
        let f = g.feedback.join(" ");
        assert!(f.contains("evidence"), "{f}");
        assert!(
            !f.contains("configuration"),
            "names the right bone, giving the answer away: {f}"
        );
    }

    #[test]
    fn fault_trees_are_graded_on_meaning_not_wording() {
        let t = trail();
        for good in [
            "messages lost = acks=1 AND leader crash before replication",
            "lost messages = producer acks=1 AND the broker crashed (leader)",
            "records missing = a crash of the leader AND acks 1 on the producer",
        ] {
            let g = grade(
                &q(QuestionKind::FaultTree),
                good,
                Some(&t),
                &Evidence::default(),
            );
            assert!(g.passed, "{good}: {:?}", g.feedback);
        }
        let wrong = "messages lost = acks=all AND a slow consumer";
        assert!(
            !grade(
                &q(QuestionKind::FaultTree),
                wrong,
                Some(&t),
                &Evidence::default()
            )
            .passed
        );
    }

    #[test]
    fn every_variant_of_delayed_sensor_data_accepts_reworded_fault_trees() {
        let lab = crate::lab::Lab::find("delayed-sensor-data").unwrap();
        let trees = [
            ("consumer-lag", "sensor data delayed = processing is too slow AND only one consumer reads all partitions"),
            ("slow-broker", "telemetry late = broker 2 is slow (its disk) AND broker 2 is the leader of partition 1"),
            ("broker-outage", "alerts late = broker 3 crashed AND its partition failed over to a new leader"),
            ("throttling", "alerts late = the producer quota is too low AND the producers send more than it allows"),
            ("network-latency", "data arrives late = network congestion AND all requests cross that network"),
        ];
        for (name, tree) in trees {
            let v = lab.variants.iter().find(|v| v.name == name).unwrap();
            let g = grade(
                &q(QuestionKind::FaultTree),
                tree,
                Some(&v.trail),
                &Evidence::default(),
            );
            assert!(g.passed, "{name}: {tree}: {:?}", g.feedback);
        }
    }

    #[test]
    fn fault_tree_needs_the_gate_and_events() {
        let t = trail();
        let good = "messages lost = acks=1 AND leader crash before replication";
        assert!(
            grade(
                &q(QuestionKind::FaultTree),
                good,
                Some(&t),
                &Evidence::default()
            )
            .passed
        );
        let or = "messages lost = acks=1 OR leader crash";
        let g = grade(
            &q(QuestionKind::FaultTree),
            or,
            Some(&t),
            &Evidence::default(),
        );
        assert!(!g.passed);
        assert!(g.feedback[0].contains("not OR"), "{:?}", g.feedback);
    }

    #[test]
    fn choices_accept_letters_numbers_and_text() {
        let question = q(QuestionKind::Choice);
        for a in ["b", "2", "Kinesis"] {
            assert!(
                grade(&question, a, None, &Evidence::default()).passed,
                "{a}"
            );
        }
        assert!(!grade(&question, "a", None, &Evidence::default()).passed);
    }

    #[test]
    fn text_answers_match_keywords() {
        let question = q(QuestionKind::Text);
        assert!(
            grade(
                &question,
                "Use the Idempotent producer",
                None,
                &Evidence::default()
            )
            .passed
        );
        assert!(!grade(&question, "more brokers", None, &Evidence::default()).passed);
    }
}
