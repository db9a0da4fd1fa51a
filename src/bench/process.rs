//! A `kgate` child process for benchmarks, and what `/proc` says about it.
//!
//! Running the gateway as a child of its own makes its CPU time and memory its own: nothing
//! of the clients or of the embedded cluster (which live in the benchmark process) is counted.
//! [`Child`] kills the process when dropped, so an error or a panic anywhere in a benchmark
//! never leaves a gateway behind.

use std::ffi::OsString;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A running `kgate` child process; killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Child {
    name: String,
    pid: u32,
    child: Mutex<std::process::Child>,
    log: PathBuf,
}

impl Child {
    /// Starts `current_exe() args...` with `KGATE_LOG=level` (`info` is `kgate proxy`'s
    /// default), stdin and stdout closed, and stderr written to `log`.
    ///
    /// # Errors
    /// When the binary cannot be found or started.
    pub fn spawn(name: &str, args: &[OsString], log: &Path, level: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the kgate binary")?;
        Self::spawn_exe(&exe, name, args, log, level)
    }

    /// [`Child::spawn`] with another `kgate` binary (an older build, to compare two builds
    /// with one benchmark).
    ///
    /// # Errors
    /// When the binary cannot be started.
    pub fn spawn_exe(
        exe: &Path,
        name: &str,
        args: &[OsString],
        log: &Path,
        level: &str,
    ) -> anyhow::Result<Self> {
        let stderr =
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(exe)
            .args(args)
            .env("KGATE_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {} ({name})", exe.display()))?;
        Ok(Self {
            name: name.to_owned(),
            pid: child.id(),
            child: Mutex::new(child),
            log: log.to_owned(),
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn exited(&self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(child.try_wait()?)
    }

    /// Waits until every address in `addrs` accepts TCP connections.
    ///
    /// # Errors
    /// If the child exits first (with the end of its log), or after `timeout`.
    pub fn wait_listening(&self, addrs: &[SocketAddr], timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited()? {
                bail!(
                    "{} exited before it was ready ({status}); its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            let ready = addrs
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {addrs:?} within {timeout:?}; its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails if the child has exited.
    ///
    /// # Errors
    /// The exit status and the end of its log.
    pub fn check_alive(&self) -> anyhow::Result<()> {
        if let Some(status) = self.exited()? {
            bail!(
                "{} exited during the benchmark ({status}); its log:\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }

    /// CPU time (user + system) the child has used so far.
    ///
    /// # Errors
    /// When `/proc/<pid>/stat` cannot be read.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_time(self.pid())
    }

    /// How long the child's threads have run and waited for a CPU so far; `None` where the
    /// kernel keeps no scheduler statistics.
    pub fn sched(&self) -> Option<Sched> {
        sched(self.pid())
    }

    /// Resident memory (VmRSS) of the child, in KiB.
    ///
    /// # Errors
    /// When `/proc/<pid>/status` cannot be read.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        status_kib(self.pid(), "VmRSS")
    }

    /// Open file descriptors of the child.
    ///
    /// # Errors
    /// When `/proc/<pid>/fd` cannot be read.
    pub fn open_fds(&self) -> anyhow::Result<usize> {
        let dir = format!("/proc/{}/fd", self.pid());
        Ok(std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {dir}"))?
            .count())
    }

    /// Size of the child's log (its stderr) in bytes so far.
    pub fn log_bytes(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// The child's whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines the child wrote to stderr.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        if tail.is_empty() {
            "(empty)".into()
        } else {
            tail
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 if unknown).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process (all its threads, living and dead).
///
/// # Errors
/// When `/proc/<pid>/stat` cannot be read or parsed.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("{path}: no ')'"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("{path}: field {} unreadable", i + 3))
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(total as f64 / clock_ticks()))
}

/// How long a process's threads ran on a CPU and waited, runnable, for one (the first two
/// fields of `/proc/<pid>/task/<tid>/schedstat`), and how many times they were scheduled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sched {
    /// Nanoseconds on a CPU.
    pub run_ns: u64,
    /// Nanoseconds runnable but waiting for a CPU (the run queue).
    pub wait_ns: u64,
    /// Times a thread was given a CPU.
    pub slices: u64,
}

impl Sched {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Sched) -> Sched {
        Sched {
            run_ns: self.run_ns.saturating_sub(earlier.run_ns),
            wait_ns: self.wait_ns.saturating_sub(earlier.wait_ns),
            slices: self.slices.saturating_sub(earlier.slices),
        }
    }

    /// Share of the runnable time spent waiting for a CPU, in per cent: near 0 on an idle
    /// machine, 50 when the threads wait as long as they run.
    pub fn wait_percent(self) -> f64 {
        let runnable = self.run_ns + self.wait_ns;
        if runnable == 0 {
            return f64::NAN;
        }
        self.wait_ns as f64 * 100.0 / runnable as f64
    }
}

/// The sum of [`Sched`] over a process's threads now alive; `None` when `/proc` has no
/// `schedstat` (a kernel without scheduler statistics) or the process is gone.
pub fn sched(pid: u32) -> Option<Sched> {
    let mut total = Sched::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        // A thread may exit between the listing and the read: skip it.
        let Ok(line) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let fields: Vec<u64> = line
            .split_whitespace()
            .map_while(|f| f.parse().ok())
            .collect();
        let [run, wait, slices] = fields[..] else {
            return None;
        };
        total.run_ns += run;
        total.wait_ns += wait;
        total.slices += slices;
    }
    Some(total)
}

/// A `kB` line of `/proc/<pid>/status` (VmRSS, VmHWM, ...), in KiB.
///
/// # Errors
/// When the file cannot be read or has no such line.
pub fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?;
            value.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .with_context(|| format!("{path}: no {key} line"))
}

/// A loopback port `p` such that `p..p + count` are all free right now.
///
/// # Errors
/// When no such block was found after many tries.
pub fn free_port_block(count: u16) -> anyhow::Result<u16> {
    for _ in 0..100 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = first.local_addr()?.port();
        if u32::from(port) + u32::from(count) > 65_535 {
            continue;
        }
        let rest: Result<Vec<_>, _> = (1..count)
            .map(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, port + i)))
            .collect();
        if rest.is_ok() {
            return Ok(port);
        }
    }
    bail!("no block of {count} free loopback ports found")
}

/// Raises the soft limit on open files to at least `needed` (children inherit it).
///
/// Returns the soft limit now in force.
///
/// # Errors
/// When the hard limit is below `needed`, with what to do about it.
pub fn raise_open_files(needed: u64, what: &str) -> anyhow::Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE
        .get()
        .context("cannot read RLIMIT_NOFILE")?;
    if soft >= needed {
        return Ok(soft);
    }
    if hard < needed {
        bail!(
            "{what} needs {needed} open files, but the hard limit (RLIMIT_NOFILE) is {hard}: \
             raise it (as root: `ulimit -Hn {needed}`, or LimitNOFILE= / nofile in \
             limits.conf) or ask for fewer"
        );
    }
    rlimit::Resource::NOFILE
        .set(needed, hard)
        .with_context(|| format!("cannot raise the open-files limit from {soft} to {needed}"))?;
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_time_of_a_busy_thread_grows_and_the_wait_share_is_a_ratio() {
        let before = sched(std::process::id()).expect("this kernel keeps schedstat");
        let start = Instant::now();
        let mut spin = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            spin = spin.wrapping_add(1);
        }
        assert!(spin > 0);
        let ran = sched(std::process::id()).expect("schedstat").since(before);
        assert!(ran.run_ns >= 10_000_000, "{ran:?}");
        assert!(ran.slices >= 1, "{ran:?}");
        let half = Sched {
            run_ns: 300,
            wait_ns: 300,
            slices: 2,
        };
        assert!((half.wait_percent() - 50.0).abs() < 1e-9);
        assert!(Sched::default().wait_percent().is_nan());
        assert_eq!(before.since(half.since(before)), before);
    }
}
