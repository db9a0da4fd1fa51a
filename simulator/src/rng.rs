//! Seeded randomness: every random choice in a run comes from a [`SimRng`] derived from the
//! run's one seed.
//!
//! Each service model and the workload get their own stream, derived from the seed and a label
//! (`"workload"`, `"kafka"`, ...). So adding Pub/Sub to a comparison does not change a single
//! number of the Kafka run, and every service sees exactly the same messages.

use std::sync::OnceLock;

use rand::{Rng, RngCore};

use crate::time::SimTime;

/// A deterministic random stream (xoshiro256++, seeded through SplitMix64): plain integer
/// arithmetic, so the same seed gives the same numbers on every platform and release.
///
/// A run draws hundreds of millions of numbers and needs no cryptographic strength: ChaCha8,
/// used before, spent a twentieth of a run refilling its buffer.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: Xoshiro,
    zig: &'static Ziggurat,
}

/// xoshiro256++ (Blackman and Vigna, 2019).
#[derive(Clone, Debug)]
struct Xoshiro {
    s: [u64; 4],
}

impl Xoshiro {
    fn seed(seed: u64) -> Xoshiro {
        // SplitMix64 fills the state: never all zero, and nearby seeds give unrelated states.
        let mut x = seed;
        let mut s = [0u64; 4];
        for w in &mut s {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            *w = mix64(x);
        }
        Xoshiro { s }
    }
}

impl RngCore for Xoshiro {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

impl SimRng {
    /// The stream named `label` of the run seeded with `seed`.
    pub fn derive(seed: u64, label: &str) -> SimRng {
        SimRng {
            inner: Xoshiro::seed(seed ^ fnv1a(label.as_bytes())),
            zig: Ziggurat::shared(),
        }
    }

    /// A uniform float in `[0, 1)` (53 random bits).
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.inner.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)`; `n = 0` gives 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.inner.random_range(0..n)
        }
    }

    /// A raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// An exponential variate with the given mean (inter-arrival times of a Poisson process).
    pub fn exp(&mut self, mean: f64) -> f64 {
        mean * self.standard_exp()
    }

    /// An exponential variate of mean 1, by the ziggurat method: every message of a workload
    /// draws one, and a logarithm per draw was a twentieth of a run.
    fn standard_exp(&mut self) -> f64 {
        let z = &self.zig.exp;
        let mut base = 0.0;
        loop {
            let bits = self.inner.next_u64();
            let i = (bits & 0xff) as usize;
            let u = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            let x = u * z.x[i];
            if x < z.x[i + 1] {
                return base + x;
            }
            if i == 0 {
                // Beyond R the exponential is R plus another exponential (no memory).
                base += ZIG_EXP_R;
                continue;
            }
            let y = z.f[i] + self.unit() * (z.f[i + 1] - z.f[i]);
            if y < (-x).exp() {
                return base + x;
            }
        }
    }

    /// A standard normal variate, by the ziggurat method (Marsaglia and Tsang, 2000).
    ///
    /// Every latency in a run is a log-normal draw, tens of millions in a long run; Box-Muller
    /// spent a logarithm, a square root and a cosine on each, a third of the simulator's time.
    /// The ziggurat answers about 99% of draws with one random word, one multiplication and one
    /// comparison; the rest go through the exact wedge or tail test, so the distribution is
    /// the normal one, not an approximation.
    pub fn normal(&mut self) -> f64 {
        let z = &self.zig.normal;
        loop {
            let bits = self.inner.next_u64();
            // Bits 0-7 pick the layer, bit 8 the sign, bits 11-63 the position in the layer.
            let i = (bits & 0xff) as usize;
            let sign = if bits & 0x100 == 0 { 1.0 } else { -1.0 };
            let u = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            let x = u * z.x[i];
            if x < z.x[i + 1] {
                return sign * x;
            }
            if i == 0 {
                // The base layer's tail beyond R (Marsaglia's method for the tail).
                loop {
                    let a = -(1.0 - self.unit()).ln() / ZIG_R;
                    let b = -(1.0 - self.unit()).ln();
                    if b + b > a * a {
                        return sign * (ZIG_R + a);
                    }
                }
            }
            // The wedge between the layer's rectangle and the curve.
            let y = z.f[i] + self.unit() * (z.f[i + 1] - z.f[i]);
            if y < (-0.5 * x * x).exp() {
                return sign * x;
            }
        }
    }

    /// A duration drawn from `dist`.
    pub fn latency(&mut self, dist: &LatencyDist) -> SimTime {
        if dist.sigma == 0.0 {
            return SimTime::from_micros(dist.median_us as u64);
        }
        let z = self.normal();
        // Through i64: one instruction, where a cast to u64 is a branchy sequence on x86-64
        // (a latency is far below 2^63 µs; a larger value saturates).
        SimTime::from_micros((dist.median_us * (dist.sigma * z).exp()) as i64 as u64)
    }

    /// `base` stretched by a uniform jitter of ±`fraction`.
    pub fn jitter(&mut self, base: SimTime, fraction: f64) -> SimTime {
        let f = 1.0 + fraction * (2.0 * self.unit() - 1.0);
        SimTime::from_micros((base.as_micros() as f64 * f.max(0.0)) as u64)
    }
}

/// Layers of each ziggurat: a power of two, so one random word picks the layer.
const ZIG_LAYERS: usize = 256;
/// Where the normal ziggurat's tail begins, for 256 layers (Marsaglia and Tsang, 2000).
const ZIG_R: f64 = 3.654_152_885_361_009;
/// The area of every layer under `exp(-x²/2)`, for 256 layers.
const ZIG_V: f64 = 0.004_928_673_233_99;
/// Where the exponential ziggurat's tail begins, for 256 layers.
const ZIG_EXP_R: f64 = 7.697_117_470_131_487;
/// The area of every layer under `exp(-x)`, for 256 layers.
const ZIG_EXP_V: f64 = 0.003_949_659_822_581_557;

/// A ziggurat under a decreasing density `f` on `[0, ∞)` (unnormalized): layer `i` is the
/// rectangle `[0, x[i]] × [f(x[i]), f(x[i+1])]`, every one of the same area `v`; layer 0 is
/// the base `[0, x[0]] × [0, f(r)]`, whose part beyond `r` stands for the tail.
#[derive(Debug)]
struct Layers {
    x: [f64; ZIG_LAYERS + 1],
    f: [f64; ZIG_LAYERS + 1],
}

impl Layers {
    fn build(r: f64, v: f64, f: impl Fn(f64) -> f64, inverse: impl Fn(f64) -> f64) -> Layers {
        let mut x = [0.0; ZIG_LAYERS + 1];
        x[0] = v / f(r);
        x[1] = r;
        for i in 2..ZIG_LAYERS {
            // The next layer up has the same area: x[i-1] × (f(x[i]) − f(x[i-1])) = v.
            x[i] = inverse((v / x[i - 1] + f(x[i - 1])).min(1.0));
        }
        x[ZIG_LAYERS] = 0.0;
        let mut fx = [0.0; ZIG_LAYERS + 1];
        for (fi, xi) in fx.iter_mut().zip(&x) {
            *fi = f(*xi);
        }
        Layers { x, f: fx }
    }
}

/// The normal and exponential ziggurats.
#[derive(Debug)]
struct Ziggurat {
    normal: Layers,
    exp: Layers,
}

impl Ziggurat {
    fn build() -> Ziggurat {
        Ziggurat {
            normal: Layers::build(
                ZIG_R,
                ZIG_V,
                |x| (-0.5 * x * x).exp(),
                |y| (-2.0 * y.ln()).max(0.0).sqrt(),
            ),
            exp: Layers::build(ZIG_EXP_R, ZIG_EXP_V, |x| (-x).exp(), |y| (-y.ln()).max(0.0)),
        }
    }

    /// The tables, built once per process.
    fn shared() -> &'static Ziggurat {
        static TABLES: OnceLock<Ziggurat> = OnceLock::new();
        TABLES.get_or_init(Ziggurat::build)
    }
}

/// A log-normal latency distribution fitted to a median and a 99th percentile.
///
/// The reference (cloud-services.md §3) asks for percentiles as distributions rather than fixed
/// values; a log-normal has the long right tail that measured latencies show.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyDist {
    median_us: f64,
    sigma: f64,
}

/// The 99th-percentile z-score of the standard normal distribution.
const Z99: f64 = 2.326_347_874;

impl LatencyDist {
    /// A distribution with median `p50` and 99th percentile `p99` (`p99 <= p50` gives a
    /// constant, which tests use to make timings exact).
    pub fn from_p50_p99(p50: SimTime, p99: SimTime) -> LatencyDist {
        let m = p50.as_micros().max(1) as f64;
        let sigma = if p99 > p50 {
            ((p99.as_micros() as f64) / m).ln() / Z99
        } else {
            0.0
        };
        LatencyDist {
            median_us: m,
            sigma,
        }
    }

    /// A distribution that always yields `t`.
    pub fn constant(t: SimTime) -> LatencyDist {
        LatencyDist {
            median_us: t.as_micros() as f64,
            sigma: 0.0,
        }
    }

    /// The median.
    pub fn median(&self) -> SimTime {
        SimTime::from_micros(self.median_us as u64)
    }
}

/// FNV-1a, a fixed hash used for labels and message keys (never `std`'s randomized hasher).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Mixes a 64-bit key into a well-spread hash (SplitMix64's finalizer), used to map keys to
/// partitions and shards.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A `BuildHasher` with no random state, for hash maps whose contents must not depend on the
/// process (their iteration order is still never used for output).
pub type FixedState = std::hash::BuildHasherDefault<FixedHasher>;

/// The hasher behind [`FixedState`]: FNV-1a over the bytes, finalized with [`mix64`].
#[derive(Default, Clone, Copy, Debug)]
pub struct FixedHasher(u64);

impl std::hash::Hasher for FixedHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0 ^ 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = mix64(self.0 ^ i);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_and_label_give_one_stream() {
        let mut a = SimRng::derive(7, "kafka");
        let mut b = SimRng::derive(7, "kafka");
        let mut c = SimRng::derive(7, "kinesis");
        let xa: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn ziggurat_layers_have_equal_areas_and_close_at_the_top() {
        let z = Ziggurat::build();
        for (layers, v) in [(&z.normal, ZIG_V), (&z.exp, ZIG_EXP_V)] {
            // The base: the rectangle up to R plus the tail beyond it.
            assert!((layers.x[0] * layers.f[1] - v).abs() < 1e-12);
            // Every layer up to the top (which ends at x = 0, f = 1) has the same area: the
            // constants belong together, or the last layer would be too big or too small.
            for i in 1..ZIG_LAYERS {
                let area = layers.x[i] * (layers.f[i + 1] - layers.f[i]);
                assert!((area - v).abs() < 1e-6 * v, "layer {i}: {area}");
                assert!(layers.x[i + 1] < layers.x[i]);
            }
        }
    }

    #[test]
    fn exponential_draws_have_mean_one_and_the_exponential_tail() {
        let mut r = SimRng::derive(5, "e");
        let n = 400_000;
        let v: Vec<f64> = (0..n).map(|_| r.exp(1.0)).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        for t in [0.5, 1.0, 3.0, 6.0, ZIG_EXP_R] {
            let p = (-t).exp();
            let s = v.iter().filter(|&&x| x > t).count() as f64 / n as f64;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((s - p).abs() < 5.0 * sd, "P(X > {t}) = {s}, expected {p}");
        }
        assert!(v.iter().all(|&x| x >= 0.0));
    }

    #[test]
    fn normal_draws_have_the_normal_moments_and_tails() {
        let mut r = SimRng::derive(3, "z");
        let n = 400_000;
        let v: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        let share = |t: f64| v.iter().filter(|x| x.abs() > t).count() as f64 / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "variance {var}");
        // P(|Z| > 1) = 0.3173, P(|Z| > 2) = 0.0455, P(|Z| > 3) = 0.0027, P(|Z| > R) = 0.00026.
        for (t, p) in [
            (1.0, 0.3173),
            (2.0, 0.0455),
            (3.0, 0.0027),
            (ZIG_R, 0.000258),
        ] {
            let s = share(t);
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((s - p).abs() < 5.0 * sd, "P(|Z| > {t}) = {s}, expected {p}");
        }
        // Both signs, and the tail is reached.
        assert!(v.iter().any(|&x| x < -ZIG_R) && v.iter().any(|&x| x > ZIG_R));
    }

    #[test]
    fn lognormal_fit_hits_its_median_and_p99() {
        let d = LatencyDist::from_p50_p99(SimTime::from_millis(20), SimTime::from_millis(100));
        let mut r = SimRng::derive(1, "t");
        let mut v: Vec<u64> = (0..20_000).map(|_| r.latency(&d).as_micros()).collect();
        v.sort_unstable();
        let p50 = v[10_000] as f64 / 1e3;
        let p99 = v[19_800] as f64 / 1e3;
        assert!((p50 - 20.0).abs() < 1.5, "p50 {p50}");
        assert!((p99 - 100.0).abs() < 12.0, "p99 {p99}");
    }
}
