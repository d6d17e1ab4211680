//! Where each shard's executor runs. A pinned shard owns its core: no
//! migrations, a warm cache and one reactor per core. Pinning is only right
//! when every shard gets a core of its own among those this process may use
//! (its affinity mask: `taskset`, a cgroup's cpuset, a container's CPU
//! limit); two shards pinned to one core take turns on it while another core
//! idles, and several brokers on one host that each pin "shard 0 to core 0"
//! (a dev cluster, a test cluster) all run on core 0. So the default pins
//! one shard per allowed core when there are enough of them, and otherwise
//! pins nothing and lets the kernel spread the executors.

use std::fmt;
use std::str::FromStr;

/// How the operator asked for shards to be placed (`serve --cores`, or the
/// tuning profile's `cores`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cores {
    /// One shard per allowed core when there are enough, else unpinned.
    #[default]
    Auto,
    /// No pinning: the kernel schedules the executors.
    Unpinned,
    /// Shard i runs on the i-th core of the list.
    List(Vec<usize>),
}

impl FromStr for Cores {
    type Err = String;

    /// `auto`, `none`, or a comma-separated list of core numbers with
    /// ranges, as `taskset -c` takes them (`0,2,4-7`).
    fn from_str(text: &str) -> Result<Cores, String> {
        match text.trim() {
            "auto" => return Ok(Cores::Auto),
            "none" => return Ok(Cores::Unpinned),
            _ => {}
        }
        let mut cores = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let number = |s: &str| {
                s.trim().parse::<usize>().map_err(|_| {
                    format!("`{s}` is not a core number (auto, none, or a list such as 0,2,4-7)")
                })
            };
            match part.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (number(first)?, number(last)?);
                    if first > last || last - first >= crate::limits::SHARDS_MAX {
                        return Err(format!(
                            "`{part}` is not a range of at most {} cores",
                            crate::limits::SHARDS_MAX
                        ));
                    }
                    cores.extend(first..=last);
                }
                None => cores.push(number(part)?),
            }
            if cores.len() > crate::limits::SHARDS_MAX {
                return Err(format!("more than {} cores", crate::limits::SHARDS_MAX));
            }
        }
        let mut sorted = cores.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("`{text}` names a core twice: one shard per core"));
        }
        Ok(Cores::List(cores))
    }
}

impl fmt::Display for Cores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cores::Auto => f.write_str("auto"),
            Cores::Unpinned => f.write_str("none"),
            Cores::List(cores) => {
                let text: Vec<String> = cores.iter().map(usize::to_string).collect();
                f.write_str(&text.join(","))
            }
        }
    }
}

/// Where each shard runs, and why, in words for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Per shard: the core it is pinned to, or None.
    pub cores: Vec<Option<usize>>,
    pub why: String,
    /// The operator asked for nothing and there are fewer allowed cores
    /// than shards: worth a warning at start, since shards will take turns.
    pub oversubscribed: bool,
}

/// The cores this process may run on (its affinity mask), ascending.
pub fn allowed_cores() -> Vec<usize> {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&core| set.is_set(core).unwrap_or(false))
            .collect(),
        Err(_) => {
            let online = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..online).collect()
        }
    }
}

/// The placement of `shards` shards as `asked`, on a process allowed to
/// run on `allowed`. Err names a listed core the process may not use
/// (pinning there would fail, or escape the operator's `taskset`).
pub fn plan(shards: usize, asked: &Cores, allowed: &[usize]) -> Result<Plan, String> {
    match asked {
        Cores::List(cores) => {
            if let Some(core) = cores.iter().find(|c| !allowed.contains(c)) {
                return Err(format!(
                    "core {core} is not one this process may run on ({}); \
                     see its affinity (taskset -p) or the cgroup's cpuset",
                    list(allowed)
                ));
            }
            Ok(Plan {
                cores: cores.iter().take(shards).map(|&c| Some(c)).collect(),
                why: format!(
                    "{shards} shards pinned to cores {} as configured",
                    list(cores)
                ),
                oversubscribed: false,
            })
        }
        Cores::Unpinned => Ok(Plan {
            cores: vec![None; shards],
            why: format!("{shards} shards, not pinned (cores = none)"),
            oversubscribed: false,
        }),
        Cores::Auto if shards <= allowed.len() => {
            let cores = &allowed[..shards];
            Ok(Plan {
                cores: cores.iter().map(|&c| Some(c)).collect(),
                why: format!(
                    "{shards} shards pinned one per core to cores {} (this process may use {}); \
                     --cores none leaves them unpinned when other work shares these cores",
                    list(cores),
                    list(allowed)
                ),
                oversubscribed: false,
            })
        }
        Cores::Auto => Ok(Plan {
            cores: vec![None; shards],
            why: format!(
                "{shards} shards, not pinned: this process may use only {} cores ({}), and \
                 pinned shards sharing a core would take turns on it while another idles",
                allowed.len(),
                list(allowed)
            ),
            oversubscribed: true,
        }),
    }
}

fn list(cores: &[usize]) -> String {
    let text: Vec<String> = cores.iter().map(usize::to_string).collect();
    format!("[{}]", text.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_parse_as_taskset_writes_them() {
        assert_eq!("auto".parse(), Ok(Cores::Auto));
        assert_eq!("none".parse(), Ok(Cores::Unpinned));
        assert_eq!("3".parse(), Ok(Cores::List(vec![3])));
        assert_eq!("0,2,4-6".parse(), Ok(Cores::List(vec![0, 2, 4, 5, 6])));
        assert!("1,1".parse::<Cores>().unwrap_err().contains("twice"));
        assert!("2-1".parse::<Cores>().is_err());
        assert!("0-4000000000".parse::<Cores>().is_err());
        assert!("x"
            .parse::<Cores>()
            .unwrap_err()
            .contains("not a core number"));
        assert_eq!(Cores::List(vec![0, 2]).to_string(), "0,2");
    }

    #[test]
    fn auto_pins_one_shard_per_allowed_core_or_nothing() {
        // taskset -c 2,3: shards go to 2 and 3, not to 0 and 1.
        let plan = plan(2, &Cores::Auto, &[2, 3]).unwrap();
        assert_eq!(plan.cores, vec![Some(2), Some(3)]);
        // Fewer shards than cores: the first allowed ones.
        assert_eq!(plan_of(1, &Cores::Auto, &[1, 5]), vec![Some(1)]);
        // More shards than cores: nobody is pinned.
        let plan = super::plan(8, &Cores::Auto, &[0, 1]).unwrap();
        assert_eq!(plan.cores, vec![None; 8]);
        assert!(plan.why.contains("not pinned"), "{}", plan.why);
        assert!(plan.oversubscribed);
        assert_eq!(plan_of(2, &Cores::Unpinned, &[0, 1]), vec![None, None]);
    }

    #[test]
    fn a_listed_core_must_be_allowed() {
        assert_eq!(
            plan_of(2, &Cores::List(vec![1, 0]), &[0, 1]),
            vec![Some(1), Some(0)]
        );
        let refused = plan(1, &Cores::List(vec![3]), &[0, 1]).unwrap_err();
        assert!(refused.contains("core 3"), "{refused}");
    }

    fn plan_of(shards: usize, asked: &Cores, allowed: &[usize]) -> Vec<Option<usize>> {
        plan(shards, asked, allowed).unwrap().cores
    }
}
