//! `kgate sim`: placeholder until the simulator lands.

use clap::Args;

/// Arguments of `kgate sim`.
#[derive(Debug, Args)]
pub struct SimArgs {}

/// Runs `kgate sim`.
pub fn run(_args: SimArgs) -> anyhow::Result<()> {
    anyhow::bail!("the simulator is not built yet")
}
