//! Text a client chose, made safe to put in a log line.
//!
//! Before authentication a client decides what kgate logs about it: the user name in a PLAIN
//! token can be half a megabyte of anything, newlines included, and a mechanism name is not
//! much shorter. Written as is, one such name could fill the log, or end the line and forge
//! the next one ("...\n2026-01-01T00:00:00Z INFO authenticated principal=User:admin"), or
//! send terminal escape sequences to whoever reads the log. [`LogSafe`] writes at most
//! [`MAX_LOGGED_NAME`] bytes of the text, with every control character (and Unicode's
//! invisible line, paragraph and direction marks) written as a visible escape.
//!
//! The escapes are Rust's (`\n`, `\t`, `\u{1b}`), and a backslash in the name is doubled,
//! so an escaped name reads back unambiguously.

use std::fmt::{self, Write as _};

/// The most bytes of a client-chosen name a log line holds (the escapes included); what is
/// cut is counted in a `…[N bytes]` suffix.
pub const MAX_LOGGED_NAME: usize = 256;

/// `text` for a log line: escaped and capped at [`MAX_LOGGED_NAME`] bytes (see the module).
///
/// ```
/// use kgate_proxy::log_safe::LogSafe;
/// assert_eq!(LogSafe("alice").to_string(), "alice");
/// assert_eq!(LogSafe("a\nb\u{1b}[31m\\").to_string(), "a\\nb\\u{1b}[31m\\\\");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LogSafe<'a>(pub &'a str);

impl fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = 0;
        let mut escaped = String::new();
        for (at, c) in self.0.char_indices() {
            escaped.clear();
            escape(c, &mut escaped);
            if written + escaped.len() > MAX_LOGGED_NAME {
                return write!(f, "…[{} bytes]", self.0.len() - at);
            }
            f.write_str(&escaped)?;
            written += escaped.len();
        }
        Ok(())
    }
}

/// [`LogSafe`] as an owned string.
pub fn log_safe(text: &str) -> String {
    LogSafe(text).to_string()
}

/// Appends `c`, escaped when it could change how a log line reads.
fn escape(c: char, out: &mut String) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() || invisible_mark(c) => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// Unicode's line and paragraph separators and bidirectional marks: not control characters,
/// yet they break a line or reorder what the reader sees ("Trojan Source").
fn invisible_mark(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{061c}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_unchanged() {
        for name in ["alice", "CN=svc,O=acme", "ünïcödé-名前", ""] {
            assert_eq!(log_safe(name), name);
        }
    }

    #[test]
    fn control_characters_cannot_break_the_line() {
        let hostile =
            "x\n2026-01-01T00:00:00Z INFO authenticated\r\u{1b}[2J\u{7f}\u{85}\u{2028}\u{202e}";
        let safe = log_safe(hostile);
        assert!(
            !safe.chars().any(|c| c.is_control() || invisible_mark(c)),
            "{safe}"
        );
        assert_eq!(
            safe,
            "x\\n2026-01-01T00:00:00Z INFO authenticated\\r\\u{1b}[2J\\u{7f}\\u{85}\\u{2028}\\u{202e}"
        );
        // A literal backslash-n in a name does not read as an escaped newline.
        assert_eq!(log_safe("a\\nb"), "a\\\\nb");
    }

    #[test]
    fn long_names_are_capped_with_the_count_of_what_was_cut() {
        let long = "\n".repeat(10 * 1024);
        let safe = log_safe(&long);
        assert!(safe.len() <= MAX_LOGGED_NAME + 20, "{}", safe.len());
        assert!(safe.starts_with("\\n\\n"));
        assert!(safe.ends_with(&format!("…[{} bytes]", 10 * 1024 - MAX_LOGGED_NAME / 2)));
        // Never cut inside a character.
        let wide = "名".repeat(200);
        let safe = log_safe(&wide);
        assert!(safe.starts_with(&"名".repeat(85)), "{safe}");
        assert!(safe.ends_with("…[345 bytes]"), "{safe}");
    }
}
