//! The medians of several rounds of reports, grouped by workload and then by system: what
//! `kvraft-bench compare` prints as a table and draws as a chart.

use crate::report::Report;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
