//! `kgate versions`: the Kafka APIs kgate serves, with their versions and Kafka's checks, and
//! the APIs it leaves out with the reason, straight from `kgate_proxy::registry`.

/// Arguments of `kgate versions` (none: the table is the same for every gateway; what one
/// gateway offers is further capped by what its upstream serves).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  kgate versions            # API, versions served, who answers, Kafka's checks; and what is left out, with why")]
pub struct VersionsArgs {}

/// Prints the table.
///
/// # Errors
/// None today; the signature matches the other subcommands.
pub fn run(_args: VersionsArgs) -> anyhow::Result<()> {
    print!("{}", kgate_proxy::registry::table());
    Ok(())
}
