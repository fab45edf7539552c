//! What the clients do: which operation, on which key, with which value. Every client draws
//! from its own deterministic random stream (the workspace's one PRNG, [`DetRng`]), so a run's
//! choices are reproducible given `--seed`.

use std::sync::Arc;

use kvraft_raft::DetRng;

use crate::options::{KeyDist, Workload};

/// One operation of the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Put,
    Append,
    Get,
}

/// Uniform in [0, 1): the top 53 bits of the next number, as many as an `f64` holds exactly.
fn unit(rng: &mut DetRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
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

    pub fn next(&self, rng: &mut DetRng) -> u64 {
        match self {
            KeyChooser::Uniform { keys } => rng.below(*keys),
            KeyChooser::Zipfian { cumulative } => {
                let total = cumulative[cumulative.len() - 1];
                let target = unit(rng) * total;
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
    let mut rng = DetRng::new(salt);
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
    rng: DetRng,
}

impl OpSource {
    pub fn new(workload: Workload, keys: KeyChooser, seed: u64) -> OpSource {
        OpSource { workload, keys, rng: DetRng::new(seed) }
    }

    /// The next operation and its key index.
    pub fn next_op(&mut self) -> (OpKind, u64) {
        let kind = match self.workload {
            Workload::Put => OpKind::Put,
            Workload::Append => OpKind::Append,
            Workload::Get => OpKind::Get,
            Workload::Mixed { read_percent } => {
                if unit(&mut self.rng) * 100.0 < read_percent {
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
    fn units_stay_in_range() {
        let mut r = DetRng::new(0);
        let draws: Vec<f64> = (0..10_000).map(|_| unit(&mut r)).collect();
        assert!(draws.iter().all(|f| (0.0..1.0).contains(f)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }

    #[test]
    fn uniform_keys_cover_the_space_evenly() {
        let chooser = KeyChooser::new(10, KeyDist::Uniform);
        let mut rng = DetRng::new(1);
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
        let mut rng = DetRng::new(3);
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
