//! Runs whole lab suites over ranges of seeds.
//!
//! `sweep --suite raft|kv|swarm|membership|membership-figures --seeds 1000..1100 [--test NAME]... [--jobs N] [--stats] [--census] [--expect-failure]`
//!
//! Prints each failure with its reproduce command, then `N passed, M failed` (one count per
//! test and seed). Exits non-zero on any failure, or, with `--expect-failure` (used to prove
//! that a planted bug is caught), if nothing failed. `--census` prints, per test, how often the
//! passing runs created the scenarios `kvraft_sim::census` counts (e.g. Figure 8's leader that
//! dies with a sent, uncommitted entry of its term).

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use kvraft_sim::census::LeaderCrashCensus;
use kvraft_sim::lab::{LabTest, Suite};
use kvraft_sim::membership::swarm::MembershipParams;
use kvraft_sim::options::SimOptions;
use kvraft_sim::run::RunReport;
use kvraft_sim::runner::{install_quiet_panic_hook, run_catching, Failure};
use kvraft_sim::swarm::SwarmParams;

struct Options {
    seeds: std::ops::Range<u64>,
    tests: Vec<&'static LabTest>,
    jobs: usize,
    stats: bool,
    census: bool,
    expect_failure: bool,
}

fn usage(problem: &str) -> ! {
    eprintln!("sweep: {problem}");
    eprintln!(
        "usage: sweep --suite raft|kv|swarm|membership|membership-figures --seeds A..B [--test NAME]... [--jobs N] [--stats] [--census] [--expect-failure]"
    );
    std::process::exit(2);
}

fn parse_args() -> Options {
    let mut args = std::env::args().skip(1);
    let mut suite: Option<String> = None;
    let mut seeds = None;
    let mut names = Vec::new();
    let mut jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut stats, mut census, mut expect_failure) = (false, false, false);
    while let Some(arg) = args.next() {
        let mut value =
            |flag: &str| args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match arg.as_str() {
            "--suite" => suite = Some(value("--suite")),
            "--seeds" => {
                let v = value("--seeds");
                let (a, b) = v.split_once("..").unwrap_or_else(|| usage("--seeds takes A..B"));
                let parse = |s: &str| {
                    s.parse::<u64>().unwrap_or_else(|_| usage(&format!("bad seed {s:?}")))
                };
                let (a, b) = (parse(a), parse(b));
                if a >= b {
                    usage("--seeds A..B needs A < B");
                }
                seeds = Some(a..b);
            }
            "--test" => names.push(value("--test")),
            "--jobs" => {
                jobs = value("--jobs").parse().unwrap_or_else(|_| usage("--jobs takes a number"))
            }
            "--stats" => stats = true,
            "--census" => census = true,
            "--expect-failure" => expect_failure = true,
            "--help" | "-h" => usage("help"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let suite_name = suite.unwrap_or_else(|| usage("--suite is required"));
    let all = kvraft_sim::lab::suite(&suite_name).unwrap_or_else(|| {
        usage(&format!(
            "unknown suite {suite_name:?} (known: raft, kv, swarm, membership, membership-figures)"
        ))
    });
    let tests: Vec<&'static LabTest> = if names.is_empty() {
        all
    } else {
        names
            .iter()
            .map(|n| {
                all.iter()
                    .copied()
                    .find(|t| t.name == n)
                    .unwrap_or_else(|| usage(&format!("no test {n:?} in suite {suite_name}")))
            })
            .collect()
    };
    Options {
        seeds: seeds.unwrap_or_else(|| usage("--seeds is required")),
        tests,
        jobs: jobs.max(1),
        stats,
        census,
        expect_failure,
    }
}

fn main() -> ExitCode {
    let opts = parse_args();
    install_quiet_panic_hook();
    // The sweep reports each failure itself, and no per-test figures.
    let options = SimOptions { quiet: true, ..SimOptions::from_env() };
    let names: Vec<&str> = opts.tests.iter().map(|t| t.name).collect();
    eprintln!(
        "sweep: seeds {}..{} x {} tests ({}), {options}",
        opts.seeds.start,
        opts.seeds.end,
        names.len(),
        if names.len() > 3 { format!("{}, ...", names[..3].join(", ")) } else { names.join(", ") }
    );
    let cases: Vec<(u64, &LabTest)> =
        opts.seeds.clone().flat_map(|seed| opts.tests.iter().map(move |t| (seed, *t))).collect();
    let started = Instant::now();
    let (failures, mut reports) = run_cases(&cases, opts.jobs, &options);
    if opts.stats {
        // The lab's figures: Raft (s, peers, RPCs, bytes, agreements); KV (s, peers, RPCs, ops);
        // then the run's trace hash and event count (two builds that run a seed alike agree).
        reports.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        for (name, seed, r) in &reports {
            println!(
                "{name:<66} seed {seed:>6}  {}  trace {:016x} events {}",
                r.figures.as_deref().unwrap_or("-"),
                r.summary.trace_hash,
                r.summary.events
            );
        }
    }
    if opts.census {
        for test in &opts.tests {
            let mut total = LeaderCrashCensus::default();
            let runs = reports.iter().filter(|r| r.0 == test.name);
            let count = runs.clone().count();
            runs.for_each(|r| total.add(&r.2.summary.census));
            println!("census {} ({count} passing runs): {total}", test.name);
        }
    }
    let passed = cases.len() - failures.len();
    let virtual_s: f64 = reports.iter().map(|r| r.2.summary.virtual_ms as f64 / 1000.0).sum();
    eprintln!(
        "swept {} seeds x {} tests in {:.1} s wall ({:.0} s virtual, {} jobs)",
        opts.seeds.end - opts.seeds.start,
        opts.tests.len(),
        started.elapsed().as_secs_f64(),
        virtual_s,
        opts.jobs
    );
    println!("{passed} passed, {} failed", failures.len());
    let ok = if opts.expect_failure { !failures.is_empty() } else { failures.is_empty() };
    if opts.expect_failure && failures.is_empty() {
        eprintln!("expected a failure (planted bug) but every run passed");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs every (seed, test) case on `jobs` threads; each failure is reported as it happens.
/// Returns the failures and the passing runs' reports.
fn run_cases(
    cases: &[(u64, &LabTest)],
    jobs: usize,
    options: &SimOptions,
) -> (Vec<Failure>, Vec<(String, u64, RunReport)>) {
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<Failure>> = Mutex::new(Vec::new());
    let reports: Mutex<Vec<(String, u64, RunReport)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(seed, test)) = cases.get(i) else { break };
                match run_catching(test, seed, options) {
                    Ok(report) => {
                        reports.lock().expect("reports").push((test.name.to_string(), seed, report))
                    }
                    Err(failure) => {
                        report_failure(test, &failure);
                        failures.lock().expect("failures").push(failure);
                    }
                }
            });
        }
    });
    (failures.into_inner().expect("failures"), reports.into_inner().expect("reports"))
}

/// Prints a failure with its seed, options, scenario (for the swarm) and reproduce command.
fn report_failure(test: &LabTest, failure: &Failure) {
    let params = match test.suite {
        Suite::Swarm => format!("\n  scenario: {}", SwarmParams::derive(failure.seed)),
        Suite::Membership => format!("\n  scenario: {}", MembershipParams::derive(failure.seed)),
        _ => String::new(),
    };
    eprintln!(
        "FAILED {} seed {} ({}): {}{params}\n  reproduce: {}",
        failure.test,
        failure.seed,
        failure.options,
        failure.message,
        failure.reproduce_command()
    );
}
