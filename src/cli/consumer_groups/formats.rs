//! The text formats `consumer-groups --reset-offsets` reads and writes as
//! Kafka's tool does: `--to-datetime` (YYYY-MM-DDTHH:mm:SS[.sss], UTC),
//! `--by-duration` (ISO-8601 PnDTnHnMnS, as Java's `Duration.parse`), and
//! the CSV of `--export` / `--from-file` (`topic,partition,offset` for one
//! group, `group,topic,partition,offset` for several; fields with a comma
//! or a quote are quoted, quotes doubled).

use std::collections::BTreeMap;

use super::super::client::{fail, CliError, CliResult};
use super::group::TopicPartition;

/// New offsets by group, then partition.
pub type Plan = BTreeMap<String, BTreeMap<TopicPartition, i64>>;

/// `YYYY-MM-DDTHH:mm:SS[.sss]` in UTC to epoch milliseconds.
pub fn parse_datetime_ms(text: &str) -> CliResult<i64> {
    let bad = || {
        CliError(format!(
            "cannot parse datetime {text:?}: expected YYYY-MM-DDTHH:mm:SS[.sss]"
        ))
    };
    let text = text.trim_end_matches('Z');
    let (date, time) = text.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) => (
            hms,
            format!("{frac:0<3}")[..3]
                .parse::<i64>()
                .map_err(|_| bad())?,
        ),
        Some(_) => return Err(bad()),
        None => (time, 0),
    };
    let t: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if d.len() != 3
        || t.len() != 3
        || !(1..=12).contains(&d[1])
        || !(1..=31).contains(&d[2])
        || !(0..24).contains(&t[0])
        || !(0..60).contains(&t[1])
        || !(0..60).contains(&t[2])
    {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + millis)
}

/// An ISO-8601 duration as Java's `Duration.parse` reads it —
/// `[-]P[nD][T[nH][nM][n[.f]S]]`, each number optionally signed, letters
/// in either case — in milliseconds.
pub fn parse_duration_ms(text: &str) -> CliResult<i64> {
    let bad = || {
        CliError(format!(
            "--by-duration {text:?} is not a duration of the form PnDTnHnMnS"
        ))
    };
    let upper = text.trim().to_ascii_uppercase();
    let (negated, rest) = match upper.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, upper.strip_prefix('+').unwrap_or(&upper)),
    };
    let rest = rest.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = match rest.split_once('T') {
        Some((_, "")) => return Err(bad()),
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut total: i128 = 0;
    let mut any = false;
    let mut parts = |section: &str, units: &[(char, i128)]| -> CliResult<()> {
        let mut left = section;
        let mut next_unit = 0;
        while !left.is_empty() {
            let end = left
                .find(|c: char| c.is_ascii_alphabetic())
                .ok_or_else(bad)?;
            let (number, unit) = (&left[..end], left[end..].chars().next().ok_or_else(bad)?);
            let at = units[next_unit..]
                .iter()
                .position(|(u, _)| *u == unit)
                .ok_or_else(bad)?;
            let scale = units[next_unit + at].1;
            next_unit += at + 1;
            total += if unit == 'S' {
                seconds_ms(number).ok_or_else(bad)?
            } else {
                let n: i128 = number.parse().map_err(|_| bad())?;
                n * scale
            };
            any = true;
            left = &left[end + 1..];
        }
        Ok(())
    };
    parts(date, &[('D', 86_400_000)])?;
    if let Some(time) = time {
        parts(time, &[('H', 3_600_000), ('M', 60_000), ('S', 1000)])?;
    }
    if !any {
        return Err(bad());
    }
    let total = if negated { -total } else { total };
    i64::try_from(total).map_err(|_| bad())
}

/// `[-]n[.fff]` seconds in milliseconds (finer fractions are dropped).
fn seconds_ms(text: &str) -> Option<i128> {
    let (whole, fraction) = match text.split_once(['.', ',']) {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let negative = whole.starts_with('-');
    let seconds: i128 = whole.parse().ok()?;
    let millis: i128 = format!("{fraction:0<3}")[..3].parse().ok()?;
    Some(seconds * 1000 + if negative { -millis } else { millis })
}

/// The plan as `--export` writes it: one line per partition, with the
/// group's name first unless the command named exactly one group.
pub fn export_csv(plan: &Plan, with_group: bool) -> String {
    let mut out = String::new();
    for (group, offsets) in plan {
        for ((topic, partition), offset) in offsets {
            let mut fields = Vec::with_capacity(4);
            if with_group {
                fields.push(csv_field(group));
            }
            fields.push(csv_field(topic));
            fields.push(partition.to_string());
            fields.push(offset.to_string());
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Reads `--from-file`: lines of `topic,partition,offset` for
/// `single_group` (the one group the command names), else of
/// `group,topic,partition,offset`.
pub fn parse_csv(text: &str, single_group: Option<&str>) -> CliResult<Plan> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let without_group = single_group.filter(|_| {
        lines
            .first()
            .is_some_and(|l| split_csv(l).is_some_and(|f| f.len() == 3))
    });
    let mut plan = Plan::new();
    for (i, line) in lines.iter().enumerate() {
        let bad = || CliError(format!("--from-file line {}: cannot parse {line:?}", i + 1));
        let fields = split_csv(line).ok_or_else(bad)?;
        let (group, rest) = match without_group {
            Some(group) if fields.len() == 3 => (group.to_string(), &fields[..]),
            None if fields.len() == 4 => (fields[0].clone(), &fields[1..]),
            _ => return Err(bad()),
        };
        let partition: i32 = rest[1].trim().parse().map_err(|_| bad())?;
        let offset: i64 = rest[2].trim().parse().map_err(|_| bad())?;
        plan.entry(group)
            .or_default()
            .insert((rest[0].clone(), partition), offset);
    }
    if plan.is_empty() {
        return fail("--from-file names no offsets");
    }
    Ok(plan)
}

/// The fields of one CSV line; `None` for an unterminated quote.
fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_java_reads_them() {
        assert_eq!(parse_duration_ms("PT1H").unwrap(), 3_600_000);
        assert_eq!(parse_duration_ms("P1DT2H3M4.5S").unwrap(), 93_784_500);
        assert_eq!(parse_duration_ms("pt30m").unwrap(), 1_800_000);
        assert_eq!(parse_duration_ms("-PT10S").unwrap(), -10_000);
        assert_eq!(parse_duration_ms("PT-1.5S").unwrap(), -1_500);
        assert_eq!(parse_duration_ms("P2D").unwrap(), 172_800_000);
        for bad in [
            "", "P", "PT", "1H", "PT1D", "P1H", "PT1M1H", "PT1X", "PTH", "P1DT",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn datetimes_are_utc() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            parse_datetime_ms("2001-09-09T01:46:40.123").unwrap(),
            1_000_000_000_123
        );
        assert!(parse_datetime_ms("2001-09-09 01:46:40").is_err());
        assert!(parse_datetime_ms("2001-13-09T01:46:40").is_err());
        assert!(parse_datetime_ms("2001-09-09T01:46:40.").is_err());
    }

    #[test]
    fn exported_plans_read_back() {
        let plan: Plan = BTreeMap::from([
            (
                "g,1".to_string(),
                BTreeMap::from([(("t".to_string(), 0), 5), (("t".to_string(), 1), 7)]),
            ),
            ("h".to_string(), BTreeMap::from([(("u".to_string(), 2), 0)])),
        ]);
        let csv = export_csv(&plan, true);
        assert_eq!(csv, "\"g,1\",t,0,5\n\"g,1\",t,1,7\nh,u,2,0\n");
        assert_eq!(parse_csv(&csv, None).unwrap(), plan);
        let one: Plan = BTreeMap::from([("g".to_string(), plan["g,1"].clone())]);
        let csv = export_csv(&one, false);
        assert_eq!(csv, "t,0,5\nt,1,7\n");
        assert_eq!(parse_csv(&csv, Some("g")).unwrap(), one);
        assert!(parse_csv("t,x,5\n", Some("g")).is_err());
        assert!(parse_csv("t,0,5\n", None).is_err());
        assert!(parse_csv("\n", Some("g")).is_err());
    }
}
