//! `kgate bench sim`: the simulator's speed and memory figures.

use kgate_sim::bench::{self, BenchOptions};

/// Runs the simulator benchmark and prints its figures (JSON with `json`).
pub fn run_bench(json: bool) -> anyhow::Result<()> {
    if !json {
        eprintln!(
            "measuring: a one-hour four-service run at 5,000 messages/s, then three ten-minute \
             ones at 5,000/s and three at 50,000/s (about two minutes)"
        );
    }
    let report = bench::run(&BenchOptions::default())?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
