//! kgate-proxy (work in progress).
