//! `kgate config check`: explain every mistake in a configuration file.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::config;

/// Arguments of `kgate config`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  kgate config check kgate.toml     # every mistake as FILE:LINE: field: problem (fix); exit status 64")]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check a kgate.toml: syntax, unknown keys, addresses, files, mechanisms.
    #[command(after_help = check_help())]
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

fn check_help() -> String {
    format!(
        "Example:
  kgate config check kgate.toml

Prints `kgate.toml: ok`, or one line per problem as FILE:LINE: field: problem (fix), and exits
with status 64. Relative paths in the file are taken from the file's directory.

A complete file (also: plaintext = false, max_frame_bytes = 16777216,
failed_auth_delay_ms = 100, shutdown_grace_ms = 5000):
{}",
        config::EXAMPLE
    )
}

/// Runs `kgate config`; `Ok(false)` means the file has problems (already printed).
pub fn run(args: ConfigArgs) -> anyhow::Result<bool> {
    match args.command {
        ConfigCommand::Check { file } => match config::load_checked(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                Ok(true)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(false)
            }
        },
    }
}
