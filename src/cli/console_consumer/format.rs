//! Kafka's `DefaultMessageFormatter`: how the console consumer prints one
//! record, driven by the `--property print.*` and separator properties.

use std::io::{self, Write};

use super::super::client::CliResult;
use super::super::output::{flag, parse_key_values};

/// Kafka's `DefaultMessageFormatter`.
pub struct Formatter {
    print_timestamp: bool,
    print_partition: bool,
    print_offset: bool,
    print_headers: bool,
    print_key: bool,
    print_value: bool,
    key_separator: Vec<u8>,
    line_separator: Vec<u8>,
    headers_separator: Vec<u8>,
    null_literal: Vec<u8>,
}

impl Formatter {
    pub fn new(properties: &[String]) -> CliResult<Formatter> {
        let props = parse_key_values(properties, "--property")?;
        let text = |key: &str, default: &str| {
            props
                .get(key)
                .map_or(default.as_bytes().to_vec(), |v| unescape(v).into_bytes())
        };
        Ok(Formatter {
            print_timestamp: flag(&props, "print.timestamp")?,
            print_partition: flag(&props, "print.partition")?,
            print_offset: flag(&props, "print.offset")?,
            print_headers: flag(&props, "print.headers")?,
            print_key: flag(&props, "print.key")?,
            print_value: !props.contains_key("print.value") || flag(&props, "print.value")?,
            key_separator: text("key.separator", "\t"),
            line_separator: text("line.separator", "\n"),
            headers_separator: text("headers.separator", ","),
            null_literal: text("null.literal", "null"),
        })
    }

    fn bytes<'a>(&'a self, value: Option<&'a [u8]>) -> &'a [u8] {
        value.unwrap_or(&self.null_literal)
    }

    /// Writes one record; each field is followed by the key separator when a
    /// later field is printed, and the value by the line separator.
    pub fn write(
        &self,
        out: &mut impl Write,
        partition: i32,
        record: &Printed,
        log_append: bool,
    ) -> io::Result<()> {
        let fields = [
            self.print_timestamp,
            self.print_partition,
            self.print_offset,
            self.print_headers,
            self.print_key,
            self.print_value,
        ];
        let more_after = |i: usize| fields[i + 1..].iter().any(|f| *f);
        if self.print_timestamp {
            let kind = if log_append {
                "LogAppendTime"
            } else {
                "CreateTime"
            };
            write!(out, "{kind}:{}", record.timestamp)?;
            self.separator(out, more_after(0))?;
        }
        if self.print_partition {
            write!(out, "Partition:{partition}")?;
            self.separator(out, more_after(1))?;
        }
        if self.print_offset {
            write!(out, "Offset:{}", record.offset)?;
            self.separator(out, more_after(2))?;
        }
        if self.print_headers {
            if record.headers.is_empty() {
                out.write_all(b"NO_HEADERS")?;
            }
            for (i, (name, value)) in record.headers.iter().enumerate() {
                if i > 0 {
                    out.write_all(&self.headers_separator)?;
                }
                // Header keys are strings to Kafka's formatter: bytes that
                // are not UTF-8 print as U+FFFD, as Java decodes them.
                write!(out, "{}:", String::from_utf8_lossy(name))?;
                out.write_all(self.bytes(*value))?;
            }
            self.separator(out, more_after(3))?;
        }
        if self.print_key {
            out.write_all(self.bytes(record.key))?;
            self.separator(out, more_after(4))?;
        }
        if self.print_value {
            out.write_all(self.bytes(record.value))?;
            out.write_all(&self.line_separator)?;
        }
        Ok(())
    }

    fn separator(&self, out: &mut impl Write, more: bool) -> io::Result<()> {
        if more {
            out.write_all(&self.key_separator)?;
        }
        Ok(())
    }
}

/// One record as the formatter prints it, borrowed from its batch.
pub struct Printed<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// In order, duplicate keys kept.
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// `\t`, `\n` and `\r` in a separator property mean the control characters.
fn unescape(text: &str) -> String {
    text.replace("\\t", "\t")
        .replace("\\n", "\n")
        .replace("\\r", "\r")
}
