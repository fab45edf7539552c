//! Running lab tests under seeds: from `cargo test` (the default seed or `SIM_SEED`, plus a
//! fresh seed per run) or from the sweep. Every failure names its seed and options, and a
//! one-line command that reproduces it.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

use crate::lab::{find_test, LabTest};
use crate::options::SimOptions;
use crate::run::RunReport;

/// A failed run: the panic message and how to reproduce it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub test: String,
    pub seed: u64,
    pub options: SimOptions,
    pub message: String,
}

impl Failure {
    pub fn reproduce_command(&self) -> String {
        reproduce_command(&self.test, self.seed, &self.options)
    }
}

/// The one-line command that runs `test` under `seed` alone, with the planted bugs of this build
/// and the options that change what a seed does.
pub fn reproduce_command(test: &str, seed: u64, options: &SimOptions) -> String {
    let features: String =
        crate::planted_bugs().iter().map(|bug| format!(" --features {bug}")).collect();
    let target = find_test(test).map_or("raft", |t| t.suite.test_target());
    format!(
        "SIM_SEED={seed} {}cargo test --release -p kvraft-sim{features} --test {target} -- --exact {test}",
        options.reproduce_env()
    )
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

/// Runs a test under a seed and options, turning a panic into a `Failure`.
pub fn run_catching(test: &LabTest, seed: u64, options: &SimOptions) -> Result<RunReport, Failure> {
    panic::catch_unwind(AssertUnwindSafe(|| (test.run)(seed, options))).map_err(|payload| {
        let message = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".to_string())
        });
        Failure { test: test.name.to_string(), seed, options: options.clone(), message }
    })
}

/// Entry point of the `cargo test` wrappers: runs the named test under the seeds the
/// environment asks for (`SimOptions::wrapper_seeds`: the default seed or `SIM_SEED`, and a
/// fresh one unless told otherwise). Each seed is announced with the options before it runs
/// (the test harness shows it on failure, or with `--nocapture`); a failure prints its seed,
/// options and reproduce command, then fails the test.
pub fn run_test_from_env(name: &str) {
    let test = find_test(name).unwrap_or_else(|| panic!("no lab test named {name}"));
    let options = SimOptions::from_process_env();
    for (seed, origin) in options.wrapper_seeds(name) {
        eprintln!("{name}: seed {seed} ({origin}), {options}");
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| (test.run)(seed, options)));
        if let Err(payload) = outcome {
            eprintln!(
                "FAILED {name} with seed {seed} ({origin}), {options}\n  reproduce: {}",
                reproduce_command(name, seed, options)
            );
            panic::resume_unwind(payload);
        }
    }
}
