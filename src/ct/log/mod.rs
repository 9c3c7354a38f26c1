//! The embedded CT log: an RFC 6962 log whose tree is stored as static-ct-api tiles and
//! checkpoints, with the RFC 6962 read endpoints computed from the same tiles.
//!
//! Submissions are validated, then pooled by the [`sequencer`]; an SCT is returned only
//! after its entry is durably committed (merge delay zero), with the static-ct
//! `leaf_index` extension. A resubmitted certificate gets its original SCT back.

pub mod index;
mod sequencer;
pub mod storage;
pub mod validate;

use super::checkpoint::SignedTreeHead;
use super::merkle::{self, Frontier, HASH_LEN, Hash, SubtreeHashes};
use super::tiles::{TILE_HEIGHT, TILE_WIDTH};
use super::{LogPublicKey, sha256};
use crate::model::pem;
use crate::model::sct::Sct;
use crate::model::signer::{LocalSigner, Signer, SigningAlgorithm};
pub use sequencer::BatchConfig;
pub use sequencer::TreeState;
use sequencer::{Msg, Pending, Sequencer, Shared};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use storage::{LogStore, Reader, SqliteStore, StoredEntry};
use thiserror::Error;
use tokio::sync::oneshot;
pub use validate::{Kind, Root, Validator};

/// Entries returned by one `get-entries` call at most (RFC 6962 lets a log truncate).
pub const MAX_GET_ENTRIES: u64 = 256;

#[derive(Debug, Error, Clone)]
pub enum LogError {
    /// The submission or query is invalid (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing at that address (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The log cannot take submissions now (HTTP 503); retry later.
    #[error("log unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken invariant (HTTP 500).
    #[error("internal error: {0}")]
    Internal(String),
}

/// How the embedded log runs.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The checkpoint origin (static-ct-api submission prefix without scheme).
    pub origin: String,
    /// DER roots whose chains the log accepts.
    pub roots: Vec<Vec<u8>>,
    /// Accept only leaves with EKU codeSigning (Sigstore's CT log setting).
    pub require_code_signing: bool,
    pub batch: BatchConfig,
    /// Submissions queued at most; beyond this the log answers 503.
    pub max_pending: usize,
    /// The log's private key (PEM, PKCS#8 ECDSA P-256) when it is kept outside the data
    /// directory (a Kubernetes Secret, say); default `<dir>/log-key.pem`, created on first
    /// start.
    pub key_file: Option<PathBuf>,
    /// Entries held in memory before their lookup rows are written ([`index`]).
    pub index_every: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            origin: "localhost:6962".into(),
            roots: Vec::new(),
            require_code_signing: true,
            batch: BatchConfig::default(),
            max_pending: 65_536,
            key_file: None,
            index_every: index::DEFAULT_INDEX_EVERY,
        }
    }
}

/// One entry as `get-entries` returns it.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub leaf_input: Vec<u8>,
    pub extra_data: Vec<u8>,
}

pub struct Log {
    origin: String,
    public_key: LogPublicKey,
    validator: Validator,
    sender: Mutex<Option<SyncSender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    reader: Reader,
    shared: Arc<Shared>,
    created_ms: u64,
    issuer_cache: RwLock<HashMap<Hash, Vec<u8>>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("origin", &self.origin).finish()
    }
}

/// File names inside a log directory.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join("log-key.pem")
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("log.sqlite")
}

/// Loads the log's ECDSA P-256 key from `dir`, creating it on first use.
pub fn load_or_create_key(dir: &Path) -> Result<LocalSigner, String> {
    let path = key_path(dir);
    if path.exists() {
        return load_key(&path);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let signer =
        LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).map_err(|e| e.to_string())?;
    let pkcs8 = signer.to_pkcs8().map_err(|e| e.to_string())?;
    crate::files::write_file(&path, &pem::encode("PRIVATE KEY", &pkcs8), true)
        .map_err(|e| e.to_string())?;
    let public = dir.join("log-public-key.pem");
    crate::files::write_file(
        &public,
        &pem::encode("PUBLIC KEY", signer.public_key_spki()),
        false,
    )
    .map_err(|e| e.to_string())?;
    Ok(signer)
}

/// Loads a CT log key: PEM PKCS#8, ECDSA P-256.
pub fn load_key(path: &Path) -> Result<LocalSigner, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let block = pem::parse_first(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let signer =
        LocalSigner::from_pkcs8(&block.der).map_err(|e| format!("{}: {e}", path.display()))?;
    if signer.algorithm() != SigningAlgorithm::EcdsaP256Sha256 {
        return Err(format!(
            "{}: the CT log key must be ECDSA P-256",
            path.display()
        ));
    }
    Ok(signer)
}

/// When the log in `dir` was created (ms since the epoch), read without opening it for
/// writing.
pub fn created_millis(dir: &Path) -> Result<u64, String> {
    let conn = rusqlite::Connection::open_with_flags(
        db_path(dir),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .map_err(|e| format!("{}: {e}", db_path(dir).display()))?;
    let b: Vec<u8> = conn
        .query_row("SELECT value FROM meta WHERE key = 'created_ms'", [], |r| {
            r.get(0)
        })
        .map_err(|e| format!("{}: {e}", db_path(dir).display()))?;
    Ok(u64::from_be_bytes(
        b.try_into().map_err(|_| "bad created_ms")?,
    ))
}

impl Log {
    /// Opens (or creates) the log kept in `dir`: `log-key.pem` and `log.sqlite`.
    pub fn open(dir: &Path, options: LogOptions) -> Result<Log, String> {
        let signer = match &options.key_file {
            Some(path) => load_key(path)?,
            None => load_or_create_key(dir)?,
        };
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let store = SqliteStore::open(&db_path(dir)).map_err(|e| e.to_string())?;
        Log::with_store(&db_path(dir), Box::new(store), Arc::new(signer), options)
    }

    /// Opens a log over any [`LogStore`] writing to the SQLite file `db` (tests inject
    /// faults this way).
    pub fn with_store(
        db: &Path,
        mut store: Box<dyn LogStore>,
        signer: Arc<dyn Signer>,
        options: LogOptions,
    ) -> Result<Log, String> {
        let public_key = LogPublicKey::from_spki_der(signer.public_key_spki())?;
        let err = |e: storage::StoreError| e.to_string();
        // The origin is part of every checkpoint; it is fixed when the log is created.
        match store.meta("origin").map_err(err)? {
            Some(o) if o != options.origin.as_bytes() => {
                return Err(format!(
                    "this log was created with origin {:?}; it cannot change to {:?}",
                    String::from_utf8_lossy(&o),
                    options.origin
                ));
            }
            Some(_) => {}
            None => store
                .set_meta("origin", options.origin.as_bytes())
                .map_err(err)?,
        }
        match store.meta("log_id").map_err(err)? {
            Some(id) if id != public_key.log_id() => {
                return Err("the log key does not match the key this log was created with".into());
            }
            Some(_) => {}
            None => store.set_meta("log_id", public_key.log_id()).map_err(err)?,
        }
        let created_ms = match store.meta("created_ms").map_err(err)? {
            Some(b) => u64::from_be_bytes(b.try_into().map_err(|_| "bad created_ms")?),
            None => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                store
                    .set_meta("created_ms", &now.to_be_bytes())
                    .map_err(err)?;
                now
            }
        };
        let state = match TreeState::load(store.as_mut()).map_err(err)? {
            Some(s) => s,
            None => {
                // A new log: commit the signed empty tree head.
                let sth = sequencer::sign_tree_head(
                    signer.as_ref(),
                    0,
                    created_ms,
                    merkle::empty_root(),
                )?;
                let cp = storage::StoredCheckpoint {
                    tree_size: 0,
                    timestamp: created_ms,
                    root: sth.root,
                    signature: sth.signature.to_tls(),
                    frontier: Frontier::default().to_bytes(),
                };
                store.begin().map_err(err)?;
                store.put_checkpoint(&cp).map_err(err)?;
                store.commit().map_err(err)?;
                TreeState::load(store.as_mut())
                    .map_err(err)?
                    .ok_or("the new checkpoint did not persist")?
            }
        };
        let roots = options
            .roots
            .iter()
            .map(|d| Root::new(d.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        if roots.is_empty() {
            return Err("the CT log needs at least one accepted root".into());
        }
        crate::metrics::CTLOG_TREE_SIZE.set(state.sth.tree_size as i64);
        crate::metrics::CTLOG_CHECKPOINT_TIMESTAMP.set(state.sth.timestamp as f64 / 1000.0);
        let recent =
            sequencer::load_recent(store.as_mut(), state.sth.tree_size, options.index_every)
                .map_err(err)?;
        crate::metrics::CTLOG_UNINDEXED.set(recent.len() as i64);
        let shared = Arc::new(Shared {
            latest: RwLock::new(Arc::new(state.sth.clone())),
            unhealthy: RwLock::new(None),
            recent: RwLock::new(recent),
        });
        let (tx, rx) = std::sync::mpsc::sync_channel(options.max_pending);
        let seq = Sequencer {
            store,
            signer,
            log_id: *public_key.log_id(),
            state,
            shared: shared.clone(),
            config: options.batch,
            index_every: options.index_every.max(1),
            health: sequencer::Health::Healthy,
            recovery_backoff: options.batch.recovery_backoff,
        };
        let thread = std::thread::Builder::new()
            .name("ctlog-sequencer".into())
            .spawn(move || seq.run(rx))
            .map_err(|e| e.to_string())?;
        Ok(Log {
            origin: options.origin,
            public_key,
            validator: Validator::new(roots, options.require_code_signing),
            sender: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            reader: Reader::new(db),
            shared,
            created_ms,
            issuer_cache: RwLock::new(HashMap::new()),
        })
    }

    pub fn public_key(&self) -> &LogPublicKey {
        &self.public_key
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// When the log was created (ms since the epoch): the start of its validity.
    pub fn created_millis(&self) -> u64 {
        self.created_ms
    }

    pub fn roots(&self) -> &[Root] {
        self.validator.roots()
    }

    /// Whether the log can take submissions.
    pub fn health(&self) -> Result<(), String> {
        if let Some(reason) = self.shared.unhealthy.read().ok().and_then(|b| b.clone()) {
            return Err(reason);
        }
        let alive = self
            .thread
            .lock()
            .map(|t| t.as_ref().is_some_and(|h| !h.is_finished()))
            .unwrap_or(false);
        if alive {
            Ok(())
        } else {
            Err("the CT log sequencer is not running".into())
        }
    }

    /// `add-chain` / `add-pre-chain` from the network: full validation.
    pub async fn submit(&self, chain: &[Vec<u8>], kind: Kind) -> Result<Sct, LogError> {
        let sub = self
            .validator
            .validate(chain, kind, now_secs(), true)
            .map_err(LogError::BadRequest)?;
        self.enqueue(sub).await
    }

    /// A precertificate handed over in-process by the CA that signed it a moment ago: the
    /// same checks, except the leaf's signature (the CA is the one that made it).
    /// Nor is it looked up as a possible resubmission (see `Submission::check_duplicates`).
    pub async fn submit_own_precertificate(&self, chain: &[Vec<u8>]) -> Result<Sct, LogError> {
        let mut sub = self
            .validator
            .validate(chain, Kind::Precert, now_secs(), false)
            .map_err(LogError::BadRequest)?;
        sub.check_duplicates = false;
        self.enqueue(sub).await
    }

    async fn enqueue(&self, submission: validate::Submission) -> Result<Sct, LogError> {
        let (reply, rx) = oneshot::channel();
        let sender = self
            .sender
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(|| LogError::Unavailable("the log is shutting down".into()))?;
        match sender.try_send(Msg::Submit(Pending { submission, reply })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(LogError::Unavailable("too many pending submissions".into()));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(LogError::Unavailable("the log is shutting down".into()));
            }
        }
        let _pending = PendingGauge::new();
        rx.await
            .map_err(|_| LogError::Unavailable("the sequencer stopped".into()))?
    }

    /// Shutdown has begun: commit queued submissions at once instead of waiting for the
    /// batch to fill (`--ctlog-batch-max-wait`).
    pub fn hurry(&self) {
        let sender = self.sender.lock().ok().and_then(|s| s.clone());
        // A full queue needs no wake-up: its batch fills at once.
        if let Some(s) = sender {
            let _ = s.try_send(Msg::Flush);
        }
    }

    /// Stops taking submissions, lets the sequencer commit what is queued, and waits for it.
    pub fn shutdown(&self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// The latest signed tree head.
    pub fn sth(&self) -> Arc<SignedTreeHead> {
        self.shared
            .latest
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The latest checkpoint as a signed note.
    pub fn checkpoint(&self) -> String {
        self.sth()
            .to_checkpoint(&self.origin, self.public_key.log_id())
    }

    fn hashes(&self) -> TileHashes<'_, Reader> {
        TileHashes::new(&self.reader)
    }

    fn check_size(&self, tree_size: u64) -> Result<(), LogError> {
        let current = self.sth().tree_size;
        if tree_size > current {
            return Err(LogError::BadRequest(format!(
                "tree_size {tree_size} is larger than the current tree ({current})"
            )));
        }
        Ok(())
    }

    /// `get-sth-consistency`.
    pub fn consistency(&self, first: u64, second: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(second)?;
        if first > second {
            return Err(LogError::BadRequest("first must not exceed second".into()));
        }
        merkle::consistency_proof(&self.hashes(), first, second).map_err(LogError::Internal)
    }

    /// `get-proof-by-hash`: (leaf index, audit path).
    pub fn proof_by_hash(
        &self,
        leaf_hash: &Hash,
        tree_size: u64,
    ) -> Result<(u64, Vec<Hash>), LogError> {
        self.check_size(tree_size)?;
        let index = match self
            .shared
            .recent_index(index::LookupKind::LeafHash, leaf_hash)
        {
            Some(i) => Some(i),
            None => self
                .reader
                .index_by_leaf_hash(leaf_hash, tree_size)
                .map_err(|e| LogError::Unavailable(e.to_string()))?,
        }
        .filter(|i| *i < tree_size)
        .ok_or_else(|| {
            LogError::NotFound("no entry with that leaf hash in a tree of that size".into())
        })?;
        let proof = merkle::inclusion_proof(&self.hashes(), index, tree_size)
            .map_err(LogError::Internal)?;
        Ok((index, proof))
    }

    /// An inclusion proof for a known index.
    pub fn proof_by_index(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(tree_size)?;
        if index >= tree_size {
            return Err(LogError::BadRequest(
                "leaf_index must be below tree_size".into(),
            ));
        }
        merkle::inclusion_proof(&self.hashes(), index, tree_size).map_err(LogError::Internal)
    }

    /// `get-entries`, truncated to [`MAX_GET_ENTRIES`] and to the current tree.
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<RawEntry>, LogError> {
        if start > end {
            return Err(LogError::BadRequest("start must not exceed end".into()));
        }
        let size = self.sth().tree_size;
        if start >= size {
            return Err(LogError::BadRequest(format!(
                "start {start} is beyond the tree ({size} entries)"
            )));
        }
        let end = end.min(size - 1).min(start + MAX_GET_ENTRIES - 1);
        let stored = self
            .reader
            .entries(start, end)
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        stored.iter().map(|e| self.raw_entry(e)).collect()
    }

    fn issuer_der(&self, fp: &Hash) -> Result<Vec<u8>, LogError> {
        if let Some(d) = self
            .issuer_cache
            .read()
            .ok()
            .and_then(|c| c.get(fp).cloned())
        {
            return Ok(d);
        }
        let d = self
            .reader
            .issuer(fp)
            .map_err(|e| LogError::Unavailable(e.to_string()))?
            .ok_or_else(|| LogError::NotFound("unknown issuer".into()))?;
        if let Ok(mut c) = self.issuer_cache.write() {
            c.insert(*fp, d.clone());
        }
        Ok(d)
    }

    fn raw_entry(&self, e: &StoredEntry) -> Result<RawEntry, LogError> {
        let mut leaf_input = vec![0u8, 0u8];
        leaf_input.extend_from_slice(&e.timestamped_entry);
        let mut chain = Vec::new();
        for fp in &e.chain {
            u24(&mut chain, &self.issuer_der(fp)?);
        }
        let mut extra_data = Vec::new();
        if let Some(pre) = &e.precert {
            u24(&mut extra_data, pre);
        }
        u24(&mut extra_data, &chain);
        Ok(RawEntry {
            leaf_input,
            extra_data,
        })
    }

    /// `tile/<level>/<index>[.p/<width>]`: the first `width` hashes of that tile.
    pub fn tile(&self, level: u8, index: u64, width: u64) -> Result<Vec<u8>, LogError> {
        if usize::from(level) >= sequencer::LEVELS {
            return Err(LogError::NotFound("no such tile level".into()));
        }
        let available = self.sth().tree_size >> (u32::from(TILE_HEIGHT) * u32::from(level));
        if !tile_within(index, width, available) {
            return Err(LogError::NotFound(
                "tile not available at the current tree size".into(),
            ));
        }
        let bytes = self
            .reader
            .tile(level, index)
            .map_err(|e| LogError::Unavailable(e.to_string()))?
            .filter(|b| b.len() as u64 >= width * HASH_LEN as u64)
            .ok_or_else(|| LogError::NotFound("tile not found".into()))?;
        Ok(bytes[..width as usize * HASH_LEN].to_vec())
    }

    /// `tile/data/<index>[.p/<width>]`: the entries of a level-0 tile as `TileLeaf`s.
    pub fn data_tile(&self, index: u64, width: u64) -> Result<Vec<u8>, LogError> {
        let size = self.sth().tree_size;
        if !tile_within(index, width, size) {
            return Err(LogError::NotFound(
                "tile not available at the current tree size".into(),
            ));
        }
        // Cannot overflow: `tile_within` checked index * 256 + width <= size.
        let first = index * TILE_WIDTH;
        let entries = self
            .reader
            .entries(first, first + width - 1)
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        let mut out = Vec::with_capacity(entries.len() * 1600);
        for e in &entries {
            out.extend_from_slice(&e.timestamped_entry);
            if let Some(pre) = &e.precert {
                u24(&mut out, pre);
            }
            out.extend_from_slice(&((e.chain.len() * HASH_LEN) as u16).to_be_bytes());
            for fp in &e.chain {
                out.extend_from_slice(fp);
            }
        }
        Ok(out)
    }

    /// `issuer/<hex sha256>`.
    pub fn issuer(&self, fingerprint: &Hash) -> Result<Vec<u8>, LogError> {
        self.issuer_der(fingerprint)
    }

    /// The SHA-256 of a root certificate, as logged issuers are addressed.
    pub fn fingerprint(der: &[u8]) -> Hash {
        sha256(der)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether the first `width` hashes of tile `index` exist among `available` hashes at its
/// level: `index * 256 + width <= available`, without overflow for any `index`.
fn tile_within(index: u64, width: u64, available: u64) -> bool {
    index
        .checked_mul(TILE_WIDTH)
        .and_then(|first| first.checked_add(width))
        .is_some_and(|end| width > 0 && end <= available)
}

fn u24(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(data);
}

/// Where tile bytes come from for proofs: the store, or a map in tests and fuzzing.
pub trait TileSource {
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, String>;
}

impl TileSource for Reader {
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, String> {
        Reader::tile(self, level, index).map_err(|e| e.to_string())
    }
}

impl TileSource for HashMap<(u8, u64), Vec<u8>> {
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, String> {
        Ok(self.get(&(level, index)).cloned())
    }
}

/// Complete-subtree hashes read from stored tiles (tiles memoised per proof).
pub struct TileHashes<'a, S: TileSource> {
    source: &'a S,
    cache: RefCell<HashMap<(u8, u64), Vec<u8>>>,
}

impl<'a, S: TileSource> TileHashes<'a, S> {
    pub fn new(source: &'a S) -> TileHashes<'a, S> {
        TileHashes {
            source,
            cache: RefCell::new(HashMap::new()),
        }
    }
}

impl<S: TileSource> SubtreeHashes for TileHashes<'_, S> {
    type Error = String;

    fn hash(&self, level: u8, index: u64) -> Result<Hash, String> {
        let tile_level = level / TILE_HEIGHT;
        let within = level % TILE_HEIGHT;
        let first = index << within;
        let count = 1usize << within;
        let tile_index = first / TILE_WIDTH;
        let offset = (first % TILE_WIDTH) as usize;
        let key = (tile_level, tile_index);
        if !self.cache.borrow().contains_key(&key) {
            let t = self
                .source
                .tile(tile_level, tile_index)?
                .ok_or_else(|| format!("tile {tile_level}/{tile_index} missing"))?;
            self.cache.borrow_mut().insert(key, t);
        }
        let cache = self.cache.borrow();
        let tile = &cache[&key];
        let end = (offset + count) * HASH_LEN;
        if tile.len() < end {
            return Err(format!("tile {tile_level}/{tile_index} too short"));
        }
        Ok(merkle::root_of(&merkle::hashes_from(
            &tile[offset * HASH_LEN..end],
        )?))
    }
}

/// Counts a submission in `brevis_ctlog_pending_submissions` while its caller waits,
/// including when the caller gives up (the future is dropped).
struct PendingGauge;

impl PendingGauge {
    fn new() -> PendingGauge {
        crate::metrics::CTLOG_PENDING.inc();
        PendingGauge
    }
}

impl Drop for PendingGauge {
    fn drop(&mut self) {
        crate::metrics::CTLOG_PENDING.dec();
    }
}
