//! The result of one run: for people (aligned text) or machines (one JSON object).

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::options::{Plan, Stop, Target};
use crate::runner::Measurement;

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// One run, as `--json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub target: String,
    /// kvraft: "frames" or "grpc"; etcd: absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub workload: String,
    pub clients: usize,
    pub connections: usize,
    pub value_size: usize,
    pub keys: u64,
    pub key_dist: String,
    pub endpoints: Vec<String>,
    pub warmup_s: f64,
    /// The measurement window in seconds.
    pub elapsed_s: f64,
    /// Successful measured operations.
    pub ops: u64,
    /// Failed measured operations.
    pub errors: u64,
    /// `ops / elapsed_s`.
    pub throughput: f64,
    /// Latencies of the successful operations, microseconds.
    pub latency_us: Latency,
    /// Keys written before the run (0: no prefill) and how many of those writes failed.
    #[serde(default)]
    pub prefill_keys: u64,
    #[serde(default)]
    pub prefill_errors: u64,
    /// How long the prefill took, seconds.
    #[serde(default)]
    pub prefill_s: f64,
    /// Some error messages with their counts (prefill and warmup included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<(String, u64)>,
}

impl Report {
    pub fn new(plan: &Plan, m: &Measurement) -> Report {
        let ops = m.histogram.len();
        let elapsed_s = m.elapsed.as_secs_f64();
        Report {
            target: plan.target.name().to_string(),
            transport: match plan.target {
                Target::Kvraft => Some(plan.transport.name().to_string()),
                Target::Etcd => None,
            },
            label: plan.label.clone(),
            workload: plan.workload.to_string(),
            clients: plan.clients,
            connections: plan.connections,
            value_size: plan.value_size,
            keys: plan.keys,
            key_dist: plan.key_dist.to_string(),
            endpoints: plan.endpoints.clone(),
            warmup_s: plan.warmup.as_secs_f64(),
            elapsed_s,
            ops,
            errors: m.errors,
            throughput: if elapsed_s > 0.0 { ops as f64 / elapsed_s } else { 0.0 },
            latency_us: Latency::of(&m.histogram),
            prefill_keys: m.prefill.as_ref().map_or(0, |p| p.keys),
            prefill_errors: m.prefill.as_ref().map_or(0, |p| p.errors),
            prefill_s: m.prefill.as_ref().map_or(0.0, |p| p.elapsed.as_secs_f64()),
            error_samples: m.error_samples.clone(),
        }
    }

    /// A readable name for the workload: "put, 64 clients", "linearizable get, 1000 clients
    /// over 100 connections". The label, if the run had one, wins.
    pub fn name(&self) -> String {
        if let Some(label) = &self.label {
            return label.clone();
        }
        describe(&self.workload, self.clients, self.connections)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }

    /// Aligned text for a terminal.
    pub fn to_text(&self, stop: Stop) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "kvraft-bench: {} on {} ({}), {}-byte values, {} keys ({})",
            describe(&self.workload, self.clients, self.connections),
            self.target,
            self.endpoints.join(","),
            self.value_size,
            self.keys,
            self.key_dist,
        );
        if self.prefill_keys > 0 {
            let _ = writeln!(
                out,
                "  prefill     {} keys in {:.2} s, {} errors",
                self.prefill_keys, self.prefill_s, self.prefill_errors
            );
        }
        let window = match stop {
            Stop::After(_) => format!("in {:.2} s", self.elapsed_s),
            Stop::Ops(_) => format!("in {:.2} s (--ops)", self.elapsed_s),
        };
        let _ =
            writeln!(out, "  throughput  {:.0} ops/s ({} ops {window})", self.throughput, self.ops);
        let _ = writeln!(out, "  errors      {}", self.errors);
        let l = &self.latency_us;
        let _ = writeln!(
            out,
            "  latency     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
            ms(l.p50 as f64),
            ms(l.p90 as f64),
            ms(l.p99 as f64),
            ms(l.p999 as f64),
            ms(l.max as f64),
            ms(l.mean)
        );
        for (message, count) in &self.error_samples {
            let _ = writeln!(out, "  error x{count}: {message}");
        }
        out
    }
}

/// "put, 1 client", "linearizable get, 64 clients", "put, 1000 clients over 100 connections".
pub fn describe(workload: &str, clients: usize, connections: usize) -> String {
    let what = match workload {
        "get" => "linearizable get".to_string(),
        w => match w.strip_prefix("mixed:") {
            Some(p) => format!("mixed {p}% linearizable gets"),
            None => w.to_string(),
        },
    };
    let plural = if clients == 1 { "" } else { "s" };
    if connections == clients {
        format!("{what}, {clients} client{plural}")
    } else {
        format!("{what}, {clients} client{plural} over {connections} connections")
    }
}

/// Microseconds as "0.89 ms", "61 ms", "1.2 s", "250 us".
pub fn ms(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.0} us")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us < 1_000_000.0 {
        format!("{:.0} ms", us / 1000.0)
    } else {
        format!("{:.1} s", us / 1_000_000.0)
    }
}

/// 14500 -> "14,500".
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::new_histogram;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = new_histogram();
        for us in 1..=1000u64 {
            h.record(us).unwrap();
        }
        let l = Latency::of(&h);
        assert_eq!((l.p50, l.p90, l.p99, l.p999, l.max), (500, 900, 990, 999, 1000));
        assert!((l.mean - 500.5).abs() < 1.0);
        assert_eq!(Latency::of(&new_histogram()), Latency::default());
    }

    #[test]
    fn names_and_durations_read_well() {
        assert_eq!(describe("put", 1, 1), "put, 1 client");
        assert_eq!(describe("get", 64, 64), "linearizable get, 64 clients");
        assert_eq!(describe("put", 1000, 100), "put, 1000 clients over 100 connections");
        assert_eq!(describe("mixed:90", 2, 2), "mixed 90% linearizable gets, 2 clients");
        assert_eq!(ms(89.0), "89 us");
        assert_eq!(ms(890.0), "0.89 ms");
        assert_eq!(ms(61_400.0), "61 ms");
        assert_eq!(ms(1_500_000.0), "1.5 s");
        assert_eq!(thousands(14_500.4), "14,500");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
