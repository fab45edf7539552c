//! Running lab tests under a seed: from `cargo test` (honouring `SIM_SEED`) or from the sweep.
//! Every failure names its seed and a one-line command that reproduces it.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

use crate::lab::{find_test, LabTest};
use crate::run::RunReport;

/// The seed a test runs under when `SIM_SEED` is not set.
pub const DEFAULT_SEED: u64 = 1;

/// A failed run: the panic message and how to reproduce it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub test: String,
    pub seed: u64,
    pub message: String,
}

impl Failure {
    pub fn reproduce_command(&self) -> String {
        reproduce_command(&self.test, self.seed)
    }
}

pub fn reproduce_command(test: &str, seed: u64) -> String {
    let features: String =
        crate::planted_bugs().iter().map(|bug| format!(" --features {bug}")).collect();
    let target = find_test(test).map_or("raft", |t| t.suite.name());
    format!("SIM_SEED={seed} cargo test --release -p kvraft-sim{features} --test {target} -- --exact {test}")
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs a panic hook that records messages for `run_catching` instead of printing them
/// (the sweep runs thousands of tests and reports failures itself).
pub fn install_quiet_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".to_string());
        let location =
            info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{location}")));
    }));
}

/// Runs a test under a seed, turning a panic into a `Failure`.
pub fn run_catching(test: &LabTest, seed: u64) -> Result<RunReport, Failure> {
    panic::catch_unwind(AssertUnwindSafe(|| (test.run)(seed))).map_err(|payload| {
        let message = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".to_string())
        });
        Failure { test: test.name.to_string(), seed, message }
    })
}

/// The seed from `SIM_SEED`, or the default.
pub fn seed_from_env() -> u64 {
    match std::env::var("SIM_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("SIM_SEED must be an unsigned integer, got {s:?}")),
        Err(_) => DEFAULT_SEED,
    }
}

/// Entry point of the `cargo test` wrappers: runs the named test under `SIM_SEED` (or the
/// default seed); on failure prints the seed and the reproduce command, then fails.
pub fn run_test_from_env(name: &str) {
    let test = find_test(name).unwrap_or_else(|| panic!("no lab test named {name}"));
    let seed = seed_from_env();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| (test.run)(seed)));
    if let Err(payload) = outcome {
        eprintln!("FAILED {name} with seed {seed}\n  reproduce: {}", reproduce_command(name, seed));
        panic::resume_unwind(payload);
    }
}
