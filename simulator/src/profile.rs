//! Service profiles: every quota, default, latency anchor and price a model uses, as data.
//!
//! A profile is a TOML file in `simulator/profiles/` with one `[params.NAME]` table per number,
//! each carrying `value`, `source_url` and `as_of` (plus an optional `unit` and `note`), so an
//! instructor updates a quota without touching code and a student can see where each number
//! comes from (`kgate sim profiles`). The files are embedded in the binary with `include_str!`;
//! a directory of edited copies can replace them at run time ([`ProfileSet::load_dir`]).
//!
//! # Format
//! ```toml
//! service = "kinesis"
//! name = "Kinesis Data Streams, provisioned"
//! description = "..."
//!
//! [params.shard_write_bytes_per_s]
//! value = 1048576
//! unit = "bytes/s"
//! source_url = "https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html"
//! as_of = "2026-11"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Location, SimError};
use crate::time::{parse_duration, SimTime};

/// The services the simulator models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// Apache Kafka, self-managed.
    Kafka,
    /// Azure Event Hubs (pull, partitioned log).
    EventHubs,
    /// Azure Event Grid push delivery of the same events.
    EventGrid,
    /// AWS Kinesis Data Streams.
    Kinesis,
    /// Google Cloud Pub/Sub.
    PubSub,
}

impl ServiceKind {
    /// Every modelled service, in report order.
    pub const ALL: [ServiceKind; 5] = [
        ServiceKind::Kafka,
        ServiceKind::EventHubs,
        ServiceKind::EventGrid,
        ServiceKind::Kinesis,
        ServiceKind::PubSub,
    ];

    /// The four services of the default side-by-side comparison.
    pub const COMPARE: [ServiceKind; 4] = [
        ServiceKind::Kafka,
        ServiceKind::EventHubs,
        ServiceKind::Kinesis,
        ServiceKind::PubSub,
    ];

    /// The short name used on the command line, in files and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Kafka => "kafka",
            ServiceKind::EventHubs => "eventhubs",
            ServiceKind::EventGrid => "eventgrid",
            ServiceKind::Kinesis => "kinesis",
            ServiceKind::PubSub => "pubsub",
        }
    }

    /// Parses a short name (`kafka`, `eventhubs`, `eventgrid`, `kinesis`, `pubsub`).
    pub fn parse(name: &str) -> Option<ServiceKind> {
        let n = name
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_', ' '], "");
        match n.as_str() {
            "kafka" => Some(ServiceKind::Kafka),
            "eventhubs" | "eventhub" | "eh" => Some(ServiceKind::EventHubs),
            "eventgrid" | "eg" => Some(ServiceKind::EventGrid),
            "kinesis" | "kds" => Some(ServiceKind::Kinesis),
            "pubsub" | "gcppubsub" => Some(ServiceKind::PubSub),
            _ => None,
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The value of one parameter.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A boolean switch.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A real number.
    Float(f64),
    /// A word or a duration string.
    Str(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Str(s) => write!(f, "{s}"),
        }
    }
}

/// One number with its provenance.
#[derive(Clone, Debug, Serialize)]
pub struct Param {
    /// The value the model uses.
    pub value: ParamValue,
    /// The unit, for people reading `kgate sim profiles`.
    pub unit: Option<String>,
    /// Where the number comes from.
    pub source_url: String,
    /// When the source was read (`YYYY-MM`).
    pub as_of: String,
    /// Caveats, such as "illustrative" or "verify before quoting".
    pub note: Option<String>,
    /// Where the value was written (profile or scenario override), for error messages.
    #[serde(skip)]
    pub origin: Location,
}

/// The parameters of one service: a profile, possibly with a scenario's overrides applied.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    /// The service it describes.
    pub service: ServiceKind,
    /// A one-line name such as "Azure Event Hubs, Standard tier".
    pub name: String,
    /// What this profile stands for and what it leaves out.
    pub description: String,
    /// Where the profile was read from (a path or `<embedded>`).
    pub file: String,
    /// The parameters by name.
    pub params: BTreeMap<String, Param>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    service: toml::Spanned<String>,
    name: String,
    description: String,
    params: BTreeMap<String, ParamFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamFile {
    value: toml::Spanned<toml::Value>,
    #[serde(default)]
    unit: Option<String>,
    source_url: toml::Spanned<String>,
    as_of: toml::Spanned<String>,
    #[serde(default)]
    note: Option<String>,
}

/// Converts a TOML value into a [`ParamValue`], refusing tables, arrays and dates.
pub(crate) fn to_param_value(v: &toml::Value, loc: &Location) -> Result<ParamValue, SimError> {
    Ok(match v {
        toml::Value::Boolean(b) => ParamValue::Bool(*b),
        toml::Value::Integer(i) => ParamValue::Int(*i),
        toml::Value::Float(x) => ParamValue::Float(*x),
        toml::Value::String(s) => ParamValue::Str(s.clone()),
        _ => {
            return Err(SimError::at(
                loc.clone(),
                "expected a number, a string or a boolean",
            ))
        }
    })
}

impl Profile {
    /// Parses a profile; `file` names it in error messages.
    ///
    /// # Errors
    /// [`SimError::File`] naming the file, line and field of the first mistake: TOML syntax, an
    /// unknown or missing key, a parameter without `source_url` or `as_of`.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Profile, SimError> {
        let raw: ProfileFile =
            toml::from_str(text).map_err(|e| SimError::from_toml(file, text, &e))?;
        let service = ServiceKind::parse(raw.service.get_ref()).ok_or_else(|| {
            SimError::at(
                Location::at_offset(file, text, raw.service.span().start),
                format!(
                    "unknown service `{}`; expected kafka, eventhubs, eventgrid, kinesis or pubsub",
                    raw.service.get_ref()
                ),
            )
        })?;
        let mut params = BTreeMap::new();
        for (name, p) in raw.params {
            let origin = Location::at_offset(file, text, p.value.span().start)
                .with_field(&format!("params.{name}.value"));
            if p.source_url.get_ref().trim().is_empty() {
                return Err(SimError::at(
                    Location::at_offset(file, text, p.source_url.span().start)
                        .with_field(&format!("params.{name}.source_url")),
                    "every number needs a source: source_url is empty",
                ));
            }
            let as_of = p.as_of.get_ref().trim();
            let valid_as_of = as_of.len() >= 7
                && as_of.as_bytes().get(4) == Some(&b'-')
                && as_of.get(..4).is_some_and(|y| y.parse::<u32>().is_ok());
            if !valid_as_of {
                return Err(SimError::at(
                    Location::at_offset(file, text, p.as_of.span().start)
                        .with_field(&format!("params.{name}.as_of")),
                    format!("expected a date such as 2026-11, got `{as_of}`"),
                ));
            }
            let value = to_param_value(p.value.get_ref(), &origin)?;
            params.insert(
                name,
                Param {
                    value,
                    unit: p.unit,
                    source_url: p.source_url.into_inner(),
                    as_of: as_of.to_string(),
                    note: p.note,
                    origin,
                },
            );
        }
        Ok(Profile {
            service,
            name: raw.name,
            description: raw.description,
            file: file.to_string(),
            params,
        })
    }

    /// Replaces the value of an existing parameter (a scenario's override), keeping the source
    /// but noting where the new value came from.
    ///
    /// # Errors
    /// An unknown parameter name, with the names this service knows.
    pub fn set(&mut self, name: &str, value: ParamValue, origin: Location) -> Result<(), SimError> {
        match self.params.get_mut(name) {
            Some(p) => {
                p.note = Some(format!("overridden by {}:{}", origin.file, origin.line));
                p.source_url = format!("scenario {}", origin.file);
                p.value = value;
                p.origin = origin;
                Ok(())
            }
            None => Err(SimError::at(
                origin,
                format!(
                    "unknown parameter `{name}` for {}; known: {}",
                    self.service,
                    self.params.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// Where parameter `name` was written (the file's start if it is missing), for errors
    /// that involve a value's meaning rather than its type.
    pub fn origin(&self, name: &str) -> Location {
        self.params.get(name).map_or_else(
            || Location::file_start(&self.file).with_field(&format!("params.{name}")),
            |p| p.origin.clone(),
        )
    }

    fn get(&self, name: &str) -> Result<&Param, SimError> {
        self.params.get(name).ok_or_else(|| {
            SimError::at(
                Location::file_start(&self.file).with_field(&format!("params.{name}")),
                format!("the {} profile has no parameter `{name}`", self.service),
            )
        })
    }

    /// A non-negative number.
    ///
    /// # Errors
    /// Missing parameter, or a value that is not a non-negative number.
    pub fn f64(&self, name: &str) -> Result<f64, SimError> {
        let p = self.get(name)?;
        let x = match &p.value {
            ParamValue::Int(i) => *i as f64,
            ParamValue::Float(x) => *x,
            other => {
                return Err(SimError::at(
                    p.origin.clone(),
                    format!("expected a number, got `{other}`"),
                ))
            }
        };
        if !x.is_finite() || x < 0.0 {
            return Err(SimError::at(
                p.origin.clone(),
                format!("expected a non-negative number, got {x}"),
            ));
        }
        Ok(x)
    }

    /// A whole number in `min..=max`.
    ///
    /// # Errors
    /// Missing parameter, a value that is not a whole number, or out of range.
    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<i64, SimError> {
        let p = self.get(name)?;
        let i = match &p.value {
            ParamValue::Int(i) => *i,
            ParamValue::Float(x) if x.fract() == 0.0 => *x as i64,
            other => {
                return Err(SimError::at(
                    p.origin.clone(),
                    format!("expected a whole number, got `{other}`"),
                ))
            }
        };
        if i < min || i > max {
            return Err(SimError::at(
                p.origin.clone(),
                format!("expected a value from {min} to {max}, got {i}"),
            ));
        }
        Ok(i)
    }

    /// A count in `min..=max` as `usize`.
    ///
    /// # Errors
    /// As [`Profile::int`].
    pub fn count(&self, name: &str, min: usize, max: usize) -> Result<usize, SimError> {
        self.int(name, min as i64, max as i64).map(|i| i as usize)
    }

    /// A boolean switch.
    ///
    /// # Errors
    /// Missing parameter or not a boolean.
    pub fn bool(&self, name: &str) -> Result<bool, SimError> {
        let p = self.get(name)?;
        match &p.value {
            ParamValue::Bool(b) => Ok(*b),
            other => Err(SimError::at(
                p.origin.clone(),
                format!("expected true or false, got `{other}`"),
            )),
        }
    }

    /// A word, checked against the accepted ones.
    ///
    /// # Errors
    /// Missing parameter, or a value not among `choices`.
    pub fn choice(&self, name: &str, choices: &[&str]) -> Result<String, SimError> {
        let p = self.get(name)?;
        let s = p.value.to_string();
        if choices.iter().any(|c| c.eq_ignore_ascii_case(&s)) {
            Ok(s.to_ascii_lowercase())
        } else {
            Err(SimError::at(
                p.origin.clone(),
                format!("expected one of {}, got `{s}`", choices.join(", ")),
            ))
        }
    }

    /// Any string value.
    ///
    /// # Errors
    /// Missing parameter or not a string.
    pub fn string(&self, name: &str) -> Result<String, SimError> {
        let p = self.get(name)?;
        match &p.value {
            ParamValue::Str(s) => Ok(s.clone()),
            other => Err(SimError::at(
                p.origin.clone(),
                format!("expected a string, got `{other}`"),
            )),
        }
    }

    /// A duration in milliseconds (a number) or a duration string (`30s`).
    ///
    /// # Errors
    /// Missing parameter or not a duration.
    pub fn millis(&self, name: &str) -> Result<SimTime, SimError> {
        let p = self.get(name)?;
        match &p.value {
            ParamValue::Str(s) => parse_duration(s).map_err(|m| SimError::at(p.origin.clone(), m)),
            _ => Ok(SimTime::from_millis_f64(self.f64(name)?)),
        }
    }
}

/// All the profiles a run can use, one per service.
///
/// A profile file that does not parse replaces its service's profile with its error: a run
/// that uses that service fails with the file, line and field, and a run of the other services
/// goes ahead (an instructor editing `kinesis.toml` can still show Kafka).
#[derive(Clone, Debug)]
pub struct ProfileSet {
    profiles: BTreeMap<ServiceKind, Profile>,
    /// Services whose replacement file is broken: where and what.
    broken: BTreeMap<ServiceKind, (Location, String)>,
}

/// The profile files compiled into the library, as (file name, text).
pub const EMBEDDED: [(&str, &str); 5] = [
    ("kafka.toml", include_str!("../profiles/kafka.toml")),
    ("eventhubs.toml", include_str!("../profiles/eventhubs.toml")),
    ("eventgrid.toml", include_str!("../profiles/eventgrid.toml")),
    ("kinesis.toml", include_str!("../profiles/kinesis.toml")),
    ("pubsub.toml", include_str!("../profiles/pubsub.toml")),
];

impl ProfileSet {
    /// The profiles compiled into the binary.
    ///
    /// # Errors
    /// Only if an embedded file is broken, which the crate's tests rule out.
    pub fn embedded() -> Result<ProfileSet, SimError> {
        let mut profiles = BTreeMap::new();
        for (name, text) in EMBEDDED {
            let p = Profile::from_toml_str(text, &format!("<embedded {name}>"))?;
            profiles.insert(p.service, p);
        }
        Ok(ProfileSet {
            profiles,
            broken: BTreeMap::new(),
        })
    }

    /// The embedded profiles, with every `*.toml` file in `dir` replacing the one of its
    /// service.
    ///
    /// A file that cannot be read or parsed is kept as the error of its service (named by
    /// its `service` key, or else by its file name, such as `kinesis.toml`), reported by
    /// [`ProfileSet::get`] only when that service is used.
    ///
    /// # Errors
    /// An unreadable directory, or a broken file whose service cannot be told (with file,
    /// line and field).
    pub fn load_dir(dir: &Path) -> Result<ProfileSet, SimError> {
        let mut set = ProfileSet::embedded()?;
        let entries = std::fs::read_dir(dir).map_err(|e| SimError::io(dir, e))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let file = path.display().to_string();
            let (text, parsed) = match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let parsed = Profile::from_toml_str(&text, &file);
                    (Some(text), parsed)
                }
                Err(e) => (None, Err(SimError::io(&path, e))),
            };
            match parsed {
                Ok(p) => {
                    set.broken.remove(&p.service);
                    set.profiles.insert(p.service, p);
                }
                Err(err) => {
                    let Some(kind) = service_of(&path, text.as_deref()) else {
                        return Err(err);
                    };
                    let (location, message) = match err {
                        SimError::File { location, message } => (location, message),
                        other => (Location::file_start(&file), other.to_string()),
                    };
                    set.profiles.remove(&kind);
                    set.broken.insert(kind, (location, message));
                }
            }
        }
        Ok(set)
    }

    /// Replaces the profile of one service.
    pub fn insert(&mut self, profile: Profile) {
        self.broken.remove(&profile.service);
        self.profiles.insert(profile.service, profile);
    }

    /// The profile of `service`.
    ///
    /// # Errors
    /// [`SimError::Invalid`] if the set has none (cannot happen with embedded profiles).
    /// [`SimError::File`] if the file meant to replace it is broken; [`SimError::Invalid`]
    /// if the set has none.
    pub fn get(&self, service: ServiceKind) -> Result<&Profile, SimError> {
        if let Some((location, message)) = self.broken.get(&service) {
            return Err(SimError::at(
                location.clone(),
                format!("the {service} profile is broken: {message}"),
            ));
        }
        self.profiles
            .get(&service)
            .ok_or_else(|| SimError::Invalid(format!("no profile for service {service}")))
    }

    /// Every usable profile, in service order (broken ones are left out: see
    /// [`ProfileSet::get`]).
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }
}

/// Which service a profile file that did not parse was meant for: its `service` key if the
/// TOML is readable that far, else its file name (`kinesis.toml`, `kafka-edited.toml` does
/// not count).
fn service_of(path: &Path, text: Option<&str>) -> Option<ServiceKind> {
    let from_key = text
        .and_then(|t| toml::from_str::<toml::Table>(t).ok())
        .and_then(|t| {
            t.get("service")
                .and_then(|v| v.as_str().map(str::to_string))
        })
        .and_then(|s| ServiceKind::parse(&s));
    from_key.or_else(|| {
        path.file_stem()
            .and_then(|s| s.to_str())
            .and_then(ServiceKind::parse)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_profiles_all_load_with_sources() {
        let set = ProfileSet::embedded().unwrap();
        for kind in ServiceKind::ALL {
            let p = set.get(kind).unwrap();
            assert!(!p.params.is_empty(), "{kind} has no params");
            for (name, param) in &p.params {
                assert!(
                    param.source_url.starts_with("http") || param.source_url.starts_with("kgate"),
                    "{kind}.{name} source {}",
                    param.source_url
                );
            }
        }
    }

    #[test]
    fn profile_without_source_url_names_file_line_and_field() {
        let text = "service = \"kinesis\"\nname = \"x\"\ndescription = \"y\"\n\n\
                    [params.shards]\nvalue = 1\nas_of = \"2026-11\"\n";
        let err = Profile::from_toml_str(text, "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.toml:5:"), "{err}");
        assert!(err.contains("source_url"), "{err}");
    }

    #[test]
    fn profile_with_bad_date_names_the_as_of_field() {
        let text = "service = \"kinesis\"\nname = \"x\"\ndescription = \"y\"\n\
                    [params.shards]\nvalue = 1\nsource_url = \"https://a\"\nas_of = \"soon\"\n";
        let err = Profile::from_toml_str(text, "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.toml:7:9: field `params.shards.as_of`"),
            "{err}"
        );
    }

    #[test]
    fn a_broken_profile_blocks_only_its_own_service() {
        let dir = std::env::temp_dir().join(format!("kgate-sim-broken-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Broken TOML: the service is told by the file name.
        std::fs::write(
            dir.join("kinesis.toml"),
            "service = \"kinesis\"\nname = [\n",
        )
        .unwrap();
        // Valid TOML, missing source: the service is told by its key.
        std::fs::write(
            dir.join("edited.toml"),
            "service = \"pubsub\"\nname = \"x\"\ndescription = \"y\"\n\
             [params.subscribers]\nvalue = 1\nas_of = \"2026-11\"\n",
        )
        .unwrap();
        let set = ProfileSet::load_dir(&dir);
        std::fs::remove_dir_all(&dir).ok();
        let set = set.unwrap();
        assert!(set.get(ServiceKind::Kafka).is_ok());
        assert!(set.get(ServiceKind::EventHubs).is_ok());
        let kin = set.get(ServiceKind::Kinesis).unwrap_err().to_string();
        assert!(kin.contains("kinesis.toml:"), "{kin}");
        assert!(kin.contains("the kinesis profile is broken"), "{kin}");
        let ps = set.get(ServiceKind::PubSub).unwrap_err().to_string();
        assert!(ps.contains("edited.toml:4:"), "{ps}");
        assert!(ps.contains("source_url"), "{ps}");
        assert_eq!(set.iter().count(), 3);
    }

    #[test]
    fn wrong_type_is_reported_where_the_value_was_written() {
        let text = "service = \"kinesis\"\nname = \"x\"\ndescription = \"y\"\n\
                    [params.shards]\nvalue = \"many\"\nsource_url = \"https://a\"\nas_of = \"2026-11\"\n";
        let p = Profile::from_toml_str(text, "p.toml").unwrap();
        let err = p.int("shards", 1, 10).unwrap_err().to_string();
        assert!(
            err.contains("p.toml:5:9: field `params.shards.value`"),
            "{err}"
        );
        assert!(err.contains("whole number"), "{err}");
    }
}
