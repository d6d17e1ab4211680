//! `corelog consumer-groups` (kafka-consumer-groups.sh), with Kafka's
//! flags and output:
//!
//! - `--list [--state [S,...]]`: every group of every broker (with its
//!   state, optionally only those in the named states);
//! - `--describe --group G... | --all-groups [--offsets | --members |
//!   --state] [--verbose]` (`describe.rs`);
//! - `--reset-offsets --group G... | --all-groups ...` (`reset.rs`);
//! - `--delete --group G... | --all-groups`: groups without members.
//!
//! In a cluster, group requests go to each group's coordinator (from
//! FindCoordinator), ListOffsets to each partition's leader, and `--list`
//! asks every broker, as Kafka's admin client does (`group.rs`).

mod describe;
mod formats;
// `top` reads groups' lag through it too.
pub mod group;
mod reset;

use kafka_protocol::error::ResponseError;

use super::client::{fail, CliResult};
use super::output::Cluster;
use describe::View;

#[derive(clap::Args)]
pub struct ConsumerGroupsArgs {
    /// The broker(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server", required = true)]
    bootstrap_server: String,
    /// List all consumer groups.
    #[arg(long, conflicts_with_all = ["describe", "delete", "reset_offsets"])]
    list: bool,
    /// Describe groups: committed offset, log end offset and lag per partition
    /// (or --members, or --state).
    #[arg(long, conflicts_with_all = ["delete", "reset_offsets"])]
    describe: bool,
    /// The group to describe, reset or delete. Repeatable.
    #[arg(long, conflicts_with = "all_groups")]
    group: Vec<String>,
    /// Apply to all consumer groups.
    #[arg(long)]
    all_groups: bool,
    /// With --describe: partitions with their offsets and lag (the default view).
    #[arg(long, requires = "describe", conflicts_with_all = ["members", "state"])]
    offsets: bool,
    /// With --describe: the members, with their number of partitions.
    #[arg(long, requires = "describe", conflicts_with = "state")]
    members: bool,
    /// With --describe: the coordinator, assignor, state and member count.
    /// With --list: show each group's state, or only groups in these
    /// states (comma-separated).
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "STATES")]
    state: Option<String>,
    /// With --describe: more columns (the committed leader epoch, or each
    /// member's assignment).
    #[arg(long, requires = "describe")]
    verbose: bool,
    /// Reset the committed offsets of inactive groups; shows the plan
    /// unless --execute is given.
    #[arg(long = "reset-offsets", conflicts_with = "delete")]
    reset_offsets: bool,
    /// With --reset-offsets: a topic, or topic:partition[,partition...]. Repeatable.
    #[arg(long)]
    topic: Vec<String>,
    /// With --reset-offsets: every partition the group committed an offset for.
    #[arg(long, conflicts_with = "topic")]
    all_topics: bool,
    /// Reset to the earliest offset.
    #[arg(long = "to-earliest")]
    to_earliest: bool,
    /// Reset to the latest offset.
    #[arg(long = "to-latest")]
    to_latest: bool,
    /// Reset to the committed offset (the latest where none is committed).
    #[arg(long = "to-current")]
    to_current: bool,
    /// Reset to this offset.
    #[arg(long = "to-offset", value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// Move the committed offset by this many (negative: back).
    #[arg(long = "shift-by", value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// Reset to the first offset at or after this time (YYYY-MM-DDTHH:mm:SS[.sss], UTC).
    #[arg(long = "to-datetime", value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// Reset to the first offset at or after this long ago (PnDTnHnMnS).
    #[arg(
        long = "by-duration",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    by_duration: Option<String>,
    /// Reset to the offsets of a CSV plan, as --export writes it.
    #[arg(long = "from-file", value_name = "FILE")]
    from_file: Option<String>,
    /// Carry out the reset (without it, only print the new offsets).
    #[arg(long)]
    execute: bool,
    /// Print the new offsets without changing anything (the default).
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Print the reset plan as CSV, for --from-file.
    #[arg(long, requires = "reset_offsets")]
    export: bool,
    /// Delete groups and their committed offsets (they must be empty).
    #[arg(long)]
    delete: bool,
}

pub fn run(args: ConsumerGroupsArgs) -> CliResult<()> {
    let mut cluster = Cluster::connect(&args.bootstrap_server)?;
    if args.list {
        return list(&mut cluster, args.state.as_deref());
    }
    if !(args.describe || args.reset_offsets || args.delete) {
        return fail(
            "Command must include exactly one action: --list, --describe, --delete, --reset-offsets",
        );
    }
    if args.group.is_empty() && !args.all_groups {
        return fail(
            "--describe, --delete and --reset-offsets take one of --group or --all-groups",
        );
    }
    let groups: Vec<String> = if args.all_groups {
        group::list(&mut cluster)?.into_keys().collect()
    } else {
        let mut named = args.group.clone();
        named.sort();
        named.dedup();
        named
    };
    if args.describe {
        let view = if args.members {
            View::Members
        } else if args.state.is_some() {
            if args.state.as_deref() != Some("") {
                return fail("Option [describe] does not take a value for [state]");
            }
            View::State
        } else {
            View::Offsets
        };
        each_group(&groups, |id| {
            describe::describe(&mut cluster, id, view, args.verbose)
        })
    } else if args.reset_offsets {
        reset::run(&mut cluster, &groups, &args)
    } else {
        delete(&mut cluster, &groups)
    }
}

/// Runs `action` for each group in turn. One group's error is the
/// command's; with several, each failure is reported and the rest go on.
fn each_group(groups: &[String], mut action: impl FnMut(&str) -> CliResult<()>) -> CliResult<()> {
    if let [only] = groups {
        return action(only);
    }
    let mut failed = 0;
    for id in groups {
        if let Err(e) = action(id) {
            eprintln!("Error: {e}");
            failed += 1;
        }
    }
    if failed > 0 {
        return fail(format!("{failed} of {} groups failed", groups.len()));
    }
    Ok(())
}

fn delete(cluster: &mut Cluster, groups: &[String]) -> CliResult<()> {
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for id in groups {
        match group::delete(cluster, id) {
            Ok(0) => deleted.push(format!("'{id}'")),
            Ok(code) => failed.push(format!(
                "* Group '{id}' could not be deleted due to: {}",
                error_text(code)
            )),
            Err(e) => failed.push(format!("* Group '{id}' could not be deleted due to: {e}")),
        }
    }
    if failed.is_empty() {
        println!(
            "Deletion of requested consumer groups ({}) was successful.",
            deleted.join(", ")
        );
        return Ok(());
    }
    let mut message = format!(
        "Deletion of some consumer groups failed:\n{}",
        failed.join("\n")
    );
    if !deleted.is_empty() {
        message.push_str(&format!(
            "\nThese consumer groups were deleted successfully: {}",
            deleted.join(", ")
        ));
    }
    fail(message)
}

/// Every group; with `--state`, in Kafka's two columns GROUP STATE, only
/// those in the comma-separated `states` when some are named.
fn list(cluster: &mut Cluster, states: Option<&str>) -> CliResult<()> {
    let groups = group::list(cluster)?;
    let Some(states) = states else {
        for name in groups.keys() {
            println!("{name}");
        }
        return Ok(());
    };
    let wanted: Vec<String> = states
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    let rows: Vec<(&String, &str)> = groups
        .iter()
        .map(|(name, state)| (name, state.as_deref().unwrap_or("Unknown")))
        .filter(|(_, state)| wanted.is_empty() || wanted.contains(&state.to_ascii_lowercase()))
        .collect();
    let width = rows.iter().map(|(n, _)| n.len()).fold(15, usize::max);
    println!("{:<width$} STATE", "GROUP");
    for (name, state) in rows {
        println!("{name:<width$} {state}");
    }
    Ok(())
}

/// A Kafka error as `Name: message`.
fn error_text(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?}: {e}"),
        None => format!("error code {code}"),
    }
}
