//! Runs one scenario file without the rest of the binary, and says how long it took:
//! `cargo run --release -p kgate-sim --example run -- SCENARIO.toml [OUT_DIR]`.

use std::path::Path;
use std::time::Instant;

use kgate_sim::{Scenario, SimError};

fn main() -> Result<(), SimError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        return Err(SimError::Invalid(
            "usage: run SCENARIO.toml [OUT_DIR]".into(),
        ));
    };
    let scenario = Scenario::from_file(Path::new(file))?;
    let start = Instant::now();
    let report = scenario.run()?;
    let wall = start.elapsed().as_secs_f64();
    print!("{}", report.to_table());
    if let Some(dir) = args.get(1) {
        report.write_dir(Path::new(dir))?;
    }
    eprintln!("{wall:.2} s of wall time, {} events", report.events());
    Ok(())
}
