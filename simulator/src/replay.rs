//! Replay after a bug: how much of what a buggy consumer processed each service can give back.
//!
//! A consumer starts mishandling records at `bug_at`; someone notices `found_after` later,
//! fixes it, and rewinds to `bug_at` to process everything since again: Kafka resets the
//! group's offsets to a timestamp, Event Hubs starts from an enqueued time, Kinesis reads with
//! an `AT_TIMESTAMP` iterator, Pub/Sub seeks the subscription to a time or to a snapshot. Each
//! can go back only as far as it still holds the records (its *replay window*); whatever was
//! published before that is gone, and the report counts it as lost.
//!
//! Bugs are found hours or days later, far beyond the minutes a run simulates, so the counts
//! are the steady state of the offered rate over `found_after`, as monthly costs are: records
//! affected = rate × `found_after`, reprocessed = rate × min(`found_after`, window), lost = the
//! rest.

use serde::Serialize;

use crate::time::SimTime;

/// How a Pub/Sub subscription is rewound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PubSubSeek {
    /// Seek to a timestamp: only messages the subscription (retain_acked_messages) or the
    /// topic (topic retention) still keeps come back.
    Time,
    /// Seek to a snapshot taken when the bug started (before a deploy, say): it keeps every
    /// message unacknowledged then or published since, for at most 7 days.
    Snapshot,
}

/// The replay a scenario asks for.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ReplaySpec {
    /// When the consumer bug started, from the start of the run.
    pub bug_at: SimTime,
    /// How long after that it is found and the replay starts.
    pub found_after: SimTime,
    /// How Pub/Sub rewinds.
    pub pubsub_seek: PubSubSeek,
}

/// How far back one service can rewind, and with which mechanism.
pub(crate) struct ReplayWindow {
    /// `None`: nothing can be replayed.
    pub window: Option<SimTime>,
    /// The mechanism and the limit, for people.
    pub how: String,
}

/// What a replay gives back on one service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Replay {
    /// Records the buggy consumer processed: published between the bug and its discovery.
    pub affected: u64,
    /// Of those, the records the service still holds and processes again.
    pub reprocessed: u64,
    /// Of those, the records already deleted when the bug is found: they cannot be replayed.
    pub lost: u64,
    /// How far back the service can go (none: it keeps nothing to replay).
    pub window: Option<SimTime>,
    /// One sentence: the mechanism, its limit and the outcome.
    pub detail: String,
}

impl Replay {
    /// The replay of `spec` on a service with `window`, at `rate` records per second.
    pub(crate) fn plan(spec: &ReplaySpec, rate: f64, w: ReplayWindow) -> Replay {
        let d = spec.found_after.as_secs_f64();
        let kept = w.window.map_or(0.0, |w| w.as_secs_f64().min(d));
        let affected = (rate * d).round() as u64;
        let reprocessed = ((rate * kept).round() as u64).min(affected);
        let lost = affected - reprocessed;
        let outcome = if lost == 0 {
            "everything since the bug is replayed".to_string()
        } else if reprocessed == 0 {
            "nothing since the bug can be replayed".to_string()
        } else {
            format!(
                "the first {} after the bug are gone",
                SimTime::from_secs_f64(d - kept)
            )
        };
        Replay {
            affected,
            reprocessed,
            lost,
            window: w.window,
            detail: format!(
                "bug at {}, found {} later: {}; {outcome}",
                spec.bug_at, spec.found_after, w.how
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_shorter_than_the_delay_loses_the_oldest_records() {
        let spec = ReplaySpec {
            bug_at: SimTime::from_secs(1),
            found_after: SimTime::from_secs(2 * 86_400),
            pubsub_seek: PubSubSeek::Time,
        };
        let day = ReplayWindow {
            window: Some(SimTime::from_secs(86_400)),
            how: "x".into(),
        };
        let r = Replay::plan(&spec, 10.0, day);
        assert_eq!(
            (r.affected, r.reprocessed, r.lost),
            (1_728_000, 864_000, 864_000)
        );
        assert!(
            r.detail.ends_with("the first 24h after the bug are gone"),
            "{}",
            r.detail
        );
        let none = ReplayWindow {
            window: None,
            how: "x".into(),
        };
        let r = Replay::plan(&spec, 10.0, none);
        assert_eq!((r.reprocessed, r.lost), (0, 1_728_000));
    }
}
