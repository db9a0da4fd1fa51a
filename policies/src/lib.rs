//! kgate-policies (work in progress).
