//! The log's search index: identities, repositories and serials of logged certificates,
//! for the explorer (`/ui/`) and its JSON API. Derived data, kept in its own SQLite file
//! in the log's directory (`search.sqlite`) on every backend, written by the indexer
//! thread as entries are sequenced, and rebuilt from the log whenever it does not match
//! (another log's ID, or more entries than the log has: delete the file to force it).

use super::StoreError;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

/// What a search key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    /// Any SAN value (email, URI, username, ...).
    Identity = 0,
    /// Source repository: extension `.12` (URI) or `.5` (`owner/name`).
    Repository = 1,
    /// Serial number, lower-case hex.
    Serial = 2,
}

/// One entry as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedEntry {
    /// Leaf index.
    pub index: u64,
    /// The entry's timestamp (ms).
    pub timestamp: u64,
    /// The first SAN's value (`None` if the certificate did not parse).
    pub identity: Option<String>,
    /// The OIDC issuer extension.
    pub issuer: Option<String>,
    /// Serial, hex.
    pub serial: Option<String>,
    /// Whether the entry is a precertificate.
    pub precertificate: bool,
}

/// An entry and the keys it is found by.
pub(crate) struct IndexRow {
    pub entry: IndexedEntry,
    pub keys: Vec<(SearchKind, String)>,
}

/// A page of results and the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// Results, newest first for exact searches, by key then newest for prefix searches.
    pub hits: Vec<IndexedEntry>,
    /// Opaque cursor for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// The index file: one writer connection (the indexer) and one for searches.
pub struct SearchIndex {
    write: Mutex<Connection>,
    read: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    identity TEXT,
    issuer TEXT,
    serial TEXT,
    precert INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_ts ON entries (ts);
CREATE TABLE IF NOT EXISTS keys (
    kind INTEGER NOT NULL,
    key TEXT NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (kind, key, idx)
) WITHOUT ROWID;
";

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    // Derived data: never synced, so its writes never queue in front of the log's fsyncs.
    // A crash may lose the last writes (the indexer redoes them); a power loss may leave
    // the file unreadable, and then it is rebuilt from the log (`SearchIndex::open`).
    c.pragma_update(None, "synchronous", "OFF")?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(c)
}

impl SearchIndex {
    /// Opens (or creates) the index at `path` for the log `log_id` of `tree_size`
    /// entries; an index of another log, or ahead of the log, is emptied to be rebuilt,
    /// and one that cannot be read (a power loss while it was being written) is deleted
    /// and rebuilt.
    pub fn open(path: &Path, log_id: &[u8], tree_size: u64) -> Result<SearchIndex, StoreError> {
        match SearchIndex::open_as_is(path, log_id, tree_size) {
            Ok(i) => Ok(i),
            Err(e) => {
                tracing::warn!(error = %crate::errors::Chain(&e), path = %path.display(), "CT log search index unreadable: rebuilding it");
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.as_os_str().to_owned();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
                SearchIndex::open_as_is(path, log_id, tree_size)
            }
        }
    }

    fn open_as_is(path: &Path, log_id: &[u8], tree_size: u64) -> Result<SearchIndex, StoreError> {
        let w = open_conn(path)?;
        // Large transactions keep their dirty pages in memory until they commit.
        w.pragma_update(None, "cache_size", -16384)?;
        w.execute_batch(SCHEMA)?;
        let stored: Option<Vec<u8>> = w
            .query_row("SELECT v FROM meta WHERE k = 'log_id'", [], |r| r.get(0))
            .optional()?;
        let index = SearchIndex {
            read: Mutex::new(open_conn(path)?),
            write: Mutex::new(w),
        };
        let ahead = index.indexed_to()? > tree_size;
        if stored.as_deref() != Some(log_id) || ahead {
            if stored.is_some() {
                tracing::warn!("CT log search index does not match the log: rebuilding it");
            }
            let w = index.write.lock().unwrap_or_else(|e| e.into_inner());
            w.execute_batch(
                "BEGIN; DELETE FROM entries; DELETE FROM keys; DELETE FROM meta; COMMIT;",
            )?;
            w.execute(
                "INSERT INTO meta (k, v) VALUES ('log_id', ?1)",
                params![log_id],
            )?;
        }
        Ok(index)
    }

    /// How many entries (from 0) are indexed.
    pub fn indexed_to(&self) -> Result<u64, StoreError> {
        let c = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let v: Option<i64> = c
            .query_row("SELECT v FROM meta WHERE k = 'indexed_to'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.unwrap_or(0) as u64)
    }

    /// Adds rows and moves `indexed_to` to `to`, in one transaction.
    pub(crate) fn put(&self, rows: &[IndexRow], to: u64) -> Result<(), StoreError> {
        let mut c = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let tx = c.transaction()?;
        {
            let mut e = tx.prepare_cached(
                "INSERT OR REPLACE INTO entries (idx, ts, identity, issuer, serial, precert)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut k = tx.prepare_cached(
                "INSERT OR IGNORE INTO keys (kind, key, idx) VALUES (?1, ?2, ?3)",
            )?;
            for r in rows {
                let x = &r.entry;
                e.execute(params![
                    x.index as i64,
                    x.timestamp as i64,
                    x.identity,
                    x.issuer,
                    x.serial,
                    x.precertificate
                ])?;
                for (kind, key) in &r.keys {
                    k.execute(params![*kind as i64, key, x.index as i64])?;
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES ('indexed_to', ?1)",
                params![to as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Entries whose key of `kind` is `text` (or starts with it, with `prefix`), at most
    /// `limit`, after `cursor`.
    pub fn search(
        &self,
        kind: SearchKind,
        text: &str,
        prefix: bool,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SearchPage, StoreError> {
        let c = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let want = limit as i64 + 1;
        // (key, idx) pairs in page order.
        let mut found: Vec<(String, i64)> = if prefix {
            // Key order, then newest first within a key: the index's own order, so a
            // prefix matching the whole log still reads only one page.
            let (after_key, after_idx) = match cursor.and_then(parse_prefix_cursor) {
                Some((k, i)) => (Some(k), i),
                None => (None, i64::MAX),
            };
            let upper = format!("{text}\u{10FFFF}");
            let mut stmt = c.prepare_cached(
                "SELECT key, idx FROM keys
                 WHERE kind = ?1 AND key >= ?2 AND key < ?3
                   AND (?4 IS NULL OR key > ?4 OR (key = ?4 AND idx < ?5))
                 ORDER BY key, idx DESC LIMIT ?6",
            )?;
            stmt.query_map(
                params![kind as i64, text, upper, after_key, after_idx, want],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<Result<_, _>>()?
        } else {
            let before = cursor
                .and_then(|c| c.parse::<i64>().ok())
                .unwrap_or(i64::MAX);
            let mut stmt = c.prepare_cached(
                "SELECT key, idx FROM keys WHERE kind = ?1 AND key = ?2 AND idx < ?3
                 ORDER BY idx DESC LIMIT ?4",
            )?;
            stmt.query_map(params![kind as i64, text, before, want], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let more = found.len() > limit;
        found.truncate(limit);
        let next = if more {
            found.last().map(|(k, i)| {
                if prefix {
                    format!("{i}:{k}")
                } else {
                    i.to_string()
                }
            })
        } else {
            None
        };
        let mut stmt = c.prepare_cached(
            "SELECT idx, ts, identity, issuer, serial, precert FROM entries WHERE idx = ?1",
        )?;
        let mut hits = Vec::with_capacity(found.len());
        for (_, idx) in &found {
            if let Some(e) = stmt.query_row([idx], entry_from_row).optional()? {
                hits.push(e);
            }
        }
        Ok(SearchPage { hits, next })
    }

    /// The indexed entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Option<IndexedEntry>, StoreError> {
        let c = self.read.lock().unwrap_or_else(|e| e.into_inner());
        Ok(c.prepare_cached(
            "SELECT idx, ts, identity, issuer, serial, precert FROM entries WHERE idx = ?1",
        )?
        .query_row([index as i64], entry_from_row)
        .optional()?)
    }

    /// Entries per hour from `since_ms` on: (hour start in ms, count), oldest first.
    pub fn hourly(&self, since_ms: u64) -> Result<Vec<(u64, u64)>, StoreError> {
        let c = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = c.prepare_cached(
            "SELECT ts / 3600000, count(*) FROM entries WHERE ts >= ?1 GROUP BY 1 ORDER BY 1",
        )?;
        let rows = stmt.query_map([since_ms as i64], |r| {
            Ok((
                (r.get::<_, i64>(0)? as u64) * 3_600_000,
                r.get::<_, i64>(1)? as u64,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn parse_prefix_cursor(c: &str) -> Option<(String, i64)> {
    let (i, k) = c.split_once(':')?;
    Some((k.to_string(), i.parse().ok()?))
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IndexedEntry> {
    Ok(IndexedEntry {
        index: r.get::<_, i64>(0)? as u64,
        timestamp: r.get::<_, i64>(1)? as u64,
        identity: r.get(2)?,
        issuer: r.get(3)?,
        serial: r.get(4)?,
        precertificate: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: u64, identity: &str, repo: &str) -> IndexRow {
        IndexRow {
            entry: IndexedEntry {
                index,
                timestamp: 3_600_000 * (index / 10),
                identity: Some(identity.into()),
                issuer: Some("https://issuer".into()),
                serial: Some(format!("{index:04x}")),
                precertificate: true,
            },
            keys: vec![
                (SearchKind::Identity, identity.into()),
                (SearchKind::Repository, repo.into()),
                (SearchKind::Serial, format!("{index:04x}")),
            ],
        }
    }

    #[test]
    fn exact_prefix_paging_and_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("search.sqlite");
        let idx = SearchIndex::open(&path, b"log-a", 0).unwrap();
        let rows: Vec<IndexRow> = (0..30)
            .map(|i| {
                row(
                    i,
                    &format!("user{}@example.com", i % 3),
                    "https://github.com/acme/app",
                )
            })
            .collect();
        idx.put(&rows, 30).unwrap();
        assert_eq!(idx.indexed_to().unwrap(), 30);
        // Exact: newest first, paged without overlap.
        let p1 = idx
            .search(SearchKind::Identity, "user1@example.com", false, 4, None)
            .unwrap();
        let got: Vec<u64> = p1.hits.iter().map(|h| h.index).collect();
        assert_eq!(got, [28, 25, 22, 19]);
        let p2 = idx
            .search(
                SearchKind::Identity,
                "user1@example.com",
                false,
                4,
                p1.next.as_deref(),
            )
            .unwrap();
        assert_eq!(
            p2.hits.iter().map(|h| h.index).collect::<Vec<_>>(),
            [16, 13, 10, 7]
        );
        let p3 = idx
            .search(
                SearchKind::Identity,
                "user1@example.com",
                false,
                4,
                p2.next.as_deref(),
            )
            .unwrap();
        assert_eq!(p3.hits.iter().map(|h| h.index).collect::<Vec<_>>(), [4, 1]);
        assert_eq!(p3.next, None);
        // Prefix: all 30, in pages, each once.
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let p = idx
                .search(SearchKind::Identity, "user", true, 7, cursor.as_deref())
                .unwrap();
            all.extend(p.hits.iter().map(|h| h.index));
            match p.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        all.sort();
        assert_eq!(all, (0..30).collect::<Vec<_>>());
        assert!(
            idx.search(SearchKind::Identity, "nobody", true, 7, None)
                .unwrap()
                .hits
                .is_empty()
        );
        assert_eq!(
            idx.search(SearchKind::Serial, "001d", false, 5, None)
                .unwrap()
                .hits[0]
                .index,
            29
        );
        assert_eq!(
            idx.search(
                SearchKind::Repository,
                "https://github.com/acme/app",
                false,
                100,
                None
            )
            .unwrap()
            .hits
            .len(),
            30
        );
        assert_eq!(
            idx.hourly(0).unwrap(),
            [(0, 10), (3_600_000, 10), (7_200_000, 10)]
        );
        drop(idx);
        // Same log: kept. Another log, or a log with fewer entries: rebuilt.
        assert_eq!(
            SearchIndex::open(&path, b"log-a", 30)
                .unwrap()
                .indexed_to()
                .unwrap(),
            30
        );
        assert_eq!(
            SearchIndex::open(&path, b"log-a", 10)
                .unwrap()
                .indexed_to()
                .unwrap(),
            0
        );
        let idx = SearchIndex::open(&path, b"log-a", 0).unwrap();
        idx.put(&rows, 30).unwrap();
        drop(idx);
        assert_eq!(
            SearchIndex::open(&path, b"log-b", 30)
                .unwrap()
                .indexed_to()
                .unwrap(),
            0
        );
    }
}
