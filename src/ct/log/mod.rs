//! The embedded CT log: an RFC 6962 log whose tree is stored as static-ct-api tiles and
//! checkpoints, with the RFC 6962 read endpoints computed from the same tiles.
//!
//! Submissions are validated, then pooled by the [`sequencer`]; an SCT is returned only
//! after its entry is durably committed (merge delay zero), with the static-ct
//! `leaf_index` extension. A resubmitted certificate gets its original SCT back.
//! Storage sits behind the traits of [`store`]; this module is the log logic above it.

#[cfg(feature = "test-support")]
pub mod bulk;
pub(crate) mod indexer;
pub mod migrate;
mod sequencer;
pub mod store;
pub(crate) mod validate;

use super::checkpoint::SignedTreeHead;
use super::merkle::{self, Frontier, HASH_LEN, Hash, SubtreeHashes};
use super::tiles::{TILE_HEIGHT, TILE_WIDTH};
use super::{LogKeyError, LogPublicKey};
use crate::model::pem;
use crate::model::sct::Sct;
use crate::model::signer::{LocalSigner, Signer, SignerError, SigningAlgorithm};
use crate::model::{Clock, SystemClock};
use crate::signers::{self, KeyRef, RemoteOptions};
pub use sequencer::{BatchConfig, TreeState};
use sequencer::{Health, Msg, Pending, Sequencer, Shared};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use store::{LogReader, LogWriter, LookupKind, StoreError, StoredCheckpoint, StoredEntry};
use thiserror::Error;
use tokio::sync::oneshot;
pub use validate::{Kind, Origin, Rejection, Root, Validator};

/// Entries returned by one `get-entries` call at most (RFC 6962 lets a log truncate).
pub(crate) const MAX_GET_ENTRIES: u64 = 256;

/// Why the log refused or could not answer, by cause. Which HTTP status each cause gets
/// is decided in `api::ctlog`, nowhere else.
#[derive(Debug, Error, Clone)]
pub enum LogError {
    /// The submission is not acceptable.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A read named a tree, index or range that does not fit the log.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Nothing at that address.
    #[error("{0}")]
    NotFound(&'static str),
    /// The submission queue is full.
    #[error("too many pending submissions")]
    Overloaded,
    /// The log is shutting down (or its sequencer stopped) before the submission was answered.
    #[error("the log is shutting down")]
    ShuttingDown,
    /// The log's storage failed and its state could not be reloaded yet.
    #[error("the log is recovering from a storage failure")]
    Recovering,
    /// Reading or writing the log's storage failed, or it holds corrupt data.
    #[error("storage")]
    Storage(#[source] StoreError),
    /// Signing an SCT or a tree head failed.
    #[error("signing")]
    Signing(#[source] Arc<SignerError>),
    /// The log was frozen (`brevis ctlog freeze`): it serves reads, takes nothing new.
    #[error("this log is frozen (read-only since {0} ms after the epoch); submit to its successor")]
    Frozen(u64),
    /// A broken invariant (a bug).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl LogError {
    /// The log cannot take submissions for now (its storage is down or failing over, its
    /// queue is full, it is stopping, its key's HSM or KMS is unreachable): worth a retry,
    /// unlike a refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            LogError::Overloaded
            | LogError::ShuttingDown
            | LogError::Recovering
            | LogError::Storage(_) => true,
            LogError::Signing(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// A read request that does not fit the log.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// A requested tree size is larger than the current tree.
    #[error("tree_size {requested} is larger than the current tree ({current})")]
    TreeTooLarge {
        /// The tree size asked for.
        requested: u64,
        /// The current tree size.
        current: u64,
    },
    /// `get-sth-consistency` with `first` greater than `second`.
    #[error("first must not exceed second")]
    FirstAfterSecond,
    /// An inclusion proof for a leaf index at or beyond the tree size.
    #[error("leaf_index must be below tree_size")]
    IndexBeyondTree,
    /// `get-entries` with `start` greater than `end`.
    #[error("start must not exceed end")]
    StartAfterEnd,
    /// `get-entries` starts at or beyond the end of the current tree.
    #[error("start {start} is beyond the tree ({size} entries)")]
    StartBeyondTree {
        /// The first index asked for.
        start: u64,
        /// The current tree size (entries).
        size: u64,
    },
}

/// Why the log is not ready.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Unhealthy {
    /// The last storage write failed; the sequencer retries, and the log is not ready until a
    /// write succeeds.
    #[error("the last write to the CT log's storage failed; retrying")]
    Failing,
    /// After a failed write the log's state could not be reloaded; submissions are refused until
    /// a reload succeeds.
    #[error("the CT log could not reload its state after a failed write; refusing submissions")]
    Broken,
    /// The sequencer thread is not running (shut down or exited).
    #[error("the CT log sequencer is not running")]
    Stopped,
    /// Shared storage did not answer the last checkpoint read.
    #[error("the CT log's storage does not answer")]
    Unreachable,
    /// Shared storage went back to an older tree (or another root for the same size) than
    /// this replica served: restored from an older backup? Nothing is written any more.
    #[error("the CT log's storage went back to an older tree than this log published")]
    RolledBack,
    /// The log's key (in an HSM or a KMS) did not sign the last time it was tried.
    #[error("the CT log's key cannot sign")]
    KeyUnavailable,
    /// The log is frozen: it takes no submissions, so the CA cannot use it.
    #[error("the CT log is frozen (read-only)")]
    Frozen,
}

/// Why the log could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The log directory could not be created.
    #[error("cannot create {path}")]
    CreateDir {
        /// The directory that could not be created.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The log's key file could not be loaded or created.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The log's key in a PKCS#11 token or a KMS could not be opened.
    #[error("the CT log key {key}")]
    HeldKey {
        /// The key reference (never a secret).
        key: String,
        /// What went wrong.
        #[source]
        source: crate::signers::OpenError,
    },
    /// The held key is not ECDSA P-256, the only kind the log signs with.
    #[error("the CT log key {0} must be ECDSA P-256")]
    HeldKeyNotP256(String),
    /// The signer's public key is not usable as a CT log key.
    #[error("the log's public key")]
    PublicKey(#[source] LogKeyError),
    /// Opening, reading or initialising the log's storage failed.
    #[error("storage")]
    Store(#[from] StoreError),
    /// The stored log was created with another origin; the origin is fixed at creation.
    #[error("this log was created with origin {stored:?}; it cannot change to {wanted:?}")]
    Origin {
        /// The origin the log was created with.
        stored: String,
        /// The origin configured now.
        wanted: String,
    },
    /// The key's log ID differs from the one recorded when the log was created.
    #[error("the log key does not match the key this log was created with")]
    KeyMismatch,
    /// No accepted roots were configured.
    #[error("the CT log needs at least one accepted root")]
    NoRoots,
    /// An accepted root certificate is unusable.
    #[error("an accepted root")]
    Root(#[source] Rejection),
    /// Signing the empty tree head of a new log failed.
    #[error("signing the empty tree head")]
    Sign(#[source] SignerError),
    /// The stored tree is older than (or forks from) a checkpoint the log already
    /// published: the storage was restored from an older backup. Continuing would fork
    /// the log.
    #[error(
        "the log's storage holds tree size {stored}, but the log already published tree size {published} ({detail}): it was restored from an older backup or diverged; writing to it would fork the log, so start a new log instead (docs/scaling.md, \"Backups\")"
    )]
    RolledBack {
        /// The tree size in storage.
        stored: u64,
        /// The published tree size (`--ct-log-last-checkpoint`).
        published: u64,
        /// What does not match.
        detail: &'static str,
    },
    /// The checkpoint given as published does not verify with the log's key.
    #[error("the last published checkpoint does not verify with this log's key")]
    LastCheckpointSignature,
    /// The sequencer thread could not be spawned.
    #[error("cannot start the sequencer thread")]
    Thread(#[source] std::io::Error),
    /// `ctlog freeze` found no log in the storage.
    #[error("there is no log in this storage to freeze")]
    NoLog,
}

/// Why a log key file could not be used.
#[derive(Debug, Error)]
pub enum KeyFileError {
    /// The key file could not be read.
    #[error("cannot read the CT log key {path}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file holds no parsable PEM block.
    #[error("{path}: not a PEM private key")]
    Pem {
        /// The key file.
        path: PathBuf,
        /// Why the PEM could not be parsed.
        #[source]
        source: crate::model::pem::PemError,
    },
    /// The PEM block is not a usable PKCS#8 private key.
    #[error("{path}: unusable private key")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why the key could not be used.
        #[source]
        source: SignerError,
    },
    /// The key is not ECDSA P-256, the only kind the log signs with.
    #[error("{0}: the CT log key must be ECDSA P-256")]
    NotP256(PathBuf),
    /// The directory for a new key could not be created.
    #[error("cannot create {path}")]
    CreateDir {
        /// The directory that could not be created.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Generating or encoding a new key failed.
    #[error("generating the CT log key")]
    Generate(#[source] SignerError),
    /// Writing the new key or its public key file failed.
    #[error(transparent)]
    Write(#[from] crate::files::FileError),
}

/// How the embedded log runs.
#[derive(Clone)]
pub struct LogOptions {
    /// The checkpoint origin (static-ct-api submission prefix without scheme).
    pub origin: String,
    /// DER roots whose chains the log accepts.
    pub roots: Vec<Vec<u8>>,
    /// Accept only leaves with EKU codeSigning (Sigstore's CT log setting).
    pub require_code_signing: bool,
    /// How submissions are grouped into batches, each committed and signed at once.
    pub batch: BatchConfig,
    /// Submissions queued at most; beyond this the log answers 503.
    pub max_pending: usize,
    /// The log's private key when it is not `<dir>/log-key.pem` (created on first start):
    /// a PEM PKCS#8 ECDSA P-256 file kept elsewhere (a Kubernetes Secret, say), or a key
    /// in a PKCS#11 token or a KMS.
    pub key: Option<KeyRef>,
    /// The token and deadline for a held key.
    pub remote_keys: RemoteOptions,
    /// Entries held in memory before their lookup rows are written (SQLite backend).
    pub index_every: u64,
    /// Where the log is stored.
    pub storage: Storage,
    /// With shared storage, how often the latest checkpoint is read from the database so
    /// this replica serves what the others committed.
    pub checkpoint_poll: std::time::Duration,
    /// A tree head this log is known to have published (saved by a monitor, say): the log
    /// refuses to open storage whose tree is smaller or not consistent with it.
    pub last_published: Option<SignedTreeHead>,
    /// Full tiles kept in memory for reads (8 KiB each; 0 keeps none).
    pub tile_cache: usize,
    /// The time: SCT timestamps, checkpoints, validity checks of submissions.
    pub clock: Arc<dyn Clock>,
    /// Keep a search index (`search.sqlite` in the log's directory) for the explorer.
    pub search_index: bool,
}

impl std::fmt::Debug for LogOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogOptions")
            .field("origin", &self.origin)
            .field("roots", &self.roots.len())
            .field("batch", &self.batch)
            .field("max_pending", &self.max_pending)
            .finish()
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            origin: "localhost:6962".into(),
            roots: Vec::new(),
            require_code_signing: true,
            batch: BatchConfig::default(),
            max_pending: 65_536,
            key: None,
            remote_keys: RemoteOptions::default(),
            index_every: store::lookup::DEFAULT_INDEX_EVERY,
            storage: Storage::Sqlite(None),
            checkpoint_poll: std::time::Duration::from_millis(500),
            last_published: None,
            tile_cache: DEFAULT_TILE_CACHE,
            clock: Arc::new(SystemClock),
            search_index: true,
        }
    }
}

/// Where a log is stored (`--ct-log-storage`).
#[derive(Debug, Clone)]
pub enum Storage {
    /// One SQLite file, one writer: the given file, or `log.sqlite` in the log directory.
    Sqlite(Option<PathBuf>),
    /// A PostgreSQL database shared by any number of replicas.
    Postgres(store::postgres::PgOptions),
}

impl Storage {
    /// Parses `sqlite:PATH`, `sqlite:` (the default file) or a `postgres://` /
    /// `postgresql://` URL.
    pub fn parse(spec: &str) -> Result<Storage, String> {
        if let Some(path) = spec.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            return Ok(Storage::Sqlite(
                (!path.is_empty()).then(|| PathBuf::from(path)),
            ));
        }
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            return Ok(Storage::Postgres(store::postgres::PgOptions::new(spec)));
        }
        Err(format!(
            "{spec:?}: expected sqlite:PATH or a postgres://user@host:port/database URL"
        ))
    }

    /// Says where, without a password.
    pub fn describe(&self, dir: &Path) -> String {
        match self {
            Storage::Sqlite(p) => format!(
                "SQLite {}",
                p.clone().unwrap_or_else(|| db_path(dir)).display()
            ),
            Storage::Postgres(o) => match url::Url::parse(&o.url) {
                Ok(mut u) => {
                    let _ = u.set_password(None);
                    format!("PostgreSQL {u}")
                }
                Err(_) => "PostgreSQL".into(),
            },
        }
    }
}

/// One entry as `get-entries` returns it.
#[derive(Debug, Clone)]
pub(crate) struct RawEntry {
    pub leaf_input: Vec<u8>,
    pub extra_data: Vec<u8>,
}

/// A running log: the validator in front, the sequencer thread behind a bounded queue,
/// and reads straight from storage.
pub struct Log {
    origin: String,
    public_key: LogPublicKey,
    validator: Validator,
    clock: Arc<dyn Clock>,
    /// The sequencer's queue. `None` once shutdown began: new submissions are refused.
    sender: Mutex<Option<SyncSender<Msg>>>,
    /// The sequencer thread; taken (and joined) by `shutdown`.
    thread: Mutex<Option<JoinHandle<()>>>,
    reader: Arc<dyn LogReader>,
    /// Written only by the sequencer: the latest tree head and the log's health.
    shared: Arc<Shared>,
    /// Issuer certificates by fingerprint (immutable once logged).
    issuer_cache: RwLock<HashMap<Hash, Vec<u8>>>,
    /// With shared storage: the thread that reads other replicas' checkpoints.
    poller: Mutex<Option<Poller>>,
    /// Full tiles (256 hashes) never change: kept once read, up to `tile_cache` of them.
    full_tiles: Mutex<TileCache>,
    /// Most full tiles kept in `full_tiles` (0: none).
    tile_cache: usize,
    /// Whether the log's key signs (readiness).
    key_check: signers::KeyCheck,
    /// When the log was frozen (ms since the epoch): no submissions from then on.
    frozen: Option<u64>,
    /// The explorer's search index, when kept.
    search: Option<Arc<store::search::SearchIndex>>,
    /// The thread that fills `search`; stopped at shutdown.
    indexer: Mutex<Option<indexer::Indexer>>,
}

/// Full tiles by (level, index).
type TileCache = HashMap<(u8, u64), Arc<Vec<u8>>>;

/// Full tiles kept in memory by default (8 KiB each: 32 MiB).
pub const DEFAULT_TILE_CACHE: usize = 4096;

/// Reads the latest checkpoint of shared storage on a timer, so a replica serves what the
/// other replicas committed; a checkpoint is taken only if its signature verifies with the
/// log's key and it grows the tree. Failing reads mark the log unreachable (not ready).
struct Poller {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: JoinHandle<()>,
}

impl Poller {
    fn start(
        reader: Arc<dyn LogReader>,
        shared: Arc<Shared>,
        key: LogPublicKey,
        every: std::time::Duration,
    ) -> Result<Poller, OpenError> {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ctlog-checkpoint-poll".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                while !flag.load(Ordering::Relaxed) {
                    let read = rt.block_on(reader.checkpoint());
                    match read {
                        Ok(Some(cp)) => {
                            shared.unreachable.store(false, Ordering::Relaxed);
                            if let Ok(signature) =
                                crate::model::sct::DigitallySigned::from_tls(&cp.signature)
                            {
                                let sth = SignedTreeHead {
                                    tree_size: cp.tree_size,
                                    timestamp: cp.timestamp,
                                    root: cp.root,
                                    signature,
                                };
                                if sth.verify(&key) {
                                    shared.advance(sth);
                                } else {
                                    tracing::error!(
                                        tree_size = cp.tree_size,
                                        "a stored checkpoint does not verify with the log's key; ignored"
                                    );
                                }
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            if !shared.unreachable.swap(true, Ordering::Relaxed) {
                                tracing::warn!(error = %crate::errors::Chain(&e), "CT log storage unreachable");
                            }
                        }
                    }
                    std::thread::park_timeout(every);
                }
            })
            .map_err(OpenError::Thread)?;
        Ok(Poller { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("origin", &self.origin).finish()
    }
}

/// File names inside a log directory.
pub(crate) fn key_path(dir: &Path) -> PathBuf {
    dir.join("log-key.pem")
}

/// The log's SQLite database inside its directory (`log.sqlite`).
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("log.sqlite")
}

/// Loads the log's ECDSA P-256 key from `dir`, creating it on first use.
pub fn load_or_create_key(dir: &Path) -> Result<LocalSigner, KeyFileError> {
    let path = key_path(dir);
    if path.exists() {
        return load_key(&path);
    }
    std::fs::create_dir_all(dir).map_err(|source| KeyFileError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let signer =
        LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).map_err(KeyFileError::Generate)?;
    let pkcs8 = signer.to_pkcs8().map_err(KeyFileError::Generate)?;
    crate::files::write_file(&path, &pem::encode("PRIVATE KEY", &pkcs8), true)?;
    crate::files::write_file(
        &dir.join("log-public-key.pem"),
        &pem::encode("PUBLIC KEY", signer.public_key_spki()),
        false,
    )?;
    Ok(signer)
}

/// Opens the log's key in a PKCS#11 token or a KMS, and writes its public key to
/// `<dir>/log-public-key.pem` (what `brevis trust-root` and monitors read).
fn open_held_key(
    key: &KeyRef,
    options: &RemoteOptions,
    dir: &Path,
) -> Result<Arc<dyn Signer>, OpenError> {
    let signer = signers::open(key, options, "ctlog").map_err(|source| OpenError::HeldKey {
        key: key.describe(),
        source,
    })?;
    if signer.algorithm() != SigningAlgorithm::EcdsaP256Sha256 {
        return Err(OpenError::HeldKeyNotP256(key.describe()));
    }
    std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    crate::files::write_file(
        &dir.join("log-public-key.pem"),
        &pem::encode("PUBLIC KEY", signer.public_key_spki()),
        false,
    )
    .map_err(KeyFileError::Write)?;
    Ok(signer)
}

/// Loads a CT log key: PEM PKCS#8, ECDSA P-256.
pub(crate) fn load_key(path: &Path) -> Result<LocalSigner, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let block = pem::parse_first(&text).map_err(|source| KeyFileError::Pem {
        path: path.to_path_buf(),
        source,
    })?;
    let signer = LocalSigner::from_pkcs8(&block.der).map_err(|source| KeyFileError::Key {
        path: path.to_path_buf(),
        source,
    })?;
    if signer.algorithm() != SigningAlgorithm::EcdsaP256Sha256 {
        return Err(KeyFileError::NotP256(path.to_path_buf()));
    }
    Ok(signer)
}

/// A log's storage: the writer its sequencer owns, the reader its requests share.
pub(crate) type StoreHalves = (Box<dyn LogWriter>, Arc<dyn LogReader>);

/// Both halves of a log's storage; `dir` is the log directory a `sqlite:` storage without
/// a path keeps `log.sqlite` in.
pub(crate) fn open_store(
    storage: &Storage,
    dir: &Path,
    index_every: u64,
) -> Result<StoreHalves, StoreError> {
    Ok(match storage {
        Storage::Sqlite(path) => {
            let path = path.clone().unwrap_or_else(|| db_path(dir));
            let (w, r) = store::sqlite::open(&path, index_every)?;
            (Box::new(w), Arc::new(r))
        }
        Storage::Postgres(pg) => {
            let (w, r) = store::postgres::open(pg)?;
            (Box::new(w), Arc::new(r))
        }
    })
}

/// When the log in `dir` was created (ms since the epoch), read without opening it for
/// writing.
pub fn created_millis(dir: &Path) -> Result<Option<u64>, StoreError> {
    store::sqlite::created_millis(&db_path(dir))
}

impl Log {
    /// Opens (or creates) the log kept in `dir`: `log-key.pem` and `log.sqlite`.
    pub(crate) fn open(dir: &Path, options: LogOptions) -> Result<Log, OpenError> {
        let signer = match &options.key {
            None => signers::metered_local(load_or_create_key(dir)?, "ctlog"),
            Some(KeyRef::File(path)) => signers::metered_local(load_key(path)?, "ctlog"),
            Some(held) => open_held_key(held, &options.remote_keys, dir)?,
        };
        std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let (writer, reader) = open_store(&options.storage, dir, options.index_every)?;
        let search = options.search_index;
        let mut log = Log::with_store(writer, reader, signer, options)?;
        if search {
            let index = Arc::new(store::search::SearchIndex::open(
                &dir.join("search.sqlite"),
                log.public_key.log_id(),
                log.sth().tree_size,
            )?);
            let indexer = indexer::Indexer::start(log.reader.clone(), index.clone())
                .map_err(OpenError::Thread)?;
            log.search = Some(index);
            log.indexer = Mutex::new(Some(indexer));
        }
        Ok(log)
    }

    /// The explorer's search index, when the log keeps one.
    pub(crate) fn search_index(&self) -> Option<&store::search::SearchIndex> {
        self.search.as_deref()
    }

    /// The stored entry at `index` of the current tree, the tree head, and the entry's
    /// inclusion proof in it.
    pub(crate) async fn entry_with_proof(
        &self,
        index: u64,
    ) -> Result<(StoredEntry, Arc<SignedTreeHead>, Vec<Hash>), LogError> {
        let sth = self.sth();
        if index >= sth.tree_size {
            return Err(LogError::NotFound(
                "no entry with that index in the current tree",
            ));
        }
        let entry = self
            .reader
            .entries(index, index)
            .await
            .map_err(LogError::Storage)?
            .into_iter()
            .next()
            .ok_or(LogError::Storage(StoreError::Corrupt(
                "an entry of the current tree is missing",
            )))?;
        let proof = self.proof_by_index(index, sth.tree_size).await?;
        Ok((entry, sth, proof))
    }

    /// Opens a log over any storage backend (tests inject faults or keep it in memory).
    pub fn with_store(
        mut writer: Box<dyn LogWriter>,
        reader: Arc<dyn LogReader>,
        signer: Arc<dyn Signer>,
        options: LogOptions,
    ) -> Result<Log, OpenError> {
        let public_key =
            LogPublicKey::from_spki_der(signer.public_key_spki()).map_err(OpenError::PublicKey)?;
        let roots = options
            .roots
            .iter()
            .map(|d| Root::new(d.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(OpenError::Root)?;
        if roots.is_empty() {
            return Err(OpenError::NoRoots);
        }
        let state = initialize(
            writer.as_mut(),
            signer.as_ref(),
            &public_key,
            &options.origin,
            options.clock.as_ref(),
        )?;
        if let Some(published) = &options.last_published {
            check_not_rolled_back(writer.as_mut(), &public_key, &state.sth, published)?;
        }
        crate::metrics::CTLOG_TREE_SIZE.set(state.sth.tree_size as i64);
        crate::metrics::CTLOG_CHECKPOINT_TIMESTAMP.set(state.sth.timestamp as f64 / 1000.0);
        let shared = Arc::new(Shared {
            latest: RwLock::new(Arc::new(state.sth.clone())),
            unhealthy: RwLock::new(None),
            unreachable: std::sync::atomic::AtomicBool::new(false),
            rolled_back: std::sync::atomic::AtomicBool::new(false),
        });
        let frozen = frozen_at(writer.as_mut())?;
        let (tx, rx) = std::sync::mpsc::sync_channel(options.max_pending);
        let key_check = signers::KeyCheck::new(signer.clone());
        let seq = Sequencer {
            writer,
            signer,
            log_id: *public_key.log_id(),
            clock: options.clock.clone(),
            state,
            shared: shared.clone(),
            config: options.batch,
            health: Health::Healthy,
            recovery_backoff: options.batch.recovery_backoff,
        };
        let thread = std::thread::Builder::new()
            .name("ctlog-sequencer".into())
            .spawn(move || seq.run(rx))
            .map_err(OpenError::Thread)?;
        let poller = if reader.shared() {
            Some(Poller::start(
                reader.clone(),
                shared.clone(),
                public_key.clone(),
                options.checkpoint_poll,
            )?)
        } else {
            None
        };
        Ok(Log {
            search: None,
            indexer: Mutex::new(None),
            frozen,
            key_check,
            poller: Mutex::new(poller),
            full_tiles: Mutex::new(HashMap::new()),
            tile_cache: options.tile_cache,
            origin: options.origin,
            public_key,
            validator: Validator::new(roots, options.require_code_signing),
            clock: options.clock,
            sender: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            reader,
            shared,
            issuer_cache: RwLock::new(HashMap::new()),
        })
    }

    /// The log's public key, from which its log ID derives.
    pub fn public_key(&self) -> &LogPublicKey {
        &self.public_key
    }

    /// The checkpoint origin the log was opened with.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The roots whose chains the log accepts (`get-roots`).
    pub fn roots(&self) -> &[Root] {
        self.validator.roots()
    }

    /// Whether the log can take submissions.
    pub fn health(&self) -> Result<(), Unhealthy> {
        if let Some(reason) = self.shared.unhealthy.read().ok().and_then(|b| *b) {
            return Err(reason);
        }
        if self
            .shared
            .rolled_back
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(Unhealthy::RolledBack);
        }
        if self
            .shared
            .unreachable
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(Unhealthy::Unreachable);
        }
        let alive = self
            .thread
            .lock()
            .map(|t| t.as_ref().is_some_and(|h| !h.is_finished()))
            .unwrap_or(false);
        if !alive {
            return Err(Unhealthy::Stopped);
        }
        if self.frozen.is_some() {
            return Err(Unhealthy::Frozen);
        }
        self.key_check.check().map_err(|e| {
            tracing::warn!(error = %e, "the CT log's key did not sign");
            Unhealthy::KeyUnavailable
        })
    }

    /// `add-chain` / `add-pre-chain` from the network: full validation.
    pub async fn submit(&self, chain: &[Vec<u8>], kind: Kind) -> Result<Sct, LogError> {
        let sub = self
            .validator
            .validate(chain, kind, self.clock.unix_seconds(), Origin::Network)
            .inspect_err(|r| {
                crate::metrics::CTLOG_REJECTIONS
                    .with_label_values(&[kind.label(), r.label()])
                    .inc();
            })?;
        self.enqueue(sub).await
    }

    /// A precertificate handed over in-process by the CA that signed it a moment ago: the
    /// same checks, except the leaf's signature (the CA is the one that made it).
    /// Nor is it looked up as a possible resubmission ([`validate::Origin::OwnCa`]).
    pub(crate) async fn submit_own_precertificate(
        &self,
        chain: &[Vec<u8>],
    ) -> Result<Sct, LogError> {
        let sub = self.validator.validate(
            chain,
            Kind::Precert,
            self.clock.unix_seconds(),
            Origin::OwnCa,
        )?;
        self.enqueue(sub).await
    }

    /// [`Log::submit_own_precertificate`] with the entry the CA already holds (its issuer
    /// key hash and unpoisoned TBS), so the precertificate is not parsed back
    /// ([`validate::Validator::own_precertificate`]).
    pub(crate) async fn submit_own_prepared_precertificate(
        &self,
        chain: &[Vec<u8>],
        issuer_key_hash: &Hash,
        unpoisoned_tbs: &[u8],
    ) -> Result<Sct, LogError> {
        match self
            .validator
            .own_precertificate(chain, issuer_key_hash, unpoisoned_tbs)
        {
            Some(sub) => self.enqueue(sub?).await,
            None => self.submit_own_precertificate(chain).await,
        }
    }

    async fn enqueue(&self, submission: validate::Submission) -> Result<Sct, LogError> {
        if let Some(at) = self.frozen {
            return Err(LogError::Frozen(at));
        }
        let (reply, rx) = oneshot::channel();
        let sender = self
            .sender
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .ok_or(LogError::ShuttingDown)?;
        match sender.try_send(Msg::Submit(Pending { submission, reply })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(LogError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(LogError::ShuttingDown),
        }
        let _pending = PendingGauge::new();
        rx.await.map_err(|_| LogError::ShuttingDown)?
    }

    /// Shutdown has begun: commit queued submissions at once instead of waiting for the
    /// batch to fill (`--ctlog-batch-max-wait`).
    pub(crate) fn hurry(&self) {
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
        let poller = self.poller.lock().ok().and_then(|mut p| p.take());
        if let Some(p) = poller {
            p.stop();
        }
        drop(self.indexer.lock().ok().and_then(|mut i| i.take()));
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
    pub(crate) fn checkpoint(&self) -> String {
        self.sth()
            .to_checkpoint(&self.origin, self.public_key.log_id())
    }

    fn check_size(&self, tree_size: u64) -> Result<(), LogError> {
        let current = self.sth().tree_size;
        if tree_size > current {
            return Err(QueryError::TreeTooLarge {
                requested: tree_size,
                current,
            }
            .into());
        }
        Ok(())
    }

    /// Runs a proof over the stored tiles: the tiles a proof needs depend only on the
    /// indexes and sizes, so a first pass records them, they are read, and a second pass
    /// computes the proof from memory.
    async fn prove(
        &self,
        proof: impl Fn(&dyn SubtreeHashes<Error = TileError>) -> Result<Vec<Hash>, TileError>,
    ) -> Result<Vec<Hash>, LogError> {
        let wanted = TileRecorder::default();
        let _ = proof(&wanted);
        let mut tiles = HashMap::new();
        for (level, index) in wanted.tiles.into_inner() {
            let t = self
                .stored_tile(level, index)
                .await?
                .ok_or(LogError::Storage(StoreError::Corrupt(
                    "a tile of the current tree is missing",
                )))?;
            tiles.insert((level, index), t.to_vec());
        }
        proof(&TileHashes::new(&tiles))
            .map_err(|_| LogError::Storage(StoreError::Corrupt("a stored tile is too short")))
    }

    /// `get-sth-consistency`.
    pub async fn consistency(&self, first: u64, second: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(second)?;
        if first > second {
            return Err(QueryError::FirstAfterSecond.into());
        }
        self.prove(|h| merkle::consistency_proof(h, first, second))
            .await
    }

    /// `get-proof-by-hash`: (leaf index, audit path).
    pub async fn proof_by_hash(
        &self,
        leaf_hash: &Hash,
        tree_size: u64,
    ) -> Result<(u64, Vec<Hash>), LogError> {
        self.check_size(tree_size)?;
        let index = self
            .reader
            .find(LookupKind::LeafHash, leaf_hash, tree_size)
            .await
            .map_err(LogError::Storage)?
            .ok_or(LogError::NotFound(
                "no entry with that leaf hash in a tree of that size",
            ))?;
        let proof = self
            .prove(|h| merkle::inclusion_proof(h, index, tree_size))
            .await?;
        Ok((index, proof))
    }

    /// An inclusion proof for a known index.
    pub(crate) async fn proof_by_index(
        &self,
        index: u64,
        tree_size: u64,
    ) -> Result<Vec<Hash>, LogError> {
        self.check_size(tree_size)?;
        if index >= tree_size {
            return Err(QueryError::IndexBeyondTree.into());
        }
        self.prove(|h| merkle::inclusion_proof(h, index, tree_size))
            .await
    }

    /// `get-entries`, truncated to [`MAX_GET_ENTRIES`] and to the current tree.
    pub(crate) async fn entries(&self, start: u64, end: u64) -> Result<Vec<RawEntry>, LogError> {
        if start > end {
            return Err(QueryError::StartAfterEnd.into());
        }
        let size = self.sth().tree_size;
        if start >= size {
            return Err(QueryError::StartBeyondTree { start, size }.into());
        }
        let end = end.min(size - 1).min(start + MAX_GET_ENTRIES - 1);
        let stored = self
            .reader
            .entries(start, end)
            .await
            .map_err(LogError::Storage)?;
        let mut out = Vec::with_capacity(stored.len());
        for e in &stored {
            out.push(self.raw_entry(e).await?);
        }
        Ok(out)
    }

    async fn issuer_der(&self, fp: &Hash) -> Result<Vec<u8>, LogError> {
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
            .await
            .map_err(LogError::Storage)?
            .ok_or(LogError::NotFound("unknown issuer"))?;
        if let Ok(mut c) = self.issuer_cache.write() {
            c.insert(*fp, d.clone());
        }
        Ok(d)
    }

    async fn raw_entry(&self, e: &StoredEntry) -> Result<RawEntry, LogError> {
        let mut leaf_input = vec![0u8, 0u8];
        leaf_input.extend_from_slice(&e.timestamped_entry);
        let mut chain = Vec::new();
        for fp in &e.chain {
            u24(&mut chain, &self.issuer_der(fp).await?);
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
    pub(crate) async fn tile(
        &self,
        level: u8,
        index: u64,
        width: u64,
    ) -> Result<Vec<u8>, LogError> {
        if usize::from(level) >= sequencer::LEVELS {
            return Err(LogError::NotFound("no such tile level"));
        }
        let available = self.sth().tree_size >> (u32::from(TILE_HEIGHT) * u32::from(level));
        if !tile_within(index, width, available) {
            return Err(LogError::NotFound(
                "tile not available at the current tree size",
            ));
        }
        let bytes = self
            .stored_tile(level, index)
            .await?
            .filter(|b| b.len() as u64 >= width * HASH_LEN as u64)
            .ok_or(LogError::NotFound("tile not found"))?;
        Ok(bytes[..width as usize * HASH_LEN].to_vec())
    }

    /// A stored tile, from memory when it is full (full tiles never change).
    async fn stored_tile(&self, level: u8, index: u64) -> Result<Option<Arc<Vec<u8>>>, LogError> {
        if let Some(t) = self
            .full_tiles
            .lock()
            .ok()
            .and_then(|c| c.get(&(level, index)).cloned())
        {
            return Ok(Some(t));
        }
        let Some(t) = self
            .reader
            .tile(level, index)
            .await
            .map_err(LogError::Storage)?
        else {
            return Ok(None);
        };
        let t = Arc::new(t);
        if t.len() == TILE_WIDTH as usize * HASH_LEN
            && self.tile_cache > 0
            && let Ok(mut c) = self.full_tiles.lock()
        {
            if c.len() >= self.tile_cache {
                c.clear();
            }
            c.insert((level, index), t.clone());
        }
        Ok(Some(t))
    }

    /// `tile/data/<index>[.p/<width>]`: the entries of a level-0 tile as `TileLeaf`s.
    pub(crate) async fn data_tile(&self, index: u64, width: u64) -> Result<Vec<u8>, LogError> {
        let size = self.sth().tree_size;
        if !tile_within(index, width, size) {
            return Err(LogError::NotFound(
                "tile not available at the current tree size",
            ));
        }
        // Cannot overflow: `tile_within` checked index * 256 + width <= size.
        let first = index * TILE_WIDTH;
        let entries = self
            .reader
            .entries(first, first + width - 1)
            .await
            .map_err(LogError::Storage)?;
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
    pub(crate) async fn issuer(&self, fingerprint: &Hash) -> Result<Vec<u8>, LogError> {
        self.issuer_der(fingerprint).await
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Checks a log's identity (origin, key) against what it was created with, or records it
/// for a new log and commits the signed empty tree head; returns when it was created and
/// its tree state.
pub(crate) fn initialize(
    writer: &mut dyn LogWriter,
    signer: &dyn Signer,
    public_key: &LogPublicKey,
    origin: &str,
    clock: &dyn Clock,
) -> Result<TreeState, OpenError> {
    // One batch: with shared storage, replicas starting together create the log once.
    let checkpoint = writer.begin()?;
    match initialize_in_batch(writer, checkpoint, signer, public_key, origin, clock) {
        Ok(state) => {
            if let Err(e) = writer.commit() {
                writer.rollback();
                return Err(e.into());
            }
            Ok(state)
        }
        Err(e) => {
            writer.rollback();
            Err(e)
        }
    }
}

fn initialize_in_batch(
    writer: &mut dyn LogWriter,
    checkpoint: Option<StoredCheckpoint>,
    signer: &dyn Signer,
    public_key: &LogPublicKey,
    origin: &str,
    clock: &dyn Clock,
) -> Result<TreeState, OpenError> {
    // The origin is part of every checkpoint; it is fixed when the log is created.
    match writer.meta("origin")? {
        Some(o) if o != origin.as_bytes() => {
            return Err(OpenError::Origin {
                stored: String::from_utf8_lossy(&o).into_owned(),
                wanted: origin.to_string(),
            });
        }
        Some(_) => {}
        None => writer.set_meta("origin", origin.as_bytes())?,
    }
    match writer.meta("log_id")? {
        Some(id) if id != public_key.log_id() => return Err(OpenError::KeyMismatch),
        Some(_) => {}
        None => writer.set_meta("log_id", public_key.log_id())?,
    }
    let created_ms = match writer.meta("created_ms")? {
        Some(b) => u64::from_be_bytes(
            b.try_into()
                .map_err(|_| StoreError::Corrupt("created_ms is not 8 bytes"))?,
        ),
        None => {
            let now = clock.unix_millis();
            writer.set_meta("created_ms", &now.to_be_bytes())?;
            now
        }
    };
    match checkpoint {
        Some(cp) => Ok(TreeState::load(writer, &cp)?),
        None => {
            // A new log: the signed empty tree head.
            let sth = sequencer::sign_tree_head(signer, 0, created_ms, merkle::empty_root())
                .map_err(OpenError::Sign)?;
            writer.put_checkpoint(&StoredCheckpoint {
                tree_size: 0,
                timestamp: created_ms,
                root: sth.root,
                signature: sth.signature.to_tls(),
                frontier: Frontier::default().to_bytes(),
            })?;
            Ok(TreeState::empty(sth))
        }
    }
}

const FROZEN_MS: &str = "frozen_ms";

fn read_millis(writer: &mut dyn LogWriter, key: &'static str) -> Result<Option<u64>, StoreError> {
    writer
        .meta(key)?
        .map(|b| {
            b.try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("a stored time is not 8 bytes"))
        })
        .transpose()
}

/// When the log in `writer` was frozen, if it was.
fn frozen_at(writer: &mut dyn LogWriter) -> Result<Option<u64>, StoreError> {
    writer.begin()?;
    let frozen = read_millis(writer, FROZEN_MS);
    writer.rollback();
    frozen
}

/// What `brevis ctlog freeze` did.
#[derive(Debug, Clone)]
pub struct Frozen {
    /// The final tree size.
    pub tree_size: u64,
    /// The final root hash.
    pub root: Hash,
    /// When the log was created (ms since the epoch): its `validFor.start`.
    pub created_ms: u64,
    /// When it was frozen (ms since the epoch): its `validFor.end`.
    pub frozen_ms: u64,
    /// It was frozen before this call (nothing changed).
    pub already: bool,
}

/// Freezes the log in `storage` for good: it keeps serving reads and its final tree,
/// and refuses every submission from now on. Stop every brevis writing to it first (a
/// running writer learns of the freeze only when it restarts).
pub fn freeze(storage: &Storage, dir: &Path, now_ms: u64) -> Result<Frozen, OpenError> {
    let (mut writer, _) = open_store(storage, dir, store::lookup::DEFAULT_INDEX_EVERY)?;
    let checkpoint = writer.begin()?;
    let result = (|| {
        let cp = checkpoint.ok_or(OpenError::NoLog)?;
        let created_ms = read_millis(writer.as_mut(), "created_ms")?.ok_or(OpenError::NoLog)?;
        let (frozen_ms, already) = match read_millis(writer.as_mut(), FROZEN_MS)? {
            Some(at) => (at, true),
            None => {
                writer.set_meta(FROZEN_MS, &now_ms.to_be_bytes())?;
                (now_ms, false)
            }
        };
        Ok(Frozen {
            tree_size: cp.tree_size,
            root: cp.root,
            created_ms,
            frozen_ms,
            already,
        })
    })();
    match result {
        Ok(f) if !f.already => {
            writer.commit()?;
            writer.after_commit()?;
            Ok(f)
        }
        other => {
            writer.rollback();
            other
        }
    }
}

/// Refuses storage whose tree is older than, or not consistent with, a tree head the log
/// published: a consistency proof from `published` to `stored`, computed from the stored
/// tiles, must verify.
fn check_not_rolled_back(
    writer: &mut dyn LogWriter,
    key: &LogPublicKey,
    stored: &SignedTreeHead,
    published: &SignedTreeHead,
) -> Result<(), OpenError> {
    if !published.verify(key) {
        return Err(OpenError::LastCheckpointSignature);
    }
    let rolled_back = |detail| OpenError::RolledBack {
        stored: stored.tree_size,
        published: published.tree_size,
        detail,
    };
    if stored.tree_size < published.tree_size {
        return Err(rolled_back("the stored tree is smaller"));
    }
    if published.tree_size == 0 {
        return Ok(());
    }
    let wanted = TileRecorder::default();
    let _ = merkle::consistency_proof(&wanted, published.tree_size, stored.tree_size);
    let keys: Vec<(u8, u64)> = wanted.tiles.into_inner().into_iter().collect();
    let tiles: HashMap<(u8, u64), Vec<u8>> = keys
        .iter()
        .copied()
        .zip(writer.tiles(&keys)?)
        .filter_map(|(k, t)| t.map(|t| (k, t)))
        .collect();
    let proof = merkle::consistency_proof(
        &TileHashes::new(&tiles),
        published.tree_size,
        stored.tree_size,
    )
    .map_err(|_| StoreError::Corrupt("a tile of the stored tree is missing"))?;
    let proof: Vec<Vec<u8>> = proof.iter().map(|h| h.to_vec()).collect();
    let consistent = if published.tree_size == stored.tree_size {
        published.root == stored.root
    } else {
        merkle::verify_consistency(
            published.tree_size,
            stored.tree_size,
            &proof,
            &published.root,
            &stored.root,
        )
        .is_ok()
    };
    if consistent {
        Ok(())
    } else {
        Err(rolled_back("the stored tree is not consistent with it"))
    }
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

/// Why a complete-subtree hash could not be read from tiles.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub(crate) enum TileError {
    #[error("tile {0}/{1} is missing")]
    Missing(u8, u64),
    #[error("tile {0}/{1} is too short")]
    Short(u8, u64),
}

/// Where tile bytes come from for proofs: tiles read ahead from storage, or a map in
/// tests and fuzzing.
pub(crate) trait TileSource {
    fn tile(&self, level: u8, index: u64) -> Option<Vec<u8>>;
}

impl TileSource for HashMap<(u8, u64), Vec<u8>> {
    fn tile(&self, level: u8, index: u64) -> Option<Vec<u8>> {
        self.get(&(level, index)).cloned()
    }
}

/// Which tile holds the complete-subtree hash (level, index), and where in it.
fn tile_of(level: u8, index: u64) -> ((u8, u64), usize, usize) {
    let tile_level = level / TILE_HEIGHT;
    let within = level % TILE_HEIGHT;
    let first = index << within;
    let count = 1usize << within;
    (
        (tile_level, first / TILE_WIDTH),
        (first % TILE_WIDTH) as usize,
        count,
    )
}

/// Complete-subtree hashes read from stored tiles (tiles memoised per proof).
pub(crate) struct TileHashes<'a, S: TileSource> {
    source: &'a S,
    cache: RefCell<HashMap<(u8, u64), Vec<u8>>>,
}

impl<'a, S: TileSource> TileHashes<'a, S> {
    pub(crate) fn new(source: &'a S) -> TileHashes<'a, S> {
        TileHashes {
            source,
            cache: RefCell::new(HashMap::new()),
        }
    }
}

impl<S: TileSource> SubtreeHashes for TileHashes<'_, S> {
    type Error = TileError;

    fn hash(&self, level: u8, index: u64) -> Result<Hash, TileError> {
        let (key, offset, count) = tile_of(level, index);
        if !self.cache.borrow().contains_key(&key) {
            let t = self
                .source
                .tile(key.0, key.1)
                .ok_or(TileError::Missing(key.0, key.1))?;
            self.cache.borrow_mut().insert(key, t);
        }
        let cache = self.cache.borrow();
        let tile = &cache[&key];
        let hashes = tile
            .get(offset * HASH_LEN..(offset + count) * HASH_LEN)
            .and_then(|b| merkle::hashes_from(b).ok())
            .ok_or(TileError::Short(key.0, key.1))?;
        Ok(merkle::root_of(&hashes))
    }
}

/// A dry run of a proof: records which tiles it reads.
#[derive(Default)]
pub(crate) struct TileRecorder {
    pub(crate) tiles: RefCell<HashSet<(u8, u64)>>,
}

impl SubtreeHashes for TileRecorder {
    type Error = TileError;

    fn hash(&self, level: u8, index: u64) -> Result<Hash, TileError> {
        self.tiles.borrow_mut().insert(tile_of(level, index).0);
        Ok([0; HASH_LEN])
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
