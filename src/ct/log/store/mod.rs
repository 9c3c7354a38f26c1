//! Durable storage of a log, behind two traits with written contracts: [`LogWriter`], the
//! write half one sequencer owns, and [`LogReader`], the read half the HTTP API shares.
//! Backends are siblings: [`sqlite`] (the embedded default: one file, one writer),
//! [`postgres`] (one database, any number of replicas, each with its own writer), and
//! `memory` (tests of the sequencer). Sequencing, tiles and checkpoints are log logic
//! above these traits, not inside a backend.
//!
//! The words MUST, MUST NOT and MAY are used as in RFC 2119.

#[cfg(any(test, feature = "fault-injection"))]
pub mod faulty;
pub(crate) mod lookup;
#[cfg(test)]
pub(crate) mod memory;
pub mod postgres;
pub mod search;
pub mod sqlite;

use crate::ct::merkle::Hash;
use crate::model::BoxFuture;
use std::sync::Arc;
use thiserror::Error;

/// Which hash of an entry a lookup is by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupKind {
    /// SHA-256 of the submitted certificate or precertificate (resubmissions).
    Dedup = 0,
    /// The RFC 6962 Merkle leaf hash (`get-proof-by-hash`).
    LeafHash = 1,
}

/// A storage operation failed. The backend's own error is kept as the source.
#[derive(Debug, Error, Clone)]
pub enum StoreError {
    /// The SQLite backend returned an error.
    #[error("SQLite")]
    Sqlite(#[source] Arc<rusqlite::Error>),
    /// What is stored breaks an invariant the log relies on.
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    /// A writer tried to move the checkpoint backwards, or write while another writer
    /// holds the log.
    #[error("the log was changed by another writer")]
    Conflict,
    /// Injected by a test.
    #[error("injected failure at {0}")]
    Injected(&'static str),
    /// The PostgreSQL backend returned an error (or its connection broke).
    #[error("PostgreSQL")]
    Postgres(#[source] Arc<tokio_postgres::Error>),
    /// The storage settings are unusable (a malformed URL, an unreadable password or CA
    /// file, a schema newer than this brevis).
    #[error("storage configuration: {0}")]
    Config(String),
    /// The backend cannot be reached (a database connection, a pool).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(Arc::new(e))
    }
}

/// One logged entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The entry's leaf index in the log (0-based).
    pub index: u64,
    /// SHA-256 of the submitted certificate or precertificate (deduplication key).
    pub dedup: Hash,
    /// The RFC 6962 Merkle leaf hash of the entry's `MerkleTreeLeaf`.
    pub leaf_hash: Hash,
    /// The SCT's and `TimestampedEntry`'s timestamp, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The SCT's TLS `DigitallySigned`, so a resubmission gets the original SCT back.
    pub signature: Vec<u8>,
    /// The TLS-encoded RFC 6962 `TimestampedEntry` (the leaf hash covers it after `00 00`).
    pub timestamped_entry: Vec<u8>,
    /// The full poisoned precertificate, for precertificate entries.
    pub precert: Option<Vec<u8>>,
    /// SHA-256 fingerprints of the issuer chain, leaf's issuer first, root last.
    pub chain: Vec<Hash>,
}

/// The latest signed tree head and the state needed to continue appending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Number of entries in the tree.
    pub tree_size: u64,
    /// The tree head's timestamp, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The Merkle tree hash of the first `tree_size` entries (`sha256_root_hash`).
    pub root: Hash,
    /// TLS `DigitallySigned` over the TreeHeadSignature.
    pub signature: Vec<u8>,
    /// The serialised Merkle frontier for `tree_size`.
    pub frontier: Vec<u8>,
}

/// One tile as a batch writes it: (level, index, hashes).
pub(crate) type TileWrite = (u8, u64, Vec<u8>);

/// The write half of a log's storage. Exactly one sequencer per process owns it.
///
/// # Contract
///
/// A batch is [`begin`](LogWriter::begin), any writes, then
/// [`commit`](LogWriter::commit) or [`rollback`](LogWriter::rollback).
///
/// - `begin` MUST exclude every other writer of the same log, in this process or any
///   other, until `commit` or `rollback` returns, and MUST return the checkpoint last
///   committed by any writer. Two batches of one log MUST NOT overlap.
/// - When `commit` returns `Ok`, every write of the batch MUST be durable (it survives a
///   crash and a power loss) and visible to every [`LogReader`] of the log.
/// - When `commit` returns `Err`, the batch MAY or MAY NOT be durable (an fsync that
///   failed after the write). The sequencer then reloads with `begin`; the backend MUST
///   make its caches agree with what is durable by then.
/// - The writes of a batch MUST NOT be visible to any reader before `commit` returns
///   `Ok`, and MUST NOT become visible after `rollback`.
/// - An entry index, once committed, MUST NOT be written again; a tile or the checkpoint
///   MAY be overwritten only within a batch that also advances the checkpoint.
/// - `put_checkpoint` MUST refuse ([`StoreError::Conflict`]) a tree size smaller than the
///   committed one: a published checkpoint is never rolled back.
/// - `find` MUST find every committed entry of the first `tree_size`, whether or not an
///   index has caught up with it; inside a batch it MAY miss the batch's own entries.
/// - Reads outside a batch (`entry`, `tile`, `meta`) MUST return committed data.
pub trait LogWriter: Send {
    /// Starts a batch; returns the latest committed checkpoint (`None` for a new log).
    fn begin(&mut self) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// The index of the committed entry whose hash of `kind` is `hash`, among the first
    /// `tree_size`.
    fn find(
        &mut self,
        kind: LookupKind,
        hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<u64>, StoreError>;
    /// [`find`](LogWriter::find) for many hashes at once (one round trip where the backend
    /// is remote); the answers are in the order of `hashes`.
    fn find_many(
        &mut self,
        kind: LookupKind,
        hashes: &[Hash],
        tree_size: u64,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        hashes
            .iter()
            .map(|h| self.find(kind, h, tree_size))
            .collect()
    }
    /// The entry at leaf index `index`; `None` if there is none.
    fn entry(&mut self, index: u64) -> Result<Option<StoredEntry>, StoreError>;
    /// Tile `index` of tile level `level`: concatenated 32-byte hashes, at most 256 (fewer
    /// for the rightmost tile); `None` if none is stored.
    fn tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// [`tile`](LogWriter::tile) for many (level, index) pairs at once, in their order.
    fn tiles(&mut self, wanted: &[(u8, u64)]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        wanted.iter().map(|(l, i)| self.tile(*l, *i)).collect()
    }
    /// The metadata value under `key` (e.g. `origin`, `log_id`, `created_ms`);
    /// `None` if unset.
    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Inside a batch, part of it; outside, committed on its own.
    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Adds new entries to the batch; their indexes MUST NOT have been committed before.
    fn insert_entries(&mut self, entries: &[StoredEntry]) -> Result<(), StoreError>;
    /// Adds issuer certificates (DER) keyed by SHA-256 fingerprint; an already stored
    /// fingerprint keeps its certificate.
    fn insert_issuers(&mut self, issuers: &[(Hash, Vec<u8>)]) -> Result<(), StoreError>;
    /// Writes or overwrites tiles in the batch.
    fn put_tiles(&mut self, tiles: &[TileWrite]) -> Result<(), StoreError>;
    /// Replaces the checkpoint in the batch; a smaller tree size than the committed one is
    /// refused with [`StoreError::Conflict`].
    fn put_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError>;
    /// Ends the batch, making its writes durable and visible (see the contract for `Err`).
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Ends the batch, discarding its writes.
    fn rollback(&mut self);
    /// Housekeeping after a batch's replies went out (indexes, WAL checkpoints), so no
    /// submitter waits for it. A failure MUST NOT lose or hide a committed entry; the
    /// sequencer counts it and the backend retries after a later batch.
    fn after_commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The read half of a log's storage, shared by every request.
///
/// # Contract
///
/// - Reads MUST return only committed data, and MUST NOT return data of a batch whose
///   `commit` has not returned `Ok`.
/// - A read that follows a successful `commit` (in time, in any process) MUST see it.
/// - `find` has the writer's contract: every committed entry is found.
/// - Implementations MUST be usable concurrently, and MUST NOT block the calling thread
///   on the network (local disk reads are fine).
pub trait LogReader: Send + Sync {
    /// The latest committed checkpoint; `None` for a new log.
    fn checkpoint(&self) -> BoxFuture<'_, Result<Option<StoredCheckpoint>, StoreError>>;
    /// Entries `start..=end`, in order (fewer at the end of the tree).
    fn entries(&self, start: u64, end: u64) -> BoxFuture<'_, Result<Vec<StoredEntry>, StoreError>>;
    /// The committed tile `index` of tile level `level`: concatenated 32-byte hashes, at most
    /// 256 (fewer for the rightmost tile); `None` if none is stored.
    fn tile(&self, level: u8, index: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>>;
    /// The issuer certificate (DER) whose SHA-256 fingerprint is `fingerprint`, if stored.
    fn issuer<'a>(
        &'a self,
        fingerprint: &'a Hash,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// The index of the committed entry whose hash of `kind` is `hash`, among the first
    /// `tree_size`.
    fn find<'a>(
        &'a self,
        kind: LookupKind,
        hash: &'a Hash,
        tree_size: u64,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>>;
    /// Whether other processes may append to this log (replicas on one database): the log
    /// then polls [`checkpoint`](LogReader::checkpoint) to serve their entries too.
    fn shared(&self) -> bool {
        false
    }
}
