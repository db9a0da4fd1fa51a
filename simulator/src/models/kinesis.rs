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
use crate::models::{
    backoff, Batcher, Bucket, Capacity, Compression, Cx, KeyOrder, Model, Offered,
};
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
    /// The producer compresses each message body itself (the service never does).
    pub compression: Compression,
    /// One way of a PutRecords round trip.
    pub put: LatencyDist,
    pub batch_max_records: usize,
    pub batch_max_bytes: u64,
    pub linger: SimTime,
    /// KPL aggregation: user records packed into Kinesis records of at most this many bytes
    /// (`None`: one Kinesis record per user record).
    pub aggregate_bytes: Option<f64>,
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
    /// The share of a shard's 1,000 records/s that one user record of `bytes` takes: a whole
    /// record each without aggregation; with it, the KPL packs records bound for one shard
    /// into Kinesis records of up to `kpl_aggregation_max_bytes`, so a record takes its share
    /// of one of those, and only the byte limit is left to bind for small records.
    pub fn record_cost(&self, bytes: f64) -> f64 {
        match self.aggregate_bytes {
            Some(max) => (bytes / max).min(1.0),
            None => 1.0,
        }
    }

    /// PUT payload units (25 KB each) a user record of `bytes` is billed: rounded up per
    /// Kinesis record, which with aggregation holds many user records; a record takes its
    /// share of the units of a full aggregated record (3 for 51,200 B).
    pub fn put_units(&self, bytes: f64) -> f64 {
        match self.aggregate_bytes {
            Some(max) => bytes / max * (max / 25_000.0).ceil(),
            None => (bytes / 25_000.0).ceil().max(1.0),
        }
    }

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
        let half = |t: SimTime| SimTime(t.as_micros() / 2);
        let put50 = half(p.millis("put_p50_ms")?);
        let put99 = half(p.millis("put_p99_ms")?);
        let fetch = if efo {
            // AWS's ~70 ms is the propagation delay from PutRecords to the consumer: the push
            // hop is what is left after the put's one way.
            LatencyDist::from_p50_p99(
                p.millis("efo_p50_ms")?.minus(put50),
                p.millis("efo_p99_ms")?.minus(put99),
            )
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
            compression: Compression::ratio_param(p, "client_compression_ratio")?,
            retention: SimTime::from_secs_f64(p.f64("retention_hours")? * 3600.0),
            put: LatencyDist::from_p50_p99(put50, put99),
            batch_max_records: p.count("put_records_max_records", 1, 500)?,
            batch_max_bytes: p.int("put_records_max_bytes", 1, 10_485_760)? as u64,
            linger: p.millis("producer_linger_ms")?,
            aggregate_bytes: if p.bool("kpl_aggregation")? {
                Some(p.int("kpl_aggregation_max_bytes", 64, 1_048_576)? as f64)
            } else {
                None
            },
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
    /// A PutRecords request reaches the stream.
    Arrive {
        batch: Vec<Rec>,
        attempt: u32,
    },
    /// The producer resends the records a PutRecords call reported failed.
    Retry {
        batch: Vec<Rec>,
        attempt: u32,
    },
    /// The producer's open PutRecords batch has waited its linger.
    Flush {
        seq: u64,
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
    window_records: f64,
    /// Per minute: when, and the peak written as a multiple of a new stream's capacity.
    peaks: Vec<(SimTime, f64)>,
    capacity_bytes: f64,
    capacity_records: f64,
    batcher: Batcher,
    /// Every shard ever, open or closed (a closed parent stays readable until drained).
    shards: Vec<Shard>,
    /// Open shards by the start of their hash-key range, for routing a key.
    open: Vec<(u64, usize)>,
    /// Child shards whose parents are not yet read to the end.
    waiting_children: Vec<usize>,
    /// Open-shard seconds so far, and when the count last changed (for shard-hours).
    shard_secs: f64,
    counted_until: SimTime,
}

/// One shard: a range of the 64-bit hash-key space and the shards it came from.
#[derive(Clone, Debug)]
struct Shard {
    lo: u64,
    hi: u64,
    open: bool,
    parents: Vec<usize>,
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
            window_records: 0.0,
            peaks: Vec::new(),
            capacity_bytes: cfg.on_demand_bytes,
            capacity_records: cfg.on_demand_records,
            batcher: Batcher::new(1, cfg.batch_max_records, cfg.batch_max_bytes, cfg.linger),
            shards: (0..n)
                .map(|i| {
                    let lo = ((i as u128) << 64) / n as u128;
                    let hi = (((i as u128 + 1) << 64) / n as u128).saturating_sub(1);
                    Shard {
                        lo: lo as u64,
                        hi: hi.min(u64::MAX as u128) as u64,
                        open: true,
                        parents: Vec::new(),
                    }
                })
                .collect(),
            open: (0..n)
                .map(|i| ((((i as u128) << 64) / n as u128) as u64, i))
                .collect(),
            waiting_children: Vec::new(),
            shard_secs: 0.0,
            counted_until: SimTime::ZERO,
            cfg,
        }
    }

    /// The open shard whose hash-key range holds `key`'s hash.
    fn route(&self, key: u64) -> usize {
        let h = mix64(key);
        let i = self.open.partition_point(|&(lo, _)| lo <= h);
        self.open[i.saturating_sub(1)].1
    }

    fn count_shard_time(&mut self, now: SimTime) {
        let dt = now.minus(self.counted_until).as_secs_f64();
        self.shard_secs += dt * self.open.len() as f64;
        self.counted_until = now;
    }

    /// Opens a child shard over `lo..=hi` coming from `parents` (closed just before).
    fn add_shard(&mut self, lo: u64, hi: u64, parents: Vec<usize>) -> usize {
        let f = self.factor;
        let mut wb = Bucket::new(self.cfg.write_bytes, 1.0);
        wb.scale(SimTime::ZERO, f, self.cfg.write_bytes, 1.0);
        let mut wr = Bucket::new(self.cfg.write_records, 1.0);
        wr.scale(SimTime::ZERO, f, self.cfg.write_records, 1.0);
        self.w_bytes.push(wb);
        self.w_records.push(wr);
        self.reads
            .calls
            .push(Bucket::new(self.cfg.calls_per_s, 1.0));
        self.reads.bytes.push(Bucket::new(self.cfg.read_bytes, 5.0));
        self.logs.push(Log::default());
        self.visible.push(0);
        let c = self.group.add_partition(true);
        self.shards.push(Shard {
            lo,
            hi,
            open: true,
            parents,
        });
        self.waiting_children.push(c);
        let at = self.open.partition_point(|&(l, _)| l < lo);
        self.open.insert(at, (lo, c));
        c
    }

    fn close(&mut self, s: usize) {
        self.shards[s].open = false;
        self.open.retain(|&(_, i)| i != s);
    }

    /// Uniform scaling to `target` open shards: split the widest ranges, or merge the
    /// narrowest adjacent pairs. Records already in a closed parent stay there; the KCL reads
    /// a parent to its end before its children.
    fn reshard_to(&mut self, target: usize, cause: Cause, cx: &mut Cx<KinEv>) {
        let now = cx.now();
        self.count_shard_time(now);
        let before = self.open.len();
        while self.open.len() < target {
            let Some(&(_, s)) = self
                .open
                .iter()
                .max_by_key(|&&(_, i)| (self.shards[i].hi - self.shards[i].lo, usize::MAX - i))
            else {
                break;
            };
            let (lo, hi) = (self.shards[s].lo, self.shards[s].hi);
            if hi == lo {
                break;
            }
            let mid = lo + (hi - lo) / 2;
            self.close(s);
            self.add_shard(lo, mid, vec![s]);
            self.add_shard(mid + 1, hi, vec![s]);
        }
        while self.open.len() > target && self.open.len() > 1 {
            let Some(k) = (0..self.open.len() - 1).min_by_key(|&k| {
                let (a, b) = (self.open[k].1, self.open[k + 1].1);
                self.shards[b].hi - self.shards[a].lo
            }) else {
                break;
            };
            let (a, b) = (self.open[k].1, self.open[k + 1].1);
            let (lo, hi) = (self.shards[a].lo, self.shards[b].hi);
            self.close(a);
            self.close(b);
            self.add_shard(lo, hi, vec![a, b]);
        }
        let after = self.open.len();
        cx.mech(cause, "reshard", || {
            format!(
                "the stream goes from {before} to {after} open shards (parents closed to writes; \
                 the KCL reads each parent to its end before its children)"
            )
        });
        self.release_children(cx);
    }

    /// Children whose parents are closed and read to the end become readable.
    fn release_children(&mut self, cx: &mut Cx<KinEv>) {
        if self.waiting_children.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.waiting_children.len() {
            let c = self.waiting_children[i];
            let done = self.shards[c]
                .parents
                .iter()
                .all(|&p| !self.shards[p].open && self.group.processed(p) >= self.logs[p].end());
            if done {
                self.waiting_children.swap_remove(i);
                self.group.blocked[c] = false;
                self.group.data_available(c, self.visible[c], cx);
            } else {
                i += 1;
            }
        }
    }

    fn send(&mut self, batch: Vec<Rec>, attempt: u32, cx: &mut Cx<KinEv>) {
        if self.clients_cut {
            let t = self.cfg.request_timeout;
            cx.mech(Cause::Window, "request_timeout", || {
                format!(
                    "the producer cannot reach the stream endpoint: PutRecords times out after {t}"
                )
            });
            self.failed_try(batch, attempt, t, cx);
            return;
        }
        let lat = cx.rng.latency(&self.cfg.put).plus(self.extra_latency);
        let at = cx.now().plus(lat);
        let at = self
            .order
            .arrival_of_request(batch.iter().map(|r| r.key), at);
        cx.at(at, KinEv::Arrive { batch, attempt });
    }

    fn failed_try(&mut self, batch: Vec<Rec>, attempt: u32, after: SimTime, cx: &mut Cx<KinEv>) {
        if attempt >= self.cfg.max_retries {
            self.outstanding = self.outstanding.saturating_sub(batch.len() as u64);
            let now = cx.now();
            for r in &batch {
                cx.col.failed(r.id, now.plus(after), Cause::Window);
            }
            let n = self.cfg.max_retries;
            let k = batch.len();
            let first = batch.first().map_or(0, |r| r.id);
            cx.mech_id(Cause::Window, "retries_exhausted", first, || {
                format!("the producer gave up on {k} records after resending them {n} times: they are not written")
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
                batch,
                attempt: attempt + 1,
            },
        );
    }

    fn arrive(&mut self, batch: Vec<Rec>, attempt: u32, cx: &mut Cx<KinEv>) {
        let now = cx.now();
        if now < self.unavailable_until {
            cx.mech(Cause::Window, "managed_failover", || {
                "the service replaces a failed host: PutRecords returns InternalFailure briefly"
                    .into()
            });
            self.failed_try(batch, attempt, SimTime::ZERO, cx);
            return;
        }
        // PutRecords succeeds record by record: those over their shard's limit come back in
        // FailedRecordCount with ProvisionedThroughputExceeded, the others are written.
        let back = cx.rng.latency(&self.cfg.put);
        let mut failed = Vec::new();
        let mut touched: Vec<usize> = Vec::new();
        let mut stream_full = false;
        for rec in batch {
            let s = self.route(rec.key);
            let bytes = f64::from(rec.size) + 16.0; // data plus a short partition key
            let n = self.cfg.record_cost(bytes);
            let shard_ok = self.w_bytes[s].has(now, bytes) && self.w_records[s].has(now, n);
            let stream_ok = !self.cfg.on_demand
                || (self.stream_bytes.has(now, bytes) && self.stream_records.has(now, n));
            if !(shard_ok && stream_ok) {
                stream_full |= shard_ok;
                failed.push(rec);
                continue;
            }
            self.w_bytes[s].try_take(now, bytes);
            self.w_records[s].try_take(now, n);
            if self.cfg.on_demand {
                self.stream_bytes.try_take(now, bytes);
                self.stream_records.try_take(now, n);
                self.window_bytes += bytes;
                self.window_records += n;
            }
            self.put_units += self.cfg.put_units(bytes);
            cx.col.acked(now.plus(back).minus(rec.created));
            self.logs[s].push(rec);
            self.outstanding = self.outstanding.saturating_sub(1);
            if !touched.contains(&s) {
                touched.push(s);
            }
        }
        for s in touched {
            self.visible[s] = self.logs[s].end();
            self.group.data_available(s, self.visible[s], cx);
        }
        if !failed.is_empty() {
            // One throttled request, however many of its records failed.
            cx.col.throttled(1);
            let why = if stream_full {
                "the on-demand stream's current capacity (twice the earlier peak) is exceeded"
            } else {
                "a shard's write limit of 1 MB/s or 1,000 records/s is exceeded"
            };
            let k = failed.len();
            let first = failed[0].id;
            cx.mech_id(Cause::Window, "provisioned_throughput_exceeded", first, || {
                format!(
                    "PutRecords returns FailedRecordCount {k} (ProvisionedThroughputExceeded): {why}; \
                     the SDK does not resend failed records, the producer must, after a back-off"
                )
            });
            self.failed_try(failed, attempt, SimTime::ZERO, cx);
        }
    }

    /// On-demand scaling, once a minute: capacity becomes twice the peak written before the
    /// scaling window (bytes or records, whichever is nearer its limit), never below a new
    /// stream's; shards are split until their write limits cover it. A sudden doubling within
    /// the window is throttled, as AWS documents.
    fn rescale(&mut self, cx: &mut Cx<KinEv>) {
        let now = cx.now();
        let c = &self.cfg;
        let minute = (self.window_bytes / 60.0 / c.on_demand_bytes)
            .max(self.window_records / 60.0 / c.on_demand_records);
        self.peaks.push((now, minute));
        self.window_bytes = 0.0;
        self.window_records = 0.0;
        let horizon = now.minus(c.on_demand_window);
        let old_peak = self
            .peaks
            .iter()
            .filter(|(t, _)| *t <= horizon)
            .map(|(_, b)| *b)
            .fold(0.0, f64::max);
        let factor = (2.0 * old_peak).max(1.0);
        let target = c.on_demand_bytes * factor;
        if target > self.capacity_bytes * 1.01 {
            let before = self.capacity_bytes;
            let window = c.on_demand_window;
            cx.mech(Cause::Window, "on_demand_scale_up", || {
                format!(
                    "on-demand capacity grows from {:.1} to {:.1} MB/s (twice the peak seen {window} before)",
                    before / 1e6,
                    target / 1e6
                )
            });
            self.capacity_bytes = target;
            self.capacity_records = c.on_demand_records * factor;
            // Capacity is shards: split until the shards' write limits cover it (at most
            // doubling, as the capacity itself does).
            let needed = (factor * self.cfg.shards as f64).ceil() as usize;
            let goal = needed.min(self.open.len() * 2);
            if goal > self.open.len() {
                self.reshard_to(goal, Cause::Window, cx);
            }
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
        // The service sees the body as the client sent it: compressed, if it compresses.
        let mut rec = Rec::new(&msg);
        rec.size = self.cfg.compression.wire(msg.size);
        if rec.size > self.cfg.max_record_bytes {
            cx.col.failed(msg.id, cx.now(), Cause::Window);
            let max = self.cfg.max_record_bytes;
            cx.mech_id(Cause::Window, "message_too_large", msg.id, || {
                format!("records above {max} bytes are refused (raise it with UpdateMaxRecordSize)")
            });
            return;
        }
        self.outstanding += 1;
        let added = self.batcher.add(0, rec);
        if let Some(seq) = added.arm {
            cx.after(self.batcher.linger, KinEv::Flush { seq });
        }
        if let Some(batch) = added.full {
            self.send(batch, 0, cx);
        }
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
                self.release_children(cx);
            }
            KinEv::Arrive { batch, attempt } => self.arrive(batch, attempt, cx),
            KinEv::Retry { batch, attempt } => self.send(batch, attempt, cx),
            KinEv::Flush { seq } => {
                if let Some(batch) = self.batcher.flush(0, seq) {
                    self.send(batch, 0, cx);
                }
            }
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
            (FaultKind::UpdateShardCount { shards }, true) => {
                let current = self.open.len();
                let target = *shards;
                if self.cfg.on_demand {
                    cx.mech(cause, "update_shard_count_refused", || {
                        "UpdateShardCount is for provisioned streams: an on-demand stream manages \
                         its own shards"
                            .into()
                    });
                } else if target > 2 * current || 2 * target < current {
                    cx.mech(cause, "update_shard_count_refused", || {
                        format!(
                            "UpdateShardCount from {current} to {target} is refused \
                             (LimitExceededException): one call may at most double or halve the \
                             open shards"
                        )
                    });
                } else {
                    self.reshard_to(target, cause, cx);
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

    fn replay_window(&self, _spec: &crate::replay::ReplaySpec) -> crate::replay::ReplayWindow {
        let r = self.cfg.retention;
        crate::replay::ReplayWindow {
            window: Some(r),
            how: format!(
                "workers read each shard again with an AT_TIMESTAMP iterator at the bug's time, \
                 within the stream's retention period ({r}; 24 hours by default, up to 365 \
                 days)"
            ),
        }
    }

    fn wire_ratio(&self) -> f64 {
        self.cfg.compression.ratio
    }

    fn capacities(&self, offered: &Offered) -> Vec<Capacity> {
        let c = &self.cfg;
        let n_open = self.open.len();
        let fmt = crate::metrics::fmt_rate;
        let mean = offered.mean_bytes();
        let put = mean + 16.0; // data plus a short partition key
        let shards = n_open as f64;
        let per_record = c.record_cost(put);
        let mut out = vec![Capacity {
            stage: "partitions",
            per_s: offered.across_partitions(
                (c.write_bytes / put).min(c.write_records / per_record),
                n_open,
            ),
            how: match c.aggregate_bytes {
                _ if offered.hot_key_share > 0.0 => format!(
                    "the hot key's shard takes min({:.2} MB/s ÷ {put:.0} B, {} records/s) and \
                     gets {:.0}% of the records ({:.0}% hot key, 1/{} of the rest)",
                    c.write_bytes / 1e6,
                    fmt(c.write_records / per_record),
                    100.0 * (offered.hot_key_share + (1.0 - offered.hot_key_share) / shards),
                    100.0 * offered.hot_key_share,
                    n_open
                ),
                None => format!(
                    "{} shards × min({:.2} MB/s ÷ {put:.0} B{}, {} records/s)",
                    n_open,
                    c.write_bytes / 1e6,
                    offered.compressed_note(),
                    fmt(c.write_records)
                ),
                Some(max) => format!(
                    "{} shards × min({:.2} MB/s ÷ {put:.0} B{}, {} records/s of up to {max:.0} B \
                     aggregated by the KPL)",
                    n_open,
                    c.write_bytes / 1e6,
                    offered.compressed_note(),
                    fmt(c.write_records)
                ),
            },
            relief: if offered.hot_key_share > 0.0 {
                format!(
                    "spread the hot key ({:.0}% of the records) over several partition keys: \
                     one key never gets more than one shard, so adding shards does not help it",
                    100.0 * offered.hot_key_share
                )
            } else if c.aggregate_bytes.is_some() {
                "add shards (UpdateShardCount)".into()
            } else {
                "add shards (UpdateShardCount) or aggregate records (KPL)".into()
            },
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
                    n_open,
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
                    n_open,
                    c.read_bytes / 1e6,
                    c.consumer_apps
                ),
                relief: "use enhanced fan-out, fewer polling apps, or more shards".into(),
            }
        });
        out.extend(Capacity::readers(
            "workers",
            c.group.consumers,
            n_open,
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
        for rec in self.batcher.drain() {
            cx.col.pending(rec.id);
        }
        while let Some((_, ev)) = cx.q.pop() {
            if let crate::models::Ev::Model(
                KinEv::Arrive { batch, .. } | KinEv::Retry { batch, .. },
            ) = ev
            {
                for rec in batch {
                    cx.col.pending(rec.id);
                }
            }
        }
        self.count_shard_time(run);
        let open = self.open.len();
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
            if open == c.shards {
                format!("shards={}", c.shards)
            } else {
                format!("shards={} (started with {})", open, c.shards)
            },
            format!("kpl_aggregation={}", c.aggregate_bytes.is_some()),
            format!("consumer_apps={}", c.consumer_apps),
            format!("enhanced_fan_out={}", c.efo),
            format!("workers={}", c.group.consumers),
            format!("client_max_retries={}", c.max_retries),
            format!("client_compression_ratio={}", c.compression.ratio),
        ];
        let hours = run.as_secs_f64() / 3600.0;
        let mut cost = CostEstimate::default();
        // Bytes as written: after the producer's compression.
        let gb = cx.col.produced_bytes() as f64 / 1e9 / c.compression.ratio;
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
            cost.line(
                "shard-hours",
                self.shard_secs / 3600.0,
                c.shard_usd_per_hour,
            );
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
                    open as f64 * crate::metrics::HOURS_PER_MONTH,
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
                c.consumer_apps as f64 * self.shard_secs / 3600.0,
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
        // Throttling is counted per PutRecords request: a request carries about two records
        // here (200/s, 10 ms linger), and one failed record makes it a throttled request.
        assert!(k.throttled < k.failed.count, "{} requests", k.throttled);
        assert!(k
            .baseline_mechanisms
            .iter()
            .any(|m| m.code == "provisioned_throughput_exceeded"));
    }

    #[test]
    fn put_records_reports_failed_records_and_the_producer_not_the_sdk_resends_them() {
        // 500-record requests into one shard at 2,000 records/s: about half of each request
        // comes back in FailedRecordCount; with three resends most of them get through later.
        let r = run(
            "shards = 1\nclient_max_retries = 3\nproducer_linger_ms = 250",
            "kind = \"telemetry\"\nrate = \"2000/s\"\nmessage_bytes = 100",
            20,
        );
        let k = r.service(ServiceKind::Kinesis).unwrap();
        let put = k
            .baseline_mechanisms
            .iter()
            .find(|m| m.code == "provisioned_throughput_exceeded")
            .map(|m| m.detail.clone())
            .unwrap_or_default();
        assert!(put.contains("FailedRecordCount"), "{put}");
        assert!(
            put.contains("the SDK does not resend failed records"),
            "{put}"
        );
        // Requests, not records: 4 full requests a second for 20 s, each resent at most three
        // times, is at most 336 requests, against tens of thousands of failed records.
        assert!(k.throttled <= 4 * 84, "{} throttled requests", k.throttled);
        assert!(k.retries > 0 && k.retries <= k.throttled);
    }

    #[test]
    fn enhanced_fan_out_end_to_end_p50_is_the_70_ms_aws_documents() {
        let r = run(
            "shards = 2\nenhanced_fan_out = true\nproducer_linger_ms = 0",
            "kind = \"payments\"\nrate = \"200/s\"",
            10,
        );
        let k = r.service(ServiceKind::Kinesis).unwrap();
        assert!(
            (k.latency.p50_ms - 70.0).abs() < 7.0,
            "EFO p50 {} ms",
            k.latency.p50_ms
        );
    }

    #[test]
    fn kpl_aggregation_fits_telemetry_at_5000_per_second_in_three_shards() {
        // Telemetry sizes are log-normal with median 400 B and p99 1,100 B: a mean of
        // 400 × e^(σ²/2) with σ = ln(1100/400) / 2.326, plus 16 B of partition key. Three shards
        // take 3 × 1,000 records/s one by one, under the 5,000/s offered; aggregated into
        // Kinesis records of up to 51,200 B, only their 3 × 1 MiB/s binds, which is above it.
        let sigma = (1100.0f64 / 400.0).ln() / 2.326_347_874;
        let put = 400.0 * (sigma * sigma / 2.0).exp() + 16.0;
        let by_bytes = 3.0 * 1_048_576.0 / put;
        let workload = "kind = \"telemetry\"\nrate = \"5000/s\"";
        let plain = run("shards = 3\nkpl_aggregation = false", workload, 20);
        let plain = plain.service(ServiceKind::Kinesis).unwrap();
        assert!(plain.bottleneck.binding && plain.bottleneck.capacity_per_s == 3_000.0);
        assert!(plain.throttled > 0 && plain.failed.count > 0);
        let agg = run("shards = 3\nkpl_aggregation = true", workload, 20);
        let agg = agg.service(ServiceKind::Kinesis).unwrap();
        assert!(!agg.bottleneck.binding, "{}", agg.bottleneck.detail);
        let cap = agg.bottleneck.capacity_per_s;
        assert!(
            (cap - by_bytes).abs() < 0.02 * by_bytes,
            "{cap} vs {by_bytes:.0}"
        );
        assert_eq!((agg.throttled, agg.failed.count), (0, 0));
        assert!(agg.settings.iter().any(|s| s == "kpl_aggregation=true"));
        // Billed PUT units shrink too: a 25 KB unit per aggregated record, not per record.
        let units = |r: &crate::ServiceReport| {
            r.cost
                .lines
                .iter()
                .find(|l| l.item.contains("PUT payload"))
                .map_or(0.0, |l| l.quantity)
        };
        assert!(
            units(agg) < units(plain) / 20.0,
            "{} vs {}",
            units(agg),
            units(plain)
        );
    }

    #[test]
    fn a_hot_key_is_held_to_one_shards_thousand_records_per_second() {
        // 5,000 records/s on 10 shards, half of them with one key: its shard gets 2,500/s plus
        // a tenth of the rest (250/s) and writes 1,000/s; the other shards get 250/s each.
        // Without retries about (2,750 − 1,000) / 5,000 = 35% of the records fail.
        let r = run(
            "shards = 10\nclient_max_retries = 0",
            "kind = \"telemetry\"\nrate = \"5000/s\"\nmessage_bytes = 100\nhot_key_share = 0.5",
            20,
        );
        let k = r.service(ServiceKind::Kinesis).unwrap();
        let share = k.failed.count as f64 / k.produced as f64;
        assert!((share - 0.35).abs() < 0.03, "failed share {share}");
        // The bottleneck says so: 1,000/s ÷ (0.5 + 0.5/10) = 1,818/s, not 10 × 1,000/s.
        assert!(k.bottleneck.binding);
        assert!((k.bottleneck.capacity_per_s - 1_000.0 / 0.55).abs() < 1.0);
        assert!(
            k.bottleneck.detail.contains("hot key"),
            "{}",
            k.bottleneck.detail
        );
    }

    #[test]
    fn on_demand_capacity_becomes_shards_and_deliveries_follow() {
        // A new stream sized to one shard (1 MiB/s, 1,000 records/s), scaling every minute on
        // the peak seen 30 s before; 3,000 records/s offered. Minute by minute the stream
        // takes about 1,000, 1,000, 2,000, 2,000, then 3,000 records/s, on 1, 2, 2, 4, 4 shards.
        let r = run(
            "capacity_mode = \"on_demand\"\non_demand_initial_write_bytes_per_s = 1048576\n\
             on_demand_initial_write_records_per_s = 1000\non_demand_scale_window_ms = 30000\n\
             client_max_retries = 0",
            "kind = \"telemetry\"\nrate = \"3000/s\"\nmessage_bytes = 100",
            300,
        );
        let k = r.service(ServiceKind::Kinesis).unwrap();
        assert!(
            k.settings.iter().any(|s| s == "shards=4 (started with 1)"),
            "{:?}",
            k.settings
        );
        let expected = 60.0 * (1000.0 + 1000.0 + 2000.0 + 2000.0 + 3000.0);
        assert!(
            (k.acked as f64 - expected).abs() < 0.05 * expected,
            "acked {} of about {expected}",
            k.acked
        );
    }

    #[test]
    fn update_shard_count_splits_shards_and_children_wait_for_their_parents() {
        let reshard = "[[fault]]\nkind = \"update_shard_count\"\nshards = 4\nat = \"10s\"\n";
        // Slow readers leave a backlog in the parents when they close, so a child read at once
        // would overtake its parent's older records of the same keys.
        let slow = "[[fault]]\nkind = \"slow_consumer\"\nprocessing = \"2ms\"\nat = \"5s\"\n\
                    duration = \"7s\"\n";
        let r = run(
            &format!("shards = 2\nclient_max_retries = 0\n{reshard}{slow}"),
            "kind = \"payments\"\nrate = \"3000/s\"\nmessage_bytes = 100",
            30,
        );
        let k = r.service(ServiceKind::Kinesis).unwrap();
        assert!(k.settings.iter().any(|s| s == "shards=4 (started with 2)"));
        // 2,000 records/s for 10 s, then all 3,000/s (plus the first second's burst).
        let expected = 10.0 * 2000.0 + 20.0 * 3000.0;
        assert!(
            (k.acked as f64 - expected).abs() < 0.05 * expected,
            "acked {}",
            k.acked
        );
        // Parents are read to their end before their children: each key stays in order.
        assert_eq!(k.reordered.count, 0);
        assert_eq!(k.delivered, k.acked);
        // More than double in one call is refused, as UpdateShardCount is.
        let r = run(
            &format!(
                "shards = 2\n{}",
                reshard.replace("shards = 4", "shards = 5")
            ),
            "kind = \"payments\"\nrate = \"100/s\"",
            15,
        );
        let trail = r.trail(0, ServiceKind::Kinesis).unwrap();
        assert!(trail.has(crate::Stage::Mechanism, "update_shard_count_refused"));
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

    #[test]
    fn compression_4_to_1_fits_aggregated_records_in_fewer_shards() {
        // 5,000 records/s of 1,000 B, aggregated by the KPL so that only bytes bind. Each
        // record counts its data plus a 16 B partition key, which is not compressed:
        // 1,016 B → 5.08 MB/s needs ceil(5.08e6 / 1 MiB) = 5 shards; compressed 4:1,
        // 250 + 16 = 266 B → 1.33 MB/s fits 2.
        let mib = 1_048_576.0;
        let shards = |put: f64| (5_000.0 * put / mib).ceil();
        assert_eq!((shards(1_016.0), shards(266.0)), (5.0, 2.0));
        let workload = "kind = \"telemetry\"\nrate = \"5000/s\"\nmessage_bytes = 1000";
        let plain = run("shards = 2\nkpl_aggregation = true", workload, 10);
        let plain = plain.service(ServiceKind::Kinesis).unwrap();
        let cap = plain.bottleneck.capacity_per_s;
        assert!((cap - 2.0 * mib / 1_016.0).abs() < 1.0, "{cap}");
        assert!(plain.throttled > 0);
        let packed = run(
            "shards = 2\nkpl_aggregation = true\nclient_compression_ratio = 4",
            workload,
            10,
        );
        let packed = packed.service(ServiceKind::Kinesis).unwrap();
        let cap = packed.bottleneck.capacity_per_s;
        assert!((cap - 2.0 * mib / 266.0).abs() < 1.0, "{cap}");
        assert_eq!((packed.throttled, packed.failed.count), (0, 0));
        // Without aggregation the 1,000 records/s per shard bind, compressed or not.
        let one_by_one = run("shards = 2\nclient_compression_ratio = 4", workload, 2);
        let cap = one_by_one
            .service(ServiceKind::Kinesis)
            .unwrap()
            .bottleneck
            .capacity_per_s;
        assert!((cap - 2_000.0).abs() < 1e-6, "{cap}");
    }
}
