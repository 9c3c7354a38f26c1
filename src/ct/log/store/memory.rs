//! A log kept in memory: both halves over one shared state, with batches staged until
//! commit. Nothing is durable, so it serves tests of the sequencer and the log logic (and
//! keeps the [`super::LogWriter`] contract honest by being a second implementation).

use super::{
    LogReader, LogWriter, LookupKind, StoreError, StoredCheckpoint, StoredEntry, TileWrite,
};
use crate::ct::merkle::Hash;
use crate::model::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Default, Clone)]
struct State {
    entries: BTreeMap<u64, StoredEntry>,
    by_hash: HashMap<(LookupKind, Hash), u64>,
    issuers: HashMap<Hash, Vec<u8>>,
    tiles: HashMap<(u8, u64), Vec<u8>>,
    checkpoint: Option<StoredCheckpoint>,
    meta: HashMap<String, Vec<u8>>,
}

/// Both halves of an in-memory log.
pub(crate) fn open() -> (MemoryWriter, MemoryReader) {
    let state = Arc::new(Mutex::new(State::default()));
    (
        MemoryWriter {
            state: state.clone(),
            batch: None,
        },
        MemoryReader { state },
    )
}

/// The write half: a batch is a copy of the state, swapped in on commit.
pub(crate) struct MemoryWriter {
    state: Arc<Mutex<State>>,
    batch: Option<State>,
}

impl MemoryWriter {
    fn committed(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The batch being written, or (outside a batch) a write straight to the state.
    fn write<T>(&mut self, f: impl FnOnce(&mut State) -> T) -> T {
        match &mut self.batch {
            Some(b) => f(b),
            None => f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }
}

impl LogWriter for MemoryWriter {
    fn begin(&mut self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let state = self.committed().clone();
        let checkpoint = state.checkpoint.clone();
        self.batch = Some(state);
        Ok(checkpoint)
    }

    fn find(
        &mut self,
        kind: LookupKind,
        hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<u64>, StoreError> {
        let i = self.committed().by_hash.get(&(kind, *hash)).copied();
        Ok(i.filter(|i| *i < tree_size))
    }

    fn entry(&mut self, index: u64) -> Result<Option<StoredEntry>, StoreError> {
        Ok(self.committed().entries.get(&index).cloned())
    }

    fn tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.committed().tiles.get(&(level, index)).cloned())
    }

    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.committed().meta.get(key).cloned())
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(|s| s.meta.insert(key.to_string(), value.to_vec()));
        Ok(())
    }

    fn insert_entries(&mut self, entries: &[StoredEntry]) -> Result<(), StoreError> {
        self.write(|s| {
            for e in entries {
                if s.entries.contains_key(&e.index) {
                    return Err(StoreError::Conflict);
                }
                s.by_hash.insert((LookupKind::Dedup, e.dedup), e.index);
                s.by_hash
                    .insert((LookupKind::LeafHash, e.leaf_hash), e.index);
                s.entries.insert(e.index, e.clone());
            }
            Ok(())
        })
    }

    fn insert_issuers(&mut self, issuers: &[(Hash, Vec<u8>)]) -> Result<(), StoreError> {
        self.write(|s| {
            for (fp, der) in issuers {
                s.issuers.entry(*fp).or_insert_with(|| der.clone());
            }
        });
        Ok(())
    }

    fn put_tiles(&mut self, tiles: &[TileWrite]) -> Result<(), StoreError> {
        self.write(|s| {
            for (level, index, bytes) in tiles {
                s.tiles.insert((*level, *index), bytes.clone());
            }
        });
        Ok(())
    }

    fn put_checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        self.write(|s| {
            if s.checkpoint
                .as_ref()
                .is_some_and(|old| old.tree_size > c.tree_size)
            {
                return Err(StoreError::Conflict);
            }
            s.checkpoint = Some(c.clone());
            Ok(())
        })
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if let Some(b) = self.batch.take() {
            *self.state.lock().unwrap_or_else(|p| p.into_inner()) = b;
        }
        Ok(())
    }

    fn rollback(&mut self) {
        self.batch = None;
    }
}

/// The read half.
#[derive(Clone)]
pub(crate) struct MemoryReader {
    state: Arc<Mutex<State>>,
}

impl MemoryReader {
    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl LogReader for MemoryReader {
    fn checkpoint(&self) -> BoxFuture<'_, Result<Option<StoredCheckpoint>, StoreError>> {
        let c = self.read(|s| s.checkpoint.clone());
        Box::pin(async move { Ok(c) })
    }

    fn entries(&self, start: u64, end: u64) -> BoxFuture<'_, Result<Vec<StoredEntry>, StoreError>> {
        let e = self.read(|s| {
            s.entries
                .range(start..=end)
                .map(|(_, e)| e.clone())
                .collect()
        });
        Box::pin(async move { Ok(e) })
    }

    fn tile(&self, level: u8, index: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        let t = self.read(|s| s.tiles.get(&(level, index)).cloned());
        Box::pin(async move { Ok(t) })
    }

    fn issuer<'a>(
        &'a self,
        fingerprint: &'a Hash,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let d = self.read(|s| s.issuers.get(fingerprint).cloned());
        Box::pin(async move { Ok(d) })
    }

    fn find<'a>(
        &'a self,
        kind: LookupKind,
        hash: &'a Hash,
        tree_size: u64,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        let i = self.read(|s| s.by_hash.get(&(kind, *hash)).copied());
        Box::pin(async move { Ok(i.filter(|i| *i < tree_size)) })
    }
}
