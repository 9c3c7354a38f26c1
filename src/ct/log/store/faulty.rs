//! A writer that fails chosen steps on demand, wrapped around any backend: how the tests
//! show that no SCT is issued for an entry that is not stored, whichever step fails.
//! Test-only (`cfg(test)` or the `fault-injection` feature): not in a release build.

use super::{LogWriter, LookupKind, StoreError, StoredCheckpoint, StoredEntry, TileWrite};
use crate::ct::merkle::Hash;
use std::sync::{Arc, Mutex};

/// A step of a batch (or of what follows one), for fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Starting a batch; also what recovery after a failed commit runs.
    Begin,
    /// Adding the batch's new entries ([`LogWriter::insert_entries`]).
    InsertEntries,
    /// Storing the batch's issuer certificates ([`LogWriter::insert_issuers`]).
    InsertIssuers,
    /// Writing the batch's tiles ([`LogWriter::put_tiles`]).
    PutTiles,
    /// Writing the batch's signed checkpoint ([`LogWriter::put_checkpoint`]).
    PutCheckpoint,
    /// The commit fails and nothing is durable.
    Commit,
    /// The commit succeeds on disk but reports failure (an fsync error after the write):
    /// the log must not hand out SCTs it cannot vouch for, and must recover.
    CommitAmbiguous,
    /// The housekeeping after a batch (lookup rows): no SCT is affected, the entries stay
    /// findable and the work is retried.
    AfterCommit,
}

impl Step {
    /// The steps of a batch commit ([`Step::AfterCommit`] is not one: it runs afterwards).
    pub const ALL: [Step; 7] = [
        Step::Begin,
        Step::InsertEntries,
        Step::InsertIssuers,
        Step::PutTiles,
        Step::PutCheckpoint,
        Step::Commit,
        Step::CommitAmbiguous,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Begin => "begin",
            Step::InsertEntries => "insert_entries",
            Step::InsertIssuers => "insert_issuers",
            Step::PutTiles => "put_tiles",
            Step::PutCheckpoint => "put_checkpoint",
            Step::Commit => "commit",
            Step::CommitAmbiguous => "commit (after the write)",
            Step::AfterCommit => "after_commit",
        }
    }
}

/// Armed faults: each step with the number of times it still fails.
type Faults = Arc<Mutex<Vec<(Step, u32)>>>;

/// Wraps a writer and fails chosen steps.
pub struct FaultyWriter<W: LogWriter> {
    inner: W,
    faults: Faults,
}

/// Arms faults in a [`FaultyWriter`] from another thread.
#[derive(Clone)]
pub struct FaultSwitch(Faults);

impl FaultSwitch {
    /// Fails `step` the next `times` times it is reached (replacing what was armed for
    /// that step; other steps stay armed).
    pub fn arm(&self, step: Step, times: u32) {
        if let Ok(mut f) = self.0.lock() {
            f.retain(|(s, _)| *s != step);
            if times > 0 {
                f.push((step, times));
            }
        }
    }

    /// Whether any fault is still armed.
    pub fn armed(&self) -> bool {
        self.0.lock().map(|f| !f.is_empty()).unwrap_or(false)
    }

    /// Removes every armed fault.
    pub fn disarm(&self) {
        if let Ok(mut f) = self.0.lock() {
            f.clear();
        }
    }
}

impl<W: LogWriter> FaultyWriter<W> {
    /// Wraps `inner` with no fault armed; the returned switch arms faults.
    pub fn new(inner: W) -> (FaultyWriter<W>, FaultSwitch) {
        let faults = Faults::default();
        (
            FaultyWriter {
                inner,
                faults: faults.clone(),
            },
            FaultSwitch(faults),
        )
    }

    fn trip(&self, step: Step) -> bool {
        let Ok(mut f) = self.faults.lock() else {
            return false;
        };
        let Some(i) = f.iter().position(|(s, _)| *s == step) else {
            return false;
        };
        f[i].1 -= 1;
        if f[i].1 == 0 {
            f.remove(i);
        }
        true
    }

    fn check(&self, step: Step) -> Result<(), StoreError> {
        if self.trip(step) {
            Err(StoreError::Injected(step.name()))
        } else {
            Ok(())
        }
    }
}

impl<W: LogWriter> LogWriter for FaultyWriter<W> {
    fn begin(&mut self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.check(Step::Begin)?;
        self.inner.begin()
    }
    fn find(
        &mut self,
        kind: LookupKind,
        hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.inner.find(kind, hash, tree_size)
    }
    fn entry(&mut self, index: u64) -> Result<Option<StoredEntry>, StoreError> {
        self.inner.entry(index)
    }
    fn tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.tile(level, index)
    }
    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.meta(key)
    }
    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.set_meta(key, value)
    }
    fn insert_entries(&mut self, entries: &[StoredEntry]) -> Result<(), StoreError> {
        self.check(Step::InsertEntries)?;
        self.inner.insert_entries(entries)
    }
    fn insert_issuers(&mut self, issuers: &[(Hash, Vec<u8>)]) -> Result<(), StoreError> {
        self.check(Step::InsertIssuers)?;
        self.inner.insert_issuers(issuers)
    }
    fn put_tiles(&mut self, tiles: &[TileWrite]) -> Result<(), StoreError> {
        self.check(Step::PutTiles)?;
        self.inner.put_tiles(tiles)
    }
    fn put_checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        self.check(Step::PutCheckpoint)?;
        self.inner.put_checkpoint(c)
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        self.check(Step::Commit)?;
        let ambiguous = self.trip(Step::CommitAmbiguous);
        self.inner.commit()?;
        if ambiguous {
            return Err(StoreError::Injected(Step::CommitAmbiguous.name()));
        }
        Ok(())
    }
    fn rollback(&mut self) {
        self.inner.rollback()
    }
    fn after_commit(&mut self) -> Result<(), StoreError> {
        self.check(Step::AfterCommit)?;
        self.inner.after_commit()
    }
}
