//! `docs/metrics.md`, generated from the tables of metric families
//! (`families`, then `cluster_families`), and the checks every family
//! passes (unique names, Prometheus' naming conventions).

use super::cluster_families::CLUSTER;
use super::families::ALL;

/// `docs/metrics.md`: the table as Markdown.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Metrics\n\n\
         Generated from `src/metrics/families.rs` and `src/metrics/cluster_families.rs` (the\n\
         tables of metric families) by\n\
         `CORELOG_WRITE_DOCS=1 cargo test --release --lib metrics::families`; a test fails\n\
         when this file differs from what the table generates.\n\n\
         Each node serves them at `http://<http.listeners>/metrics` in Prometheus' text\n\
         exposition format 0.0.4 (`http.listeners` defaults to `127.0.0.1:9644`; an empty\n\
         value turns the listener off). Counters count since the process started\n\
         (per-partition ones since the partition was opened); figures are recorded on each\n\
         shard and added up, or labelled by `shard`, when scraped. Per-partition families\n\
         cover the partitions this node holds, led or followed, the first\n\
         `metrics.partition.limit` of them by topic and partition (default 5000; 0 turns\n\
         them off). The static broker config `metrics.enabled=false` stops recording\n\
         the per-request and storage figures (those families stay at zero), to measure\n\
         what recording costs. The same listener answers `/health` (200 while the process serves)\n\
         and `/ready` (200 once log recovery is done and, in a cluster, the node is\n\
         registered with the controller quorum and has applied a metadata image; else\n\
         503 with a JSON body naming what is not ready).\n\n\
         | name | type | labels | meaning |\n|---|---|---|---|\n",
    );
    for family in ALL.iter().chain(CLUSTER) {
        let labels: Vec<String> = family.labels.iter().map(|l| format!("`{l}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            family.name,
            family.kind.name(),
            labels.join(", "),
            family.help.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Kind;

    #[test]
    fn names_are_unique_prefixed_and_follow_the_conventions() {
        let mut seen = std::collections::HashSet::new();
        for family in ALL.iter().chain(CLUSTER) {
            assert!(seen.insert(family.name), "{} twice", family.name);
            assert!(family.name.starts_with("corelog_"), "{}", family.name);
            assert!(
                family
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                family.name
            );
            assert_eq!(
                family.kind == Kind::Counter,
                family.name.ends_with("_total"),
                "{}: counters, and only counters, end in _total",
                family.name
            );
            assert!(!family.help.contains('\n'), "{}", family.name);
        }
    }

    /// docs/metrics.md is what the table generates; with
    /// CORELOG_WRITE_DOCS=1 this test writes it instead.
    #[test]
    fn the_metrics_doc_is_generated_from_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md");
        let generated = markdown();
        if std::env::var_os("CORELOG_WRITE_DOCS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == generated,
            "docs/metrics.md is out of date: run CORELOG_WRITE_DOCS=1 cargo test --release \
             --lib metrics::families"
        );
    }
}
