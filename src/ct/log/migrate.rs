//! `brevis ctlog migrate`: copies a stopped log from one storage to another (SQLite to
//! PostgreSQL, typically) in one transaction of the target: metadata, issuers, entries,
//! tiles and the checkpoint. The copy is verified before it commits: the Merkle tree of
//! the copied leaf hashes must give the source checkpoint's root, and every entry its
//! index. A target that holds any log is refused.

use super::sequencer::LEVELS;
use super::store::{LogReader, LogWriter, StoreError};
use super::{Storage, open_store};
use crate::ct::merkle::{Frontier, Hash};
use crate::ct::tiles::{TILE_HEIGHT, TILE_WIDTH};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Entries copied per read and per insert.
const CHUNK: u64 = 4096;

/// Why a migration stopped (nothing was written to the target).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Reading the source or writing the target failed.
    #[error("storage")]
    Store(#[from] StoreError),
    /// The source has no log.
    #[error("the source holds no log")]
    EmptySource,
    /// The target already holds a log (a checkpoint or an origin).
    #[error("the target already holds a log; migrate only into an empty database")]
    TargetNotEmpty,
    /// What was copied does not reproduce the source's tree.
    #[error("verification failed: {0}")]
    Mismatch(String),
    /// The async runtime for the source's reads could not start.
    #[error("starting a runtime")]
    Runtime(#[source] std::io::Error),
}

/// What a migration copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Entries copied (the tree size).
    pub entries: u64,
    /// Tiles copied.
    pub tiles: u64,
    /// Issuer certificates copied.
    pub issuers: u64,
    /// The root hash of the source checkpoint, which the copy reproduces.
    pub root: Hash,
}

/// Copies the log at `from` into the empty `to`; `dir` is the log directory a `sqlite:`
/// storage without a path refers to. The source must not be running.
pub fn migrate(from: &Storage, to: &Storage, dir: &Path) -> Result<Report, MigrateError> {
    let (mut source, source_reader) =
        open_store(from, dir, super::store::lookup::DEFAULT_INDEX_EVERY)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(MigrateError::Runtime)?;
    let cp = source.begin()?.ok_or(MigrateError::EmptySource)?;
    let result = copy(source.as_mut(), &source_reader, &rt, &cp, to, dir);
    source.rollback();
    result
}

fn copy(
    source: &mut dyn LogWriter,
    reader: &Arc<dyn LogReader>,
    rt: &tokio::runtime::Runtime,
    cp: &super::store::StoredCheckpoint,
    to: &Storage,
    dir: &Path,
) -> Result<Report, MigrateError> {
    let (mut target, _) = open_store(to, dir, super::store::lookup::DEFAULT_INDEX_EVERY)?;
    if target.begin()?.is_some() || target.meta("origin")?.is_some() {
        target.rollback();
        return Err(MigrateError::TargetNotEmpty);
    }
    let result = (|| {
        for key in ["origin", "log_id", "created_ms"] {
            if let Some(v) = source.meta(key)? {
                target.set_meta(key, &v)?;
            }
        }
        let mut frontier = Frontier::default();
        let mut issuers: BTreeMap<Hash, ()> = BTreeMap::new();
        let mut start = 0;
        while start < cp.tree_size {
            let end = (start + CHUNK).min(cp.tree_size) - 1;
            let entries = rt.block_on(reader.entries(start, end))?;
            for (i, e) in entries.iter().enumerate() {
                if e.index != start + i as u64 {
                    return Err(MigrateError::Mismatch(format!(
                        "entry {} is missing from the source",
                        start + i as u64
                    )));
                }
                frontier.push(e.leaf_hash);
                for fp in &e.chain {
                    issuers.insert(*fp, ());
                }
            }
            if entries.len() as u64 != end - start + 1 {
                return Err(MigrateError::Mismatch(format!(
                    "the source has {} entries in {start}..={end}",
                    entries.len()
                )));
            }
            target.insert_entries(&entries)?;
            start = end + 1;
        }
        if frontier.root() != cp.root || frontier.size() != cp.tree_size {
            return Err(MigrateError::Mismatch(
                "the copied leaves do not give the source checkpoint's root".into(),
            ));
        }
        let mut copied_issuers = Vec::new();
        for fp in issuers.keys() {
            let der = rt.block_on(reader.issuer(fp))?.ok_or_else(|| {
                MigrateError::Mismatch(format!("issuer {} is missing", hex::encode(fp)))
            })?;
            copied_issuers.push((*fp, der));
        }
        target.insert_issuers(&copied_issuers)?;
        let mut tiles = 0;
        for level in 0..LEVELS {
            let count = cp.tree_size >> (u32::from(TILE_HEIGHT) * level as u32);
            let n = count.div_ceil(TILE_WIDTH);
            let mut index = 0;
            while index < n {
                let last = (index + 256).min(n);
                let wanted: Vec<(u8, u64)> = (index..last).map(|i| (level as u8, i)).collect();
                let found = source.tiles(&wanted)?;
                let mut batch = Vec::with_capacity(found.len());
                for ((l, i), t) in wanted.into_iter().zip(found) {
                    let t = t.ok_or_else(|| {
                        MigrateError::Mismatch(format!("tile {l}/{i} is missing from the source"))
                    })?;
                    batch.push((l, i, t));
                }
                tiles += batch.len() as u64;
                target.put_tiles(&batch)?;
                index = last;
            }
        }
        target.put_checkpoint(cp)?;
        target.commit()?;
        Ok(Report {
            entries: cp.tree_size,
            tiles,
            issuers: copied_issuers.len() as u64,
            root: cp.root,
        })
    })();
    if result.is_err() {
        target.rollback();
    }
    result
}
