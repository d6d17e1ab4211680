//! `consumer-groups --describe`: one of three views of each group, in
//! Kafka's columns and widths (each column at least 15 wide, or as wide as
//! its longest value), each group's table after an empty line:
//!
//! - `--offsets` (the default): GROUP TOPIC PARTITION [LEADER-EPOCH with
//!   --verbose] CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST
//!   CLIENT-ID, the members' partitions first (members with the most
//!   first), then committed partitions nobody owns;
//! - `--members`: GROUP CONSUMER-ID [GROUP-INSTANCE-ID] HOST CLIENT-ID
//!   #PARTITIONS [ASSIGNMENT with --verbose];
//! - `--state`: GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS.
//!
//! As Kafka's tool says on stderr, an empty group "has no active members"
//! and a rebalancing one "is rebalancing"; a group that does not exist is
//! an error.

use std::collections::{BTreeMap, BTreeSet};

use super::super::client::{fail, CliResult};
use super::super::output::Cluster;
use super::group::{self, Group, TopicPartition};

/// Kafka's placeholder for an unknown value.
const MISSING: &str = "-";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum View {
    Offsets,
    Members,
    State,
}

/// Describes one group in `view`.
pub fn describe(cluster: &mut Cluster, id: &str, view: View, verbose: bool) -> CliResult<()> {
    let group = group::describe(cluster, id)?;
    if group.state == "Dead" {
        return fail(format!("Consumer group '{id}' does not exist."));
    }
    match view {
        View::Offsets => offsets(cluster, &group, verbose),
        View::Members => {
            if say_state(&group, group.members.len()) {
                members(&group, verbose);
            }
            Ok(())
        }
        View::State => {
            say_state(&group, 1);
            state(&group);
            Ok(())
        }
    }
}

/// What Kafka's tool says about a group that is not stable (on stderr);
/// whether there are `rows` to print.
fn say_state(group: &Group, rows: usize) -> bool {
    match group.state.as_str() {
        "Empty" => eprintln!("\nConsumer group '{}' has no active members.", group.id),
        "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling" => {
            eprintln!("\nWarning: Consumer group '{}' is rebalancing.", group.id)
        }
        _ => {}
    }
    rows > 0
}

/// One row of the offsets view.
struct OffsetRow<'a> {
    partition: &'a TopicPartition,
    leader_epoch: Option<i32>,
    current: Option<i64>,
    end: Option<i64>,
    owner: Option<&'a group::Member>,
}

fn offsets(cluster: &mut Cluster, group: &Group, verbose: bool) -> CliResult<()> {
    let committed = group::committed(group::coordinator(cluster, &group.coordinator)?, &group.id)?;
    let mut owners: Vec<&group::Member> = group
        .members
        .iter()
        .filter(|m| !m.partitions.is_empty())
        .collect();
    // Members with the most partitions first, as Kafka's tool orders them.
    owners.sort_by_key(|m| std::cmp::Reverse(m.partitions.len()));
    let owned: BTreeSet<&TopicPartition> =
        owners.iter().flat_map(|m| m.partitions.iter()).collect();
    let mut listed: Vec<(&TopicPartition, Option<&group::Member>)> = owners
        .iter()
        .flat_map(|m| m.partitions.iter().map(move |p| (p, Some(*m))))
        .collect();
    listed.extend(
        committed
            .keys()
            .filter(|p| !owned.contains(p))
            .map(|p| (p, None)),
    );
    let wanted: BTreeSet<TopicPartition> = listed.iter().map(|(p, _)| (*p).clone()).collect();
    let ends = cluster.list_offsets_found(&wanted, -1)?;
    let rows: Vec<OffsetRow> = listed
        .into_iter()
        .map(|(partition, owner)| {
            let c = committed.get(partition);
            OffsetRow {
                partition,
                leader_epoch: c.map(|c| c.leader_epoch).filter(|e| *e >= 0),
                current: c.map(|c| c.offset),
                end: ends.get(partition).copied().filter(|o| *o >= 0),
                owner,
            }
        })
        .collect();
    if !say_state(group, rows.len()) {
        return Ok(());
    }
    let text = |v: Option<String>| v.unwrap_or_else(|| MISSING.to_string());
    let mut table = Table::new();
    let mut header = vec!["GROUP", "TOPIC", "PARTITION"];
    if verbose {
        header.push("LEADER-EPOCH");
    }
    header.extend([
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    table.row(header.into_iter().map(String::from).collect());
    for row in &rows {
        // Kafka's lag is not clamped: a committed offset past the log end
        // (after a truncation) shows as negative.
        let lag = row.current.zip(row.end).map(|(c, e)| e - c);
        let mut cells = vec![
            group.id.clone(),
            row.partition.0.clone(),
            row.partition.1.to_string(),
        ];
        if verbose {
            cells.push(text(row.leader_epoch.map(|e| e.to_string())));
        }
        cells.extend([
            text(row.current.map(|v| v.to_string())),
            text(row.end.map(|v| v.to_string())),
            text(lag.map(|v| v.to_string())),
            text(row.owner.map(|o| o.id.clone())),
            text(row.owner.map(|o| o.host.clone())),
            text(row.owner.map(|o| o.client_id.clone())),
        ]);
        table.row(cells);
    }
    // Kafka's widths: PARTITION 10, the offsets 15, the rest at least 15.
    let mut widths = vec![Width::AtLeast(15), Width::AtLeast(15), Width::Fixed(10)];
    if verbose {
        widths.push(Width::Fixed(15));
    }
    widths.extend([
        Width::Fixed(15),
        Width::Fixed(15),
        Width::Fixed(15),
        Width::AtLeast(15),
        Width::AtLeast(15),
        Width::Last,
    ]);
    table.print(&widths);
    Ok(())
}

fn members(group: &Group, verbose: bool) {
    let with_instances = group.members.iter().any(|m| m.instance_id.is_some());
    let mut table = Table::new();
    let mut header = vec!["GROUP", "CONSUMER-ID"];
    if with_instances {
        header.push("GROUP-INSTANCE-ID");
    }
    header.extend(["HOST", "CLIENT-ID", "#PARTITIONS"]);
    if verbose {
        header.push("ASSIGNMENT");
    }
    table.row(header.into_iter().map(String::from).collect());
    for m in &group.members {
        let mut cells = vec![group.id.clone(), m.id.clone()];
        if with_instances {
            cells.push(m.instance_id.clone().unwrap_or_default());
        }
        cells.extend([
            m.host.clone(),
            m.client_id.clone(),
            m.partitions.len().to_string(),
        ]);
        if verbose {
            cells.push(assignment_text(&m.partitions));
        }
        table.row(cells);
    }
    let mut widths = vec![Width::AtLeast(15), Width::AtLeast(15)];
    if with_instances {
        widths.push(Width::AtLeast(17));
    }
    widths.extend([Width::AtLeast(15), Width::AtLeast(15)]);
    if verbose {
        widths.extend([Width::Fixed(15), Width::Last]);
    } else {
        widths.push(Width::Last);
    }
    table.print(&widths);
}

/// A member's partitions as Kafka's tool prints them: `topic(0,1,2)` per
/// topic, topics sorted, joined by ", "; `-` for none.
fn assignment_text(partitions: &[TopicPartition]) -> String {
    if partitions.is_empty() {
        return MISSING.to_string();
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    by_topic
        .into_iter()
        .map(|(topic, mut ps)| {
            ps.sort_unstable();
            let list: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
            format!("{topic}({})", list.join(","))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn state(group: &Group) {
    let coordinator = format!(
        "{}:{} ({})",
        group.coordinator.host, group.coordinator.port, group.coordinator.id
    );
    let assignor = if group.assignor.is_empty() {
        MISSING.to_string()
    } else {
        group.assignor.clone()
    };
    let mut table = Table::new();
    table.row(
        [
            "GROUP",
            "COORDINATOR (ID)",
            "ASSIGNMENT-STRATEGY",
            "STATE",
            "#MEMBERS",
        ]
        .map(String::from)
        .to_vec(),
    );
    table.row(vec![
        group.id.clone(),
        coordinator,
        assignor,
        group.state.clone(),
        group.members.len().to_string(),
    ]);
    table.print(&[
        Width::AtLeast(15),
        Width::AtLeast(25),
        Width::Fixed(20),
        Width::Fixed(20),
        Width::Last,
    ]);
}

/// How wide a column is printed, as Kafka's format strings say.
#[derive(Clone, Copy)]
enum Width {
    /// At least this wide, wider for a longer value.
    AtLeast(usize),
    /// Padded to this width (a longer value pushes the rest right).
    Fixed(usize),
    /// The last column: not padded.
    Last,
}

/// A table printed after an empty line, columns separated by one space.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new() -> Table {
        Table { rows: Vec::new() }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn print(&self, widths: &[Width]) {
        let widths: Vec<usize> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| match w {
                Width::AtLeast(min) => self
                    .rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(String::len)
                    .fold(*min, usize::max),
                Width::Fixed(width) => *width,
                Width::Last => 0,
            })
            .collect();
        println!();
        for row in &self.rows {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            println!("{}", line.join(" ").trim_end());
        }
    }
}
