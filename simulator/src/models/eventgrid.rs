//! Azure Event Grid push delivery: each event is POSTed to a subscriber endpoint, retried on a
//! fixed schedule when the endpoint fails or is slow, then dead-lettered or dropped.
//!
//! - The endpoint has `endpoint_concurrency` request slots and takes `processing_ms` per event.
//!   Event Grid waits `response_timeout_s` (30 s); a slower answer counts as a failure even
//!   though the endpoint did the work, so the retry is a duplicate.
//! - Retries follow `retry_schedule`: 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h,
//!   then every 12 h (the last step repeats), jittered, up to `max_delivery_attempts` (30) or
//!   the event's time to live (24 h). With the defaults the time to live ends it first, after
//!   11 attempts: the 30 attempts only matter with a longer time to live or a shorter schedule.
//! - Dead-lettering is off by default: an event that runs out of attempts is **dropped**, which
//!   the report counts as lost. With it on, the event lands in the dead-letter container about
//!   five minutes after the last attempt.
//! - No ordering: each event travels on its own, so events of one key overtake each other.

use crate::fault::{Fault, FaultKind};
use crate::metrics::{Cause, CostEstimate};
use crate::models::{Capacity, Cx, Model, Offered};
use crate::profile::Profile;
use crate::rng::LatencyDist;
use crate::time::{parse_duration, SimTime};
use crate::workload::Msg;
use crate::SimError;

/// Event Grid settings.
#[derive(Clone, Debug)]
pub(crate) struct EventGridCfg {
    pub publish: LatencyDist,
    pub deliver: LatencyDist,
    pub concurrency: usize,
    pub processing: SimTime,
    pub timeout: SimTime,
    pub schedule: Vec<SimTime>,
    pub max_attempts: u32,
    pub ttl: SimTime,
    pub dead_letter: bool,
    pub dead_letter_delay: SimTime,
    pub usd_per_million_ops: f64,
}

impl EventGridCfg {
    pub fn from_profile(p: &Profile) -> Result<EventGridCfg, SimError> {
        let text = p.string("retry_schedule")?;
        let mut schedule = Vec::new();
        for part in text.split(',') {
            let t =
                parse_duration(part).map_err(|m| SimError::at(p.origin("retry_schedule"), m))?;
            schedule.push(t);
        }
        Ok(EventGridCfg {
            publish: LatencyDist::from_p50_p99(
                p.millis("publish_p50_ms")?,
                p.millis("publish_p99_ms")?,
            ),
            deliver: LatencyDist::from_p50_p99(
                p.millis("deliver_p50_ms")?,
                p.millis("deliver_p99_ms")?,
            ),
            concurrency: p.count("endpoint_concurrency", 1, 100_000)?,
            processing: p.millis("processing_ms")?,
            timeout: SimTime::from_secs_f64(p.f64("response_timeout_s")?),
            schedule,
            max_attempts: p.int("max_delivery_attempts", 1, 30)? as u32,
            ttl: SimTime::from_secs_f64(p.f64("event_ttl_minutes")? * 60.0),
            dead_letter: p.bool("dead_letter")?,
            dead_letter_delay: p.millis("dead_letter_delay_ms")?,
            usd_per_million_ops: p.f64("usd_per_million_operations")?,
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct GMsg {
    id: u64,
    key: u64,
    created: SimTime,
}

/// Event Grid events.
pub(crate) enum EgEv {
    Post {
        m: GMsg,
        attempt: u32,
    },
    Done {
        m: GMsg,
        ok: bool,
    },
    Failed {
        m: GMsg,
        attempt: u32,
        code: &'static str,
    },
    DeadLetter {
        m: GMsg,
    },
}

/// The Event Grid model.
pub(crate) struct EventGrid {
    cfg: EventGridCfg,
    slots: Vec<SimTime>,
    slow: Option<SimTime>,
    endpoint_down: bool,
    clients_cut: bool,
    extra_latency: SimTime,
    inflight: u64,
    operations: f64,
}

impl EventGrid {
    pub fn new(cfg: EventGridCfg) -> EventGrid {
        EventGrid {
            slots: vec![SimTime::ZERO; cfg.concurrency],
            slow: None,
            endpoint_down: false,
            clients_cut: false,
            extra_latency: SimTime::ZERO,
            inflight: 0,
            operations: 0.0,
            cfg,
        }
    }

    fn post(&mut self, m: GMsg, attempt: u32, cx: &mut Cx<EgEv>) {
        let now = cx.now();
        self.operations += 1.0;
        if attempt > 1 {
            cx.col.redelivered();
        }
        if self.clients_cut {
            cx.after(
                self.cfg.timeout,
                EgEv::Failed {
                    m,
                    attempt,
                    code: "request_timeout",
                },
            );
            return;
        }
        if self.endpoint_down {
            cx.after(
                SimTime::ZERO,
                EgEv::Failed {
                    m,
                    attempt,
                    code: "endpoint_unavailable",
                },
            );
            return;
        }
        let arrive = now
            .plus(cx.rng.latency(&self.cfg.deliver))
            .plus(self.extra_latency);
        let (i, free) = self
            .slots
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(i, t)| (t, i))
            .unwrap_or((0, SimTime::ZERO));
        let start = arrive.max(free);
        let done = start.plus(self.slow.unwrap_or(self.cfg.processing));
        if let Some(s) = self.slots.get_mut(i) {
            *s = done;
        }
        let answered = done.plus(self.extra_latency);
        if answered.minus(now) > self.cfg.timeout {
            cx.at(done, EgEv::Done { m, ok: false });
            cx.after(
                self.cfg.timeout,
                EgEv::Failed {
                    m,
                    attempt,
                    code: "response_timeout",
                },
            );
        } else {
            cx.at(done, EgEv::Done { m, ok: true });
        }
    }

    fn failed(&mut self, m: GMsg, attempt: u32, code: &'static str, cx: &mut Cx<EgEv>) {
        let now = cx.now();
        let t = self.cfg.timeout;
        cx.mech_id(Cause::Window, "push_retry", m.id, || match code {
            "response_timeout" => format!(
                "the endpoint did not answer within {t}: Event Grid schedules a retry (the endpoint may still have processed it)"
            ),
            "request_timeout" => "Event Grid cannot reach the endpoint: the POST times out and is retried later".into(),
            _ => "the endpoint is down: the POST fails and Event Grid retries on its schedule".into(),
        });
        // Past the end of the schedule its last step repeats ("every 12 hours").
        let delay = self
            .cfg
            .schedule
            .get(attempt as usize - 1)
            .or(self.cfg.schedule.last())
            .copied()
            .unwrap_or(SimTime::from_secs(3600));
        let next = now.plus(cx.rng.jitter(delay, 0.1));
        if attempt >= self.cfg.max_attempts || next > m.created.plus(self.cfg.ttl) {
            if self.cfg.dead_letter {
                cx.after(self.cfg.dead_letter_delay, EgEv::DeadLetter { m });
            } else {
                self.inflight = self.inflight.saturating_sub(1);
                cx.col.lost(m.id, now, Cause::Window);
                let n = attempt;
                cx.mech_id(Cause::Window, "event_dropped", m.id, || {
                    format!("after {n} attempts (or its time to live) the event is dropped: dead-lettering is off by default")
                });
            }
            return;
        }
        cx.at(
            next,
            EgEv::Post {
                m,
                attempt: attempt + 1,
            },
        );
    }
}

impl Model for EventGrid {
    type Ev = EgEv;

    fn start(&mut self, _cx: &mut Cx<EgEv>) {}

    fn on_message(&mut self, msg: Msg, cx: &mut Cx<EgEv>) {
        self.inflight += 1;
        self.operations += 1.0;
        let m = GMsg {
            id: msg.id,
            key: msg.key,
            created: msg.created,
        };
        let lat = cx.rng.latency(&self.cfg.publish).plus(self.extra_latency);
        cx.col.acked(lat.plus(lat));
        cx.after(lat, EgEv::Post { m, attempt: 1 });
    }

    fn on_event(&mut self, ev: EgEv, cx: &mut Cx<EgEv>) {
        match ev {
            EgEv::Post { m, attempt } => self.post(m, attempt, cx),
            EgEv::Done { m, ok } => {
                let now = cx.now();
                cx.col.delivered(m.id, m.key, m.created, now, Cause::Window);
                if ok {
                    self.inflight = self.inflight.saturating_sub(1);
                }
            }
            EgEv::Failed { m, attempt, code } => self.failed(m, attempt, code, cx),
            EgEv::DeadLetter { m } => {
                self.inflight = self.inflight.saturating_sub(1);
                let now = cx.now();
                cx.col.dead_lettered(m.id, now, Cause::Window);
                cx.mech_id(Cause::Window, "dead_letter", m.id, || {
                    "undeliverable events are written to the dead-letter container".into()
                });
            }
        }
    }

    fn on_fault(&mut self, f: &Fault, start: bool, cx: &mut Cx<EgEv>) {
        let cause = Cause::Fault(f.id);
        match (&f.kind, start) {
            (FaultKind::ConsumerCrash { .. }, s) => {
                self.endpoint_down = s;
                if s {
                    cx.mech(cause, "endpoint_unavailable", || "the subscriber endpoint is down: every push fails".into());
                }
            }
            (FaultKind::SlowConsumer { processing, .. }, s) => {
                self.slow = s.then_some(*processing);
                if s {
                    cx.mech(cause, "slow_processing", || format!("the endpoint now spends {processing} per event"));
                }
            }
            (FaultKind::NetworkPartition { .. }, s) => {
                self.clients_cut = s;
                if s {
                    cx.mech(cause, "network_unreachable", || "Event Grid cannot reach the endpoint".into());
                }
            }
            (FaultKind::AddedLatency { latency }, s) => {
                self.extra_latency = if s { *latency } else { SimTime::ZERO };
                if s {
                    cx.mech(cause, "added_latency", || format!("every hop takes {latency} longer"));
                }
            }
            (_, true) => cx.mech(cause, "not_applicable", || {
                "push delivery has no brokers, partitions, consumer groups or customer-visible quota for this fault".into()
            }),
            _ => {}
        }
    }

    fn gauges(&self, _now: SimTime) -> (u64, SimTime, u64) {
        (self.inflight, SimTime::ZERO, 0)
    }

    fn idle(&self) -> bool {
        self.inflight == 0
    }

    fn replay_window(&self, _spec: &crate::replay::ReplaySpec) -> crate::replay::ReplayWindow {
        crate::replay::ReplayWindow {
            window: None,
            how: "Event Grid pushes each event and keeps none once delivered: there is nothing \
                  to rewind (keep a copy elsewhere, such as Event Hubs, to replay)"
                .into(),
        }
    }

    fn capacities(&self, _offered: &Offered) -> Vec<Capacity> {
        let c = &self.cfg;
        let secs = c.processing.as_secs_f64();
        if secs <= 0.0 {
            return Vec::new();
        }
        let each = 1.0 / secs;
        vec![Capacity {
            stage: "consumers",
            per_s: c.concurrency as f64 * each,
            how: format!(
                "endpoint concurrency {} × {}/s ({} ms each)",
                c.concurrency,
                crate::metrics::fmt_rate(each),
                secs * 1e3
            ),
            relief: "raise the endpoint's concurrency or turn on batched delivery".into(),
        }]
    }

    fn finish(
        &mut self,
        cx: &mut Cx<EgEv>,
        run: SimTime,
        _offered: &Offered,
    ) -> (Vec<String>, CostEstimate) {
        while let Some((_, ev)) = cx.q.pop() {
            if let crate::models::Ev::Model(
                EgEv::Post { m, .. } | EgEv::Failed { m, .. } | EgEv::DeadLetter { m },
            ) = ev
            {
                cx.col.pending(m.id);
            }
        }
        let c = &self.cfg;
        let settings = vec![
            format!("endpoint_concurrency={}", c.concurrency),
            format!("response_timeout={}", c.timeout),
            format!("max_delivery_attempts={}", c.max_attempts),
            format!("dead_letter={}", c.dead_letter),
        ];
        let mut cost = CostEstimate::default();
        cost.line(
            "million operations (publishes + delivery attempts)",
            self.operations / 1e6,
            c.usd_per_million_ops,
        );
        cost.finish(
            run,
            "per-operation pricing (illustrative USD, first 100,000 free per month not deducted)",
        );
        (settings, cost)
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;
    use crate::{ServiceKind, Stage};

    fn run(eg: &str, faults: &str) -> crate::Report {
        let text = format!(
            "seed = 17\nduration = \"20s\"\ndrain = \"30m\"\nservices = [\"eventgrid\"]\n\
             [workload]\nkind = \"payments\"\nrate = \"20/s\"\n[eventgrid]\n{eg}\n{faults}"
        );
        Scenario::from_toml_str(&text, "eg.toml")
            .unwrap()
            .run()
            .unwrap()
    }

    const DOWN: &str =
        "[[fault]]\nkind = \"consumer_crash\"\nconsumer = 0\nat = \"5s\"\nduration = \"2m\"\n";

    #[test]
    fn endpoint_outage_is_bridged_by_the_retry_schedule() {
        let r = run("", DOWN);
        let eg = r.service(ServiceKind::EventGrid).unwrap();
        assert_eq!(eg.delivered, eg.produced);
        assert!(eg.redeliveries > 0);
        let t = r.trail(0, ServiceKind::EventGrid).unwrap();
        assert!(t.has(Stage::Mechanism, "push_retry"), "{}", t.summary());
    }

    #[test]
    fn a_dead_endpoint_gets_ten_retries_in_the_24_hour_time_to_live() {
        // Retries at 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h and 12 h add up to
        // 22.8 h; the next 12 h step would pass the 24 h time to live, so the event is dropped
        // after 11 attempts. Each step is jittered by ±10%, which pushes the tenth retry past
        // 24 h for a few events (9 retries). The older, hourly schedule gave 29.
        let text = "seed = 5\nduration = \"3s\"\ndrain = \"25h\"\nsample_interval = \"10m\"\n\
                    services = [\"eventgrid\"]\n[workload]\nkind = \"payments\"\nrate = \"20/s\"\n\
                    [[fault]]\nkind = \"consumer_crash\"\nconsumer = 0\nat = \"0s\"\n";
        let r = Scenario::from_toml_str(text, "eg.toml")
            .unwrap()
            .run()
            .unwrap();
        let eg = r.service(ServiceKind::EventGrid).unwrap();
        let n = eg.produced;
        assert!(n > 40);
        assert_eq!((eg.delivered, eg.lost.count), (0, n));
        let per_event = eg.redeliveries as f64 / n as f64;
        assert!(
            (9.0..=10.0).contains(&per_event),
            "{per_event} retries per event"
        );
        assert!(per_event > 9.5, "{per_event}: most events get all ten");
    }

    #[test]
    fn without_dead_lettering_exhausted_events_are_dropped() {
        let r = run("max_delivery_attempts = 2", DOWN);
        let eg = r.service(ServiceKind::EventGrid).unwrap();
        assert!(eg.lost.count > 0);
        assert_eq!(eg.dead_lettered.count, 0);
        let r = run("max_delivery_attempts = 2\ndead_letter = true", DOWN);
        let eg = r.service(ServiceKind::EventGrid).unwrap();
        assert_eq!(eg.lost.count, 0);
        assert!(eg.dead_lettered.count > 0);
    }

    #[test]
    fn an_endpoint_slower_than_the_timeout_gets_duplicates() {
        let slow = "[[fault]]\nkind = \"slow_consumer\"\nprocessing = \"31s\"\nat = \"0s\"\nduration = \"5s\"\n";
        let r = run("endpoint_concurrency = 1000", slow);
        let eg = r.service(ServiceKind::EventGrid).unwrap();
        assert!(eg.duplicated.count > 0);
    }
}
