//! APIs kgate answers itself: ACL administration (CreateAcls, DescribeAcls, DeleteAcls) and
//! SCRAM-credential administration (DescribeUserScramCredentials, AlterUserScramCredentials),
//! against the policy file and the credential store.

use super::{Incoming, Outcome, Session};

/// Answers a local administration API.
pub fn answer(_s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    Ok(Outcome::Close(format!(
        "{:?} is not served by kgate yet; refused",
        inc.api
    )))
}
