//! `kvraft-bench compare`: the medians of several rounds of reports, per workload and system,
//! as one Markdown table with the ratio kvraft/etcd (and, optionally, the chart).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::chart;
use crate::report::{ms, thousands, Report};
use crate::summary::{summarize, Row, Summary};

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Files of JSON reports, one per line ('-' for standard input).
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Also write an SVG chart of p50 and p99 latency against throughput, per system and
    /// workload kind.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// A title for the chart.
    #[arg(long, default_value = "kvraft vs etcd: latency against throughput")]
    pub title: String,
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
                eprintln!("kvraft-bench compare: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if reports.is_empty() {
        eprintln!("kvraft-bench compare: no reports");
        return ExitCode::FAILURE;
    }
    let rows = summarize(&reports);
    print!("{}", markdown(&rows));
    if let Some(svg) = &args.svg {
        if let Err(e) = chart::draw(&rows, &args.title, svg) {
            eprintln!("kvraft-bench compare: {}: {e}", svg.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Latency;

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
