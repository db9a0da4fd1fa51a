//! Seeded randomness: every random choice in a run comes from a [`SimRng`] derived from the
//! run's one seed.
//!
//! Each service model and the workload get their own stream, derived from the seed and a label
//! (`"workload"`, `"kafka"`, ...). So adding Pub/Sub to a comparison does not change a single
//! number of the Kafka run, and every service sees exactly the same messages.

use std::sync::OnceLock;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::time::SimTime;

/// A deterministic random stream (ChaCha8, portable across platforms and releases).
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha8Rng,
    zig: &'static Ziggurat,
}

impl SimRng {
    /// The stream named `label` of the run seeded with `seed`.
    pub fn derive(seed: u64, label: &str) -> SimRng {
        SimRng {
            inner: ChaCha8Rng::seed_from_u64(seed ^ fnv1a(label.as_bytes())),
            zig: Ziggurat::shared(),
        }
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.inner.random::<f64>()
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
        let u = 1.0 - self.unit(); // (0, 1]
        -mean * u.ln()
    }

    /// A standard normal variate, by the ziggurat method (Marsaglia and Tsang, 2000).
    ///
    /// Every latency in a run is a log-normal draw, tens of millions in a long run; Box-Muller
    /// spent a logarithm, a square root and a cosine on each, a third of the simulator's time.
    /// The ziggurat answers about 99% of draws with one random word, one multiplication and one
    /// comparison; the rest go through the exact wedge or tail test, so the distribution is
    /// the normal one, not an approximation.
    pub fn normal(&mut self) -> f64 {
        let z = self.zig;
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
        SimTime::from_micros((dist.median_us * (dist.sigma * z).exp()) as u64)
    }

    /// `base` stretched by a uniform jitter of ±`fraction`.
    pub fn jitter(&mut self, base: SimTime, fraction: f64) -> SimTime {
        let f = 1.0 + fraction * (2.0 * self.unit() - 1.0);
        SimTime::from_micros((base.as_micros() as f64 * f.max(0.0)) as u64)
    }
}

/// Layers of the normal ziggurat: a power of two, so one random word picks the layer.
const ZIG_LAYERS: usize = 256;
/// Where the base layer's tail begins, for 256 layers (Marsaglia and Tsang, 2000).
const ZIG_R: f64 = 3.654_152_885_361_009;
/// The area of every layer under `exp(-x²/2)`, for 256 layers.
const ZIG_V: f64 = 0.004_928_673_233_99;

/// The layers of the ziggurat under the (unnormalized) half-normal density `f(x) = exp(-x²/2)`:
/// layer `i` is the rectangle `[0, x[i]] × [f(x[i]), f(x[i+1])]`, every one of area `ZIG_V`;
/// layer 0 is the base `[0, x[0]] × [0, f(R)]`, whose part beyond `R` stands for the tail.
#[derive(Debug)]
struct Ziggurat {
    x: [f64; ZIG_LAYERS + 1],
    f: [f64; ZIG_LAYERS + 1],
}

impl Ziggurat {
    fn build() -> Ziggurat {
        let f = |x: f64| (-0.5 * x * x).exp();
        let mut x = [0.0; ZIG_LAYERS + 1];
        x[0] = ZIG_V / f(ZIG_R);
        x[1] = ZIG_R;
        for i in 2..ZIG_LAYERS {
            // The next layer up has the same area: x[i-1] × (f(x[i]) − f(x[i-1])) = V.
            let y = ZIG_V / x[i - 1] + f(x[i - 1]);
            x[i] = (-2.0 * y.ln()).max(0.0).sqrt();
        }
        x[ZIG_LAYERS] = 0.0;
        let mut fx = [0.0; ZIG_LAYERS + 1];
        for (fi, xi) in fx.iter_mut().zip(&x) {
            *fi = f(*xi);
        }
        Ziggurat { x, f: fx }
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
        // The base: the rectangle up to R plus the tail beyond it.
        assert!((z.x[0] * z.f[1] - ZIG_V).abs() < 1e-12);
        for i in 1..ZIG_LAYERS {
            let area = z.x[i] * (z.f[i + 1] - z.f[i]);
            assert!((area - ZIG_V).abs() < 1e-6 * ZIG_V, "layer {i}: {area}");
            assert!(z.x[i + 1] < z.x[i]);
        }
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
