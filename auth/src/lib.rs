//! kgate-auth (work in progress).
