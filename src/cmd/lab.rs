//! `kgate lab`: guided webinar labs on the embedded cluster and the gateway.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use kgate_labs::runner::{default_dir, reset, Options, Session};
use kgate_labs::Lab;

/// Arguments of `kgate lab`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kgate lab list
  kgate lab run secure-the-cluster                 # guided: check, hint, solution, next, quit
  kgate lab check secure-the-cluster --step 3      # is step 3 done? (non-zero exit status if not)
  echo 'b' | kgate lab answer secure-the-cluster --step 6 --question default-deny
  kgate lab run delivery-guarantees --auto         # every solution and check, for instructors and CI
  kgate lab run ./my-lab.toml                      # a lab file of your own
  kgate lab new ./my-lab.toml                      # a commented lab file to start from
  kgate lab validate ./my-lab.toml                 # mistakes with file, line, step and field
  kgate lab reset secure-the-cluster

A lab keeps its files (certificates, users, policy, kgate.toml, progress.json) in
$XDG_STATE_HOME/kgate/labs/<lab> (default ~/.local/state/kgate/labs/<lab>), or in --dir. Run the
step's commands in that directory. The labs: secure-the-cluster, cloud-services,
delivery-guarantees, delayed-sensor-data, troubleshooting-catalogue.")]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

/// `kgate lab` subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// List the labs.
    List,
    /// Run a lab: guided in the terminal, or every step automatically with --auto.
    #[command(after_help = "Examples:
  kgate lab run secure-the-cluster                         # guided: check, hint, solution, next
  kgate lab run delayed-sensor-data --seed 4               # a given hidden fault
  kgate lab run delivery-guarantees --auto                 # every solution and check
  kgate lab run troubleshooting-catalogue --view 127.0.0.1:8090   # live view for the projector
  kgate lab run secure-the-cluster --class http://INSTRUCTOR:8080 --class-token TOKEN --student alice
  kgate lab run secure-the-cluster --class 'http://INSTRUCTOR:8080/?token=TOKEN' --student alice")]
    Run {
        #[command(flatten)]
        lab: LabRef,
        /// Run every step's solution and its checks; exit non-zero on the first failure.
        #[arg(long)]
        auto: bool,
        /// Where the lab gateway listens (default 127.0.0.1:19092; with --auto a free port).
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<SocketAddr>,
        /// Picks the hidden fault of labs that have one (kept for the lab's later checks).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Serve the live view for the instructor (a web page: cluster, rates, lag, faults,
        /// denials, checks) on this loopback address; it also takes `kgate fault --admin`.
        #[arg(long, value_name = "IP:PORT")]
        view: Option<SocketAddr>,
        /// Show your progress per step in the instructor's class view (`kgate lab serve`):
        /// http://HOST:PORT with --class-token, or the URL with ?token=TOKEN it printed.
        #[arg(long, value_name = "URL")]
        class: Option<String>,
        /// The class token the instructor's `kgate lab serve` printed (progress without it is
        /// refused).
        #[arg(long, value_name = "TOKEN", requires = "class")]
        class_token: Option<String>,
        /// Your name in the class view (default: $USER).
        #[arg(long, value_name = "NAME")]
        student: Option<String>,
    },
    /// Serve the class view: each student's progress per step, for the projector.
    #[command(after_help = "Examples:
  kgate lab serve                                  # http://127.0.0.1:8080, this machine only
  kgate lab serve --listen 0.0.0.0:8080            # students on the network post their progress
  kgate lab run secure-the-cluster --class http://INSTRUCTOR:8080 --class-token TOKEN --student alice

It prints a class token: students pass it with --class-token (or use the URL with ?token=TOKEN
it prints). Progress without it is refused (401), with another token too (403).")]
    Serve {
        /// Where to listen: loopback by default; an address on the class's network lets
        /// students' laptops reach it (it shows progress per step, nothing else).
        #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The class token students must pass (at least 16 characters), e.g. to keep last
        /// session's; default: a new random one.
        #[arg(long, value_name = "TOKEN")]
        class_token: Option<String>,
    },
    /// Check one step of a lab (non-zero exit status if it is not done).
    #[command(after_help = "Example:
  kgate lab check secure-the-cluster --step 3")]
    Check {
        #[command(flatten)]
        lab: LabRef,
        /// The step, from 1.
        #[arg(long, value_name = "N")]
        step: usize,
    },
    /// Record an answer to a step's question, read from stdin.
    Answer {
        #[command(flatten)]
        lab: LabRef,
        /// The step, from 1.
        #[arg(long, value_name = "N")]
        step: usize,
        /// The question id (shown with the step).
        #[arg(long, value_name = "ID")]
        question: String,
    },
    /// Delete a lab's files and progress, to start again.
    Reset {
        #[command(flatten)]
        lab: LabRef,
    },
    /// Operate the lab's cluster, from the lab directory: the fixes of a troubleshooting lab.
    #[command(after_help = "\
Example:
  kgate lab cluster move-leader sensors 2 1      # partition 2 of sensors led by broker 1

Operations:
  move-leader TOPIC PARTITION BROKER   move a partition's leadership (a preferred-leader change)
  restart-broker N                     start a broker that is down (same hardware)
  replace-broker N                     broker N on new hardware (a new disk), replicas caught up
  consumers N                          the consumer group runs N consumers sharing the partitions
  raise-quota                          lift the client quotas that throttle producers
  repair-network                       fix the congested network path

The running lab applies the operation before its next `check` (and a separate
`kgate lab check` replays them all): it is recorded in cluster-ops.txt.")]
    Cluster {
        /// The operation and its arguments.
        #[arg(value_name = "OPERATION", num_args = 1.., required = true)]
        operation: Vec<String>,
        /// The lab directory (default: the current directory).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Write a commented lab file to start from (it validates and passes --auto).
    #[command(after_help = "Example:
  kgate lab new ./my-lab.toml && kgate lab validate ./my-lab.toml && kgate lab run ./my-lab.toml --auto")]
    New {
        /// Where to write it (refused if it exists).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Check a lab file for mistakes.
    Validate {
        /// The lab file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Which lab and where its files live.
#[derive(Debug, Args)]
pub struct LabRef {
    /// A lab name from `kgate lab list`, or the path of a lab file.
    #[arg(value_name = "LAB")]
    pub name: String,
    /// The lab directory (default: $XDG_STATE_HOME/kgate/labs/<lab>).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl LabRef {
    fn resolve(&self) -> anyhow::Result<(Lab, PathBuf)> {
        let lab = Lab::find(&self.name)?;
        let dir = self.dir.clone().unwrap_or_else(|| default_dir(&lab.id));
        Ok((lab, dir))
    }
}

/// The log file of a lab command that runs the lab gateway (`run`, `check`): `gateway.log`
/// in the lab directory.
pub fn log_path(args: &LabArgs) -> Option<PathBuf> {
    let lab = match &args.command {
        LabCommand::Run { lab, .. } | LabCommand::Check { lab, .. } => lab,
        _ => return None,
    };
    let (_, dir) = lab.resolve().ok()?;
    // A check of a lab never started must not create its directory.
    if matches!(args.command, LabCommand::Check { .. }) && !dir.exists() {
        return None;
    }
    Some(dir.join(kgate_labs::env::LOG_FILE))
}

/// A step whose checks did not all pass: the exit status is non-zero.
#[derive(Debug)]
pub struct NotDone;

impl std::fmt::Display for NotDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the step is not done yet")
    }
}

impl std::error::Error for NotDone {}

fn free_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Runs `kgate lab`.
pub fn run(args: LabArgs) -> anyhow::Result<()> {
    match args.command {
        LabCommand::List => {
            for lab in Lab::embedded()? {
                println!("{:<28} {:>3} min  {}", lab.id, lab.minutes, lab.title);
                println!("{:<28}           {}", "", lab.summary);
            }
            println!("\nStart one with `kgate lab run <lab>`.");
            Ok(())
        }
        LabCommand::New { file } => {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
                .with_context(|| {
                    format!(
                        "cannot create {} (an existing file is never overwritten; pick another name)",
                        file.display()
                    )
                })?;
            std::io::Write::write_all(&mut out, kgate_labs::lab::TEMPLATE.as_bytes())
                .with_context(|| format!("cannot write {}", file.display()))?;
            println!(
                "wrote {f}: edit it, then\n  kgate lab validate {f}\n  kgate lab run {f} --auto\n  kgate lab run {f}",
                f = file.display()
            );
            Ok(())
        }
        LabCommand::Cluster { operation, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            if !dir.join(kgate_labs::runner::PROGRESS_FILE).exists() {
                bail!(
                    "{} is not a lab directory (no {}): run this where the lab keeps its files, or pass --dir",
                    dir.display(),
                    kgate_labs::runner::PROGRESS_FILE
                );
            }
            let op: kgate_labs::ops::ClusterOp = operation.join(" ").parse()?;
            kgate_labs::ops::record(&dir, &op).with_context(|| {
                format!(
                    "cannot write {}",
                    dir.join(kgate_labs::ops::OPS_FILE).display()
                )
            })?;
            println!("recorded `{op}`: the running lab applies it before its next check");
            Ok(())
        }
        LabCommand::Validate { file } => {
            let lab = Lab::load(&file)?;
            println!(
                "{}: lab {:?} is valid ({} steps)",
                file.display(),
                lab.id,
                lab.steps.len()
            );
            Ok(())
        }
        LabCommand::Reset { lab } => {
            let (lab, dir) = lab.resolve()?;
            reset(&lab, &dir)?;
            println!("lab {} reset ({} removed)", lab.id, dir.display());
            Ok(())
        }
        LabCommand::Serve {
            listen,
            class_token,
        } => {
            let token = class_token.unwrap_or_else(kgate_labs::live::class_token);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(async {
                let server = kgate_labs::live::serve_class(listen, &token).await?;
                let addr = server.addr;
                println!("class view: http://{addr}/");
                println!("class token: {token}");
                println!(
                    "students: kgate lab run LAB --class http://{addr} --class-token {token} --student NAME"
                );
                println!("      or: kgate lab run LAB --class 'http://{addr}/?token={token}' --student NAME");
                tokio::signal::ctrl_c()
                    .await
                    .context("cannot wait for Ctrl-C")?;
                anyhow::Ok(())
            })
        }
        LabCommand::Run {
            lab,
            auto,
            listen,
            seed,
            view,
            class,
            class_token,
            student,
        } => {
            // A missing or doubled token is a mistake in the command: said before the lab
            // starts, not after the first step.
            let class = class
                .map(|url| kgate_labs::live::ClassTarget::parse(&url, class_token.as_deref()))
                .transpose()?;
            let (lab, dir) = lab.resolve()?;
            if auto {
                reset(&lab, &dir)?;
            }
            let listen = listen.unwrap_or_else(|| {
                if auto {
                    free_port()
                } else {
                    SocketAddr::from(([127, 0, 0, 1], 19092))
                }
            });
            let student = student
                .or_else(|| std::env::var("USER").ok())
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "student".into());
            let opts = Options {
                seed,
                publish: true,
                view,
                class,
                student,
                ..Options::new(dir, listen)
            };
            let stdout = std::io::stdout();
            let mut session = Session::open(&lab, opts, stdout.lock())?;
            let result = if auto {
                session.auto()
            } else {
                let stdin = std::io::stdin();
                let mut input = stdin.lock();
                session.interactive(&mut input)
            };
            session.close();
            result
        }
        LabCommand::Check { lab, step } => {
            let (lab, dir) = lab.resolve()?;
            if !dir.exists() {
                bail!(
                    "lab {} has not been started in {} (run `kgate lab run {}` first, or pass --dir)",
                    lab.id,
                    dir.display(),
                    lab.id
                );
            }
            let opts = Options::new(dir, free_port());
            let stdout = std::io::stdout();
            let mut session = Session::open(&lab, opts, stdout.lock())?;
            let done = session.check_step(step);
            session.close();
            if done? {
                Ok(())
            } else {
                Err(NotDone.into())
            }
        }
        LabCommand::Answer {
            lab,
            step,
            question,
        } => {
            let (lab, dir) = lab.resolve()?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read the answer from stdin")?;
            if step == 0 {
                bail!("steps count from 1");
            }
            let opts = Options::new(dir, free_port());
            let mut session = Session::open(&lab, opts, std::io::sink())?;
            session.answer(step - 1, &question, &text)?;
            println!("answer to {question} of step {step} recorded; `kgate lab check {} --step {step}` grades it", lab.id);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LabArgs,
    }

    #[test]
    fn parses_run_auto_with_dir() {
        let cli = Cli::parse_from([
            "kgate",
            "run",
            "secure-the-cluster",
            "--auto",
            "--dir",
            "/tmp/x",
        ]);
        match cli.args.command {
            LabCommand::Run { lab, auto, .. } => {
                assert!(auto);
                assert_eq!(lab.dir, Some(PathBuf::from("/tmp/x")));
            }
            _ => panic!("not run"),
        }
    }

    #[test]
    fn parses_check_step() {
        let cli = Cli::parse_from(["kgate", "check", "cloud-services", "--step", "2"]);
        assert!(matches!(
            cli.args.command,
            LabCommand::Check { step: 2, .. }
        ));
    }
}
