//! The writer of Prometheus' text exposition format, version 0.0.4: per
//! family a `# HELP` and a `# TYPE` line, then its samples, one per line,
//! `name{label="value",...} value`. Label values and help text are escaped
//! as the format requires (backslash, double quote and line feed in label
//! values; backslash and line feed in help text), so a topic name cannot
//! break a line or forge a sample.

use std::fmt::Write;

use super::families::{Family, Kind};
use super::histogram::HistogramSnapshot;

/// The `Content-Type` of what [`Exposition::finish`] returns.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A scrape's text, written family by family.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts `family`: its help and type lines. Its samples follow,
    /// through the returned writer, before the next family starts.
    pub fn family(&mut self, family: &'static Family) -> FamilyWriter<'_> {
        let _ = writeln!(
            self.out,
            "# HELP {} {}\n# TYPE {} {}",
            family.name,
            escape_help(family.help),
            family.name,
            family.kind.name()
        );
        FamilyWriter {
            out: &mut self.out,
            family,
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Writes the samples of one family.
pub struct FamilyWriter<'a> {
    out: &'a mut String,
    family: &'static Family,
}

impl FamilyWriter<'_> {
    /// A counter or gauge sample with a whole value. `values` are the
    /// family's label values, in the order of its labels.
    pub fn int(&mut self, values: &[&str], value: u64) {
        self.line("", values, None, &value.to_string());
    }

    /// A gauge sample that may be negative (an offset of an empty log).
    pub fn signed(&mut self, values: &[&str], value: i64) {
        self.line("", values, None, &value.to_string());
    }

    /// A counter or gauge sample with a value that may have a fraction
    /// (seconds).
    pub fn float(&mut self, values: &[&str], value: f64) {
        self.line("", values, None, &float_text(value));
    }

    /// A histogram's samples: cumulative `_bucket`s with `le`, `_sum` (in
    /// the exported unit: seconds, bytes) and `_count`.
    pub fn histogram(&mut self, values: &[&str], h: &HistogramSnapshot) {
        debug_assert_eq!(self.family.kind, Kind::Histogram);
        for (bound, count) in h.cumulative() {
            let le = bound.map_or_else(|| "+Inf".to_string(), float_text);
            self.line("_bucket", values, Some(&le), &count.to_string());
        }
        self.line("_sum", values, None, &float_text(h.exported_sum()));
        self.line("_count", values, None, &h.count().to_string());
    }

    fn line(&mut self, suffix: &str, values: &[&str], le: Option<&str>, value: &str) {
        debug_assert_eq!(
            values.len(),
            self.family.labels.len(),
            "{}",
            self.family.name
        );
        let out = &mut *self.out;
        out.push_str(self.family.name);
        out.push_str(suffix);
        let mut pairs = self
            .family
            .labels
            .iter()
            .copied()
            .zip(values.iter().copied())
            .chain(le.map(|le| ("le", le)))
            .peekable();
        if pairs.peek().is_some() {
            out.push('{');
            for (i, (name, value)) in pairs.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(name);
                out.push_str("=\"");
                escape_label_value_into(out, value);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        out.push_str(value);
        out.push('\n');
    }
}

/// A label value as the format writes it between double quotes.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    escape_label_value_into(&mut out, value);
    out
}

fn escape_label_value_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text as the format writes it after `# HELP name `.
pub fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as the format writes it (`+Inf`, `-Inf`, `NaN` for the
/// special values; Rust's shortest form otherwise, never an exponent).
fn float_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::families::Family;
    use crate::metrics::histogram::LatencyHistogram;

    static PLAIN: Family = Family {
        name: "corelog_test_bytes",
        kind: Kind::Gauge,
        labels: &[],
        help: "A help text with a \\ backslash\nand a line feed.",
    };
    static LABELLED: Family = Family {
        name: "corelog_test_total",
        kind: Kind::Counter,
        labels: &["topic", "partition"],
        help: "Labelled.",
    };
    static TIMED: Family = Family {
        name: "corelog_test_seconds",
        kind: Kind::Histogram,
        labels: &["api"],
        help: "Timed.",
    };

    #[test]
    fn label_values_escape_backslash_quote_and_line_feed() {
        assert_eq!(escape_label_value("plain.topic-1_x"), "plain.topic-1_x");
        assert_eq!(
            escape_label_value("a\\b\"c\nd"),
            "a\\\\b\\\"c\\nd",
            "each of the three is escaped, nothing else"
        );
        assert_eq!(escape_label_value("ünïcode {}=,"), "ünïcode {}=,");
        assert_eq!(escape_help("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");
    }

    #[test]
    fn families_write_help_type_and_samples() {
        let mut e = Exposition::new();
        e.family(&PLAIN).int(&[], 42);
        {
            let mut f = e.family(&LABELLED);
            f.int(&["evil\"}\ntopic", "3"], 7);
            f.float(&["t", "0"], -1.0);
        }
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP corelog_test_bytes A help text with a \\\\ backslash\\nand a line feed.\n\
             # TYPE corelog_test_bytes gauge\n\
             corelog_test_bytes 42\n\
             # HELP corelog_test_total Labelled.\n\
             # TYPE corelog_test_total counter\n\
             corelog_test_total{topic=\"evil\\\"}\\ntopic\",partition=\"3\"} 7\n\
             corelog_test_total{topic=\"t\",partition=\"0\"} -1\n"
        );
    }

    #[test]
    fn a_histogram_writes_cumulative_buckets_sum_and_count() {
        let h = LatencyHistogram::default();
        h.record(150);
        h.record(1_500_000);
        let mut e = Exposition::new();
        e.family(&TIMED).histogram(&["Produce"], &h.snapshot());
        let text = e.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2],
            "corelog_test_seconds_bucket{api=\"Produce\",le=\"0.0001\"} 0"
        );
        assert_eq!(
            lines[3],
            "corelog_test_seconds_bucket{api=\"Produce\",le=\"0.00025\"} 1"
        );
        assert!(text.contains("corelog_test_seconds_bucket{api=\"Produce\",le=\"1\"} 1\n"));
        assert!(text.contains("corelog_test_seconds_bucket{api=\"Produce\",le=\"2.5\"} 2\n"));
        assert!(text.contains("corelog_test_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("corelog_test_seconds_sum{api=\"Produce\"} 1.50015\n"));
        assert!(text.ends_with("corelog_test_seconds_count{api=\"Produce\"} 2\n"));
    }

    #[test]
    fn special_floats_use_the_formats_words() {
        assert_eq!(float_text(f64::NAN), "NaN");
        assert_eq!(float_text(f64::INFINITY), "+Inf");
        assert_eq!(float_text(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float_text(0.000_000_1), "0.0000001");
        assert_eq!(float_text(3.0), "3");
    }
}
