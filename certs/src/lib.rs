//! kgate-certs (work in progress).
