//! AWS Kinesis Data Streams: shards with write and read limits, ProvisionedThroughputExceeded
//! with client back-off, polling consumers (or enhanced fan-out), on-demand capacity.
//!
//! - **Writes:** each shard admits 1 MB/s or 1,000 records/s (token buckets with a one-second
//!   burst). A record over either gets `ProvisionedThroughputExceededException`; the SDK retries
//!   with exponential back-off, then gives up. A partition key maps to one shard by hash, so a
//!   hot key cannot exceed one shard's limits.
//! - **Reads (shared throughput):** each shard serves 2 MB/s and five GetRecords calls per
//!   second to *all* consuming applications together. KCL workers poll every
//!   `poll_interval_ms`; a call over the call rate or the byte budget is throttled, and a large
//!   read locks the shard's budget for the seconds it took (the 10 MB → 5 s rule falls out of a
//!   2 MB/s bucket that may go into debt).
//! - **Enhanced fan-out:** records are pushed over HTTP/2 with about 70 ms of delay and 2 MB/s
//!   per consumer per shard; subscriptions are renewed every five minutes.
//! - **On-demand:** a new stream takes 4 MB/s and 4,000 records/s; capacity grows to twice the
//!   peak of traffic older than 15 minutes, so a sudden doubling is throttled.
//! - **Readers:** KCL workers hold shard leases, checkpoint every interval, and take over a
//!   dead worker's leases after the failover time, replaying from the last checkpoint.

use crate::fault::{Fault, FaultKind};
use crate::metrics::{Cause, CostEstimate};
use crate::models::group::{Gate, Group, GroupCfg, GroupEv, ReadGate};
use crate::models::log::{Log, Rec};
use crate::models::{backoff, Bucket, Capacity, Cx, KeyOrder, Model, Offered};
use crate::profile::Profile;
use crate::rng::{mix64, LatencyDist};
use crate::time::SimTime;
use crate::workload::Msg;
use crate::SimError;

/// Kinesis settings.
#[derive(Clone, Debug)]
pub(crate) struct KinesisCfg {
    pub on_demand: bool,
    pub shards: usize,
    pub write_bytes: f64,
    pub write_records: f64,
    pub read_bytes: f64,
    pub calls_per_s: f64,
    pub consumer_apps: usize,
    pub efo: bool,
    pub on_demand_bytes: f64,
    pub on_demand_records: f64,
    pub on_demand_window: SimTime,
    pub max_record_bytes: u32,
    pub retention: SimTime,
    pub put: LatencyDist,
    pub max_retries: u32,
    pub retry_base: SimTime,
    pub retry_max: SimTime,
    pub request_timeout: SimTime,
    pub managed_failover: SimTime,
    pub group: GroupCfg,
    pub shard_usd_per_hour: f64,
    pub put_unit_usd_per_million: f64,
    pub efo_usd_per_consumer_shard_hour: f64,
    pub on_demand_stream_usd_per_hour: f64,
    pub on_demand_usd_per_gb_written: f64,
    pub on_demand_usd_per_gb_read: f64,
    pub included_retention: SimTime,
    pub extended_usd_per_shard_hour: f64,
    pub on_demand_extended_usd_per_gb_month: f64,
    pub long_term_usd_per_gb_month: f64,
}

impl KinesisCfg {
    pub fn from_profile(p: &Profile) -> Result<KinesisCfg, SimError> {
        let on_demand = p.choice("capacity_mode", &["provisioned", "on_demand"])? == "on_demand";
        let efo = p.bool("enhanced_fan_out")?;
        let consumer_apps = p.count("consumer_apps", 1, 50)?;
        let max_efo = p.count("max_efo_consumers", 1, 1000)?;
        if efo && consumer_apps > max_efo {
            return Err(SimError::at(
                p.origin("consumer_apps"),
                format!(
                    "at most {max_efo} enhanced fan-out consumers per stream, got {consumer_apps}"
                ),
            ));
        }
        let poll = p.millis("poll_interval_ms")?;
        let fetch = if efo {
            LatencyDist::from_p50_p99(p.millis("efo_p50_ms")?, p.millis("efo_p99_ms")?)
        } else {
            LatencyDist::from_p50_p99(
                p.millis("get_records_p50_ms")?,
                p.millis("get_records_p99_ms")?,
            )
        };
        let group = GroupCfg {
            consumers: p.count("workers", 1, 1000)?,
            processing: p.millis("processing_ms")?,
            max_batch: p.count("get_records_max_records", 1, 10_000)?,
            commit_interval: p.millis("checkpoint_interval_ms")?,
            detect_after: p.millis("lease_failover_ms")?,
            sync: p.millis("lease_taking_ms")?,
            cooperative: true,
            max_poll_interval: None,
            poll_interval: if efo { None } else { Some(poll) },
            fetch,
            detect_code: "lease_expired",
            rebalance_code: "lease_takeover",
            label: "KCL worker",
            copies: 1,
        };
        let write_bytes = p.f64("shard_write_bytes_per_s")?;
        let write_records = p.f64("shard_write_records_per_s")?;
        let on_demand_bytes = p.f64("on_demand_initial_write_bytes_per_s")?;
        let shards = if on_demand {
            (on_demand_bytes / write_bytes).ceil().max(1.0) as usize
        } else {
            p.count("shards", 1, 20_000)?
        };
        Ok(KinesisCfg {
            on_demand,
            shards,
            write_bytes,
            write_records,
            read_bytes: p.f64("shard_read_bytes_per_s")?,
            calls_per_s: p.f64("get_records_calls_per_s")?,
            consumer_apps,
            efo,
            on_demand_bytes,
            on_demand_records: p.f64("on_demand_initial_write_records_per_s")?,
            on_demand_window: p.millis("on_demand_scale_window_ms")?,
            max_record_bytes: p.int("max_record_bytes", 1, u32::MAX as i64)? as u32,
            retention: SimTime::from_secs_f64(p.f64("retention_hours")? * 3600.0),
            put: LatencyDist::from_p50_p99(p.millis("put_p50_ms")?, p.millis("put_p99_ms")?),
            max_retries: p.int("client_max_retries", 0, 100)? as u32,
            retry_base: p.millis("client_retry_base_ms")?,
            retry_max: p.millis("client_retry_max_ms")?,
            request_timeout: p.millis("client_request_timeout_ms")?,
            managed_failover: p.millis("managed_failover_ms")?,
            group,
            shard_usd_per_hour: p.f64("shard_usd_per_hour")?,
            put_unit_usd_per_million: p.f64("put_payload_unit_usd_per_million")?,
            efo_usd_per_consumer_shard_hour: p.f64("efo_usd_per_consumer_shard_hour")?,
            on_demand_stream_usd_per_hour: p.f64("on_demand_stream_usd_per_hour")?,
            on_demand_usd_per_gb_written: p.f64("on_demand_usd_per_gb_written")?,
            on_demand_usd_per_gb_read: p.f64("on_demand_usd_per_gb_read")?,
            included_retention: SimTime::from_secs_f64(p.f64("included_retention_hours")? * 3600.0),
            extended_usd_per_shard_hour: p.f64("extended_retention_usd_per_shard_hour")?,
            on_demand_extended_usd_per_gb_month: p
                .f64("on_demand_extended_retention_usd_per_gb_month")?,
            long_term_usd_per_gb_month: p.f64("long_term_retention_usd_per_gb_month")?,
        })
    }
}

/// Kinesis events.
pub(crate) enum KinEv {
    Group(GroupEv),
    Arrive {
        rec: Rec,
        attempt: u32,
    },
    Retry {
        rec: Rec,
        attempt: u32,
    },
    ScaleCheck,
    StormTick {
        fault: u32,
        until: SimTime,
        interval: SimTime,
        n: u32,
    },
}

impl From<GroupEv> for KinEv {
    fn from(e: GroupEv) -> Self {
        KinEv::Group(e)
    }
}

struct Reads {
    efo: bool,
    apps: f64,
    calls: Vec<Bucket>,
    bytes: Vec<Bucket>,
}

impl ReadGate for Reads {
    fn fetch(&mut self, p: usize, _records: usize, bytes: u64, now: SimTime) -> Gate {
        if self.efo {
            // Dedicated 2 MB/s per consumer per shard, pushed: capped, never an error.
            let d = self.bytes[p].take_debt(now, bytes as f64);
            return if d > SimTime::ZERO {
                Gate::Delay(d)
            } else {
                Gate::Open
            };
        }
        // Every consuming application polls this shard at the same cadence.
        if !self.calls[p].has(now, 1.0) {
            return Gate::Throttled(SimTime::from_secs(1));
        }
        self.calls[p].take_debt(now, self.apps);
        if !self.bytes[p].has(now, 0.0) {
            return Gate::Throttled(SimTime::from_secs(1));
        }
        self.bytes[p].take_debt(now, bytes as f64 * self.apps);
        Gate::Open
    }
}

/// The Kinesis model.
pub(crate) struct Kinesis {
    cfg: KinesisCfg,
    w_bytes: Vec<Bucket>,
    w_records: Vec<Bucket>,
    stream_bytes: Bucket,
    stream_records: Bucket,
    reads: Reads,
    logs: Vec<Log>,
    visible: Vec<u64>,
    group: Group,
    unavailable_until: SimTime,
    clients_cut: bool,
    extra_latency: SimTime,
    /// A key's records arrive in order (a shard's order, as far as anyone can observe it).
    order: KeyOrder,
    factor: f64,
    outstanding: u64,
    put_units: f64,
    window_bytes: f64,
    peaks: Vec<(SimTime, f64)>,
    capacity_bytes: f64,
    capacity_records: f64,
}

impl Kinesis {
    pub fn new(cfg: KinesisCfg) -> Kinesis {
        let n = cfg.shards;
        let group = Group::new(cfg.group.clone(), n);
        let read_burst = 5.0; // a 10 MB call at 2 MB/s locks the shard for 5 s
        Kinesis {
            w_bytes: (0..n).map(|_| Bucket::new(cfg.write_bytes, 1.0)).collect(),
            w_records: (0..n)
                .map(|_| Bucket::new(cfg.write_records, 1.0))
                .collect(),
            stream_bytes: Bucket::new(cfg.on_demand_bytes, 1.0),
            stream_records: Bucket::new(cfg.on_demand_records, 1.0),
            reads: Reads {
                efo: cfg.efo,
                apps: cfg.consumer_apps as f64,
                calls: (0..n).map(|_| Bucket::new(cfg.calls_per_s, 1.0)).collect(),
                bytes: (0..n)
                    .map(|_| Bucket::new(cfg.read_bytes, read_burst))
                    .collect(),
            },
            logs: (0..n).map(|_| Log::default()).collect(),
            visible: vec![0; n],
            group,
            unavailable_until: SimTime::ZERO,
            clients_cut: false,
            extra_latency: SimTime::ZERO,
            order: KeyOrder::default(),
            factor: 1.0,
            outstanding: 0,
            put_units: 0.0,
            window_bytes: 0.0,
            peaks: Vec::new(),
            capacity_bytes: cfg.on_demand_bytes,
            capacity_records: cfg.on_demand_records,
            cfg,
        }
    }

    fn send(&mut self, rec: Rec, attempt: u32, cx: &mut Cx<KinEv>) {
        if self.clients_cut {
            let t = self.cfg.request_timeout;
            cx.mech(Cause::Window, "request_timeout", || {
                format!(
                    "the producer cannot reach the stream endpoint: PutRecords times out after {t}"
                )
            });
            self.failed_try(rec, attempt, t, cx);
            return;
        }
        let lat = cx.rng.latency(&self.cfg.put).plus(self.extra_latency);
        let at = self.order.arrival(rec.key, cx.now().plus(lat));
        cx.at(at, KinEv::Arrive { rec, attempt });
    }

    fn failed_try(&mut self, rec: Rec, attempt: u32, after: SimTime, cx: &mut Cx<KinEv>) {
        if attempt >= self.cfg.max_retries {
            self.outstanding = self.outstanding.saturating_sub(1);
            let now = cx.now();
            cx.col.failed(rec.id, now.plus(after), Cause::Window);
            let n = self.cfg.max_retries;
            cx.mech_id(Cause::Window, "retries_exhausted", rec.id, || {
                format!("the SDK gave up after {n} retries: the record is not written")
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
            KinEv::Retry {
                rec,
                attempt: attempt + 1,
            },
        );
    }

    fn arrive(&mut self, rec: Rec, attempt: u32, cx: &mut Cx<KinEv>) {
        let now = cx.now();
        if now < self.unavailable_until {
            cx.mech(Cause::Window, "managed_failover", || {
                "the service replaces a failed host: PutRecords returns InternalFailure briefly"
                    .into()
            });
            self.failed_try(rec, attempt, SimTime::ZERO, cx);
            return;
        }
        let s = (mix64(rec.key) % self.cfg.shards as u64) as usize;
        let bytes = f64::from(rec.size) + 16.0; // data plus a short partition key
        let shard_ok = self.w_bytes[s].has(now, bytes) && self.w_records[s].has(now, 1.0);
        let stream_ok = !self.cfg.on_demand
            || (self.stream_bytes.has(now, bytes) && self.stream_records.has(now, 1.0));
        if !(shard_ok && stream_ok) {
            cx.col.throttled(1);
            let why = if shard_ok {
                "the on-demand stream's current capacity (twice the earlier peak) is exceeded"
            } else {
                "shard write limit of 1 MB/s or 1,000 records/s exceeded"
            };
            cx.mech_id(Cause::Window, "provisioned_throughput_exceeded", rec.id, || {
                format!("ProvisionedThroughputExceededException on shard {s}: {why}; the SDK backs off")
            });
            self.failed_try(rec, attempt, SimTime::ZERO, cx);
            return;
        }
        self.w_bytes[s].try_take(now, bytes);
        self.w_records[s].try_take(now, 1.0);
        if self.cfg.on_demand {
            self.stream_bytes.try_take(now, bytes);
            self.stream_records.try_take(now, 1.0);
            self.window_bytes += bytes;
        }
        self.put_units += (bytes / 25_000.0).ceil().max(1.0);
        self.logs[s].push(rec);
        self.visible[s] = self.logs[s].end();
        self.outstanding = self.outstanding.saturating_sub(1);
        let back = cx.rng.latency(&self.cfg.put);
        cx.col.acked(now.plus(back).minus(rec.created));
        self.group.data_available(s, self.visible[s], cx);
    }

    fn rescale(&mut self, cx: &mut Cx<KinEv>) {
        let now = cx.now();
        self.peaks.push((now, self.window_bytes / 60.0));
        self.window_bytes = 0.0;
        let horizon = now.minus(self.cfg.on_demand_window);
        let old_peak = self
            .peaks
            .iter()
            .filter(|(t, _)| *t <= horizon)
            .map(|(_, b)| *b)
            .fold(0.0, f64::max);
        let target = (2.0 * old_peak).max(self.cfg.on_demand_bytes);
        if target > self.capacity_bytes * 1.01 {
            let before = self.capacity_bytes;
            cx.mech(Cause::Window, "on_demand_scale_up", || {
                format!("on-demand capacity grows from {:.1} to {:.1} MB/s (twice the peak seen 15 min ago)", before / 1e6, target / 1e6)
            });
            self.capacity_bytes = target;
            self.capacity_records = self.cfg.on_demand_records * target / self.cfg.on_demand_bytes;
            self.apply_factor(now);
        }
        cx.after(SimTime::from_secs(60), KinEv::ScaleCheck);
    }

    fn apply_factor(&mut self, now: SimTime) {
        let f = self.factor;
        for b in &mut self.w_bytes {
            b.scale(now, f, self.cfg.write_bytes, 1.0);
        }
        for b in &mut self.w_records {
            b.scale(now, f, self.cfg.write_records, 1.0);
        }
        self.stream_bytes.scale(now, f, self.capacity_bytes, 1.0);
        self.stream_records
            .scale(now, f, self.capacity_records, 1.0);
    }

    fn trim(&mut self, cx: &mut Cx<KinEv>) {
        let now = cx.now();
        for s in 0..self.logs.len() {
            self.logs[s].trim_below(self.group.low_water(s));
            while let Some(front) = self.logs[s].front() {
                if front.created.plus(self.cfg.retention) > now {
                    break;
                }
                let id = front.id;
                self.logs[s].pop_front();
                cx.col.lost(id, now, Cause::Window);
                cx.mech_id(Cause::Window, "retention_expired", id, || {
                    "records passed the stream's retention period before they were read".into()
                });
            }
            if self.group.processed(s) < self.logs[s].start() {
                self.group.truncated(s, u64::MAX);
            }
        }
    }
}

impl Model for Kinesis {
    type Ev = KinEv;

    fn start(&mut self, cx: &mut Cx<KinEv>) {
        self.group.start(cx);
        if self.cfg.on_demand {
            cx.after(SimTime::from_secs(60), KinEv::ScaleCheck);
        }
    }

    fn on_message(&mut self, msg: Msg, cx: &mut Cx<KinEv>) {
        if msg.size > self.cfg.max_record_bytes {
            cx.col.failed(msg.id, cx.now(), Cause::Window);
            let max = self.cfg.max_record_bytes;
            cx.mech_id(Cause::Window, "message_too_large", msg.id, || {
                format!("records above {max} bytes are refused (raise it with UpdateMaxRecordSize)")
            });
            return;
        }
        self.outstanding += 1;
        self.send(Rec::new(&msg), 0, cx);
    }

    fn on_event(&mut self, ev: KinEv, cx: &mut Cx<KinEv>) {
        match ev {
            KinEv::Group(g) => {
                if self
                    .group
                    .on_event(g, &self.logs, &self.visible, &mut self.reads, cx)
                {
                    self.trim(cx);
                }
            }
            KinEv::Arrive { rec, attempt } => self.arrive(rec, attempt, cx),
            KinEv::Retry { rec, attempt } => self.send(rec, attempt, cx),
            KinEv::ScaleCheck => self.rescale(cx),
            KinEv::StormTick {
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
                        KinEv::StormTick {
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

    fn on_fault(&mut self, f: &Fault, start: bool, cx: &mut Cx<KinEv>) {
        let cause = Cause::Fault(f.id);
        let now = cx.now();
        match (&f.kind, start) {
            (FaultKind::BrokerCrash { .. } | FaultKind::LeaderFailover { .. }, true) => {
                let d = self.cfg.managed_failover;
                self.unavailable_until = now.plus(d);
                cx.mech(cause, "managed_failover", || {
                    format!("hosts are hidden behind the service: a failure shows as {d} of InternalFailure, retried by the SDK")
                });
            }
            (FaultKind::DiskFull { .. }, true) => cx.mech(cause, "not_applicable", || {
                "storage is managed by the provider: customers cannot fill a disk".into()
            }),
            (FaultKind::NetworkPartition { .. }, s) => {
                self.clients_cut = s;
                self.group.unreachable = s;
                if s {
                    cx.mech(cause, "network_unreachable", || {
                        "clients cannot reach the stream endpoint".into()
                    });
                }
            }
            (FaultKind::AddedLatency { latency }, s) => {
                let extra = if s { *latency } else { SimTime::ZERO };
                self.extra_latency = extra;
                self.group.extra_latency = extra;
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
                self.group.set_slow(*consumer, s.then_some(*processing));
                if s {
                    cx.mech(cause, "slow_processing", || format!("record processors now spend {processing} per record: iterator age grows"));
                }
            }
            (FaultKind::ConsumerCrash { consumer }, true) => {
                self.group.crash(*consumer, cause, &self.logs, cx)
            }
            (FaultKind::ConsumerCrash { consumer }, false) => {
                self.group.restart(*consumer, cause, cx)
            }
            (FaultKind::ThrottlingSpike { capacity_factor }, s) => {
                self.factor = if s {
                    capacity_factor.clamp(0.001, 1.0)
                } else {
                    1.0
                };
                self.apply_factor(now);
                if s {
                    let pct = self.factor * 100.0;
                    cx.mech(cause, "quota_reduced", || {
                        format!(
                            "shard write capacity drops to {pct:.0}% (e.g. a hot partition key)"
                        )
                    });
                }
            }
            (FaultKind::RebalanceStorm { interval }, true) => {
                cx.mech(cause, "lease_takeover", || {
                    "KCL workers keep restarting: shard leases churn".into()
                });
                cx.after(
                    SimTime::ZERO,
                    KinEv::StormTick {
                        fault: f.id as u32,
                        until: f.end(),
                        interval: *interval,
                        n: 0,
                    },
                );
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

    fn capacities(&self, offered: &Offered) -> Vec<Capacity> {
        let c = &self.cfg;
        let fmt = crate::metrics::fmt_rate;
        let mean = offered.mean_bytes();
        let put = mean + 16.0; // data plus a short partition key
        let shards = c.shards as f64;
        let mut out = vec![Capacity {
            stage: "partitions",
            per_s: shards * (c.write_bytes / put).min(c.write_records),
            how: format!(
                "{} shards × min({:.2} MB/s ÷ {put:.0} B, {} records/s)",
                c.shards,
                c.write_bytes / 1e6,
                fmt(c.write_records)
            ),
            relief: "add shards (UpdateShardCount) or aggregate records (KPL)".into(),
        }];
        if c.on_demand {
            out.push(Capacity {
                stage: "quota",
                per_s: (c.on_demand_bytes / put).min(c.on_demand_records),
                how: format!(
                    "a new on-demand stream, {:.1} MB/s or {} records/s",
                    c.on_demand_bytes / 1e6,
                    fmt(c.on_demand_records)
                ),
                relief: "wait for on-demand scaling (twice the peak of 15 minutes before) or \
                         provision shards"
                    .into(),
            });
        }
        let apps = c.consumer_apps as f64;
        out.push(if c.efo {
            Capacity {
                stage: "quota",
                per_s: shards * c.read_bytes / mean,
                how: format!(
                    "enhanced fan-out {} shards × {:.1} MB/s ÷ {mean:.0} B per consumer",
                    c.shards,
                    c.read_bytes / 1e6
                ),
                relief: "add shards".into(),
            }
        } else {
            Capacity {
                stage: "quota",
                per_s: shards * (c.read_bytes / mean).min(c.calls_per_s * c.group.max_batch as f64)
                    / apps,
                how: format!(
                    "reads {} shards × {:.1} MB/s ÷ {mean:.0} B shared by {} polling apps",
                    c.shards,
                    c.read_bytes / 1e6,
                    c.consumer_apps
                ),
                relief: "use enhanced fan-out, fewer polling apps, or more shards".into(),
            }
        });
        out.extend(Capacity::readers(
            "workers",
            c.group.consumers,
            c.shards,
            c.group.processing,
            "shard",
        ));
        out
    }

    fn finish(
        &mut self,
        cx: &mut Cx<KinEv>,
        run: SimTime,
        offered: &Offered,
    ) -> (Vec<String>, CostEstimate) {
        self.group.mark_pending(&self.logs, cx);
        while let Some((_, ev)) = cx.q.pop() {
            if let crate::models::Ev::Model(KinEv::Arrive { rec, .. } | KinEv::Retry { rec, .. }) =
                ev
            {
                cx.col.pending(rec.id);
            }
        }
        let c = &self.cfg;
        let settings = vec![
            format!(
                "capacity_mode={}",
                if c.on_demand {
                    "on_demand"
                } else {
                    "provisioned"
                }
            ),
            format!("shards={}", c.shards),
            format!("consumer_apps={}", c.consumer_apps),
            format!("enhanced_fan_out={}", c.efo),
            format!("workers={}", c.group.consumers),
            format!("client_max_retries={}", c.max_retries),
        ];
        let hours = run.as_secs_f64() / 3600.0;
        let mut cost = CostEstimate::default();
        let gb = cx.col.produced_bytes() as f64 / 1e9;
        if c.on_demand {
            cost.line(
                "stream-hours (on-demand)",
                hours,
                c.on_demand_stream_usd_per_hour,
            );
            cost.line("GB written", gb, c.on_demand_usd_per_gb_written);
            cost.line(
                "GB read",
                gb * c.consumer_apps as f64,
                c.on_demand_usd_per_gb_read,
            );
        } else {
            cost.line("shard-hours", c.shards as f64 * hours, c.shard_usd_per_hour);
            cost.line(
                "million PUT payload units (25 KB)",
                self.put_units / 1e6,
                c.put_unit_usd_per_million,
            );
        }
        // Retention is priced on the steady state of the configured window: included up to
        // 24 h, then extended retention (to 7 days), then long-term retention.
        let week = SimTime::from_secs(7 * 86_400);
        let included = c.retention.min(c.included_retention);
        let extended = c.retention.min(week).minus(included);
        let long_term = c.retention.minus(c.retention.min(week).max(included));
        cost.monthly(
            &format!(
                "GB stored within the included {} h (steady state)",
                included.as_secs_f64() / 3600.0
            ),
            offered.gb_in(included),
            0.0,
        );
        if extended > SimTime::ZERO {
            if c.on_demand {
                cost.monthly(
                    "GB-months of extended retention (24 h to 7 days, steady state)",
                    offered.gb_in(extended),
                    c.on_demand_extended_usd_per_gb_month,
                );
            } else {
                cost.monthly(
                    "shard-hours of extended retention (a month)",
                    c.shards as f64 * crate::metrics::HOURS_PER_MONTH,
                    c.extended_usd_per_shard_hour,
                );
            }
        }
        if long_term > SimTime::ZERO {
            cost.monthly(
                "GB-months of long-term retention (beyond 7 days, steady state)",
                offered.gb_in(long_term),
                c.long_term_usd_per_gb_month,
            );
        }
        if c.efo {
            cost.line(
                "EFO consumer-shard-hours",
                (c.consumer_apps * c.shards) as f64 * hours,
                c.efo_usd_per_consumer_shard_hour,
            );
        }
        cost.finish(
            run,
            "illustrative us-east-1 USD prices; check aws.amazon.com/kinesis/data-streams/pricing",
        );
        (settings, cost)
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;
    use crate::ServiceKind;

    fn run(kin: &str, workload: &str, secs: u32) -> crate::Report {
        let text = format!(
            "seed = 11\nduration = \"{secs}s\"\nservices = [\"kinesis\"]\n[workload]\n{workload}\n[kinesis]\n{kin}\n"
        );
        Scenario::from_toml_str(&text, "kin.toml")
            .unwrap()
            .run()
            .unwrap()
    }

    #[test]
    fn one_shard_offered_2_mb_per_second_throttles_about_half_the_records() {
        // 200 records/s of 10 KB = 2 MB/s: twice the shard's 1 MB/s write limit.
        let r = run(
            "shards = 1\nclient_max_retries = 0",
            "kind = \"telemetry\"\nrate = \"200/s\"\nmessage_bytes = 10000",
            30,
        );
        let k = r.service(ServiceKind::Kinesis).unwrap();
        let share = k.failed.count as f64 / k.produced as f64;
        assert!((share - 0.5).abs() < 0.05, "throttled share {share}");
        assert_eq!(k.throttled, k.failed.count);
        assert!(k
            .baseline_mechanisms
            .iter()
            .any(|m| m.code == "provisioned_throughput_exceeded"));
    }

    #[test]
    fn retention_beyond_24_hours_adds_a_month_of_extended_retention() {
        let workload = "kind = \"payments\"\nrate = \"100/s\"";
        let line = |r: &crate::Report| {
            r.services[0]
                .cost
                .lines
                .iter()
                .find(|l| l.item.contains("extended retention"))
                .map(|l| (l.quantity, l.basis))
        };
        assert_eq!(line(&run("shards = 2", workload, 3)), None);
        let week = run("shards = 2\nretention_hours = 168", workload, 3);
        assert_eq!(
            line(&week),
            Some((2.0 * 730.0, crate::metrics::CostBasis::Month))
        );
    }

    #[test]
    fn polling_consumers_see_delays_of_the_poll_interval() {
        let r = run("shards = 2", "kind = \"payments\"\nrate = \"200/s\"", 10);
        let k = r.service(ServiceKind::Kinesis).unwrap();
        assert_eq!(k.delivered, k.produced);
        assert!(
            k.latency.p50_ms > 200.0 && k.latency.p50_ms < 1200.0,
            "{}",
            k.latency.p50_ms
        );
    }

    #[test]
    fn enhanced_fan_out_cuts_the_delay_to_tens_of_milliseconds() {
        let r = run(
            "shards = 2\nenhanced_fan_out = true",
            "kind = \"payments\"\nrate = \"200/s\"",
            10,
        );
        let k = r.service(ServiceKind::Kinesis).unwrap();
        assert!(k.latency.p50_ms < 150.0, "{}", k.latency.p50_ms);
    }

    #[test]
    fn six_polling_apps_exceed_five_get_records_calls_per_second() {
        let r = run(
            "shards = 1\nconsumer_apps = 6",
            "kind = \"payments\"\nrate = \"100/s\"",
            10,
        );
        let k = r.service(ServiceKind::Kinesis).unwrap();
        assert!(k.throttled > 0);
    }
}
