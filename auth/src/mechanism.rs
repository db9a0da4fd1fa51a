//! The two SCRAM mechanisms Kafka knows, with their names, wire codes and iteration limits.

use std::fmt;
use std::str::FromStr;

/// The fewest PBKDF2 iterations Kafka accepts for a SCRAM credential (both mechanisms).
///
/// The broker refuses to use a weaker credential and the Java client refuses a server-first
/// message announcing fewer, so a credential below this would lock its user out anyway.
pub const MIN_ITERATIONS: u32 = 4096;

/// The most PBKDF2 iterations Kafka's controller accepts ("Too many iterations").
///
/// The cap bounds the CPU a client can make the gateway (PLAIN) or itself (SCRAM) spend.
pub const MAX_ITERATIONS: u32 = 16384;

/// The iteration count used when none is given: Kafka's `kafka-configs` default.
pub const DEFAULT_ITERATIONS: u32 = MIN_ITERATIONS;

/// A SCRAM mechanism as named in SaslHandshake and coded in AlterUserScramCredentials.
///
/// There are no `-PLUS` (channel binding) variants: Kafka has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    /// `SCRAM-SHA-256`: SHA-256 and HMAC-SHA-256, 32-byte keys; Kafka's wire code 1.
    ScramSha256,
    /// `SCRAM-SHA-512`: SHA-512 and HMAC-SHA-512, 64-byte keys; Kafka's wire code 2.
    ScramSha512,
}

impl Mechanism {
    /// Both mechanisms, in the order `list` and the credential file show them.
    pub const ALL: [Mechanism; 2] = [Mechanism::ScramSha256, Mechanism::ScramSha512];

    /// The SASL name, exactly as clients send it in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// Parses a SASL mechanism name; case-sensitive, as Kafka compares names.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The `mechanism` code of Kafka's Describe/AlterUserScramCredentials (1 or 2).
    pub fn kafka_type(self) -> i8 {
        match self {
            Mechanism::ScramSha256 => 1,
            Mechanism::ScramSha512 => 2,
        }
    }

    /// The mechanism for a Describe/AlterUserScramCredentials code; `None` for 0 (UNKNOWN) and
    /// any other value, which Kafka answers with UNSUPPORTED_SASL_MECHANISM (33).
    pub fn from_kafka_type(code: i8) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.kafka_type() == code)
    }

    /// The hash output length in bytes: the length of StoredKey, ServerKey, the proof and the
    /// salted password.
    pub fn key_len(self) -> usize {
        match self {
            Mechanism::ScramSha256 => 32,
            Mechanism::ScramSha512 => 64,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a mechanism name that is neither `SCRAM-SHA-256` nor `SCRAM-SHA-512`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SCRAM mechanism {0:?}; expected SCRAM-SHA-256 or SCRAM-SHA-512")]
pub struct UnknownMechanism(pub String);

impl FromStr for Mechanism {
    type Err = UnknownMechanism;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mechanism::from_name(s).ok_or_else(|| UnknownMechanism(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(Mechanism::from_kafka_type(m.kafka_type()), Some(m));
            assert_eq!(m.name().parse::<Mechanism>(), Ok(m));
        }
        assert_eq!(Mechanism::from_kafka_type(0), None);
        assert_eq!(Mechanism::from_name("scram-sha-256"), None);
        assert!("PLAIN".parse::<Mechanism>().is_err());
    }
}
