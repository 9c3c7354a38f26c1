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
const CHUNK: u64 = 4096;
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
                idle_scheduling();
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
                let mut pending = Pending::default();
                while !s.load(Ordering::Relaxed) {
                    match rt.block_on(step(reader.as_ref(), &index, &mut pending)) {
                        Ok(true) => {}
                        Ok(false) => std::thread::park_timeout(IDLE),
                        Err(e) => {
                            tracing::warn!(error = %crate::errors::Chain(&e), "CT log search indexer failed; retrying");
                            pending = Pending::default();
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

/// Puts the calling thread (the indexer) under `SCHED_IDLE`: it runs only on CPU time no
/// request, sequencer or other thread wants. The index is derived data that may lag; an
/// issuance must not wait for it. Under sustained saturation the index falls behind
/// (`brevis_ctlog_search_index_lag_entries`) and catches up when load eases
/// (docs/benchmarks.md has the cost with and without it).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn idle_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call, which only reads it;
    // pid 0 names the calling thread, so no other thread's policy changes.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "CT log search indexer keeps the default scheduling policy"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn idle_scheduling() {}

/// Rows read but not written yet, and when the index was last written.
struct Pending {
    rows: Vec<IndexRow>,
    /// The position after `rows`.
    to: Option<u64>,
    written: std::time::Instant,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            rows: Vec::new(),
            to: None,
            written: std::time::Instant::now(),
        }
    }
}

/// Rows gathered before a write at most (a few MiB of keys).
const MAX_PENDING: usize = 16_384;
/// Longest rows wait before they are written (and searchable).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Reads and parses the next chunk; writes what it gathered once it holds
/// [`MAX_PENDING`] rows or [`FLUSH_EVERY`] passed. Index keys are random (serials, many
/// identities), so each written row dirties its own B-tree page unless a transaction
/// holds many rows: writing rarely and in large transactions is what keeps the index's
/// disk writes from competing with the log's commits. `Ok(false)` when caught up.
async fn step(
    reader: &dyn LogReader,
    index: &SearchIndex,
    pending: &mut Pending,
) -> Result<bool, super::StoreError> {
    let size = reader.checkpoint().await?.map_or(0, |c| c.tree_size);
    let from = match pending.to {
        Some(t) => t,
        None => index.indexed_to()?,
    };
    let caught_up = from >= size;
    if !caught_up && pending.rows.len() < MAX_PENDING {
        let to = (from + CHUNK).min(size);
        let entries = reader.entries(from, to - 1).await?;
        if entries.len() as u64 != to - from {
            return Err(super::StoreError::Corrupt(
                "the log returned fewer committed entries than its checkpoint holds",
            ));
        }
        pending.rows.extend(entries.iter().map(row));
        pending.to = Some(to);
    }
    let due = pending.rows.len() >= MAX_PENDING || pending.written.elapsed() >= FLUSH_EVERY;
    if let Some(to) = pending.to
        && due
    {
        index.put(&pending.rows, to)?;
        pending.rows.clear();
        pending.written = std::time::Instant::now();
        crate::metrics::CTLOG_SEARCH_LAG.set(size.saturating_sub(to) as i64);
    }
    if caught_up && pending.rows.is_empty() {
        pending.to = None;
        pending.written = std::time::Instant::now();
        crate::metrics::CTLOG_SEARCH_LAG.set(0);
    }
    Ok(!caught_up)
}

/// What one entry is found by. An entry whose certificate does not parse is kept (so
/// its index still shows) with no keys.
pub(crate) fn row(e: &StoredEntry) -> IndexRow {
    let mut leaf = vec![0, 0];
    leaf.extend_from_slice(&e.timestamped_entry);
    // Framing only: `facts` parses the certificate (once).
    let parsed = entry::frame_leaf_input(&leaf).ok();
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
