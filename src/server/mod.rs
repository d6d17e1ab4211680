//! The Kafka server on each shard: boot of the executors, the per-shard
//! broker state, connections, dispatch and one handler per API.
//!
//! Each shard runs one glommio executor with its own listener on the shared
//! port (SO_REUSEPORT), its own partitions and a read-only copy of the topic
//! catalog. Shard 0 owns the catalog (see `catalog.rs`).
//!
//! The main thread supervises the shards ([`run`]): it bounds the start and
//! the stop, reports and wakes a shard that stalls (`shard::watch`) and,
//! when a bound is overrun, exits with one line naming the stuck shard and
//! its phase. A signal thread handles SIGTERM and SIGINT (a stop) and
//! SIGHUP (a reload of the dynamic broker configs, `reload`).

pub mod api_stats;
pub mod broker;
pub mod catalog;
pub mod configs;
pub mod connection;
pub mod dispatch;
pub mod error_codes;
pub mod errors;
pub mod fetch_session;
pub mod frame;
pub mod handlers;
pub mod hosts;
pub mod http;
mod ports;
pub mod reload;
pub mod routing;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use crate::config::{Config, ServeArgs};
use crate::limits;
use crate::log::progress::RecoveryProgress;
use crate::metadata::Catalog;
use crate::shard::shutdown;
use crate::shard::watch::{ShardWatch, Watch};

/// How a broker run ended, when it did not end cleanly: the message for the
/// one error line and the process exit status.
#[derive(Debug)]
pub struct RunError {
    pub message: String,
    pub exit_code: u8,
}

/// The broker could not start, or a shard failed while serving.
pub const EXIT_FAILED: u8 = 1;
/// A shard did not start within the start bound.
pub const EXIT_START_TIMEOUT: u8 = 3;
/// Asked to stop, a shard did not stop within the stop bound.
pub const EXIT_STOP_TIMEOUT: u8 = 4;
/// A second SIGTERM or SIGINT while the first was being served.
pub const EXIT_SIGNALLED_TWICE: u8 = 5;

impl RunError {
    fn failed(message: String) -> RunError {
        RunError {
            message,
            exit_code: EXIT_FAILED,
        }
    }
}

/// Held by a shard's thread: marks the shard finished when the thread ends.
struct Finished(Arc<ShardWatch>);

impl Drop for Finished {
    fn drop(&mut self) {
        if !self.0.has_returned() {
            // A panic ended the shard: the others stop too.
            log::error!("shard {} stopped abnormally", self.0.index());
            shutdown::request();
        }
        self.0.set_finished();
    }
}

/// Stop signals received (SIGTERM, SIGINT) since the broker started.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// A test or an operator can lower the start bound (never raise it past
/// [`limits::SHARD_START_MS_MAX`]): tests check that a start which overruns
/// it ends the process, without waiting five minutes.
pub const START_TIMEOUT_ENV: &str = "CORELOG_START_TIMEOUT_MS";

fn start_bound() -> Duration {
    let max = limits::SHARD_START_MS_MAX;
    let ms = match std::env::var(START_TIMEOUT_ENV) {
        Ok(value) => match value.trim().parse::<u64>() {
            Ok(ms) if (1..=max).contains(&ms) => ms,
            _ => {
                log::warn!("{START_TIMEOUT_ENV}={value} is not in 1..={max}; using {max}");
                max
            }
        },
        Err(_) => max,
    };
    Duration::from_millis(ms)
}

extern "C" fn interrupted(_: libc::c_int) {}

/// The supervisor interrupts a shard's parked reactor with
/// [`ShardWatch::INTERRUPT`] (see `shard::watch`): its handler does nothing,
/// and is installed without SA_RESTART, so the signal ends the shard's
/// `io_uring_enter` wait with EINTR, which glommio takes as a wake-up.
#[allow(unsafe_code)]
fn install_interrupt_handler() -> Result<(), RunError> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let action = SigAction::new(
        SigHandler::Handler(interrupted),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler is an empty `extern "C"` function, trivially
    // async-signal-safe, and the signal is used for nothing else here.
    unsafe { sigaction(ShardWatch::INTERRUPT, &action) }
        .map_err(|e| RunError::failed(format!("cannot install the shard interrupt: {e}")))?;
    Ok(())
}

/// SIGTERM and SIGINT ask every shard to stop cleanly; a second one while
/// the first is served ends the process at once (an operator who means it).
/// SIGHUP re-reads the configuration (`reload`) and never stops the broker:
/// unhandled, its default action would end the process without a clean
/// stop.
fn install_signal_handler(mut reloader: reload::Reloader) -> Result<(), RunError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| RunError::failed(format!("cannot handle signals: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    reloader.reload();
                    continue;
                }
                if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
                    eprintln!("corelog: signal {signal} again while stopping; exiting now");
                    std::process::exit(i32::from(EXIT_SIGNALLED_TWICE));
                }
                shutdown::ask();
            }
        })
        .map_err(|e| RunError::failed(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}

/// Starts one executor per shard and supervises them until all have stopped:
/// bounds the start and the stop, watches for stalled shards (see
/// `shard::watch`) and names the stuck shard and its phase when a bound is
/// overrun. A shard stuck in a system call cannot be joined, so past a bound
/// this returns without joining it and the process exit ends it. `args` is
/// the command line `config` was built from: SIGHUP builds it again.
pub fn run(mut config: Config, args: ServeArgs) -> Result<(), RunError> {
    let reloaded = Arc::new(reload::ReloadedConfigs::new());
    install_signal_handler(reload::Reloader::new(
        args,
        config.clone(),
        reloaded.clone(),
    ))?;
    install_interrupt_handler()?;
    let cluster_id = match &config.cluster_id {
        Some(id) => id.clone(),
        None => {
            let meta = crate::storage::prepare(&config, None)
                .map_err(|e| RunError::failed(e.to_string()))?;
            config.directory_id = meta.directory_uuid();
            meta.cluster_id
        }
    };
    config.cluster_id = Some(cluster_id.clone());
    let catalog =
        Catalog::load_or_create(&config.data_dir, config.shards, &cluster_id).map_err(|e| {
            RunError::failed(format!(
                "cannot open data directory {}: {e}",
                config.data_dir.display()
            ))
        })?;
    ports::check_free(&config).map_err(|e| RunError::failed(e.to_string()))?;
    crate::tls::check_listeners(
        &config.ssl,
        config
            .client_listeners()
            .iter()
            .map(|l| (l.name.as_str(), l.protocol)),
    )
    .map_err(|e| RunError::failed(e.to_string()))?;
    if config.cluster.listener_protocol.uses_tls() {
        // Followers fetch from leaders on the inter-broker listener.
        let settings = crate::tls::settings(&config.ssl, Some(&config.cluster.advertised.name))
            .and_then(|s| crate::tls::client_config(&s))
            .map_err(|e| {
                RunError::failed(format!(
                    "inter-broker listener {}: {e}",
                    config.cluster.advertised.name
                ))
            })?;
        crate::net::set_broker_network(crate::net::BrokerNetwork::tls(settings.config));
    }
    log::info!(
        "starting node {} (cluster {cluster_id}): {} shards, data in {}, clients on {}",
        config.broker.node_id,
        config.shards,
        config.data_dir.display(),
        config.listen
    );
    let node = config.broker.node_id;
    let held = catalog
        .topics
        .values()
        .map(|t| {
            (0..t.shards.len())
                .filter(|&p| t.is_replica(p, node))
                .count()
        })
        .sum();
    let recovery = Arc::new(RecoveryProgress::new(held));
    let mesh = MeshBuilder::full(config.shards, config.tuning.mesh_channel_depth);
    let watch = Arc::new(Watch::new(config.shards));
    let placement = crate::shard::placement::plan(
        config.shards,
        &config.cores,
        &crate::shard::placement::allowed_cores(),
    )
    .map_err(|e| RunError::failed(format!("--cores: {e}")))?;
    if placement.oversubscribed {
        log::warn!("placement: {}", placement.why);
    } else {
        log::info!("placement: {}", placement.why);
    }
    let mib = |bytes: usize| bytes / (1024 * 1024);
    log::info!(
        "read caches: {} MiB per shard ({})",
        mib(config.tuning.shard_memory_bytes),
        match config.tuning.shard_memory {
            crate::config::ShardMemory::Auto => format!(
                "shard_memory_bytes auto: a quarter of {} MiB over {} shards",
                mib(crate::config::process_memory_bytes()),
                config.shards
            ),
            crate::config::ShardMemory::Bytes(_) => "shard_memory_bytes".to_string(),
        }
    );
    let started_at = Instant::now();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut handles = Vec::with_capacity(config.shards);
    for index in 0..config.shards {
        let placement = match placement.cores[index] {
            Some(core) => Placement::Fixed(core),
            None => Placement::Unbound,
        };
        let builder = LocalExecutorBuilder::new(placement)
            .io_memory(config.tuning.io_memory_bytes)
            .ring_depth(config.tuning.ring_depth)
            .preempt_timer(config.tuning.preempt_timer())
            .spin_before_park(Duration::from_micros(config.tuning.spin_before_park_us));
        let (config, catalog, mesh, shard_watch, shard_failures, recovery, reloaded) = (
            config.clone(),
            catalog.clone(),
            mesh.clone(),
            watch.clone(),
            failures.clone(),
            recovery.clone(),
            reloaded.clone(),
        );
        // Our own thread around glommio's executor (`make`, not `spawn`):
        // the supervisor needs the thread's handle before the executor runs
        // anything, to interrupt a reactor that parked before its first task
        // (see `shard::watch`).
        let spawned = std::thread::Builder::new()
            .name(format!("shard-{index}"))
            .spawn(move || {
                let shard = shard_watch.shard(index);
                shard.set_thread(nix::sys::pthread::pthread_self());
                // Dropped when the thread ends, by return or by a panic.
                let _finished = Finished(shard.clone());
                let executor = match builder.make() {
                    Ok(executor) => executor,
                    Err(e) => {
                        shard.set_started();
                        shard.set_returned();
                        shutdown::request();
                        shard_failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("cannot start shard {index}: {e}"));
                        return;
                    }
                };
                executor.run(async move {
                    let outcome = broker::run_shard(
                        config,
                        catalog,
                        mesh,
                        shard_watch,
                        shard.clone(),
                        recovery,
                        reloaded,
                    )
                    .await;
                    if let Err(e) = outcome {
                        shard_failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("shard {index}: {e}"));
                    }
                    shard.set_returned();
                });
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                // The shards already running wait for this one: stop them.
                shutdown::request();
                for shard in &watch.shards()[index..] {
                    shard.set_started();
                    shard.set_finished();
                }
                failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("cannot start shard {index}: {e}"));
                break;
            }
        }
    }
    let outcome = supervise(&watch, started_at, start_bound(), &failures, &recovery);
    let joined = outcome.is_ok();
    if joined {
        for handle in handles {
            if let Err(panic) = handle.join() {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("a shard stopped abnormally: {what}"));
            }
        }
    }
    outcome?;
    let failures = std::mem::take(&mut *failures.lock().unwrap_or_else(|e| e.into_inner()));
    if failures.is_empty() {
        log::info!("node {node} stopped");
        Ok(())
    } else {
        Err(RunError::failed(failures.join("; ")))
    }
}

/// The supervisor's loop on the main thread: returns once every shard has
/// finished, or with the error that ends the process when the start or the
/// stop overruns its bound.
fn supervise(
    watch: &Watch,
    started_at: Instant,
    start_bound: Duration,
    failures: &Mutex<Vec<String>>,
    recovery: &RecoveryProgress,
) -> Result<(), RunError> {
    let tick = Duration::from_millis(limits::SHARD_HEARTBEAT_MS);
    let stop_bound = Duration::from_millis(limits::SHARD_STOP_MS_MAX);
    let mut stop_deadline: Option<Instant> = None;
    let mut asked_at: Option<Instant> = None;
    let handover_bound = Duration::from_millis(limits::CONTROLLED_SHUTDOWN_MS_MAX);
    let mut start_overrun: Option<String> = None;
    loop {
        watch.check_stalls();
        // Once every shard serves, recovery is over and its summary is
        // due even when a stop was requested right after (a quick
        // restart); before that, a stop ends recovery without one.
        let all_started = watch.started() == watch.shards().len();
        if all_started || !shutdown::requested() {
            recovery.report(all_started);
        }
        if watch.all_finished() {
            return match start_overrun {
                Some(message) => Err(RunError {
                    message,
                    exit_code: EXIT_START_TIMEOUT,
                }),
                None => Ok(()),
            };
        }
        let now = Instant::now();
        // An operator's stop: shard 0 hands over and requests the stop;
        // at once when not every shard serves yet (nothing to hand over),
        // and past the bound of a controlled shutdown in any case.
        if shutdown::asked() && !shutdown::requested() {
            let at = *asked_at.get_or_insert(now);
            if watch.started() < watch.shards().len() || now.duration_since(at) > handover_bound {
                shutdown::request();
            }
        }
        if stop_deadline.is_none() && shutdown::requested() {
            stop_deadline = Some(now + stop_bound);
        }
        if start_overrun.is_none()
            && stop_deadline.is_none()
            && watch.started() < watch.shards().len()
            && now.duration_since(started_at) > start_bound
        {
            let message = format!(
                "the broker did not start within {} ms: {} did not start",
                start_bound.as_millis(),
                watch.describe(|s| !s.is_started())
            );
            log::error!("{message}");
            start_overrun = Some(message);
            shutdown::request();
            // The shards that did start get a short moment to close their
            // logs; the stuck one is not waited for past it.
            stop_deadline = Some(now + tick * 20);
        }
        if let Some(deadline) = stop_deadline {
            if now > deadline {
                if let Some(message) = start_overrun {
                    return Err(RunError {
                        message,
                        exit_code: EXIT_START_TIMEOUT,
                    });
                }
                let mut message = format!(
                    "the broker did not stop within {} ms: {} still running; \
                     their logs are recovered at the next start",
                    stop_bound.as_millis(),
                    watch.describe(|s| !s.is_finished())
                );
                let failed = failures.lock().unwrap_or_else(|e| e.into_inner());
                if !failed.is_empty() {
                    message = format!("{} (stopping because {message})", failed.join("; "));
                }
                log::error!("{message}");
                return Err(RunError {
                    message,
                    exit_code: EXIT_STOP_TIMEOUT,
                });
            }
        }
        std::thread::sleep(tick);
    }
}
