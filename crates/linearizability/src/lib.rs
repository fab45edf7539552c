//! kvraft-linearizability: decides whether a recorded concurrent history of key/value calls is
//! linearizable, in the style of the porcupine checker.
//!
//! A history is linearizable if its operations can be put in one sequential order that (a) keeps
//! every operation that returned before another was invoked ahead of it, and (b) is legal for the
//! sequential object, e.g. every `Get` returns the value left by the writes ordered before it.
//! The simulator records each client call with its invocation and response times and asks
//! [`check_kv`]; a violation comes back as an [`IllegalReport`] whose `Display` explains it.
//!
//! How the parts fit:
//! - [`model`]: the generic layer, an operation record [`Op`] and the [`Model`] trait (a
//!   sequential specification with an optional partition into independent sub-histories, and
//!   optional hints that let the search skip hopeless or redundant configurations).
//! - [`kv_model`]: [`KvModel`], the key/value store as a `Model` on real strings, partitioned
//!   per key, and the [`Operation`] / [`KvInput`] types the simulator fills in.
//! - [`checker`]: [`check_operations`], which checks each partition in turn under one shared
//!   step budget; `search` (private) is the per-partition search, Wing & Gong's backtracking
//!   with Lowe's memoisation, working on the time-ordered event list of `entries` and the
//!   linearized-set `bitset`. The memo cache keeps two 64-bit fingerprints per configuration
//!   (`fingerprint`), never copies of states.
//! - [`report`]: [`CheckResult`] and [`IllegalReport`]; `kv_check` glues the KV model to them.
//!   It runs the search on `kv_hashed`, the same model with each value represented by a
//!   rolling hash and its length (O(1) steps and 16-byte states however long values grow),
//!   replays every linearization found on real strings before answering `Ok`, and builds
//!   reports from real strings too.
//! - [`history`]: the checks a test runs on a finished history, shared by the simulator and
//!   the real-process tests: [`assert_linearizable`] and [`assert_appends_once`] (every
//!   acknowledged append present exactly once in its key's final value).
//!
//! Costs, on the simulator's histories (a few clients per key, append-only keys whose values
//! grow to tens of KB, calls hanging for seconds while a server is down): one to two search
//! steps per operation and a memo cache of a few hundred to a few thousand entries per key.
//!
//! Determinism: effort is bounded by a count of search steps, not by a clock, so a given history
//! and budget always yield the same verdict and the same step count. When the budget runs out
//! the answer is [`CheckResult::Unknown`], never a guess.
//!
//! ```
//! use kvraft_linearizability::{check_kv, CheckResult, Operation};
//!
//! let history = vec![
//!     Operation::put(1, "x", "a", 0, 10),
//!     Operation::get(2, "x", "a", 5, 15), // overlaps the put, so it may see it...
//!     Operation::get(3, "x", "", 5, 15),  // ...or not
//! ];
//! assert_eq!(check_kv(&history, 100_000), CheckResult::Ok);
//!
//! let stale = vec![Operation::put(1, "x", "a", 0, 10), Operation::get(2, "x", "", 20, 30)];
//! match check_kv(&stale, 100_000) {
//!     CheckResult::Illegal(report) => assert_eq!(report.key, "x"), // `println!("{report}")`
//!     other => panic!("{other}"),
//! }
//! ```
//!
//! Recording tips: times may be in any increasing unit, and intervals are closed, so an
//! operation returning at `t` overlaps one invoked at `t`. A write whose reply never came may be
//! recorded with `ret = u64::MAX` (it may or may not have taken effect); a read whose reply never
//! came should be left out.

// The sans-IO core: no wall clock, no sleeping, no ambient randomness, no hash-map iteration
// order (the lists are in clippy.toml). Denied here, so that a violation fails clippy outright.
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod bitset;
pub mod checker;
mod entries;
mod fingerprint;
pub mod history;
mod kv_check;
mod kv_hashed;
pub mod kv_model;
pub mod model;
pub mod report;
mod search;

pub use checker::{check_operations, Failure, Stats, Verdict};
pub use history::{assert_appends_once, assert_linearizable};
pub use kv_check::{check_kv, check_kv_with_stats};
pub use kv_model::{KvInput, KvModel, Operation};
pub use model::{Model, Op};
pub use report::{CheckResult, IllegalReport};
