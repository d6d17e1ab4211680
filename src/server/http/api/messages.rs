//! `/api/v1/topics/{name}/messages`: the message browser. Reads a bounded
//! run of records of one partition from an offset, from the first offset
//! at or after a timestamp, or (neither given) the newest ones, through
//! the Fetch handler a consumer's request reaches, and decodes them with
//! the bounded record parser (`protocol::records`). Keys, values and
//! header values come back as UTF-8 text when they are, else as hex, cut
//! at `limits::HTTP_API_FIELD_BYTES_MAX` bytes; the console shows them as
//! text, never as markup.

use std::rc::Rc;

use hyper::StatusCode;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::FetchRequest;
use serde_json::{json, Value};

use super::kafka::{self, kafka_error};
use super::request::Query;
use super::ApiError;
use crate::limits;
use crate::protocol::batch::{BatchHeader, BatchIter};
use crate::protocol::records::{parse_records, records_section, RecordView};
use crate::protocol::topic_name;
use crate::server::broker::Broker;
use crate::server::handlers;

/// Fetch v12: the newest version that names topics.
const FETCH_VERSION: i16 = 12;

/// Header values shown per record at most.
const HEADERS_MAX: usize = 64;

pub async fn browse(broker: &Rc<Broker>, name: &str, query: &Query) -> Result<Value, ApiError> {
    let partition: i32 = query.number("partition")?.unwrap_or(0);
    let max: usize = query
        .number("max")?
        .unwrap_or(limits::HTTP_API_RECORDS_DEFAULT)
        .clamp(1, limits::HTTP_API_RECORDS_MAX);
    let offset: Option<i64> = query.number("offset")?;
    let timestamp: Option<i64> = query.number("timestamp")?;
    let topic = kafka::topic(broker, name).await?;
    if !topic
        .partitions
        .iter()
        .any(|p| p.partition_index == partition)
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "UNKNOWN_TOPIC_OR_PARTITION",
            format!("topic {name} has no partition {partition}"),
        ));
    }
    let key = [(name.to_string(), partition)];
    let bound = |answer: Option<&Result<i64, i16>>| match answer {
        Some(Ok(o)) => Ok(*o),
        Some(Err(code)) => Err(kafka_error(*code, None, &format!("{name}-{partition}"))),
        None => Err(ApiError::bad_request("no ListOffsets answer")),
    };
    let earliest = bound(
        kafka::list_offsets(broker, &key, kafka::EARLIEST)
            .await
            .get(&key[0]),
    )?;
    let latest = bound(
        kafka::list_offsets(broker, &key, kafka::LATEST)
            .await
            .get(&key[0]),
    )?;
    let start = match (offset, timestamp) {
        (Some(o), _) => o.max(earliest),
        (None, Some(ts)) if ts >= 0 => {
            match bound(kafka::list_offsets(broker, &key, ts).await.get(&key[0]))? {
                // No record at or after it.
                -1 => latest,
                o => o,
            }
        }
        (None, Some(_)) => return Err(ApiError::bad_request("timestamp must be >= 0 (ms)")),
        (None, None) => (latest - max as i64).max(earliest),
    };
    let records = if start < latest {
        read(broker, name, partition, start, max).await?
    } else {
        Vec::new()
    };
    let next = records
        .last()
        .and_then(|r| r["offset"].as_i64())
        .map_or(start, |o| o + 1);
    Ok(json!({
        "topic": name,
        "partition": partition,
        "log_start_offset": earliest,
        "log_end_offset": latest,
        "start_offset": start,
        "next_offset": next,
        "records": records,
    }))
}

/// Up to `max` records of the partition from `start`.
async fn read(
    broker: &Rc<Broker>,
    name: &str,
    partition: i32,
    start: i64,
    max: usize,
) -> Result<Vec<Value>, ApiError> {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(limits::HTTP_API_FETCH_BYTES_MAX)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(name))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(start)
                .with_partition_max_bytes(limits::HTTP_API_FETCH_BYTES_MAX)])]);
    let response =
        handlers::fetch::handle(broker, &super::console_session(), FETCH_VERSION, request).await;
    if response.error_code != 0 {
        return Err(kafka_error(response.error_code, None, "fetch"));
    }
    let Some(data) = response
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
    else {
        return Err(ApiError::bad_request("no Fetch answer"));
    };
    if data.error_code != 0 {
        return Err(kafka_error(
            data.error_code,
            None,
            &format!("reading {name}-{partition}"),
        ));
    }
    let bytes = data.records.unwrap_or_default();
    let mut out = Vec::new();
    for (at, header) in BatchIter::new(&bytes, true) {
        if header.is_control() {
            continue;
        }
        let batch = &bytes[at..at + header.total_bytes()];
        let section = records_section(batch, &header).map_err(undecodable)?;
        for record in parse_records(&section, &header).map_err(undecodable)? {
            let offset = header.base_offset + record.offset_delta as i64;
            if offset < start {
                continue;
            }
            out.push(shown(&header, offset, &record));
            if out.len() >= max {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

fn undecodable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "CORRUPT_MESSAGE",
        format!("a stored batch does not decode: {e}"),
    )
}

/// One record as the browser shows it.
fn shown(header: &BatchHeader, offset: i64, record: &RecordView<'_>) -> Value {
    let timestamp = if header.is_log_append_time() {
        Some(header.max_timestamp)
    } else {
        header.base_timestamp.checked_add(record.timestamp_delta)
    };
    let headers: Vec<Value> = record
        .headers()
        .into_iter()
        .take(HEADERS_MAX)
        .map(|(k, v)| json!({"key": field(Some(k)), "value": field(v)}))
        .collect();
    json!({
        "offset": offset,
        "timestamp": timestamp,
        "timestamp_type": if header.is_log_append_time() { "LogAppendTime" } else { "CreateTime" },
        "key": field(record.key),
        "value": field(record.value),
        "headers": headers,
    })
}

/// Bytes as the API carries them: null, UTF-8 text, or hex; cut at
/// `HTTP_API_FIELD_BYTES_MAX` bytes.
fn field(bytes: Option<&[u8]>) -> Value {
    let Some(bytes) = bytes else {
        return Value::Null;
    };
    let size = bytes.len();
    let cut = &bytes[..size.min(limits::HTTP_API_FIELD_BYTES_MAX)];
    let truncated = cut.len() < size;
    let text = match std::str::from_utf8(cut) {
        Ok(text) => Some(text),
        // Cut inside a character: the text up to it.
        Err(e) if truncated && e.error_len().is_none() => {
            std::str::from_utf8(&cut[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    match text {
        Some(text) => {
            json!({"encoding": "utf8", "data": text, "size": size, "truncated": truncated})
        }
        None => {
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            json!({"encoding": "hex", "data": hex, "size": size, "truncated": truncated})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_text_hex_or_null() {
        assert_eq!(field(None), Value::Null);
        let text = field(Some(b"<script>x</script>"));
        assert_eq!(text["encoding"], "utf8");
        assert_eq!(text["data"], "<script>x</script>");
        let binary = field(Some(&[0xff, 0x00, 0x41]));
        assert_eq!(binary["encoding"], "hex");
        assert_eq!(binary["data"], "ff0041");
        let long = "é".repeat(limits::HTTP_API_FIELD_BYTES_MAX);
        let cut = field(Some(long.as_bytes()));
        assert_eq!(cut["encoding"], "utf8");
        assert_eq!(cut["truncated"], true);
        assert_eq!(cut["size"], long.len());
    }
}
