//! Loading the cluster: every key written once by many concurrent clients, then (to settle)
//! keys overwritten with the same values until the caller says stop.
//!
//! The clients are the bench's kvraft clients: one client-library [`Client`] with its own
//! session per bench client, over shared [`Connections`] (client `i` on set `i mod M`, as the
//! bench's kvraft driver does); the key names and values are the bench's too ([`key_name`],
//! [`make_value`]). The value of key `k` is always [`Values::of`]`(k)`, in the
//! load and in the overwrites, so what a node must hold is known whatever it has applied.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvraft_client::{Client, ClientOptions, Connections};

use crate::workload::{key_name, make_value};

/// Distinct values: key `k` gets value `k mod VALUE_POOL` of the pool.
const VALUE_POOL: u64 = 64;
/// Distinct error messages kept.
const ERROR_SAMPLES: usize = 8;
/// Pause after a failed put, so that a refusal does not become a busy loop.
const ERROR_PAUSE: Duration = Duration::from_millis(20);

/// The values of a run: key `k` holds `values.of(k)`.
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

    /// The value of key `k`.
    pub fn of(&self, k: u64) -> &str {
        &self.pool[(k % VALUE_POOL) as usize]
    }
}

/// What a load did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Puts acknowledged.
    pub ok: u64,
    /// Puts that failed (after the client library's own retries).
    pub errors: u64,
    pub elapsed: Duration,
    pub error_samples: Vec<(String, u64)>,
}

/// The clients of a load, reused by the next one.
#[derive(Debug)]
pub struct Loader {
    options: ClientOptions,
    connections: Vec<Connections>,
    clients: usize,
    values: Values,
}

#[derive(Debug, Default)]
struct Shared {
    next: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    stop: Arc<AtomicBool>,
    samples: Mutex<Vec<(String, u64)>>,
}

impl Shared {
    fn note_error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = samples.iter_mut().find(|(m, _)| *m == message) {
            entry.1 += 1;
        } else if samples.len() < ERROR_SAMPLES {
            samples.push((message, 1));
        }
    }
}

impl Loader {
    pub fn new(
        endpoints: &[String],
        clients: usize,
        connections: usize,
        values: Values,
    ) -> Result<Loader, String> {
        let options = ClientOptions {
            call_timeout: Duration::from_secs(5),
            op_timeout: Some(Duration::from_secs(60)),
            ..ClientOptions::new(endpoints.iter().cloned())
        };
        let connections = (0..connections.max(1))
            .map(|_| Connections::new(&options))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        Ok(Loader { options, connections, clients, values })
    }

    /// Writes keys `0..keys` once each, the clients sharing the work; `progress` is called
    /// about every `every` with the puts done so far.
    pub async fn load(&self, keys: u64, every: Duration, progress: impl Fn(u64)) -> Outcome {
        self.run(Some(keys), keys, every, progress, Arc::new(AtomicBool::new(false))).await
    }

    /// Overwrites keys `0, 1, ...` (cycling through `0..keys`) with their own values until
    /// `stop` is set; `progress` is called about every `every` with the puts done so far.
    pub async fn overwrite_until(
        &self,
        keys: u64,
        every: Duration,
        progress: impl Fn(u64),
        stop: Arc<AtomicBool>,
    ) -> Outcome {
        self.run(None, keys, every, progress, stop).await
    }

    async fn run(
        &self,
        total: Option<u64>,
        keys: u64,
        every: Duration,
        progress: impl Fn(u64),
        stop: Arc<AtomicBool>,
    ) -> Outcome {
        let started = Instant::now();
        let shared = Arc::new(Shared { stop, ..Shared::default() });
        let tasks: Vec<_> = (0..self.clients)
            .map(|index| {
                let connections = &self.connections[index % self.connections.len()];
                let client = Client::over(connections, &self.options);
                tokio::spawn(client_loop(client, total, keys, self.values.clone(), shared.clone()))
            })
            .collect();
        let all_done = async {
            for task in tasks {
                if let Err(e) = task.await {
                    if e.is_panic() {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            }
        };
        tokio::pin!(all_done);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                () = &mut all_done => break,
                _ = ticks.tick() => {
                    progress(shared.ok.load(Ordering::Relaxed) + shared.errors.load(Ordering::Relaxed));
                }
            }
        }
        let error_samples = shared.samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Outcome {
            ok: shared.ok.load(Ordering::Relaxed),
            errors: shared.errors.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
            error_samples,
        }
    }
}

/// One client: takes the next key number until `total` (if any) is reached or `stop` is set.
async fn client_loop(
    mut client: Client,
    total: Option<u64>,
    keys: u64,
    values: Values,
    shared: Arc<Shared>,
) {
    while !shared.stop.load(Ordering::Relaxed) {
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        if total.is_some_and(|t| n >= t) {
            break;
        }
        let k = n % keys;
        match client.put(key_name(k), values.of(k)).await {
            Ok(()) => {
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                shared.note_error(e.to_string());
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
