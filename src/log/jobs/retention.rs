//! Retention jobs: deleting the files of segments retention or DeleteRecords
//! removed, after the moved log start offset is durable.

use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use super::super::LogError;
use crate::io::{remove_if_exists, replace_file, Disk, DmaDisk};

/// Deletes the files of segments retention or DeleteRecords removed from
/// the log, after making a moved log start offset durable.
pub struct RetentionJob<D: Disk = DmaDisk> {
    pub(crate) disk: D,
    pub(crate) paths: Vec<PathBuf>,
    /// Open handles, dropped (closed) once the names are gone.
    pub(crate) files: Vec<Rc<D::File>>,
    /// A clone of the log's token: while a job is out the log will not
    /// truncate (a reset could make a file of a name this job deletes).
    pub(crate) _out: Rc<()>,
    /// DeleteRecords: the log start offset checkpoint to write first.
    pub(crate) checkpoint: Option<CheckpointWrite<D>>,
}

/// The log start offset checkpoint of one log, shared by the log and the
/// jobs that write it. Lives on the partition's shard.
pub(crate) struct StartCheckpoint {
    /// The newest log start offset that must become durable.
    wanted: Cell<i64>,
    /// The value the file holds.
    written: Cell<i64>,
    /// One writer at a time, so an older value never lands after a newer one.
    lock: futures::lock::Mutex<()>,
}

impl StartCheckpoint {
    pub fn new(durable: i64) -> StartCheckpoint {
        StartCheckpoint {
            wanted: Cell::new(durable),
            written: Cell::new(durable),
            lock: futures::lock::Mutex::new(()),
        }
    }

    /// A truncation (or reset) put `offset` in the checkpoint file; no
    /// checkpoint write may be out (the log refuses to truncate then).
    pub fn rewrite(&self, offset: i64) {
        self.wanted.set(offset);
        self.written.set(offset);
    }

    /// A truncation to `end` rewrote a checkpoint file above it (if any).
    pub fn clamp_to(&self, end: i64) {
        self.wanted.set(self.wanted.get().min(end));
        self.written.set(self.written.get().min(end));
    }

    pub fn want(&self, offset: i64) {
        assert!(
            offset >= self.wanted.get(),
            "the log start never moves back"
        );
        self.wanted.set(offset);
    }
}

/// Writes the newest wanted log start offset: a temp file (written and
/// fdatasync'd), renamed over the checkpoint, then the directory synced.
pub(crate) struct CheckpointWrite<D: Disk> {
    pub disk: D,
    pub dir: PathBuf,
    pub shared: Rc<StartCheckpoint>,
}

impl<D: Disk> CheckpointWrite<D> {
    async fn run(self) -> io::Result<()> {
        let _one_writer = self.shared.lock.lock().await;
        let want = self.shared.wanted.get();
        if want <= self.shared.written.get() {
            return Ok(()); // a later job already wrote it
        }
        let text = super::super::start_checkpoint_text(want);
        // DeleteRecords frees space only once this is written: on a full
        // disk the data directory's reserve makes room for it.
        let data_dir = self.dir.parent().unwrap_or(&self.dir);
        let what = format!(
            "{} of {}",
            super::super::START_CHECKPOINT_FILE,
            self.dir.display()
        );
        super::super::reserve::with_reserve(&self.disk, data_dir, &what, || {
            replace_file(
                &self.disk,
                &self.dir,
                super::super::START_CHECKPOINT_FILE,
                text.as_bytes(),
            )
        })
        .await?;
        self.shared.written.set(want);
        Ok(())
    }
}

impl<D: Disk> RetentionJob<D> {
    /// Paths this job removes.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    pub async fn run(self) -> Result<(), LogError> {
        if let Some(checkpoint) = self.checkpoint {
            // Files go only once the new start is durable: a crash between
            // the two must not bring deleted records back at the next open.
            checkpoint.run().await?;
        }
        let mut first_error = None;
        for path in &self.paths {
            if let Err(e) = remove_if_exists(&self.disk, path).await {
                first_error.get_or_insert(e);
            }
        }
        drop(self.files);
        match first_error {
            Some(e) => Err(LogError::Io(e)),
            None => Ok(()),
        }
    }
}
