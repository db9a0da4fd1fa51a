//! Administrative APIs: topics, configs, log dirs, quotas, reassignments, producers,
//! transactions listing.
//!
//! Until an API has its Kafka checks here, it fails closed: the connection is closed and the
//! reason logged, never forwarded unchecked.

use super::{Incoming, Outcome, Session};

/// Authorizes an administrative API.
pub fn authorize(_s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    Ok(Outcome::Close(format!(
        "{:?} has no authorization model in kgate yet; refused",
        inc.api
    )))
}
