//! The simulator's configuration, read from the environment in one place.
//!
//! Everything that shapes a run or its output is a field of [`SimOptions`]; nothing else in the
//! simulator reads the environment. The options are printed next to the seed wherever a run is
//! reported (failures, the sweep's header), so that a report says everything needed to replay
//! it, as TigerBeetle's `SEED=` header does.
//!
//! | variable | field | meaning |
//! |---|---|---|
//! | `SIM_SEED` | `seed` | the seed a `cargo test` lab wrapper runs (default 1) |
//! | `SIM_EXTRA_SEED` | `extra_seed` | one more seed per wrapper: a number, `off`, or unset for a fresh one (none when `SIM_SEED` is set) |
//! | `SIM_STORAGE` | `storage` | `wal` (default): the real WAL on a simulated disk; `mem`: the in-memory store |
//! | `SIM_TRACE` | `trace` | set and not `0`: print every event |
//! | `SIM_VERBOSE` | `verbose` | set: print why servers stop (disk failures) |
//! | `SIM_QUIET` | `quiet` | set: do not print the lab's per-test figures |
//! | `SIM_DUMP_HISTORY` | `dump_history` | a file to write a KV test's client history to |

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The seed a lab wrapper runs when `SIM_SEED` is not set.
pub const DEFAULT_SEED: u64 = 1;

/// Where simulated servers persist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageKind {
    /// The real write-ahead log on a simulated disk that loses unsynced writes in a crash.
    #[default]
    Wal,
    /// The in-memory store with the lab persister's semantics.
    Mem,
}

/// The seed a lab wrapper runs besides its main one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtraSeed {
    /// A seed drawn from the clock, different every run (unless `SIM_SEED` is set).
    #[default]
    Fresh,
    /// This seed.
    Fixed(u64),
    /// None.
    Off,
}

/// Everything from the environment that shapes a simulated run (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimOptions {
    pub seed: Option<u64>,
    pub extra_seed: ExtraSeed,
    pub storage: StorageKind,
    pub trace: bool,
    pub verbose: bool,
    pub quiet: bool,
    pub dump_history: Option<PathBuf>,
}

/// Why a wrapper runs a seed, for its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedOrigin {
    Default,
    SimSeed,
    SimExtraSeed,
    Fresh,
}

impl fmt::Display for SeedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SeedOrigin::Default => "the default seed",
            SeedOrigin::SimSeed => "from SIM_SEED",
            SeedOrigin::SimExtraSeed => "from SIM_EXTRA_SEED",
            SeedOrigin::Fresh => "a fresh seed; SIM_EXTRA_SEED=off skips it",
        })
    }
}

impl SimOptions {
    /// Reads the environment. Panics on a value it cannot use, naming the variable.
    pub fn from_env() -> SimOptions {
        let var = |name: &str| std::env::var_os(name);
        let text = |name: &str| {
            var(name).map(|v| {
                v.into_string().unwrap_or_else(|v| panic!("{name} must be UTF-8, got {v:?}"))
            })
        };
        let number = |name: &str, s: &str| {
            s.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{name} must be an unsigned integer, got {s:?}"))
        };
        SimOptions {
            seed: text("SIM_SEED").map(|s| number("SIM_SEED", &s)),
            extra_seed: match text("SIM_EXTRA_SEED").as_deref() {
                None => ExtraSeed::Fresh,
                Some("off") => ExtraSeed::Off,
                Some(s) => ExtraSeed::Fixed(number("SIM_EXTRA_SEED (or off)", s)),
            },
            storage: match text("SIM_STORAGE").as_deref() {
                None | Some("wal") => StorageKind::Wal,
                Some("mem") => StorageKind::Mem,
                Some(other) => panic!("SIM_STORAGE must be wal or mem, not {other:?}"),
            },
            trace: var("SIM_TRACE").is_some_and(|v| v != "0"),
            verbose: var("SIM_VERBOSE").is_some(),
            quiet: var("SIM_QUIET").is_some(),
            dump_history: var("SIM_DUMP_HISTORY").map(PathBuf::from),
        }
    }

    /// The environment's options, read once per process.
    pub fn from_process_env() -> &'static SimOptions {
        static FROM_ENV: OnceLock<SimOptions> = OnceLock::new();
        FROM_ENV.get_or_init(SimOptions::from_env)
    }

    /// The seeds a lab wrapper runs for `test`: the main one, then the extra one, if any.
    pub fn wrapper_seeds(&self, test: &str) -> Vec<(u64, SeedOrigin)> {
        let mut seeds = vec![match self.seed {
            Some(seed) => (seed, SeedOrigin::SimSeed),
            None => (DEFAULT_SEED, SeedOrigin::Default),
        }];
        match self.extra_seed {
            ExtraSeed::Fixed(seed) => seeds.push((seed, SeedOrigin::SimExtraSeed)),
            // Reproducing a failure (SIM_SEED) runs that seed alone.
            ExtraSeed::Fresh if self.seed.is_none() => {
                seeds.push((fresh_seed(test), SeedOrigin::Fresh))
            }
            ExtraSeed::Fresh | ExtraSeed::Off => {}
        }
        seeds
    }

    /// The environment assignments a reproduce command needs besides `SIM_SEED`: those that
    /// change what a seed does (the others only change what is printed).
    pub fn reproduce_env(&self) -> String {
        match self.storage {
            StorageKind::Wal => String::new(),
            StorageKind::Mem => "SIM_STORAGE=mem ".to_string(),
        }
    }
}

/// Everything but the seeds, as a report's header shows it next to the seed.
impl fmt::Display for SimOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "storage={} trace={} verbose={} quiet={}",
            match self.storage {
                StorageKind::Wal => "wal",
                StorageKind::Mem => "mem",
            },
            on(self.trace),
            on(self.verbose),
            on(self.quiet)
        )?;
        if let Some(path) = &self.dump_history {
            write!(f, " dump-history={}", path.display())?;
        }
        Ok(())
    }
}

/// A seed no earlier run is likely to have used: the clock's nanoseconds mixed with the test's
/// name (wrappers run in parallel), kept below 10^9 so that commands stay short.
fn fresh_seed(test: &str) -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ crate::trace::hash_bytes(test.as_bytes());
    // splitmix64's finaliser: nearby clock readings give unrelated seeds.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    1 + x % 999_999_999
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapper_runs_the_default_seed_and_a_fresh_one_unless_told_otherwise() {
        let options = SimOptions::default();
        let seeds = options.wrapper_seeds("t");
        assert_eq!(seeds[0], (DEFAULT_SEED, SeedOrigin::Default));
        assert_eq!(seeds[1].1, SeedOrigin::Fresh);
        assert!((1..1_000_000_000).contains(&seeds[1].0));

        let reproducing = SimOptions { seed: Some(7), ..SimOptions::default() };
        assert_eq!(reproducing.wrapper_seeds("t"), vec![(7, SeedOrigin::SimSeed)]);

        let fixed = SimOptions { extra_seed: ExtraSeed::Fixed(9), ..reproducing.clone() };
        assert_eq!(fixed.wrapper_seeds("t")[1], (9, SeedOrigin::SimExtraSeed));

        let off = SimOptions { extra_seed: ExtraSeed::Off, ..SimOptions::default() };
        assert_eq!(off.wrapper_seeds("t").len(), 1);
    }
}
