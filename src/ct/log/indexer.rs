//! Builds the search index (`store::search`) as entries are sequenced: a thread that
//! follows the committed checkpoint, reads new entries through the log's reader, and
//! writes their identities, repositories and serials with the new position in one
//! transaction. It reads only committed entries, so every replica of a shared log builds
//! the same index from the same data.

use super::store::search::{IndexRow, IndexedEntry, SearchIndex, SearchKind};
use super::store::{LogReader, StoredEntry};
use crate::ct::{entry, facts};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Entries read and indexed per transaction.
const CHUNK: u64 = 1000;
/// How long the indexer sleeps when it has caught up.
const IDLE: Duration = Duration::from_millis(200);

/// The running indexer; stopped on drop.
pub(crate) struct Indexer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    pub(crate) fn start(
        reader: Arc<dyn LogReader>,
        index: Arc<SearchIndex>,
    ) -> std::io::Result<Indexer> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ctlog-indexer".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "CT log search indexer: no runtime");
                        return;
                    }
                };
                while !s.load(Ordering::Relaxed) {
                    match rt.block_on(step(reader.as_ref(), &index)) {
                        Ok(true) => {}
                        Ok(false) => std::thread::park_timeout(IDLE),
                        Err(e) => {
                            tracing::warn!(error = %crate::errors::Chain(&e), "CT log search indexer failed; retrying");
                            std::thread::park_timeout(Duration::from_secs(1));
                        }
                    }
                }
            })?;
        Ok(Indexer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Indexes the next chunk; `Ok(false)` when caught up.
async fn step(reader: &dyn LogReader, index: &SearchIndex) -> Result<bool, super::StoreError> {
    let size = reader.checkpoint().await?.map_or(0, |c| c.tree_size);
    let from = index.indexed_to()?;
    if from >= size {
        crate::metrics::CTLOG_SEARCH_LAG.set(0);
        return Ok(false);
    }
    let to = (from + CHUNK).min(size);
    let entries = reader.entries(from, to - 1).await?;
    if entries.len() as u64 != to - from {
        return Err(super::StoreError::Corrupt(
            "the log returned fewer committed entries than its checkpoint holds",
        ));
    }
    let rows: Vec<IndexRow> = entries.iter().map(row).collect();
    index.put(&rows, to)?;
    crate::metrics::CTLOG_SEARCH_LAG.set((size - to) as i64);
    Ok(true)
}

/// What one entry is found by. An entry whose certificate does not parse is kept (so
/// its index still shows) with no keys.
pub(crate) fn row(e: &StoredEntry) -> IndexRow {
    let mut leaf = vec![0, 0];
    leaf.extend_from_slice(&e.timestamped_entry);
    let parsed = entry::parse_leaf_input(&leaf).ok();
    let f = parsed.as_ref().and_then(|p| facts::of_entry(p).ok());
    let mut keys = Vec::new();
    if let Some(f) = &f {
        for s in &f.sans {
            keys.push((SearchKind::Identity, s.value.clone()));
        }
        for arc in [12, 5] {
            if let Some(v) = f.extension(arc) {
                keys.push((SearchKind::Repository, v.to_string()));
            }
        }
        keys.push((SearchKind::Serial, f.serial.clone()));
    }
    IndexRow {
        entry: IndexedEntry {
            index: e.index,
            timestamp: e.timestamp,
            identity: f.as_ref().and_then(|f| f.identity().map(String::from)),
            issuer: f.as_ref().and_then(|f| f.oidc_issuer.clone()),
            serial: f.as_ref().map(|f| f.serial.clone()),
            precertificate: e.precert.is_some(),
        },
        keys,
    }
}
