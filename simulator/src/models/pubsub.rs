//! Google Cloud Pub/Sub: no partitions, per-message leases with an ack deadline, redelivery,
//! ordering keys, exactly-once delivery and dead-letter topics.
//!
//! - **Publish:** a regional throughput quota (a token bucket, each request counted as at least
//!   1 kB); over it the publisher gets `RESOURCE_EXHAUSTED` and retries. With ordering keys each
//!   key is also limited to 1 MB/s.
//! - **Delivery:** messages go to whichever subscriber client has room under its flow-control
//!   limit (competing consumers, no partition ownership, so no rebalances). Each delivery takes a
//!   lease of `ack_deadline_s`; the client library extends leases while it holds a message (up
//!   to `max_lease_extension_s`) unless `lease_extension` is off. A lease that runs out makes the
//!   message deliverable again with the same id: a duplicate for the application.
//! - **Ordering keys:** with ordering on, a key's next message is delivered only after the
//!   previous one is acknowledged; without it, messages of one key overtake each other.
//! - **Exactly-once delivery** (not processing): Pub/Sub does not redeliver a message once it
//!   is acknowledged, or while its lease holds. A lease that runs out still brings the message
//!   back, so the application processes it twice; the first acknowledgement then fails and the
//!   client is told. The report counts the message delivered once (one successful ack), and the
//!   trail names every `ack_failed`: work the application must make idempotent itself.
//! - **Dead-letter topic:** after `max_delivery_attempts` deliveries a message is moved there.

use std::collections::{HashMap, VecDeque};

use crate::fault::{Fault, FaultKind};
use crate::metrics::{Cause, CostEstimate};
use crate::models::log::Rec;
use crate::models::{
    backoff, Batcher, Bucket, Capacity, Compression, Cx, KeyOrder, Model, Offered,
};
use crate::profile::Profile;
use crate::rng::{FixedState, LatencyDist};
use crate::time::SimTime;
use crate::workload::Msg;
use crate::SimError;

/// Pub/Sub settings.
#[derive(Clone, Debug)]
pub(crate) struct PubSubCfg {
    pub quota_bytes: f64,
    pub min_request_bytes: f64,
    pub max_message_bytes: u32,
    pub subscribers: usize,
    pub flow_control: u32,
    pub processing: SimTime,
    pub ack_deadline: SimTime,
    pub lease_extension: bool,
    pub max_extension: SimTime,
    pub exactly_once: bool,
    pub ordering: bool,
    pub key_bytes: f64,
    pub dead_letter: bool,
    pub max_attempts: u32,
    pub retention: SimTime,
    /// The producer compresses each message body itself (the service never does).
    pub compression: Compression,
    pub publish: LatencyDist,
    pub deliver: LatencyDist,
    pub max_retries: u32,
    pub retry_base: SimTime,
    pub retry_max: SimTime,
    pub request_timeout: SimTime,
    pub batch: f64,
    pub batch_max_bytes: u64,
    pub linger: SimTime,
    pub usd_per_tib: f64,
    pub retain_acked: bool,
    /// Topic message retention (zero for none): seek to a time within it on any subscription.
    pub topic_retention: SimTime,
    /// How long a snapshot lives.
    pub snapshot_lifetime: SimTime,
    pub storage_usd_per_gib_month: f64,
}

impl PubSubCfg {
    pub fn from_profile(p: &Profile) -> Result<PubSubCfg, SimError> {
        let ack = p.f64("ack_deadline_s")?;
        if !(10.0..=600.0).contains(&ack) {
            return Err(SimError::at(
                p.origin("ack_deadline_s"),
                format!("the ack deadline must be 10 to 600 seconds, got {ack}"),
            ));
        }
        let attempts = p.int("max_delivery_attempts", 5, 100)? as u32;
        let topic_days = p.f64("topic_retention_days")?;
        if topic_days != 0.0 && !(10.0 / 1440.0..=31.0).contains(&topic_days) {
            return Err(SimError::at(
                p.origin("topic_retention_days"),
                format!(
                    "topic retention is 10 minutes to 31 days (0 for none), got {topic_days} \
                     days: write 7 for a week"
                ),
            ));
        }
        Ok(PubSubCfg {
            quota_bytes: p.f64("publish_quota_bytes_per_s")?,
            min_request_bytes: p.f64("min_billed_request_bytes")?,
            max_message_bytes: p.int("max_message_bytes", 1, u32::MAX as i64)? as u32,
            subscribers: p.count("subscribers", 1, 1000)?,
            flow_control: p.int("flow_control_max_messages", 1, 1_000_000)? as u32,
            processing: p.millis("processing_ms")?,
            ack_deadline: SimTime::from_secs_f64(ack),
            lease_extension: p.bool("lease_extension")?,
            max_extension: SimTime::from_secs_f64(p.f64("max_lease_extension_s")?),
            exactly_once: p.bool("exactly_once")?,
            ordering: p.bool("message_ordering")?,
            key_bytes: p.f64("ordering_key_bytes_per_s")?,
            dead_letter: p.bool("dead_letter_topic")?,
            max_attempts: attempts,
            compression: Compression::ratio_param(p, "client_compression_ratio")?,
            retention: SimTime::from_secs_f64(p.f64("retention_days")? * 86_400.0),
            publish: LatencyDist::from_p50_p99(
                p.millis("publish_p50_ms")?,
                p.millis("publish_p99_ms")?,
            ),
            deliver: LatencyDist::from_p50_p99(
                p.millis("deliver_p50_ms")?,
                p.millis("deliver_p99_ms")?,
            ),
            max_retries: p.int("client_max_retries", 0, 100)? as u32,
            retry_base: p.millis("client_retry_base_ms")?,
            retry_max: p.millis("client_retry_max_ms")?,
            request_timeout: p.millis("client_request_timeout_ms")?,
            batch: p.f64("publish_batch_messages")?.max(1.0),
            batch_max_bytes: p.int("publish_batch_max_bytes", 1, 10_000_000)? as u64,
            linger: p.millis("producer_linger_ms")?,
            usd_per_tib: p.f64("usd_per_tib")?,
            retain_acked: p.bool("retain_acked_messages")?,
            topic_retention: SimTime::from_secs_f64(topic_days * 86_400.0),
            snapshot_lifetime: SimTime::from_secs_f64(
                p.f64("snapshot_max_lifetime_days")? * 86_400.0,
            ),
            storage_usd_per_gib_month: p.f64("storage_usd_per_gib_month")?,
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct PMsg {
    id: u64,
    key: u64,
    created: SimTime,
    size: u32,
    attempts: u32,
}

#[derive(Clone, Copy, Debug)]
struct Out {
    msg: PMsg,
    sub: usize,
}

#[derive(Clone, Debug, Default)]
struct Sub {
    alive: bool,
    epoch: u32,
    held: u32,
    busy_until: SimTime,
    slow: Option<SimTime>,
}

/// Pub/Sub events.
pub(crate) enum PsEv {
    /// A publish request reaches the service.
    Arrive {
        batch: Vec<Rec>,
        attempt: u32,
    },
    Retry {
        batch: Vec<Rec>,
        attempt: u32,
    },
    /// The publisher's open batch has waited its linger.
    Flush {
        seq: u64,
    },
    /// A StreamingPull response reaches a subscriber: messages as `(id, attempt, when the
    /// lease started)`, so that the lease is checked without a look-up.
    Deliver {
        sub: u32,
        msgs: Vec<(u64, u32, SimTime)>,
        epoch: u32,
    },
    /// A subscriber finished a response's messages: `(id, attempt, when it finished)`.
    Processed {
        sub: u32,
        msgs: Vec<(u64, u32, SimTime)>,
        epoch: u32,
    },
    Expire {
        id: u64,
        attempt: u32,
    },
}

/// The Pub/Sub model.
pub(crate) struct PubSub {
    cfg: PubSubCfg,
    quota: Bucket,
    key_quota: HashMap<u64, Bucket, FixedState>,
    backlog: VecDeque<PMsg>,
    /// Ordering keys: the subscriber a key is pinned to while it has messages outstanding.
    key_sub: HashMap<u64, (usize, u32), FixedState>,
    /// Ordering keys: the publisher sends one key's messages in order.
    key_last_publish: HashMap<u64, SimTime, FixedState>,
    /// Ordering keys: a key's messages reach the subscriber in order.
    key_delivery: KeyOrder,
    outstanding: HashMap<u64, Out, FixedState>,
    subs: Vec<Sub>,
    rr: usize,
    clients_cut: bool,
    extra_latency: SimTime,
    publishing: u64,
    billed_bytes: f64,
    queued: u64,
    /// Copies on their way to or inside a subscriber client.
    in_clients: u64,
    batcher: Batcher,
}

impl PubSub {
    pub fn new(cfg: PubSubCfg) -> PubSub {
        PubSub {
            quota: Bucket::new(cfg.quota_bytes, 1.0),
            key_quota: HashMap::default(),
            backlog: VecDeque::new(),
            key_sub: HashMap::default(),
            key_last_publish: HashMap::default(),
            key_delivery: KeyOrder::default(),
            outstanding: HashMap::default(),
            subs: vec![
                Sub {
                    alive: true,
                    ..Sub::default()
                };
                cfg.subscribers
            ],
            rr: 0,
            clients_cut: false,
            extra_latency: SimTime::ZERO,
            publishing: 0,
            billed_bytes: 0.0,
            queued: 0,
            in_clients: 0,
            batcher: Batcher::new(1, cfg.batch as usize, cfg.batch_max_bytes, cfg.linger),
            cfg,
        }
    }

    fn bill(&mut self, size: u32) {
        self.billed_bytes += f64::from(size).max(self.cfg.min_request_bytes / self.cfg.batch);
    }

    fn send(&mut self, batch: Vec<Rec>, attempt: u32, cx: &mut Cx<PsEv>) {
        if self.clients_cut {
            let t = self.cfg.request_timeout;
            cx.mech(Cause::Window, "request_timeout", || {
                format!("the publisher cannot reach Pub/Sub: Publish times out after {t}")
            });
            self.failed_try(batch, attempt, t, cx);
            return;
        }
        let lat = cx.rng.latency(&self.cfg.publish).plus(self.extra_latency);
        let mut at = cx.now().plus(lat);
        if self.cfg.ordering {
            for m in &batch {
                at = at.max(
                    self.key_last_publish
                        .get(&m.key)
                        .copied()
                        .unwrap_or(SimTime::ZERO),
                );
            }
            for m in &batch {
                self.key_last_publish.insert(m.key, at);
            }
        }
        cx.at(at, PsEv::Arrive { batch, attempt });
    }

    fn failed_try(&mut self, batch: Vec<Rec>, attempt: u32, after: SimTime, cx: &mut Cx<PsEv>) {
        if attempt >= self.cfg.max_retries {
            self.publishing = self.publishing.saturating_sub(batch.len() as u64);
            let now = cx.now();
            for m in &batch {
                cx.col.failed(m.id, now.plus(after), Cause::Window);
            }
            let first = batch.first().map_or(0, |m| m.id);
            let k = batch.len();
            cx.mech_id(Cause::Window, "retries_exhausted", first, || {
                format!(
                    "the publisher gave up: the futures of a publish request of {k} messages fail"
                )
            });
            return;
        }
        cx.col.retried();
        let wait = after.plus(backoff(
            &mut cx.rng,
            self.cfg.retry_base,
            self.cfg.retry_max,
            attempt,
        ));
        cx.after(
            wait,
            PsEv::Retry {
                batch,
                attempt: attempt + 1,
            },
        );
    }

    fn arrive(&mut self, batch: Vec<Rec>, attempt: u32, cx: &mut Cx<PsEv>) {
        let now = cx.now();
        let bytes: f64 = batch.iter().map(|m| f64::from(m.size)).sum();
        // Quota and billing count a request as at least 1 kB, not each message.
        let counted = bytes.max(self.cfg.min_request_bytes);
        if !self.quota.has(now, counted) {
            cx.col.throttled(1);
            let first = batch.first().map_or(0, |m| m.id);
            cx.mech_id(Cause::Window, "resource_exhausted", first, || {
                "publish throughput above the regional quota: the publish request gets RESOURCE_EXHAUSTED, the client retries it".into()
            });
            self.failed_try(batch, attempt, SimTime::ZERO, cx);
            return;
        }
        if self.cfg.ordering {
            let rate = self.cfg.key_bytes;
            let over = batch.iter().find(|m| {
                !self
                    .key_quota
                    .entry(m.key)
                    .or_insert_with(|| Bucket::new(rate, 1.0))
                    .has(now, f64::from(m.size))
            });
            if let Some(m) = over {
                let id = m.id;
                cx.col.throttled(1);
                cx.mech_id(Cause::Window, "ordering_key_limit", id, || {
                    "one ordering key publishes above 1 MB/s: the publish is rejected".into()
                });
                self.failed_try(batch, attempt, SimTime::ZERO, cx);
                return;
            }
            for m in &batch {
                if let Some(b) = self.key_quota.get_mut(&m.key) {
                    b.try_take(now, f64::from(m.size));
                }
            }
        }
        self.quota.try_take(now, counted);
        self.billed_bytes += counted;
        self.publishing = self.publishing.saturating_sub(batch.len() as u64);
        let back = cx.rng.latency(&self.cfg.publish);
        for m in batch {
            cx.col.acked(now.plus(back).minus(m.created));
            let pm = PMsg {
                id: m.id,
                key: m.key,
                created: m.created,
                size: m.size,
                attempts: 0,
            };
            self.enqueue(pm, false);
        }
        self.pump(cx);
    }

    fn enqueue(&mut self, pm: PMsg, front: bool) {
        self.queued += 1;
        if front {
            self.backlog.push_front(pm);
        } else {
            self.backlog.push_back(pm);
        }
    }

    fn release_key(&mut self, key: u64) {
        if self.cfg.ordering {
            if let Some((_, n)) = self.key_sub.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.key_sub.remove(&key);
                }
            }
        }
    }

    /// Hands backlog messages to subscribers with room under flow control, one response per
    /// subscriber per call (a StreamingPull response carries many messages).
    fn pump(&mut self, cx: &mut Cx<PsEv>) {
        if self.clients_cut {
            return;
        }
        let n = self.subs.len();
        let mut out: Vec<Vec<(u64, u32, u64)>> = vec![Vec::new(); n];
        loop {
            let pinned = match self.backlog.front() {
                None => break,
                Some(m) if self.cfg.ordering => self.key_sub.get(&m.key).map(|&(s, _)| s),
                Some(_) => None,
            };
            let pick = pinned.filter(|&s| self.subs[s].alive).or_else(|| {
                (0..n)
                    .map(|k| (self.rr + k) % n)
                    .find(|&s| self.subs[s].alive && self.subs[s].held < self.cfg.flow_control)
            });
            let Some(s) = pick else { break };
            let Some(mut m) = self.backlog.pop_front() else {
                break;
            };
            self.queued = self.queued.saturating_sub(1);
            if pinned.is_none() {
                self.rr = (s + 1) % n;
            }
            if self.cfg.ordering {
                let e = self.key_sub.entry(m.key).or_insert((s, 0));
                *e = (s, e.1 + 1);
            }
            let now = cx.now();
            if m.created.plus(self.cfg.retention) <= now {
                cx.col.lost(m.id, now, Cause::Window);
                self.release_key(m.key);
                continue;
            }
            m.attempts += 1;
            if m.attempts > 1 {
                cx.col.redelivered();
            }
            self.bill(m.size);
            self.subs[s].held += 1;
            self.outstanding.insert(m.id, Out { msg: m, sub: s });
            self.in_clients += 1;
            out[s].push((m.id, m.attempts, m.key));
        }
        let now = cx.now();
        for (s, batch) in out.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let lat = cx.rng.latency(&self.cfg.deliver).plus(self.extra_latency);
            let mut arrive = now.plus(lat);
            // Without ordering keys Pub/Sub promises no order at all; with them, a key's
            // messages reach its subscriber in order.
            if self.cfg.ordering {
                arrive = self
                    .key_delivery
                    .arrival_of_request(batch.iter().map(|m| m.2), arrive);
            }
            let epoch = self.subs[s].epoch;
            cx.at(
                arrive,
                PsEv::Deliver {
                    sub: s as u32,
                    msgs: batch.into_iter().map(|(id, a, _)| (id, a, now)).collect(),
                    epoch,
                },
            );
        }
    }

    /// Subscriber `s` finished message `id` (delivery `attempt`) at `done` and acknowledges it.
    fn processed(&mut self, s: usize, id: u64, attempt: u32, done: SimTime, cx: &mut Cx<PsEv>) {
        self.subs[s].held = self.subs[s].held.saturating_sub(1);
        // One look-up per ack (a hash look-up per message was a fifth of a Pub/Sub run): the
        // entry is taken out, and put back in the one case where the ack does not count.
        let current = self.outstanding.remove(&id);
        match current {
            Some(o) if o.msg.attempts == attempt => {
                cx.col
                    .delivered(id, o.msg.key, o.msg.created, done, Cause::Window);
                self.release_key(o.msg.key);
            }
            _ if self.cfg.exactly_once => {
                if let Some(o) = current {
                    // The redelivery still holds its lease.
                    self.outstanding.insert(id, o);
                }
                cx.mech_id(Cause::Window, "ack_failed", id, || {
                    "exactly-once delivery, not processing: the lease ran out, the message was delivered again and processed twice; this first ack fails and the client is told, so only an idempotent handler keeps the effect single".into()
                });
            }
            other => {
                // At-least-once: the work was done; the late ack is accepted or ignored.
                let (key, created) =
                    other.map_or_else(|| (0, SimTime::ZERO), |o| (o.msg.key, o.msg.created));
                if let Some(o) = other {
                    // Processed after its lease ran out but before the redelivery was
                    // acknowledged: the ack still lands (the entry is already out).
                    self.release_key(o.msg.key);
                }
                cx.col.delivered(id, key, created, done, Cause::Window);
            }
        }
    }

    fn expire(&mut self, id: u64, attempt: u32, cx: &mut Cx<PsEv>) {
        let Some(out) = self.outstanding.get(&id).copied() else {
            return;
        };
        if out.msg.attempts != attempt {
            return;
        }
        self.outstanding.remove(&id);
        let now = cx.now();
        let deadline = self.cfg.ack_deadline;
        cx.mech_id(Cause::Window, "ack_deadline_expired", id, || {
            format!("a message was not acknowledged within its lease ({deadline} ack deadline): Pub/Sub delivers it again")
        });
        self.release_key(out.msg.key);
        if self.cfg.dead_letter && out.msg.attempts >= self.cfg.max_attempts {
            let n = self.cfg.max_attempts;
            cx.col.dead_lettered(id, now, Cause::Window);
            cx.mech_id(Cause::Window, "dead_letter", id, || {
                format!(
                    "after {n} delivery attempts the message is forwarded to the dead-letter topic"
                )
            });
        } else {
            self.enqueue(out.msg, true);
        }
        self.pump(cx);
    }

    fn crash(&mut self, s: usize, cx: &mut Cx<PsEv>) {
        let Some(sub) = self.subs.get_mut(s) else {
            return;
        };
        if !sub.alive {
            return;
        }
        sub.alive = false;
        sub.epoch += 1;
        sub.held = 0;
        sub.busy_until = SimTime::ZERO;
        let mut held: Vec<(u64, u32)> = self
            .outstanding
            .values()
            .filter(|o| o.sub == s)
            .map(|o| (o.msg.id, o.msg.attempts))
            .collect();
        held.sort_unstable();
        let d = self.cfg.ack_deadline;
        for (id, attempt) in held {
            // Nobody extends these leases any more: they run out one deadline from now.
            cx.after(d, PsEv::Expire { id, attempt });
        }
    }
}

impl Model for PubSub {
    type Ev = PsEv;

    fn start(&mut self, _cx: &mut Cx<PsEv>) {}

    fn on_message(&mut self, msg: Msg, cx: &mut Cx<PsEv>) {
        // The service sees the body as the client sent it: compressed, if it compresses.
        let mut rec = Rec::new(&msg);
        rec.size = self.cfg.compression.wire(msg.size);
        if rec.size > self.cfg.max_message_bytes {
            cx.col.failed(msg.id, cx.now(), Cause::Window);
            let max = self.cfg.max_message_bytes;
            cx.mech_id(Cause::Window, "message_too_large", msg.id, || {
                format!(
                    "messages above {max} bytes are refused with INVALID_ARGUMENT (not retried): \
                     store the payload elsewhere (Cloud Storage) and publish a reference"
                )
            });
            return;
        }
        self.publishing += 1;
        let added = self.batcher.add(0, rec);
        if let Some(seq) = added.arm {
            cx.after(self.batcher.linger, PsEv::Flush { seq });
        }
        if let Some(batch) = added.full {
            self.send(batch, 0, cx);
        }
    }

    fn on_event(&mut self, ev: PsEv, cx: &mut Cx<PsEv>) {
        match ev {
            PsEv::Arrive { batch, attempt } => self.arrive(batch, attempt, cx),
            PsEv::Retry { batch, attempt } => self.send(batch, attempt, cx),
            PsEv::Flush { seq } => {
                if let Some(batch) = self.batcher.flush(0, seq) {
                    self.send(batch, 0, cx);
                }
            }
            PsEv::Deliver { sub, msgs, epoch } => {
                let s = sub as usize;
                if self.subs[s].epoch != epoch || !self.subs[s].alive || self.clients_cut {
                    self.in_clients = self.in_clients.saturating_sub(msgs.len() as u64);
                    return;
                }
                let proc = self.subs[s].slow.unwrap_or(self.cfg.processing);
                // The lease runs out only if the acknowledgement will come too late: scheduling
                // that one case (instead of a timer per message) keeps an hour of leases out of
                // the event queue.
                let lease = if self.cfg.lease_extension {
                    self.cfg.max_extension.max(self.cfg.ack_deadline)
                } else {
                    self.cfg.ack_deadline
                };
                let mut t = cx.now().max(self.subs[s].busy_until);
                let mut done_list = Vec::with_capacity(msgs.len());
                for (id, attempt, sent) in msgs {
                    t = t.plus(proc);
                    // An expiry for a message acked or redelivered meanwhile finds nothing
                    // (`expire` checks the attempt), so no look-up is needed here.
                    let expiry = sent.plus(lease);
                    if t > expiry {
                        cx.at(expiry, PsEv::Expire { id, attempt });
                    }
                    done_list.push((id, attempt, t));
                }
                self.subs[s].busy_until = t;
                cx.at(
                    t,
                    PsEv::Processed {
                        sub,
                        msgs: done_list,
                        epoch,
                    },
                );
            }
            PsEv::Processed { sub, msgs, epoch } => {
                let s = sub as usize;
                self.in_clients = self.in_clients.saturating_sub(msgs.len() as u64);
                if self.subs[s].epoch != epoch {
                    return;
                }
                for (id, attempt, done) in msgs {
                    self.processed(s, id, attempt, done, cx);
                }
                self.pump(cx);
            }
            PsEv::Expire { id, attempt } => self.expire(id, attempt, cx),
        }
    }

    fn on_fault(&mut self, f: &Fault, start: bool, cx: &mut Cx<PsEv>) {
        let cause = Cause::Fault(f.id);
        let now = cx.now();
        match (&f.kind, start) {
            (
                FaultKind::BrokerCrash { .. }
                | FaultKind::LeaderFailover { .. }
                | FaultKind::DiskFull { .. },
                true,
            ) => {
                cx.mech(cause, "not_applicable", || {
                    "Pub/Sub has no brokers or partitions a customer sees: the service absorbs the failure".into()
                });
            }
            (FaultKind::RebalanceStorm { .. }, true) => cx.mech(cause, "not_applicable", || {
                "subscribers compete per message; there is no group membership to rebalance".into()
            }),
            (FaultKind::NetworkPartition { .. }, s) => {
                self.clients_cut = s;
                if s {
                    cx.mech(cause, "network_unreachable", || {
                        "clients cannot reach Pub/Sub: publishes time out and leases stop being extended".into()
                    });
                    let ids: Vec<usize> = (0..self.subs.len()).collect();
                    let d = self.cfg.ack_deadline;
                    let mut held: Vec<(u64, u32)> = self
                        .outstanding
                        .values()
                        .map(|o| (o.msg.id, o.msg.attempts))
                        .collect();
                    held.sort_unstable();
                    for (id, attempt) in held {
                        cx.after(d, PsEv::Expire { id, attempt });
                    }
                    for s in ids {
                        self.subs[s].held = 0;
                        self.subs[s].epoch += 1;
                    }
                } else {
                    self.pump(cx);
                }
            }
            (FaultKind::AddedLatency { latency }, s) => {
                self.extra_latency = if s { *latency } else { SimTime::ZERO };
                if s {
                    cx.mech(cause, "added_latency", || {
                        format!("every call takes {latency} longer each way")
                    });
                }
            }
            (
                FaultKind::SlowConsumer {
                    processing,
                    consumer,
                },
                s,
            ) => {
                for (i, sub) in self.subs.iter_mut().enumerate() {
                    if consumer.is_none_or(|c| c == i) {
                        sub.slow = s.then_some(*processing);
                    }
                }
                if s {
                    let ext = self.cfg.lease_extension;
                    cx.mech(cause, "slow_processing", || {
                        format!(
                            "subscribers now spend {processing} per message{}",
                            if ext {
                                "; the client keeps extending the leases"
                            } else {
                                "; leases are not extended"
                            }
                        )
                    });
                }
            }
            (FaultKind::ConsumerCrash { consumer }, true) => {
                let d = self.cfg.ack_deadline;
                cx.mech(cause, "subscriber_stopped", || {
                    format!("subscriber {consumer} stops: its leases run out after {d} and its messages go to the others")
                });
                self.crash(*consumer, cx);
            }
            (FaultKind::ConsumerCrash { consumer }, false) => {
                if let Some(s) = self.subs.get_mut(*consumer) {
                    s.alive = true;
                    s.busy_until = now;
                }
                self.pump(cx);
            }
            (FaultKind::ThrottlingSpike { capacity_factor }, s) => {
                let factor = if s {
                    capacity_factor.clamp(0.001, 1.0)
                } else {
                    1.0
                };
                self.quota.scale(now, factor, self.cfg.quota_bytes, 1.0);
                if s {
                    cx.mech(cause, "quota_reduced", || {
                        format!(
                            "the project's publish quota drops to {:.0}%",
                            factor * 100.0
                        )
                    });
                }
            }
            _ => {}
        }
    }

    fn gauges(&self, now: SimTime) -> (u64, SimTime, u64) {
        let lag = self.queued + self.outstanding.len() as u64;
        let oldest = self.backlog.front().map(|m| m.created);
        (lag, oldest.map_or(SimTime::ZERO, |o| now.minus(o)), 0)
    }

    fn idle(&self) -> bool {
        self.publishing == 0
            && self.queued == 0
            && self.outstanding.is_empty()
            && self.in_clients == 0
    }

    fn replay_window(&self, spec: &crate::replay::ReplaySpec) -> crate::replay::ReplayWindow {
        use crate::replay::{PubSubSeek, ReplayWindow};
        let c = &self.cfg;
        match spec.pubsub_seek {
            PubSubSeek::Snapshot => {
                // A snapshot taken when the bug started keeps what was unacknowledged then and
                // everything published since, until it expires 7 days (less the age of the
                // oldest unacknowledged message) after it was taken.
                let life = c.snapshot_lifetime;
                ReplayWindow {
                    window: (spec.found_after <= life).then_some(spec.found_after),
                    how: if spec.found_after <= life {
                        format!(
                            "the subscription seeks to a snapshot taken when the bug started; \
                             it lives {life}, longer than the delay"
                        )
                    } else {
                        format!(
                            "the subscription would seek to a snapshot taken when the bug \
                             started, but snapshots expire after {life}: it is gone"
                        )
                    },
                }
            }
            PubSubSeek::Time => {
                let sub = if c.retain_acked {
                    c.retention
                } else {
                    SimTime::ZERO
                };
                let window = sub.max(c.topic_retention);
                ReplayWindow {
                    window: (window > SimTime::ZERO).then_some(window),
                    how: if window > SimTime::ZERO {
                        format!(
                            "the subscription seeks to the bug's time; acknowledged messages \
                             come back as far as they are kept ({}, {})",
                            if c.retain_acked {
                                format!("retain_acked_messages for {}", c.retention)
                            } else {
                                "retain_acked_messages off".to_string()
                            },
                            if c.topic_retention > SimTime::ZERO {
                                format!("topic retention {}", c.topic_retention)
                            } else {
                                "no topic retention".to_string()
                            }
                        )
                    } else {
                        "the subscription seeks to the bug's time, but acknowledged messages \
                         were deleted at once (retain_acked_messages off, no topic retention): \
                         seek only brings back unacknowledged ones"
                            .to_string()
                    },
                }
            }
        }
    }

    fn wire_ratio(&self) -> f64 {
        self.cfg.compression.ratio
    }

    fn capacities(&self, offered: &Offered) -> Vec<Capacity> {
        let c = &self.cfg;
        let fmt = crate::metrics::fmt_rate;
        // The 1 kB minimum is per publish request: a request carries what arrives within the
        // batching wait, up to the batch size, so each message counts at least its share.
        let per_request =
            (offered.msgs_per_s * c.linger.as_secs_f64()).clamp(1.0, c.batch.max(1.0));
        let counted = offered.mean_bytes().max(c.min_request_bytes / per_request);
        let mut out = vec![Capacity {
            stage: "quota",
            per_s: c.quota_bytes / counted,
            how: format!(
                "publish quota {:.0} MB/s ÷ {counted:.0} B per message{} (a request of about \
                 {per_request:.0} messages counts at least 1 kB)",
                c.quota_bytes / 1e6,
                offered.compressed_note()
            ),
            relief: "ask for a higher regional quota".into(),
        }];
        let secs = c.processing.as_secs_f64();
        if secs > 0.0 {
            let each = 1.0 / secs;
            out.push(Capacity {
                stage: "consumers",
                per_s: c.subscribers as f64 * each,
                how: format!(
                    "{} subscribers × {}/s ({} ms each)",
                    c.subscribers,
                    fmt(each),
                    secs * 1e3
                ),
                relief: "add subscriber clients or speed up processing".into(),
            });
        }
        out
    }

    fn finish(
        &mut self,
        cx: &mut Cx<PsEv>,
        run: SimTime,
        offered: &Offered,
    ) -> (Vec<String>, CostEstimate) {
        for m in &self.backlog {
            cx.col.pending(m.id);
        }
        let mut out: Vec<u64> = self.outstanding.keys().copied().collect();
        out.sort_unstable();
        for id in out {
            cx.col.pending(id);
        }
        for m in self.batcher.drain() {
            cx.col.pending(m.id);
        }
        while let Some((_, ev)) = cx.q.pop() {
            if let crate::models::Ev::Model(
                PsEv::Arrive { batch, .. } | PsEv::Retry { batch, .. },
            ) = ev
            {
                for m in batch {
                    cx.col.pending(m.id);
                }
            }
        }
        let c = &self.cfg;
        let settings = vec![
            format!("subscribers={}", c.subscribers),
            format!("ack_deadline={}", c.ack_deadline),
            format!("lease_extension={}", c.lease_extension),
            format!("exactly_once={}", c.exactly_once),
            format!("message_ordering={}", c.ordering),
            format!("dead_letter_topic={}", c.dead_letter),
            format!("retain_acked_messages={}", c.retain_acked),
            format!("client_compression_ratio={}", c.compression.ratio),
        ];
        let mut cost = CostEstimate::default();
        let tib = self.billed_bytes / 1_099_511_627_776.0;
        cost.line(
            "TiB of throughput (publish + deliveries, 1 kB minimum per request)",
            tib,
            c.usd_per_tib,
        );
        if c.retain_acked {
            // Retained acknowledged messages fill the whole retention window: a steady state.
            let days = c.retention.as_secs_f64() / 86_400.0;
            cost.monthly(
                &format!("GiB stored (retain_acked_messages: {days:.1} days, steady state)"),
                offered.gb_in(c.retention) * 1e9 / 1_073_741_824.0,
                c.storage_usd_per_gib_month,
            );
        }
        if c.topic_retention > SimTime::ZERO {
            let days = c.topic_retention.as_secs_f64() / 86_400.0;
            cost.monthly(
                &format!("GiB stored (topic retention: {days:.1} days, steady state)"),
                offered.gb_in(c.topic_retention) * 1e9 / 1_073_741_824.0,
                c.storage_usd_per_gib_month,
            );
        }
        cost.finish(
            run,
            "throughput-based pricing; the free 10 GiB per month is not deducted",
        );
        (settings, cost)
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;
    use crate::ServiceKind;

    fn run(ps: &str, workload: &str, faults: &str, secs: u32) -> crate::Report {
        let text = format!(
            "seed = 13\nduration = \"{secs}s\"\ndrain = \"5m\"\nservices = [\"pubsub\"]\n[workload]\n{workload}\n[pubsub]\n{ps}\n{faults}"
        );
        Scenario::from_toml_str(&text, "ps.toml")
            .unwrap()
            .run()
            .unwrap()
    }

    #[test]
    fn a_message_over_10_mb_is_refused_and_one_under_is_delivered() {
        let big = run(
            "",
            "kind = \"payments\"\nrate = \"2/s\"\nmessage_bytes = 12000000",
            "",
            3,
        );
        let ps = big.service(ServiceKind::PubSub).unwrap();
        assert!(ps.produced > 0);
        assert_eq!(ps.failed.count, ps.produced);
        assert_eq!(ps.delivered, 0);
        assert!(ps
            .baseline_mechanisms
            .iter()
            .any(|m| m.code == "message_too_large"));
        let fits = run(
            "",
            "kind = \"payments\"\nrate = \"2/s\"\nmessage_bytes = 9000000",
            "",
            3,
        );
        let ps = fits.service(ServiceKind::PubSub).unwrap();
        assert_eq!((ps.failed.count, ps.delivered), (0, ps.produced));
    }

    #[test]
    fn the_1_kb_minimum_is_billed_per_publish_request_not_per_message() {
        // 1,000 messages/s of 10 bytes for 10 s. Batches close 10 ms after their first
        // message (about 11 ms apart with the wait for the next one): about 909 requests, each
        // billed 1,000 bytes, plus 10 bytes per delivered message. Per message it would be
        // 10 MB of publish.
        let r = run(
            "",
            "kind = \"payments\"\nrate = \"1000/s\"\nmessage_bytes = 10",
            "",
            10,
        );
        let ps = r.service(ServiceKind::PubSub).unwrap();
        let tib = ps
            .cost
            .lines
            .iter()
            .find(|l| l.item.starts_with("TiB of throughput"))
            .map_or(0.0, |l| l.quantity);
        let bytes = tib * 1_099_511_627_776.0;
        let expected = 909_091.0 + ps.delivered as f64 * 10.0;
        assert!(
            (bytes - expected).abs() < 0.1 * expected,
            "billed {bytes} bytes, expected about {expected}"
        );
    }

    const SLOW: &str = "[[fault]]\nkind = \"slow_consumer\"\nprocessing = \"15s\"\nat = \"0s\"\nduration = \"30s\"\n";

    #[test]
    fn processing_longer_than_the_ack_deadline_causes_redeliveries() {
        let r = run(
            "lease_extension = false\nack_deadline_s = 10\nsubscribers = 2",
            "kind = \"payments\"\nrate = \"1/s\"",
            SLOW,
            10,
        );
        let ps = r.service(ServiceKind::PubSub).unwrap();
        assert!(ps.redeliveries > 0, "redeliveries {}", ps.redeliveries);
        assert!(ps.duplicated.count > 0);
        let t = r.trail(0, ServiceKind::PubSub).unwrap();
        assert!(
            t.has(crate::Stage::Mechanism, "ack_deadline_expired"),
            "{}",
            t.summary()
        );
    }

    #[test]
    fn lease_extension_prevents_those_redeliveries() {
        let r = run(
            "lease_extension = true\nsubscribers = 2",
            "kind = \"payments\"\nrate = \"1/s\"",
            SLOW,
            10,
        );
        let ps = r.service(ServiceKind::PubSub).unwrap();
        assert_eq!(ps.redeliveries, 0);
        assert_eq!(ps.duplicated.count, 0);
    }

    #[test]
    fn exactly_once_delivery_still_processes_an_expired_lease_twice_and_says_so() {
        let r = run(
            "lease_extension = false\nexactly_once = true\nsubscribers = 2",
            "kind = \"payments\"\nrate = \"1/s\"",
            SLOW,
            10,
        );
        let ps = r.service(ServiceKind::PubSub).unwrap();
        // Delivered again after the lease ran out: processing happened twice ...
        assert!(ps.redeliveries > 0);
        // ... but only one ack succeeded, and the failed one is named, not hidden.
        assert_eq!(ps.duplicated.count, 0);
        let failed_ack = ps
            .baseline_mechanisms
            .iter()
            .find(|m| m.code == "ack_failed")
            .map(|m| m.detail.clone())
            .unwrap_or_default();
        assert!(failed_ack.contains("not processing"), "{failed_ack}");
    }

    #[test]
    fn without_ordering_keys_one_key_is_reordered_and_with_them_it_is_not() {
        let w = "kind = \"payments\"\nrate = \"2000/s\"\nkeys = 5";
        let unordered = run("message_ordering = false\nsubscribers = 4", w, "", 3);
        let ordered = run("message_ordering = true\nsubscribers = 4", w, "", 3);
        assert!(unordered.services[0].reordered.count > 0);
        assert_eq!(ordered.services[0].reordered.count, 0);
        assert_eq!(ordered.services[0].delivered, ordered.services[0].produced);
    }

    #[test]
    fn dead_letter_topic_takes_messages_after_max_delivery_attempts() {
        // Processing never finishes within the run: every lease runs out.
        let slow = "[[fault]]\nkind = \"slow_consumer\"\nprocessing = \"1h\"\nat = \"0s\"\n";
        let r = run(
            "lease_extension = false\ndead_letter_topic = true\nmax_delivery_attempts = 5\nsubscribers = 1",
            "kind = \"payments\"\nrate = \"1/s\"",
            slow,
            3,
        );
        assert!(r.services[0].dead_lettered.count > 0);
    }

    #[test]
    fn client_compression_divides_the_billed_bytes_by_its_ratio() {
        // 1,000 messages/s of 2,000 B: publish requests of about ten messages are far above
        // the 1 kB minimum, and each delivery is billed its size. Compressed 4:1 by the
        // publisher, every billed byte is a quarter: (published + delivered) × 500 B.
        let workload = "kind = \"payments\"\nrate = \"1000/s\"\nmessage_bytes = 2000";
        let billed = |ps: &str| {
            let r = run(ps, workload, "", 5);
            let s = r.service(ServiceKind::PubSub).unwrap().clone();
            let tib = s
                .cost
                .lines
                .iter()
                .find(|l| l.item.starts_with("TiB of throughput"))
                .map_or(0.0, |l| l.quantity);
            (tib * 1_099_511_627_776.0, s)
        };
        let (plain, p) = billed("");
        let (packed, c) = billed("client_compression_ratio = 4");
        let expect = |s: &crate::ServiceReport, size: f64| {
            (s.produced + s.delivered + s.redeliveries) as f64 * size
        };
        assert!((plain / expect(&p, 2_000.0) - 1.0).abs() < 1e-6, "{plain}");
        assert!((packed / expect(&c, 500.0) - 1.0).abs() < 1e-6, "{packed}");
    }

    #[test]
    fn the_publish_quota_counts_the_1_kb_minimum_per_request_not_per_message() {
        use crate::models::{Model, Offered};
        let profiles = crate::ProfileSet::embedded().unwrap();
        let cfg = super::PubSubCfg::from_profile(profiles.get(ServiceKind::PubSub).unwrap());
        let ps = super::PubSub::new(cfg.unwrap());
        // 1,000 messages/s of 10 B: a 10 ms batching wait gathers about 10 per request, so
        // each counts 1,000 / 10 = 100 B against 200 MB/s: 2,000,000/s. Counted per message
        // (1 kB each) it would be a tenth of that.
        let offered = Offered {
            msgs_per_s: 1_000.0,
            bytes_per_s: 10_000.0,
            compression: 1.0,
            hot_key_share: 0.0,
        };
        let quota = ps
            .capacities(&offered)
            .into_iter()
            .find(|c| c.stage == "quota")
            .unwrap();
        assert!((quota.per_s - 200e6 / 100.0).abs() < 1.0, "{}", quota.per_s);
    }
}
