//! One frame of `corelog top` as text: the nodes, their shards, the
//! hottest partitions and the groups with the most lag. Rates are the
//! difference of a counter between a node's last two scrapes over the time
//! between them; on the first frame, or after a counter went back (the node
//! restarted), they show as `-`.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::scrape::Sample;
use super::GroupLag;

/// Rows in the hottest-partitions and most-lagging-groups tables.
pub const TOP_ROWS: usize = 10;

/// What one node's listener answered at one moment.
pub struct Scrape {
    /// Seconds since `top` started.
    pub at: f64,
    pub samples: Vec<Sample>,
}

/// One node: its last two good scrapes, or why the last one failed.
pub struct Node {
    pub address: String,
    pub previous: Option<Scrape>,
    pub current: Result<Scrape, String>,
}

/// Everything a frame shows.
pub struct Frame<'a> {
    pub title: String,
    pub nodes: &'a [Node],
    /// The groups, most lag first, or why they could not be read.
    pub groups: &'a Result<Vec<GroupLag>, String>,
}

/// The sum of `name`'s samples per value of `label` (other labels summed
/// over).
fn per_label(samples: &[Sample], name: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.name == name) {
        if let Some(value) = sample.label(label) {
            *out.entry(value.to_string()).or_insert(0.0) += sample.value;
        }
    }
    out
}

fn total(samples: &[Sample], name: &str) -> Option<f64> {
    let mut matching = samples.iter().filter(|s| s.name == name).peekable();
    matching.peek()?;
    Some(matching.map(|s| s.value).sum())
}

/// Per second between two readings of a counter; None over a reset or no
/// time.
fn rate(previous: Option<f64>, current: f64, seconds: f64) -> Option<f64> {
    let previous = previous?;
    (current >= previous && seconds > 0.0).then(|| (current - previous) / seconds)
}

/// A topic partition's figures on one node.
#[derive(Default, Clone, Copy)]
struct PartitionFigures {
    bytes_in: f64,
    bytes_in_rate: Option<f64>,
    records_in_rate: Option<f64>,
    end_offset: f64,
}

pub fn render(frame: &Frame) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", frame.title);
    nodes(&mut out, frame.nodes);
    shards(&mut out, frame.nodes);
    partitions(&mut out, frame.nodes);
    groups(&mut out, frame.groups);
    out
}

fn nodes(out: &mut String, nodes: &[Node]) {
    let mut table = Table::new(&[
        "NODE", "STATUS", "UPTIME", "SHARDS", "BUSY%", "REQ/S", "CONNS",
    ]);
    for node in nodes {
        let scrape = match &node.current {
            Ok(scrape) => scrape,
            Err(e) => {
                table.row(vec![node.address.clone(), format!("DOWN: {e}")]);
                continue;
            }
        };
        let seconds = node.previous.as_ref().map_or(0.0, |p| scrape.at - p.at);
        let before = |name: &str| node.previous.as_ref().and_then(|p| total(&p.samples, name));
        let counter_rate = |name: &str| {
            total(&scrape.samples, name).and_then(|now| rate(before(name), now, seconds))
        };
        let shards = per_label(&scrape.samples, "corelog_shard_busy_seconds_total", "shard").len();
        // Busy as a share of all the node's shards (100% = every core busy).
        let busy = counter_rate("corelog_shard_busy_seconds_total")
            .map(|busy| 100.0 * busy / shards.max(1) as f64);
        table.row(vec![
            node.address.clone(),
            "up".to_string(),
            total(&scrape.samples, "corelog_uptime_seconds").map_or("-".into(), duration),
            shards.to_string(),
            fixed(busy),
            fixed(counter_rate("corelog_shard_requests_total")),
            total(&scrape.samples, "corelog_shard_connections_open")
                .map_or("-".into(), |c| format!("{c:.0}")),
        ]);
    }
    table.write(out, "NODES");
}

fn shards(out: &mut String, nodes: &[Node]) {
    let mut table = Table::new(&[
        "NODE", "SHARD", "BUSY%", "REQ/S", "CONNS", "CACHE", "BUDGET", "CACHE%",
    ]);
    for node in nodes {
        let Ok(scrape) = &node.current else { continue };
        let samples = &scrape.samples;
        let seconds = node.previous.as_ref().map_or(0.0, |p| scrape.at - p.at);
        let previous = |name: &str| {
            node.previous
                .as_ref()
                .map(|p| per_label(&p.samples, name, "shard"))
                .unwrap_or_default()
        };
        let busy = per_label(samples, "corelog_shard_busy_seconds_total", "shard");
        let busy_before = previous("corelog_shard_busy_seconds_total");
        let requests = per_label(samples, "corelog_shard_requests_total", "shard");
        let requests_before = previous("corelog_shard_requests_total");
        let connections = per_label(samples, "corelog_shard_connections_open", "shard");
        let cache = per_label(samples, "corelog_shard_cache_bytes", "shard");
        let budget = per_label(samples, "corelog_shard_cache_budget_bytes", "shard");
        let mut ids: Vec<&String> = busy.keys().collect();
        ids.sort_by_key(|id| id.parse::<u32>().unwrap_or(u32::MAX));
        for id in ids {
            let busy_rate = rate(busy_before.get(id).copied(), busy[id], seconds);
            let request_rate = requests
                .get(id)
                .and_then(|now| rate(requests_before.get(id).copied(), *now, seconds));
            let used = cache.get(id).copied();
            let of = budget.get(id).copied();
            let share = used
                .zip(of)
                .filter(|(_, of)| *of > 0.0)
                .map(|(u, of)| 100.0 * u / of);
            table.row(vec![
                node.address.clone(),
                id.clone(),
                fixed(busy_rate.map(|b| 100.0 * b)),
                fixed(request_rate),
                connections
                    .get(id)
                    .map_or("-".into(), |c| format!("{c:.0}")),
                used.map_or("-".into(), bytes),
                of.map_or("-".into(), bytes),
                fixed(share),
            ]);
        }
    }
    table.write(out, "SHARDS");
}

/// Each topic partition's figures, the highest over the nodes that report
/// it (a partition's leader counts producers' bytes; its followers do not).
fn partition_figures(nodes: &[Node]) -> BTreeMap<(String, i32), PartitionFigures> {
    let mut out: BTreeMap<(String, i32), PartitionFigures> = BTreeMap::new();
    for node in nodes {
        let Ok(scrape) = &node.current else { continue };
        let seconds = node.previous.as_ref().map_or(0.0, |p| scrape.at - p.at);
        let of = |samples: &[Sample], name: &str| -> BTreeMap<(String, i32), f64> {
            samples
                .iter()
                .filter(|s| s.name == name)
                .filter_map(|s| {
                    let partition = s.label("partition")?.parse().ok()?;
                    Some(((s.label("topic")?.to_string(), partition), s.value))
                })
                .collect()
        };
        let before = |name: &str| {
            node.previous
                .as_ref()
                .map(|p| of(&p.samples, name))
                .unwrap_or_default()
        };
        let bytes_before = before("corelog_partition_bytes_in_total");
        let records_before = before("corelog_partition_records_in_total");
        let records = of(&scrape.samples, "corelog_partition_records_in_total");
        let ends = of(&scrape.samples, "corelog_partition_log_end_offset");
        for (key, bytes_in) in of(&scrape.samples, "corelog_partition_bytes_in_total") {
            let here = PartitionFigures {
                bytes_in,
                bytes_in_rate: rate(bytes_before.get(&key).copied(), bytes_in, seconds),
                records_in_rate: records
                    .get(&key)
                    .and_then(|r| rate(records_before.get(&key).copied(), *r, seconds)),
                end_offset: ends.get(&key).copied().unwrap_or(0.0),
            };
            let figures = out.entry(key).or_default();
            figures.bytes_in = figures.bytes_in.max(here.bytes_in);
            figures.end_offset = figures.end_offset.max(here.end_offset);
            figures.bytes_in_rate = max_of(figures.bytes_in_rate, here.bytes_in_rate);
            figures.records_in_rate = max_of(figures.records_in_rate, here.records_in_rate);
        }
    }
    out
}

fn max_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn partitions(out: &mut String, nodes: &[Node]) {
    // Partitions nothing was produced to are not hot.
    let mut hottest: Vec<((String, i32), PartitionFigures)> = partition_figures(nodes)
        .into_iter()
        .filter(|(_, f)| f.bytes_in > 0.0)
        .collect();
    // By bytes in per second, then (first frame, idle partitions) by bytes
    // in since the partition was opened.
    hottest.sort_by(|(_, a), (_, b)| {
        let key = |f: &PartitionFigures| (f.bytes_in_rate.unwrap_or(0.0), f.bytes_in);
        key(b)
            .partial_cmp(&key(a))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "BYTES-IN/S",
        "RECORDS-IN/S",
        "BYTES-IN",
        "LOG-END-OFFSET",
    ]);
    for ((topic, partition), figures) in hottest.into_iter().take(TOP_ROWS) {
        table.row(vec![
            topic,
            partition.to_string(),
            figures.bytes_in_rate.map_or("-".into(), bytes),
            fixed(figures.records_in_rate),
            bytes(figures.bytes_in),
            format!("{:.0}", figures.end_offset),
        ]);
    }
    table.write(out, "HOTTEST PARTITIONS");
}

fn groups(out: &mut String, groups: &Result<Vec<GroupLag>, String>) {
    let groups = match groups {
        Ok(groups) => groups,
        Err(e) => {
            let _ = writeln!(out, "\nGROUPS BY LAG\nunavailable: {e}");
            return;
        }
    };
    let mut table = Table::new(&["GROUP", "STATE", "LAG", "PARTITIONS", "TOPICS"]);
    for group in groups.iter().take(TOP_ROWS) {
        table.row(vec![
            group.id.clone(),
            group.state.clone().unwrap_or_else(|| "-".into()),
            group.lag.to_string(),
            group.partitions.to_string(),
            group.topics.join(","),
        ]);
    }
    table.write(out, "GROUPS BY LAG");
}

/// A figure with one decimal, or `-` when unknown.
fn fixed(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.1}"))
}

/// Bytes in binary units.
fn bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = value;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Seconds as `1d2h`, `3h4m`, `5m6s` or `7s`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Left-aligned columns as wide as their widest cell, two spaces apart; a
/// row may have fewer cells than the header (its last cell runs on).
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn write(&self, out: &mut String, title: &str) {
        let _ = writeln!(out, "\n{title}");
        if self.rows.len() == 1 {
            let _ = writeln!(out, "(none)");
            return;
        }
        let columns = self.rows[0].len();
        let mut widths = vec![0; columns];
        for row in &self.rows {
            // A short row's last cell runs on: it does not widen its column.
            if row.len() < columns {
                continue;
            }
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }

    #[test]
    fn rates_come_from_the_last_two_scrapes_and_a_down_node_shows_why() {
        let scrape = |at: f64, busy: f64, bytes: f64| Scrape {
            at,
            samples: vec![
                sample("corelog_uptime_seconds", &[], 75.0),
                sample("corelog_shard_busy_seconds_total", &[("shard", "0")], busy),
                sample("corelog_shard_cache_bytes", &[("shard", "0")], 1024.0),
                sample(
                    "corelog_shard_cache_budget_bytes",
                    &[("shard", "0")],
                    4096.0,
                ),
                sample(
                    "corelog_partition_bytes_in_total",
                    &[("topic", "t"), ("partition", "3")],
                    bytes,
                ),
            ],
        };
        let nodes = [
            Node {
                address: "a:9644".into(),
                previous: Some(scrape(1.0, 10.0, 1000.0)),
                current: Ok(scrape(3.0, 11.0, 5096.0)),
            },
            Node {
                address: "b:9644".into(),
                previous: None,
                current: Err("cannot connect: refused".into()),
            },
        ];
        let groups = Ok(vec![GroupLag {
            id: "g".into(),
            state: Some("Empty".into()),
            lag: 17,
            partitions: 2,
            topics: vec!["t".into()],
        }]);
        let text = render(&Frame {
            title: "top".into(),
            nodes: &nodes,
            groups: &groups,
        });
        assert!(text.contains("a:9644  up      1m15s"), "{text}");
        assert!(
            text.contains("b:9644  DOWN: cannot connect: refused"),
            "{text}"
        );
        // 1 busy second over 2: 50%; cache 1 KiB of 4 KiB.
        assert!(
            text.contains("a:9644  0      50.0   -      -      1.0 KiB  4.0 KiB  25.0"),
            "{text}"
        );
        // 4096 bytes over 2 s.
        assert!(text.contains("t      3          2.0 KiB"), "{text}");
        assert!(text.contains("g      Empty  17   2           t"), "{text}");
    }

    #[test]
    fn a_counter_that_went_back_has_no_rate() {
        assert_eq!(rate(Some(10.0), 4.0, 1.0), None);
        assert_eq!(rate(None, 4.0, 1.0), None);
        assert_eq!(rate(Some(2.0), 4.0, 0.0), None);
        assert_eq!(rate(Some(2.0), 4.0, 2.0), Some(1.0));
    }
}
