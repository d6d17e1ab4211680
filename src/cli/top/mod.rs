//! `corelog top`: the cluster at a glance, refreshed in place like `top`.
//! Per node and per shard: busy share (the rate of
//! `corelog_shard_busy_seconds_total`), requests per second, connections,
//! read cache against its budget, from each node's `/metrics` (`--http`);
//! the hottest partitions by bytes in per second; and the consumer groups
//! with the most lag, through the Kafka API (`--bootstrap-server`: ListGroups,
//! then each group's committed offsets and its partitions' log ends, as
//! `consumer-groups --describe` computes lag).
//!
//! On a terminal each frame replaces the last (ANSI clear and home);
//! otherwise frames are printed one after the other. A node that does not
//! answer shows as DOWN with the reason, and Kafka errors show in place of
//! the groups table: nothing a node does ends the view, only
//! `--iterations` or an interrupt.

mod scrape;
mod view;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::client::{fail, CliError, CliResult};
use super::consumer_groups::group;
use super::output::Cluster;
use view::{Frame, Node, Scrape};

/// Groups whose lag one refresh reads at most (the first by name): each
/// costs an OffsetFetch and ListOffsets.
const GROUPS_MAX: usize = 200;
/// Nodes `--http` may name.
const NODES_MAX: usize = 256;
/// The longest `--interval`, in seconds.
const INTERVAL_SECONDS_MAX: f64 = 3600.0;

#[derive(clap::Args)]
pub struct TopArgs {
    /// A broker to bootstrap from (host:port[,host:port...]), for the consumer groups' lag.
    #[arg(long = "bootstrap-server", required = true)]
    bootstrap_server: String,
    /// The nodes' HTTP listeners (http.listeners), whose /metrics give the load figures.
    #[arg(
        long,
        value_name = "HOST:PORT[,HOST:PORT...]",
        default_value = "127.0.0.1:9644"
    )]
    http: String,
    /// Seconds between refreshes (fractions allowed).
    #[arg(long, default_value_t = 2.0)]
    interval: f64,
    /// Exit after this many refreshes (default: until interrupted).
    #[arg(long)]
    iterations: Option<u64>,
}

/// One consumer group's lag.
pub struct GroupLag {
    pub id: String,
    /// As ListGroups names it (v4 and later).
    pub state: Option<String>,
    /// Summed over its partitions whose log end is known.
    pub lag: i64,
    /// Partitions it committed offsets for.
    pub partitions: usize,
    pub topics: Vec<String>,
}

pub fn run(args: TopArgs) -> CliResult<()> {
    let addresses: Vec<String> = args
        .http
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    if addresses.is_empty() {
        return fail("--http names no node");
    }
    if addresses.len() > NODES_MAX {
        return fail(format!("--http names more than {NODES_MAX} nodes"));
    }
    if !(args.interval > 0.0 && args.interval <= INTERVAL_SECONDS_MAX) {
        return fail(format!(
            "--interval must be over 0 and at most {INTERVAL_SECONDS_MAX} seconds"
        ));
    }
    if args.iterations == Some(0) {
        return fail("--iterations must be at least 1");
    }
    let interval = Duration::from_secs_f64(args.interval);
    let terminal = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut nodes: Vec<Node> = addresses
        .into_iter()
        .map(|address| Node {
            address,
            previous: None,
            current: Err("not scraped yet".into()),
        })
        .collect();
    let mut cluster: Option<Cluster> = None;
    let mut frame_number = 0u64;
    loop {
        let refresh_started = Instant::now();
        frame_number += 1;
        for node in &mut nodes {
            let result = scrape::fetch(&node.address).map(|text| Scrape {
                at: started.elapsed().as_secs_f64(),
                samples: scrape::parse(&text),
            });
            let last = std::mem::replace(&mut node.current, result);
            // A failed scrape keeps the last good one for the next rate.
            if let Ok(last) = last {
                node.previous = Some(last);
            }
        }
        let groups = groups_by_lag(&mut cluster, &args.bootstrap_server);
        let title = format!(
            "corelog top  refresh {:.1}s  frame {frame_number}  (--bootstrap-server {})",
            args.interval, args.bootstrap_server
        );
        let text = view::render(&Frame {
            title,
            nodes: &nodes,
            groups: &groups,
        });
        show(&text, terminal)?;
        if args.iterations.is_some_and(|n| frame_number >= n) {
            return Ok(());
        }
        std::thread::sleep(interval.saturating_sub(refresh_started.elapsed()));
    }
}

/// Writes a frame: over the last one on a terminal, after it elsewhere.
fn show(text: &str, terminal: bool) -> CliResult<()> {
    let mut out = std::io::stdout().lock();
    let written = if terminal {
        // Home, clear the screen, then the frame.
        write!(out, "\x1b[H\x1b[2J{text}")
    } else {
        writeln!(out, "{text}")
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| CliError(format!("cannot write to stdout: {e}")))
}

/// The groups, most lag first (the first `GROUPS_MAX` by name). The
/// connection is kept for the next refresh and dropped after an error, so
/// a broker that comes back is reached again.
fn groups_by_lag(cluster: &mut Option<Cluster>, bootstrap: &str) -> Result<Vec<GroupLag>, String> {
    if cluster.is_none() {
        *cluster = Some(Cluster::connect(bootstrap).map_err(|e| e.to_string())?);
    }
    let connected = cluster.as_mut().expect("connected above");
    let result = read_groups(connected);
    if result.is_err() {
        *cluster = None;
    }
    result.map_err(|e| e.to_string())
}

fn read_groups(cluster: &mut Cluster) -> CliResult<Vec<GroupLag>> {
    let listed = group::list(cluster)?;
    let mut out = Vec::new();
    for (id, state) in listed.into_iter().take(GROUPS_MAX) {
        let lags = group::lags(cluster, &id)?;
        let mut topics: Vec<String> = lags.keys().map(|(topic, _)| topic.clone()).collect();
        topics.dedup();
        out.push(GroupLag {
            lag: lags.values().flatten().sum(),
            partitions: lags.len(),
            topics,
            id,
            state,
        });
    }
    out.sort_by(|a, b| b.lag.cmp(&a.lag).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}
