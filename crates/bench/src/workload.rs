//! What the clients do: which operation, on which key, with which value. Every client draws
//! from its own deterministic random stream, so a run is reproducible given `--seed`.

use std::sync::Arc;

use crate::options::{KeyDist, Workload};

/// One operation of the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Put,
    Append,
    Get,
}

/// A small, fast pseudo-random generator (xorshift64*), seeded through splitmix64 so that
/// neighbouring seeds give unrelated streams. Not for cryptography.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // One splitmix64 step; never zero (xorshift's fixed point).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n) (n > 0), by multiply-shift (bias below 2^-32 for n < 2^32).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Draws key indices in [0, keys).
#[derive(Clone, Debug)]
pub enum KeyChooser {
    Uniform {
        keys: u64,
    },
    /// Zipfian: index i (rank i + 1) has weight 1/(i+1)^theta, so index 0 is the most
    /// frequent. Sampled exactly, by binary search in the cumulative weights (shared by the
    /// clones).
    Zipfian {
        cumulative: Arc<[f64]>,
    },
}

impl KeyChooser {
    /// Zipfian setup costs O(keys) time and memory; build one chooser and clone it for each
    /// client.
    pub fn new(keys: u64, dist: KeyDist) -> KeyChooser {
        assert!(keys > 0, "an empty key space");
        match dist {
            KeyDist::Uniform => KeyChooser::Uniform { keys },
            KeyDist::Zipfian { theta } => {
                let mut total = 0.0;
                let cumulative = (1..=keys)
                    .map(|rank| {
                        total += 1.0 / (rank as f64).powf(theta);
                        total
                    })
                    .collect();
                KeyChooser::Zipfian { cumulative }
            }
        }
    }

    pub fn next(&self, rng: &mut Rng) -> u64 {
        match self {
            KeyChooser::Uniform { keys } => rng.below(*keys),
            KeyChooser::Zipfian { cumulative } => {
                let total = cumulative[cumulative.len() - 1];
                let target = rng.next_f64() * total;
                let index = cumulative.partition_point(|&c| c <= target);
                index.min(cumulative.len() - 1) as u64
            }
        }
    }
}

/// The name of key `index`: fixed width, so every key has the same size on both systems.
pub fn key_name(index: u64) -> String {
    format!("bench/{index:010}")
}

/// A value of `size` ASCII bytes, varied by `salt` so that values are not all alike.
pub fn make_value(size: usize, salt: u64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = Rng::new(salt);
    let mut bits = 0u64;
    (0..size)
        .map(|i| {
            if i % 10 == 0 {
                bits = rng.next_u64();
            }
            let c = ALPHABET[(bits & 63) as usize] as char;
            bits >>= 6;
            c
        })
        .collect()
}

/// Distinct values of a run: key (or operation) `i` gets value `i mod VALUE_POOL` of the pool.
const VALUE_POOL: u64 = 64;

/// The values a run writes: a pool of distinct values of one size, made from a seed. Cheap to
/// clone (clones share the pool).
#[derive(Clone, Debug)]
pub struct Values {
    pool: Arc<Vec<String>>,
}

impl Values {
    pub fn new(value_size: usize, seed: u64) -> Values {
        Values {
            pool: Arc::new(
                (0..VALUE_POOL).map(|i| make_value(value_size, seed ^ (i << 32))).collect(),
            ),
        }
    }

    /// Value `i` of the pool (cycling): what key `i` holds after a sweep, whatever else was
    /// written to it by the sweeps before.
    pub fn of(&self, i: u64) -> &str {
        &self.pool[(i % VALUE_POOL) as usize]
    }
}

/// Everything one client needs to draw its operations.
#[derive(Clone, Debug)]
pub struct OpSource {
    workload: Workload,
    keys: KeyChooser,
    rng: Rng,
}

impl OpSource {
    pub fn new(workload: Workload, keys: KeyChooser, seed: u64) -> OpSource {
        OpSource { workload, keys, rng: Rng::new(seed) }
    }

    /// The next operation and its key index.
    pub fn next_op(&mut self) -> (OpKind, u64) {
        let kind = match self.workload {
            Workload::Put => OpKind::Put,
            Workload::Append => OpKind::Append,
            Workload::Get => OpKind::Get,
            Workload::Mixed { read_percent } => {
                if self.rng.next_f64() * 100.0 < read_percent {
                    OpKind::Get
                } else {
                    OpKind::Put
                }
            }
        };
        (kind, self.keys.next(&mut self.rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..5).scan(Rng::new(7), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..5).scan(Rng::new(7), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..5).scan(Rng::new(8), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut r = Rng::new(0);
        for _ in 0..10_000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(3) < 3);
        }
    }

    #[test]
    fn uniform_keys_cover_the_space_evenly() {
        let chooser = KeyChooser::new(10, KeyDist::Uniform);
        let mut rng = Rng::new(1);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[chooser.next(&mut rng) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
    }

    #[test]
    fn zipfian_keys_follow_the_power_law() {
        let theta = 0.99;
        let n = 1000u64;
        let chooser = KeyChooser::new(n, KeyDist::Zipfian { theta });
        let mut rng = Rng::new(3);
        let draws = 400_000;
        let mut counts = vec![0u32; n as usize];
        for _ in 0..draws {
            counts[chooser.next(&mut rng) as usize] += 1;
        }
        let zeta_n: f64 = (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum();
        for rank in [0usize, 1, 2, 9, 99] {
            let expected = draws as f64 / ((rank + 1) as f64).powf(theta) / zeta_n;
            let got = f64::from(counts[rank]);
            assert!((got - expected).abs() < 0.1 * expected, "rank {rank}: {got} vs {expected}");
        }
        // The tail is reached too.
        assert!(counts[500..].iter().any(|&c| c > 0));
        // Degenerate key spaces.
        for n in [1u64, 2] {
            let c = KeyChooser::new(n, KeyDist::Zipfian { theta });
            assert!((0..1000).all(|_| c.next(&mut rng) < n));
        }
    }

    #[test]
    fn keys_and_values_have_fixed_sizes() {
        assert_eq!(key_name(42), "bench/0000000042");
        assert_eq!(key_name(0).len(), key_name(9_999_999_999).len());
        let v = make_value(256, 1);
        assert_eq!(v.len(), 256);
        assert!(v.is_ascii());
        assert_ne!(v, make_value(256, 2));
        assert_eq!(make_value(0, 1), "");
    }

    #[test]
    fn values_are_known_per_key() {
        let values = Values::new(100, 7);
        for k in [0, 1, 63, 64, 999_999] {
            assert_eq!(values.of(k), Values::new(100, 7).of(k));
            assert_eq!(values.of(k).len(), 100);
        }
        assert_ne!(values.of(0), values.of(1));
        assert_eq!(values.of(0), values.of(64));
    }

    #[test]
    fn mixed_workloads_read_at_the_given_rate() {
        let keys = KeyChooser::new(5, KeyDist::Uniform);
        let mut source = OpSource::new(Workload::Mixed { read_percent: 90.0 }, keys.clone(), 1);
        let gets = (0..10_000).filter(|_| source.next_op().0 == OpKind::Get).count();
        assert!((8_700..9_300).contains(&gets), "{gets}");
        let mut source = OpSource::new(Workload::Append, keys, 1);
        assert_eq!(source.next_op().0, OpKind::Append);
    }
}
