//! Kafka's `ssl.principal.mapping.rules` (KIP-371): from a certificate subject to a principal
//! name.
//!
//! # Format
//!
//! A comma-separated list, evaluated in order; the first rule that matches decides:
//!
//! ```text
//! DEFAULT                          the distinguished name unchanged
//! RULE:<regex>/<replacement>/      the DN rewritten
//! RULE:<regex>/<replacement>/L     ... then lower-cased (U: upper-cased)
//! ```
//!
//! A `RULE` applies only when the regex matches the **whole** DN; the DN is then rewritten by
//! replacing every match of the regex (Java's `String.replaceAll`). In the replacement `$n`
//! is group `n` (digits are taken greedily while they name an existing group, so `$12` is
//! group 1 then `2` when there is no group 12), `${name}` a named group and `\x` the literal
//! `x` (write `\/` for a slash inside a rule, `\$` for a dollar). A `$n` that names no group
//! is literal text, as in Kafka. When no rule matches, the connection is rejected.
//!
//! # Differences from Kafka
//!
//! The regex is compiled by the `regex` crate, not `java.util.regex`:
//! - no look-around and no back-references inside the pattern: such rules are refused when
//!   the rules are parsed, never half-applied;
//! - `$` means end of text only (Java's `$` also matches before a final line break; DNs have
//!   none in practice); `.` does not match `\n` in either;
//! - matching time is linear: no catastrophic backtracking on a hostile subject;
//! - Unicode classes use Rust's names (`\p{Greek}` works in both; Java-only names such as
//!   `\p{javaLowerCase}` are refused).
//!
//! Mistakes that Kafka only discovers when a client connects (`$` followed by neither a digit
//! nor `{`, an unknown `${name}`, a trailing `\`) are refused at parse time here, and an empty
//! list of rules is refused instead of rejecting every client. Where Kafka's escaping of
//! unknown `$n` is inconsistent (several unknown references, or a pattern without groups),
//! every unknown reference is literal here.

use std::fmt;
use std::str::FromStr;

use regex::{Captures, Regex};
use rustls::pki_types::CertificateDer;

use crate::dn::{subject_rfc2253, PrincipalError};

/// The rules Kafka uses when `ssl.principal.mapping.rules` is not set.
pub const DEFAULT_RULES: &str = "DEFAULT";

/// A rule list could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid ssl.principal.mapping.rules entry `{rule}`: {reason}")]
pub struct MappingRulesError {
    /// The offending rule as written.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed `ssl.principal.mapping.rules` list, ready to map distinguished names.
///
/// Build it once from configuration with [`PrincipalMapper::parse`] (or `str::parse`), then
/// call [`PrincipalMapper::principal`] for each client certificate. The result is the name
/// only; the gateway prefixes it with `User:`.
#[derive(Clone, Debug)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl PrincipalMapper {
    /// Parses a rule list such as
    /// `RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT`.
    ///
    /// # Errors
    ///
    /// [`MappingRulesError`] naming the first rule that is malformed or whose regex does not
    /// compile, or if the list holds no rule at all.
    pub fn parse(rules: &str) -> Result<Self, MappingRulesError> {
        let parsed = split(rules)?
            .into_iter()
            .map(Rule::compile)
            .collect::<Result<Vec<_>, _>>()?;
        if parsed.is_empty() {
            return Err(MappingRulesError {
                rule: rules.to_string(),
                reason: "no rule given (every client would be rejected); use DEFAULT".into(),
            });
        }
        Ok(PrincipalMapper { rules: parsed })
    }

    /// Maps a distinguished name (as [`crate::subject_rfc2253`] renders it) to a principal
    /// name.
    ///
    /// # Errors
    ///
    /// [`PrincipalError::NoMatchingRule`] when no rule matches.
    pub fn map(&self, dn: &str) -> Result<String, PrincipalError> {
        self.rules
            .iter()
            .find_map(|rule| rule.apply(dn))
            .ok_or_else(|| PrincipalError::NoMatchingRule { dn: dn.to_string() })
    }

    /// The principal name for a client's end-entity certificate: its subject in Kafka's
    /// RFC 2253 form, mapped through the rules.
    ///
    /// # Errors
    ///
    /// [`PrincipalError::Unparseable`] for bytes that are not a certificate, and
    /// [`PrincipalError::NoMatchingRule`].
    pub fn principal(&self, cert: &CertificateDer<'_>) -> Result<String, PrincipalError> {
        self.map(&subject_rfc2253(cert)?)
    }

    /// The principal name for what `rustls::ServerConnection::peer_certificates()` returns;
    /// the first certificate is the client's own.
    ///
    /// # Errors
    ///
    /// [`PrincipalError::NoCertificate`] when the client sent none, plus the errors of
    /// [`PrincipalMapper::principal`].
    pub fn peer_principal(
        &self,
        peer_certificates: Option<&[CertificateDer<'_>]>,
    ) -> Result<String, PrincipalError> {
        match peer_certificates.and_then(|chain| chain.first()) {
            Some(cert) => self.principal(cert),
            None => Err(PrincipalError::NoCertificate),
        }
    }
}

impl Default for PrincipalMapper {
    /// The `DEFAULT` rule alone: the principal is the DN.
    fn default() -> Self {
        PrincipalMapper {
            rules: vec![Rule::Default],
        }
    }
}

impl FromStr for PrincipalMapper {
    type Err = MappingRulesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for PrincipalMapper {
    /// The rules as a comma-separated list, in the syntax they were written in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match rule {
                Rule::Default => f.write_str("DEFAULT")?,
                Rule::Rewrite { text, .. } => f.write_str(text)?,
            }
        }
        Ok(())
    }
}

// === impl Rule ===

/// One compiled rule.
#[derive(Clone, Debug)]
enum Rule {
    /// `DEFAULT`: the DN unchanged.
    Default,
    /// `RULE:pattern/replacement/[LU]`.
    Rewrite {
        /// The rule as written, for messages.
        text: String,
        /// The pattern anchored at both ends: Java's `Matcher.matches()`.
        whole: Regex,
        /// The pattern as written, for the `replaceAll` pass.
        pattern: Regex,
        /// The replacement, pre-parsed.
        replacement: Vec<Piece>,
        /// Case conversion applied last.
        case: Case,
    },
}

/// A rule as split out of the list, before compiling.
#[derive(Debug, PartialEq, Eq)]
enum RawRule {
    Default,
    Rewrite {
        text: String,
        pattern: String,
        replacement: String,
        case: Case,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// A part of a replacement string.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
}

impl Rule {
    fn compile(raw: RawRule) -> Result<Rule, MappingRulesError> {
        let (text, pattern, replacement, case) = match raw {
            RawRule::Default => return Ok(Rule::Default),
            RawRule::Rewrite {
                text,
                pattern,
                replacement,
                case,
            } => (text, pattern, replacement, case),
        };
        let error = |reason: String| MappingRulesError {
            rule: text.clone(),
            reason,
        };
        let compiled =
            Regex::new(&pattern).map_err(|err| error(format!("bad regular expression: {err}")))?;
        let whole = Regex::new(&format!(r"\A(?:{pattern})\z"))
            .map_err(|err| error(format!("bad regular expression: {err}")))?;
        let replacement = parse_replacement(&replacement, &compiled).map_err(error)?;
        Ok(Rule::Rewrite {
            text,
            whole,
            pattern: compiled,
            replacement,
            case,
        })
    }

    /// The rewritten DN, or `None` if this rule does not apply.
    fn apply(&self, dn: &str) -> Option<String> {
        let Rule::Rewrite {
            whole,
            pattern,
            replacement,
            case,
            ..
        } = self
        else {
            return Some(dn.to_string());
        };
        if !whole.is_match(dn) {
            return None;
        }
        let rewritten = replace_all(pattern, dn, replacement);
        Some(match case {
            Case::Keep => rewritten,
            Case::Lower => rewritten.to_lowercase(),
            Case::Upper => rewritten.to_uppercase(),
        })
    }
}

/// Java's `replaceAll`: after an empty match the search resumes one character further on,
/// and an empty match right after a non-empty one is allowed (so `.*` on `abc` matches twice).
fn replace_all(pattern: &Regex, haystack: &str, replacement: &[Piece]) -> String {
    let mut out = String::with_capacity(haystack.len());
    let mut copied = 0;
    let mut from = 0;
    while from <= haystack.len() {
        let Some(caps) = pattern.captures_at(haystack, from) else {
            break;
        };
        let Some(m) = caps.get(0) else { break };
        out.push_str(&haystack[copied..m.start()]);
        expand(&caps, replacement, &mut out);
        copied = m.end();
        from = if m.is_empty() {
            match haystack[m.end()..].chars().next() {
                Some(c) => m.end() + c.len_utf8(),
                None => break,
            }
        } else {
            m.end()
        };
    }
    out.push_str(&haystack[copied..]);
    out
}

fn expand(caps: &Captures<'_>, replacement: &[Piece], out: &mut String) {
    for piece in replacement {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            // A group that did not take part in the match adds nothing, as in Java.
            Piece::Group(i) => out.push_str(caps.get(*i).map_or("", |m| m.as_str())),
        }
    }
}

/// Parses a Java replacement string against the groups of `pattern` (see the module doc).
fn parse_replacement(replacement: &str, pattern: &Regex) -> Result<Vec<Piece>, String> {
    // Java's groupCount() excludes group 0; captures_len() includes it.
    let groups = pattern.captures_len() - 1;
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => literal.push(escaped),
                None => return Err("the replacement ends with a lone `\\`".into()),
            },
            '$' => {
                match chars.peek().copied() {
                    Some('{') => {
                        chars.next();
                        let mut name = String::new();
                        loop {
                            match chars.next() {
                                Some('}') => break,
                                Some(ch) => name.push(ch),
                                None => return Err("unclosed `${` in the replacement".into()),
                            }
                        }
                        let index = pattern
                            .capture_names()
                            .position(|n| n == Some(name.as_str()))
                            .ok_or_else(|| format!("the regex has no group named `{name}`"))?;
                        flush(&mut literal, &mut pieces);
                        pieces.push(Piece::Group(index));
                    }
                    Some(d @ '0'..='9') => {
                        let first = d.to_digit(10).map_or(0, |v| v as usize);
                        if first > groups {
                            // Kafka escapes a reference to a missing group: literal `$`.
                            literal.push('$');
                            continue;
                        }
                        chars.next();
                        let mut index = first;
                        while let Some(next) = chars.peek().and_then(|ch| ch.to_digit(10)) {
                            let longer = index * 10 + next as usize;
                            if longer > groups {
                                break;
                            }
                            index = longer;
                            chars.next();
                        }
                        flush(&mut literal, &mut pieces);
                        pieces.push(Piece::Group(index));
                    }
                    _ => return Err(
                        "`$` must be followed by a group number or `{name}` (write `\\$` for a \
                         literal dollar)"
                            .into(),
                    ),
                }
            }
            other => literal.push(other),
        }
    }
    flush(&mut literal, &mut pieces);
    Ok(pieces)
}

fn flush(literal: &mut String, pieces: &mut Vec<Piece>) {
    if !literal.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(literal)));
    }
}

// === splitting the list ===

/// Java's `\s`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Splits a rule list the way Kafka's `SslPrincipalMapper` does: commas separate rules,
/// except inside the `/`-delimited pattern and replacement of a `RULE:`, where `\` escapes
/// the next character; whitespace around rules is ignored, and so are empty entries.
fn split(rules: &str) -> Result<Vec<RawRule>, MappingRulesError> {
    let mut out = Vec::new();
    let mut rest = rules.trim_start_matches(is_space);
    loop {
        rest = rest.trim_start_matches(is_space);
        if rest.is_empty() {
            break;
        }
        if let Some(after) = rest.strip_prefix(',') {
            rest = after; // An empty entry.
            continue;
        }
        let (rule, after) = if let Some(after) = rest.strip_prefix("DEFAULT") {
            (RawRule::Default, after)
        } else if let Some(body) = rest.strip_prefix("RULE:") {
            let (pattern, after_pattern) =
                until_slash(body).ok_or_else(|| invalid(rest, "missing `/` after the regex"))?;
            let (replacement, after_replacement) = until_slash(after_pattern)
                .ok_or_else(|| invalid(rest, "missing `/` after the replacement"))?;
            let (case, after_case) = match after_replacement.chars().next() {
                Some('L') => (Case::Lower, &after_replacement[1..]),
                Some('U') => (Case::Upper, &after_replacement[1..]),
                _ => (Case::Keep, after_replacement),
            };
            let text = &rest[..rest.len() - after_case.len()];
            (
                RawRule::Rewrite {
                    text: text.to_string(),
                    pattern: pattern.to_string(),
                    replacement: replacement.to_string(),
                    case,
                },
                after_case,
            )
        } else {
            return Err(invalid(
                rest,
                "a rule is `DEFAULT` or `RULE:regex/replacement/[LU]`",
            ));
        };
        let after = after.trim_start_matches(is_space);
        match after.chars().next() {
            None => {
                out.push(rule);
                break;
            }
            Some(',') => {
                out.push(rule);
                rest = &after[1..];
            }
            Some(_) => {
                let taken = &rest[..rest.len() - after.len()];
                return Err(MappingRulesError {
                    rule: format!("{}{}", taken.trim_end_matches(is_space), entry(after)),
                    reason: format!(
                        "unexpected `{}` after the rule (only L or U may follow the last `/`)",
                        entry(after)
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// Splits `s` at the first `/` not preceded by a `\` escape; the escapes are kept.
fn until_slash(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

/// The text of the current entry, up to the next comma, for error messages.
fn entry(s: &str) -> &str {
    s.split(',').next().unwrap_or(s).trim_end_matches(is_space)
}

fn invalid(rest: &str, reason: &str) -> MappingRulesError {
    MappingRulesError {
        rule: entry(rest).to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rules: &str, dn: &str) -> Result<String, PrincipalError> {
        PrincipalMapper::parse(rules).unwrap().map(dn)
    }

    /// The example of Kafka's security documentation.
    const DOC_RULES: &str = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
        RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
        RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\
        DEFAULT";

    #[test]
    fn maps_kafka_documentation_examples() {
        let cases = [
            (
                "CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown",
                "serviceuser",
            ),
            (
                "CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown",
                "adminuser@admin",
            ),
            ("CN=kafka1,O=Apache", "kafka1"),
            ("CN=kafka1,OU=App,C=DE,1.2.3=#0c0141", "kafka1"),
            ("OU=Nobody", "OU=Nobody"),
        ];
        let mapper = PrincipalMapper::parse(DOC_RULES).unwrap();
        for (dn, expected) in cases {
            assert_eq!(mapper.map(dn).unwrap(), expected, "{dn}");
        }
    }

    #[test]
    fn parses_like_kafkas_own_tests() {
        // Shapes accepted by Kafka's SslPrincipalMapper.
        for rules in [
            "DEFAULT",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/U",
            "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
            "  RULE:^CN=(.*)$/$1/ ,  DEFAULT  ",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,",
            "DEFAULT,,DEFAULT",
            // The replacement is the letter L, no case flag.
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/L/",
        ] {
            PrincipalMapper::parse(rules).unwrap_or_else(|e| panic!("{rules}: {e}"));
        }
        // Shapes Kafka refuses.
        for rules in [
            "DEFAULTx",
            "DEFAULT , xDEFAULT",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/LU",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/x",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/U/",
            "RULE:(.*)/$1/L junk",
            "",
            " , ",
        ] {
            assert!(
                PrincipalMapper::parse(rules).is_err(),
                "{rules:?} should be refused"
            );
        }
    }

    #[test]
    fn commas_and_escaped_slashes_inside_rules() {
        let mapper = PrincipalMapper::parse(r"RULE:^CN=([^,]*),O=a\/b$/$1\/x/, DEFAULT").unwrap();
        assert_eq!(mapper.map("CN=svc,O=a/b").unwrap(), "svc/x");
        assert_eq!(mapper.map("CN=svc,O=other").unwrap(), "CN=svc,O=other");
        assert_eq!(
            mapper.to_string(),
            r"RULE:^CN=([^,]*),O=a\/b$/$1\/x/,DEFAULT"
        );
    }

    #[test]
    fn matches_the_whole_dn_only() {
        // `CN=(.*)` finds a match inside, but the whole DN does not match it: no rule applies.
        let err = map("RULE:CN=([a-z]*)/$1/", "CN=alice,O=x").unwrap_err();
        assert!(matches!(err, PrincipalError::NoMatchingRule { .. }));
        assert_eq!(
            err.to_string(),
            r#"no ssl.principal.mapping.rules rule matches "CN=alice,O=x""#
        );
        assert_eq!(
            map("RULE:CN=([a-z]*),O=x/$1/", "CN=alice,O=x").unwrap(),
            "alice"
        );
    }

    #[test]
    fn replaces_all_matches_like_java() {
        // Java: "abc".replaceAll(".*", "x") == "xx"; "abc".replaceAll("(.*)", "<$1>") == "<abc><>".
        assert_eq!(map("RULE:.*/x/", "abc").unwrap(), "xx");
        assert_eq!(map("RULE:(.*)/<$1>/", "abc").unwrap(), "<abc><>");
        // Anchored patterns match once.
        assert_eq!(map("RULE:^(.*)$/<$1>/", "abc").unwrap(), "<abc>");
        // A pattern that matches the whole DN through alternation still rewrites each match.
        assert_eq!(map("RULE:(a|b)*/-/", "ab").unwrap(), "--");
    }

    #[test]
    fn missing_groups_are_literal_text() {
        assert_eq!(
            map("RULE:^CN=(.*?),O=(.*)$/$1@$4/", "CN=a,O=b").unwrap(),
            "a@$4"
        );
        // `$12` with one group: group 1, then the digit 2 (Java's greedy rule).
        assert_eq!(map("RULE:^CN=(.*)$/$12/", "CN=a").unwrap(), "a2");
        assert_eq!(map("RULE:^CN=.*$/$1/", "CN=a").unwrap(), "$1");
        assert_eq!(map("RULE:^CN=(.*)$/$0!/", "CN=a").unwrap(), "CN=a!");
    }

    #[test]
    fn named_groups_escapes_and_case() {
        assert_eq!(
            map(r"RULE:^CN=(?<user>.*)$/${user}\$\\x/U", "CN=Ab").unwrap(),
            r"AB$\X"
        );
        assert_eq!(map("RULE:^CN=(.*)$/$1/L", "CN=ÄBC").unwrap(), "äbc");
        // Rust replacement syntax would read `$1_` as a group named `1_`; Java's does not.
        assert_eq!(
            map("RULE:^CN=(.*),O=(.*)$/$1_$2/", "CN=a,O=b").unwrap(),
            "a_b"
        );
    }

    #[test]
    fn refuses_broken_replacements_at_parse_time() {
        for rules in [
            r"RULE:^CN=(.*)$/$x/",
            r"RULE:^CN=(.*)$/${nope}/",
            r"RULE:^CN=(.*)$/${user/",
            r"RULE:^CN=(.*)$/a$/",
            "RULE:^CN=(.*)$/a\\/",
            "RULE:^CN=((.*)$/$1/",
            "RULE:^CN=(?=a)$/$1/",
        ] {
            let err = PrincipalMapper::parse(rules).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("invalid ssl.principal.mapping.rules entry"),
                "{err}"
            );
        }
    }

    #[test]
    fn first_matching_rule_wins_and_default_passes_through() {
        let rules = "RULE:^CN=(.*),O=A$/a-$1/,RULE:^CN=(.*),O=.*$/any-$1/,DEFAULT";
        assert_eq!(map(rules, "CN=x,O=A").unwrap(), "a-x");
        assert_eq!(map(rules, "CN=x,O=B").unwrap(), "any-x");
        assert_eq!(map(rules, "OU=y").unwrap(), "OU=y");
        assert_eq!(PrincipalMapper::default().map("CN=z").unwrap(), "CN=z");
        assert_eq!(
            DEFAULT_RULES
                .parse::<PrincipalMapper>()
                .unwrap()
                .map("CN=z")
                .unwrap(),
            "CN=z"
        );
    }

    #[test]
    fn reports_the_offending_rule() {
        let err = PrincipalMapper::parse("DEFAULT, RULE:abc, DEFAULT").unwrap_err();
        assert_eq!(err.rule, "RULE:abc");
        let err = PrincipalMapper::parse("DEFAULT, BOGUS").unwrap_err();
        assert_eq!(err.rule, "BOGUS");
        let err = PrincipalMapper::parse("RULE:a/b/Lx,DEFAULT").unwrap_err();
        assert_eq!(err.rule, "RULE:a/b/Lx");
    }

    #[test]
    fn no_certificate_is_an_error() {
        let err = PrincipalMapper::default().peer_principal(None).unwrap_err();
        assert!(matches!(err, PrincipalError::NoCertificate));
        let err = PrincipalMapper::default()
            .peer_principal(Some(&[]))
            .unwrap_err();
        assert!(matches!(err, PrincipalError::NoCertificate));
    }
}
