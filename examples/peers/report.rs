//! Turns the runs into medians, ratios and target verdicts: a markdown table
//! (printed and written to `results.md`), the raw runs (`raw.tsv`), and two
//! SVG charts drawn with plotters: greenhouse's advantage over each peer per
//! workload (`peers.svg`) and how cost grows with live tasks (`scale.svg`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::measure::median;
use crate::plan::{Better, Case, Row, Section, Target, Unit};
use crate::runner::{Failure, Metrics};
use crate::workload::{Contender, Job};

/// Every run of every case, by case index then contender.
pub struct Results {
    /// The cases, in run order.
    pub cases: Vec<Case>,
    /// `runs[i][c]`: the repetitions of case `i` on contender `c`.
    pub runs: Vec<BTreeMap<Contender, Vec<Result<Metrics, Failure>>>>,
}

/// A table cell.
#[derive(Clone, Debug)]
pub enum Cell {
    /// Median over the successful repetitions.
    Value(f64),
    /// The contender cannot run it.
    Unsupported(String),
    /// Every repetition failed (the first error).
    Failed(String),
    /// Not selected.
    NotRun,
}

impl Results {
    /// The median of `metric` for case `i` on contender `c`.
    pub fn cell(&self, i: usize, c: Contender, metric: &str) -> Cell {
        let Some(runs) = self.runs[i].get(&c) else {
            return Cell::NotRun;
        };
        let mut vals: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.as_ref().ok()?.get(metric).copied())
            .filter(|v| v.is_finite())
            .collect();
        if !vals.is_empty() {
            return Cell::Value(median(&mut vals));
        }
        match runs.iter().find_map(|r| r.as_ref().err()) {
            Some(Failure::Unsupported(w)) => Cell::Unsupported(w.clone()),
            Some(Failure::Failed(e)) => Cell::Failed(e.clone()),
            None => Cell::NotRun,
        }
    }

    fn value(&self, i: usize, c: Contender, metric: &str) -> Option<f64> {
        match self.cell(i, c, metric) {
            Cell::Value(v) => Some(v),
            _ => None,
        }
    }

    /// greenhouse's advantage over `peer` on this row: above 1 means
    /// greenhouse is better (faster, lighter, more throughput).
    pub fn advantage(&self, i: usize, row: &Row, peer: Contender) -> Option<f64> {
        let g = self.value(i, Contender::Greenhouse, row.metric)?;
        let p = self.value(i, peer, row.metric)?;
        let a = match row.better {
            Better::Lower => p / g,
            Better::Higher => g / p,
        };
        a.is_finite().then_some(a)
    }
}

/// Three significant digits, no exponent.
pub fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// `v` in `unit`, scaled to a readable magnitude.
pub fn fmt_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ns if v >= 1e6 => format!("{} ms", sig3(v / 1e6)),
        Unit::Ns if v >= 1e3 => format!("{} µs", sig3(v / 1e3)),
        Unit::Ns => format!("{} ns", sig3(v)),
        Unit::Us if v >= 1e3 => format!("{} ms", sig3(v / 1e3)),
        Unit::Us => format!("{} µs", sig3(v)),
        Unit::Ms if v >= 1e3 => format!("{} s", sig3(v / 1e3)),
        Unit::Ms => format!("{} ms", sig3(v)),
        Unit::PerSec if v >= 1e6 => format!("{}M/s", sig3(v / 1e6)),
        Unit::PerSec if v >= 1e3 => format!("{}k/s", sig3(v / 1e3)),
        Unit::PerSec => format!("{}/s", sig3(v)),
        Unit::Bytes if v >= 1024.0 * 1024.0 => format!("{} MiB", sig3(v / 1024.0 / 1024.0)),
        Unit::Bytes if v >= 1024.0 => format!("{} KiB", sig3(v / 1024.0)),
        Unit::Bytes => format!("{v:.0} B"),
        Unit::MiB if v >= 1024.0 => format!("{} GiB", sig3(v / 1024.0)),
        Unit::MiB => format!("{} MiB", sig3(v)),
    }
}

/// A ratio as `12.3x`.
pub fn fmt_ratio(r: f64) -> String {
    format!("{}x", sig3(r))
}

fn cell_text(c: &Cell, unit: Unit) -> String {
    match c {
        Cell::Value(v) => fmt_value(*v, unit),
        Cell::Unsupported(_) => "n/a".into(),
        Cell::Failed(_) => "failed".into(),
        Cell::NotRun => "–".into(),
    }
}

/// The target verdicts of a row: (text, met?) per target, `None` for met
/// when a value is missing.
pub fn verdicts(r: &Results, i: usize, row: &Row) -> Vec<(String, Option<bool>)> {
    row.targets
        .iter()
        .filter_map(|t| match *t {
            Target::Beat(peer, x) => {
                r.runs[i].get(&peer)?;
                let want = if x == 1.0 {
                    match row.better {
                        Better::Lower if row.unit == Unit::Bytes => format!("≤ {}", peer.name()),
                        Better::Lower if row.metric.starts_with("p99") => {
                            format!("≤ {}", peer.name())
                        }
                        Better::Lower => format!("faster than {}", peer.name()),
                        Better::Higher => format!("≥ {}", peer.name()),
                    }
                } else {
                    format!("≥ {}x {}", sig3(x), peer.name())
                };
                Some(match r.advantage(i, row, peer) {
                    Some(a) => (format!("{want}: {}", fmt_ratio(a)), Some(a >= x)),
                    None => (format!("{want}: n/a"), None),
                })
            }
            Target::AtMost(v) => {
                let want = format!("≤ {}", fmt_value(v, row.unit));
                Some(match r.value(i, Contender::Greenhouse, row.metric) {
                    Some(g) => (want, Some(g <= v)),
                    None => (format!("{want}: n/a"), None),
                })
            }
        })
        .collect()
}

fn mark(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "✓",
        Some(false) => "✗",
        None => "?",
    }
}

/// The markdown tables (one per section), then the failures and
/// unsupported cells explained.
pub fn markdown(r: &Results, contenders: &[Contender]) -> String {
    let mut md = String::new();
    let mut explained = Vec::new();
    for section in [Section::Workloads, Section::Scale] {
        let idx: Vec<usize> = (0..r.cases.len())
            .filter(|&i| r.cases[i].section == section)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let cols: Vec<Contender> = contenders
            .iter()
            .copied()
            .filter(|c| idx.iter().any(|&i| r.runs[i].contains_key(c)))
            .collect();
        let peers: Vec<Contender> = cols
            .iter()
            .copied()
            .filter(|&c| c != Contender::Greenhouse)
            .collect();
        let _ = writeln!(
            md,
            "\n### {}\n",
            match section {
                Section::Workloads => "Workloads 1–6 (medians; \"vs\" = greenhouse's advantage, above 1x = greenhouse better)",
                Section::Scale => "Scale (medians; \"vs\" = greenhouse's advantage)",
            }
        );
        let mut head = String::from("| case | metric |");
        let mut rule = String::from("|---|---|");
        for c in &cols {
            let _ = write!(head, " {} |", c.name());
            rule.push_str("---:|");
        }
        for p in &peers {
            let _ = write!(head, " vs {} |", p.name());
            rule.push_str("---:|");
        }
        head.push_str(" targets |");
        rule.push_str("---|");
        let _ = writeln!(md, "{head}\n{rule}");
        for &i in &idx {
            let case = &r.cases[i];
            for row in &case.rows {
                let _ = write!(md, "| {} | {} |", case.title, row.label);
                for &c in &cols {
                    let cell = r.cell(i, c, row.metric);
                    match &cell {
                        Cell::Unsupported(w) | Cell::Failed(w) => {
                            let e = format!("{} / {}: {}", case.title, c.name(), w);
                            if !explained.contains(&e) {
                                explained.push(e);
                            }
                        }
                        _ => {}
                    }
                    let _ = write!(md, " {} |", cell_text(&cell, row.unit));
                }
                for &p in &peers {
                    let a = r.advantage(i, row, p).map_or("–".into(), fmt_ratio);
                    let _ = write!(md, " {a} |");
                }
                let v: Vec<String> = verdicts(r, i, row)
                    .into_iter()
                    .map(|(t, m)| format!("{t} {}", mark(m)))
                    .collect();
                let _ = writeln!(md, " {} |", v.join("; "));
            }
        }
    }
    for (i, case) in r.cases.iter().enumerate() {
        if case.job != Job::ScaleSleep {
            continue;
        }
        for (c, runs) in &r.runs[i] {
            let late = runs
                .iter()
                .filter_map(|run| run.as_ref().ok())
                .filter(|m| m.get("concurrent") == Some(&0.0))
                .count();
            if late > 0 {
                explained.push(format!(
                    "{} / {}: in {late} of {} runs the last task started after the first was due, so not all were parked at once (RSS per task undercounts, lateness includes the spawning); use a longer --scale-sleep-ms",
                    case.title,
                    c.name(),
                    runs.len()
                ));
            }
        }
    }
    if !explained.is_empty() {
        md.push_str("\nNot measured, or measured with a caveat:\n\n");
        for e in explained {
            let _ = writeln!(md, "- {e}");
        }
    }
    md
}

/// Every repetition's numbers, tab-separated: case, contender, rep, metric, value.
pub fn raw_tsv(r: &Results) -> String {
    let mut s = String::from("case\tcontender\trep\tmetric\tvalue\n");
    for (i, by) in r.runs.iter().enumerate() {
        for (c, runs) in by {
            for (rep, run) in runs.iter().enumerate() {
                match run {
                    Ok(m) => {
                        for (k, v) in m {
                            let _ =
                                writeln!(s, "{}\t{}\t{rep}\t{k}\t{v}", r.cases[i].title, c.name());
                        }
                    }
                    Err(Failure::Unsupported(w) | Failure::Failed(w)) => {
                        let _ =
                            writeln!(s, "{}\t{}\t{rep}\terror\t{w}", r.cases[i].title, c.name());
                    }
                }
            }
        }
    }
    s
}

fn peer_color(c: Contender) -> RGBColor {
    match c {
        Contender::Greenhouse => RGBColor(46, 139, 87),
        Contender::May => RGBColor(230, 126, 34),
        Contender::Tokio => RGBColor(52, 101, 164),
        Contender::Std => RGBColor(128, 128, 128),
    }
}

type ChartResult = Result<(), Box<dyn std::error::Error>>;

/// `peers.svg`: one group of bars per charted row, one bar per peer,
/// greenhouse's advantage on a log axis; bars grow right from 1x when
/// greenhouse is better, left when it is worse.
pub fn advantage_chart(r: &Results, path: &Path, subtitle: &str) -> ChartResult {
    let mut rows: Vec<(String, Vec<(Contender, f64)>)> = Vec::new();
    for (i, case) in r.cases.iter().enumerate() {
        for row in case.rows.iter().filter(|row| row.chart) {
            let bars: Vec<(Contender, f64)> = [Contender::May, Contender::Tokio, Contender::Std]
                .into_iter()
                .filter_map(|p| Some((p, r.advantage(i, row, p)?)))
                .collect();
            if !bars.is_empty() {
                rows.push((format!("{}: {}", case.title, row.label), bars));
            }
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let (mut lo, mut hi) = (0.5f64, 2.0f64);
    for (_, bars) in &rows {
        for &(_, a) in bars {
            lo = lo.min(a);
            hi = hi.max(a);
        }
    }
    let (lo, hi) = (lo / 1.6, hi * 2.5);
    let n = rows.len();
    let height = 130 + 34 * n as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "greenhouse's advantage over each peer (× — right of 1 = greenhouse better)",
            ("sans-serif", 20),
        )
        .margin(12)
        .margin_left(540)
        .x_label_area_size(50)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc(format!("advantage, log scale — {subtitle}"))
        .x_label_formatter(&|v| fmt_ratio(*v))
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, 0.0), (1.0, n as f64)],
        BLACK.stroke_width(2),
    )))?;
    let label_style = ("sans-serif", 13).into_font().color(&BLACK);
    for (k, (label, bars)) in rows.iter().enumerate() {
        let base = (n - 1 - k) as f64;
        let h = 0.8 / bars.len() as f64;
        for (j, &(peer, a)) in bars.iter().enumerate() {
            let y0 = base + 0.1 + h * (bars.len() - 1 - j) as f64;
            let color = peer_color(peer);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(1.0, y0 + 0.1 * h), (a, y0 + 0.9 * h)],
                color.filled(),
            )))?;
            // Values sit right of the bar's right end: after the bar when
            // greenhouse is better, after the 1x line when it is worse (so
            // they never run into the row labels on the left).
            let (px, py) = chart.backend_coord(&(a.max(1.0), y0 + 0.5 * h));
            root.draw(&Text::new(
                format!("{} {}", peer.name(), fmt_ratio(a)),
                (px + 4, py),
                ("sans-serif", 11)
                    .into_font()
                    .color(&color)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        let (_, py) = chart.backend_coord(&(lo, base + 0.5));
        root.draw(&Text::new(
            label.clone(),
            (530, py),
            label_style.clone().pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// One contender's (live tasks, ns) points.
type Line = (Contender, Vec<(f64, f64)>);

/// `v` as an integer if it is a power of ten (axis labels only there).
fn power_of_ten(v: f64) -> Option<usize> {
    let l = v.log10();
    ((l - l.round()).abs() < 1e-6).then(|| 10f64.powi(l.round() as i32) as usize)
}

/// `scale.svg`: per contender, ns per operation against live tasks (log–log):
/// spawn while ramping up, spawn + join among them, switch among them.
pub fn scale_chart(r: &Results, path: &Path, subtitle: &str) -> ChartResult {
    let panels: [(&str, Job, &str); 3] = [
        (
            "spawn until all parked, per task",
            Job::CostSpawn,
            "ramp_ns",
        ),
        (
            "spawn + join with N parked",
            Job::CostSpawn,
            "spawn_join_ns",
        ),
        ("switch, N tasks yielding", Job::CostSwitch, "switch_ns"),
    ];
    let mut series: Vec<Vec<Line>> = Vec::new();
    for &(_, job, metric) in &panels {
        let mut by: BTreeMap<Contender, Vec<(f64, f64)>> = BTreeMap::new();
        for (i, case) in r.cases.iter().enumerate().filter(|(_, c)| c.job == job) {
            for &c in r.runs[i].keys() {
                if let Some(v) = r.value(i, c, metric) {
                    by.entry(c).or_default().push((case.n as f64, v));
                }
            }
        }
        series.push(by.into_iter().collect());
    }
    if series.iter().all(|s| s.is_empty()) {
        return Ok(());
    }
    let root = SVGBackend::new(path, (1200, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!("cost against live tasks (log–log; flat = does not grow) — {subtitle}"),
        ("sans-serif", 18),
    )?;
    let areas = root.split_evenly((1, panels.len()));
    for (area, (&(title, _, _), data)) in areas.iter().zip(panels.iter().zip(&series)) {
        let pts = data.iter().flat_map(|(_, v)| v.iter());
        let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, 0f64, f64::MAX, 0f64);
        for &(x, y) in pts {
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            ymin = ymin.min(y);
            ymax = ymax.max(y);
        }
        if xmax == 0.0 {
            continue;
        }
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (xmin / 1.5..xmax * 1.5).log_scale(),
                (ymin / 2.0..ymax * 2.0).log_scale(),
            )?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(238, 238, 238))
            .x_desc("live tasks")
            .y_desc("ns")
            .x_label_formatter(&|v| power_of_ten(*v).map_or(String::new(), crate::plan::thousands))
            .y_label_formatter(&|v| sig3(*v))
            .draw()?;
        for (c, pts) in data {
            let color = peer_color(*c);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                .label(c.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
