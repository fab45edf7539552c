//! The latency-throughput chart of `kvraft-bench compare --svg`: one panel per workload kind
//! (put, get, ...), log-log, with each system's p50 (solid) and p99 (dashed) latency against its
//! throughput, one point per client count (labelled with it), joined in order of load.

use std::path::Path;

use plotters::prelude::*;

use crate::summary::Row;

/// One system's curve in one panel: (throughput ops/s, p50 ms, p99 ms, clients), by load.
type Curve = Vec<(f64, f64, f64, usize)>;

fn color_of(target: &str, index: usize) -> RGBColor {
    match target {
        "kvraft" => RGBColor(214, 39, 40),
        "etcd" => RGBColor(31, 119, 180),
        _ => [RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(140, 86, 75)][index % 3],
    }
}

fn kind_title(kind: &str) -> String {
    match kind {
        "get" => "linearizable get".to_string(),
        k => k.to_string(),
    }
}

/// The panels: workload kinds in order of appearance, each with its systems' curves.
fn panels(rows: &[Row]) -> Vec<(String, Vec<(String, Curve)>)> {
    let mut panels: Vec<(String, Vec<(String, Curve)>)> = Vec::new();
    for row in rows {
        let index = match panels.iter().position(|(k, _)| *k == row.kind) {
            Some(i) => i,
            None => {
                panels.push((row.kind.clone(), Vec::new()));
                panels.len() - 1
            }
        };
        for (target, s) in &row.systems {
            if !(s.throughput > 0.0 && s.p50_us > 0.0 && s.p99_us > 0.0) {
                continue;
            }
            let point = (s.throughput, s.p50_us / 1000.0, s.p99_us / 1000.0, s.clients);
            let curves = &mut panels[index].1;
            match curves.iter_mut().find(|(t, _)| t == target) {
                Some((_, curve)) => curve.push(point),
                None => curves.push((target.clone(), vec![point])),
            }
        }
    }
    for (_, curves) in &mut panels {
        curves.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, curve) in curves.iter_mut() {
            curve.sort_by_key(|p| p.3);
        }
    }
    panels.retain(|(_, curves)| !curves.is_empty());
    panels
}

/// A log axis range around `values`, with some margin.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() || hi <= 0.0 {
        return 0.1..10.0;
    }
    (lo / 1.6)..(hi * 1.6)
}

pub fn draw(rows: &[Row], title: &str, path: &Path) -> Result<(), String> {
    let panels = panels(rows);
    if panels.is_empty() {
        return Err("nothing to draw (no successful runs)".into());
    }
    let width = 620 * panels.len() as u32;
    let root = SVGBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, panels.len()));
    for ((kind, curves), area) in panels.iter().zip(areas.iter()) {
        let xs = log_range(curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.0)));
        let ys = log_range(curves.iter().flat_map(|(_, c)| c.iter().flat_map(|p| [p.1, p.2])));
        let mut chart = ChartBuilder::on(area)
            .caption(kind_title(kind), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(xs.log_scale(), ys.log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(8)
            .x_desc("throughput (ops/s)")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| {
                if *y >= 1.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y:.2}")
                }
            })
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (target, curve)) in curves.iter().enumerate() {
            let color = color_of(target, i);
            let p50: Vec<(f64, f64)> = curve.iter().map(|p| (p.0, p.1)).collect();
            let p99: Vec<(f64, f64)> = curve.iter().map(|p| (p.0, p.2)).collect();
            chart
                .draw_series(LineSeries::new(p50.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(format!("{target} p50"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(p50.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(DashedLineSeries::new(p99.clone(), 6, 4, color.stroke_width(1)))
                .map_err(|e| e.to_string())?
                .label(format!("{target} p99"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart
                .draw_series(p99.iter().map(|&p| TriangleMarker::new(p, 5, color)))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(curve.iter().map(|&(x, y, _, clients)| {
                    Text::new(
                        format!("{clients}c"),
                        (x, y),
                        ("sans-serif", 12).into_font().color(&color),
                    )
                }))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Summary;

    fn summary(clients: usize, throughput: f64) -> Summary {
        Summary { rounds: 1, clients, throughput, p50_us: 1000.0, p99_us: 3000.0, errors: 0 }
    }

    #[test]
    fn draws_an_svg_with_a_panel_per_kind() {
        let rows = vec![
            Row {
                name: "put, 64 clients".into(),
                kind: "put".into(),
                systems: vec![
                    ("etcd".into(), summary(64, 7500.0)),
                    ("kvraft".into(), summary(64, 3000.0)),
                ],
            },
            Row {
                name: "put, 1 client".into(),
                kind: "put".into(),
                systems: vec![("etcd".into(), summary(1, 1000.0))],
            },
            Row {
                name: "linearizable get, 1 client".into(),
                kind: "get".into(),
                systems: vec![("kvraft".into(), summary(1, 0.0))],
            },
        ];
        let p = panels(&rows);
        assert_eq!(p.len(), 1, "the get panel has no successful point");
        assert_eq!(p[0].1[0].1.iter().map(|q| q.3).collect::<Vec<_>>(), [1, 64]);
        let dir = std::env::temp_dir().join(format!("kvraft-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.svg");
        draw(&rows, "test", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("kvraft p99"), "{}", &svg[..200]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(draw(&rows[2..], "test", &path).is_err());
    }
}
