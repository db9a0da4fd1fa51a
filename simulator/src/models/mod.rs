//! Service models and the loop that drives one of them through a run.
//!
//! Each model is a state machine over its own event type; the [`drive`] loop feeds it the
//! workload's messages, the scenario's faults and its own scheduled events in time order, and
//! takes a [`Sample`](crate::metrics::Sample) every interval. Models never read wall time and
//! draw every random number from the run's [`SimRng`].

pub(crate) mod eventgrid;
pub(crate) mod eventhubs;
pub(crate) mod group;
pub(crate) mod kafka;
pub(crate) mod kinesis;
pub(crate) mod log;
pub(crate) mod pubsub;

use crate::engine::EventQueue;
use crate::fault::Fault;
use crate::metrics::{fmt_rate, Bottleneck, Cause, Collector, CostEstimate, ServiceReport};
use crate::models::log::Rec;
use crate::profile::{ParamValue, Profile};
use crate::replay::{Replay, ReplaySpec, ReplayWindow};
use crate::rng::SimRng;
use crate::time::SimTime;
use crate::trail::CausalTrail;
use crate::workload::{KeyTable, Msg, Workload};
use crate::SimError;

/// The driver's events around a model's own.
pub(crate) enum Ev<E> {
    FaultStart(usize),
    FaultEnd(usize),
    Sample,
    Model(E),
}

/// What a model works with: the clock and agenda, its random stream, the collector, and the
/// faults applied to it.
pub(crate) struct Cx<E> {
    pub q: EventQueue<Ev<E>>,
    pub rng: SimRng,
    pub col: Collector,
    pub faults: Vec<Fault>,
}

impl<E> Cx<E> {
    pub fn now(&self) -> SimTime {
        self.q.now()
    }

    pub fn at(&mut self, at: SimTime, ev: impl Into<E>) {
        self.q.schedule_at(at, Ev::Model(ev.into()));
    }

    pub fn after(&mut self, delay: SimTime, ev: impl Into<E>) {
        self.q.schedule_in(delay, Ev::Model(ev.into()));
    }

    /// Records a mechanism attributed to `cause`.
    pub fn mech(&mut self, cause: Cause, code: &'static str, detail: impl FnOnce() -> String) {
        let now = self.now();
        self.col.mechanism(now, cause, code, detail, None);
    }

    /// Records a mechanism that concerns one message.
    pub fn mech_id(
        &mut self,
        cause: Cause,
        code: &'static str,
        id: u64,
        detail: impl FnOnce() -> String,
    ) {
        let now = self.now();
        self.col.mechanism(now, cause, code, detail, Some(id));
    }
}

/// A service model.
pub(crate) trait Model {
    type Ev;

    /// Schedules the model's own timers.
    fn start(&mut self, cx: &mut Cx<Self::Ev>);
    /// The producer offers a message.
    fn on_message(&mut self, msg: Msg, cx: &mut Cx<Self::Ev>);
    /// One of the model's events is due.
    fn on_event(&mut self, ev: Self::Ev, cx: &mut Cx<Self::Ev>);
    /// A fault starts (`start = true`) or ends.
    fn on_fault(&mut self, fault: &Fault, start: bool, cx: &mut Cx<Self::Ev>);
    /// Unconsumed messages, age of the oldest, under-replicated partitions.
    fn gauges(&self, now: SimTime) -> (u64, SimTime, u64);
    /// Whether nothing is in flight any more (the run can stop after the workload ends).
    fn idle(&self) -> bool;
    /// What each stage can carry for the offered workload (the bottleneck is the least).
    fn capacities(&self, offered: &Offered) -> Vec<Capacity>;
    /// How far back the service can rewind for a replay, and how.
    fn replay_window(&self, _spec: &ReplaySpec) -> ReplayWindow {
        ReplayWindow {
            window: None,
            how: "this service keeps no delivered records to replay".into(),
        }
    }
    /// Facts about the limits that are not capacities (a partition above what the service
    /// guarantees it, a sizing rule broken), shown under the bottleneck.
    fn notes(&self, _offered: &Offered) -> Vec<String> {
        Vec::new()
    }
    /// How many times smaller the producer's bytes are on the wire and in storage (its
    /// compression); 1 without.
    fn wire_ratio(&self) -> f64 {
        1.0
    }
    /// Marks still-stored messages as pending; returns settings and the cost estimate (`run`
    /// is when the run stopped, `offered` what the producer offered, for steady-state costs).
    fn finish(
        &mut self,
        cx: &mut Cx<Self::Ev>,
        run: SimTime,
        offered: &Offered,
    ) -> (Vec<String>, CostEstimate);
}

/// What the producer offered, averaged over the time it ran: the load that steady-state
/// costs and the bottleneck are worked out for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Offered {
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Bytes per second as the service sees them: after the producer's compression, which is
    /// what quotas, storage and transfer count.
    pub bytes_per_s: f64,
    /// The producer's compression ratio (original ÷ compressed; 1 for none).
    pub compression: f64,
    /// The share of messages that carry the workload's one hot key (0 for none).
    pub hot_key_share: f64,
}

impl Offered {
    /// The mean message size in bytes (at least 1, to keep divisions finite).
    pub fn mean_bytes(&self) -> f64 {
        if self.msgs_per_s > 0.0 {
            (self.bytes_per_s / self.msgs_per_s).max(1.0)
        } else {
            1.0
        }
    }

    /// ` after 4.0:1 compression` when the producer compresses, else nothing: for sentences
    /// that divide a byte limit by the mean size.
    pub fn compressed_note(&self) -> String {
        if self.compression > 1.0 {
            format!(" after {:.1}:1 compression", self.compression)
        } else {
            String::new()
        }
    }

    /// Gigabytes (10^9 bytes) written in `span` at this rate: the steady-state size of a
    /// retention window of that length.
    pub fn gb_in(&self, span: SimTime) -> f64 {
        self.bytes_per_s * span.as_secs_f64() / 1e9
    }

    /// The share of the records each of `partitions` partitions gets when keys map to
    /// partitions by `mix64(key) % partitions` (Kafka's and Event Hubs' models): an even
    /// share of the ordinary keys, plus all of the hot key's in its one partition.
    pub fn partition_shares(&self, partitions: usize) -> Vec<f64> {
        let n = partitions.max(1);
        let h = self.hot_key_share.clamp(0.0, 1.0);
        let mut shares = vec![(1.0 - h) / n as f64; n];
        if h > 0.0 {
            shares[hot_partition(n)] += h;
        }
        shares
    }

    /// What `partitions` partitions of `per_partition` messages/s each can take of this
    /// workload: all of it spread evenly, unless a hot key sends more than an even share to
    /// its one partition, which then fills first.
    pub fn across_partitions(&self, per_partition: f64, partitions: usize) -> f64 {
        let n = partitions.max(1) as f64;
        let h = self.hot_key_share.clamp(0.0, 1.0);
        per_partition / (h + (1.0 - h) / n)
    }
}

/// A producer's compression: how many times smaller its bytes are on the wire (original ÷
/// compressed, 1 for none).
///
/// The ratio is a parameter, not something the simulator measures: it depends on the data far
/// more than on the codec (JSON telemetry shrinks several times, random bytes not at all).
/// Every quota, bill and disk that counts bytes counts the compressed ones, while event and
/// record counts do not change, so compression relieves only limits that bytes bind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Compression {
    pub ratio: f64,
}

impl Compression {
    /// No compression.
    pub const NONE: Compression = Compression { ratio: 1.0 };

    /// The size of `bytes` after compression (at least one byte).
    #[inline]
    pub fn wire(self, bytes: u32) -> u32 {
        if self.ratio <= 1.0 {
            return bytes;
        }
        ((f64::from(bytes) / self.ratio).ceil() as u32).max(1)
    }

    /// A ratio written as a number from 1 (no compression) up.
    ///
    /// # Errors
    /// Anything else, located where the value was written, with the fix.
    pub fn ratio_param(p: &Profile, name: &str) -> Result<Compression, SimError> {
        let bad = |got: String| {
            SimError::at(
                p.origin(name),
                format!(
                    "{name} is original bytes ÷ compressed bytes, a number of at least 1 \
                     (1 = no compression); got {got}: write 4 for data that shrinks 4:1"
                ),
            )
        };
        let ratio = match p.params.get(name).map(|x| &x.value) {
            Some(ParamValue::Int(i)) => *i as f64,
            Some(ParamValue::Float(x)) => *x,
            Some(other) => return Err(bad(format!("`{other}`"))),
            None => return p.f64(name).map(|ratio| Compression { ratio }),
        };
        if !ratio.is_finite() || !(1.0..=1000.0).contains(&ratio) {
            return Err(bad(ratio.to_string()));
        }
        Ok(Compression { ratio })
    }
}

/// The partition the workload's hot key (its first key) lands in, for services that map a
/// key to `mix64(key) % partitions`.
pub(crate) fn hot_partition(partitions: usize) -> usize {
    (crate::rng::mix64(crate::workload::KEY_BASE) % partitions.max(1) as u64) as usize
}

/// What one stage of a service can carry, in messages per second.
pub(crate) struct Capacity {
    /// `producer`, `brokers`, `partitions`, `consumers` or `quota`.
    pub stage: &'static str,
    /// Messages per second.
    pub per_s: f64,
    /// How the number is made up, e.g. `3 × 10,000/s`.
    pub how: String,
    /// What would raise it.
    pub relief: String,
}

impl Capacity {
    /// Readers that each own a share of `partitions` and process one message in `processing`:
    /// a partition has one reader, so readers beyond the partition count add nothing, and the
    /// reader with the most partitions sets the pace.
    pub fn readers(
        label: &str,
        readers: usize,
        partitions: usize,
        processing: SimTime,
        partition_word: &str,
    ) -> Option<Capacity> {
        let secs = processing.as_secs_f64();
        if secs <= 0.0 || readers == 0 || partitions == 0 {
            return None;
        }
        let each = 1.0 / secs;
        let active = readers.min(partitions);
        let most = partitions.div_ceil(active);
        let per_s = each * partitions as f64 / most as f64;
        let ms = secs * 1e3;
        let how = if partitions.is_multiple_of(active) && readers <= partitions {
            format!("{active} × {}/s ({ms} ms each)", fmt_rate(each))
        } else {
            format!(
                "{readers} {label} on {partitions} {partition_word}s, the busiest with {most} \
                 at {}/s ({ms} ms each)",
                fmt_rate(each)
            )
        };
        let relief = if readers < partitions {
            format!(
                "add {label} (up to {partitions}, one per {partition_word}) or speed up processing"
            )
        } else {
            format!("add {partition_word}s and {label}, or speed up processing")
        };
        Some(Capacity {
            stage: "consumers",
            per_s,
            how,
            relief,
        })
    }
}

impl Capacity {
    /// Readers of a consumer group that own partitions as Kafka's range assignor gives them
    /// out, each processing one message in `processing`, for a workload whose hot key sends
    /// more than an even share to one partition. The reader whose partitions carry the
    /// largest share sets the pace; when it is the hot partition's reader, the sentence names
    /// the partition, its rate, and what that one reader can do. `None` without a hot key
    /// (use [`Capacity::readers`]).
    pub fn readers_with_hot_key(
        label: &str,
        readers: usize,
        partitions: usize,
        processing: SimTime,
        offered: &Offered,
    ) -> Option<Capacity> {
        let secs = processing.as_secs_f64();
        if offered.hot_key_share <= 0.0 || secs <= 0.0 || readers == 0 || partitions == 0 {
            return None;
        }
        let each = 1.0 / secs;
        let shares = offered.partition_shares(partitions);
        let members: Vec<usize> = (0..readers).collect();
        let owners = group::range_assign(partitions, &members);
        let mut load = vec![0.0f64; readers];
        for (p, owner) in owners.iter().enumerate() {
            if let Some(o) = owner {
                load[*o] += shares[p];
            }
        }
        let (busiest, share) = load
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        let hot = hot_partition(partitions);
        let singular = label.strip_suffix('s').unwrap_or(label);
        let owned = owners.iter().filter(|o| **o == Some(busiest)).count();
        let ms = secs * 1e3;
        let hot_rate = offered.msgs_per_s * shares[hot];
        let how = if owners.get(hot).copied().flatten() == Some(busiest) {
            format!(
                "{singular} {busiest} reads hot partition {hot}, which gets {:.0}% of the \
                 records ({:.0}% hot key, 1/{partitions} of the rest) = {}/s against the \
                 {}/s one {singular} processes ({ms} ms each){}; it carries {:.0}% in all",
                100.0 * shares[hot],
                100.0 * offered.hot_key_share,
                fmt_rate(hot_rate),
                fmt_rate(each),
                if owned > 1 {
                    format!(", with {} more partition(s)", owned - 1)
                } else {
                    String::new()
                },
                100.0 * share
            )
        } else {
            format!(
                "{singular} {busiest} carries {:.0}% of the records on {owned} partitions at \
                 {}/s ({ms} ms each); hot partition {hot} gets {:.0}% = {}/s",
                100.0 * share,
                fmt_rate(each),
                100.0 * shares[hot],
                fmt_rate(hot_rate)
            )
        };
        Some(Capacity {
            stage: "consumers",
            per_s: each / share.max(1e-9),
            how,
            relief: format!(
                "spread the hot key ({:.0}% of the records) over several keys, or speed up \
                 processing: one key stays in one partition, read by one {singular}, so more \
                 partitions or {label} do not split it",
                100.0 * offered.hot_key_share
            ),
        })
    }
}

/// The least of `stages` against the offered rate.
fn bottleneck(stages: Vec<Capacity>, offered: &Offered) -> Bottleneck {
    let rate = offered.msgs_per_s;
    let Some(c) = stages
        .into_iter()
        .min_by(|a, b| a.per_s.total_cmp(&b.per_s))
    else {
        return Bottleneck {
            stage: "none".into(),
            capacity_per_s: f64::INFINITY,
            offered_per_s: rate,
            binding: false,
            detail: "no stage with a known capacity".into(),
            notes: Vec::new(),
        };
    };
    let binding = rate > c.per_s;
    let detail = if binding {
        format!(
            "{}: {} = {}/s < {}/s offered; {}",
            c.stage,
            c.how,
            fmt_rate(c.per_s),
            fmt_rate(rate),
            c.relief
        )
    } else {
        format!(
            "{}: {} = {}/s, {:.0}% used at {}/s offered (nothing saturated; this stage binds \
             first; {})",
            c.stage,
            c.how,
            fmt_rate(c.per_s),
            100.0 * rate / c.per_s.max(1e-9),
            fmt_rate(rate),
            c.relief
        )
    };
    Bottleneck {
        stage: c.stage.to_string(),
        capacity_per_s: c.per_s,
        offered_per_s: rate,
        binding,
        detail,
        notes: Vec::new(),
    }
}

/// How a run is bounded and observed.
pub(crate) struct RunBounds {
    pub seed: u64,
    pub duration: SimTime,
    pub drain: SimTime,
    pub interval: SimTime,
    pub replay: Option<ReplaySpec>,
}

/// Runs `model` to the end and returns its report and trails.
pub(crate) fn drive<M: Model>(
    mut model: M,
    profile: &Profile,
    mut workload: Workload,
    faults: Vec<Fault>,
    bounds: &RunBounds,
    progress: &mut dyn FnMut(SimTime),
) -> Result<(ServiceReport, Vec<CausalTrail>), SimError> {
    let service = profile.service;
    let mut cx = Cx {
        q: EventQueue::new(),
        rng: SimRng::derive(bounds.seed, service.name()),
        col: Collector::new(service, &faults, bounds.interval),
        faults,
    };
    let hot_key_share = workload.hot_key_share();
    let mut next = workload.next_msg();
    for (i, f) in cx.faults.iter().enumerate() {
        cx.q.schedule_at(f.at, Ev::FaultStart(i));
        if let Some(d) = f.duration {
            cx.q.schedule_at(f.at.plus(d), Ev::FaultEnd(i));
        }
    }
    cx.q.schedule_at(bounds.interval, Ev::Sample);
    model.start(&mut cx);
    let hard_stop = bounds.duration.plus(bounds.drain);
    let mut tick = 0u32;
    loop {
        // The workload is a stream sorted by time: each message due no later than the next
        // queued event goes straight to the model, without a trip through the heap.
        // (A message may schedule something sooner, so the limit is read again each time.)
        while let Some(m) =
            next.take_if(|m| m.created <= cx.q.peek_time().unwrap_or(SimTime::NEVER).min(hard_stop))
        {
            cx.q.advance_to(m.created);
            tick = tick.wrapping_add(1);
            if tick.is_multiple_of(65_536) {
                progress(m.created);
            }
            cx.col.produced(m.id, m.size);
            model.on_message(m, &mut cx);
            next = workload.next_msg();
        }
        let Some((now, ev)) = cx.q.pop() else {
            break;
        };
        if now > hard_stop {
            break;
        }
        tick = tick.wrapping_add(1);
        if tick.is_multiple_of(65_536) {
            progress(now);
        }
        match ev {
            Ev::FaultStart(i) => {
                let f = cx.faults[i].clone();
                cx.col.fault_started(f.id);
                model.on_fault(&f, true, &mut cx);
            }
            Ev::FaultEnd(i) => {
                let f = cx.faults[i].clone();
                model.on_fault(&f, false, &mut cx);
            }
            Ev::Sample => {
                let (lag, age, urp) = model.gauges(now);
                cx.col.sample(now, lag, age, urp);
                if now >= bounds.duration && next.is_none() && model.idle() {
                    break;
                }
                cx.q.schedule_in(bounds.interval, Ev::Sample);
            }
            Ev::Model(e) => model.on_event(e, &mut cx),
        }
    }
    let end = cx.q.now().min(hard_stop);
    progress(end);
    let secs = bounds.duration.as_secs_f64().max(1e-9);
    let compression = model.wire_ratio().max(1.0);
    let offered = Offered {
        msgs_per_s: cx.col.produced_count() as f64 / secs,
        bytes_per_s: cx.col.produced_bytes() as f64 / secs / compression,
        compression,
        hot_key_share,
    };
    let mut bottleneck = bottleneck(model.capacities(&offered), &offered);
    bottleneck.notes = model.notes(&offered);
    let (settings, cost) = model.finish(&mut cx, end, &offered);
    let events = cx.q.events_handled();
    let replay = bounds
        .replay
        .map(|spec| Replay::plan(&spec, offered.msgs_per_s, model.replay_window(&spec)));
    let Cx { col, .. } = cx;
    let (mut report, trails) = col.finish(
        profile.name.clone(),
        settings,
        cost,
        bottleneck,
        end,
        events,
    );
    report.replay = replay;
    Ok((report, trails))
}

/// Keeps each key's messages in the order they were sent, and nothing more.
///
/// Partitioned services keep a partition's order, and a key lives in one partition, so the
/// order anyone can observe is per key. Holding every message of a partition (or of a
/// subscriber's stream) behind the slowest recent one instead turns latency jitter into a
/// queue that grows with the rate: at 5,000 messages/s the median would be the maximum of the
/// last few dozen latencies, a load effect no real service shows far below its quotas.
pub(crate) struct KeyOrder {
    last: KeyTable<SimTime>,
}

impl Default for KeyOrder {
    fn default() -> Self {
        KeyOrder {
            last: KeyTable::new(SimTime::ZERO),
        }
    }
}

impl KeyOrder {
    /// When a message of `key` that would arrive at `at` arrives: not before the key's
    /// previous message.
    pub fn arrival(&mut self, key: u64, at: SimTime) -> SimTime {
        let last = self.last.get_mut(key);
        let at = at.max(*last);
        *last = at;
        at
    }

    /// When a request carrying `keys` that would arrive at `at` arrives: not before the
    /// previous message of any of its keys, and all of them at once (one request).
    pub fn arrival_of_request(
        &mut self,
        keys: impl Iterator<Item = u64> + Clone,
        at: SimTime,
    ) -> SimTime {
        let at = keys.clone().fold(at, |at, k| at.max(self.last.get(k)));
        for k in keys {
            *self.last.get_mut(k) = at;
        }
        at
    }
}

/// A producer's batches, one open batch per lane (a partition, a shard, the whole stream).
///
/// Producers do not send records one by one: Kafka batches per partition, Event Hubs sends an
/// `EventDataBatch`, Kinesis a `PutRecords` call of up to 500 records, Pub/Sub client libraries
/// a publish request of up to 100 messages. A batch goes when it is full (records or bytes) or
/// when its first record has waited `linger`; quotas and throttling then apply to the request,
/// and the simulation handles one event per request, not per record.
pub(crate) struct Batcher {
    lanes: Vec<Lane>,
    max_records: usize,
    max_bytes: u64,
    /// How long the first record of a batch waits for company.
    pub linger: SimTime,
    /// Records waiting in open batches.
    pub waiting: u64,
}

#[derive(Default)]
struct Lane {
    recs: Vec<Rec>,
    bytes: u64,
    seq: u64,
}

/// What adding a record to a [`Batcher`] asks of the caller.
pub(crate) struct Added {
    /// A batch to send now (it was full).
    pub full: Option<Vec<Rec>>,
    /// A new batch was opened: arm its linger timer with this sequence number.
    pub arm: Option<u64>,
}

impl Batcher {
    pub fn new(lanes: usize, max_records: usize, max_bytes: u64, linger: SimTime) -> Batcher {
        Batcher {
            lanes: (0..lanes.max(1)).map(|_| Lane::default()).collect(),
            max_records: max_records.max(1),
            max_bytes: max_bytes.max(1),
            linger,
            waiting: 0,
        }
    }

    /// Adds `rec` to `lane`'s open batch.
    pub fn add(&mut self, lane: usize, rec: Rec) -> Added {
        let max_records = self.max_records;
        let max_bytes = self.max_bytes;
        let Some(l) = self.lanes.get_mut(lane) else {
            return Added {
                full: Some(vec![rec]),
                arm: None,
            };
        };
        let mut full = None;
        if !l.recs.is_empty() && l.bytes + u64::from(rec.size) > max_bytes {
            self.waiting -= l.recs.len() as u64;
            full = Some(std::mem::take(&mut l.recs));
            l.bytes = 0;
            l.seq += 1;
        }
        let arm = l.recs.is_empty().then(|| {
            l.seq += 1;
            l.seq
        });
        l.recs.push(rec);
        l.bytes += u64::from(rec.size);
        self.waiting += 1;
        if l.recs.len() >= max_records {
            // Two full batches at once cannot happen: the byte check above emptied the lane.
            self.waiting -= l.recs.len() as u64;
            l.bytes = 0;
            l.seq += 1;
            let batch = std::mem::take(&mut l.recs);
            match &mut full {
                Some(f) => f.extend(batch),
                None => full = Some(batch),
            }
        }
        Added { full, arm }
    }

    /// The linger timer `seq` of `lane` ran out: its batch, if still open.
    pub fn flush(&mut self, lane: usize, seq: u64) -> Option<Vec<Rec>> {
        let l = self.lanes.get_mut(lane)?;
        if l.seq != seq || l.recs.is_empty() {
            return None;
        }
        self.waiting -= l.recs.len() as u64;
        l.bytes = 0;
        l.seq += 1;
        Some(std::mem::take(&mut l.recs))
    }

    /// Every record still waiting in an open batch (the run ended).
    pub fn drain(&mut self) -> Vec<Rec> {
        self.waiting = 0;
        self.lanes
            .iter_mut()
            .flat_map(|l| {
                l.bytes = 0;
                std::mem::take(&mut l.recs)
            })
            .collect()
    }
}

/// A token bucket: `rate` tokens per second, holding at most `burst` seconds' worth.
///
/// Quotas that "use a short-window running total" (Event Hubs) or refill per second (Kinesis)
/// are both token buckets with a one-second burst.
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    rate: f64,
    cap: f64,
    tokens: f64,
    last: SimTime,
}

impl Bucket {
    pub fn new(rate: f64, burst_secs: f64) -> Bucket {
        let cap = (rate * burst_secs).max(1.0);
        Bucket {
            rate,
            cap,
            tokens: cap,
            last: SimTime::ZERO,
        }
    }

    fn refill(&mut self, now: SimTime) {
        if now > self.last {
            let dt = now.minus(self.last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.cap);
            self.last = now;
        }
    }

    /// Takes `n` tokens if all are there.
    pub fn try_take(&mut self, now: SimTime, n: f64) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Whether `n` tokens are there, without taking them.
    pub fn has(&mut self, now: SimTime, n: f64) -> bool {
        self.refill(now);
        self.tokens >= n
    }

    /// How long until `n` tokens are there (zero if they are), without taking them.
    pub fn wait_for(&mut self, now: SimTime, n: f64) -> SimTime {
        self.refill(now);
        if self.tokens >= n {
            SimTime::ZERO
        } else {
            SimTime::from_secs_f64((n - self.tokens) / self.rate.max(1e-9))
        }
    }

    /// Takes `n` tokens, going into debt if needed; returns how long until the debt is paid.
    pub fn take_debt(&mut self, now: SimTime, n: f64) -> SimTime {
        self.refill(now);
        self.tokens -= n;
        if self.tokens >= 0.0 {
            SimTime::ZERO
        } else {
            SimTime::from_secs_f64(-self.tokens / self.rate.max(1e-9))
        }
    }

    /// Changes the refill rate (a throttling spike), keeping the burst in seconds.
    pub fn scale(&mut self, now: SimTime, factor: f64, base_rate: f64, burst_secs: f64) {
        self.refill(now);
        self.rate = base_rate * factor;
        self.cap = (self.rate * burst_secs).max(1.0);
        self.tokens = self.tokens.min(self.cap);
    }
}

/// Exponential back-off with ±20% jitter: `base × 2^attempt`, at most `max`.
pub(crate) fn backoff(rng: &mut SimRng, base: SimTime, max: SimTime, attempt: u32) -> SimTime {
    let exp = base.as_micros().saturating_mul(1u64 << attempt.min(30));
    rng.jitter(SimTime::from_micros(exp).min(max), 0.2)
}

#[cfg(test)]
mod order_tests {
    use crate::{ProfileSet, Scenario, ServiceKind, SimTime, WorkloadSpec};

    #[test]
    fn p50_does_not_depend_on_the_rate_below_quotas() {
        // 50, 500 and 5,000 telemetry messages/s are all far below the default quotas (6 TUs,
        // 200 MB/s of Pub/Sub publish, 200 MB/s per Kafka broker). Latency is one draw per hop
        // from the profile's distributions, so the median must stay put: keeping a key's order
        // must not hold messages behind the slowest recent one.
        let services = [
            ServiceKind::Kafka,
            ServiceKind::EventHubs,
            ServiceKind::PubSub,
        ];
        let mut p50 = vec![Vec::new(); services.len()];
        for (rate, secs) in [(50.0, 40), (500.0, 8), (5_000.0, 2)] {
            let w = WorkloadSpec::named("telemetry", rate).unwrap();
            let r = Scenario::compare(w, SimTime::from_secs(secs), &services)
                .unwrap()
                .run()
                .unwrap();
            for (i, s) in r.services.iter().enumerate() {
                assert_eq!(s.throttled, 0, "{} throttled at {rate}/s", s.service);
                p50[i].push(s.latency.p50_ms);
            }
        }
        for (kind, p) in services.iter().zip(&p50) {
            // A producer batch waits at most its linger: at 50/s every message waits all of
            // it, at 5,000/s the batch often fills first. That much is batching, not a queue.
            let linger = ProfileSet::embedded()
                .unwrap()
                .get(*kind)
                .unwrap()
                .millis("producer_linger_ms")
                .map_or(0.0, |t| t.as_millis_f64());
            let (lo, hi) = p
                .iter()
                .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            assert!(
                hi - lo <= 0.06 * lo + linger,
                "{kind} p50 at 50, 500, 5,000/s: {p:?} (linger {linger} ms)"
            );
        }
    }
}

#[cfg(test)]
mod cost_of_simulating_tests {
    use crate::{Scenario, ServiceKind, SimTime, WorkloadSpec};

    #[test]
    fn five_times_the_quotas_costs_about_one_event_per_message_not_one_per_retry() {
        // 30,000/s is five times the 6,000/s of 6 TUs and of 6 shards. Throttled requests are
        // simulated per batch: before batching, each record's every retry was an event (7.6
        // events per message for Event Hubs at 50,000/s), which made a 10-minute run take
        // minutes.
        let w = WorkloadSpec::named("telemetry", 30_000.0).unwrap();
        let services = ServiceKind::COMPARE;
        let r = Scenario::compare(w, SimTime::from_secs(5), &services)
            .unwrap()
            .run()
            .unwrap();
        for s in &r.services {
            let per_msg = s.events as f64 / s.produced as f64;
            assert!(
                per_msg < 1.6,
                "{}: {per_msg:.2} events per message",
                s.service
            );
        }
        let eh = r.service(ServiceKind::EventHubs).unwrap();
        assert!(eh.throttled > 0 && eh.throttled < eh.produced / 10);
    }
}

#[cfg(test)]
mod capacity_tests {
    use super::*;

    #[test]
    fn readers_beyond_the_partition_count_add_no_capacity() {
        let ms = SimTime::from_micros(100);
        let cap = |readers| {
            Capacity::readers("consumers", readers, 6, ms, "partition")
                .map(|c| c.per_s)
                .unwrap_or(0.0)
        };
        assert_eq!(cap(3), 30_000.0);
        // Four readers on six partitions: two still own two each.
        assert_eq!(cap(4), 30_000.0);
        assert_eq!(cap(6), 60_000.0);
        assert_eq!(cap(8), 60_000.0);
    }

    #[test]
    fn an_unsaturated_run_still_names_the_stage_that_binds_first() {
        let offered = Offered {
            msgs_per_s: 5_000.0,
            bytes_per_s: 2e6,
            compression: 1.0,
            hot_key_share: 0.0,
        };
        let stages = vec![
            Capacity {
                stage: "quota",
                per_s: 6_000.0,
                how: "6 TU".into(),
                relief: "add TUs".into(),
            },
            Capacity {
                stage: "consumers",
                per_s: 30_000.0,
                how: "3 × 10,000/s".into(),
                relief: "add consumers".into(),
            },
        ];
        let b = bottleneck(stages, &offered);
        assert_eq!((b.stage.as_str(), b.binding), ("quota", false));
        assert!(
            b.detail.starts_with("quota: 6 TU = 6,000/s, 83% used"),
            "{}",
            b.detail
        );
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    #[test]
    fn bucket_admits_its_rate_per_second_after_the_burst() {
        let mut b = Bucket::new(1000.0, 1.0);
        let mut admitted = 0;
        // 1,500 requests per second for 10 s: the first second's burst plus 1,000/s.
        for i in 0..15_000u64 {
            if b.try_take(SimTime::from_micros(i * 10_000 / 15), 1.0) {
                admitted += 1;
            }
        }
        assert!((admitted as f64 - 11_000.0).abs() < 50.0, "{admitted}");
    }
}
