//! `consumer-groups --reset-offsets`: plans new committed offsets for each
//! inactive group (`--group`, repeatable, or `--all-groups`) over a scope
//! (`--topic T[:P,...]`, repeatable, or `--all-topics`: every partition the
//! group committed), by exactly one spec, as Kafka's tool does:
//! `--to-earliest`, `--to-latest`, `--to-current` (the committed offset,
//! else the log end), `--to-offset N`, `--shift-by N` (from the committed
//! offset), `--to-datetime T`, `--by-duration D` (the first offset at or
//! after that long ago), or `--from-file F` (an `--export`ed plan, which
//! is also its scope). Offsets named outright (`--to-offset`, `--shift-by`,
//! `--from-file`) are clamped into the log, with a warning.
//!
//! The plan is printed (GROUP TOPIC PARTITION NEW-OFFSET), or with
//! `--export` written as CSV; it is committed only with `--execute`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use super::super::client::{fail, CliError, CliResult};
use super::super::output::Cluster;
use super::formats::{self, Plan};
use super::group::{self, TopicPartition};
use super::{error_text, ConsumerGroupsArgs};

/// Where the offsets move.
enum Spec {
    /// A ListOffsets timestamp: -2 earliest, -1 latest, or a time in ms.
    Timestamp(i64),
    Offset(i64),
    ShiftBy(i64),
    Current,
    File(Plan),
}

fn spec(args: &ConsumerGroupsArgs, single_group: Option<&str>) -> CliResult<Spec> {
    let chosen = [
        args.to_earliest,
        args.to_latest,
        args.to_current,
        args.to_offset.is_some(),
        args.shift_by.is_some(),
        args.to_datetime.is_some(),
        args.by_duration.is_some(),
        args.from_file.is_some(),
    ]
    .iter()
    .filter(|c| **c)
    .count();
    if chosen != 1 {
        return fail(
            "--reset-offsets needs exactly one of --to-earliest, --to-latest, --to-current, \
             --to-offset, --shift-by, --to-datetime, --by-duration, --from-file",
        );
    }
    Ok(if args.to_earliest {
        Spec::Timestamp(-2)
    } else if args.to_latest {
        Spec::Timestamp(-1)
    } else if args.to_current {
        Spec::Current
    } else if let Some(offset) = args.to_offset {
        Spec::Offset(offset)
    } else if let Some(shift) = args.shift_by {
        Spec::ShiftBy(shift)
    } else if let Some(text) = &args.to_datetime {
        Spec::Timestamp(formats::parse_datetime_ms(text)?)
    } else if let Some(text) = &args.by_duration {
        let ago = formats::parse_duration_ms(text)?;
        Spec::Timestamp(now_ms().saturating_sub(ago))
    } else {
        let path = args.from_file.as_deref().unwrap_or_default();
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError(format!("--from-file {path}: {e}")))?;
        Spec::File(formats::parse_csv(&text, single_group)?)
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn run(cluster: &mut Cluster, groups: &[String], args: &ConsumerGroupsArgs) -> CliResult<()> {
    if args.execute && args.dry_run {
        return fail("Option [reset-offsets] only accepts one of [execute] and [dry-run]");
    }
    // One group named outright: the CSV has no group column.
    let single_group = (!args.all_groups && groups.len() == 1).then(|| groups[0].as_str());
    let spec = spec(args, single_group)?;
    if !matches!(spec, Spec::File(_)) && args.topic.is_empty() && !args.all_topics {
        return fail("One of the reset scopes should be defined: --all-topics, --topic.");
    }
    if !args.execute && !args.dry_run {
        // Kafka's words: the plan below is not carried out.
        eprintln!(
            "WARN: No action will be performed as the --execute option is missing. \
             Add --dry-run to say that a plan is all you want, or --execute to reset \
             the offsets."
        );
    }
    let mut plan = Plan::new();
    let mut failures = Vec::new();
    for id in groups {
        match reset_group(cluster, id, &spec, args) {
            Ok(offsets) => {
                plan.insert(id.clone(), offsets);
            }
            Err(e) if groups.len() == 1 => return Err(e),
            Err(e) => {
                eprintln!("Error: {e}");
                failures.push(id.clone());
            }
        }
    }
    if args.export {
        print!("{}", formats::export_csv(&plan, single_group.is_none()));
        println!();
    } else {
        print_plan(&plan);
    }
    if !failures.is_empty() {
        return fail(format!(
            "the offsets of {} of {} groups were not reset: {}",
            failures.len(),
            groups.len(),
            failures.join(", ")
        ));
    }
    Ok(())
}

/// Plans (and with --execute commits) one group's new offsets.
fn reset_group(
    cluster: &mut Cluster,
    id: &str,
    spec: &Spec,
    args: &ConsumerGroupsArgs,
) -> CliResult<BTreeMap<TopicPartition, i64>> {
    let described = group::describe(cluster, id)?;
    if described.state != "Empty" && described.state != "Dead" {
        return fail(format!(
            "Assignments can only be reset if the group '{id}' is inactive, but the current state is {}.",
            described.state
        ));
    }
    let committed: BTreeMap<TopicPartition, i64> =
        group::committed(group::coordinator(cluster, &described.coordinator)?, id)?
            .into_iter()
            .map(|(p, c)| (p, c.offset))
            .collect();
    let partitions: BTreeSet<TopicPartition> = match spec {
        Spec::File(plan) => match plan.get(id) {
            Some(offsets) => offsets.keys().cloned().collect(),
            None => return fail(format!("No reset plan for group {id} found.")),
        },
        _ if args.all_topics => committed.keys().cloned().collect(),
        _ => scope(cluster, &args.topic)?,
    };
    let offsets = match spec {
        Spec::Timestamp(ts) => at_timestamp(cluster, &partitions, *ts)?,
        Spec::Offset(offset) => {
            let wanted = partitions.iter().map(|p| (p.clone(), *offset)).collect();
            clamp(cluster, wanted)?
        }
        Spec::ShiftBy(shift) => {
            let mut wanted = BTreeMap::new();
            for p in &partitions {
                let Some(current) = committed.get(p) else {
                    return fail(format!(
                        "Cannot shift offset for partition {}-{} since there is no current committed offset",
                        p.0, p.1
                    ));
                };
                wanted.insert(p.clone(), current.saturating_add(*shift));
            }
            clamp(cluster, wanted)?
        }
        Spec::Current => {
            let uncommitted: BTreeSet<TopicPartition> = partitions
                .iter()
                .filter(|p| !committed.contains_key(*p))
                .cloned()
                .collect();
            let mut out = log_offsets(cluster, &uncommitted, -1)?;
            for p in &partitions {
                if let Some(offset) = committed.get(p) {
                    out.insert(p.clone(), *offset);
                }
            }
            out
        }
        Spec::File(plan) => clamp(cluster, plan[id].clone())?,
    };
    if args.execute && !offsets.is_empty() {
        group::commit(
            group::coordinator(cluster, &described.coordinator)?,
            id,
            &offsets,
        )?;
    }
    Ok(offsets)
}

/// The partitions named by `--topic T` (all of T's) and `--topic T:0,2`;
/// every one must exist.
fn scope(cluster: &mut Cluster, topic_args: &[String]) -> CliResult<BTreeSet<TopicPartition>> {
    let mut named = BTreeSet::new();
    let mut whole = BTreeSet::new();
    for arg in topic_args {
        match arg.split_once(':') {
            Some((topic, list)) => {
                for p in list.split(',') {
                    let partition = p.trim().parse().map_err(|_| {
                        CliError(format!(
                            "Invalid partition '{p}' specified in topic arg '{arg}'"
                        ))
                    })?;
                    named.insert((topic.to_string(), partition));
                }
            }
            None => {
                whole.insert(arg.clone());
            }
        }
    }
    let topics: BTreeSet<String> = whole
        .iter()
        .cloned()
        .chain(named.iter().map(|(t, _)| t.clone()))
        .collect();
    let topics: Vec<String> = topics.into_iter().collect();
    let metadata = cluster.metadata(Some(&topics))?;
    let mut existing = BTreeSet::new();
    for t in &metadata.topics {
        let Some(name) = t.name.as_ref().map(|n| n.to_string()) else {
            continue;
        };
        if t.error_code != 0 {
            if whole.contains(&name) {
                return fail(format!("topic '{name}': {}", error_text(t.error_code)));
            }
            continue;
        }
        existing.extend(
            t.partitions
                .iter()
                .map(|p| (name.clone(), p.partition_index)),
        );
    }
    let missing: Vec<String> = named
        .iter()
        .filter(|p| !existing.contains(*p))
        .map(|(t, p)| format!("{t}-{p}"))
        .collect();
    if !missing.is_empty() {
        return fail(format!(
            "The partitions \"{}\" do not exist",
            missing.join(",")
        ));
    }
    Ok(existing
        .into_iter()
        .filter(|p| whole.contains(&p.0) || named.contains(p))
        .collect())
}

/// ListOffsets at `timestamp` for every partition, each of which must answer.
fn log_offsets(
    cluster: &mut Cluster,
    partitions: &BTreeSet<TopicPartition>,
    timestamp: i64,
) -> CliResult<BTreeMap<TopicPartition, i64>> {
    let mut out = BTreeMap::new();
    for ((topic, partition), result) in cluster.list_offsets(partitions, timestamp)? {
        match result {
            Ok(offset) => {
                out.insert((topic, partition), offset);
            }
            Err(code) => {
                return fail(format!(
                    "cannot read the offsets of {topic}-{partition}: {}",
                    error_text(code)
                ))
            }
        }
    }
    Ok(out)
}

/// The first offset at or after `timestamp` (-2 earliest, -1 latest); a
/// partition with no record that late gets its log end, as in Kafka.
fn at_timestamp(
    cluster: &mut Cluster,
    partitions: &BTreeSet<TopicPartition>,
    timestamp: i64,
) -> CliResult<BTreeMap<TopicPartition, i64>> {
    let mut out = log_offsets(cluster, partitions, timestamp)?;
    let late: BTreeSet<TopicPartition> = out
        .iter()
        .filter(|(_, offset)| **offset < 0)
        .map(|(p, _)| p.clone())
        .collect();
    if !late.is_empty() {
        for (p, end) in log_offsets(cluster, &late, -1)? {
            // Kafka's tool prints this on stdout; stderr keeps --export clean.
            eprintln!(
                "\nWarn: Partition {} from topic {} is empty. Falling back to latest known offset.",
                p.1, p.0
            );
            out.insert(p, end);
        }
    }
    Ok(out)
}

/// Offsets named outright, moved into [log start, log end] with Kafka's
/// warning.
fn clamp(
    cluster: &mut Cluster,
    wanted: BTreeMap<TopicPartition, i64>,
) -> CliResult<BTreeMap<TopicPartition, i64>> {
    let partitions: BTreeSet<TopicPartition> = wanted.keys().cloned().collect();
    let starts = log_offsets(cluster, &partitions, -2)?;
    let ends = log_offsets(cluster, &partitions, -1)?;
    Ok(wanted
        .into_iter()
        .map(|(p, offset)| {
            let (start, end) = (starts[&p], ends[&p]);
            let clamped = if offset > end {
                eprintln!(
                    "WARN: New offset ({offset}) is higher than latest offset for topic partition {}-{}. Value will be set to {end}.",
                    p.0, p.1
                );
                end
            } else if offset < start {
                eprintln!(
                    "WARN: New offset ({offset}) is lower than earliest offset for topic partition {}-{}. Value will be set to {start}.",
                    p.0, p.1
                );
                start
            } else {
                offset
            };
            (p, clamped)
        })
        .collect())
}

/// Kafka's plan table: GROUP TOPIC PARTITION NEW-OFFSET after an empty line.
fn print_plan(plan: &Plan) {
    if plan.is_empty() {
        println!();
        return;
    }
    let group_width = plan.keys().map(String::len).fold(15, usize::max);
    let topic_width = plan
        .values()
        .flat_map(|o| o.keys().map(|(t, _)| t.len()))
        .fold(15, usize::max);
    println!();
    println!(
        "{:<group_width$} {:<topic_width$} {:<10} NEW-OFFSET",
        "GROUP", "TOPIC", "PARTITION"
    );
    for (group, offsets) in plan {
        for ((topic, partition), offset) in offsets {
            println!("{group:<group_width$} {topic:<topic_width$} {partition:<10} {offset}");
        }
    }
}
