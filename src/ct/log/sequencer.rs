//! The sequencer: one thread that pools submissions and commits them in batches. A batch
//! starts as soon as the previous commit finishes (group commit), optionally waiting up to
//! `max_wait` to fill. Inside one storage batch ([`LogWriter::begin`] .. `commit`) it
//! finds resubmissions, gives every new entry an index, the batch one timestamp, the tree
//! new tiles and one signed checkpoint. Only once the commit returned are the SCTs
//! released.
//!
//! Ownership: the sequencer alone owns the writer and the tree state; the rest of the log
//! sees the latest signed tree head and the health through [`Shared`].

use super::LogError;
use super::store::{LogWriter, LookupKind, StoreError, StoredCheckpoint, StoredEntry, TileWrite};
use super::validate::{Logged, Origin, Submission};
use crate::ct::checkpoint::SignedTreeHead;
use crate::ct::merkle::{self, Frontier, HASH_LEN, Hash, hashes_from};
use crate::ct::tiles::{TILE_HEIGHT, TILE_WIDTH};
use crate::metrics;
use crate::model::Clock;
use crate::model::sct::{self, DigitallySigned, Sct};
use crate::model::signer::{Signer, SignerError};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Tile levels kept (6 levels of 8 tree levels: 2^48 entries).
pub(crate) const LEVELS: usize = 6;

pub(crate) struct Pending {
    pub submission: Submission,
    pub reply: oneshot::Sender<Result<Sct, LogError>>,
}

/// What the sequencer's queue carries.
pub(crate) enum Msg {
    Submit(Pending),
    /// Shutdown has begun: from now on commit what is queued without waiting for a batch
    /// to fill.
    Flush,
}

/// How the sequencer groups submissions into storage batches (defaults: 4096 entries, no wait).
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most submissions in one batch (0 acts as 1).
    pub max_size: usize,
    /// How long a batch waits to fill after its first submission; zero takes only what is queued.
    pub max_wait: Duration,
    /// First pause before a failing log retries (doubling up to 30 s).
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
    /// The right edge of the Merkle tree after the last commit.
    pub frontier: Frontier,
    /// For each tile level, the hashes of its rightmost, incomplete tile.
    pub partial: Vec<Vec<Hash>>,
    /// The latest signed tree head (the one the last committed checkpoint carries).
    pub sth: SignedTreeHead,
}

impl TreeState {
    /// Rebuilds the state for a stored checkpoint: its frontier and the rightmost tile of
    /// every level.
    pub(crate) fn load(
        store: &mut dyn LogWriter,
        cp: &StoredCheckpoint,
    ) -> Result<TreeState, StoreError> {
        let frontier = Frontier::from_bytes(&cp.frontier)
            .filter(|f| f.size() == cp.tree_size)
            .ok_or(StoreError::Corrupt(
                "the stored frontier does not match the checkpoint",
            ))?;
        // Hashes at each tile level: one per complete subtree of 256^level leaves; the
        // rightmost, incomplete tile of every level that has one is read in one go.
        let in_tile = |level: usize| {
            let count = cp.tree_size >> (usize::from(TILE_HEIGHT) * level);
            (count / TILE_WIDTH, (count % TILE_WIDTH) as usize)
        };
        let wanted: Vec<(u8, u64)> = (0..LEVELS)
            .filter(|l| in_tile(*l).1 > 0)
            .map(|l| (l as u8, in_tile(l).0))
            .collect();
        let mut tiles = store.tiles(&wanted)?.into_iter();
        let mut partial = Vec::with_capacity(LEVELS);
        for level in 0..LEVELS {
            let (_, n) = in_tile(level);
            let mut hashes = Vec::new();
            if n > 0 {
                let tile = tiles.next().flatten().ok_or(StoreError::Corrupt(
                    "the rightmost tile of a level is missing",
                ))?;
                let bytes = tile.get(..n * HASH_LEN).ok_or(StoreError::Corrupt(
                    "the rightmost tile of a level is short",
                ))?;
                hashes = hashes_from(bytes).map_err(|_| StoreError::Corrupt("tile length"))?;
            }
            partial.push(hashes);
        }
        let signature = DigitallySigned::from_tls(&cp.signature)
            .map_err(|_| StoreError::Corrupt("the stored checkpoint signature"))?;
        Ok(TreeState {
            frontier,
            partial,
            sth: SignedTreeHead {
                tree_size: cp.tree_size,
                timestamp: cp.timestamp,
                root: cp.root,
                signature,
            },
        })
    }

    /// A tree with no leaves (tiles and frontier empty) whose last head is `sth`.
    pub fn empty(sth: SignedTreeHead) -> TreeState {
        TreeState {
            frontier: Frontier::default(),
            partial: vec![Vec::new(); LEVELS],
            sth,
        }
    }

    /// An empty tree whose head carries no signature (tests of the tiles and proofs).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn unsigned_empty() -> TreeState {
        TreeState::empty(SignedTreeHead {
            tree_size: 0,
            timestamp: 0,
            root: merkle::empty_root(),
            signature: DigitallySigned {
                hash_algorithm: 4,
                signature_algorithm: 3,
                signature: Vec::new(),
            },
        })
    }

    /// Appends `leaves` (leaf hashes, in order) and returns the bytes of every tile they
    /// changed, as a batch stores them: full tiles once, the rightmost partial tile of
    /// each level as it now stands.
    pub fn append_leaves(&mut self, leaves: &[Hash]) -> Vec<TileWrite> {
        // Tiles changed by this batch, and the final bytes of those that filled up.
        let mut touched: BTreeMap<(u8, u64), Option<Vec<u8>>> = BTreeMap::new();
        for &leaf in leaves {
            let mut count = self.frontier.size(); // hashes at level 0 before the append
            self.frontier.push(leaf);
            let mut h = leaf;
            for level in 0..LEVELS {
                let index = count / TILE_WIDTH;
                self.partial[level].push(h);
                let full = self.partial[level].len() == TILE_WIDTH as usize;
                if !full || level + 1 == LEVELS {
                    touched.entry((level as u8, index)).or_insert(None);
                    break;
                }
                // The tile is full: keep its bytes; its root is the next level's new hash.
                touched.insert((level as u8, index), Some(self.partial[level].concat()));
                h = merkle::root_of(&self.partial[level]);
                self.partial[level].clear();
                count /= TILE_WIDTH;
            }
        }
        touched
            .into_iter()
            .map(|((level, index), full)| {
                // A touched tile that did not fill is the rightmost one at its level.
                let bytes = full.unwrap_or_else(|| self.partial[level as usize].concat());
                (level, index, bytes)
            })
            .collect()
    }
}

/// The sequencer's view of its storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
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

/// What the sequencer publishes to the rest of the log.
///
/// Lock order: each lock is taken alone, never while holding another.
pub(crate) struct Shared {
    /// The latest committed signed tree head (replaced, never mutated).
    pub latest: RwLock<Arc<SignedTreeHead>>,
    /// Why the log is not ready (its [`Health`] is not `Healthy`), if it is not.
    pub unhealthy: RwLock<Option<super::Unhealthy>>,
    /// Shared storage did not answer the last checkpoint poll.
    pub unreachable: std::sync::atomic::AtomicBool,
    /// Storage was seen going back to an older tree than one published here.
    pub rolled_back: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Publishes `sth` if it grows the tree (the sequencer and the checkpoint poller both
    /// publish; a tree head never goes back).
    pub(crate) fn advance(&self, sth: SignedTreeHead) {
        let mut latest = self.latest.write().unwrap_or_else(|p| p.into_inner());
        let behind = sth.tree_size < latest.tree_size
            || (sth.tree_size == latest.tree_size && sth.root != latest.root);
        if behind {
            if !self
                .rolled_back
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::error!(
                    stored = sth.tree_size,
                    published = latest.tree_size,
                    "CT log storage went back to an older tree than this log published (restored from an older backup?); not ready, and no batch will be written"
                );
            }
            return;
        }
        if sth.tree_size > latest.tree_size {
            metrics::CTLOG_TREE_SIZE.set(sth.tree_size as i64);
            metrics::CTLOG_CHECKPOINT_TIMESTAMP.set(sth.timestamp as f64 / 1000.0);
            *latest = Arc::new(sth);
        }
    }
}

pub(crate) struct Sequencer {
    pub writer: Box<dyn LogWriter>,
    pub signer: Arc<dyn Signer>,
    pub log_id: [u8; 32],
    pub clock: Arc<dyn Clock>,
    /// The tree as of the last checkpoint this sequencer committed or loaded.
    pub state: TreeState,
    pub shared: Arc<Shared>,
    pub config: BatchConfig,
    /// Whether writes succeed; see [`Health`].
    pub health: Health,
    /// The pause after the next failed reload or write probe.
    pub recovery_backoff: Duration,
}

/// Signs a tree head (RFC 6962 3.5) with the log's key.
pub(crate) fn sign_tree_head(
    signer: &dyn Signer,
    tree_size: u64,
    timestamp: u64,
    root: Hash,
) -> Result<SignedTreeHead, SignerError> {
    crate::model::count::record(crate::model::count::CryptoOp::SignTreeHead);
    let input = sct::tree_head_signature_input(timestamp, tree_size, &root);
    let sig = signer.sign(&input)?;
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

/// What became of one submission of a batch.
enum Outcome {
    /// Logged before: its stored SCT.
    Stored(Sct),
    /// New: the i-th new entry of the batch (or the same certificate twice in a batch).
    New(usize),
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
    pub(crate) fn run(mut self, rx: Receiver<Msg>) {
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
                    self.writer.begin()?;
                    let now = self.clock.unix_millis();
                    self.writer.set_meta("write_probe_ms", &now.to_be_bytes())?;
                    self.writer.commit()
                })();
                match probe {
                    Ok(()) => self.set_health(Health::Healthy),
                    Err(e) => {
                        self.writer.rollback();
                        tracing::warn!(error = %crate::errors::Chain(&e), "CT log storage still refuses writes");
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
            Health::Failing { .. } => Some(super::Unhealthy::Failing),
            Health::Broken { .. } => Some(super::Unhealthy::Broken),
        };
        if let Ok(mut b) = self.shared.unhealthy.write() {
            *b = reason;
        }
    }

    fn entry_sct(&self, e: &StoredEntry) -> Result<Sct, LogError> {
        Ok(Sct {
            log_id: self.log_id,
            timestamp: e.timestamp,
            extensions: sct::leaf_index_extension(e.index),
            signature: DigitallySigned::from_tls(&e.signature)
                .map_err(|_| LogError::Storage(StoreError::Corrupt("a stored SCT signature")))?,
        })
    }

    fn commit_batch(&mut self, batch: Vec<Pending>) {
        let start = Instant::now();
        let (outcomes, committed) = match self.writer.begin() {
            Err(e) => {
                self.writer.rollback();
                self.recover();
                (Vec::new(), Err(LogError::Storage(e)))
            }
            Ok(checkpoint) => match self.sync(checkpoint) {
                Err(e) => {
                    self.writer.rollback();
                    self.recover();
                    (Vec::new(), Err(e))
                }
                Ok(()) => {
                    let (outcomes, new) = self.deduplicate(&batch);
                    let committed = if new.is_empty() {
                        self.writer.rollback();
                        Ok(Vec::new())
                    } else {
                        self.sequence(&new)
                    };
                    if let Err(e) = &committed {
                        metrics::CTLOG_COMMIT_FAILURES.inc();
                        tracing::error!(error = %crate::errors::Chain(e), entries = new.len(), "CT log batch failed; no SCT issued for it");
                    } else if !new.is_empty() {
                        metrics::CTLOG_BATCH_SIZE.observe(new.len() as f64);
                        metrics::CTLOG_COMMIT_DURATION.observe(start.elapsed().as_secs_f64());
                    }
                    (outcomes, committed)
                }
            },
        };

        // Release replies, only now.
        for (i, p) in batch.into_iter().enumerate() {
            let kind = p.submission.kind();
            let result = match outcomes.get(i) {
                Some(Outcome::Stored(sct)) => Ok(sct.clone()),
                Some(Outcome::Failed(e)) => Err(e.clone()),
                Some(Outcome::New(n)) => match &committed {
                    Ok(scts) => Ok(scts[*n].clone()),
                    Err(e) => Err(e.clone()),
                },
                None => Err(committed
                    .as_ref()
                    .err()
                    .cloned()
                    .unwrap_or(LogError::Internal("a submission without an outcome"))),
            };
            metrics::CTLOG_SUBMISSIONS
                .with_label_values(&[kind.label(), if result.is_ok() { "ok" } else { "error" }])
                .inc();
            let _ = p.reply.send(result);
        }
        // Housekeeping, now that nobody waits for this batch.
        if let Err(e) = self.writer.after_commit() {
            metrics::CTLOG_LOOKUP_WRITE_FAILURES.inc();
            tracing::warn!(error = %crate::errors::Chain(&e), "CT log housekeeping after a batch failed; will retry");
        }
    }

    /// Catches up with a checkpoint another writer committed (another replica on shared
    /// storage): the tree state is reloaded from storage.
    fn sync(&mut self, checkpoint: Option<StoredCheckpoint>) -> Result<(), LogError> {
        let Some(cp) = checkpoint else {
            return Err(LogError::Storage(StoreError::Corrupt(
                "the log has no checkpoint",
            )));
        };
        if cp.tree_size == self.state.sth.tree_size && cp.root == self.state.sth.root {
            return Ok(());
        }
        if cp.tree_size < self.state.sth.tree_size {
            return Err(LogError::Storage(StoreError::Conflict));
        }
        self.state = TreeState::load(self.writer.as_mut(), &cp).map_err(LogError::Storage)?;
        self.publish(&self.state.sth.clone());
        Ok(())
    }

    /// Finds resubmissions (inside the batch, so no other writer can log the same
    /// certificate meanwhile) and lists the new submissions.
    fn deduplicate<'b>(&mut self, batch: &'b [Pending]) -> (Vec<Outcome>, Vec<&'b Submission>) {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut new: Vec<&Submission> = Vec::new();
        let mut in_batch: HashMap<Hash, usize> = HashMap::new();
        // One lookup for every submission that may have been logged before.
        let asked: Vec<Hash> = batch
            .iter()
            .filter(|p| p.submission.origin != Origin::OwnCa)
            .map(|p| p.submission.dedup)
            .collect();
        let known = match self
            .writer
            .find_many(LookupKind::Dedup, &asked, self.state.sth.tree_size)
        {
            Ok(found) => Ok(asked.into_iter().zip(found).collect::<HashMap<_, _>>()),
            Err(e) => Err(e),
        };
        for p in batch {
            let s = &p.submission;
            if s.origin == Origin::OwnCa {
                outcomes.push(Outcome::New(new.len()));
                new.push(s);
                continue;
            }
            if let Some(&i) = in_batch.get(&s.dedup) {
                outcomes.push(Outcome::New(i));
                continue;
            }
            let found = match &known {
                Err(e) => Err(e.clone()),
                Ok(known) => match known.get(&s.dedup).copied().flatten() {
                    Some(i) => self.writer.entry(i),
                    None => Ok(None),
                },
            };
            match found {
                Ok(Some(e)) => outcomes.push(match self.entry_sct(&e) {
                    Ok(sct) => Outcome::Stored(sct),
                    Err(err) => Outcome::Failed(err),
                }),
                Ok(None) => {
                    in_batch.insert(s.dedup, new.len());
                    outcomes.push(Outcome::New(new.len()));
                    new.push(s);
                }
                Err(e) => outcomes.push(Outcome::Failed(LogError::Storage(e))),
            }
        }
        (outcomes, new)
    }

    fn publish(&self, sth: &SignedTreeHead) {
        self.shared.advance(sth.clone());
    }

    /// Sequences, signs and commits the new entries (the batch is open).
    fn sequence(&mut self, new: &[&Submission]) -> Result<Vec<Sct>, LogError> {
        let mut state = self.state.clone();
        let timestamp = self.clock.unix_millis().max(state.sth.timestamp + 1);
        let first_index = state.sth.tree_size;
        let mut entries = Vec::with_capacity(new.len());
        let mut scts = Vec::with_capacity(new.len());
        let mut issuers: HashMap<Hash, Vec<u8>> = HashMap::new();
        let mut leaf_hashes = Vec::with_capacity(new.len());
        // All SCT signatures of the batch at once: a key in an HSM or a KMS signs them
        // concurrently instead of one round trip after another.
        let inputs: Vec<Vec<u8>> = new
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let extensions = sct::leaf_index_extension(first_index + i as u64);
                sct::signature_input(timestamp, &s.signed_entry(), &extensions)
            })
            .collect();
        let signatures = match self.signer.sign_many(&inputs) {
            Ok(s) if s.len() == inputs.len() => s,
            Ok(_) => {
                self.writer.rollback();
                return Err(LogError::Signing(Arc::new(SignerError::BadSignature(
                    "a batch signature is missing".into(),
                ))));
            }
            Err(e) => {
                self.writer.rollback();
                return Err(LogError::Signing(Arc::new(e)));
            }
        };
        for ((i, s), signature) in new.iter().enumerate().zip(signatures) {
            let index = first_index + i as u64;
            let extensions = sct::leaf_index_extension(index);
            let entry = s.signed_entry();
            let te = sct::timestamped_entry(timestamp, &entry, &extensions);
            let leaf_hash = merkle::leaf_hash(&sct::merkle_tree_leaf(&te));
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
                precert: matches!(s.entry, Logged::Precert { .. }).then(|| s.leaf.clone()),
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
        let sth = match sign_tree_head(self.signer.as_ref(), tree_size, timestamp, root) {
            Ok(sth) => sth,
            Err(e) => {
                self.writer.rollback();
                return Err(LogError::Signing(Arc::new(e)));
            }
        };
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
            self.writer.insert_entries(&entries)?;
            self.writer.insert_issuers(&issuers)?;
            self.writer.put_tiles(&tiles)?;
            self.writer.put_checkpoint(&checkpoint)?;
            self.writer.commit()
        })();
        match result {
            Ok(()) => {
                self.state = state;
                self.publish(&sth);
                if self.health != Health::Healthy {
                    self.set_health(Health::Healthy);
                }
                Ok(scts)
            }
            Err(e) => {
                self.writer.rollback();
                self.recover();
                Err(LogError::Storage(e))
            }
        }
    }

    /// After a failed write: reload the durable state (the failed batch may or may not
    /// be on disk). Success leaves the log `Failing` (not ready until a write succeeds);
    /// failure leaves it `Broken` (submissions refused until a reload succeeds).
    fn recover(&mut self) {
        let loaded = self.writer.begin().and_then(|cp| {
            let state = match &cp {
                Some(cp) => TreeState::load(self.writer.as_mut(), cp),
                None => Err(StoreError::Corrupt("the log has no checkpoint")),
            };
            self.writer.rollback();
            state
        });
        match loaded {
            Ok(state) => {
                if state.sth.tree_size != self.state.sth.tree_size {
                    tracing::warn!(
                        before = self.state.sth.tree_size,
                        after = state.sth.tree_size,
                        "a batch reported as failed was committed; its entries are logged without SCTs"
                    );
                }
                self.publish(&state.sth);
                self.state = state;
                let retry_at = self.next_retry();
                self.set_health(Health::Failing { retry_at });
            }
            Err(e) => {
                let retry_at = self.next_retry();
                tracing::error!(
                    error = %crate::errors::Chain(&e),
                    retry_in_ms = retry_at.saturating_duration_since(Instant::now()).as_millis() as u64,
                    "the CT log could not reload its state after a failed write; refusing submissions until it can"
                );
                self.set_health(Health::Broken { retry_at });
            }
        }
    }
}

/// Longest pause between two retries of a failing or broken log.
const MAX_RECOVERY_BACKOFF: Duration = Duration::from_secs(30);

/// Answers every submission of a batch with 503: the log is broken and stores nothing.
fn refuse_batch(batch: Vec<Pending>) {
    for p in batch {
        metrics::CTLOG_SUBMISSIONS
            .with_label_values(&[p.submission.kind().label(), "error"])
            .inc();
        let _ = p.reply.send(Err(LogError::Recovering));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::log::store::memory;
    use crate::ct::merkle::InMemory;

    #[test]
    fn appended_tiles_hold_every_subtree_of_the_tree() {
        let leaves: Vec<Hash> = (0u32..70_000)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut state = TreeState::unsigned_empty();
        let mut tiles: HashMap<(u8, u64), Vec<u8>> = HashMap::new();
        for chunk in leaves.chunks(997) {
            for (l, i, b) in state.append_leaves(chunk) {
                tiles.insert((l, i), b);
            }
        }
        assert_eq!(state.frontier.root(), merkle::root_of(&leaves));
        // Every full level-0 and level-1 tile equals the leaves (resp. subtree roots).
        assert_eq!(tiles[&(0, 0)], leaves[..256].concat());
        let memory = InMemory(leaves.clone());
        let h = |level: u8, index: u64| {
            let Ok(h) = merkle::SubtreeHashes::hash(&memory, level, index);
            h
        };
        let level1: Vec<Hash> = (0..256).map(|i| h(8, i)).collect();
        assert_eq!(tiles[&(1, 0)], level1.concat());
        // The rightmost partial tile of level 0 holds the leaves past the last full one.
        let last_full = (70_000 / 256) * 256;
        assert_eq!(tiles[&(0, 70_000 / 256)], leaves[last_full..].concat());
        // A state rebuilt from the stored tiles and checkpoint appends identically.
        let (mut writer, _) = memory::open();
        writer.begin().unwrap();
        let tile_writes: Vec<TileWrite> =
            tiles.iter().map(|(k, v)| (k.0, k.1, v.clone())).collect();
        writer.put_tiles(&tile_writes).unwrap();
        let cp = StoredCheckpoint {
            tree_size: state.frontier.size(),
            timestamp: 1,
            root: state.frontier.root(),
            signature: state.sth.signature.to_tls(),
            frontier: state.frontier.to_bytes(),
        };
        writer.put_checkpoint(&cp).unwrap();
        writer.commit().unwrap();
        let mut loaded = TreeState::load(&mut writer, &cp).unwrap();
        let more: Vec<Hash> = (70_000u32..70_300)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        assert_eq!(loaded.append_leaves(&more), state.append_leaves(&more));
        assert_eq!(loaded.frontier.root(), state.frontier.root());
    }
}
