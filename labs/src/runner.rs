//! The lab runner: guided runs in the terminal, single-step checks, `--auto` for instructors and
//! CI, and reset. A lab's state (its working directory and `progress.json`) lives in one
//! directory per lab, so `kgate lab check <lab> --step N` works in a separate invocation: it
//! starts the environment again from the directory's files and replays the faults of steps 1..N.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::check::{check_name, run_check, run_kgate, CheckResult, Evidence, VariantContext};
use crate::env::{LabEnv, HIDDEN_FAULT};
use crate::lab::{Lab, QuestionKind, Step, TrailSpec};
use crate::rca::{grade, right_choice, trail_from_sim};

/// The progress file in a lab directory.
pub const PROGRESS_FILE: &str = "progress.json";

/// The seed of a lab when none is given.
pub const DEFAULT_SEED: u64 = 1;

/// Where a lab keeps its state: `--dir`, else `$XDG_STATE_HOME/kgate/labs/<lab>`, else
/// `~/.local/state/kgate/labs/<lab>`.
pub fn default_dir(lab: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from(".kgate-state"));
    base.join("kgate").join("labs").join(lab)
}

/// Settings of a runner invocation.
#[derive(Debug, Clone)]
pub struct Options {
    /// The lab directory.
    pub dir: PathBuf,
    /// Where the lab gateway listens.
    pub listen: SocketAddr,
    /// The seed that picks a hidden fault (kept in the progress file once chosen).
    pub seed: Option<u64>,
    /// Publish the gateway's address in the lab directory (`gateway.addr`) for
    /// `kgate client-config`: the guided run and `--auto` do, a one-off check does not.
    pub publish: bool,
    /// Serve the live view for the instructor here (loopback only).
    pub view: Option<SocketAddr>,
    /// Post progress to this class view, with its class token.
    pub class: Option<crate::live::ClassTarget>,
    /// The name the class view shows.
    pub student: String,
}

impl Options {
    /// Options for `dir` with the defaults of a one-off run: no view, no class.
    pub fn new(dir: PathBuf, listen: SocketAddr) -> Self {
        Options {
            dir,
            listen,
            seed: None,
            publish: false,
            view: None,
            class: None,
            student: String::new(),
        }
    }
}

/// What the student has done so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// The lab id.
    pub lab: String,
    /// The seed (picks the hidden fault).
    pub seed: u64,
    /// The current step, 0-based.
    pub step: usize,
    /// Steps whose checks passed, 0-based.
    pub done: BTreeSet<usize>,
    /// Answers, by `step.question` (1-based step).
    pub answers: BTreeMap<String, String>,
    /// The baseline's p99 produce latency, ms: the median of its runs (checks after a fix
    /// compare with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_p99_ms: Option<f64>,
    /// Each baseline run's p99, ms: the student sees what the median came from, and the
    /// slowest healthy run is not mistaken for a symptom.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_runs_ms: Vec<f64>,
}

impl Progress {
    /// Reads the progress file of `dir`, or starts one.
    ///
    /// # Errors
    /// An unreadable or corrupt file, with the fix.
    pub fn load(dir: &Path, lab: &Lab, seed: Option<u64>) -> anyhow::Result<Progress> {
        let path = dir.join(PROGRESS_FILE);
        let mut progress = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<Progress>(&text).with_context(|| {
                format!(
                    "{} is damaged (run `kgate lab reset {}` to start over)",
                    path.display(),
                    lab.id
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Progress {
                lab: lab.id.clone(),
                seed: DEFAULT_SEED,
                ..Progress::default()
            },
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if progress.lab != lab.id {
            bail!(
                "{} belongs to lab {:?}, not {:?}: pass another --dir",
                dir.display(),
                progress.lab,
                lab.id
            );
        }
        if let Some(s) = seed {
            progress.seed = s;
        }
        progress.step = progress.step.min(lab.steps.len().saturating_sub(1));
        Ok(progress)
    }

    /// Writes it atomically.
    ///
    /// # Errors
    /// The directory is not writable.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(PROGRESS_FILE);
        let tmp = dir.join(".progress.json.tmp");
        let text = serde_json::to_string_pretty(self).context("cannot encode the progress")?;
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    fn key(step: usize, question: &str) -> String {
        format!("{}.{question}", step + 1)
    }
}

/// Deletes the lab directory's contents; returns the directory.
///
/// # Errors
/// A file that cannot be removed.
pub fn reset(lab: &Lab, dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    // Only a lab directory is wiped: one with our progress file, or empty.
    // (The lab command may have opened its log there already.)
    let is_lab_dir = dir.join(PROGRESS_FILE).exists()
        || std::fs::read_dir(dir)
            .map(|mut d| d.all(|e| e.is_ok_and(|e| e.file_name() == crate::env::LOG_FILE)))
            .unwrap_or(false);
    if !is_lab_dir {
        bail!(
            "{} is not a lab directory of {:?} (no {PROGRESS_FILE}); remove it yourself or pick another --dir",
            dir.display(),
            lab.id
        );
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    Ok(())
}

/// A lab being run: the lab, its directory, progress and live environment.
pub struct Session<'a, W: Write> {
    lab: &'a Lab,
    opts: Options,
    progress: Progress,
    env: Option<LabEnv>,
    rt: tokio::runtime::Runtime,
    out: W,
    /// Faults applied so far, as (step index) — the environment is at this step.
    applied_through: Option<usize>,
    evidence: Evidence,
    hints_shown: usize,
    /// The live view's state, when it is served.
    live: Option<std::sync::Arc<crate::live::Live>>,
    /// The live view's server (its token file goes with it).
    view_server: Option<crate::live::ViewServer>,
    /// The last check results of each step (for the views).
    last_results: BTreeMap<usize, Vec<crate::live::CheckView>>,
    /// The class view did not answer once (reported once).
    class_failed: bool,
}

impl<'a, W: Write> Session<'a, W> {
    /// Opens the lab directory (creating it) and its progress.
    ///
    /// # Errors
    /// The directory cannot be created or the progress read.
    pub fn open(lab: &'a Lab, opts: Options, out: W) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&opts.dir)
            .with_context(|| format!("cannot create the lab directory {}", opts.dir.display()))?;
        let progress = Progress::load(&opts.dir, lab, opts.seed)?;
        progress.save(&opts.dir)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let evidence = Evidence {
            baseline_p99_ms: progress.baseline_p99_ms,
            baseline_runs_ms: progress.baseline_runs_ms.clone(),
            ..Evidence::default()
        };
        Ok(Session {
            lab,
            opts,
            progress,
            env: None,
            rt,
            out,
            applied_through: None,
            evidence,
            hints_shown: 0,
            live: None,
            view_server: None,
            last_results: BTreeMap::new(),
            class_failed: false,
        })
    }

    /// The progress so far.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    fn step(&self, i: usize) -> anyhow::Result<&'a Step> {
        self.lab.steps.get(i).with_context(|| {
            format!(
                "lab {} has steps 1 to {}",
                self.lab.id,
                self.lab.steps.len()
            )
        })
    }

    /// Starts the environment (if needed) and brings it to step `i`: applies the faults of
    /// the steps up to `i` not applied yet.
    fn enter(&mut self, i: usize) -> anyhow::Result<()> {
        if self.env.is_none() {
            let env = self.rt.block_on(LabEnv::start(
                &self.lab.environment,
                &self.opts.dir,
                self.opts.listen,
                self.opts.publish,
            ))?;
            if let Some(addr) = self.opts.view {
                let live = std::sync::Arc::new(crate::live::Live::new(
                    env.cluster_bootstrap().to_owned(),
                    env.topics().iter().map(|(t, _)| t.clone()).collect(),
                    env.fault_table(),
                    (env.timings_handle(), env.reads_handle()),
                ));
                match self
                    .rt
                    .block_on(crate::live::serve_live(addr, live.clone()))
                {
                    Ok(server) => {
                        self.say(&format!("live view: http://{}/", server.addr));
                        self.live = Some(live);
                        // Kept for its token file, which goes when the lab ends.
                        self.view_server = Some(server);
                    }
                    Err(e) => self.say(&format!("(no live view: {e})")),
                }
            }
            self.env = Some(env);
            self.applied_through = None;
        }
        let from = self.applied_through.map_or(0, |a| a + 1);
        for s in from..=i {
            let step = self.step(s)?;
            let mut faults = step.faults.clone();
            if step.variant_faults {
                if let Some(v) = self.lab.variant(self.progress.seed) {
                    faults.extend(v.faults.iter().cloned());
                }
            }
            if step.variant_fixed {
                if let Some(v) = self.lab.variant(self.progress.seed) {
                    faults.extend(v.faults.iter().filter_map(|f| f.undo()));
                }
                if s == i {
                    self.say("  [fix] the operations team applies the fix to the cluster.");
                }
            }
            for f in &faults {
                if let Some(env) = self.env.as_mut() {
                    if step.variant_faults || step.variant_fixed {
                        // `status` must not give the hidden fault (or its repair) away.
                        env.apply_hidden(f)?;
                    } else {
                        env.apply(f)?;
                    }
                }
                if s == i && !step.variant_faults && !step.variant_fixed {
                    let line = format!("  [fault] {}", f.describe());
                    self.say(&line);
                }
            }
            if step.variant_fixed {
                if let Some(env) = self.env.as_mut() {
                    env.faults.retain(|d| d != HIDDEN_FAULT);
                }
            }
            let hidden = step.variant_faults && self.lab.variant(self.progress.seed).is_some();
            if hidden {
                // Even a variant without cluster faults (a slow consumer) shows the same
                // line, so `status` tells nothing about which one it is.
                if let Some(env) = self.env.as_mut() {
                    if !env.faults.iter().any(|d| d == HIDDEN_FAULT) {
                        env.faults.push(HIDDEN_FAULT.to_owned());
                    }
                }
            }
            if hidden && s == i {
                self.say("  [fault] something is now wrong in the cluster; find out what.");
            }
        }
        if self.applied_through.is_none_or(|a| a < i) {
            self.applied_through = Some(i);
        }
        self.publish_views(i);
        Ok(())
    }

    /// Each step's state for the views: done, failed (its last check), current, todo.
    fn step_views(&self, current: usize, with_checks: bool) -> Vec<crate::live::StepView> {
        self.lab
            .steps
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let results = self.last_results.get(&k);
                let state = if self.progress.done.contains(&k) {
                    "done"
                } else if results.is_some_and(|r| r.iter().any(|c| !c.passed)) {
                    "failed"
                } else if k == current {
                    "current"
                } else {
                    "todo"
                };
                crate::live::StepView {
                    title: s.title.clone(),
                    state: state.into(),
                    checks: if with_checks {
                        results.cloned().unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }

    /// Brings the live view and the class view up to date with step `current`.
    fn publish_views(&mut self, current: usize) {
        if let (Some(live), Some(env)) = (&self.live, &self.env) {
            let hidden = self
                .lab
                .variant(self.progress.seed)
                .filter(|_| env.faults.iter().any(|f| f == HIDDEN_FAULT))
                .map(|v| vec![format!("{} — {}", v.name, v.summary.trim())])
                .unwrap_or_default();
            let steps = self.step_views(current, true);
            if let Ok(mut s) = live.status.lock() {
                s.lab = self.lab.id.clone();
                s.steps = steps;
                s.faults = env.faults.clone();
                s.hidden = hidden;
                s.hidden_rules = env.hidden_rules();
                s.lab_rules = env.lab_rule_ids();
                s.health = env.health.clone();
                s.lag = self.evidence.last_lag.clone();
                s.lag_at = self.evidence.last_lag_at;
                s.audit_log = env.audit_path();
            }
        }
        if let Some(url) = self.opts.class.clone() {
            let progress = crate::live::Progress {
                student: self.opts.student.clone(),
                lab: self.lab.id.clone(),
                steps: self.step_views(current, false),
            };
            if let Err(e) = crate::live::post_progress(&url, &progress) {
                if !self.class_failed {
                    self.class_failed = true;
                    self.say(&format!("({e})"));
                }
            }
        }
    }

    /// What the hidden variant changes in step `i`'s checks.
    fn variant_context(&self, i: usize) -> VariantContext {
        let steps = self.lab.steps.iter().take(i + 1);
        let injected = steps
            .rev()
            .find(|s| s.variant_faults || s.variant_fixed)
            .is_some_and(|s| s.variant_faults);
        match self.lab.variant(self.progress.seed).filter(|_| injected) {
            Some(v) => VariantContext {
                sim: v.sim.clone(),
                processing_ms: v.processing_ms,
            },
            None => VariantContext::default(),
        }
    }

    fn sync(&mut self) -> anyhow::Result<()> {
        let Some(env) = self.env.as_mut() else {
            return Ok(());
        };
        if let Some(line) = self.rt.block_on(env.sync())? {
            self.say(&format!("  {line}"));
        }
        Ok(())
    }

    /// Runs the checks and grades the questions of step `i`; prints each result.
    ///
    /// # Errors
    /// The environment cannot be brought up. Failed checks are `Ok` with `passed == false`.
    pub fn check(&mut self, i: usize) -> anyhow::Result<Vec<CheckResult>> {
        self.enter(i)?;
        self.sync()?;
        let step = self.step(i)?;
        let extra_sim = self.variant_context(i);
        let mut results = Vec::new();
        if let Some(n) = self
            .env
            .as_ref()
            .map(LabEnv::student_rule_count)
            .filter(|n| *n > 0)
        {
            self.say(&format!(
                "  (note: {n} fault rule(s) of your own are in force and shape these checks; `fault clear` removes them)"
            ));
        }
        for check in &step.checks {
            let line = format!("  … {}", check_name(check));
            self.say(&line);
            let Some(env) = self.env.as_mut() else {
                bail!("the lab environment is not running");
            };
            let r = self
                .rt
                .block_on(run_check(env, check, &extra_sim, &mut self.evidence));
            self.print_result(&r);
            results.push(r);
        }
        if self.evidence.baseline_p99_ms != self.progress.baseline_p99_ms
            || self.evidence.baseline_runs_ms != self.progress.baseline_runs_ms
        {
            self.progress.baseline_p99_ms = self.evidence.baseline_p99_ms;
            self.progress.baseline_runs_ms = self.evidence.baseline_runs_ms.clone();
            self.progress.save(&self.opts.dir)?;
        }
        let trail = self.trail(i);
        for q in &step.questions {
            let answer = self
                .progress
                .answers
                .get(&Progress::key(i, &q.id))
                .cloned()
                .unwrap_or_default();
            // The hidden fault decides what a right answer mentions, when the lab says so.
            let variant_accept = self
                .lab
                .variant(self.progress.seed)
                .filter(|_| self.lab.steps.iter().take(i + 1).any(|s| s.variant_faults))
                .and_then(|v| v.accept.get(&q.id));
            let g = match variant_accept {
                Some(accept) => {
                    let mut q = q.clone();
                    q.accept = accept.clone();
                    grade(&q, &answer, trail.as_ref(), &self.evidence)
                }
                None => grade(q, &answer, trail.as_ref(), &self.evidence),
            };
            let r = CheckResult {
                name: format!("question {}: {}", q.id, first_line(&q.prompt)),
                passed: g.passed,
                detail: g.feedback.join("\n"),
            };
            self.print_result(&r);
            results.push(r);
        }
        if results.iter().all(|r| r.passed) {
            self.progress.done.insert(i);
            self.progress.save(&self.opts.dir)?;
        }
        self.last_results.insert(
            i,
            results
                .iter()
                .map(|r| crate::live::CheckView {
                    name: r.name.clone(),
                    passed: r.passed,
                })
                .collect(),
        );
        self.publish_views(i);
        Ok(results)
    }

    fn print_result(&mut self, r: &CheckResult) {
        let mark = if r.passed { "✔" } else { "✘" };
        let mut text = format!("  {mark} {}", r.name);
        for line in r.detail.lines() {
            text.push_str(&format!("\n      {line}"));
        }
        self.say(&text);
    }

    /// The trail root-cause questions of step `i` are graded against.
    fn trail(&self, i: usize) -> Option<TrailSpec> {
        let step = self.lab.steps.get(i)?;
        if let Some(t) = &step.trail {
            return Some(t.clone());
        }
        if self.lab.steps.iter().take(i + 1).any(|s| s.variant_faults) {
            if let Some(v) = self.lab.variant(self.progress.seed) {
                return Some(v.trail.clone());
            }
        }
        let report = self.evidence.sim.as_ref()?;
        report.trails.first().map(trail_from_sim)
    }

    /// Records an answer.
    ///
    /// # Errors
    /// No such question, or the progress cannot be saved.
    pub fn answer(&mut self, i: usize, question: &str, text: &str) -> anyhow::Result<()> {
        let step = self.step(i)?;
        if !step.questions.iter().any(|q| q.id == question) {
            let ids: Vec<&str> = step.questions.iter().map(|q| q.id.as_str()).collect();
            bail!(
                "step {} has no question {question:?} (its questions: {})",
                i + 1,
                if ids.is_empty() {
                    "none".into()
                } else {
                    ids.join(", ")
                }
            );
        }
        self.progress
            .answers
            .insert(Progress::key(i, question), text.trim().to_owned());
        self.progress.save(&self.opts.dir)
    }

    /// Runs step `i`'s solution: files, commands, and the model answers.
    ///
    /// # Errors
    /// A command that fails, naming the step.
    pub fn solve(&mut self, i: usize) -> anyhow::Result<()> {
        let step = self.step(i)?;
        for f in &step.files {
            let path = self.opts.dir.join(&f.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&path, &f.content)
                .with_context(|| format!("cannot write {}", path.display()))?;
            self.say(&format!("  wrote {}", f.path));
        }
        let fix: Vec<crate::lab::CommandSpec> = if step.variant_fix {
            self.lab
                .variant(self.progress.seed)
                .map(|v| v.fix.clone())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        for c in step.commands.iter().chain(&fix) {
            self.say(&format!("  $ {}", c.display()));
            let (ok, output) = run_kgate(&self.opts.dir, c.line(), c.stdin())?;
            for line in output.lines() {
                self.say(&format!("    {line}"));
            }
            if !ok {
                bail!(
                    "{}: step {} ({:?}): command `{}` failed",
                    self.lab.source,
                    i + 1,
                    step.title,
                    c.line()
                );
            }
        }
        Ok(())
    }

    /// Fills in the model answers of step `i` (after its checks ran, for computed answers).
    fn model_answers(&mut self, i: usize) -> anyhow::Result<()> {
        let step = self.step(i)?;
        let variant = if self.lab.steps.iter().take(i + 1).any(|s| s.variant_faults) {
            self.lab.variant(self.progress.seed)
        } else {
            None
        };
        for q in &step.questions {
            let answer = variant
                .and_then(|v| v.answers.get(&q.id).cloned())
                .or_else(|| match q.kind {
                    QuestionKind::Choice => right_choice(q, &self.evidence),
                    _ => q.answer.clone(),
                })
                .unwrap_or_default();
            self.say(&format!(
                "  answer {}: {}",
                q.id,
                answer.replace('\n', " / ")
            ));
            self.progress
                .answers
                .insert(Progress::key(i, &q.id), answer);
        }
        self.progress.save(&self.opts.dir)
    }

    fn header(&mut self, i: usize) -> anyhow::Result<()> {
        let step = self.step(i)?;
        let n = self.lab.steps.len();
        let mut text = format!(
            "\n== Step {}/{n}: {} ==\n\n{}",
            i + 1,
            step.title,
            step.text.trim()
        );
        for q in &step.questions {
            text.push_str(&format!(
                "\n\nQuestion {} ({}): {}",
                q.id,
                kind_name(q.kind),
                q.prompt.trim()
            ));
            for (k, o) in q.options.iter().enumerate() {
                let letter = char::from(b'a' + (k as u8 % 26));
                text.push_str(&format!("\n  {letter}) {o}"));
            }
        }
        self.say(&text);
        Ok(())
    }

    /// Stops the environment.
    pub fn close(mut self) {
        if let Some(env) = self.env.take() {
            self.rt.block_on(env.stop());
        }
    }

    /// `--auto`: every step's solution, then its checks; the first failure ends the run.
    ///
    /// # Errors
    /// The first failed check, naming the file, step and check.
    pub fn auto(&mut self) -> anyhow::Result<()> {
        // Only a lab with hidden faults has a seed of its own; the simulator runs of a lab
        // print their scenario's seed, a different thing, so this names which is which.
        let title = match self.lab.variant(self.progress.seed) {
            Some(_) => format!(
                "{} — {} (automatic run; lab seed {} picks the hidden fault)",
                self.lab.id, self.lab.title, self.progress.seed
            ),
            None => format!("{} — {} (automatic run)", self.lab.id, self.lab.title),
        };
        self.say(&title);
        for i in 0..self.lab.steps.len() {
            self.progress.step = i;
            self.header_short(i)?;
            self.enter(i)?;
            self.solve(i)?;
            self.sync()?;
            // Checks first: computed answers come from their evidence.
            let step = self.step(i)?;
            if !step.questions.is_empty() {
                let checks_only = self.run_checks_only(i)?;
                if let Some(failed) = checks_only {
                    return Err(failed);
                }
                self.model_answers(i)?;
            }
            let results = self.check(i)?;
            if let Some((k, r)) = results.iter().enumerate().find(|(_, r)| !r.passed) {
                bail!(
                    "{}: step {} ({:?}): check {} ({}) failed: {}",
                    self.lab.source,
                    i + 1,
                    step.title,
                    k + 1,
                    r.name,
                    first_line(&r.detail)
                );
            }
        }
        if let Some(v) = self.lab.variant(self.progress.seed) {
            let line = format!(
                "\nhidden fault of lab seed {}: {} — {}",
                self.progress.seed,
                v.name,
                v.summary.trim()
            );
            self.say(&line);
        }
        self.say(&format!("\nall {} steps passed", self.lab.steps.len()));
        Ok(())
    }

    fn run_checks_only(&mut self, i: usize) -> anyhow::Result<Option<anyhow::Error>> {
        let step = self.step(i)?;
        if !step
            .checks
            .iter()
            .any(|c| matches!(c, crate::lab::CheckSpec::Sim { .. }))
        {
            return Ok(None);
        }
        let extra_sim = self.variant_context(i);
        for check in step
            .checks
            .iter()
            .filter(|c| matches!(c, crate::lab::CheckSpec::Sim { .. }))
        {
            let Some(env) = self.env.as_mut() else {
                bail!("the lab environment is not running");
            };
            let r = self
                .rt
                .block_on(run_check(env, check, &extra_sim, &mut self.evidence));
            if !r.passed {
                return Ok(Some(anyhow::anyhow!(
                    "{}: step {} ({:?}): check ({}) failed: {}",
                    self.lab.source,
                    i + 1,
                    step.title,
                    r.name,
                    first_line(&r.detail)
                )));
            }
        }
        Ok(None)
    }

    fn header_short(&mut self, i: usize) -> anyhow::Result<()> {
        let step = self.step(i)?;
        let text = format!(
            "\n== Step {}/{}: {} ==",
            i + 1,
            self.lab.steps.len(),
            step.title
        );
        self.say(&text);
        Ok(())
    }

    /// `kgate lab check <lab> --step N`: the checks of one step (1-based), in a fresh
    /// environment built from the lab directory. Returns whether they all passed.
    ///
    /// # Errors
    /// The environment cannot start.
    pub fn check_step(&mut self, n: usize) -> anyhow::Result<bool> {
        if n == 0 || n > self.lab.steps.len() {
            bail!(
                "lab {} has steps 1 to {}",
                self.lab.id,
                self.lab.steps.len()
            );
        }
        let i = n - 1;
        let step = self.step(i)?;
        let line = format!("{} step {n}: {}", self.lab.id, step.title);
        self.say(&line);
        // Questions graded from a simulator run need its report: run the step's checks once.
        let results = self.check(i)?;
        let failed = results.iter().filter(|r| !r.passed).count();
        if failed == 0 {
            self.say(&format!("step {n} is done"));
        } else {
            self.say(&format!(
                "step {n}: {failed} of {} not done yet",
                results.len()
            ));
        }
        Ok(failed == 0)
    }

    /// The guided run: reads commands from `input` until `quit` or the end.
    ///
    /// # Errors
    /// The environment cannot start.
    pub fn interactive(&mut self, input: &mut dyn BufRead) -> anyhow::Result<()> {
        let intro = format!(
            "{} ({} min)\n\n{}\n\nYour lab directory: {}\nRun the step's commands there in another terminal (`cd {}`).\nThe lab gateway's log is {} there.",
            self.lab.title,
            self.lab.minutes,
            self.lab.intro.trim(),
            self.opts.dir.display(),
            self.opts.dir.display(),
            crate::env::LOG_FILE
        );
        self.say(&intro);
        self.say("\nStarting the lab environment (a 3-broker cluster and the gateway)…");
        let mut i = self.progress.step;
        if let Err(e) = self.enter(i) {
            // Most often a mistake in kgate.toml: show it and let `check` try again.
            self.say(&format!("error: {e:#}"));
        }
        if let Some(env) = &self.env {
            let line = format!("gateway: {}", env.describe());
            self.say(&line);
        }
        self.say(
            "commands: check, hint, solution, do, answer, next, back, show, status, fault, quit (`help`)",
        );
        self.header(i)?;
        self.hints_shown = 0;
        loop {
            let _ = write!(
                self.out,
                "\nkgate lab [{}/{}]> ",
                i + 1,
                self.lab.steps.len()
            );
            let _ = self.out.flush();
            let mut line = String::new();
            if input
                .read_line(&mut line)
                .context("cannot read the terminal")?
                == 0
            {
                break;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [] => {}
                ["check" | "c"] => match self.check(i) {
                    Ok(results) if results.iter().all(|r| r.passed) => {
                        self.say("\nStep done. Type `next` to go on.");
                    }
                    Ok(_) => self
                        .say("\nNot done yet: fix what failed and `check` again (`hint` helps)."),
                    Err(e) => self.say(&format!("error: {e:#}")),
                },
                ["hint" | "h"] => {
                    let step = self.step(i)?;
                    match step.hints.get(self.hints_shown) {
                        Some(h) => {
                            let text = format!(
                                "hint {}/{}: {}",
                                self.hints_shown + 1,
                                step.hints.len(),
                                h.trim()
                            );
                            self.hints_shown += 1;
                            self.say(&text);
                        }
                        None => self.say("no more hints; type `solution`"),
                    }
                }
                ["solution" | "s"] => {
                    let text = solution_text(self.lab, i, self.progress.seed);
                    self.say(&text);
                }
                ["do"] => {
                    if let Err(e) = self.solve(i) {
                        self.say(&format!("error: {e:#}"));
                    }
                }
                ["answer" | "a", rest @ ..] => {
                    let step = self.step(i)?;
                    let answers = self.progress.answers.clone();
                    let saved = |q: &crate::lab::Question| {
                        answers
                            .get(&Progress::key(i, &q.id))
                            .filter(|a| !a.trim().is_empty())
                            .cloned()
                    };
                    if step.questions.is_empty() {
                        self.say("this step has no questions");
                        continue;
                    }
                    let unknown: Vec<&str> = rest
                        .iter()
                        .copied()
                        .filter(|id| !step.questions.iter().any(|q| q.id == *id))
                        .collect();
                    if !unknown.is_empty() {
                        let ids: Vec<&str> = step.questions.iter().map(|q| q.id.as_str()).collect();
                        self.say(&format!(
                            "no question {} in this step (its questions: {})",
                            unknown.join(", "),
                            ids.join(", ")
                        ));
                        continue;
                    }
                    // `answer` asks what is not answered yet; `answer ID` asks that one again.
                    let wanted: Vec<_> = step
                        .questions
                        .iter()
                        .filter(|q| {
                            if rest.is_empty() {
                                saved(q).is_none()
                            } else {
                                rest.contains(&q.id.as_str())
                            }
                        })
                        .collect();
                    if wanted.is_empty() {
                        let ids: Vec<&str> = step.questions.iter().map(|q| q.id.as_str()).collect();
                        self.say(&format!(
                            "every question of this step has an answer; `answer ID` changes one ({}), `check` grades them",
                            ids.join(", ")
                        ));
                        continue;
                    }
                    let mut recorded = 0;
                    for q in wanted {
                        let previous = saved(q);
                        let how = match q.kind {
                            QuestionKind::Choice => "type a letter",
                            QuestionKind::Text => "one line",
                            QuestionKind::FiveWhys => "one \"why\" answer per line, from the problem down to the root cause; an empty line ends",
                            QuestionKind::Fishbone => "lines `category: cause`; an empty line ends",
                            QuestionKind::FaultTree => "`top event = event AND|OR event ...`; an empty line ends",
                        };
                        self.say(&format!("{} ({how})", q.prompt.trim()));
                        if let Some(p) = &previous {
                            self.say(&format!(
                                "  your answer so far: {}\n  (an empty line keeps it)",
                                p.replace('\n', " / ")
                            ));
                        }
                        let mut text = String::new();
                        loop {
                            let _ = write!(self.out, "  > ");
                            let _ = self.out.flush();
                            let mut l = String::new();
                            if input
                                .read_line(&mut l)
                                .context("cannot read the terminal")?
                                == 0
                            {
                                break;
                            }
                            if l.trim().is_empty() {
                                break;
                            }
                            text.push_str(&l);
                            if matches!(q.kind, QuestionKind::Choice | QuestionKind::Text) {
                                break;
                            }
                        }
                        if text.trim().is_empty() {
                            if previous.is_some() {
                                self.say(&format!("  {}: your answer is kept", q.id));
                            } else {
                                self.say(&format!("  {}: not answered", q.id));
                            }
                            continue;
                        }
                        self.answer(i, &q.id, &text)?;
                        recorded += 1;
                    }
                    if recorded > 0 {
                        self.say("recorded; type `check` to grade");
                    }
                }
                ["next" | "n"] => {
                    if i + 1 >= self.lab.steps.len() {
                        let done = self.progress.done.len();
                        self.say(&format!(
                            "That was the last step ({done} of {} done). Type `quit`.",
                            self.lab.steps.len()
                        ));
                        continue;
                    }
                    if !self.progress.done.contains(&i) {
                        self.say("(moving on although this step's checks have not passed)");
                    }
                    i += 1;
                    self.progress.step = i;
                    self.progress.save(&self.opts.dir)?;
                    self.hints_shown = 0;
                    self.header(i)?;
                    if let Err(e) = self.enter(i) {
                        self.say(&format!("error: {e:#}"));
                    }
                }
                ["back"] => {
                    i = i.saturating_sub(1);
                    self.progress.step = i;
                    self.progress.save(&self.opts.dir)?;
                    self.header(i)?;
                }
                ["show" | "text"] => self.header(i)?,
                ["status"] => {
                    let mut text = format!("lab directory: {}", self.opts.dir.display());
                    if let Some(env) = &self.env {
                        text.push_str(&format!("\ngateway: {}", env.describe()));
                        for f in &env.faults {
                            text.push_str(&format!("\nfault in force: {f}"));
                        }
                    }
                    let done: Vec<String> = self
                        .progress
                        .done
                        .iter()
                        .map(|d| (d + 1).to_string())
                        .collect();
                    text.push_str(&format!(
                        "\nsteps done: {}",
                        if done.is_empty() {
                            "none".into()
                        } else {
                            done.join(", ")
                        }
                    ));
                    self.say(&text);
                }
                ["fault", "clear"] => {
                    let msg = match self.env.as_mut() {
                        Some(env) => format!(
                            "{} of your fault rules removed (the lab's own faults stay)",
                            env.clear_student_faults()
                        ),
                        None => "the environment is not running; `check` starts it".into(),
                    };
                    self.say(&msg);
                }
                ["fault", rule @ ..] if !rule.is_empty() => {
                    if self.env.is_none() {
                        if let Err(e) = self.enter(i) {
                            self.say(&format!("error: {e:#}"));
                            continue;
                        }
                    }
                    let msg = match self
                        .env
                        .as_mut()
                        .map(|env| env.student_fault(&rule.join(" ")))
                    {
                        Some(Ok(text)) => {
                            format!("the gateway now injects: {text} (`fault clear` removes it)")
                        }
                        Some(Err(e)) => format!("error: {e:#}"),
                        None => "the environment is not running".into(),
                    };
                    self.say(&msg);
                }
                ["reveal"] => {
                    let msg = match &self.live {
                        Some(live) => {
                            if let Ok(mut s) = live.status.lock() {
                                s.revealed = true;
                            }
                            "the live view now shows the hidden fault"
                        }
                        None => "no live view is served (start the lab with --view 127.0.0.1:PORT)",
                    };
                    self.say(msg);
                }
                ["quit" | "q" | "exit"] => break,
                ["help" | "?"] => self.say(HELP),
                _ => self.say("unknown command; type `help`"),
            }
        }
        self.say("bye (your progress is saved; `kgate lab run` continues where you left off)");
        Ok(())
    }
}

/// What `solution` prints for step `i`: files, commands (with the hidden fault's fix in a fix
/// step), model answers (for root-cause questions, those of the hidden fault, which they name)
/// and why it works.
pub fn solution_text(lab: &Lab, i: usize, seed: u64) -> String {
    let Some(step) = lab.steps.get(i) else {
        return String::new();
    };
    let variant = if lab.steps.iter().take(i + 1).any(|s| s.variant_faults) {
        lab.variant(seed)
    } else {
        None
    };
    let mut text = String::from("solution:");
    for f in &step.files {
        text.push_str(&format!(
            "\n  write {}:\n{}",
            f.path,
            indent(&f.content, "    ")
        ));
    }
    let fix = variant
        .filter(|_| step.variant_fix)
        .map(|v| v.fix.as_slice())
        .unwrap_or_default();
    for c in step.commands.iter().chain(fix) {
        text.push_str(&format!("\n  $ {}", c.display()));
    }
    let mut gives_away = false;
    for q in &step.questions {
        let answer = match variant.and_then(|v| v.answers.get(&q.id)) {
            Some(a) => {
                gives_away = true;
                Some(a.clone())
            }
            None => q.answer.clone(),
        };
        let answer = answer.or_else(|| {
            q.answer_from_sim.as_ref().map(|from| {
                format!("the option that is {from} in this step's simulator run (`check` shows it)")
            })
        });
        if let Some(a) = answer {
            let a = a.trim();
            if a.contains('\n') {
                text.push_str(&format!("\n  {}:\n{}", q.id, indent(a, "    ")));
            } else {
                text.push_str(&format!("\n  {}: {a}", q.id));
            }
        }
    }
    if gives_away {
        text.push_str(
            "\n  (these model answers are for the hidden fault of your seed: they give it away)",
        );
    }
    if !step.explain.trim().is_empty() {
        text.push_str(&format!("\n\n{}", step.explain.trim()));
    }
    text.push_str("\n(type `do` to run it for you)");
    text
}

const HELP: &str = "commands:
  check      is this step done? (runs its checks and grades its answers)
  hint       the next hint
  solution   show the solution; `do` runs it for you
  answer     answer this step's questions
  next/back  move between steps
  show       print this step again
  status     gateway, faults in force, steps done
  fault RULE the gateway injects a fault, e.g. `fault latency=300ms topic=telemetry`
             (`kgate fault --help` lists the rules); `fault clear` removes them
  reveal     the live view (--view) shows the hidden fault to the class
  quit       leave (progress is kept)";

fn kind_name(k: QuestionKind) -> &'static str {
    match k {
        QuestionKind::Choice => "choice",
        QuestionKind::Text => "short answer",
        QuestionKind::FiveWhys => "5 whys",
        QuestionKind::Fishbone => "fishbone",
        QuestionKind::FaultTree => "fault tree",
    }
}

fn first_line(s: &str) -> &str {
    s.trim().lines().next().unwrap_or("")
}

fn indent(s: &str, pad: &str) -> String {
    s.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dir_uses_xdg_state_home() {
        // Read-only use of the variables: the test only checks the shape.
        let d = default_dir("secure-the-cluster");
        assert!(
            d.ends_with("kgate/labs/secure-the-cluster"),
            "{}",
            d.display()
        );
    }

    #[test]
    fn progress_round_trips_and_refuses_another_lab() {
        let dir = tempfile::tempdir().unwrap();
        let labs = Lab::embedded().unwrap();
        let mut p = Progress::load(dir.path(), &labs[0], Some(5)).unwrap();
        p.answers.insert("2.q".into(), "x".into());
        p.save(dir.path()).unwrap();
        let again = Progress::load(dir.path(), &labs[0], None).unwrap();
        assert_eq!(again.seed, 5);
        assert_eq!(again.answers.get("2.q").map(String::as_str), Some("x"));
        let err = Progress::load(dir.path(), &labs[1], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("belongs to lab"), "{err}");
    }

    #[test]
    fn every_step_of_every_lab_has_a_solution_for_every_seed() {
        for lab in Lab::embedded().unwrap() {
            for seed in 1..=12 {
                for i in 0..lab.steps.len() {
                    let text = solution_text(&lab, i, seed);
                    let body = text
                        .trim_start_matches("solution:")
                        .trim_end_matches("(type `do` to run it for you)")
                        .trim();
                    assert!(
                        !body.is_empty(),
                        "{} step {} has an empty solution (seed {seed})",
                        lab.id,
                        i + 1
                    );
                }
            }
        }
    }

    #[test]
    fn reset_refuses_a_foreign_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious.txt"), "x").unwrap();
        let labs = Lab::embedded().unwrap();
        assert!(reset(&labs[0], dir.path()).is_err());
        assert!(dir.path().join("precious.txt").exists());
    }
}
