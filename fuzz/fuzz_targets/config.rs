//! The configuration parsers: a `server.properties` file (Kafka's
//! properties format), a TOML server file and a TOML tuning profile, each
//! through `Config::build` as `corelog serve --config/--tuning` runs it
//! (with `--override key=value` flags from the input); and the topic and
//! dynamic broker configs clients send (CreateTopics, AlterConfigs,
//! IncrementalAlterConfigs): `validate_topic_config`,
//! `TopicConfig::resolve` and `BrokerDefaults::set`, where a value the
//! broker shows must be accepted back. The file's text is also parsed as a
//! `serve --cores` list (`shard::placement`).
//!
//! Input: `[mode u8][file: length u32 LE, bytes][key=value lines]`.
//! Listener hosts that are names are resolved by the parser: run this target
//! without network (`run.sh` uses `unshare -n` where it can) so lookups fail
//! fast instead of querying DNS.

#![no_main]

use std::collections::BTreeMap;

use corelog::config::{
    validate_topic_config, BrokerDefaults, Config, Cores, ServeArgs, TopicConfig,
};
use corelog_fuzz::{scratch_dir, Reader};
use libfuzzer_sys::fuzz_target;

const OVERRIDES_MAX: usize = 32;

fn lines(bytes: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(bytes)
        .lines()
        .take(OVERRIDES_MAX)
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn serve(mode: u8, file: &[u8], overrides: &[(String, String)]) {
    let name = match mode {
        0 => "server.properties",
        1 => "server.toml",
        _ => "tuning.toml",
    };
    let path = scratch_dir().join(name);
    std::fs::write(&path, file).unwrap();
    let mut args = ServeArgs {
        overrides: overrides.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        ..ServeArgs::default()
    };
    if mode == 2 {
        args.tuning = Some(path);
    } else {
        args.config = Some(path);
    }
    if let Ok(config) = Config::build(&args) {
        assert!((1..=corelog::limits::SHARDS_MAX).contains(&config.shards));
        assert!(config.data_dir.is_absolute());
    }
    // `serve --cores`: whatever parses prints back to itself, and its list
    // stays within the shard bound.
    if let Ok(text) = std::str::from_utf8(file) {
        if let Ok(cores) = text.parse::<Cores>() {
            assert_eq!(cores.to_string().parse::<Cores>(), Ok(cores.clone()));
            if let Cores::List(list) = &cores {
                assert!(list.len() <= corelog::limits::SHARDS_MAX);
                let plan = corelog::shard::placement::plan(list.len(), &cores, list)
                    .expect("a listed core that is allowed");
                assert_eq!(plan.cores.len(), list.len());
            }
        }
    }
}

fn client_configs(pairs: &[(String, String)]) {
    let defaults = BrokerDefaults::default();
    let mut topic = BTreeMap::new();
    let mut dynamic = BTreeMap::new();
    for (key, value) in pairs {
        if validate_topic_config(key, value).is_ok() {
            topic.insert(key.clone(), value.clone());
        }
        let mut broker = defaults.clone();
        if broker.set(key, value).is_ok() {
            dynamic.insert(key.clone(), value.clone());
            // DescribeConfigs shows this value; AlterConfigs takes it back.
            if let Some(shown) = broker.get(key) {
                let mut again = defaults.clone();
                again
                    .set(key, &shown)
                    .unwrap_or_else(|e| panic!("{key}={shown:?} shown but refused: {e}"));
            }
        }
    }
    let effective = defaults.with_dynamic(&dynamic);
    let resolved = TopicConfig::resolve(&effective, &topic);
    for key in topic.keys() {
        let _ = TopicConfig::default_value(&effective, key);
    }
    let _ = resolved;
}

fuzz_target!(|data: &[u8]| {
    let mut input = Reader::new(data);
    let mode = input.u8() % 4;
    let file = input.field();
    let pairs = lines(input.rest());
    match mode {
        0..=2 => serve(mode, file, &pairs),
        _ => client_configs(&lines(file)),
    }
});
