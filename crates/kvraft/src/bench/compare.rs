//! `kvraft bench compare`: the medians of several rounds of reports, per workload and system,
//! as one Markdown table with the ratio kvraft/etcd (and, optionally, the chart).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use super::chart;
use super::options::CompareArgs;
use super::report::{ms, Report};

/// The medians of one system's rounds of one workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub rounds: usize,
    pub clients: usize,
    pub throughput: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Summed over the rounds.
    pub errors: u64,
}

/// One workload's row: a summary per system, in order of first appearance.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    /// `put`, `get`, `append`, `mixed:..`: the chart draws one panel per kind.
    pub kind: String,
    pub systems: Vec<(String, Summary)>,
}

impl Row {
    pub fn system(&self, target: &str) -> Option<&Summary> {
        self.systems.iter().find(|(t, _)| t == target).map(|(_, s)| s)
    }
}

/// The median (mean of the middle two for an even count); NaN for none.
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// A workload's name and kind, with each target's runs.
type Group<'a> = (String, String, Vec<(String, Vec<&'a Report>)>);

/// Groups reports by workload name, then by target, and takes medians.
pub fn summarize(reports: &[Report]) -> Vec<Row> {
    let mut groups: Vec<Group> = Vec::new();
    for r in reports {
        let name = r.name();
        let index = match groups.iter().position(|(n, _, _)| *n == name) {
            Some(i) => i,
            None => {
                groups.push((name, r.workload.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        let systems = &mut groups[index].2;
        match systems.iter_mut().find(|(t, _)| *t == r.target) {
            Some((_, runs)) => runs.push(r),
            None => systems.push((r.target.clone(), vec![r])),
        }
    }
    groups
        .into_iter()
        .map(|(name, kind, systems)| Row {
            name,
            kind,
            systems: systems
                .into_iter()
                .map(|(target, runs)| {
                    let summary = Summary {
                        rounds: runs.len(),
                        clients: runs[0].clients,
                        throughput: median(runs.iter().map(|r| r.throughput).collect()),
                        p50_us: median(runs.iter().map(|r| r.latency_us.p50 as f64).collect()),
                        p99_us: median(runs.iter().map(|r| r.latency_us.p99 as f64).collect()),
                        errors: runs.iter().map(|r| r.errors).sum(),
                    };
                    (target, summary)
                })
                .collect(),
        })
        .collect()
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

/// The Markdown table (kvraft against etcd), with a note on rounds and errors.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | etcd req/s | etcd p50 / p99 | kvraft req/s | kvraft p50 / p99 | kvraft/etcd |\n",
    );
    out.push_str("|---|---:|---|---:|---|---:|\n");
    let cells = |s: Option<&Summary>| match s {
        Some(s) => (thousands(s.throughput), format!("{} / {}", ms(s.p50_us), ms(s.p99_us))),
        None => ("-".to_string(), "-".to_string()),
    };
    let mut rounds: Vec<usize> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for row in rows {
        let (etcd, kvraft) = (row.system("etcd"), row.system("kvraft"));
        let (e_rate, e_lat) = cells(etcd);
        let (k_rate, k_lat) = cells(kvraft);
        let ratio = match (etcd, kvraft) {
            (Some(e), Some(k)) if e.throughput > 0.0 => {
                format!("{:.2}x", k.throughput / e.throughput)
            }
            _ => "-".to_string(),
        };
        let _ =
            writeln!(out, "| {} | {e_rate} | {e_lat} | {k_rate} | {k_lat} | {ratio} |", row.name);
        for (target, s) in &row.systems {
            if !rounds.contains(&s.rounds) {
                rounds.push(s.rounds);
            }
            if s.errors > 0 {
                errors.push(format!("{} on {target}: {}", row.name, s.errors));
            }
        }
    }
    rounds.sort_unstable();
    let rounds: Vec<String> = rounds.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "\nMedians of {} round(s) per cell; latencies are per operation, from the client.",
        rounds.join("/")
    );
    if errors.is_empty() {
        out.push_str("No failed operations.\n");
    } else {
        let _ = writeln!(out, "Failed operations (all rounds): {}.", errors.join("; "));
    }
    out
}

/// Parses JSON reports, one per line; blank lines are skipped.
pub fn parse_reports(text: &str, origin: &str) -> Result<Vec<Report>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("{origin}:{}: not a report: {e}", i + 1))
        })
        .collect()
}

fn read_input(path: &Path) -> Result<String, String> {
    let mut text = String::new();
    if path == Path::new("-") {
        BufReader::new(std::io::stdin())
            .read_to_string(&mut text)
            .map_err(|e| format!("standard input: {e}"))?;
    } else {
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in BufReader::new(file).lines() {
            text.push_str(&line.map_err(|e| format!("{}: {e}", path.display()))?);
            text.push('\n');
        }
    }
    Ok(text)
}

pub fn run(args: CompareArgs) -> ExitCode {
    let mut reports = Vec::new();
    for path in &args.inputs {
        match read_input(path).and_then(|t| parse_reports(&t, &path.display().to_string())) {
            Ok(mut r) => reports.append(&mut r),
            Err(e) => {
                eprintln!("kvraft bench compare: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if reports.is_empty() {
        eprintln!("kvraft bench compare: no reports");
        return ExitCode::FAILURE;
    }
    let rows = summarize(&reports);
    print!("{}", markdown(&rows));
    if let Some(svg) = &args.svg {
        if let Err(e) = chart::draw(&rows, &args.title, svg) {
            eprintln!("kvraft bench compare: {}: {e}", svg.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Latency;

    fn report(target: &str, workload: &str, clients: usize, thr: f64, p50: u64) -> Report {
        Report {
            target: target.into(),
            transport: None,
            label: None,
            workload: workload.into(),
            clients,
            connections: clients,
            value_size: 256,
            keys: 1000,
            key_dist: "uniform".into(),
            endpoints: vec![],
            warmup_s: 1.0,
            elapsed_s: 10.0,
            ops: (thr * 10.0) as u64,
            errors: 0,
            throughput: thr,
            latency_us: Latency { p50, p99: p50 * 3, ..Latency::default() },
            prefill_keys: 0,
            prefill_errors: 0,
            prefill_s: 0.0,
            error_samples: vec![],
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
        assert_eq!(thousands(14_500.4), "14,500");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn rounds_are_grouped_and_summarized() {
        let mut reports = vec![
            report("etcd", "put", 1, 1000.0, 900),
            report("kvraft", "put", 1, 500.0, 2000),
            report("etcd", "put", 1, 1100.0, 890),
            report("kvraft", "put", 1, 600.0, 1900),
            report("etcd", "put", 1, 1050.0, 880),
            report("kvraft", "put", 1, 700.0, 1800),
            report("kvraft", "get", 64, 9000.0, 4000),
        ];
        reports[5].errors = 2;
        let text = serde_json::to_string(&reports[0]).unwrap() + "\n\n";
        assert_eq!(parse_reports(&text, "x").unwrap(), vec![reports[0].clone()]);
        assert!(parse_reports("{}", "x").unwrap_err().starts_with("x:1: not a report"));

        let rows = summarize(&reports);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "put, 1 client");
        let etcd = rows[0].system("etcd").unwrap();
        assert_eq!((etcd.rounds, etcd.throughput, etcd.p50_us), (3, 1050.0, 890.0));
        let kvraft = rows[0].system("kvraft").unwrap();
        assert_eq!((kvraft.throughput, kvraft.errors), (600.0, 2));
        let table = markdown(&rows);
        assert!(
            table.contains(
                "| put, 1 client | 1,050 | 0.89 ms / 2.67 ms | 600 | 1.90 ms / 5.70 ms | 0.57x |"
            ),
            "{table}"
        );
        assert!(table.contains("| linearizable get, 64 clients | - | - | 9,000 |"), "{table}");
        assert!(table.contains("Medians of 1/3 round(s)"), "{table}");
        assert!(table.contains("put, 1 client on kvraft: 2"), "{table}");
    }
}
