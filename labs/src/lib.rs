//! kgate-labs (work in progress).
