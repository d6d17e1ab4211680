//! TEMPORARY: replaced by the truncation branch before this is committed.
use super::*;

pub struct TruncateJob<D: Disk = DmaDisk>(std::marker::PhantomData<D>);
pub struct TruncateOutcome<D: Disk = DmaDisk>(std::marker::PhantomData<D>);

impl<D: Disk> TruncateJob<D> {
    pub async fn run(self) -> TruncateOutcome<D> {
        TruncateOutcome(std::marker::PhantomData)
    }
}

impl<D: Disk> PartitionLog<D> {
    pub fn plan_truncate(&mut self, _offset: i64) -> Result<TruncateJob<D>, LogError> {
        Err(LogError::Busy)
    }
    pub fn plan_reset(&mut self, _offset: i64) -> Result<TruncateJob<D>, LogError> {
        Err(LogError::Busy)
    }
    pub fn complete_truncate(&mut self, _o: TruncateOutcome<D>) -> Result<i64, LogError> {
        Err(LogError::Busy)
    }
}
