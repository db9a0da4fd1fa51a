//! kgate-simulator (work in progress).
