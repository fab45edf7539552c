//! Loading the cluster: every key written once by many concurrent clients, then (to settle)
//! keys overwritten with the same values until the caller says stop.
//!
//! Both are sweeps of the bench's own closed loop ([`runner::sweep`]) with its kvraft driver:
//! one client-library `Client` with its own session per bench client, over shared connection
//! sets (client `i` on set `i mod M`); the key names and values are the bench's too. The value
//! of key `k` is always [`Values::of`]`(k)`, in the load and in the overwrites, so what a node
//! must hold is known whatever it has applied.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use kvraft_client::Transport;

use crate::kvraft_driver::KvraftDriver;
use crate::options::ReadFrom;
use crate::runner::{self, Sweep, SweepOutcome};
use crate::workload::Values;

/// Limit for one attempt at one server.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Limit for one put, retries included: generous, as a put that fails is not written.
const OP_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause after a failed put, so that a refusal does not become a busy loop.
const ERROR_PAUSE: Duration = Duration::from_millis(20);

/// The clients of a load, reused by the next one (each sweep opens new sessions on the same
/// connections).
#[derive(Debug)]
pub struct Loader {
    driver: KvraftDriver,
    clients: usize,
    values: Values,
}

impl Loader {
    pub fn new(
        endpoints: &[String],
        clients: usize,
        connections: usize,
        values: Values,
    ) -> Result<Loader, String> {
        let driver = KvraftDriver::new(
            endpoints,
            connections,
            CALL_TIMEOUT,
            OP_TIMEOUT,
            ReadFrom::Leader,
            Transport::default(),
        )?;
        Ok(Loader { driver, clients, values })
    }

    /// Writes keys `0..keys` once each, the clients sharing the work; `progress` is called
    /// about every `every` with the puts done so far.
    pub async fn load(&self, keys: u64, every: Duration, progress: impl Fn(u64)) -> SweepOutcome {
        self.sweep(Sweep::once(keys), every, progress).await
    }

    /// Overwrites keys `0, 1, ...` (cycling through `0..keys`) with their own values until
    /// `stop` is set; `progress` is called about every `every` with the puts done so far.
    pub async fn overwrite_until(
        &self,
        keys: u64,
        every: Duration,
        progress: impl Fn(u64),
        stop: Arc<AtomicBool>,
    ) -> SweepOutcome {
        self.sweep(Sweep::cycling_until(keys, stop), every, progress).await
    }

    async fn sweep(&self, sweep: Sweep, every: Duration, progress: impl Fn(u64)) -> SweepOutcome {
        let values = &self.values;
        runner::sweep(&self.driver, self.clients, values, sweep, ERROR_PAUSE, every, progress).await
    }
}
