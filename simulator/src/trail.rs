//! Causal trails: what each fault did, as data a lab runner can grade.
//!
//! A trail is the chain **fault → mechanism → metric → symptom** for one fault on one service.
//! Models record mechanisms while they run ("leader election", "ISR shrink", "rebalance");
//! after the run the collector adds the metrics that moved in the fault's window (consumer lag,
//! latency, throttled requests, under-replicated partitions) and the symptoms a user would see
//! (lost, duplicated, reordered or late messages, naming the message ids).
//!
//! Every step has a stable snake_case `code`, so a root-cause-analysis lab can check that a
//! student's answer names, for example, `log_truncation` as the mechanism behind
//! `messages_lost`, without parsing prose.
//!
//! | stage | codes |
//! |---|---|
//! | fault | the fault kinds of [`crate::FaultKind`] (`broker_crash`, ...) |
//! | mechanism | Kafka: `broker_down`, `network_unreachable`, `storage_error`, `isr_shrink`, `isr_expand`, `leader_election`, `unclean_leader_election`, `log_truncation`, `partition_offline`, `leader_not_available`, `not_enough_replicas`, `request_timeout`, `producer_retry`, `delivery_timeout`, `quota_reduced`, `retention_expired`; groups: `reader_stopped`, `session_timeout`, `max_poll_exceeded`, `rebalance`, `ownership_expired`, `partition_ownership_moved`, `lease_expired`, `lease_takeover`; cloud: `server_busy`, `throttle_time` and `policy_violation` (Event Hubs' Kafka endpoint), `provisioned_throughput_exceeded`, `resource_exhausted`, `ordering_key_limit`, `retries_exhausted`, `managed_failover`, `on_demand_scale_up`, `ack_deadline_expired`, `ack_failed`, `dead_letter`, `subscriber_stopped`, `push_retry`, `endpoint_unavailable`, `event_dropped`; any: `added_latency`, `slow_processing`, `message_too_large`, `record_too_large`, `not_applicable` |
//! | metric | `consumer_lag`, `end_to_end_latency`, `throttled_requests`, `under_replicated_partitions`, `delivered_rate`, `retries` |
//! | symptom | `messages_lost`, `duplicates`, `reordered`, `publish_failures`, `late_data`, `dead_lettered`, `no_visible_effect` |

use serde::Serialize;

use crate::profile::ServiceKind;
use crate::time::SimTime;

/// The four stages of a causal chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The injected fault itself.
    Fault,
    /// How the service reacted inside.
    Mechanism,
    /// A measurement that moved.
    Metric,
    /// What a user of the service sees.
    Symptom,
}

/// One link of a trail.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrailStep {
    /// Which stage.
    pub stage: Stage,
    /// A stable identifier such as `log_truncation`.
    pub code: String,
    /// When it first happened.
    pub at: SimTime,
    /// How many times it happened (mechanisms repeat: 4,000 throttled requests).
    pub count: u64,
    /// A sentence for people.
    pub detail: String,
    /// The value behind a metric (peak lag, max latency in ms, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The same metric before the fault, for comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The messages concerned (capped; `count` has the total).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub message_ids: Vec<u64>,
}

/// Everything one fault did to one service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CausalTrail {
    /// The fault's index in the scenario.
    pub fault_id: usize,
    /// The fault kind name (`broker_crash`, ...).
    pub fault: String,
    /// The service.
    pub service: ServiceKind,
    /// The chain, ordered by stage and then time.
    pub steps: Vec<TrailStep>,
}

impl CausalTrail {
    /// The first step with this stage and code, if the fault led to it.
    pub fn step(&self, stage: Stage, code: &str) -> Option<&TrailStep> {
        self.steps
            .iter()
            .find(|s| s.stage == stage && s.code == code)
    }

    /// Whether the trail contains this stage and code.
    pub fn has(&self, stage: Stage, code: &str) -> bool {
        self.step(stage, code).is_some()
    }

    /// The codes of one stage, in order.
    pub fn codes(&self, stage: Stage) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.stage == stage)
            .map(|s| s.code.as_str())
            .collect()
    }

    /// The chain as one line: `broker_crash → leader_election → consumer_lag → messages_lost`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for stage in [
            Stage::Fault,
            Stage::Mechanism,
            Stage::Metric,
            Stage::Symptom,
        ] {
            let codes = self.codes(stage);
            if !codes.is_empty() {
                parts.push(codes.join(" + "));
            }
        }
        parts.join(" → ")
    }
}
