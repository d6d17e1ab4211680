//! Start-up recovery: loading segments and their indexes (the shape is in
//! the parent module's docs: stored bytes are never trusted).

use super::*;

/// Loads a closed segment: trusts its index files when they are whole
/// and consistent (the scrub verifies its batches later), else rebuilds
/// them by scanning with the stored-batch parser. A bad batch found
/// then does not cut the file (acknowledged batches may follow it): the
/// segment is marked corrupt from there, gets no index files (so every
/// open finds it again) and its unreadable offsets answer an error.
/// None for an empty segment, whose files are removed.
pub async fn load_closed<D: Disk>(
    disk: &D,
    dir: &Path,
    base: i64,
    next_base: i64,
    config: &LogConfig,
) -> Result<Option<Segment<D::File>>, LogError> {
    let file = Rc::new(disk.open(&log_path(dir, base)).await?);
    let size = file.size().await?;
    if size == 0 {
        drop(file);
        for path in [
            log_path(dir, base),
            index_path(dir, base),
            time_index_path(dir, base),
        ] {
            remove_if_exists(disk, &path).await?;
        }
        return Ok(None);
    }
    let rel_limit = Some((next_base - base) as u64);
    let index = read_whole_file(disk, &index_path(dir, base)).await?;
    let time_index = read_whole_file(disk, &time_index_path(dir, base)).await?;
    let parsed = match (index, time_index) {
        (Some(i), Some(t)) => parse_index(&i, size, rel_limit).zip(parse_time_index(&t, rel_limit)),
        _ => None,
    };
    let now = now_ms();
    let mut seg = Segment::new(base, Some(file.clone()), now);
    match parsed {
        Some((index, time_index)) => {
            seg.size = size;
            seg.next_offset = next_base;
            if let Some(last) = time_index.last() {
                seg.max_timestamp = last.timestamp;
                seg.max_timestamp_offset = base + i64::from(last.rel_offset);
            }
            seg.index = index;
            seg.time_index = time_index;
            // Trusted without reading it: the scrub verifies it soon.
            seg.verified_at_ms = None;
        }
        None => {
            log::info!(
                "{}: rebuilding the indexes of segment {base}",
                dir.display()
            );
            // A cleaned segment has offset gaps between its batches.
            let damage =
                scan_into(&mut seg, &file, 0, size, config, Some(next_base), false).await?;
            seg.maybe_push_time();
            match damage {
                Some(d) => {
                    log::error!(
                        "{}: batch at position {} (offset {}) is corrupt: {}; offsets [{}, {}) \
                         are unreadable (reads get KAFKA_STORAGE_ERROR) until retention or \
                         DeleteRecords removes the segment",
                        log_path(dir, base).display(),
                        d.position,
                        d.offset,
                        d.reason,
                        d.offset,
                        next_base
                    );
                    seg.corrupt = Some(Corruption {
                        position: d.position,
                        offset: d.offset,
                        reason: d.reason,
                        timestamps_known: false,
                    });
                    seg.size = size;
                    seg.next_offset = next_base;
                    // No index files: the next open scans it again.
                    remove_if_exists(disk, &time_index_path(dir, base)).await?;
                    remove_if_exists(disk, &index_path(dir, base)).await?;
                }
                None => {
                    write_whole_file(disk, &time_index_path(dir, base), &seg.time_index_bytes())
                        .await?;
                    write_whole_file(disk, &index_path(dir, base), &seg.index_bytes()).await?;
                    if seg.is_empty() {
                        return Ok(None);
                    }
                }
            }
        }
    }
    seg.closed = true;
    seg.finalized = true;
    seg.flushed = Some(seg.snapshot());
    Ok(Some(seg))
}

/// Loads the active segment: resumes from its last trustworthy index
/// entry and scans (CRC and the stored-batch parser) to the end,
/// cutting a torn or corrupt tail with a log line naming the file,
/// position and offset. The part before the resume point is left to
/// the scrub.
pub async fn load_active<D: Disk>(
    disk: &D,
    dir: &Path,
    base: i64,
    config: &LogConfig,
) -> Result<Segment<D::File>, LogError> {
    let file = Rc::new(disk.open(&log_path(dir, base)).await?);
    let size = file.size().await?;
    let mut seg = Segment::new(base, Some(file.clone()), now_ms());
    let index = read_whole_file(disk, &index_path(dir, base)).await?;
    let time_index = read_whole_file(disk, &time_index_path(dir, base)).await?;
    let mut start = 0;
    if let (Some(i), Some(t)) = (index, time_index) {
        if let Some((index, time_index)) =
            parse_index(&i, size, None).zip(parse_time_index(&t, None))
        {
            if let Some(resume) = resume_point(&*file, base, &index, &time_index).await? {
                start = resume.position;
                seg.index = index;
                seg.time_index = time_index;
                seg.size = start;
                seg.next_offset = resume.base_offset;
                // The batch at the last entry is already indexed; with
                // bytes_since_index at 0, accounting it again adds no
                // entry, exactly as when it was appended.
                seg.bytes_since_index = 0;
                if let Some(last) = seg.time_index.last() {
                    seg.max_timestamp = last.timestamp;
                    seg.max_timestamp_offset = base + i64::from(last.rel_offset);
                }
            }
        }
    }
    if start > 0 {
        // Bytes before the resume point were not read: the scrub does.
        seg.scrub_pos = 0;
        seg.scrub_end = start;
        seg.scrub_offset = base;
        seg.verified_at_ms = None;
    }
    let damage = scan_into(&mut seg, &file, start, size, config, None, true).await?;
    if let Some(d) = damage {
        // An unclean stop leaves the last 4 KiB block padded after the
        // data (writes are whole blocks): trimming that is routine.
        let padding = size.is_multiple_of(crate::limits::DISK_BLOCK_BYTES as u64)
            && size - d.position < crate::limits::DISK_BLOCK_BYTES as u64
            && d.unparsable;
        let level = if padding {
            log::Level::Info
        } else {
            log::Level::Warn
        };
        log::log!(
            level,
            "{}: cutting {} bytes at position {} (offset {}): {}",
            log_path(dir, base).display(),
            size - d.position,
            d.position,
            d.offset,
            d.reason
        );
        file.truncate(d.position).await?;
        file.fdatasync().await?;
    }
    // What was recovered may sit unsynced in the page cache (the last
    // run stopped after a failed fdatasync, or was killed): make it
    // durable before calling it flushed.
    file.fdatasync().await?;
    let tail_at = align_down(seg.size);
    seg.flushed_tail = if seg.size > tail_at {
        file.read_at(tail_at, (seg.size - tail_at) as usize)
            .await?
            .into()
    } else {
        Vec::new()
    };
    if seg.flushed_tail.len() as u64 != seg.size - tail_at {
        return Err(corrupt(format!(
            "segment {base}: tail block could not be read back"
        )));
    }
    seg.taken_size = seg.size;
    seg.flushed = Some(seg.snapshot());
    Ok(seg)
}

/// The log start offset at open: the checkpoint DeleteRecords wrote,
/// kept within the log, or the first segment's base. Closed segments
/// wholly below it (a crash before their files were deleted) go now.
///
/// A log that ends before its checkpoint (recovery cut a damaged tail,
/// or segment files are missing) holds only offsets DeleteRecords
/// deleted: as Kafka's `LogLoader` does, its segments go and it starts
/// over, empty, at the checkpoint. Clamping the start to the end
/// instead would leave the checkpoint on disk ahead of the log, and the
/// next open would move the start past records appended since.
pub async fn load_start_checkpoint<D: Disk>(
    disk: &D,
    dir: &Path,
    segments: &mut VecDeque<Segment<D::File>>,
) -> Result<i64, LogError> {
    let first = segments.front().expect("never empty").base_offset;
    let end = segments.back().expect("never empty").next_offset;
    let bytes = read_whole_file(disk, &dir.join(START_CHECKPOINT_FILE)).await?;
    let Some(bytes) = bytes else {
        return Ok(first);
    };
    let Some(offset) = parse_start_checkpoint(&bytes) else {
        log::warn!(
            "{}: ignoring an unreadable {START_CHECKPOINT_FILE}",
            dir.display()
        );
        return Ok(first);
    };
    if offset > end {
        log::warn!(
            "{}: the log ends at {end}, before its start offset {offset} \
             ({START_CHECKPOINT_FILE}): its segments hold only deleted offsets; \
             it starts over, empty, at {offset}",
            dir.display()
        );
        return start_over_at(disk, dir, segments, offset).await;
    }
    let start = offset.max(first);
    while segments.len() > 1 && segments.front().is_some_and(|s| s.next_offset <= start) {
        let seg = segments.pop_front().expect("checked");
        drop(seg.file);
        for path in [
            log_path(dir, seg.base_offset),
            index_path(dir, seg.base_offset),
            time_index_path(dir, seg.base_offset),
        ] {
            remove_if_exists(disk, &path).await?;
        }
    }
    Ok(start)
}

/// Removes every segment's files and leaves one empty active segment
/// at `offset`. Crash-safe by repetition: an open that finds some of
/// the old files still ends before the checkpoint and comes here again.
async fn start_over_at<D: Disk>(
    disk: &D,
    dir: &Path,
    segments: &mut VecDeque<Segment<D::File>>,
    offset: i64,
) -> Result<i64, LogError> {
    while let Some(seg) = segments.pop_front() {
        drop(seg.file);
        for path in [
            log_path(dir, seg.base_offset),
            index_path(dir, seg.base_offset),
            time_index_path(dir, seg.base_offset),
        ] {
            remove_if_exists(disk, &path).await?;
        }
    }
    let file = Rc::new(disk.create(&log_path(dir, offset)).await?);
    super::segment::create_empty_indexes(disk, dir, offset).await?;
    disk.sync_dir(dir).await?;
    let mut seg = Segment::new(offset, Some(file), now_ms());
    seg.flushed = Some(seg.snapshot());
    segments.push_back(seg);
    Ok(offset)
}

struct Resume {
    position: u64,
    base_offset: i64,
}

/// The batch the last index entry points at, if it really is there.
async fn resume_point<F: DiskFile>(
    file: &F,
    base: i64,
    index: &[segment::IndexEntry],
    time_index: &[segment::TimeEntry],
) -> Result<Option<Resume>, LogError> {
    let Some(last) = index.last() else {
        return Ok(None);
    };
    let head = file
        .read_at(u64::from(last.position), BATCH_HEADER_BYTES)
        .await?;
    let Ok(h) = BatchHeader::parse(&head) else {
        return Ok(None);
    };
    let consistent = h.last_offset() == base + i64::from(last.rel_offset)
        && time_index
            .iter()
            .all(|t| base + i64::from(t.rel_offset) <= h.last_offset());
    Ok(consistent.then_some(Resume {
        position: u64::from(last.position),
        base_offset: h.base_offset,
    }))
}

/// Where and why a recovery scan stopped before the end of a segment.
pub(super) struct Damage {
    pub position: u64,
    /// The offset the bad batch should have started at.
    pub offset: i64,
    pub reason: String,
    /// Bytes that are not a batch at all (a torn write, zeros), as
    /// opposed to a whole batch that failed a check.
    pub unparsable: bool,
}

/// Scans `[start, size)` of a segment with CRC checks and the
/// stored-batch parser, accounting each valid batch, and returns where
/// and why it stopped early. Offsets must continue the segment
/// (`contiguous`) or at least increase (a cleaned segment), stay below
/// `offset_limit` (the next segment's base) and within the segment's
/// relative u32 offsets and positions.
pub(super) async fn scan_into<F: DiskFile>(
    seg: &mut Segment<F>,
    file: &Rc<F>,
    start: u64,
    size: u64,
    config: &LogConfig,
    offset_limit: Option<i64>,
    contiguous: bool,
) -> Result<Option<Damage>, LogError> {
    let interval = config.index_interval_bytes;
    let mut refused: Option<String> = None;
    let ended = scan(&**file, start, size, true, |pos, h, bytes| {
        let expected = if seg.size == 0 {
            seg.base_offset
        } else {
            seg.next_offset
        };
        let in_order = if contiguous {
            h.base_offset == expected
        } else {
            h.base_offset >= expected
        };
        let why = if !in_order {
            Some(format!(
                "batch base offset {} where {expected} was expected",
                h.base_offset
            ))
        } else if offset_limit.is_some_and(|limit| h.last_offset() >= limit)
            || h.last_offset() - seg.base_offset > SEGMENT_OFFSETS_MAX
        {
            Some(format!(
                "batch last offset {} is past the segment's offsets",
                h.last_offset()
            ))
        } else if pos + bytes.len() as u64 > SEGMENT_BYTES_MAX {
            Some("batch ends past the largest segment size".to_string())
        } else {
            records::walk(bytes, h, records::Origin::Stored, |_| {
                Ok::<(), batch::RecordsError>(())
            })
            .err()
            .map(|e| e.to_string())
        };
        if let Some(why) = why {
            refused = Some(why);
            return false;
        }
        seg.account(pos, h, h.total_bytes() as u64, interval);
        true
    })
    .await?;
    assert_eq!(seg.size, ended.end);
    if ended.end >= size {
        return Ok(None);
    }
    let (reason, unparsable) = match ended.stop {
        ScanStop::Torn => ("a torn batch".to_string(), true),
        ScanStop::Invalid(e) => (e.to_string(), true),
        ScanStop::Visitor => (refused.unwrap_or_default(), false),
        ScanStop::End => ("the end".to_string(), false),
    };
    Ok(Some(Damage {
        position: ended.end,
        offset: if seg.size == 0 {
            seg.base_offset
        } else {
            seg.next_offset
        },
        reason,
        unparsable,
    }))
}
