//! The sequencer: one thread that pools submissions and commits them in batches. A batch
//! starts as soon as the previous commit finishes (group commit), optionally waiting up to
//! `max_wait` to fill; every entry in it gets an index, the batch one timestamp, the tree
//! new tiles and one signed checkpoint, and all of it commits in one durable transaction.
//! Only then are the SCTs released.

use super::LogError;
use super::index::{self, LookupKind, Recent};
use super::storage::{LogStore, StoreError, StoredCheckpoint, StoredEntry};
use super::validate::{Kind, Submission};
use crate::ct::checkpoint::SignedTreeHead;
use crate::ct::merkle::{self, Frontier, Hash};
use crate::ct::tiles::{TILE_HEIGHT, TILE_WIDTH};
use crate::metrics;
use crate::model::sct::{self, DigitallySigned, Entry, Sct};
use crate::model::signer::Signer;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Tile levels kept (6 levels of 8 tree levels: 2^48 entries).
pub const LEVELS: usize = 6;

pub struct Pending {
    pub submission: Submission,
    pub reply: oneshot::Sender<Result<Sct, LogError>>,
}

/// What the sequencer's queue carries.
pub enum Msg {
    Submit(Pending),
    /// Shutdown has begun: from now on commit what is queued without waiting for a batch
    /// to fill.
    Flush,
}

#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    pub max_size: usize,
    pub max_wait: Duration,
    /// First pause before a broken log retries reloading its state (doubling up to 30 s).
    pub recovery_backoff: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_size: 4096,
            max_wait: Duration::ZERO,
            recovery_backoff: Duration::from_millis(200),
        }
    }
}

/// Tree state carried between batches.
#[derive(Clone)]
pub struct TreeState {
    pub frontier: Frontier,
    /// For each tile level, the hashes of its rightmost, incomplete tile.
    pub partial: Vec<Vec<Hash>>,
    pub sth: SignedTreeHead,
}

impl TreeState {
    /// Rebuilds the state from what is durably stored.
    pub fn load(store: &mut dyn LogStore) -> Result<Option<TreeState>, StoreError> {
        let Some(cp) = store.load_checkpoint()? else {
            return Ok(None);
        };
        let frontier = Frontier::from_bytes(&cp.frontier)
            .filter(|f| f.size() == cp.tree_size)
            .ok_or_else(|| StoreError("stored frontier does not match the checkpoint".into()))?;
        let mut partial = Vec::with_capacity(LEVELS);
        for level in 0..LEVELS {
            // Hashes at this tile level: one per complete subtree of 256^level leaves.
            let count = cp.tree_size >> (TILE_HEIGHT as usize * level);
            let in_tile = count % TILE_WIDTH;
            let mut hashes = Vec::new();
            if in_tile > 0 {
                let tile = store
                    .tile(level as u8, count / TILE_WIDTH)?
                    .ok_or_else(|| {
                        StoreError(format!("tile {level}/{} is missing", count / TILE_WIDTH))
                    })?;
                if (tile.len() as u64) < in_tile * 32 {
                    return Err(StoreError(format!(
                        "tile {level}/{} is short",
                        count / TILE_WIDTH
                    )));
                }
                hashes = tile[..(in_tile * 32) as usize]
                    .chunks_exact(32)
                    .map(|c| c.try_into().unwrap_or([0u8; 32]))
                    .collect();
            }
            partial.push(hashes);
        }
        let signature = DigitallySigned::from_tls(&cp.signature)
            .map_err(|e| StoreError(format!("stored checkpoint signature: {e}")))?;
        Ok(Some(TreeState {
            frontier,
            partial,
            sth: SignedTreeHead {
                tree_size: cp.tree_size,
                timestamp: cp.timestamp,
                root: cp.root,
                signature,
            },
        }))
    }

    /// A tree with no leaves (tiles and frontier empty) whose last head is `sth`.
    pub fn empty(sth: SignedTreeHead) -> TreeState {
        TreeState {
            frontier: Frontier::default(),
            partial: vec![Vec::new(); LEVELS],
            sth,
        }
    }

    /// Appends `leaves` (leaf hashes, in order) and returns the bytes of every tile they
    /// changed, as a batch stores them: full tiles once, the rightmost partial tile of
    /// each level as it now stands.
    pub fn append_leaves(&mut self, leaves: &[Hash]) -> Vec<(u8, u64, Vec<u8>)> {
        let mut tiles = TileChanges::default();
        for &leaf in leaves {
            self.append(leaf, &mut tiles);
        }
        self.changed_tiles(&tiles)
    }

    /// Appends one leaf hash. Every tile it changes is recorded: tiles that became full
    /// in `completed` (with their final bytes), all of them in `touched`.
    fn append(&mut self, leaf: Hash, tiles: &mut TileChanges) {
        let mut count = self.frontier.size(); // hashes at level 0 before the append
        self.frontier.push(leaf);
        let mut h = leaf;
        for level in 0..LEVELS {
            let index = count / TILE_WIDTH;
            self.partial[level].push(h);
            tiles.touched.insert((level as u8, index));
            if self.partial[level].len() < TILE_WIDTH as usize || level + 1 == LEVELS {
                break;
            }
            // The tile is full: keep its bytes, and its root is the next level's new hash.
            tiles
                .completed
                .insert((level as u8, index), self.partial[level].concat());
            h = merkle::root_of(&self.partial[level]);
            self.partial[level].clear();
            count /= TILE_WIDTH;
        }
    }

    /// The bytes to store for every tile a batch changed.
    fn changed_tiles(&self, tiles: &TileChanges) -> Vec<(u8, u64, Vec<u8>)> {
        tiles
            .touched
            .iter()
            .map(|&(level, index)| {
                let bytes = match tiles.completed.get(&(level, index)) {
                    Some(full) => full.clone(),
                    // A touched tile that did not fill is the rightmost one at its level.
                    None => self.partial[level as usize].concat(),
                };
                (level, index, bytes)
            })
            .collect()
    }
}

/// Tiles changed by one batch.
#[derive(Default)]
struct TileChanges {
    touched: HashSet<(u8, u64)>,
    completed: HashMap<(u8, u64), Vec<u8>>,
}

pub struct Shared {
    pub latest: RwLock<Arc<SignedTreeHead>>,
    /// Why the log is not ready (its [`Health`] is not `Healthy`), if it is not.
    pub unhealthy: RwLock<Option<String>>,
    /// Committed entries not yet in the lookup table, for lookups by hash.
    pub recent: RwLock<Recent>,
}

impl Shared {
    /// The index of a committed entry by its hash of `kind`, if it is not yet in the
    /// lookup table.
    pub fn recent_index(&self, kind: LookupKind, h: &Hash) -> Option<u64> {
        self.recent.read().ok().and_then(|r| r.get(kind, h))
    }
}

/// Rows read per transaction when a backlog of entries is indexed at start-up.
const BACKLOG_CHUNK: usize = 65_536;

/// Brings the lookup table up to date at start-up (entries from before a crash, or a log
/// migrated from the old schema) and returns the entries left for memory: fewer than
/// `index_every`.
pub fn load_recent(
    store: &mut dyn LogStore,
    tree_size: u64,
    index_every: u64,
) -> Result<Recent, StoreError> {
    let mut upto = match store.meta("indexed_upto")? {
        Some(b) => u64::from_be_bytes(
            b.try_into()
                .map_err(|_| StoreError("bad indexed_upto".into()))?,
        ),
        None => 0,
    }
    .min(tree_size);
    while tree_size - upto >= index_every.max(1) {
        let chunk = store.hashes(upto, tree_size, BACKLOG_CHUNK)?;
        let Some(last) = chunk.last().map(|e| e.0 + 1) else {
            break;
        };
        store.put_lookup(&index::rows_for(&chunk), last)?;
        tracing::info!(
            indexed_upto = last,
            tree_size,
            "CT log lookup table caught up"
        );
        upto = last;
    }
    let mut recent = Recent::new(upto);
    for (i, d, l) in store.hashes(upto, tree_size, usize::MAX >> 1)? {
        recent.insert(i, d, l);
    }
    Ok(recent)
}

pub struct Sequencer {
    pub store: Box<dyn LogStore>,
    pub signer: Arc<dyn Signer>,
    pub log_id: [u8; 32],
    pub state: TreeState,
    pub shared: Arc<Shared>,
    pub config: BatchConfig,
    /// Entries held in memory before they are written to the lookup table.
    pub index_every: u64,
    /// Whether writes succeed; see [`Health`].
    pub health: Health,
    /// The pause after the next failed reload or write probe.
    pub recovery_backoff: Duration,
}

/// The sequencer's view of its storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The last write succeeded.
    Healthy,
    /// The last write failed and the state was reloaded: submissions are still tried
    /// (each is a write attempt), a write probe runs at `retry_at` if none arrives, and
    /// the log is not ready until a write succeeds (a full disk, a failing fsync).
    Failing { retry_at: Instant },
    /// The state could not be reloaded after a failed write: submissions are refused and
    /// the reload is retried at `retry_at`.
    Broken { retry_at: Instant },
}

impl Health {
    fn retry_at(self) -> Option<Instant> {
        match self {
            Health::Healthy => None,
            Health::Failing { retry_at } | Health::Broken { retry_at } => Some(retry_at),
        }
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn sign_tree_head(
    signer: &dyn Signer,
    tree_size: u64,
    timestamp: u64,
    root: Hash,
) -> Result<SignedTreeHead, String> {
    let input = sct::tree_head_signature_input(timestamp, tree_size, &root);
    let sig = signer.sign(&input).map_err(|e| e.to_string())?;
    Ok(SignedTreeHead {
        tree_size,
        timestamp,
        root,
        signature: DigitallySigned {
            hash_algorithm: sct::HASH_SHA256,
            signature_algorithm: sct::SIG_ECDSA,
            signature: sig,
        },
    })
}

enum Outcome {
    Stored(Sct),
    New(usize),
    DuplicateOf(usize),
    Failed(LogError),
}

impl Sequencer {
    /// Runs until every sender is dropped, then commits what is queued and returns.
    ///
    /// After a failed write it runs the [`Health`] state machine: while `Broken` it
    /// refuses every submission and retries the reload with back-off; while `Failing` it
    /// keeps trying submissions and probes with a small write when none arrive; one
    /// successful write makes it `Healthy` (ready) again. Retries run when they are due
    /// even if nothing is submitted.
    pub fn run(mut self, rx: Receiver<Msg>) {
        batch_scheduling();
        let mut hurry = false;
        loop {
            let first = match self.health.retry_at() {
                None => rx.recv().map_err(|_| ()),
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(m) => Ok(m),
                    Err(RecvTimeoutError::Timeout) => {
                        self.retry();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => Err(()),
                },
            };
            let Ok(first) = first else { break };
            let Msg::Submit(first) = first else {
                hurry = true;
                continue;
            };
            let mut batch = vec![first];
            let deadline = Instant::now() + self.config.max_wait;
            while batch.len() < self.config.max_size {
                let next = match rx.try_recv() {
                    Ok(m) => m,
                    Err(TryRecvError::Empty) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() || hurry {
                            break;
                        }
                        match rx.recv_timeout(left) {
                            Ok(m) => m,
                            Err(RecvTimeoutError::Timeout)
                            | Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    Err(TryRecvError::Disconnected) => break,
                };
                match next {
                    Msg::Submit(p) => batch.push(p),
                    Msg::Flush => {
                        hurry = true;
                        break;
                    }
                }
            }
            if let Health::Broken { retry_at } = self.health
                && Instant::now() >= retry_at
            {
                self.retry();
            }
            if matches!(self.health, Health::Broken { .. }) {
                refuse_batch(batch);
                continue;
            }
            self.commit_batch(batch);
        }
        tracing::info!(
            tree_size = self.state.sth.tree_size,
            "CT log sequencer stopped"
        );
    }

    /// A due retry: reload the state when broken, probe with a write when failing.
    fn retry(&mut self) {
        match self.health {
            Health::Healthy => {}
            Health::Broken { .. } => self.recover(),
            Health::Failing { .. } => {
                let probe = (|| {
                    self.store.begin()?;
                    self.store
                        .set_meta("write_probe_ms", &now_millis().to_be_bytes())?;
                    self.store.commit()
                })();
                match probe {
                    Ok(()) => self.set_health(Health::Healthy),
                    Err(e) => {
                        self.store.rollback();
                        tracing::warn!(error = %e, "CT log storage still refuses writes");
                        let retry_at = self.next_retry();
                        self.set_health(Health::Failing { retry_at });
                    }
                }
            }
        }
    }

    /// When the next retry is due, doubling the pause each time (up to 30 s).
    fn next_retry(&mut self) -> Instant {
        let wait = self.recovery_backoff;
        self.recovery_backoff = wait.saturating_mul(2).min(MAX_RECOVERY_BACKOFF);
        Instant::now() + wait
    }

    fn set_health(&mut self, health: Health) {
        if health == Health::Healthy {
            self.recovery_backoff = self.config.recovery_backoff;
            if self.health != Health::Healthy {
                tracing::info!("CT log storage accepts writes again");
            }
        }
        self.health = health;
        let reason = match health {
            Health::Healthy => None,
            Health::Failing { .. } => {
                Some("the last write to the CT log's storage failed; retrying".to_string())
            }
            Health::Broken { .. } => Some(
                "the CT log could not reload its state after a failed write; refusing submissions"
                    .to_string(),
            ),
        };
        if let Ok(mut b) = self.shared.unhealthy.write() {
            *b = reason;
        }
    }

    fn entry_sct(&self, index: u64, timestamp: u64, signature: Vec<u8>) -> Result<Sct, LogError> {
        Ok(Sct {
            log_id: self.log_id,
            timestamp,
            extensions: sct::leaf_index_extension(index),
            signature: DigitallySigned::from_tls(&signature)
                .map_err(|e| LogError::Internal(e.to_string()))?,
        })
    }

    fn commit_batch(&mut self, batch: Vec<Pending>) {
        let start = Instant::now();
        // 1. Deduplicate against the log and within the batch.
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut new: Vec<&Submission> = Vec::new();
        let mut in_batch: HashMap<Hash, usize> = HashMap::new();
        for p in &batch {
            let s = &p.submission;
            if !s.check_duplicates {
                outcomes.push(Outcome::New(new.len()));
                new.push(s);
                continue;
            }
            if let Some(&i) = in_batch.get(&s.dedup) {
                outcomes.push(Outcome::DuplicateOf(i));
                continue;
            }
            match self.find_duplicate(&s.dedup) {
                Ok(Some(e)) => {
                    outcomes.push(match self.entry_sct(e.index, e.timestamp, e.signature) {
                        Ok(sct) => Outcome::Stored(sct),
                        Err(err) => Outcome::Failed(err),
                    })
                }
                Ok(None) => {
                    in_batch.insert(s.dedup, new.len());
                    outcomes.push(Outcome::New(new.len()));
                    new.push(s);
                }
                Err(e) => outcomes.push(Outcome::Failed(LogError::Unavailable(e.to_string()))),
            }
        }

        // 2-4. Sequence, sign, and commit the new entries.
        let committed: Result<Vec<Sct>, LogError> = if new.is_empty() {
            Ok(Vec::new())
        } else {
            self.sequence(&new)
        };
        if let Err(e) = &committed {
            metrics::CTLOG_COMMIT_FAILURES.inc();
            tracing::error!(error = %e, entries = new.len(), "CT log batch failed; no SCT issued for it");
        } else if !new.is_empty() {
            metrics::CTLOG_BATCH_SIZE.observe(new.len() as f64);
            metrics::CTLOG_COMMIT_DURATION.observe(start.elapsed().as_secs_f64());
        }

        // 5. Release replies, only now.
        for (p, outcome) in batch.into_iter().zip(outcomes) {
            let kind = p.submission.kind;
            let result = match outcome {
                Outcome::Stored(sct) => Ok(sct),
                Outcome::Failed(e) => Err(e),
                Outcome::New(i) | Outcome::DuplicateOf(i) => match &committed {
                    Ok(scts) => Ok(scts[i].clone()),
                    Err(e) => Err(e.clone()),
                },
            };
            metrics::CTLOG_SUBMISSIONS
                .with_label_values(&[kind.label(), if result.is_ok() { "ok" } else { "error" }])
                .inc();
            let _ = p.reply.send(result);
        }
        // 6. Housekeeping, now that nobody waits for this batch.
        self.maybe_index();
        self.store.after_commit();
    }

    /// An earlier entry of the certificate with this SHA-256: in memory if recent, else
    /// through the lookup table.
    fn find_duplicate(&mut self, dedup: &Hash) -> Result<Option<StoredEntry>, StoreError> {
        let index = match self.shared.recent_index(LookupKind::Dedup, dedup) {
            Some(i) => Some(i),
            None => self
                .store
                .find(LookupKind::Dedup, dedup, self.state.sth.tree_size)?,
        };
        match index {
            Some(i) => self.store.entry(i),
            None => Ok(None),
        }
    }

    /// Writes the entries held in memory to the lookup table once there are enough of
    /// them. A failure is logged and retried after the next batch; lookups keep working
    /// from memory meanwhile.
    fn maybe_index(&mut self) {
        let (rows, upto) = match self.shared.recent.read() {
            Ok(r) if r.len() as u64 >= self.index_every => r.rows(),
            _ => return,
        };
        let start = Instant::now();
        match self.store.put_lookup(&rows, upto) {
            Ok(()) => {
                if let Ok(mut r) = self.shared.recent.write() {
                    r.flushed(upto);
                    metrics::CTLOG_UNINDEXED.set(r.len() as i64);
                }
                tracing::debug!(
                    indexed_upto = upto,
                    rows = rows.len(),
                    ms = start.elapsed().as_secs_f64() * 1000.0,
                    "CT log lookup rows written"
                );
            }
            Err(e) => {
                metrics::CTLOG_LOOKUP_WRITE_FAILURES.inc();
                tracing::warn!(error = %e, "CT log lookup rows not written; will retry");
            }
        }
    }

    fn sequence(&mut self, new: &[&Submission]) -> Result<Vec<Sct>, LogError> {
        let mut state = self.state.clone();
        let timestamp = now_millis().max(state.sth.timestamp + 1);
        let first_index = state.sth.tree_size;
        let mut entries = Vec::with_capacity(new.len());
        let mut scts = Vec::with_capacity(new.len());
        let mut issuers: HashMap<Hash, Vec<u8>> = HashMap::new();
        let mut leaf_hashes = Vec::with_capacity(new.len());
        for (i, s) in new.iter().enumerate() {
            let index = first_index + i as u64;
            let extensions = sct::leaf_index_extension(index);
            let entry = match s.kind {
                Kind::X509 => Entry::X509 {
                    certificate: &s.leaf,
                },
                Kind::Precert => Entry::Precert {
                    issuer_key_hash: &s.issuer_key_hash,
                    tbs: &s.tbs,
                },
            };
            let te = sct::timestamped_entry(timestamp, &entry, &extensions);
            let leaf_hash = merkle::leaf_hash(&sct::merkle_tree_leaf(&te));
            let signature = self
                .signer
                .sign(&sct::signature_input(timestamp, &entry, &extensions))
                .map_err(|e| LogError::Internal(format!("signing the SCT: {e}")))?;
            let ds = DigitallySigned {
                hash_algorithm: sct::HASH_SHA256,
                signature_algorithm: sct::SIG_ECDSA,
                signature,
            };
            let chain: Vec<Hash> = s.issuer_fingerprints.to_vec();
            for (fp, d) in chain.iter().zip(&s.issuers) {
                issuers.entry(*fp).or_insert_with(|| d.clone());
            }
            leaf_hashes.push(leaf_hash);
            entries.push(StoredEntry {
                index,
                dedup: s.dedup,
                leaf_hash,
                timestamp,
                signature: ds.to_tls(),
                timestamped_entry: te,
                precert: (s.kind == Kind::Precert).then(|| s.leaf.clone()),
                chain,
            });
            scts.push(Sct {
                log_id: self.log_id,
                timestamp,
                extensions,
                signature: ds,
            });
        }
        let tiles = state.append_leaves(&leaf_hashes);
        let tree_size = state.frontier.size();
        let root = state.frontier.root();
        let sth = sign_tree_head(self.signer.as_ref(), tree_size, timestamp, root)
            .map_err(LogError::Internal)?;
        state.sth = sth.clone();
        let checkpoint = StoredCheckpoint {
            tree_size,
            timestamp,
            root,
            signature: sth.signature.to_tls(),
            frontier: state.frontier.to_bytes(),
        };
        let issuers: Vec<(Hash, Vec<u8>)> = issuers.into_iter().collect();
        let result = (|| {
            self.store.begin()?;
            self.store.insert_entries(&entries)?;
            self.store.insert_issuers(&issuers)?;
            self.store.put_tiles(&tiles)?;
            self.store.put_checkpoint(&checkpoint)?;
            self.store.commit()
        })();
        match result {
            Ok(()) => {
                self.state = state;
                if let Ok(mut r) = self.shared.recent.write() {
                    for e in &entries {
                        r.insert(e.index, e.dedup, e.leaf_hash);
                    }
                    metrics::CTLOG_UNINDEXED.set(r.len() as i64);
                }
                metrics::CTLOG_TREE_SIZE.set(tree_size as i64);
                metrics::CTLOG_CHECKPOINT_TIMESTAMP.set(timestamp as f64 / 1000.0);
                if let Ok(mut l) = self.shared.latest.write() {
                    *l = Arc::new(sth);
                }
                if self.health != Health::Healthy {
                    self.set_health(Health::Healthy);
                }
                Ok(scts)
            }
            Err(e) => {
                self.store.rollback();
                self.recover();
                Err(LogError::Unavailable(e.to_string()))
            }
        }
    }

    /// After a failed commit: reload the durable state (the failed batch may or may not
    /// be on disk). Success leaves the log `Failing` (not ready until a write succeeds);
    /// failure leaves it `Broken` (submissions refused until a reload succeeds).
    fn recover(&mut self) {
        let loaded = TreeState::load(self.store.as_mut()).and_then(|s| {
            let recent = match &s {
                Some(st) => Some(load_recent(
                    self.store.as_mut(),
                    st.sth.tree_size,
                    self.index_every,
                )?),
                None => None,
            };
            Ok(s.zip(recent))
        });
        match loaded {
            Ok(Some((state, recent))) => {
                if let Ok(mut r) = self.shared.recent.write() {
                    *r = recent;
                    metrics::CTLOG_UNINDEXED.set(r.len() as i64);
                }
                if state.sth.tree_size != self.state.sth.tree_size {
                    tracing::warn!(
                        before = self.state.sth.tree_size,
                        after = state.sth.tree_size,
                        "a batch reported as failed was committed; its entries are logged without SCTs"
                    );
                }
                if let Ok(mut l) = self.shared.latest.write() {
                    *l = Arc::new(state.sth.clone());
                }
                self.state = state;
                let retry_at = self.next_retry();
                self.set_health(Health::Failing { retry_at });
            }
            Ok(None) | Err(_) => {
                let retry_at = self.next_retry();
                tracing::error!(
                    retry_in_ms = retry_at
                        .saturating_duration_since(Instant::now())
                        .as_millis() as u64,
                    "the CT log could not reload its state after a failed write; refusing submissions until it can"
                );
                self.set_health(Health::Broken { retry_at });
            }
        }
    }
}

/// Longest pause between two attempts to reload the state of a broken log.
const MAX_RECOVERY_BACKOFF: Duration = Duration::from_secs(30);

/// Answers every submission of a batch with 503: the log is broken and stores nothing.
fn refuse_batch(batch: Vec<Pending>) {
    for p in batch {
        metrics::CTLOG_SUBMISSIONS
            .with_label_values(&[p.submission.kind.label(), "error"])
            .inc();
        let _ = p.reply.send(Err(LogError::Unavailable(
            "the CT log is recovering from a storage failure".into(),
        )));
    }
}

/// Puts the calling thread (the sequencer) under `SCHED_BATCH`: same CPU share, but its
/// wake-ups wait for the running thread's time slice instead of preempting it. On a busy
/// machine the API workers then finish their requests before the next commit starts, so
/// batches grow and fewer task switches are paid per certificate (docs/benchmarks.md,
/// "Sequencer scheduling"). On an idle CPU the wake-up runs at once, so a lone request
/// waits no longer.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn batch_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call, which only reads it;
    // pid 0 names the calling thread, so no other thread's policy changes.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "CT log sequencer keeps the default scheduling policy"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn batch_scheduling() {}
