//! docs/monitoring/: the Prometheus configuration and alert rules pass
//! promtool's checks and the rules' unit test, every Grafana panel's query
//! is PromQL promtool accepts, the dashboard is JSON Grafana can import,
//! and every metric name the files use is a family of docs/metrics.md.
//!
//! promtool comes from Debian's prometheus package (tests/monitoring/setup.sh
//! installs it; .ci/run calls that). Under CI=true a missing promtool fails
//! the test; elsewhere the YAML files are only parsed, and the test says
//! so on stderr.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::wait_bounded;
use serde_json::Value;

/// How long one promtool (or python3) run may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitoring")
}

fn read(name: &str) -> String {
    let path = monitoring_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `program args` in docs/monitoring, bounded: its exit success and
/// its stdout and stderr.
fn run_tool(program: &str, args: &[&str]) -> (bool, String) {
    let out_path = std::env::temp_dir().join(format!(
        "corelog-monitoring-{}-{}.out",
        std::process::id(),
        args.join("_").replace(['/', '.'], "_")
    ));
    let out = std::fs::File::create(&out_path).expect("create the tool's output file");
    let mut child = Command::new(program)
        .args(args)
        .current_dir(monitoring_dir())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone the output file"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let status = wait_bounded(&mut child, TOOL_TIMEOUT)
        .unwrap_or_else(|| panic!("{program} {args:?} did not finish within {TOOL_TIMEOUT:?}"));
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    (status.success(), output)
}

/// Whether `program --version` runs.
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether promtool is there; under CI its absence is a failure.
fn promtool_available() -> bool {
    if available("promtool") {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "promtool is missing under CI: tests/monitoring/setup.sh installs it (Debian's prometheus \
         package) and .ci/run calls that"
    );
    false
}

fn promtool_ok(args: &[&str]) {
    let (ok, output) = run_tool("promtool", args);
    assert!(ok, "promtool {} failed:\n{output}", args.join(" "));
}

#[test]
fn prometheus_config_and_alert_rules_pass_promtool() {
    if promtool_available() {
        // check config also checks the rule files it names.
        promtool_ok(&["check", "config", "prometheus.yml"]);
        promtool_ok(&["check", "rules", "alerts.yml"]);
        promtool_ok(&["test", "rules", "alerts.test.yml"]);
        return;
    }
    // Outside CI without promtool: the files must at least be YAML.
    let files = ["prometheus.yml", "alerts.yml", "alerts.test.yml"];
    let parse = "import sys, yaml\nfor f in sys.argv[1:]:\n    yaml.safe_load(open(f))";
    let python_yaml = run_tool("python3", &["-c", "import yaml"]).0;
    if python_yaml {
        let mut args = vec!["-c", parse];
        args.extend(files);
        let (ok, output) = run_tool("python3", &args);
        assert!(ok, "docs/monitoring's YAML does not parse:\n{output}");
        eprintln!(
            "SKIPPED: promtool is not installed, so docs/monitoring's files were only parsed as \
             YAML (not checked or unit-tested): run bash tests/monitoring/setup.sh"
        );
    } else {
        eprintln!(
            "SKIPPED: neither promtool nor python3's yaml module is installed, so \
             docs/monitoring's YAML files were not checked: run bash tests/monitoring/setup.sh"
        );
    }
}

/// The dashboard as JSON.
fn dashboard() -> Value {
    serde_json::from_str(&read("grafana-dashboard.json"))
        .unwrap_or_else(|e| panic!("docs/monitoring/grafana-dashboard.json is not JSON: {e}"))
}

/// Every query of the dashboard: each panel target's `expr`, and the
/// series selector of each template variable's `label_values(SELECTOR,
/// LABEL)` (Grafana's function, not PromQL's).
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let mut queries = Vec::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(
                target["expr"]
                    .as_str()
                    .expect("a target's expr")
                    .to_string(),
            );
        }
    }
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    for variable in variables {
        if let Some(definition) = variable["definition"].as_str() {
            let selector = definition
                .strip_prefix("label_values(")
                .and_then(|rest| rest.rsplit_once(','))
                .map(|(selector, _)| selector)
                .unwrap_or_else(|| {
                    panic!("a variable query other than label_values: {definition}")
                });
            queries.push(selector.to_string());
        }
    }
    queries
}

#[test]
fn the_dashboard_is_grafana_json_with_a_query_in_every_panel() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "corelog-overview");
    assert!(dashboard["schemaVersion"].as_u64().is_some());
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut graphs = 0;
    for panel in panels {
        let id = panel["id"].as_u64().expect("a panel's id");
        assert!(ids.insert(id), "panel id {id} twice");
        let grid = &panel["gridPos"];
        for key in ["h", "w", "x", "y"] {
            assert!(grid[key].as_u64().is_some(), "panel {id}: gridPos.{key}");
        }
        assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24);
        if panel["type"] == "row" {
            continue;
        }
        graphs += 1;
        assert!(panel["title"].as_str().is_some_and(|t| !t.is_empty()));
        let targets = panel["targets"].as_array().expect("a panel's targets");
        assert!(!targets.is_empty(), "panel {id} has no query");
        for target in targets {
            assert!(target["expr"]
                .as_str()
                .is_some_and(|e| !e.trim().is_empty()));
        }
    }
    assert!(graphs >= 30, "only {graphs} panels");

    // Each query is PromQL: promtool checks them as recording rules, with
    // Grafana's variables given values.
    if !promtool_available() {
        eprintln!(
            "SKIPPED: promtool is not installed, so the dashboard's PromQL was not checked: run \
             bash tests/monitoring/setup.sh"
        );
        return;
    }
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in dashboard_queries(&dashboard).iter().enumerate() {
        let query = query
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        // A JSON string is a YAML double-quoted scalar.
        let quoted = serde_json::to_string(&query).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {quoted}\n"
        ));
    }
    let path = std::env::temp_dir().join(format!(
        "corelog-dashboard-queries-{}.yml",
        std::process::id()
    ));
    std::fs::write(&path, rules).expect("write the queries' rule file");
    let (ok, output) = run_tool("promtool", &["check", "rules", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(ok, "a dashboard query is not valid PromQL:\n{output}");
}

/// The families documented in docs/metrics.md (its table's first column).
fn documented_families() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .expect("docs/metrics.md");
    doc.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The metric names in `text`: every `corelog_...` word, and every name
/// written as a selector (`name{`), so a metric from elsewhere is seen too.
fn metric_names(text: &str) -> BTreeSet<String> {
    let corelog = regex::Regex::new(r"\bcorelog_[a-z0-9_]+\b").unwrap();
    let selector = regex::Regex::new(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{").unwrap();
    let mut names: BTreeSet<String> = corelog
        .find_iter(text)
        .map(|m| m.as_str().to_string())
        .collect();
    names.extend(selector.captures_iter(text).map(|c| c[1].to_string()));
    names
}

/// Whether `name` is a documented family, a histogram's series of one
/// (`_bucket`, `_sum`, `_count`) or Prometheus' own `up`.
fn is_known(name: &str, families: &BTreeSet<String>) -> bool {
    if name == "up" || families.contains(name) {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .is_some_and(|f| families.contains(f))
    })
}

/// Fails until every family the files use is in docs/metrics.md: the
/// families the dashboard and rules are written against arrive from other
/// branches, and this names the ones still missing.
#[test]
fn every_metric_the_dashboard_and_rules_use_is_a_documented_family() {
    let families = documented_families();
    assert!(families.len() >= 30, "docs/metrics.md lists {families:?}");
    let dashboard = dashboard();
    let sources = [
        (
            "grafana-dashboard.json",
            dashboard_queries(&dashboard).join("\n"),
        ),
        ("alerts.yml", read("alerts.yml")),
        ("alerts.test.yml", read("alerts.test.yml")),
    ];
    // Each missing name with the files that use it.
    let mut missing: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (file, text) in &sources {
        let names = metric_names(text);
        assert!(
            names.iter().any(|n| n.starts_with("corelog_")),
            "{file}: no corelog metric found: the name extraction is broken"
        );
        for name in names {
            if !is_known(&name, &families) {
                missing.entry(name).or_default().push(file);
            }
        }
    }
    let listed: Vec<String> = missing
        .iter()
        .map(|(name, files)| format!("{name} (in {})", files.join(", ")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} metric names used in docs/monitoring are not families in docs/metrics.md:\n  {}",
        missing.len(),
        listed.join("\n  ")
    );
}
