//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL`, one
//! transaction per batch (entries, issuers, tiles and the checkpoint commit together, so
//! there is no crash window between them). Lookups by hash are kept out of the batch
//! transaction ([`super::lookup`]): recent entries are found in memory, older ones in
//! the `lookup` table, written in sorted runs after the batch's replies went out.
//!
//! One process writes (SQLite's lock serialises writers, and `BEGIN IMMEDIATE` takes it
//! for the whole batch); reads use separate read-only connections, which WAL lets run
//! beside the writer.

use super::lookup::{self, LookupRow, Recent, epochs, prefix};
use super::{
    LogReader, LogWriter, LookupKind, StoreError, StoredCheckpoint, StoredEntry, TileWrite,
};
use crate::ct::merkle::{Hash, hashes_from};
use crate::metrics;
use crate::model::BoxFuture;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

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

fn entry_from_row(row: &rusqlite::Row<'_>) -> Result<StoredEntry, rusqlite::Error> {
    let chain: Vec<u8> = row.get(7)?;
    Ok(StoredEntry {
        index: row.get::<_, i64>(0)? as u64,
        dedup: hash(row.get(1)?)?,
        leaf_hash: hash(row.get(2)?)?,
        timestamp: row.get::<_, i64>(3)? as u64,
        signature: row.get(4)?,
        timestamped_entry: row.get(5)?,
        precert: row.get(6)?,
        chain: hashes_from(&chain).map_err(|_| {
            rusqlite::Error::InvalidColumnType(7, "chain".into(), rusqlite::types::Type::Blob)
        })?,
    })
}

const ENTRY_COLUMNS: &str =
    "idx, dedup, leaf_hash, timestamp, signature, timestamped_entry, precert, chain";

/// Entries committed between WAL checkpoints (roughly SQLite's default of 1000 pages).
pub(crate) const CHECKPOINT_EVERY_ENTRIES: u64 = 512;

/// Opens (creating, migrating) the log database at `path`: the writer and its reader.
/// `index_every`: entries held in memory before their lookup rows are written.
pub fn open(path: &Path, index_every: u64) -> Result<(SqliteWriter, SqliteReader), StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // No automatic checkpoints inside COMMIT: `after_commit` checkpoints the WAL once the
    // batch's SCTs are on their way (docs/benchmarks.md).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Room for every statement the writer repeats (rusqlite keeps 16 by default).
    conn.set_prepared_statement_cache_capacity(32);
    migrate_indexed_entries(&conn)?;
    conn.execute_batch(ENTRIES_TABLE)?;
    conn.execute_batch(SCHEMA)?;
    let recent = Arc::new(RwLock::new(Recent::new(0)));
    let mut writer = SqliteWriter {
        conn,
        recent: recent.clone(),
        index_every: index_every.max(1),
        since_checkpoint: 0,
        batch: Vec::new(),
        stale: true,
    };
    writer.sync_recent()?;
    let reader = SqliteReader {
        path: path.to_path_buf(),
        pool: Mutex::new(Vec::new()),
        recent,
    };
    Ok((writer, reader))
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
fn find_in_table(
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

/// Memory first (entries not yet in the lookup table), then the table.
fn find(
    conn: &Connection,
    recent: &RwLock<Recent>,
    kind: LookupKind,
    hash: &Hash,
    tree_size: u64,
) -> Result<Option<u64>, StoreError> {
    let held = recent.read().ok().and_then(|r| r.get(kind, hash));
    if let Some(i) = held {
        return Ok((i < tree_size).then_some(i));
    }
    Ok(find_in_table(conn, kind, hash, tree_size)?)
}

fn tile_in(conn: &Connection, level: u8, index: u64) -> Result<Option<Vec<u8>>, rusqlite::Error> {
    conn.prepare_cached("SELECT hashes FROM tiles WHERE level = ?1 AND idx = ?2")?
        .query_row(params![level, index as i64], |r| r.get(0))
        .optional()
}

fn checkpoint_in(conn: &Connection) -> Result<Option<StoredCheckpoint>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT tree_size, timestamp, root, signature, frontier FROM checkpoint WHERE id = 1",
    )?
    .query_row([], |r| {
        Ok(StoredCheckpoint {
            tree_size: r.get::<_, i64>(0)? as u64,
            timestamp: r.get::<_, i64>(1)? as u64,
            root: hash(r.get(2)?)?,
            signature: r.get(3)?,
            frontier: r.get(4)?,
        })
    })
    .optional()
}

/// Rows read per transaction when a backlog of entries is indexed.
const BACKLOG_CHUNK: usize = 65_536;

/// The SQLite write half.
pub struct SqliteWriter {
    conn: Connection,
    /// Shared with the reader: committed entries not yet in the lookup table.
    recent: Arc<RwLock<Recent>>,
    index_every: u64,
    since_checkpoint: u64,
    /// (index, dedup, leaf hash) of the open batch's entries, for `recent` on commit.
    batch: Vec<(u64, Hash, Hash)>,
    /// Set after a failed batch: `recent` may disagree with the disk until rebuilt.
    stale: bool,
}

impl SqliteWriter {
    /// Rebuilds `recent` from what is durable: writes any backlog of entries to the
    /// lookup table (entries from before a crash, a migrated log), and holds the rest.
    fn sync_recent(&mut self) -> Result<(), StoreError> {
        let tree_size = checkpoint_in(&self.conn)?.map_or(0, |c| c.tree_size);
        let mut upto = match self.meta("indexed_upto")? {
            Some(b) => u64::from_be_bytes(
                b.try_into()
                    .map_err(|_| StoreError::Corrupt("indexed_upto is not 8 bytes"))?,
            ),
            None => 0,
        }
        .min(tree_size);
        while tree_size - upto >= self.index_every {
            let chunk = self.hashes(upto, tree_size, BACKLOG_CHUNK)?;
            let Some(last) = chunk.last().map(|e| e.0 + 1) else {
                break;
            };
            self.put_lookup(&lookup::rows_for(&chunk), last)?;
            tracing::info!(
                indexed_upto = last,
                tree_size,
                "CT log lookup table caught up"
            );
            upto = last;
        }
        let mut recent = Recent::new(upto);
        for (i, d, l) in self.hashes(upto, tree_size, usize::MAX >> 1)? {
            recent.insert(i, d, l);
        }
        metrics::CTLOG_UNINDEXED.set(recent.len() as i64);
        if let Ok(mut r) = self.recent.write() {
            *r = recent;
        }
        self.stale = false;
        Ok(())
    }

    /// (index, dedup hash, leaf hash) of entries `from..to`, at most `limit` of them.
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

    /// Writes lookup rows and records that entries below `indexed_upto` are indexed, in
    /// one transaction of its own.
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

    /// Writes the entries held in memory to the lookup table once there are enough of
    /// them. A failure is retried after the next batch; lookups keep working from memory
    /// meanwhile.
    fn maybe_index(&mut self) -> Result<(), StoreError> {
        let (rows, upto) = match self.recent.read() {
            Ok(r) if r.len() as u64 >= self.index_every => r.rows(),
            _ => return Ok(()),
        };
        self.put_lookup(&rows, upto)?;
        if let Ok(mut r) = self.recent.write() {
            r.flushed(upto);
            metrics::CTLOG_UNINDEXED.set(r.len() as i64);
        }
        Ok(())
    }
}

impl LogWriter for SqliteWriter {
    fn begin(&mut self) -> Result<Option<StoredCheckpoint>, StoreError> {
        if self.stale {
            self.sync_recent()?;
        }
        // Statements of every batch are prepared once (parsing SQL was a few percent of
        // the sequencer's CPU).
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        self.batch.clear();
        match checkpoint_in(&self.conn) {
            Ok(c) => Ok(c),
            Err(e) => {
                self.rollback();
                Err(e.into())
            }
        }
    }

    fn find(
        &mut self,
        kind: LookupKind,
        hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<u64>, StoreError> {
        find(&self.conn, &self.recent, kind, hash, tree_size)
    }

    fn entry(&mut self, index: u64) -> Result<Option<StoredEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE idx = ?1"
        ))?;
        Ok(stmt.query_row([index as i64], entry_from_row).optional()?)
    }

    fn tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(tile_in(&self.conn, level, index)?)
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
            self.batch.push((e.index, e.dedup, e.leaf_hash));
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

    fn put_tiles(&mut self, tiles: &[TileWrite]) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO tiles (level, idx, hashes) VALUES (?1, ?2, ?3)",
        )?;
        for (level, index, hashes) in tiles {
            stmt.execute(params![level, *index as i64, hashes])?;
        }
        Ok(())
    }

    fn put_checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        if checkpoint_in(&self.conn)?.is_some_and(|old| old.tree_size > c.tree_size) {
            return Err(StoreError::Conflict);
        }
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO checkpoint (id, tree_size, timestamp, root, signature, frontier)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                c.tree_size as i64,
                c.timestamp as i64,
                &c.root[..],
                c.signature,
                c.frontier
            ])?;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if let Err(e) = self
            .conn
            .prepare_cached("COMMIT")
            .and_then(|mut c| c.execute([]))
        {
            self.stale = true;
            return Err(e.into());
        }
        if let Ok(mut r) = self.recent.write() {
            for (i, d, l) in self.batch.drain(..) {
                r.insert(i, d, l);
            }
            metrics::CTLOG_UNINDEXED.set(r.len() as i64);
        }
        Ok(())
    }

    fn rollback(&mut self) {
        self.batch.clear();
        self.stale = true;
        let _ = self.conn.execute_batch("ROLLBACK");
    }

    fn after_commit(&mut self) -> Result<(), StoreError> {
        let indexed = self.maybe_index();
        if self.since_checkpoint >= CHECKPOINT_EVERY_ENTRIES {
            self.since_checkpoint = 0;
            // The writer's own thread: no frame is appended meanwhile, so the WAL
            // restarts from its beginning at the next batch.
            if let Err(e) = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                tracing::warn!(error = %e, "CT log WAL checkpoint failed");
            }
        }
        indexed
    }
}

/// The SQLite read half: a small pool of read-only connections.
pub struct SqliteReader {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
    recent: Arc<RwLock<Recent>>,
}

impl SqliteReader {
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
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
        result
    }
}

/// A local read: done at once, returned as an already-resolved future.
fn ready<'a, T: Send + 'a>(v: Result<T, StoreError>) -> BoxFuture<'a, Result<T, StoreError>> {
    Box::pin(std::future::ready(v))
}

impl LogReader for SqliteReader {
    fn checkpoint(&self) -> BoxFuture<'_, Result<Option<StoredCheckpoint>, StoreError>> {
        ready(self.with(|c| Ok(checkpoint_in(c)?)))
    }

    fn entries(&self, start: u64, end: u64) -> BoxFuture<'_, Result<Vec<StoredEntry>, StoreError>> {
        ready(self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM entries WHERE idx >= ?1 AND idx <= ?2 ORDER BY idx"
            ))?;
            let rows = stmt.query_map(params![start as i64, end as i64], entry_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        }))
    }

    fn tile(&self, level: u8, index: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        ready(self.with(|c| Ok(tile_in(c, level, index)?)))
    }

    fn issuer<'a>(
        &'a self,
        fingerprint: &'a Hash,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        ready(self.with(|c| {
            Ok(
                c.prepare_cached("SELECT der FROM issuers WHERE fingerprint = ?1")?
                    .query_row([&fingerprint[..]], |r| r.get(0))
                    .optional()?,
            )
        }))
    }

    fn find<'a>(
        &'a self,
        kind: LookupKind,
        hash: &'a Hash,
        tree_size: u64,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        ready(self.with(|c| find(c, &self.recent, kind, hash, tree_size)))
    }
}

/// When the log in the database at `path` was created (ms since the epoch), read
/// without opening it for writing.
pub(crate) fn created_millis(path: &Path) -> Result<Option<u64>, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let b: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'created_ms'", [], |r| {
            r.get(0)
        })
        .optional()?;
    b.map(|b| {
        b.try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("created_ms is not 8 bytes"))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::log::store::lookup::EPOCH_BITS;

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

    #[tokio::test]
    async fn lookups_span_epochs_and_survive_prefix_collisions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        // index_every = 1: every batch is written to the lookup table at once.
        let (mut store, reader) = open(&path, 1).unwrap();
        // Two leaf hashes that share their first 8 bytes, and entries in three epochs.
        let mut a = [1u8; 32];
        let mut b = [1u8; 32];
        a[31] = 0xa;
        b[31] = 0xb;
        let far = 3 << EPOCH_BITS;
        let entries = vec![
            entry(5, [5; 32], a),
            entry((1 << EPOCH_BITS) + 1, [6; 32], [2; 32]),
            entry(far, [7; 32], b),
        ];
        store.begin().unwrap();
        store.insert_entries(&entries).unwrap();
        store.commit().unwrap();
        store.after_commit().unwrap();
        assert_eq!(
            lookup_in(&store.conn, LookupKind::LeafHash, 0, prefix(&b)).unwrap(),
            vec![5],
            "a prefix match is only a candidate"
        );
        assert_eq!(
            lookup_in(&store.conn, LookupKind::Dedup, 1, prefix(&[6; 32])).unwrap(),
            vec![(1 << EPOCH_BITS) + 1]
        );
        assert_eq!(
            store.find(LookupKind::Dedup, &[6; 32], far + 1).unwrap(),
            Some((1 << EPOCH_BITS) + 1)
        );
        assert_eq!(
            store.find(LookupKind::Dedup, &[8; 32], far + 1).unwrap(),
            None
        );
        async fn find_in(r: &SqliteReader, h: &Hash, size: u64) -> Result<Option<u64>, StoreError> {
            r.find(LookupKind::LeafHash, h, size).await
        }
        assert_eq!(find_in(&reader, &a, far + 1).await.unwrap(), Some(5));
        assert_eq!(find_in(&reader, &b, far + 1).await.unwrap(), Some(far));
        assert_eq!(
            find_in(&reader, &[2; 32], far + 1).await.unwrap(),
            Some((1 << EPOCH_BITS) + 1)
        );
        assert_eq!(
            find_in(&reader, &b, far).await.unwrap(),
            None,
            "not in a tree that ends before it"
        );
        assert_eq!(find_in(&reader, &[3; 32], far + 1).await.unwrap(), None);
        assert_eq!(
            store.meta("indexed_upto").unwrap(),
            Some((far + 1).to_be_bytes().to_vec())
        );
        assert_eq!(store.entry(far).unwrap().unwrap().leaf_hash, b);
        assert_eq!(store.hashes(0, far + 1, 2).unwrap().len(), 2, "limit");
    }
}
