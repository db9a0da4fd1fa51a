//! Azure Event Hubs (Standard tier): throughput units as token buckets, ServerBusy throttling
//! with client retries, a fixed partition count, and event processors reading with checkpoints.
//!
//! - **Ingress:** each throughput unit (TU) admits 1 MB/s *or* 1,000 events/s, whichever comes
//!   first, over a short window: two token buckets with a one-second burst. A send that finds
//!   either empty gets `ServerBusy` (50002) and the client retries with exponential back-off
//!   until it gives up.
//! - **Egress:** 2 MB/s or 4,096 events/s per TU, capped without an error: reads are delayed.
//!   Extra consumer groups and extra readers per partition consume egress too, and several
//!   readers of one partition in one group all get every event (duplicates).
//! - **Durability:** the service acknowledges after storing; broker failures are the
//!   provider's problem and show up as a short unavailability of some partitions.
//! - **Readers:** event-processor instances own partitions, checkpoint every interval, and take
//!   over a dead instance's partitions when its ownership expires (from the last checkpoint).
//! - **Kafka endpoint** (`protocol = "kafka"`): Kafka clients see the same throughput units
//!   differently. A produce request over the quota is held until there is room and answered
//!   with `throttle_time_ms`, not refused with ServerBusy; held longer than the client's
//!   `request.timeout.ms` it fails with Policy Violation and the producer resends it until
//!   `delivery.timeout.ms`. Consumer groups are Kafka's: created on first use, scoped to the
//!   namespace (one group name on several topics rebalances them all together), not counted
//!   against the event hub's consumer-group limit, one consumer per partition.
//! - **Hot partitions:** Standard tier throttles the namespace, not a partition; Microsoft
//!   guarantees a partition one TU. A partition above that is reported, not throttled.

use crate::fault::{Fault, FaultKind};
use crate::metrics::{Cause, CostEstimate};
use crate::models::group::{Gate, Group, GroupCfg, GroupEv, ReadGate};
use crate::models::log::{Log, Rec};
use crate::models::{
    backoff, Batcher, Bucket, Capacity, Compression, Cx, KeyOrder, Model, Offered,
};
use crate::profile::Profile;
use crate::rng::{mix64, LatencyDist};
use crate::time::SimTime;
use crate::workload::Msg;
use crate::SimError;

/// How Kafka clients see Event Hubs through its Kafka endpoint.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KafkaEndpoint {
    /// A produce request delayed longer than this fails with Policy Violation.
    pub request_timeout: SimTime,
    /// The producer gives a record up once it has tried for this long.
    pub delivery_timeout: SimTime,
    pub retry_backoff: SimTime,
}

/// Event Hubs settings.
#[derive(Clone, Debug)]
pub(crate) struct EventHubsCfg {
    pub tier: String,
    /// `Some` when Kafka clients use the Kafka endpoint rather than AMQP.
    pub kafka: Option<KafkaEndpoint>,
    pub tus: f64,
    pub ingress_bytes: f64,
    pub ingress_events: f64,
    pub egress_bytes: f64,
    pub egress_events: f64,
    pub partitions: usize,
    pub consumer_groups: usize,
    pub readers_per_partition: usize,
    pub max_event_bytes: u32,
    pub batch_max_events: usize,
    pub linger: SimTime,
    pub retention: SimTime,
    /// The producer compresses each message body itself (the service never does).
    pub compression: Compression,
    pub publish: LatencyDist,
    pub max_retries: u32,
    pub retry_delay: SimTime,
    pub retry_max: SimTime,
    pub try_timeout: SimTime,
    pub managed_failover: SimTime,
    pub group: GroupCfg,
    pub tu_usd_per_hour: f64,
    pub ingress_usd_per_million: f64,
    pub allowance_gb_per_tu: f64,
    pub storage_usd_per_gb_month: f64,
}

impl EventHubsCfg {
    pub fn from_profile(p: &Profile) -> Result<EventHubsCfg, SimError> {
        let tier = p.choice("tier", &["basic", "standard"])?;
        let kafka = p.choice("protocol", &["amqp", "kafka"])? == "kafka";
        if kafka && tier == "basic" {
            return Err(SimError::at(
                p.origin("protocol"),
                "the Kafka endpoint needs the Standard tier or above (a Basic namespace answers \
                 TopicAuthorizationException): set tier = \"standard\" or protocol = \"amqp\"",
            ));
        }
        let consumer_groups = p.count("consumer_groups", 1, 1000)?;
        let max_groups = p.count("max_consumer_groups", 1, 1000)?;
        // Kafka consumer groups are not Event Hubs consumer groups: created on first use,
        // scoped to the namespace, and not counted against the per-event-hub limit.
        if consumer_groups > max_groups && !kafka {
            return Err(SimError::at(
                p.origin("consumer_groups"),
                format!(
                    "the tier allows {max_groups} consumer groups per event hub, got \
                     {consumer_groups} (Kafka consumer groups on the Kafka endpoint are not \
                     counted against it: protocol = \"kafka\")"
                ),
            ));
        }
        let readers = p.count("readers_per_partition", 1, 1000)?;
        if kafka && readers > 1 {
            return Err(SimError::at(
                p.origin("readers_per_partition"),
                format!(
                    "a Kafka consumer group gives each partition to one consumer, got \
                     readers_per_partition = {readers} with protocol = \"kafka\": set it to 1 \
                     and add consumer_groups to read the events more than once"
                ),
            ));
        }
        let max_readers = p.count("max_readers_per_partition", 1, 1000)?;
        if readers > max_readers {
            return Err(SimError::at(
                p.origin("readers_per_partition"),
                format!(
                    "at most {max_readers} concurrent readers per partition per consumer group, got {readers} (QuotaExceeded)"
                ),
            ));
        }
        let receive =
            LatencyDist::from_p50_p99(p.millis("receive_p50_ms")?, p.millis("receive_p99_ms")?);
        let mut group = GroupCfg {
            consumers: p.count("processors", 1, 1000)?,
            processing: p.millis("processing_ms")?,
            max_batch: p.count("max_batch", 1, 100_000)?,
            commit_interval: p.millis("checkpoint_interval_ms")?,
            detect_after: p.millis("ownership_expiration_ms")?,
            sync: p.millis("load_balancing_interval_ms")?,
            cooperative: true,
            max_poll_interval: None,
            poll_interval: None,
            fetch: receive,
            detect_code: "ownership_expired",
            rebalance_code: "partition_ownership_moved",
            label: "event processor",
            copies: readers as u32,
        };
        let kafka = if kafka {
            // Kafka clients: a Kafka consumer group with Kafka's session timeout and
            // rebalances, its offsets committed to the service.
            group.detect_after = p.millis("kafka_session_timeout_ms")?;
            group.detect_code = "session_timeout";
            group.rebalance_code = "rebalance";
            group.label = "Kafka consumer";
            Some(KafkaEndpoint {
                request_timeout: p.millis("kafka_request_timeout_ms")?,
                delivery_timeout: p.millis("kafka_delivery_timeout_ms")?,
                retry_backoff: p.millis("kafka_retry_backoff_ms")?,
            })
        } else {
            None
        };
        let max_event = if tier == "basic" {
            p.int("max_event_bytes_basic", 1, u32::MAX as i64)?
        } else {
            p.int("max_event_bytes", 1, u32::MAX as i64)?
        };
        let retention_days = if tier == "basic" {
            1.0
        } else {
            p.f64("retention_days")?
        };
        Ok(EventHubsCfg {
            kafka,
            tus: p.int("throughput_units", 1, 40)? as f64,
            ingress_bytes: p.f64("ingress_bytes_per_tu")?,
            ingress_events: p.f64("ingress_events_per_tu")?,
            egress_bytes: p.f64("egress_bytes_per_tu")?,
            egress_events: p.f64("egress_events_per_tu")?,
            partitions: p.count("partitions", 1, 32)?,
            consumer_groups,
            readers_per_partition: readers,
            max_event_bytes: max_event as u32,
            batch_max_events: p.count("producer_batch_max_events", 1, 100_000)?,
            linger: p.millis("producer_linger_ms")?,
            compression: Compression::ratio_param(p, "client_compression_ratio")?,
            retention: SimTime::from_secs_f64(retention_days * 86_400.0),
            publish: LatencyDist::from_p50_p99(
                p.millis("publish_p50_ms")?,
                p.millis("publish_p99_ms")?,
            ),
            max_retries: p.int("client_max_retries", 0, 100)? as u32,
            retry_delay: p.millis("client_retry_delay_ms")?,
            retry_max: p.millis("client_retry_max_delay_ms")?,
            try_timeout: p.millis("client_try_timeout_ms")?,
            managed_failover: p.millis("managed_failover_ms")?,
            group,
            tu_usd_per_hour: p.f64("tu_usd_per_hour")?,
            ingress_usd_per_million: p.f64("ingress_usd_per_million_events")?,
            allowance_gb_per_tu: p.f64("storage_allowance_gb_per_tu")?,
            storage_usd_per_gb_month: p.f64("blob_lrs_usd_per_gb_month")?,
            tier,
        })
    }
}

/// Event Hubs events.
pub(crate) enum EhEv {
    Group(GroupEv),
    /// A send request (one `EventDataBatch` for one partition) reaches the service.
    Arrive {
        batch: Vec<Rec>,
        p: u32,
        attempt: u32,
    },
    Retry {
        batch: Vec<Rec>,
        p: u32,
        attempt: u32,
    },
    /// A produce request on the Kafka endpoint that was held back for `throttle_time_ms` is
    /// written and answered.
    Admit {
        batch: Vec<Rec>,
        p: u32,
    },
    /// A partition's open batch has waited its linger.
    Flush {
        p: u32,
        seq: u64,
    },
    StormTick {
        fault: u32,
        until: SimTime,
        interval: SimTime,
        n: u32,
    },
}

impl From<GroupEv> for EhEv {
    fn from(e: GroupEv) -> Self {
        EhEv::Group(e)
    }
}

struct Egress {
    bytes: Bucket,
    events: Bucket,
    multiplier: f64,
}

impl ReadGate for Egress {
    fn fetch(&mut self, _p: usize, records: usize, bytes: u64, now: SimTime) -> Gate {
        let m = self.multiplier;
        let a = self.bytes.take_debt(now, bytes as f64 * m);
        let b = self.events.take_debt(now, records as f64 * m);
        let d = a.max(b);
        if d > SimTime::ZERO {
            Gate::Delay(d)
        } else {
            Gate::Open
        }
    }
}

/// The Event Hubs model.
pub(crate) struct EventHubs {
    cfg: EventHubsCfg,
    in_bytes: Bucket,
    in_events: Bucket,
    egress: Egress,
    logs: Vec<Log>,
    visible: Vec<u64>,
    group: Group,
    unavailable_until: Vec<SimTime>,
    clients_cut: bool,
    extra_latency: SimTime,
    /// A key's sends arrive in order (a partition's order, as far as anyone can observe it).
    order: KeyOrder,
    outstanding: u64,
    ingress_events_billed: f64,
    batcher: Batcher,
}

impl EventHubs {
    pub fn new(cfg: EventHubsCfg) -> EventHubs {
        let n = cfg.partitions;
        let group = Group::new(cfg.group.clone(), n);
        EventHubs {
            in_bytes: Bucket::new(cfg.ingress_bytes * cfg.tus, 1.0),
            in_events: Bucket::new(cfg.ingress_events * cfg.tus, 1.0),
            egress: Egress {
                bytes: Bucket::new(cfg.egress_bytes * cfg.tus, 1.0),
                events: Bucket::new(cfg.egress_events * cfg.tus, 1.0),
                multiplier: (cfg.consumer_groups * cfg.readers_per_partition) as f64,
            },
            logs: (0..n).map(|_| Log::default()).collect(),
            visible: vec![0; n],
            group,
            unavailable_until: vec![SimTime::ZERO; n],
            clients_cut: false,
            extra_latency: SimTime::ZERO,
            order: KeyOrder::default(),
            outstanding: 0,
            ingress_events_billed: 0.0,
            batcher: Batcher::new(
                n,
                cfg.batch_max_events,
                u64::from(cfg.max_event_bytes),
                cfg.linger,
            ),
            cfg,
        }
    }

    fn send(&mut self, batch: Vec<Rec>, p: u32, attempt: u32, cx: &mut Cx<EhEv>) {
        if self.clients_cut {
            let t = self
                .cfg
                .kafka
                .map_or(self.cfg.try_timeout, |k| k.request_timeout);
            cx.mech(Cause::Window, "request_timeout", || {
                format!("the client cannot reach the namespace: each try times out after {t}")
            });
            self.failed_try(batch, p, attempt, t, cx);
            return;
        }
        let lat = cx.rng.latency(&self.cfg.publish).plus(self.extra_latency);
        let at = cx.now().plus(lat);
        let at = self
            .order
            .arrival_of_request(batch.iter().map(|r| r.key), at);
        cx.at(at, EhEv::Arrive { batch, p, attempt });
    }

    fn failed_try(
        &mut self,
        batch: Vec<Rec>,
        p: u32,
        attempt: u32,
        after: SimTime,
        cx: &mut Cx<EhEv>,
    ) {
        let now = cx.now();
        if let Some(k) = self.cfg.kafka {
            // A Kafka producer resends after retry.backoff.ms until delivery.timeout.ms has
            // passed since the batch's oldest record was sent.
            let oldest = batch.iter().map(|r| r.created).min().unwrap_or(now);
            let next = now.plus(after).plus(k.retry_backoff);
            if next > oldest.plus(k.delivery_timeout) {
                self.outstanding = self.outstanding.saturating_sub(batch.len() as u64);
                for r in &batch {
                    cx.col.failed(r.id, now.plus(after), Cause::Window);
                }
                let first = batch.first().map_or(0, |r| r.id);
                let (n, dt) = (batch.len(), k.delivery_timeout);
                cx.mech_id(Cause::Window, "delivery_timeout", first, || {
                    format!(
                        "{n} records waited longer than delivery.timeout.ms ({dt}): the sends fail"
                    )
                });
                return;
            }
            cx.col.retried();
            cx.at(
                next,
                EhEv::Retry {
                    batch,
                    p,
                    attempt: attempt + 1,
                },
            );
            return;
        }
        if attempt >= self.cfg.max_retries {
            self.outstanding = self.outstanding.saturating_sub(batch.len() as u64);
            for r in &batch {
                cx.col.failed(r.id, now.plus(after), Cause::Window);
            }
            let n = self.cfg.max_retries;
            let first = batch.first().map_or(0, |r| r.id);
            let k = batch.len();
            cx.mech_id(Cause::Window, "retries_exhausted", first, || {
                format!(
                    "the client gave up after {n} retries: the send of a batch of {k} events fails"
                )
            });
            return;
        }
        cx.col.retried();
        let wait = after.plus(backoff(
            &mut cx.rng,
            self.cfg.retry_delay,
            self.cfg.retry_max,
            attempt,
        ));
        cx.after(
            wait,
            EhEv::Retry {
                batch,
                p,
                attempt: attempt + 1,
            },
        );
    }

    fn arrive(&mut self, batch: Vec<Rec>, p: u32, attempt: u32, cx: &mut Cx<EhEv>) {
        let now = cx.now();
        let pi = p as usize;
        if now < self.unavailable_until[pi] {
            cx.mech(Cause::Window, "managed_failover", || {
                format!("partition {p} is moving to another node inside the service: sends fail briefly")
            });
            self.failed_try(batch, p, attempt, SimTime::ZERO, cx);
            return;
        }
        let bytes: f64 = batch.iter().map(|r| f64::from(r.size)).sum();
        let events = batch.len() as f64;
        if let Some(k) = self.cfg.kafka {
            // The Kafka endpoint does not refuse a request over the quota: it holds it until
            // the throughput units have room and says how long in throttle_time_ms. Only a
            // delay beyond the client's request.timeout.ms fails (Policy Violation).
            let wait = self
                .in_bytes
                .wait_for(now, bytes)
                .max(self.in_events.wait_for(now, events));
            if wait == SimTime::ZERO {
                self.in_bytes.try_take(now, bytes);
                self.in_events.try_take(now, events);
                self.admit(batch, p, cx);
                return;
            }
            cx.col.throttled(1);
            let tus = self.cfg.tus;
            let first = batch.first().map_or(0, |r| r.id);
            if wait > k.request_timeout {
                let t = k.request_timeout;
                cx.mech_id(Cause::Window, "policy_violation", first, || {
                    format!(
                        "ingress above {tus} TU would hold the produce request {wait}, longer \
                         than request.timeout.ms ({t}): it fails with Policy Violation and the \
                         producer resends it"
                    )
                });
                self.failed_try(batch, p, attempt, t, cx);
                return;
            }
            self.in_bytes.take_debt(now, bytes);
            self.in_events.take_debt(now, events);
            cx.mech_id(Cause::Window, "throttle_time", first, || {
                format!(
                    "ingress above {tus} TU (1 MB/s or 1,000 events/s each): the produce \
                     request is held and answered late, with throttle_time_ms (no ServerBusy \
                     error over Kafka; the first was held {wait})"
                )
            });
            cx.at(now.plus(wait), EhEv::Admit { batch, p });
            return;
        }
        if !(self.in_bytes.has(now, bytes) && self.in_events.has(now, events)) {
            // One throttled request: the whole EventDataBatch is refused and resent.
            cx.col.throttled(1);
            let tus = self.cfg.tus;
            let first = batch.first().map_or(0, |r| r.id);
            cx.mech_id(Cause::Window, "server_busy", first, || {
                format!(
                    "ingress above {tus} TU (1 MB/s or 1,000 events/s each): the send request gets ServerBusy 50002, the client backs off and resends the batch"
                )
            });
            self.failed_try(batch, p, attempt, SimTime::ZERO, cx);
            return;
        }
        self.in_bytes.try_take(now, bytes);
        self.in_events.try_take(now, events);
        self.admit(batch, p, cx);
    }

    /// Writes an accepted request's events to partition `p` and answers the producer.
    fn admit(&mut self, batch: Vec<Rec>, p: u32, cx: &mut Cx<EhEv>) {
        let now = cx.now();
        let pi = p as usize;
        let back = cx.rng.latency(&self.cfg.publish);
        self.outstanding = self.outstanding.saturating_sub(batch.len() as u64);
        for rec in batch {
            self.ingress_events_billed += (f64::from(rec.size) / 65_536.0).ceil().max(1.0);
            cx.col.acked(now.plus(back).minus(rec.created));
            self.logs[pi].push(rec);
        }
        self.visible[pi] = self.logs[pi].end();
        self.group.data_available(pi, self.visible[pi], cx);
    }

    fn trim(&mut self, cx: &mut Cx<EhEv>) {
        let now = cx.now();
        for p in 0..self.logs.len() {
            self.logs[p].trim_below(self.group.low_water(p));
            while let Some(front) = self.logs[p].front() {
                if front.created.plus(self.cfg.retention) > now {
                    break;
                }
                let id = front.id;
                self.logs[p].pop_front();
                cx.col.lost(id, now, Cause::Window);
            }
            if self.group.processed(p) < self.logs[p].start() {
                self.group.truncated(p, u64::MAX);
            }
        }
    }

    fn scale(&mut self, now: SimTime, factor: f64) {
        let c = &self.cfg;
        self.in_bytes
            .scale(now, factor, c.ingress_bytes * c.tus, 1.0);
        self.in_events
            .scale(now, factor, c.ingress_events * c.tus, 1.0);
        self.egress
            .bytes
            .scale(now, factor, c.egress_bytes * c.tus, 1.0);
        self.egress
            .events
            .scale(now, factor, c.egress_events * c.tus, 1.0);
    }
}

impl Model for EventHubs {
    type Ev = EhEv;

    fn start(&mut self, cx: &mut Cx<EhEv>) {
        self.group.start(cx);
    }

    fn on_message(&mut self, msg: Msg, cx: &mut Cx<EhEv>) {
        // The service sees the body as the client sent it: compressed, if it compresses.
        let mut rec = Rec::new(&msg);
        rec.size = self.cfg.compression.wire(msg.size);
        if rec.size > self.cfg.max_event_bytes {
            cx.col.failed(msg.id, cx.now(), Cause::Window);
            let max = self.cfg.max_event_bytes;
            cx.mech_id(Cause::Window, "message_too_large", msg.id, || {
                format!("events above {max} bytes are refused (MessageSizeExceeded)")
            });
            return;
        }
        self.outstanding += 1;
        let p = (mix64(msg.key) % self.cfg.partitions as u64) as usize;
        let added = self.batcher.add(p, rec);
        if let Some(seq) = added.arm {
            cx.after(self.batcher.linger, EhEv::Flush { p: p as u32, seq });
        }
        if let Some(batch) = added.full {
            self.send(batch, p as u32, 0, cx);
        }
    }

    fn on_event(&mut self, ev: EhEv, cx: &mut Cx<EhEv>) {
        match ev {
            EhEv::Group(g) => {
                if self
                    .group
                    .on_event(g, &self.logs, &self.visible, &mut self.egress, cx)
                {
                    self.trim(cx);
                }
            }
            EhEv::Arrive { batch, p, attempt } => self.arrive(batch, p, attempt, cx),
            EhEv::Retry { batch, p, attempt } => self.send(batch, p, attempt, cx),
            EhEv::Admit { batch, p } => self.admit(batch, p, cx),
            EhEv::Flush { p, seq } => {
                if let Some(batch) = self.batcher.flush(p as usize, seq) {
                    self.send(batch, p, 0, cx);
                }
            }
            EhEv::StormTick {
                fault,
                until,
                interval,
                n,
            } => {
                if cx.now() < until {
                    let c = n as usize % self.cfg.group.consumers.max(1);
                    self.group.kick(c, Cause::Fault(fault as usize), cx);
                    cx.after(
                        interval,
                        EhEv::StormTick {
                            fault,
                            until,
                            interval,
                            n: n + 1,
                        },
                    );
                }
            }
        }
    }

    fn on_fault(&mut self, f: &Fault, start: bool, cx: &mut Cx<EhEv>) {
        let cause = Cause::Fault(f.id);
        let now = cx.now();
        match (&f.kind, start) {
            (FaultKind::BrokerCrash { broker }, true) | (FaultKind::LeaderFailover { partition: Some(broker) }, true) => {
                let d = self.cfg.managed_failover;
                let n = self.cfg.partitions;
                let b = *broker;
                for p in (0..n).filter(|p| p % 3 == b % 3) {
                    self.unavailable_until[p] = now.plus(d);
                }
                cx.mech(cause, "managed_failover", || {
                    format!("the service moves the partitions of the failed node (every third from {b}) for about {d}; no data is lost")
                });
            }
            (FaultKind::LeaderFailover { partition: None }, true) => {
                let d = self.cfg.managed_failover;
                self.unavailable_until[0] = now.plus(d);
                cx.mech(cause, "managed_failover", || format!("partition 0 moves inside the service (about {d})"));
            }
            (FaultKind::DiskFull { .. }, true) => cx.mech(cause, "not_applicable", || {
                "storage is managed by the provider: a full disk is not something a customer can cause".into()
            }),
            (FaultKind::NetworkPartition { .. }, s) => {
                self.clients_cut = s;
                self.group.unreachable = s;
                if s {
                    cx.mech(cause, "network_unreachable", || "clients cannot reach the namespace".into());
                }
            }
            (FaultKind::AddedLatency { latency }, s) => {
                let extra = if s { *latency } else { SimTime::ZERO };
                self.extra_latency = extra;
                self.group.extra_latency = extra;
                if s {
                    cx.mech(cause, "added_latency", || format!("every call takes {latency} longer each way"));
                }
            }
            (FaultKind::SlowConsumer { processing, consumer }, s) => {
                self.group.set_slow(*consumer, s.then_some(*processing));
                if s {
                    cx.mech(cause, "slow_processing", || format!("event processors now spend {processing} per event"));
                }
            }
            (FaultKind::ConsumerCrash { consumer }, true) => self.group.crash(*consumer, cause, &self.logs, cx),
            (FaultKind::ConsumerCrash { consumer }, false) => self.group.restart(*consumer, cause, cx),
            (FaultKind::ThrottlingSpike { capacity_factor }, s) => {
                let factor = if s { capacity_factor.clamp(0.001, 1.0) } else { 1.0 };
                self.scale(now, factor);
                if s {
                    cx.mech(cause, "quota_reduced", || {
                        format!("the namespace's throughput units are shared with a noisy neighbour: {:.0}% left", factor * 100.0)
                    });
                }
            }
            (FaultKind::RebalanceStorm { interval }, true) => {
                cx.mech(cause, "partition_ownership_moved", || {
                    "processors keep joining and leaving: partition ownership churns (and Kafka-endpoint groups are namespace-wide)".into()
                });
                cx.after(SimTime::ZERO, EhEv::StormTick { fault: f.id as u32, until: f.end(), interval: *interval, n: 0 });
            }
            _ => {}
        }
    }

    fn gauges(&self, now: SimTime) -> (u64, SimTime, u64) {
        let (lag, oldest) = self.group.lag(&self.logs);
        (lag, oldest.map_or(SimTime::ZERO, |o| now.minus(o)), 0)
    }

    fn idle(&self) -> bool {
        self.outstanding == 0 && self.group.caught_up(&self.logs)
    }

    fn replay_window(&self, _spec: &crate::replay::ReplaySpec) -> crate::replay::ReplayWindow {
        let r = self.cfg.retention;
        crate::replay::ReplayWindow {
            window: Some(r),
            how: if self.cfg.kafka.is_some() {
                format!(
                    "the Kafka group's offsets are reset to the bug's timestamp, within the \
                     event hub's retention ({r}; {} tier)",
                    self.cfg.tier
                )
            } else {
                format!(
                    "processors restart from the bug's enqueued time \
                     (EventPosition.FromEnqueuedTime), within the event hub's retention ({r}; \
                     {} tier)",
                    self.cfg.tier
                )
            },
        }
    }

    fn wire_ratio(&self) -> f64 {
        self.cfg.compression.ratio
    }

    fn capacities(&self, offered: &Offered) -> Vec<Capacity> {
        let c = &self.cfg;
        let mean = offered.mean_bytes();
        let readers = (c.consumer_groups * c.readers_per_partition) as f64;
        let mut out = vec![
            Capacity {
                stage: "quota",
                per_s: c.tus * (c.ingress_bytes / mean).min(c.ingress_events),
                how: format!(
                    "ingress {} TU × min({:.0} MB/s ÷ {mean:.0} B{}, {}/s)",
                    c.tus,
                    c.ingress_bytes / 1e6,
                    offered.compressed_note(),
                    crate::metrics::fmt_rate(c.ingress_events)
                ),
                relief: "add throughput units (or turn on auto-inflate)".into(),
            },
            Capacity {
                stage: "quota",
                per_s: c.tus * (c.egress_bytes / mean).min(c.egress_events) / readers,
                how: format!(
                    "egress {} TU × min({:.0} MB/s ÷ {mean:.0} B, {}/s) shared by {readers} \
                     reads of each event",
                    c.tus,
                    c.egress_bytes / 1e6,
                    crate::metrics::fmt_rate(c.egress_events)
                ),
                relief: "add throughput units, or fewer consumer groups and readers".into(),
            },
        ];
        out.extend(
            Capacity::readers_with_hot_key(
                "processors",
                c.group.consumers,
                c.partitions,
                c.group.processing,
                offered,
            )
            .or_else(|| {
                Capacity::readers(
                    "processors",
                    c.group.consumers,
                    c.partitions,
                    c.group.processing,
                    "partition",
                )
            }),
        );
        out
    }

    fn notes(&self, offered: &Offered) -> Vec<String> {
        // Standard tier throttles the namespace's TUs, not partitions: Microsoft guarantees a
        // partition up to one TU of ingress and egress and says more may work but is not
        // guaranteed. So a hot partition above that is named here, not throttled.
        let c = &self.cfg;
        let mut notes = Vec::new();
        let one_tu = (c.ingress_bytes / offered.mean_bytes()).min(c.ingress_events);
        let shares = offered.partition_shares(c.partitions);
        let (p, share) = shares
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let rate = offered.msgs_per_s * share;
        if rate > one_tu {
            notes.push(format!(
                "partition {p} takes {}/s ({:.0}% of the events{}), above the one throughput \
                 unit ({}/s here: 1 MB/s or 1,000 events/s) Microsoft guarantees a partition; \
                 more may get through, since the {} TUs are shared by the namespace, but it is \
                 not guaranteed",
                crate::metrics::fmt_rate(rate),
                100.0 * share,
                if offered.hot_key_share > 0.0 {
                    " with the hot key"
                } else {
                    ""
                },
                crate::metrics::fmt_rate(one_tu),
                c.tus
            ));
        }
        if c.tus > c.partitions as f64 {
            notes.push(format!(
                "{} TUs over {} partitions: Microsoft recommends at least as many partitions as \
                 throughput units",
                c.tus, c.partitions
            ));
        }
        notes
    }

    fn finish(
        &mut self,
        cx: &mut Cx<EhEv>,
        run: SimTime,
        offered: &Offered,
    ) -> (Vec<String>, CostEstimate) {
        self.group.mark_pending(&self.logs, cx);
        for rec in self.batcher.drain() {
            cx.col.pending(rec.id);
        }
        while let Some((_, ev)) = cx.q.pop() {
            if let crate::models::Ev::Model(
                EhEv::Arrive { batch, .. } | EhEv::Retry { batch, .. } | EhEv::Admit { batch, .. },
            ) = ev
            {
                for rec in batch {
                    cx.col.pending(rec.id);
                }
            }
        }
        let c = &self.cfg;
        let settings = vec![
            format!("tier={}", c.tier),
            format!(
                "protocol={}",
                if c.kafka.is_some() { "kafka" } else { "amqp" }
            ),
            format!("throughput_units={}", c.tus),
            format!("partitions={}", c.partitions),
            format!("consumer_groups={}", c.consumer_groups),
            format!("readers_per_partition={}", c.readers_per_partition),
            format!("processors={}", c.group.consumers),
            match c.kafka {
                Some(k) => format!(
                    "request.timeout.ms={} delivery.timeout.ms={}",
                    k.request_timeout.as_millis_f64(),
                    k.delivery_timeout.as_millis_f64()
                ),
                None => format!("client_max_retries={}", c.max_retries),
            },
            format!("client_compression_ratio={}", c.compression.ratio),
        ];
        let hours = run.as_secs_f64() / 3600.0;
        let mut cost = CostEstimate::default();
        cost.line("TU-hours", c.tus * hours, c.tu_usd_per_hour);
        cost.line(
            "million ingress events (64 KB units)",
            self.ingress_events_billed / 1e6,
            c.ingress_usd_per_million,
        );
        // The hub holds the retention window; each TU includes an allowance and the rest is
        // billed as blob storage. Internal replicas are the provider's and not billed.
        let stored = offered.gb_in(c.retention);
        let allowance = c.allowance_gb_per_tu * c.tus;
        let days = c.retention.as_secs_f64() / 86_400.0;
        cost.monthly(
            &format!(
                "GB stored above the {allowance:.0} GB TU allowance (steady state: {days:.1} days, \
                 {stored:.0} GB)"
            ),
            (stored - allowance).max(0.0),
            c.storage_usd_per_gb_month,
        );
        cost.finish(run, "per TU-hour (billed by the hour, at least one) plus ingress events, prorated here; storage is the steady state of the retention; illustrative USD prices, check azure.microsoft.com");
        (settings, cost)
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;
    use crate::ServiceKind;

    fn run(eh: &str, workload: &str, secs: u32) -> crate::Report {
        let text = format!(
            "seed = 5\nduration = \"{secs}s\"\nservices = [\"eventhubs\"]\n[workload]\n{workload}\n[eventhubs]\n{eh}\n"
        );
        Scenario::from_toml_str(&text, "eh.toml")
            .unwrap()
            .run()
            .unwrap()
    }

    #[test]
    fn one_tu_offered_1500_events_of_100_bytes_is_throttled_to_1000_per_second() {
        let secs = 20;
        // One partition and batches of 10: at 1,500/s a batch fills in under 7 ms, before
        // its 10 ms linger, so every send request carries exactly 10 events.
        let r = run(
            "throughput_units = 1\nclient_max_retries = 0\npartitions = 1\n\
             producer_batch_max_events = 10",
            "kind = \"telemetry\"\nrate = \"1500/s\"\nmessage_bytes = 100",
            secs,
        );
        let eh = r.service(ServiceKind::EventHubs).unwrap();
        // The one-second burst admits 1,000 extra events at the start.
        let accepted_per_s = (eh.acked as f64 - 1000.0) / f64::from(secs);
        assert!(
            (accepted_per_s - 1000.0).abs() < 25.0,
            "accepted {accepted_per_s}/s"
        );
        // Throttling is counted per request: each refused request held 10 events.
        assert!(
            (eh.throttled as f64 * 10.0 - eh.failed.count as f64).abs()
                <= 0.02 * eh.failed.count as f64,
            "throttled requests {} for {} failed events",
            eh.throttled,
            eh.failed.count
        );
        assert!(eh
            .baseline_mechanisms
            .iter()
            .any(|m| m.code == "server_busy"));
        assert_eq!(eh.failed.count + eh.acked, eh.produced);
    }

    #[test]
    fn storage_above_the_tu_allowance_is_priced_on_the_retention_steady_state() {
        // 5,000 events/s of 1 KiB for 7 days = 3,096.6 GB stored; 6 TUs include 504 GB.
        let r = run(
            "throughput_units = 6",
            "kind = \"telemetry\"\nrate = \"5000/s\"\nmessage_bytes = 1024",
            4,
        );
        let eh = r.service(ServiceKind::EventHubs).unwrap();
        let line = eh
            .cost
            .lines
            .iter()
            .find(|l| l.item.starts_with("GB stored above"))
            .unwrap();
        let expected = 5_000.0 * 1_024.0 * 604_800.0 / 1e9 - 6.0 * 84.0;
        assert!(
            (line.quantity / expected - 1.0).abs() < 0.02,
            "{} GB above the allowance",
            line.quantity
        );
        assert_eq!(line.basis, crate::metrics::CostBasis::Month);
    }

    #[test]
    fn six_readers_per_partition_are_refused_with_a_located_error() {
        let text = "services = [\"eventhubs\"]\n[eventhubs]\nreaders_per_partition = 6\n";
        let err = Scenario::from_toml_str(text, "eh.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("eh.toml:3:25: field `eventhubs.readers_per_partition`"),
            "{err}"
        );
    }

    #[test]
    fn two_readers_on_a_partition_both_get_every_event() {
        let r = run(
            "readers_per_partition = 2",
            "kind = \"payments\"\nrate = \"100/s\"",
            3,
        );
        let eh = r.service(ServiceKind::EventHubs).unwrap();
        assert_eq!(eh.duplicated.count, eh.delivered);
    }

    #[test]
    fn compressing_2_kb_events_4_to_1_halves_the_throughput_units_needed() {
        // 1,800 events/s of 2,000 B is 3.6 MB/s: bytes bind, ceil(3.6) = 4 TUs. Compressed
        // 4:1 by the client it is 0.9 MB/s, and the 1,800 events/s (which do not shrink)
        // bind instead: ceil(1.8) = 2 TUs.
        let workload = "kind = \"telemetry\"\nrate = \"1800/s\"\nmessage_bytes = 2000";
        let tus_needed = |bytes: f64| (1_800.0 * bytes / 1e6).max(1_800.0 / 1_000.0).ceil();
        assert_eq!((tus_needed(2_000.0), tus_needed(500.0)), (4.0, 2.0));
        let plain = run("throughput_units = 2", workload, 10);
        let plain = plain.service(ServiceKind::EventHubs).unwrap();
        // 2 TUs × min(1 MB/s ÷ 2,000 B, 1,000/s) = 1,000/s < 1,800/s offered.
        assert!(plain.bottleneck.binding, "{}", plain.bottleneck.detail);
        assert!((plain.bottleneck.capacity_per_s - 1_000.0).abs() < 1e-6);
        assert!(plain.throttled > 0);
        let packed = run(
            "throughput_units = 2\nclient_compression_ratio = 4",
            workload,
            10,
        );
        let packed = packed.service(ServiceKind::EventHubs).unwrap();
        // 2 TUs × min(1 MB/s ÷ 500 B, 1,000/s) = 2,000/s: the event count binds now.
        assert!(!packed.bottleneck.binding, "{}", packed.bottleneck.detail);
        assert!((packed.bottleneck.capacity_per_s - 2_000.0).abs() < 1e-6);
        assert!(packed.bottleneck.detail.contains("after 4.0:1 compression"));
        assert_eq!((packed.throttled, packed.delivered), (0, packed.produced));
        // Small events: 1,000 events/s per TU bind before the bytes, compressed or not.
        let small = "kind = \"telemetry\"\nrate = \"1000/s\"\nmessage_bytes = 100";
        for ratio in ["1", "4"] {
            let r = run(
                &format!("throughput_units = 2\nclient_compression_ratio = {ratio}"),
                small,
                2,
            );
            let cap = r
                .service(ServiceKind::EventHubs)
                .unwrap()
                .bottleneck
                .capacity_per_s;
            assert!((cap - 2_000.0).abs() < 1e-6, "ratio {ratio}: {cap}");
        }
    }

    #[test]
    fn a_client_compression_ratio_below_one_is_refused_on_its_line() {
        let text = "services = [\"eventhubs\"]\n[eventhubs]\nclient_compression_ratio = 0.5\n";
        let err = Scenario::from_toml_str(text, "eh.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("eh.toml:3:28: field `eventhubs.client_compression_ratio`"),
            "{err}"
        );
        assert!(err.contains("write 4 for data that shrinks 4:1"), "{err}");
    }

    #[test]
    fn a_hot_partition_above_one_tu_is_named_not_throttled() {
        // 5,000 events/s of 100 B on 6 TUs and 6 partitions, 40% with one key: its partition
        // gets 40% + 60%/6 = 50%, 2,500 events/s, above the 1,000 events/s Microsoft
        // guarantees one partition. Standard tier throttles the namespace (6,000/s here), not
        // the partition, so nothing is throttled; the report says the excess is not
        // guaranteed, and the processor of that partition is the stage that binds first.
        let r = run(
            "throughput_units = 6\npartitions = 6",
            "kind = \"telemetry\"\nrate = \"5000/s\"\nmessage_bytes = 100\nhot_key_share = 0.4",
            5,
        );
        let eh = r.service(ServiceKind::EventHubs).unwrap();
        assert_eq!(eh.throttled, 0);
        assert_eq!(eh.delivered, eh.produced);
        let hot = crate::models::hot_partition(6);
        let note = eh
            .bottleneck
            .notes
            .iter()
            .find(|n| n.starts_with(&format!("partition {hot} takes ")))
            .unwrap_or_else(|| panic!("{:?}", eh.bottleneck.notes));
        assert!(
            note.contains("(50% of the events with the hot key)"),
            "{note}"
        );
        assert!(note.contains("not guaranteed"), "{note}");
        // The processors: the hot partition's owner carries 50% + a sixth of the rest.
        let share = 0.5 + 0.6 / 6.0;
        assert_eq!(eh.bottleneck.stage, "quota");
        assert!((eh.bottleneck.capacity_per_s - 6_000.0).abs() < 1e-6);
        let r = run(
            "throughput_units = 6\npartitions = 6\nprocessing_ms = 0.5",
            "kind = \"telemetry\"\nrate = \"5000/s\"\nmessage_bytes = 100\nhot_key_share = 0.4",
            2,
        );
        let b = &r.service(ServiceKind::EventHubs).unwrap().bottleneck;
        assert_eq!(b.stage, "consumers");
        assert!(
            (b.capacity_per_s - 2_000.0 / share).abs() < 1e-6,
            "{}",
            b.detail
        );
        assert!(
            b.detail.contains(&format!("reads hot partition {hot}")),
            "{}",
            b.detail
        );
        // Without a hot key the same load stays under one TU per partition: no note.
        let even = run(
            "throughput_units = 6\npartitions = 6",
            "kind = \"telemetry\"\nrate = \"5000/s\"\nmessage_bytes = 100",
            2,
        );
        assert!(even
            .service(ServiceKind::EventHubs)
            .unwrap()
            .bottleneck
            .notes
            .is_empty());
    }

    #[test]
    fn the_kafka_endpoint_delays_throttled_requests_instead_of_refusing_them() {
        // 1,500 events/s of 100 B on one TU (1,000 events/s; the bytes are far below 1 MB/s)
        // for 20 s. Over AMQP the excess gets ServerBusy and, without retries, fails. Over
        // Kafka each request is held until the TU has room: the backlog grows by 500 events
        // a second, less the 1,000 of the one-second burst, so the last request waits about
        // (500 × 20 − 1,000) / 1,000 = 9 s, below the 30 s request.timeout.ms. Nothing fails.
        let workload = "kind = \"telemetry\"\nrate = \"1500/s\"\nmessage_bytes = 100";
        let eh = "throughput_units = 1\npartitions = 1\nproducer_batch_max_events = 10\n\
                  client_max_retries = 0";
        let amqp = run(eh, workload, 20);
        let amqp = amqp.service(ServiceKind::EventHubs).unwrap();
        assert!(amqp.failed.count > 0);
        let kafka = run(&format!("{eh}\nprotocol = \"kafka\""), workload, 20);
        let k = kafka.service(ServiceKind::EventHubs).unwrap();
        assert_eq!((k.failed.count, k.acked), (0, k.produced));
        assert!(k.throttled > 0);
        let codes: Vec<&str> = k
            .baseline_mechanisms
            .iter()
            .map(|m| m.code.as_str())
            .collect();
        assert!(
            codes.contains(&"throttle_time") && !codes.contains(&"server_busy"),
            "{codes:?}"
        );
        let expected_ms = (500.0 * 20.0 - 1_000.0) / 1_000.0 * 1e3;
        let max = k.ack_latency.max_ms;
        assert!(
            (max - expected_ms).abs() < 0.05 * expected_ms,
            "{max} ms vs {expected_ms}"
        );
        assert!(k.settings.iter().any(|s| s == "protocol=kafka"));
        // With a 2 s request.timeout.ms the hold passes it after about 6 s: Policy Violation,
        // and the producer resends.
        let short = run(
            &format!("{eh}\nprotocol = \"kafka\"\nkafka_request_timeout_ms = 2000"),
            workload,
            20,
        );
        let s = short.service(ServiceKind::EventHubs).unwrap();
        assert!(s
            .baseline_mechanisms
            .iter()
            .any(|m| m.code == "policy_violation"));
        assert!(s.retries > 0);
    }

    #[test]
    fn kafka_consumer_groups_are_namespace_wide_and_one_reader_per_partition() {
        let parse = |eh: &str| {
            Scenario::from_toml_str(
                &format!("services = [\"eventhubs\"]\n[eventhubs]\n{eh}\n"),
                "eh.toml",
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        // 25 groups: over the 20 Event Hubs consumer groups of an event hub on Standard, but
        // Kafka groups are separate, created on first use and not counted against it.
        let err = parse("consumer_groups = 25").unwrap_err();
        assert!(
            err.starts_with("eh.toml:3:19: field `eventhubs.consumer_groups`"),
            "{err}"
        );
        assert!(parse("consumer_groups = 25\nprotocol = \"kafka\"").is_ok());
        let err = parse("protocol = \"kafka\"\nreaders_per_partition = 2").unwrap_err();
        assert!(err.starts_with("eh.toml:4:25:"), "{err}");
        assert!(err.contains("set it to 1"), "{err}");
        let err = parse("protocol = \"kafka\"\ntier = \"basic\"").unwrap_err();
        assert!(
            err.starts_with("eh.toml:3:12: field `eventhubs.protocol`"),
            "{err}"
        );
        assert!(err.contains("TopicAuthorizationException"), "{err}");
        assert_eq!(err.lines().count(), 1);
    }
}
