//! Pinning processes to CPUs for a benchmark phase, with `taskset` (util-linux), so that a
//! gateway child's cost can be read apart from the clients' and the embedded cluster's: on a
//! 2-core machine they otherwise compete for the same cores, and the gateway's CPU per byte
//! then includes the cache misses and migrations that competition causes.
//!
//! `taskset` rather than `sched_setaffinity` directly: the workspace forbids `unsafe`, and the
//! command sets every thread of a process at once (`-a`). Threads created later inherit the
//! affinity of the thread that creates them, so librdkafka clients made after pinning run where
//! the benchmark process was pinned.

use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// Gateway children on the last CPU, this process (clients, embedded cluster) on the others,
/// until dropped; then every process may run on every CPU again.
#[derive(Debug)]
pub struct Pinned {
    pids: Vec<u32>,
    all: String,
}

impl Pinned {
    /// Pins `gateways` to the last CPU and this process to the others.
    ///
    /// # Errors
    /// With fewer than 2 CPUs, or when `taskset` is missing or fails.
    pub fn apart(gateways: &[u32]) -> anyhow::Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        if cpus < 2 {
            bail!("pinning needs at least 2 CPUs (this process may use {cpus})");
        }
        let last = cpus - 1;
        let own = std::process::id();
        let pinned = Self {
            pids: gateways.iter().copied().chain([own]).collect(),
            all: format!("0-{last}"),
        };
        for pid in gateways {
            taskset(&last.to_string(), *pid)?;
        }
        let others = if last == 1 {
            "0".to_string()
        } else {
            format!("0-{}", last - 1)
        };
        taskset(&others, own)?;
        Ok(pinned)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        for pid in &self.pids {
            let _ = taskset(&self.all, *pid);
        }
    }
}

/// Whether `taskset` can be run here.
pub fn available() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Sets the CPU list of every thread of `pid`.
fn taskset(cpus: &str, pid: u32) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run taskset (util-linux)")?;
    if !status.success() {
        bail!("taskset -a -p -c {cpus} {pid} failed ({status})");
    }
    Ok(())
}
