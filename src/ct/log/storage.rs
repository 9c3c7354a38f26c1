//! Durable storage of the embedded log: one SQLite file in WAL mode with
//! `synchronous=FULL`, one transaction per batch (entries, issuers, tiles and the
//! checkpoint commit together, so there is no crash window between them).
//!
//! Writes go through the [`LogStore`] trait, one method per step, so tests can fail any
//! step ([`FaultyStore`]). Reads for the HTTP API use separate read-only connections
//! ([`Reader`]), which WAL lets run beside the writer.

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
    fn find_by_dedup(&mut self, dedup: &Hash) -> Result<Option<StoredEntry>, StoreError>;
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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
  idx INTEGER PRIMARY KEY,
  dedup BLOB NOT NULL UNIQUE,
  leaf_hash BLOB NOT NULL,
  timestamp INTEGER NOT NULL,
  signature BLOB NOT NULL,
  timestamped_entry BLOB NOT NULL,
  precert BLOB,
  chain BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_leaf_hash ON entries(leaf_hash);
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

/// The SQLite implementation of [`LogStore`].
/// Entries committed between WAL checkpoints (roughly SQLite's default of 1000 pages).
pub const CHECKPOINT_EVERY_ENTRIES: u64 = 512;

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

    fn find_by_dedup(&mut self, dedup: &Hash) -> Result<Option<StoredEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE dedup = ?1"
        ))?;
        Ok(stmt.query_row([&dedup[..]], entry_from_row).optional()?)
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

    pub fn index_by_leaf_hash(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        self.with(|c| {
            c.prepare_cached("SELECT idx FROM entries WHERE leaf_hash = ?1 ORDER BY idx LIMIT 1")?
                .query_row([&leaf_hash[..]], |r| r.get::<_, i64>(0).map(|i| i as u64))
                .optional()
        })
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
}

impl Step {
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

/// Wraps a store and fails one chosen step of the next batch(es).
pub struct FaultyStore<S: LogStore> {
    inner: S,
    fault: std::sync::Arc<Mutex<Option<(Step, u32)>>>,
}

/// Arms faults in a [`FaultyStore`] from another thread.
#[derive(Clone)]
pub struct FaultSwitch(std::sync::Arc<Mutex<Option<(Step, u32)>>>);

impl FaultSwitch {
    /// Fails `step` for the next `times` batches that reach it.
    pub fn arm(&self, step: Step, times: u32) {
        if let Ok(mut f) = self.0.lock() {
            *f = Some((step, times));
        }
    }

    pub fn armed(&self) -> bool {
        self.0.lock().map(|f| f.is_some()).unwrap_or(false)
    }
}

impl<S: LogStore> FaultyStore<S> {
    pub fn new(inner: S) -> (FaultyStore<S>, FaultSwitch) {
        let fault = std::sync::Arc::new(Mutex::new(None));
        (
            FaultyStore {
                inner,
                fault: fault.clone(),
            },
            FaultSwitch(fault),
        )
    }

    fn trip(&self, step: Step) -> bool {
        let Ok(mut f) = self.fault.lock() else {
            return false;
        };
        match *f {
            Some((s, n)) if s == step => {
                *f = if n > 1 { Some((s, n - 1)) } else { None };
                true
            }
            _ => false,
        }
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
        self.inner.load_checkpoint()
    }
    fn find_by_dedup(&mut self, dedup: &Hash) -> Result<Option<StoredEntry>, StoreError> {
        self.inner.find_by_dedup(dedup)
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
