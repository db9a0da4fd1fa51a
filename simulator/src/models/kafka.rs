//! Apache Kafka: brokers, replicated partitions, the ISR and the high watermark, producer acks
//! and retries, and a consumer group.
//!
//! What the model keeps because the course's lessons depend on it:
//! - **Replication.** Each partition has `replication_factor` replicas; followers copy the
//!   leader after a replication delay; the high watermark is the smallest log end offset in the
//!   ISR, and consumers read only below it.
//! - **acks.** `0` never waits (and loses what a failed broker had), `1` is acknowledged at the
//!   leader's append (and loses the unreplicated tail when that leader dies), `all` waits for
//!   the ISR and, with `min.insync.replicas` ≥ 2, refuses writes instead of losing them.
//! - **Failures.** A dead broker is fenced by the controller after
//!   `failover_detection_ms`; it then leaves every ISR and its partitions get a new leader from
//!   the ISR, whose log end becomes the truth (log truncation). With no ISR member left the
//!   partition stays offline unless `unclean_leader_election` allows a lagging replica.
//! - **Producer.** Failed sends retry after `retry_backoff_ms` until `delivery_timeout_ms`;
//!   without idempotence a retried message can land behind newer ones (reordering); the
//!   idempotent producer holds the partition's later messages back until the retry succeeds.
//! - **Consumers.** A group with eager or cooperative rebalances, session timeout, max poll
//!   interval and auto-commit: see [`super::group`].

use std::collections::VecDeque;

use crate::fault::{Fault, FaultKind};
use crate::metrics::{Cause, CostEstimate, HOURS_PER_MONTH};
use crate::models::group::{Group, GroupCfg, GroupEv, NoGate};
use crate::models::log::{Log, Rec};
use crate::models::{Batcher, Capacity, Compression, Cx, KeyOrder, Model, Offered};
use crate::profile::Profile;
use crate::rng::{mix64, LatencyDist};
use crate::time::SimTime;
use crate::workload::Msg;
use crate::SimError;

/// Kafka's `acks` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acks {
    Zero,
    One,
    All,
}

/// The settings a Kafka run uses, read from the profile (and scenario overrides).
#[derive(Clone, Debug)]
pub(crate) struct KafkaCfg {
    pub brokers: usize,
    pub partitions: usize,
    pub replication_factor: usize,
    pub acks: Acks,
    pub min_isr: usize,
    pub idempotence: bool,
    /// Idempotence was left unset and `acks` conflicts, so the client turned it off.
    pub idempotence_disabled_by_acks: bool,
    pub unclean: bool,
    pub replica_lag_max: SimTime,
    pub retry_backoff: SimTime,
    pub linger: SimTime,
    pub batch_bytes: u64,
    pub delivery_timeout: SimTime,
    pub request_timeout: SimTime,
    pub failover_detection: SimTime,
    pub controlled_failover: SimTime,
    pub catch_up: SimTime,
    pub one_way: LatencyDist,
    pub replication: LatencyDist,
    pub broker_bytes_per_s: f64,
    pub max_message_bytes: u32,
    pub retention: SimTime,
    pub group: GroupCfg,
    pub broker_usd_per_hour: f64,
    pub storage_usd_per_gb_month: f64,
    pub zones: usize,
    pub cross_zone_usd_per_gb: f64,
    /// `compression.type` (`none` for no compression).
    pub compression_type: String,
    pub compression: Compression,
}

/// The producer's `compression.type` and the ratio it gets: the codec's typical ratio from
/// the profile, or the number the scenario gives for its own data.
fn compression(p: &Profile) -> Result<(String, Compression), SimError> {
    let codec = p.choice(
        "compression_type",
        &["none", "gzip", "snappy", "lz4", "zstd"],
    )?;
    let typical = matches!(
        p.params.get("compression_ratio").map(|x| &x.value),
        Some(crate::profile::ParamValue::Str(s)) if s.eq_ignore_ascii_case("typical")
    );
    let ratio = match (codec.as_str(), typical) {
        ("none", true) => Compression::NONE,
        ("none", false) => {
            let c = Compression::ratio_param(p, "compression_ratio")?;
            if c.ratio != 1.0 {
                return Err(SimError::at(
                    p.origin("compression_ratio"),
                    format!(
                        "compression_ratio {} without a codec: set compression_type to gzip, \
                         snappy, lz4 or zstd as well (or remove compression_ratio)",
                        c.ratio
                    ),
                ));
            }
            c
        }
        (codec, true) => Compression::ratio_param(p, &format!("{codec}_typical_ratio"))?,
        (_, false) => Compression::ratio_param(p, "compression_ratio")?,
    };
    Ok((codec, ratio))
}

/// Whether the producer is idempotent, as Kafka 3.2+ decides it (KIP-679, KAFKA-13673):
/// left unset (`"default"`), idempotence is on unless `acks` conflicts, and then it is
/// silently off; set explicitly to `true` with `acks` 0 or 1, the producer refuses to start
/// with a `ConfigException`. Returns whether it is on, and whether Kafka turned it off.
fn idempotence(p: &Profile, acks: Acks) -> Result<(bool, bool), SimError> {
    let explicit = match p.params.get("enable_idempotence").map(|x| &x.value) {
        Some(crate::profile::ParamValue::Str(s)) if s.eq_ignore_ascii_case("default") => None,
        _ => Some(p.bool("enable_idempotence")?),
    };
    match explicit {
        None => Ok((acks == Acks::All, acks != Acks::All)),
        Some(true) if acks != Acks::All => Err(SimError::at(
            p.origin("enable_idempotence"),
            "ConfigException: must set acks to all in order to use the idempotent producer \
             (Kafka refuses enable.idempotence=true with acks 0 or 1; leave it unset and \
             Kafka turns idempotence off instead)",
        )),
        Some(on) => Ok((on, false)),
    }
}

impl KafkaCfg {
    pub fn from_profile(p: &Profile) -> Result<KafkaCfg, SimError> {
        let brokers = p.count("brokers", 1, 64)?;
        let replication_factor = p.count("replication_factor", 1, 16)?;
        if replication_factor > brokers {
            return Err(SimError::at(
                p.origin("replication_factor"),
                format!("replication_factor {replication_factor} exceeds the {brokers} brokers"),
            ));
        }
        let acks = match p.choice("acks", &["0", "1", "all", "-1"])?.as_str() {
            "0" => Acks::Zero,
            "1" => Acks::One,
            _ => Acks::All,
        };
        let min_isr = p.count("min_insync_replicas", 1, 16)?;
        let rtt50 = p.millis("network_rtt_p50_ms")?;
        let rtt99 = p.millis("network_rtt_p99_ms")?;
        let half = |t: SimTime| SimTime(t.as_micros() / 2);
        let one_way = LatencyDist::from_p50_p99(half(rtt50), half(rtt99));
        let replication = LatencyDist::from_p50_p99(
            p.millis("replication_p50_ms")?,
            p.millis("replication_p99_ms")?,
        );
        let cooperative =
            p.choice("rebalance_protocol", &["eager", "cooperative"])? == "cooperative";
        let group = GroupCfg {
            consumers: p.count("consumers", 1, 1000)?,
            processing: p.millis("processing_ms")?,
            max_batch: p.count("max_poll_records", 1, 100_000)?,
            commit_interval: p.millis("auto_commit_interval_ms")?,
            detect_after: p.millis("session_timeout_ms")?,
            sync: p.millis("rebalance_sync_ms")?,
            cooperative,
            max_poll_interval: Some(p.millis("max_poll_interval_ms")?),
            poll_interval: None,
            fetch: one_way,
            detect_code: "session_timeout",
            rebalance_code: "rebalance",
            label: "consumer",
            copies: 1,
        };
        let (idempotence, idempotence_disabled_by_acks) = idempotence(p, acks)?;
        let (compression_type, compression) = compression(p)?;
        Ok(KafkaCfg {
            compression_type,
            compression,
            brokers,
            partitions: p.count("partitions", 1, 10_000)?,
            replication_factor,
            acks,
            min_isr,
            idempotence,
            idempotence_disabled_by_acks,
            unclean: p.bool("unclean_leader_election")?,
            replica_lag_max: p.millis("replica_lag_time_max_ms")?,
            retry_backoff: p.millis("retry_backoff_ms")?,
            linger: p.millis("producer_linger_ms")?,
            batch_bytes: p.int("batch_size_bytes", 1, 1 << 30)? as u64,
            delivery_timeout: p.millis("delivery_timeout_ms")?,
            request_timeout: p.millis("request_timeout_ms")?,
            failover_detection: p.millis("failover_detection_ms")?,
            controlled_failover: p.millis("controlled_failover_ms")?,
            catch_up: p.millis("catch_up_ms")?,
            one_way,
            replication,
            broker_bytes_per_s: p.f64("broker_bytes_per_s")?.max(1.0),
            max_message_bytes: p.int("max_message_bytes", 1, u32::MAX as i64)? as u32,
            retention: SimTime::from_secs_f64(p.f64("retention_hours")? * 3600.0),
            group,
            broker_usd_per_hour: p.f64("broker_usd_per_hour")?,
            storage_usd_per_gb_month: p.f64("storage_usd_per_gb_month")?,
            zones: p.count("availability_zones", 1, 16)?,
            cross_zone_usd_per_gb: p.f64("cross_zone_usd_per_gb")?,
        })
    }
}

/// Kafka's events.
pub(crate) enum KEv {
    Group(GroupEv),
    /// A produce request (one partition's batch) reaches the leader; `first` is when each
    /// record was first sent, for delivery.timeout.ms.
    Append {
        p: u32,
        batch: Vec<(Rec, SimTime)>,
    },
    /// A partition's open batch has waited linger.ms.
    Linger {
        p: u32,
        seq: u64,
    },
    Retry {
        p: u32,
        rec: Rec,
        first: SimTime,
    },
    TimedOut {
        p: u32,
        rec: Rec,
        first: SimTime,
    },
    Flush {
        p: u32,
    },
    Replicate {
        p: u32,
        upto: u64,
    },
    Fence {
        b: u32,
        epoch: u32,
    },
    Elect {
        p: u32,
    },
    CaughtUp {
        p: u32,
        b: u32,
        epoch: u32,
    },
    Storm {
        fault: u32,
        until: SimTime,
        n: u32,
    },
    Restart {
        b: u32,
    },
}

impl From<GroupEv> for KEv {
    fn from(e: GroupEv) -> Self {
        KEv::Group(e)
    }
}

#[derive(Clone, Debug, Default)]
struct Broker {
    up: bool,
    isolated: bool,
    disk_full: bool,
    epoch: u32,
    free_at: SimTime,
    cause: Option<usize>,
}

impl Broker {
    fn serving(&self) -> bool {
        self.up && !self.isolated && !self.disk_full
    }
}

struct Waiting {
    off: u64,
    rec: Rec,
    first: SimTime,
}

struct Part {
    leader: Option<usize>,
    avoid: Option<usize>,
    replicas: Vec<usize>,
    isr: Vec<usize>,
    leo: Vec<u64>,
    caught: Vec<bool>,
    hw: u64,
    waiting: VecDeque<Waiting>,
    retry_q: Vec<(Rec, SimTime)>,
    blocked: bool,
    /// The fault that took the partition's last in-sync replica down, while it is offline: an
    /// unclean election later cuts what only that replica had, and the loss is its doing.
    down_cause: Option<Cause>,
}

/// The Kafka model.
pub(crate) struct Kafka {
    cfg: KafkaCfg,
    brokers: Vec<Broker>,
    parts: Vec<Part>,
    logs: Vec<Log>,
    visible: Vec<u64>,
    group: Group,
    clients_cut: bool,
    extra_latency: SimTime,
    capacity_factor: f64,
    outstanding: u64,
    /// One connection per broker keeps a key's produce requests in order.
    order: KeyOrder,
    batcher: Batcher,
}

fn fault_cause(f: Option<usize>) -> Cause {
    f.map_or(Cause::Window, Cause::Fault)
}

impl Kafka {
    pub fn new(cfg: KafkaCfg) -> Kafka {
        let n = cfg.partitions;
        let parts = (0..n)
            .map(|p| {
                let replicas: Vec<usize> = (0..cfg.replication_factor)
                    .map(|i| (p + i) % cfg.brokers)
                    .collect();
                Part {
                    leader: Some(replicas[0]),
                    avoid: None,
                    isr: replicas.clone(),
                    replicas,
                    leo: vec![0; cfg.brokers],
                    caught: vec![true; cfg.brokers],
                    hw: 0,
                    waiting: VecDeque::new(),
                    retry_q: Vec::new(),
                    blocked: false,
                    down_cause: None,
                }
            })
            .collect();
        let group = Group::new(cfg.group.clone(), n);
        Kafka {
            brokers: vec![
                Broker {
                    up: true,
                    ..Broker::default()
                };
                cfg.brokers
            ],
            parts,
            logs: (0..n).map(|_| Log::default()).collect(),
            visible: vec![0; n],
            group,
            clients_cut: false,
            extra_latency: SimTime::ZERO,
            capacity_factor: 1.0,
            outstanding: 0,
            order: KeyOrder::default(),
            batcher: Batcher::new(n, usize::MAX, cfg.batch_bytes, cfg.linger),
            cfg,
        }
    }

    /// The partitions each consumer owns right now.
    #[cfg(test)]
    pub fn assignment(&self) -> Vec<Vec<usize>> {
        self.group.assignment()
    }

    fn partition_of(&self, key: u64) -> usize {
        (mix64(key) % self.cfg.partitions as u64) as usize
    }

    fn transmit(&mut self, p: usize, rec: Rec, first: SimTime, cx: &mut Cx<KEv>) {
        self.transmit_batch(p, vec![(rec, first)], cx);
    }

    /// Sends one produce request with `batch` for partition `p`.
    fn transmit_batch(&mut self, p: usize, batch: Vec<(Rec, SimTime)>, cx: &mut Cx<KEv>) {
        let part = &mut self.parts[p];
        if self.cfg.idempotence && part.blocked {
            part.retry_q.extend(batch);
            return;
        }
        let isolated_leader = part.leader.is_some_and(|l| self.brokers[l].isolated);
        if self.clients_cut || isolated_leader {
            for (rec, first) in batch {
                cx.after(
                    self.cfg.request_timeout,
                    KEv::TimedOut {
                        p: p as u32,
                        rec,
                        first,
                    },
                );
            }
            return;
        }
        let one_way = cx.rng.latency(&self.cfg.one_way).plus(self.extra_latency);
        let arrive = cx.now().plus(one_way);
        let arrive = self
            .order
            .arrival_of_request(batch.iter().map(|r| r.0.key), arrive);
        cx.at(arrive, KEv::Append { p: p as u32, batch });
    }

    fn fail(
        &mut self,
        p: usize,
        rec: Rec,
        first: SimTime,
        code: &'static str,
        cause: Cause,
        cx: &mut Cx<KEv>,
    ) {
        let now = cx.now();
        cx.col.retried();
        cx.mech_id(cause, code, rec.id, || match code {
            "leader_not_available" => format!(
                "produce to partition {p} failed: LEADER_NOT_AVAILABLE / NOT_LEADER_OR_FOLLOWER; the producer retries"
            ),
            "not_enough_replicas" => format!(
                "produce to partition {p} refused: NOT_ENOUGH_REPLICAS (ISR below min.insync.replicas)"
            ),
            "storage_error" => format!("produce to partition {p} failed: KAFKA_STORAGE_ERROR"),
            "request_timeout" => format!(
                "produce to partition {p} got no answer within request.timeout.ms; the producer retries"
            ),
            _ => format!("produce to partition {p} failed ({code})"),
        });
        if self.cfg.acks == Acks::Zero {
            // acks=0: the producer never hears about the failure and never retries.
            cx.col.lost(rec.id, now, cause);
            return;
        }
        if now.plus(self.cfg.retry_backoff) > first.plus(self.cfg.delivery_timeout) {
            self.outstanding = self.outstanding.saturating_sub(1);
            cx.col.failed(rec.id, now, cause);
            let dt = self.cfg.delivery_timeout;
            cx.mech_id(cause, "delivery_timeout", rec.id, || {
                format!("a message waited longer than delivery.timeout.ms ({dt}): the send fails")
            });
            return;
        }
        cx.mech(cause, "producer_retry", || {
            "the producer resends failed batches after retry.backoff.ms".into()
        });
        if self.cfg.idempotence {
            let part = &mut self.parts[p];
            part.retry_q.push((rec, first));
            if !part.blocked {
                part.blocked = true;
                cx.after(self.cfg.retry_backoff, KEv::Flush { p: p as u32 });
            }
        } else {
            cx.after(
                self.cfg.retry_backoff,
                KEv::Retry {
                    p: p as u32,
                    rec,
                    first,
                },
            );
        }
    }

    /// A produce request reaches the leader: each record is appended (or refused) in turn,
    /// and followers fetch the request's records together.
    fn append_batch(&mut self, p: usize, batch: Vec<(Rec, SimTime)>, cx: &mut Cx<KEv>) {
        let mut last: Option<(u64, SimTime)> = None;
        for (rec, first) in batch {
            if let Some((off, done)) = self.append(p, rec, first, cx) {
                last = Some((off, last.map_or(done, |(_, d)| d.max(done))));
            }
        }
        let Some((off, done)) = last else { return };
        let delay = cx.rng.latency(&self.cfg.replication);
        cx.at(
            done.plus(delay),
            KEv::Replicate {
                p: p as u32,
                upto: off + 1,
            },
        );
        if self.parts[p].isr.len() == 1 {
            self.update_hw(p, cx);
        }
    }

    /// Appends one record; returns its offset and when the leader has written it.
    fn append(
        &mut self,
        p: usize,
        rec: Rec,
        first: SimTime,
        cx: &mut Cx<KEv>,
    ) -> Option<(u64, SimTime)> {
        let now = cx.now();
        if self.cfg.idempotence && self.parts[p].blocked {
            // An earlier sequence number is being retried: the broker would answer
            // OUT_OF_ORDER_SEQUENCE, so the producer queues this one behind it.
            self.parts[p].retry_q.push((rec, first));
            return None;
        }
        let Some(l) = self.parts[p].leader else {
            self.fail(p, rec, first, "leader_not_available", Cause::Window, cx);
            return None;
        };
        let b = &self.brokers[l];
        if !b.serving() {
            let code = if b.disk_full {
                "storage_error"
            } else {
                "leader_not_available"
            };
            let cause = fault_cause(b.cause);
            self.fail(p, rec, first, code, cause, cx);
            return None;
        }
        if self.cfg.acks == Acks::All && self.parts[p].isr.len() < self.cfg.min_isr {
            self.fail(p, rec, first, "not_enough_replicas", Cause::Window, cx);
            return None;
        }
        let rate = self.cfg.broker_bytes_per_s * self.capacity_factor;
        let service = SimTime::from_secs_f64(f64::from(rec.size) / rate);
        let b = &mut self.brokers[l];
        let start = now.max(b.free_at);
        if start > now && self.capacity_factor < 1.0 {
            cx.col.throttled(1);
            cx.mech(Cause::Window, "quota_reduced", || {
                "the broker's capacity dropped: produce requests queue (throttle_time_ms)".into()
            });
        }
        let done = start.plus(service);
        b.free_at = done;
        let part = &mut self.parts[p];
        let off = self.logs[p].push(rec);
        part.leo[l] = off + 1;
        match self.cfg.acks {
            Acks::Zero => self.outstanding = self.outstanding.saturating_sub(1),
            Acks::One => {
                self.outstanding = self.outstanding.saturating_sub(1);
                let back = cx.rng.latency(&self.cfg.one_way);
                cx.col.acked(done.plus(back).minus(rec.created));
            }
            Acks::All => part.waiting.push_back(Waiting { off, rec, first }),
        }
        Some((off, done))
    }

    fn replicate(&mut self, p: usize, upto: u64, cx: &mut Cx<KEv>) {
        let part = &mut self.parts[p];
        let Some(l) = part.leader else { return };
        if !self.brokers[l].serving() {
            return;
        }
        let end = self.logs[p].end();
        for &r in &part.replicas {
            if r != l && self.brokers[r].serving() && part.caught[r] {
                part.leo[r] = part.leo[r].max(upto.min(end));
            }
        }
        self.update_hw(p, cx);
    }

    fn update_hw(&mut self, p: usize, cx: &mut Cx<KEv>) {
        let part = &mut self.parts[p];
        let Some(hw) = part.isr.iter().map(|&m| part.leo[m]).min() else {
            return;
        };
        if hw <= part.hw {
            return;
        }
        part.hw = hw;
        self.visible[p] = hw;
        // The records the high watermark just passed are answered now, in the responses to
        // their produce requests on the producer's connection to this leader: one trip back.
        let mut back = None;
        while part.waiting.front().is_some_and(|w| w.off < hw) {
            if let Some(w) = part.waiting.pop_front() {
                self.outstanding = self.outstanding.saturating_sub(1);
                let back = *back.get_or_insert_with(|| cx.rng.latency(&self.cfg.one_way));
                cx.col.acked(cx.now().plus(back).minus(w.rec.created));
            }
        }
        self.group.data_available(p, hw, cx);
    }

    fn elect(&mut self, p: usize, cause: Cause, cx: &mut Cx<KEv>) {
        let part = &self.parts[p];
        let avoid = part.avoid;
        let serving = |b: usize| self.brokers[b].serving();
        let candidate = part
            .replicas
            .iter()
            .copied()
            .filter(|&r| part.isr.contains(&r) && serving(r))
            .min_by_key(|&r| (Some(r) == avoid, 0));
        let (leader, unclean) = match candidate {
            Some(c) => (c, false),
            None if self.cfg.unclean => match part.replicas.iter().copied().find(|&r| serving(r)) {
                Some(r) => (r, true),
                None => return self.offline(p, cause, cx),
            },
            None => return self.offline(p, cause, cx),
        };
        // A replica's log ends where it stopped copying: an out-of-sync leader lacks the
        // records only the old leader had, and the log is cut back to what the new one holds.
        let cause = match (unclean, self.parts[p].down_cause.take()) {
            (true, Some(down)) => down,
            _ => cause,
        };
        let new_end = self.parts[p].leo[leader];
        let cut = self.logs[p].truncate(new_end);
        let now = cx.now();
        if !cut.is_empty() {
            let ids: Vec<u64> = cut.iter().map(|r| r.id).collect();
            let n = ids.len();
            let acks = self.cfg.acks;
            let read = cut.iter().filter(|r| cx.col.was_delivered(r.id)).count();
            let detail = if unclean {
                format!(
                    "out-of-sync broker {leader} becomes leader of partition {p} without {n} \
                     records only the old leader had (offsets {new_end} onwards); they are cut \
                     from the log for good ({read} of them had already been read)"
                )
            } else {
                format!(
                    "new leader broker {leader} of partition {p} lacks {n} records the old \
                     leader had appended; they are cut from the log"
                )
            };
            for (i, rec) in cut.into_iter().enumerate() {
                let d = detail.clone();
                cx.col
                    .mechanism(now, cause, "log_truncation", move || d, Some(ids[i]));
                let waiting = self.parts[p]
                    .waiting
                    .iter()
                    .position(|w| w.rec.id == rec.id);
                match (acks, waiting) {
                    (Acks::All, Some(k)) => {
                        // Never acknowledged: the producer's request fails and it retries.
                        if let Some(w) = self.parts[p].waiting.remove(k) {
                            self.fail(p, w.rec, w.first, "leader_not_available", cause, cx);
                        }
                    }
                    _ => cx.col.cut_from_log(rec.id, now, cause),
                }
            }
        }
        let part = &mut self.parts[p];
        part.waiting.retain(|w| w.off < new_end);
        for r in part.replicas.clone() {
            part.leo[r] = part.leo[r].min(new_end);
        }
        part.hw = part.hw.min(new_end);
        self.visible[p] = part.hw;
        part.leader = Some(leader);
        part.avoid = None;
        if unclean {
            part.isr = vec![leader];
            cx.mech(cause, "unclean_leader_election", || {
                format!("no in-sync replica of partition {p} is alive: out-of-sync broker {leader} becomes leader")
            });
        } else {
            let brokers = &self.brokers;
            part.isr.retain(|&m| brokers[m].serving() || m == leader);
        }
        cx.mech(cause, "leader_election", || {
            format!("broker {leader} becomes leader of partition {p}")
        });
        self.group.truncated(p, new_end);
        self.group.blocked[p] = false;
        self.update_hw(p, cx);
    }

    fn offline(&mut self, p: usize, cause: Cause, cx: &mut Cx<KEv>) {
        self.parts[p].leader = None;
        self.parts[p].down_cause.get_or_insert(cause);
        self.group.blocked[p] = true;
        cx.mech(cause, "partition_offline", || {
            format!(
                "partition {p} has no live in-sync replica and unclean leader election is off: \
                 it stays offline"
            )
        });
    }

    fn broker_down(&mut self, b: usize, fault: usize, how: &'static str, cx: &mut Cx<KEv>) {
        if b >= self.brokers.len() {
            return;
        }
        let br = &mut self.brokers[b];
        match how {
            "crash" => br.up = false,
            "isolate" => br.isolated = true,
            _ => br.disk_full = true,
        }
        br.epoch += 1;
        br.cause = Some(fault);
        let epoch = br.epoch;
        for part in &mut self.parts {
            part.caught[b] = false;
        }
        let cause = Cause::Fault(fault);
        let (delay, code) = match how {
            "disk" => (SimTime::ZERO, "storage_error"),
            "isolate" => (self.cfg.failover_detection, "network_unreachable"),
            _ => (self.cfg.failover_detection, "broker_down"),
        };
        cx.mech(cause, code, || match how {
            "disk" => format!(
                "broker {b}'s log directory is full: KAFKA_STORAGE_ERROR, the log dir goes offline"
            ),
            "isolate" => format!("broker {b} is cut off from the cluster and the clients"),
            _ => format!("broker {b} stops; followers stop copying from it and it stops copying"),
        });
        cx.after(delay, KEv::Fence { b: b as u32, epoch });
    }

    fn fence(&mut self, b: usize, cx: &mut Cx<KEv>) {
        let cause = fault_cause(self.brokers[b].cause);
        let lag_max = self.cfg.replica_lag_max;
        for p in 0..self.parts.len() {
            let part = &mut self.parts[p];
            if part.isr.contains(&b) && part.isr.len() > 1 {
                part.isr.retain(|&m| m != b);
                cx.mech(cause, "isr_shrink", || {
                    format!(
                        "broker {b} is fenced by the controller and leaves the ISR of its partitions \
                         (followers that stop fetching leave after replica.lag.time.max.ms = {lag_max} at the latest)"
                    )
                });
            }
            if self.parts[p].leader == Some(b) {
                self.elect(p, cause, cx);
            } else {
                self.update_hw(p, cx);
            }
        }
    }

    fn broker_up(&mut self, b: usize, cx: &mut Cx<KEv>) {
        if b >= self.brokers.len() {
            return;
        }
        let br = &mut self.brokers[b];
        *br = Broker {
            up: true,
            epoch: br.epoch + 1,
            free_at: br.free_at,
            cause: br.cause,
            ..Broker::default()
        };
        let epoch = br.epoch;
        for p in 0..self.parts.len() {
            if !self.parts[p].replicas.contains(&b) {
                continue;
            }
            let end = self.logs[p].end();
            let part = &mut self.parts[p];
            part.leo[b] = part.leo[b].min(end);
            cx.after(
                self.cfg.catch_up,
                KEv::CaughtUp {
                    p: p as u32,
                    b: b as u32,
                    epoch,
                },
            );
            // An offline partition gets a leader as soon as a replica that may lead is back:
            // an in-sync one, or with unclean election any one (without catching up first,
            // since there is no leader to copy from).
            if part.leader.is_none() && (part.isr.contains(&b) || self.cfg.unclean) {
                let cause = fault_cause(self.brokers[b].cause);
                self.elect(p, cause, cx);
            }
        }
    }

    /// A restarted follower has had time to copy the leader's log. With no serving leader
    /// there is nothing to copy: its log keeps ending where it stopped.
    fn caught_up(&mut self, p: usize, b: usize, cx: &mut Cx<KEv>) {
        let cause = fault_cause(self.brokers[b].cause);
        let leader = self.parts[p]
            .leader
            .filter(|&l| l != b && self.brokers[l].serving());
        let Some(l) = leader else {
            if self.parts[p].leader.is_none() {
                self.elect(p, cause, cx);
            }
            return;
        };
        let part = &mut self.parts[p];
        part.leo[b] = part.leo[l];
        part.caught[b] = true;
        if !part.isr.contains(&b) {
            part.isr.push(b);
            cx.mech(cause, "isr_expand", || {
                format!("broker {b} caught up and rejoins the ISR of partition {p}")
            });
        }
        self.update_hw(p, cx);
    }

    fn trim(&mut self, cx: &mut Cx<KEv>) {
        let now = cx.now();
        for p in 0..self.logs.len() {
            let part = &self.parts[p];
            let mut low = self.group.low_water(p).min(part.hw);
            if self.cfg.unclean {
                // An out-of-sync replica may still become leader: keep what it lacks, so that a
                // truncation can name every record it cuts.
                let lagging = part.replicas.iter().map(|&r| part.leo[r]).min();
                low = low.min(lagging.unwrap_or(low));
            }
            self.logs[p].trim_below(low);
            while let Some(front) = self.logs[p].front() {
                if front.created.plus(self.cfg.retention) > now {
                    break;
                }
                let id = front.id;
                self.logs[p].pop_front();
                cx.col.lost(id, now, Cause::Window);
                cx.mech_id(Cause::Window, "retention_expired", id, || {
                    "records older than retention.ms were deleted before anyone consumed them"
                        .into()
                });
            }
            let start = self.logs[p].start();
            if self.group.processed(p) < start {
                self.group.truncated(p, u64::MAX);
            }
        }
    }
}

impl Model for Kafka {
    type Ev = KEv;

    fn start(&mut self, cx: &mut Cx<KEv>) {
        self.group.start(cx);
    }

    fn on_message(&mut self, msg: Msg, cx: &mut Cx<KEv>) {
        // The producer refuses a record too large before compressing it (max.request.size
        // and max.message.bytes are both about 1 MB by default); the batch then travels,
        // is stored, replicated and fetched compressed, as a whole.
        let mut rec = Rec::new(&msg);
        rec.size = self.cfg.compression.wire(msg.size);
        if msg.size > self.cfg.max_message_bytes {
            cx.col.failed(msg.id, cx.now(), Cause::Window);
            cx.mech_id(Cause::Window, "record_too_large", msg.id, || {
                "a message above max.message.bytes is refused (RECORD_TOO_LARGE)".into()
            });
            return;
        }
        self.outstanding += 1;
        if self.cfg.acks == Acks::Zero {
            cx.col.acked(SimTime::ZERO);
        }
        let p = self.partition_of(msg.key);
        let added = self.batcher.add(p, rec);
        if let Some(seq) = added.arm {
            cx.after(self.batcher.linger, KEv::Linger { p: p as u32, seq });
        }
        if let Some(batch) = added.full {
            self.transmit_batch(p, batch.into_iter().map(|r| (r, r.created)).collect(), cx);
        }
    }

    fn on_event(&mut self, ev: KEv, cx: &mut Cx<KEv>) {
        match ev {
            KEv::Group(g) => {
                let committed = self
                    .group
                    .on_event(g, &self.logs, &self.visible, &mut NoGate, cx);
                if committed {
                    self.trim(cx);
                }
            }
            KEv::Append { p, batch } => self.append_batch(p as usize, batch, cx),
            KEv::Linger { p, seq } => {
                if let Some(batch) = self.batcher.flush(p as usize, seq) {
                    let batch = batch.into_iter().map(|r| (r, r.created)).collect();
                    self.transmit_batch(p as usize, batch, cx);
                }
            }
            KEv::Retry { p, rec, first } => self.transmit(p as usize, rec, first, cx),
            KEv::TimedOut { p, rec, first } => {
                self.fail(p as usize, rec, first, "request_timeout", Cause::Window, cx)
            }
            KEv::Flush { p } => {
                let part = &mut self.parts[p as usize];
                part.blocked = false;
                let mut q = std::mem::take(&mut part.retry_q);
                q.sort_by_key(|(r, _)| r.id);
                if !q.is_empty() {
                    self.transmit_batch(p as usize, q, cx);
                }
            }
            KEv::Replicate { p, upto } => self.replicate(p as usize, upto, cx),
            KEv::Fence { b, epoch } => {
                let br = &self.brokers[b as usize];
                if br.epoch == epoch && !br.serving() {
                    self.fence(b as usize, cx);
                }
            }
            KEv::Elect { p } => {
                let cause = Cause::Window;
                self.elect(p as usize, cause, cx);
            }
            KEv::CaughtUp { p, b, epoch } => {
                let br = &self.brokers[b as usize];
                if br.epoch == epoch && br.serving() {
                    self.caught_up(p as usize, b as usize, cx);
                }
            }
            KEv::Storm { fault, until, n } => {
                if cx.now() < until {
                    let c = n as usize % self.cfg.group.consumers.max(1);
                    let cause = Cause::Fault(fault as usize);
                    cx.mech(cause, "session_timeout", || {
                        format!("consumer {c} misses a heartbeat (a long pause) and is removed from the group")
                    });
                    self.group.kick(c, cause, cx);
                    let interval = cx
                        .faults
                        .iter()
                        .find(|f| f.id == fault as usize)
                        .and_then(|f| match f.kind {
                            FaultKind::RebalanceStorm { interval } => Some(interval),
                            _ => None,
                        })
                        .unwrap_or(SimTime::from_secs(10));
                    cx.after(
                        interval,
                        KEv::Storm {
                            fault,
                            until,
                            n: n + 1,
                        },
                    );
                }
            }
            KEv::Restart { b } => self.broker_up(b as usize, cx),
        }
    }

    fn on_fault(&mut self, f: &Fault, start: bool, cx: &mut Cx<KEv>) {
        let cause = Cause::Fault(f.id);
        match (&f.kind, start) {
            (FaultKind::BrokerCrash { broker }, true) => {
                self.broker_down(*broker, f.id, "crash", cx)
            }
            (FaultKind::BrokerCrash { broker }, false)
            | (
                FaultKind::NetworkPartition {
                    broker: Some(broker),
                },
                false,
            )
            | (FaultKind::DiskFull { broker }, false) => {
                cx.after(SimTime::ZERO, KEv::Restart { b: *broker as u32 });
            }
            (FaultKind::NetworkPartition { broker: Some(b) }, true) => {
                self.broker_down(*b, f.id, "isolate", cx)
            }
            (FaultKind::DiskFull { broker }, true) => self.broker_down(*broker, f.id, "disk", cx),
            (FaultKind::NetworkPartition { broker: None }, s) => {
                self.clients_cut = s;
                self.group.unreachable = s;
                if s {
                    cx.mech(cause, "network_unreachable", || {
                        "clients cannot reach any broker: requests time out".into()
                    });
                }
            }
            (FaultKind::LeaderFailover { partition }, true) => {
                let targets: Vec<usize> = match partition {
                    Some(p) if *p < self.parts.len() => vec![*p],
                    Some(_) => Vec::new(),
                    None => (0..self.parts.len())
                        .filter(|&p| self.parts[p].leader == Some(0))
                        .collect(),
                };
                let d = self.cfg.controlled_failover;
                for p in targets {
                    let part = &mut self.parts[p];
                    part.avoid = part.leader;
                    part.leader = None;
                    cx.mech(cause, "leader_election", || {
                        format!(
                            "controlled leader change: partition {p} has no leader for about {d}"
                        )
                    });
                    cx.after(d, KEv::Elect { p: p as u32 });
                }
            }
            (FaultKind::AddedLatency { latency }, s) => {
                let extra = if s { *latency } else { SimTime::ZERO };
                self.extra_latency = extra;
                self.group.extra_latency = extra;
                if s {
                    cx.mech(cause, "added_latency", || {
                        format!("every request and fetch takes {latency} longer each way")
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
                self.group.set_slow(*consumer, s.then_some(*processing));
                if s {
                    cx.mech(cause, "slow_processing", || {
                        format!("consumers now spend {processing} per message")
                    });
                }
            }
            (FaultKind::ConsumerCrash { consumer }, true) => {
                self.group.crash(*consumer, cause, &self.logs, cx)
            }
            (FaultKind::ConsumerCrash { consumer }, false) => {
                self.group.restart(*consumer, cause, cx)
            }
            (FaultKind::ThrottlingSpike { capacity_factor }, s) => {
                self.capacity_factor = if s {
                    capacity_factor.clamp(0.001, 1.0)
                } else {
                    1.0
                };
            }
            (FaultKind::RebalanceStorm { .. }, true) => {
                cx.after(
                    SimTime::ZERO,
                    KEv::Storm {
                        fault: f.id as u32,
                        until: f.end(),
                        n: 0,
                    },
                );
            }
            (FaultKind::RebalanceStorm { .. }, false)
            | (FaultKind::LeaderFailover { .. }, false)
            | (FaultKind::UpdateShardCount { .. }, _) => {}
        }
    }

    fn gauges(&self, now: SimTime) -> (u64, SimTime, u64) {
        let (lag, oldest) = self.group.lag(&self.logs);
        let urp = self
            .parts
            .iter()
            .filter(|p| p.isr.len() < p.replicas.len())
            .count() as u64;
        (lag, oldest.map_or(SimTime::ZERO, |o| now.minus(o)), urp)
    }

    fn idle(&self) -> bool {
        self.outstanding == 0 && self.group.caught_up(&self.logs)
    }

    fn replay_window(&self, _spec: &crate::replay::ReplaySpec) -> crate::replay::ReplayWindow {
        let r = self.cfg.retention;
        crate::replay::ReplayWindow {
            window: Some(r),
            how: format!(
                "the group's offsets are reset to the bug's timestamp \
                 (kafka-consumer-groups --reset-offsets --to-datetime), which finds every \
                 record still within retention.ms ({r}; segments are deleted whole, so a \
                 little more may remain)"
            ),
        }
    }

    fn wire_ratio(&self) -> f64 {
        self.cfg.compression.ratio
    }

    fn capacities(&self, offered: &Offered) -> Vec<Capacity> {
        let c = &self.cfg;
        let mean = offered.mean_bytes();
        // Produce requests land on the partition leaders; the broker whose partitions carry
        // the largest share of the records fills up first (the model charges the leader's
        // append). Without a hot key that is the broker leading the most partitions.
        let shares = offered.partition_shares(c.partitions);
        let mut leading = vec![0usize; c.brokers];
        let mut load = vec![0.0f64; c.brokers];
        for (p, part) in self.parts.iter().enumerate() {
            if let Some(&l) = part.replicas.first() {
                leading[l] += 1;
                load[l] += shares.get(p).copied().unwrap_or(0.0);
            }
        }
        let (busiest, share) = load
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 1.0));
        let per_broker = c.broker_bytes_per_s / mean;
        let hot = super::hot_partition(c.partitions);
        let how = if offered.hot_key_share > 0.0 {
            format!(
                "broker {busiest} at {:.0} MB/s ÷ {mean:.0} B{} leads {} partitions carrying \
                 {:.0}% of the records{}",
                c.broker_bytes_per_s / 1e6,
                offered.compressed_note(),
                leading[busiest],
                100.0 * share,
                if self.parts[hot].replicas.first() == Some(&busiest) {
                    format!(", hot partition {hot} among them")
                } else {
                    String::new()
                }
            )
        } else {
            format!(
                "{} brokers at {:.0} MB/s ÷ {mean:.0} B{}, the busiest leading {} of {} \
                 partitions",
                c.brokers,
                c.broker_bytes_per_s / 1e6,
                offered.compressed_note(),
                leading[busiest],
                c.partitions
            )
        };
        let mut out = vec![Capacity {
            stage: "brokers",
            per_s: per_broker / share.max(1e-9),
            how,
            relief: if offered.hot_key_share > 0.0 {
                "spread the hot key over several keys; more brokers do not split one partition"
                    .into()
            } else {
                "add brokers, and partitions to spread the leaders".into()
            },
        }];
        out.extend(
            Capacity::readers_with_hot_key(
                "consumers",
                c.group.consumers,
                c.partitions,
                c.group.processing,
                offered,
            )
            .or_else(|| {
                Capacity::readers(
                    "consumers",
                    c.group.consumers,
                    c.partitions,
                    c.group.processing,
                    "partition",
                )
            }),
        );
        out
    }

    fn finish(
        &mut self,
        cx: &mut Cx<KEv>,
        run: SimTime,
        offered: &Offered,
    ) -> (Vec<String>, CostEstimate) {
        self.group.mark_pending(&self.logs, cx);
        for part in &self.parts {
            for (rec, _) in &part.retry_q {
                cx.col.pending(rec.id);
            }
        }
        for rec in self.batcher.drain() {
            cx.col.pending(rec.id);
        }
        while let Some((_, ev)) = cx.q.pop() {
            match ev {
                crate::models::Ev::Model(KEv::Append { batch, .. }) => {
                    for (rec, _) in batch {
                        cx.col.pending(rec.id);
                    }
                }
                crate::models::Ev::Model(KEv::Retry { rec, .. } | KEv::TimedOut { rec, .. }) => {
                    cx.col.pending(rec.id);
                }
                _ => {}
            }
        }
        let c = &self.cfg;
        let settings = vec![
            format!("brokers={}", c.brokers),
            format!("partitions={}", c.partitions),
            format!("replication.factor={}", c.replication_factor),
            format!(
                "acks={}",
                match c.acks {
                    Acks::Zero => "0",
                    Acks::One => "1",
                    Acks::All => "all",
                }
            ),
            format!("min.insync.replicas={}", c.min_isr),
            if c.idempotence_disabled_by_acks {
                "enable.idempotence=false (unset; off because acks is not all)".to_string()
            } else {
                format!("enable.idempotence={}", c.idempotence)
            },
            format!("unclean.leader.election.enable={}", c.unclean),
            if c.compression_type == "none" {
                "compression.type=none".to_string()
            } else {
                format!(
                    "compression.type={} (ratio {:.2}:1)",
                    c.compression_type, c.compression.ratio
                )
            },
            format!("consumers={}", c.group.consumers),
            format!(
                "rebalance={}",
                if c.group.cooperative {
                    "cooperative"
                } else {
                    "eager"
                }
            ),
        ];
        let hours = run.as_secs_f64() / 3600.0;
        let mut cost = CostEstimate::default();
        cost.line(
            "broker-hours",
            c.brokers as f64 * hours,
            c.broker_usd_per_hour,
        );
        // Disks hold the whole retention window, on every replica: a month of a running
        // cluster pays for that steady state, not for the minutes simulated.
        let rf = c.replication_factor as f64;
        let days = c.retention.as_secs_f64() / 86_400.0;
        cost.monthly(
            &format!(
                "GB stored (steady state: {days:.1} days of the offered bytes{} × RF {rf})",
                offered.compressed_note()
            ),
            offered.gb_in(c.retention) * rf,
            c.storage_usd_per_gb_month,
        );
        if c.zones > 1 {
            // Rack-aware placement puts each replica of a partition in another zone (as far as
            // there are zones): every follower copy in a zone other than the leader's crosses.
            // Transfer is priced on a month of the offered byte rate, like the storage.
            let gb = offered.gb_in(SimTime::from_secs_f64(HOURS_PER_MONTH * 3600.0));
            let copies = (c.replication_factor.min(c.zones) - 1) as f64;
            cost.monthly(
                &format!("GB cross-zone replication ({copies:.0} follower copies in other zones)"),
                gb * copies,
                c.cross_zone_usd_per_gb,
            );
            // Producers and consumers reach a leader in another zone (zones - 1) / zones of
            // the time (consumers could fetch from a same-zone follower, KIP-392; not modelled).
            let share = (c.zones - 1) as f64 / c.zones as f64;
            cost.monthly(
                &format!(
                    "GB cross-zone client traffic (produce and fetch, {:.0}% to another zone)",
                    share * 100.0
                ),
                gb * 2.0 * share,
                c.cross_zone_usd_per_gb,
            );
        }
        cost.finish(
            run,
            "infrastructure cost (illustrative instance, disk and transfer prices); storage is \
             the steady state of the retention, not the minutes simulated; Kafka has no \
             per-message fee",
        );
        (settings, cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::trail::Stage;
    use crate::ServiceKind;

    fn scenario(extra_kafka: &str, faults: &str, secs: u32, rate: u32) -> Scenario {
        let text = format!(
            "name = \"t\"\nseed = 7\nduration = \"{secs}s\"\nservices = [\"kafka\"]\n\
             [workload]\nkind = \"telemetry\"\nrate = \"{rate}/s\"\n\
             [kafka]\n{extra_kafka}\n{faults}"
        );
        Scenario::from_toml_str(&text, "test.toml").unwrap()
    }

    #[test]
    fn explicit_idempotence_with_acks_1_is_a_config_exception() {
        // Kafka 3.0+ (KIP-679, KAFKA-13598): enable.idempotence=true set by the user with
        // acks other than all makes the producer constructor throw ConfigException.
        let text = "services = [\"kafka\"]\n[kafka]\nacks = \"1\"\nenable_idempotence = true\n";
        let err = Scenario::from_toml_str(text, "k.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("k.toml:4:22: field `kafka.enable_idempotence`"),
            "{err}"
        );
        assert!(err.contains("ConfigException"), "{err}");
    }

    #[test]
    fn unset_idempotence_with_acks_1_is_silently_off() {
        // Left at its default, idempotence is switched off by a conflicting acks (KAFKA-13673).
        let s = scenario("acks = \"1\"", "", 1, 100);
        let cfg = KafkaCfg::from_profile(s.profiles.get(ServiceKind::Kafka).unwrap()).unwrap();
        assert!(!cfg.idempotence);
        let all = scenario("", "", 1, 100);
        let cfg = KafkaCfg::from_profile(all.profiles.get(ServiceKind::Kafka).unwrap()).unwrap();
        assert!(cfg.idempotence, "on by default with acks=all");
        let r = s.run().unwrap();
        let settings = &r.services[0].settings;
        assert!(
            settings
                .iter()
                .any(|x| x.starts_with("enable.idempotence=false (unset")),
            "{settings:?}"
        );
    }

    #[test]
    fn healthy_cluster_delivers_everything_once_in_order() {
        let r = scenario("", "", 5, 500).run().unwrap();
        let k = &r.services[0];
        assert_eq!(k.delivered, k.produced);
        assert_eq!(k.lost.count + k.duplicated.count + k.reordered.count, 0);
        assert!(k.latency.p50_ms < 10.0, "p50 {}", k.latency.p50_ms);
    }

    #[test]
    fn group_of_three_on_six_partitions_owns_two_partitions_each() {
        let cfg = KafkaCfg::from_profile(
            crate::ProfileSet::embedded()
                .unwrap()
                .get(crate::ServiceKind::Kafka)
                .unwrap(),
        )
        .unwrap();
        assert_eq!((cfg.partitions, cfg.group.consumers), (6, 3));
        let k = Kafka::new(cfg);
        for owned in k.assignment() {
            assert_eq!(owned.len(), 2);
        }
    }

    const CRASH: &str =
        "[[fault]]\nkind = \"broker_crash\"\nbroker = 0\nat = \"2s\"\nduration = \"20s\"\n";
    // Replication takes exactly 20 ms, so the last 20 ms of appends on broker 0's partitions
    // exist only on the leader when it dies.
    const SLOW_REPLICATION: &str =
        "replication_p50_ms = 20\nreplication_p99_ms = 20\nenable_idempotence = false\n";

    #[test]
    fn acks_1_leader_crash_loses_exactly_the_unreplicated_messages() {
        let s = scenario(&format!("acks = \"1\"\n{SLOW_REPLICATION}"), CRASH, 6, 2000);
        let r = s.run().unwrap();
        let k = &r.services[0];
        let trail = r.trail(0, crate::ServiceKind::Kafka).unwrap();
        let truncation = trail.step(Stage::Mechanism, "log_truncation").unwrap();
        let mut truncated = truncation.message_ids.clone();
        truncated.sort_unstable();
        assert!(!truncated.is_empty());
        assert_eq!(
            k.lost.ids, truncated,
            "lost ids are exactly the truncated tail"
        );
        assert!(trail.has(Stage::Symptom, "messages_lost"));
        assert_eq!(
            k.lost.count,
            k.produced - k.delivered - k.pending - k.failed.count
        );
    }

    #[test]
    fn unclean_election_loses_exactly_the_records_only_the_old_leader_had() {
        // One partition led by broker 0, followers 1 and 2; a message every 100 ms; replication
        // takes 1 ms and a dead broker is fenced after 100 ms. Followers 1 and 2 stop at 1.05 s
        // holding ids 0..=10 (created 0.0..=1.0 s). Broker 0, alone in the ISR, takes ids
        // 11..=30 (1.1..=3.0 s) and dies at 3.05 s: the partition is offline. Broker 1 returns
        // at 5 s and, with unclean election on, leads with a log that ends at offset 11, so
        // exactly ids 11..=30 are cut. Consumers had read them (the high watermark followed the
        // lone leader), which makes them lost from the log, not undelivered.
        let mut csv = String::from("timestamp,key,size\n");
        for i in 0..80 {
            csv.push_str(&format!("{:.1},vehicle-1,100\n", f64::from(i) * 0.1));
        }
        let trace = crate::Trace::from_csv(&csv, "t.csv").unwrap();
        let faults = "[[fault]]\nkind = \"broker_crash\"\nbroker = 1\nat = \"1050ms\"\nduration = \"3950ms\"\n\
                      [[fault]]\nkind = \"broker_crash\"\nbroker = 2\nat = \"1050ms\"\n\
                      [[fault]]\nkind = \"broker_crash\"\nbroker = 0\nat = \"3050ms\"\n";
        let kafka = "partitions = 1\nacks = \"1\"\nenable_idempotence = false\n\
                     unclean_leader_election = true\nfailover_detection_ms = 100\n\
                     replication_p50_ms = 1\nreplication_p99_ms = 1\n\
                     network_rtt_p50_ms = 0.6\nnetwork_rtt_p99_ms = 0.6\n";
        let mut s = scenario(kafka, faults, 8, 10);
        s.workload = crate::WorkloadSpec::trace(trace);
        let r = s.run().unwrap();
        let k = &r.services[0];
        let only_on_old_leader: Vec<u64> = (11..=30).collect();
        assert_eq!(k.lost.ids, only_on_old_leader);
        assert_eq!(k.lost_after_delivery, 20);
        let trail = r.trail(2, crate::ServiceKind::Kafka).unwrap();
        assert!(
            trail.has(Stage::Mechanism, "unclean_leader_election"),
            "{}",
            trail.summary()
        );
        let mut cut = trail
            .step(Stage::Mechanism, "log_truncation")
            .unwrap()
            .message_ids
            .clone();
        cut.sort_unstable();
        assert_eq!(cut, only_on_old_leader);
        let lost = trail.step(Stage::Symptom, "messages_lost").unwrap();
        assert_eq!(lost.message_ids, only_on_old_leader);
        // Everything else arrives: the producer retried through the offline window.
        assert_eq!(k.delivered, k.produced);
    }

    #[test]
    fn monthly_cost_prices_the_retention_steady_state_not_the_minutes_simulated() {
        // 5,000 messages/s of 1 KiB kept 7 days on 3 replicas: 5,000 × 1,024 × 604,800 × 3
        // = 9,289.7 GB on disk, whatever the run's length; each byte crosses zones twice for
        // replication (RF 3 over 3 zones) and 2/3 of produce and fetch traffic crosses too.
        let expected_gb = 5_000.0 * 1_024.0 * 604_800.0 * 3.0 / 1e9;
        let month_gb = 5_000.0 * 1_024.0 * 730.0 * 3_600.0 / 1e9;
        let mut months = Vec::new();
        for secs in [4, 12] {
            let mut s = scenario("", "", secs, 5_000);
            s.workload.message_bytes = Some(1_024);
            let r = s.run().unwrap();
            let cost = &r.services[0].cost;
            let line = |start: &str| {
                cost.lines
                    .iter()
                    .find(|l| l.item.starts_with(start))
                    .unwrap_or_else(|| panic!("no `{start}` line in {:?}", cost.lines))
            };
            let stored = line("GB stored");
            assert!(
                (stored.quantity / expected_gb - 1.0).abs() < 0.02,
                "{} GB",
                stored.quantity
            );
            assert_eq!(stored.basis, crate::metrics::CostBasis::Month);
            let replication = line("GB cross-zone replication");
            assert!((replication.quantity / (2.0 * month_gb) - 1.0).abs() < 0.02);
            let clients = line("GB cross-zone client traffic");
            assert!((clients.quantity / (2.0 * 2.0 / 3.0 * month_gb) - 1.0).abs() < 0.02);
            let storage_usd = expected_gb * 0.08;
            assert!(cost.month_usd > storage_usd, "{}", cost.month_usd);
            months.push(cost.month_usd);
        }
        assert!(
            (months[0] / months[1] - 1.0).abs() < 0.02,
            "a month costs the same after 4 s and 12 s simulated: {months:?}"
        );
    }

    #[test]
    fn consumers_too_slow_for_the_offered_rate_are_named_as_the_bottleneck() {
        // 50,000 messages/s; 3 consumers at 0.1 ms each process 3 × 10,000 = 30,000/s.
        let r = scenario("", "", 1, 50_000).run().unwrap();
        let b = &r.services[0].bottleneck;
        assert_eq!(b.stage, "consumers");
        assert!(b.binding);
        assert!(
            (b.capacity_per_s - 30_000.0).abs() < 1e-6,
            "{}",
            b.capacity_per_s
        );
        assert!(
            b.detail
                .starts_with("consumers: 3 × 10,000/s (0.1 ms each) = 30,000/s < "),
            "{}",
            b.detail
        );
        assert!(
            b.detail.contains("/s offered; add consumers"),
            "{}",
            b.detail
        );
        assert!(r.to_table().contains("bottleneck: consumers"));
    }

    #[test]
    fn acks_all_with_min_isr_2_loses_nothing_when_the_leader_crashes() {
        let s = scenario(
            &format!("acks = \"all\"\nmin_insync_replicas = 2\n{SLOW_REPLICATION}"),
            CRASH,
            6,
            2000,
        );
        let k = &s.run().unwrap().services[0];
        assert_eq!(k.lost.count, 0);
        assert_eq!(k.delivered + k.failed.count + k.pending, k.produced);
        assert!(k.retries > 0, "the producer retried during the failover");
    }

    #[test]
    fn min_isr_2_with_two_brokers_down_refuses_writes_instead_of_losing_them() {
        let faults = "[[fault]]\nkind = \"broker_crash\"\nbroker = 1\nat = \"1s\"\n\
                      [[fault]]\nkind = \"broker_crash\"\nbroker = 2\nat = \"1s\"\n";
        let s = scenario(
            "acks = \"all\"\nmin_insync_replicas = 2\ndelivery_timeout_ms = 5000\n",
            faults,
            12,
            200,
        );
        let r = s.run().unwrap();
        let k = &r.services[0];
        assert_eq!(k.lost.count, 0);
        assert!(
            k.failed.count > 0,
            "writes are refused with NOT_ENOUGH_REPLICAS"
        );
        let t = r.trail(0, crate::ServiceKind::Kafka).unwrap();
        assert!(
            t.has(Stage::Metric, "under_replicated_partitions"),
            "{}",
            t.summary()
        );
    }

    #[test]
    fn consumer_crash_causes_a_rebalance_and_duplicates_after_the_session_timeout() {
        let faults = "[[fault]]\nkind = \"consumer_crash\"\nconsumer = 1\nat = \"3s\"\n";
        let s = scenario(
            "session_timeout_ms = 6000\nauto_commit_interval_ms = 2000\n",
            faults,
            20,
            300,
        );
        let r = s.run().unwrap();
        let k = &r.services[0];
        let t = r.trail(0, crate::ServiceKind::Kafka).unwrap();
        assert!(
            t.has(Stage::Mechanism, "session_timeout"),
            "{}",
            t.summary()
        );
        assert!(t.has(Stage::Mechanism, "rebalance"));
        assert!(t.has(Stage::Metric, "consumer_lag"), "{}", t.summary());
        assert_eq!(k.delivered, k.produced);
        assert!(
            k.duplicated.count > 0,
            "records processed after the last commit are re-read"
        );
    }

    #[test]
    fn slow_consumer_past_max_poll_interval_leaves_the_group() {
        let faults = "[[fault]]\nkind = \"slow_consumer\"\nprocessing = \"50ms\"\nat = \"2s\"\nduration = \"20s\"\n";
        let s = scenario(
            "max_poll_interval_ms = 3000\nmax_poll_records = 200\n",
            faults,
            30,
            600,
        );
        let r = s.run().unwrap();
        let t = r.trail(0, crate::ServiceKind::Kafka).unwrap();
        assert!(
            t.has(Stage::Mechanism, "max_poll_exceeded"),
            "{}",
            t.summary()
        );
        assert!(t.has(Stage::Metric, "consumer_lag"));
    }

    #[test]
    fn compression_divides_stored_and_transferred_bytes_by_its_ratio() {
        // 5,000 messages/s of 1,024 B kept 7 days on 3 replicas is 9,289.7 GB on disk;
        // compressed 4:1 as whole batches, the disks, replication and client traffic carry a
        // quarter of it, and the broker's byte limit goes four times as far.
        let raw_gb = 5_000.0 * 1_024.0 * 604_800.0 * 3.0 / 1e9;
        let stored = |extra: &str| {
            let mut s = scenario(extra, "", 4, 5_000);
            s.workload.message_bytes = Some(1_024);
            let r = s.run().unwrap();
            let k = &r.services[0];
            assert_eq!(k.delivered, k.produced, "{extra}");
            let gb = k
                .cost
                .lines
                .iter()
                .find(|l| l.item.starts_with("GB stored"))
                .map(|l| l.quantity)
                .unwrap_or(0.0);
            (gb, k.settings.clone())
        };
        let (plain, _) = stored("");
        assert!((plain / raw_gb - 1.0).abs() < 0.02, "{plain} GB");
        let (four, settings) = stored("compression_type = \"zstd\"\ncompression_ratio = 4");
        assert!((four / (raw_gb / 4.0) - 1.0).abs() < 0.02, "{four} GB");
        assert!(settings
            .iter()
            .any(|s| s == "compression.type=zstd (ratio 4.00:1)"));
        // "typical" takes the codec's ratio from the profile (zstd level 1 on Silesia).
        let (typical, settings) = stored("compression_type = \"lz4\"");
        assert!(
            (typical / (raw_gb / 2.101) - 1.0).abs() < 0.02,
            "{typical} GB"
        );
        assert!(settings
            .iter()
            .any(|s| s.starts_with("compression.type=lz4 (ratio 2.10")));
    }

    #[test]
    fn a_compression_ratio_below_one_or_without_a_codec_is_refused_with_the_fix() {
        let base = "services = [\"kafka\"]\n[kafka]\n";
        let err = Scenario::from_toml_str(
            &format!("{base}compression_type = \"gzip\"\ncompression_ratio = 0.25\n"),
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("k.toml:4:21: field `kafka.compression_ratio`"),
            "{err}"
        );
        assert!(err.contains("write 4 for data that shrinks 4:1"), "{err}");
        assert_eq!(err.lines().count(), 1);
        let err = Scenario::from_toml_str(&format!("{base}compression_ratio = 4\n"), "k.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("k.toml:3:21:"), "{err}");
        assert!(err.contains("set compression_type to gzip"), "{err}");
        let err =
            Scenario::from_toml_str(&format!("{base}compression_type = \"brotli\"\n"), "k.toml")
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("k.toml:3:20:"), "{err}");
        assert!(err.contains("none, gzip, snappy, lz4, zstd"), "{err}");
    }

    #[test]
    fn a_hot_key_is_named_as_the_hot_partitions_consumer_with_its_rate() {
        // 20,000 messages/s, half of them with one key. Its partition gets 50% plus a sixth
        // of the rest: 58.3%, 11,667/s, more than the 10,000/s its one consumer processes
        // (0.1 ms each). That consumer also owns a second partition (range assignor, 6 over
        // 3): 66.7% of the records, so the group takes 10,000 / 0.667 = 15,000/s, not the
        // 30,000/s of an even spread.
        let mut s = scenario("", "", 2, 20_000);
        s.workload.hot_key_share = Some(0.5);
        let r = s.run().unwrap();
        let k = &r.services[0];
        let b = &k.bottleneck;
        let hot = crate::models::hot_partition(6);
        let owner = crate::models::group::range_assign(6, &[0, 1, 2])[hot].unwrap();
        let share = 0.5 + 0.5 / 6.0;
        assert_eq!(b.stage, "consumers");
        assert!(b.binding);
        assert!((b.capacity_per_s - 10_000.0 / (share + 0.5 / 6.0)).abs() < 1e-6);
        let named = format!(
            "consumer {owner} reads hot partition {hot}, which gets 58% of the records (50% hot \
             key, 1/6 of the rest) = "
        );
        assert!(
            b.detail.starts_with(&format!("consumers: {named}")),
            "{}",
            b.detail
        );
        assert!(b
            .detail
            .contains("against the 10,000/s one consumer processes"));
        assert!(b.detail.contains("spread the hot key"), "{}", b.detail);
        // The same run without the hot key spreads evenly: 3 × 10,000/s.
        let even = scenario("", "", 2, 20_000).run().unwrap();
        assert!((even.services[0].bottleneck.capacity_per_s - 30_000.0).abs() < 1e-6);
        // And the hot partition's consumer falls behind: lag builds that the even spread
        // never shows.
        let peak = |s: &crate::ServiceReport| s.samples.iter().map(|x| x.lag_messages).max();
        let (hot_lag, even_lag) = (peak(k), peak(&even.services[0]));
        assert!(
            hot_lag > Some(1_000) && even_lag < Some(1_000),
            "{hot_lag:?} vs {even_lag:?}"
        );
    }
}
