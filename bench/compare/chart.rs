//! `report.png`: throughput of the max-rate workloads per broker (left) and
//! produce-ack latency percentiles of the fixed-rate workloads (right, log
//! scale). Text uses DejaVu Sans from Debian's fonts-dejavu-core, loaded at
//! run time; without it the chart is not drawn (the Markdown report is).

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;

pub struct Bar {
    pub broker: String,
    pub workload: String,
    pub mb_per_s: f64,
    pub fixed_rate: bool,
    /// p50, p90, p99, p99.9, max.
    pub latency_ms: [f64; 5],
}

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn register_font() -> Result<()> {
    let path = FONT_PATHS
        .iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| anyhow!("no DejaVuSans.ttf (apt-get install fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{path} is not a usable font"))
}

fn unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

pub fn draw(path: &Path, bars: &[Bar]) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1500, 650)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(820);
    let brokers = unique(bars.iter().map(|b| b.broker.clone()));
    let color =
        |broker: &str| COLORS[brokers.iter().position(|b| b == broker).unwrap_or(0) % COLORS.len()];

    // Left: MB/s of every workload that ran as fast as possible.
    let tp: Vec<&Bar> = bars.iter().filter(|b| !b.fixed_rate).collect();
    let workloads = unique(tp.iter().map(|b| b.workload.clone()));
    let y_max = tp.iter().map(|b| b.mb_per_s).fold(1.0, f64::max) * 1.15;
    let n = brokers.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&left)
        .caption("Throughput, max-rate workloads (MB/s)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..workloads.len().max(1) as f64, 0f64..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(workloads.len().max(1) * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (*x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                workloads.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("MB/s")
        .label_style(("sans-serif", 14))
        .draw()?;
    for (wi, w) in workloads.iter().enumerate() {
        for (bi, broker) in brokers.iter().enumerate() {
            let Some(b) = tp.iter().find(|b| &b.workload == w && &b.broker == broker) else {
                continue;
            };
            let x0 = wi as f64 + 0.1 + 0.8 * bi as f64 / n;
            let x1 = x0 + 0.8 / n * 0.9;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, 0.0), (x1, b.mb_per_s)],
                color(broker).filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{:.0}", b.mb_per_s),
                (x0, b.mb_per_s + y_max * 0.01),
                ("sans-serif", 12),
            )))?;
        }
    }
    for broker in &brokers {
        let c = color(broker);
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
            .label(broker.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;

    // Right: ack latency percentiles of the fixed-rate workloads, log scale.
    let lat: Vec<&Bar> = bars.iter().filter(|b| b.fixed_rate).collect();
    let lo = lat
        .iter()
        .flat_map(|b| b.latency_ms)
        .filter(|&v| v > 0.0)
        .fold(f64::MAX, f64::min)
        .min(0.1);
    let hi = lat.iter().flat_map(|b| b.latency_ms).fold(1.0, f64::max) * 2.0;
    let names = ["p50", "p90", "p99", "p99.9", "max"];
    let mut chart = ChartBuilder::on(&right)
        .caption(
            "Produce-ack latency, fixed-rate workloads (ms)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..4.0, (lo * 0.8..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| names.get(x.round() as usize).unwrap_or(&"").to_string())
        .y_desc("ms (log)")
        .label_style(("sans-serif", 14))
        .draw()?;
    let workloads = unique(lat.iter().map(|b| b.workload.clone()));
    for b in &lat {
        let c = color(&b.broker);
        let dashed = workloads.iter().position(|w| w == &b.workload).unwrap_or(0) > 0;
        let style = if dashed {
            c.stroke_width(1)
        } else {
            c.stroke_width(3)
        };
        let points: Vec<(f64, f64)> = b
            .latency_ms
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as f64, v.max(lo * 0.8)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), style))?
            .label(format!("{} {}", b.broker, b.workload))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present().context("write png")?;
    Ok(())
}
