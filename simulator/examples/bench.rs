//! The `kgate bench sim` measurements without the rest of the binary:
//! `cargo run --release -p kgate-sim --example bench [-- --json] [-- --quick]`.

use kgate_sim::bench::{run, BenchOptions};
use kgate_sim::SimTime;

fn main() -> Result<(), kgate_sim::SimError> {
    let args: Vec<String> = std::env::args().collect();
    let mut opts = BenchOptions::default();
    if args.iter().any(|a| a == "--quick") {
        opts.speed_duration = SimTime::from_secs(60);
        opts.overload_duration = Some(SimTime::from_secs(60));
        opts.memory_duration = None;
    }
    let report = run(&opts)?;
    if args.iter().any(|a| a == "--json") {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
