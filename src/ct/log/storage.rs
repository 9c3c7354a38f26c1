//! Durable storage of the embedded log: one SQLite file in WAL mode with
//! `synchronous=FULL`, one transaction per batch (entries, issuers, tiles and the
//! checkpoint commit together, so there is no crash window between them). Lookups by
//! hash are written separately, in sorted runs ([`super::index`]).
//!
//! Writes go through the [`LogStore`] trait, one method per step, so tests can fail any
//! step ([`FaultyStore`]). Reads for the HTTP API use separate read-only connections
//! ([`Reader`]), which WAL lets run beside the writer.

use super::index::{LookupKind, LookupRow, epochs, prefix};
use crate::ct::merkle::Hash;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use thiserror::Error;

#[derive(Debug, Error, Clone)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// One logged entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub index: u64,
    /// SHA-256 of the submitted certificate or precertificate (deduplication key).
    pub dedup: Hash,
    pub leaf_hash: Hash,
    pub timestamp: u64,
    /// The SCT's TLS `DigitallySigned`, so a resubmission gets the original SCT back.
    pub signature: Vec<u8>,
    pub timestamped_entry: Vec<u8>,
    /// The full poisoned precertificate, for precertificate entries.
    pub precert: Option<Vec<u8>>,
    /// SHA-256 fingerprints of the issuer chain, leaf's issuer first, root last.
    pub chain: Vec<Hash>,
}

/// The latest signed tree head and the state needed to continue appending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub timestamp: u64,
    pub root: Hash,
    /// TLS `DigitallySigned` over the TreeHeadSignature.
    pub signature: Vec<u8>,
    /// The serialised Merkle frontier for `tree_size`.
    pub frontier: Vec<u8>,
}

/// The write side, owned by the sequencer. Each method is one step of a batch commit.
pub trait LogStore: Send {
    fn load_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, StoreError>;
    fn entry(&mut self, index: u64) -> Result<Option<StoredEntry>, StoreError>;
    /// The entry among the first `tree_size` whose hash of `kind` is `hash`, found
    /// through the lookup table (entries not written there yet are in
    /// [`super::index::Recent`]).
    fn find(
        &mut self,
        kind: LookupKind,
        hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<u64>, StoreError>;
    /// (index, dedup hash, leaf hash) of entries `from..to`, at most `limit` of them.
    fn hashes(
        &mut self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Hash, Hash)>, StoreError>;
    /// Writes lookup rows and records that entries below `indexed_upto` are indexed, in
    /// one transaction of its own.
    fn put_lookup(&mut self, rows: &[LookupRow], indexed_upto: u64) -> Result<(), StoreError>;
    fn tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    fn begin(&mut self) -> Result<(), StoreError>;
    fn insert_entries(&mut self, entries: &[StoredEntry]) -> Result<(), StoreError>;
    fn insert_issuers(&mut self, issuers: &[(Hash, Vec<u8>)]) -> Result<(), StoreError>;
    fn put_tiles(&mut self, tiles: &[(u8, u64, Vec<u8>)]) -> Result<(), StoreError>;
    fn put_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError>;
    /// Makes the batch durable (the WAL is fsynced before this returns).
    fn commit(&mut self) -> Result<(), StoreError>;
    fn rollback(&mut self);
    /// Housekeeping after a batch's replies went out (WAL checkpoints), so no submitter
    /// waits for it. Failures are logged, never fatal.
    fn after_commit(&mut self) {}
}

const ENTRIES_TABLE: &str = "
CREATE TABLE IF NOT EXISTS entries (
  idx INTEGER PRIMARY KEY,
  dedup BLOB NOT NULL,
  leaf_hash BLOB NOT NULL,
  timestamp INTEGER NOT NULL,
  signature BLOB NOT NULL,
  timestamped_entry BLOB NOT NULL,
  precert BLOB,
  chain BLOB NOT NULL
);
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lookup (
  kind INTEGER NOT NULL, epoch INTEGER NOT NULL, prefix INTEGER NOT NULL, idx INTEGER NOT NULL,
  PRIMARY KEY (kind, epoch, prefix, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS issuers (fingerprint BLOB PRIMARY KEY, der BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tiles (
  level INTEGER NOT NULL, idx INTEGER NOT NULL, hashes BLOB NOT NULL,
  PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  tree_size INTEGER NOT NULL, timestamp INTEGER NOT NULL, root BLOB NOT NULL,
  signature BLOB NOT NULL, frontier BLOB NOT NULL
);
";

fn hash(v: Vec<u8>) -> Result<Hash, rusqlite::Error> {
    v.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "hash".into(), rusqlite::types::Type::Blob)
    })
}

fn chain_from(blob: Vec<u8>) -> Vec<Hash> {
    blob.chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect()
}

fn entry_from_row(row: &rusqlite::Row<'_>) -> Result<StoredEntry, rusqlite::Error> {
    Ok(StoredEntry {
        index: row.get::<_, i64>(0)? as u64,
        dedup: hash(row.get(1)?)?,
        leaf_hash: hash(row.get(2)?)?,
        timestamp: row.get::<_, i64>(3)? as u64,
        signature: row.get(4)?,
        timestamped_entry: row.get(5)?,
        precert: row.get(6)?,
        chain: chain_from(row.get(7)?),
    })
}

const ENTRY_COLUMNS: &str =
    "idx, dedup, leaf_hash, timestamp, signature, timestamped_entry, precert, chain";

/// Entries committed between WAL checkpoints (roughly SQLite's default of 1000 pages).
pub const CHECKPOINT_EVERY_ENTRIES: u64 = 512;

/// The SQLite implementation of [`LogStore`].
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    since_checkpoint: u64,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // No automatic checkpoints inside COMMIT: the sequencer checkpoints the WAL in
        // `after_commit`, once the batch's SCTs are on their way (docs/benchmarks.md).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        migrate_indexed_entries(&conn)?;
        conn.execute_batch(ENTRIES_TABLE)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            since_checkpoint: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Logs created before the lookup table had a UNIQUE index on `entries.dedup` and an index
/// on `entries.leaf_hash`, both written in every batch. Rebuilds the table without them,
/// in one transaction; the lookup table is then filled at start-up from the entries.
fn migrate_indexed_entries(conn: &Connection) -> Result<(), StoreError> {
    let sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'entries'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if !sql.is_some_and(|s| s.contains("UNIQUE")) {
        return Ok(());
    }
    tracing::info!("CT log: moving lookups by hash out of the entries table (one-time)");
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         ALTER TABLE entries RENAME TO entries_v1;
         {ENTRIES_TABLE}
         INSERT INTO entries ({ENTRY_COLUMNS}) SELECT {ENTRY_COLUMNS} FROM entries_v1;
         DROP TABLE entries_v1;
         DELETE FROM meta WHERE key = 'indexed_upto';
         COMMIT;"
    ))?;
    Ok(())
}

/// Candidates for a hash of `kind` with this 8-byte `prefix`, in one epoch.
fn lookup_in(
    conn: &Connection,
    kind: LookupKind,
    epoch: i64,
    prefix: i64,
) -> Result<Vec<u64>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx FROM lookup WHERE kind = ?1 AND epoch = ?2 AND prefix = ?3 ORDER BY idx",
    )?;
    let rows = stmt.query_map(params![kind as u8, epoch, prefix], |r| {
        r.get::<_, i64>(0).map(|i| i as u64)
    })?;
    rows.collect()
}

/// Probes every epoch of a tree of `tree_size`, newest first, and confirms each candidate
/// by its full hash on the entry (8-byte prefixes may collide).
fn find_in(
    conn: &Connection,
    kind: LookupKind,
    hash: &Hash,
    tree_size: u64,
) -> Result<Option<u64>, rusqlite::Error> {
    let column = match kind {
        LookupKind::Dedup => "dedup",
        LookupKind::LeafHash => "leaf_hash",
    };
    let mut confirm = conn.prepare_cached(&format!(
        "SELECT 1 FROM entries WHERE idx = ?1 AND {column} = ?2"
    ))?;
    for epoch in epochs(tree_size) {
        for idx in lookup_in(conn, kind, epoch, prefix(hash))? {
            if idx < tree_size && confirm.exists(params![idx as i64, &hash[..]])? {
                return Ok(Some(idx));
            }
        }
    }
    Ok(None)
}

impl LogStore for SqliteStore {
    fn load_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT tree_size, timestamp, root, signature, frontier FROM checkpoint WHERE id = 1",
                [],
                |r| {
                    Ok(StoredCheckpoint {
                        tree_size: r.get::<_, i64>(0)? as u64,
                        timestamp: r.get::<_, i64>(1)? as u64,
                        root: hash(r.get(2)?)?,
                        signature: r.get(3)?,
                        frontier: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    fn entry(&mut self, index: u64) -> Result<Option<StoredEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE idx = ?1"
        ))?;
        Ok(stmt.query_row([index as i64], entry_from_row).optional()?)
    }

    fn find(
        &mut self,
        kind: LookupKind,
        hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<u64>, StoreError> {
        Ok(find_in(&self.conn, kind, hash, tree_size)?)
    }

    fn hashes(
        &mut self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Hash, Hash)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT idx, dedup, leaf_hash FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![from as i64, to as i64, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                hash(r.get(1)?)?,
                hash(r.get(2)?)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_lookup(&mut self, rows: &[LookupRow], indexed_upto: u64) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO lookup (kind, epoch, prefix, idx) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in rows {
                stmt.execute(params![r.kind, r.epoch, r.prefix, r.index as i64])?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('indexed_upto', ?1)",
                [&indexed_upto.to_be_bytes()[..]],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hashes FROM tiles WHERE level = ?1 AND idx = ?2")?;
        Ok(stmt
            .query_row(params![level, index as i64], |r| r.get(0))
            .optional()?)
    }

    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(())
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    fn insert_entries(&mut self, entries: &[StoredEntry]) -> Result<(), StoreError> {
        self.since_checkpoint += entries.len() as u64;
        let mut stmt = self.conn.prepare_cached(&format!(
            "INSERT INTO entries ({ENTRY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?;
        for e in entries {
            let chain: Vec<u8> = e.chain.concat();
            stmt.execute(params![
                e.index as i64,
                &e.dedup[..],
                &e.leaf_hash[..],
                e.timestamp as i64,
                e.signature,
                e.timestamped_entry,
                e.precert,
                chain
            ])?;
        }
        Ok(())
    }

    fn insert_issuers(&mut self, issuers: &[(Hash, Vec<u8>)]) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO issuers (fingerprint, der) VALUES (?1, ?2)")?;
        for (fp, der) in issuers {
            stmt.execute(params![&fp[..], der])?;
        }
        Ok(())
    }

    fn put_tiles(&mut self, tiles: &[(u8, u64, Vec<u8>)]) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO tiles (level, idx, hashes) VALUES (?1, ?2, ?3)",
        )?;
        for (level, index, hashes) in tiles {
            stmt.execute(params![level, *index as i64, hashes])?;
        }
        Ok(())
    }

    fn put_checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO checkpoint (id, tree_size, timestamp, root, signature, frontier)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![c.tree_size as i64, c.timestamp as i64, &c.root[..], c.signature, c.frontier],
        )?;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    fn rollback(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }

    fn after_commit(&mut self) {
        if self.since_checkpoint < CHECKPOINT_EVERY_ENTRIES {
            return;
        }
        self.since_checkpoint = 0;
        // The writer's own thread: no frame is appended meanwhile, so the WAL restarts
        // from its beginning at the next batch.
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "CT log WAL checkpoint failed");
        }
    }
}

/// Read-only access for the HTTP API, from a small pool of connections.
pub struct Reader {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

impl Reader {
    pub fn new(path: &Path) -> Reader {
        Reader {
            path: path.to_path_buf(),
            pool: Mutex::new(Vec::new()),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let conn = self.pool.lock().ok().and_then(|mut p| p.pop());
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c
            }
        };
        let result = f(&conn);
        if let Ok(mut p) = self.pool.lock()
            && p.len() < 8
        {
            p.push(conn);
        }
        Ok(result?)
    }

    pub fn entries(&self, start: u64, end_inclusive: u64) -> Result<Vec<StoredEntry>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM entries WHERE idx >= ?1 AND idx <= ?2 ORDER BY idx"
            ))?;
            let rows =
                stmt.query_map(params![start as i64, end_inclusive as i64], entry_from_row)?;
            rows.collect()
        })
    }

    /// The index of the entry with `leaf_hash` in the lookup table, among the first
    /// `tree_size` entries (entries not yet written there are in [`super::index::Recent`]).
    pub fn index_by_leaf_hash(
        &self,
        leaf_hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.with(|c| find_in(c, LookupKind::LeafHash, leaf_hash, tree_size))
    }

    pub fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|c| {
            c.prepare_cached("SELECT hashes FROM tiles WHERE level = ?1 AND idx = ?2")?
                .query_row(params![level, index as i64], |r| r.get(0))
                .optional()
        })
    }

    pub fn issuer(&self, fingerprint: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|c| {
            c.prepare_cached("SELECT der FROM issuers WHERE fingerprint = ?1")?
                .query_row([&fingerprint[..]], |r| r.get(0))
                .optional()
        })
    }
}

/// A step of a batch commit, for fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Begin,
    InsertEntries,
    InsertIssuers,
    PutTiles,
    PutCheckpoint,
    /// The commit fails and nothing is durable.
    Commit,
    /// The commit succeeds on disk but reports failure (an fsync error after the write):
    /// the log must not hand out SCTs it cannot vouch for, and must recover.
    CommitAmbiguous,
    /// Writing lookup rows (after the batches' SCTs went out): no SCT is affected, the
    /// entries stay findable from memory and the write is retried.
    PutLookup,
    /// Reading the checkpoint back, as the log does to recover after a failed commit.
    LoadCheckpoint,
}

impl Step {
    /// The steps of a batch commit ([`Step::PutLookup`] is not one: it runs afterwards).
    pub const ALL: [Step; 7] = [
        Step::Begin,
        Step::InsertEntries,
        Step::InsertIssuers,
        Step::PutTiles,
        Step::PutCheckpoint,
        Step::Commit,
        Step::CommitAmbiguous,
    ];
}

/// Wraps a store and fails chosen steps of the next batch(es).
pub struct FaultyStore<S: LogStore> {
    inner: S,
    faults: Faults,
}

/// Armed faults: each step with the number of times it still fails.
type Faults = std::sync::Arc<Mutex<Vec<(Step, u32)>>>;

/// Arms faults in a [`FaultyStore`] from another thread.
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

impl<S: LogStore> FaultyStore<S> {
    pub fn new(inner: S) -> (FaultyStore<S>, FaultSwitch) {
        let faults = Faults::default();
        (
            FaultyStore {
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
            Err(StoreError(format!("injected failure at {step:?}")))
        } else {
            Ok(())
        }
    }
}

impl<S: LogStore> LogStore for FaultyStore<S> {
    fn load_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.check(Step::LoadCheckpoint)?;
        self.inner.load_checkpoint()
    }
    fn entry(&mut self, index: u64) -> Result<Option<StoredEntry>, StoreError> {
        self.inner.entry(index)
    }
    fn find(
        &mut self,
        kind: LookupKind,
        hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.inner.find(kind, hash, tree_size)
    }
    fn hashes(
        &mut self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Hash, Hash)>, StoreError> {
        self.inner.hashes(from, to, limit)
    }
    fn put_lookup(&mut self, rows: &[LookupRow], indexed_upto: u64) -> Result<(), StoreError> {
        self.check(Step::PutLookup)?;
        self.inner.put_lookup(rows, indexed_upto)
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
    fn begin(&mut self) -> Result<(), StoreError> {
        self.check(Step::Begin)?;
        self.inner.begin()
    }
    fn insert_entries(&mut self, entries: &[StoredEntry]) -> Result<(), StoreError> {
        self.check(Step::InsertEntries)?;
        self.inner.insert_entries(entries)
    }
    fn insert_issuers(&mut self, issuers: &[(Hash, Vec<u8>)]) -> Result<(), StoreError> {
        self.check(Step::InsertIssuers)?;
        self.inner.insert_issuers(issuers)
    }
    fn put_tiles(&mut self, tiles: &[(u8, u64, Vec<u8>)]) -> Result<(), StoreError> {
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
            return Err(StoreError("injected failure after a durable commit".into()));
        }
        Ok(())
    }
    fn rollback(&mut self) {
        self.inner.rollback()
    }
    fn after_commit(&mut self) {
        self.inner.after_commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::log::index;

    fn entry(index: u64, dedup: Hash, leaf_hash: Hash) -> StoredEntry {
        StoredEntry {
            index,
            dedup,
            leaf_hash,
            timestamp: 1,
            signature: vec![4, 3, 0, 0],
            timestamped_entry: vec![0; 12],
            precert: None,
            chain: vec![[9; 32]],
        }
    }

    #[test]
    fn lookups_span_epochs_and_survive_prefix_collisions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let mut store = SqliteStore::open(&path).unwrap();
        // Two leaf hashes that share their first 8 bytes, and entries in three epochs.
        let mut a = [1u8; 32];
        let mut b = [1u8; 32];
        a[31] = 0xa;
        b[31] = 0xb;
        let far = 3 << index::EPOCH_BITS;
        let entries = vec![
            entry(5, [5; 32], a),
            entry((1 << index::EPOCH_BITS) + 1, [6; 32], [2; 32]),
            entry(far, [7; 32], b),
        ];
        store.begin().unwrap();
        store.insert_entries(&entries).unwrap();
        store.commit().unwrap();
        let triples: Vec<_> = entries
            .iter()
            .map(|e| (e.index, e.dedup, e.leaf_hash))
            .collect();
        store
            .put_lookup(&index::rows_for(&triples), far + 1)
            .unwrap();
        assert_eq!(
            lookup_in(&store.conn, LookupKind::LeafHash, 0, index::prefix(&b)).unwrap(),
            vec![5],
            "a prefix match is only a candidate"
        );
        assert_eq!(
            lookup_in(&store.conn, LookupKind::Dedup, 1, index::prefix(&[6; 32])).unwrap(),
            vec![(1 << index::EPOCH_BITS) + 1]
        );
        assert_eq!(
            store.find(LookupKind::Dedup, &[6; 32], far + 1).unwrap(),
            Some((1 << index::EPOCH_BITS) + 1)
        );
        assert_eq!(
            store.find(LookupKind::Dedup, &[8; 32], far + 1).unwrap(),
            None
        );

        let reader = Reader::new(&path);
        assert_eq!(reader.index_by_leaf_hash(&a, far + 1).unwrap(), Some(5));
        assert_eq!(reader.index_by_leaf_hash(&b, far + 1).unwrap(), Some(far));
        assert_eq!(
            reader.index_by_leaf_hash(&[2; 32], far + 1).unwrap(),
            Some((1 << index::EPOCH_BITS) + 1)
        );
        assert_eq!(
            reader.index_by_leaf_hash(&b, far).unwrap(),
            None,
            "not in a tree that ends before it"
        );
        assert_eq!(reader.index_by_leaf_hash(&[3; 32], far + 1).unwrap(), None);
        assert_eq!(
            store.meta("indexed_upto").unwrap(),
            Some((far + 1).to_be_bytes().to_vec())
        );
        assert_eq!(store.entry(far).unwrap().unwrap().leaf_hash, b);
        assert_eq!(store.hashes(0, far + 1, 2).unwrap().len(), 2, "limit");
    }
}
