//! Runs the deterministic simulation (`corelog::sim`) over a range of seeds.
//!
//! `cargo test --release --test simulation` runs the suite's share: 300
//! seeds (fewer steps each under `CI` is not done: the same runs everywhere),
//! a check that one seed replays exactly, the seeds that once found a bug
//! (`REGRESSION_SEEDS`), and the planted-bug checks (a follower that
//! reports its log end before it is durable, and a controller voter that
//! acknowledges Raft entries before they are durable, must each be caught
//! within `PLANTED_SEEDS_MAX` seeds). `sim/run.sh` passes the options:
//!
//!   --seeds N      seeds to run (default 300)
//!   --from S       first seed (default 0)
//!   --seed S       run one seed and print its outcome
//!   --steps K      steps with faults per seed (default 2000)
//!   --jobs J       threads, each on its own executor (default 1)
//!   --planted      run the planted bugs instead and report where each is
//!                  caught (with --seed: the follower's planted bug)
//!   --planted-controller  with --seed: the controller's planted bug
//!   --trace        with --seed: print every event
//!
//! A failing seed prints its number, the broken invariant and the cluster's
//! state; `sim/run.sh --seed S` replays it exactly.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use corelog::sim::{self, Options, Outcome, PlantedBug};

const DEFAULT_SEEDS: u64 = 300;
/// The planted bug must be caught within this many seeds.
const PLANTED_SEEDS_MAX: u64 = 40;
/// Seeds per progress line of a campaign.
const CAMPAIGN_CHUNK: u64 = 10_000;
/// Seeds outside the suite's range that once found a bug (named where it
/// was fixed): the suite runs them every time.
const REGRESSION_SEEDS: [u64; 8] = [341, 1855, 2103, 4623, 5333, 6516, 12027, 16978];

struct Args {
    seeds: u64,
    from: u64,
    one: Option<u64>,
    steps: u32,
    jobs: u64,
    planted: bool,
    /// With `--seed`: the controller's planted bug instead of the follower's.
    planted_controller: bool,
    trace: bool,
    /// `--seeds` given: a campaign, without the suite's planted-bug check.
    campaign: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seeds: DEFAULT_SEEDS,
        from: 0,
        one: None,
        steps: Options::new(0).steps,
        jobs: 1,
        planted: false,
        planted_controller: false,
        trace: false,
        campaign: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--seeds" => {
                args.seeds = value("--seeds")?;
                args.campaign = true;
            }
            "--from" => args.from = value("--from")?,
            "--seed" => args.one = Some(value("--seed")?),
            "--steps" => args.steps = value("--steps")? as u32,
            "--jobs" => args.jobs = value("--jobs")?.max(1),
            "--planted" => args.planted = true,
            "--planted-controller" => {
                args.planted = true;
                args.planted_controller = true;
            }
            "--trace" => args.trace = true,
            // What cargo test passes to every test binary.
            "--test-threads" | "--format" | "--color" => {
                it.next();
            }
            other if other.starts_with("--") => {}
            _ => {}
        }
    }
    Ok(args)
}

/// Runs `options` on a fresh glommio executor on this thread.
fn run_one(options: Options) -> Result<Outcome, sim::Violation> {
    glommio::LocalExecutorBuilder::default()
        .make()
        .expect("a glommio executor")
        .run(sim::run(options))
}

fn options(seed: u64, steps: u32, bug: Option<PlantedBug>) -> Options {
    Options {
        seed,
        steps,
        bug,
        trace: false,
    }
}

/// Runs seeds `from..from+count` on `jobs` threads; returns the first
/// failing seed with its violation, and totals.
fn run_range(args: &Args, from: u64, count: u64) -> Result<Outcome, (u64, String)> {
    let next = Arc::new(AtomicU64::new(from));
    let end = from + count;
    let steps = args.steps;
    let threads: Vec<_> = (0..args.jobs)
        .map(|_| {
            let next = next.clone();
            std::thread::spawn(move || -> Result<Outcome, (u64, String)> {
                let mut total = Outcome::default();
                let executor = glommio::LocalExecutorBuilder::default()
                    .make()
                    .expect("a glommio executor");
                executor.run(async move {
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= end {
                            return Ok(total);
                        }
                        match sim::run(options(seed, steps, None)).await {
                            Ok(o) => add(&mut total, &o),
                            Err(v) => {
                                next.store(end, Ordering::Relaxed);
                                return Err((seed, v.to_string()));
                            }
                        }
                    }
                })
            })
        })
        .collect();
    let mut total = Outcome::default();
    let mut failure = None;
    for t in threads {
        match t.join().expect("simulation thread") {
            Ok(o) => add(&mut total, &o),
            Err(f) => failure = failure.or(Some(f)),
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(total),
    }
}

fn add(total: &mut Outcome, o: &Outcome) {
    total.produced += o.produced;
    total.acknowledged += o.acknowledged;
    total.offset_commits += o.offset_commits;
    total.crashes += o.crashes;
    total.failed_syncs += o.failed_syncs;
    total.cut_links += o.cut_links;
    total.leader_changes += o.leader_changes;
    total.truncations += o.truncations;
    total.messages += o.messages;
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("simulation: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(seed) = args.one {
        let bug = match (args.planted, args.planted_controller) {
            (_, true) => Some(PlantedBug::AckBeforeDurable),
            (true, false) => Some(PlantedBug::FetchBeforeDurable),
            _ => None,
        };
        let mut one = options(seed, args.steps, bug);
        one.trace = args.trace;
        return match run_one(one) {
            Ok(o) => {
                println!("seed {seed}: ok: {o:?}");
                ExitCode::SUCCESS
            }
            Err(v) => {
                println!("seed {seed}: FAILED at {v}");
                ExitCode::FAILURE
            }
        };
    }
    if args.planted {
        return match planted(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(()) => ExitCode::FAILURE,
        };
    }
    // Determinism: one seed twice gives the same run.
    let a = run_one(options(args.from, args.steps, None));
    let b = run_one(options(args.from, args.steps, None));
    match (&a, &b) {
        (Ok(a), Ok(b)) if a == b => {}
        _ => {
            println!(
                "simulation: seed {} does not replay the same run:\n{a:?}\n{b:?}",
                args.from
            );
            return ExitCode::FAILURE;
        }
    }
    let started = Instant::now();
    let outcome = if args.campaign {
        campaign(&args)
    } else {
        run_range(&args, args.from, args.seeds)
    };
    match outcome {
        Ok(total) => println!(
            "simulation: seeds {}..{} passed in {:.1} s: {} produced, {} acknowledged ({} offset commits), \
             {} crashes, {} failed fsyncs, {} cut links, {} controller changes, {} truncations, {} messages",
            args.from,
            args.from + args.seeds,
            started.elapsed().as_secs_f64(),
            total.produced,
            total.acknowledged,
            total.offset_commits,
            total.crashes,
            total.failed_syncs,
            total.cut_links,
            total.leader_changes,
            total.truncations,
            total.messages
        ),
        Err((seed, v)) => {
            println!("simulation: seed {seed} FAILED (replay: sim/run.sh --seed {seed}) at {v}");
            return ExitCode::FAILURE;
        }
    }
    if !args.campaign {
        for seed in REGRESSION_SEEDS {
            if let Err(v) = run_one(options(seed, args.steps, None)) {
                println!("simulation: regression seed {seed} FAILED at {v}");
                return ExitCode::FAILURE;
            }
        }
        println!("simulation: regression seeds {REGRESSION_SEEDS:?} passed");
        // The suite also shows the checks catch a planted bug.
        if planted(&args).is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// A campaign runs in chunks and says after each how far it got, so a long
/// run that is stopped still reports the seeds it passed.
fn campaign(args: &Args) -> Result<Outcome, (u64, String)> {
    let mut total = Outcome::default();
    let end = args.from + args.seeds;
    let mut from = args.from;
    let started = Instant::now();
    while from < end {
        let count = CAMPAIGN_CHUNK.min(end - from);
        let chunk = run_range(args, from, count)?;
        add(&mut total, &chunk);
        from += count;
        println!(
            "simulation: seeds {}..{from} passed ({:.0} s)",
            args.from,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(total)
}

/// Runs each planted bug until a seed catches it.
fn planted(args: &Args) -> Result<(), ()> {
    for (bug, name) in [
        (PlantedBug::FetchBeforeDurable, "fetch before durable"),
        (
            PlantedBug::AckBeforeDurable,
            "controller ack before durable",
        ),
    ] {
        planted_one(args, bug, name)?;
    }
    Ok(())
}

fn planted_one(args: &Args, bug: PlantedBug, name: &str) -> Result<(), ()> {
    // A planted bug may make raft-rs panic (the simulation catches it and
    // reports it as the violation, with the panic's message): keep the
    // default hook's backtrace out of the output meanwhile.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caught = planted_seed(args, bug);
    std::panic::set_hook(hook);
    match caught {
        Some((seed, what)) => {
            println!(
                "simulation: the planted bug ({name}) was caught by seed {seed} ({} seeds): {what}",
                seed - args.from + 1
            );
            Ok(())
        }
        None => {
            println!("simulation: the planted bug ({name}) survived {PLANTED_SEEDS_MAX} seeds");
            Err(())
        }
    }
}

/// The first seed whose checks catch `bug`, and what they found.
fn planted_seed(args: &Args, bug: PlantedBug) -> Option<(u64, String)> {
    (args.from..args.from + PLANTED_SEEDS_MAX).find_map(|seed| {
        run_one(options(seed, args.steps, Some(bug)))
            .err()
            .map(|v| (seed, v.what))
    })
}
