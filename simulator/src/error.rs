//! The library's one error type.
//!
//! Every mistake in a user's file (scenario, profile, trace) comes back as
//! [`SimError::File`] with the file, line, column and field, because the people who see these
//! messages are instructors editing TOML in front of a class: "where" matters more than "what".

use std::fmt;

/// Where in a user's file something went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file as the user named it (or `<embedded kafka profile>` for built-in data).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The dotted path of the field, such as `workload.rate`, when it is known.
    pub field: Option<String>,
}

impl Location {
    /// A location at the start of `file`, for errors about a file as a whole.
    pub fn file_start(file: &str) -> Location {
        Location {
            file: file.to_string(),
            line: 1,
            column: 1,
            field: None,
        }
    }

    /// The location of byte `offset` of `text`, with the field found on that line.
    pub fn at_offset(file: &str, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Location {
            file: file.to_string(),
            line,
            column,
            field: field_at(text, line_start),
        }
    }

    /// The same location naming `field` (kept if one is already known and more precise).
    pub fn with_field(mut self, field: &str) -> Location {
        self.field = Some(field.to_string());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)?;
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        Ok(())
    }
}

/// Finds the dotted field path of the `key = value` line starting at `line_start`, prefixed by
/// the nearest `[table]` header above it.
fn field_at(text: &str, line_start: usize) -> Option<String> {
    let line = text.get(line_start..)?.lines().next()?.trim();
    let header_of = |l: &str| -> Option<String> {
        let l = l.trim();
        let inner = l.strip_prefix("[[").and_then(|s| s.strip_suffix("]]"));
        let inner = inner.or_else(|| l.strip_prefix('[').and_then(|s| s.strip_suffix(']')));
        inner.map(|s| s.trim().to_string())
    };
    if let Some(h) = header_of(line) {
        return Some(h);
    }
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"'))?;
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    let table = text
        .get(..line_start)
        .unwrap_or("")
        .lines()
        .rev()
        .find_map(header_of);
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

/// Everything that can go wrong in `kgate-sim`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A scenario, profile or trace file is malformed or holds a value out of range.
    #[error("{location}: {message}")]
    File {
        /// Where.
        location: Location,
        /// What was expected, in lowercase.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A request made through the API (or a command-line flag) that cannot be honoured.
    #[error("{0}")]
    Invalid(String),
    /// A chart could not be drawn.
    #[error("chart {path}: {message}")]
    Chart {
        /// The chart file.
        path: String,
        /// The drawing library's reason.
        message: String,
    },
}

impl SimError {
    /// An error at `location`.
    pub fn at(location: Location, message: impl Into<String>) -> SimError {
        SimError::File {
            location,
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> SimError {
        SimError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Turns a `toml` parse or type error into a located error.
    pub(crate) fn from_toml(file: &str, text: &str, err: &toml::de::Error) -> SimError {
        let location = match err.span() {
            Some(span) => Location::at_offset(file, text, span.start),
            None => Location::file_start(file),
        };
        SimError::at(location, err.message().trim().to_string())
    }

    /// The location, for errors tied to a file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            SimError::File { location, .. } => Some(location),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_names_table_and_key_of_the_line() {
        let text = "name = \"x\"\n[workload]\nkind = \"telemetry\"\nrate = \"fast\"\n";
        let off = text.find("\"fast\"").unwrap_or(0);
        let loc = Location::at_offset("s.toml", text, off);
        assert_eq!(loc.line, 4);
        assert_eq!(loc.column, 8);
        assert_eq!(loc.field.as_deref(), Some("workload.rate"));
        assert_eq!(loc.to_string(), "s.toml:4:8: field `workload.rate`");
    }

    #[test]
    fn array_of_tables_headers_count_as_tables() {
        let text = "[[fault]]\nkind = \"x\"\n";
        let loc = Location::at_offset("s.toml", text, text.find("\"x\"").unwrap_or(0));
        assert_eq!(loc.field.as_deref(), Some("fault.kind"));
    }
}
