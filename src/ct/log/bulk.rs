//! Bulk loading of synthetic entries straight into a log's storage, for benchmarks and
//! tests of large logs (the `test-support` feature; never in a release build). Entries are
//! `x509_entry`s of random bytes the size of a real Sigstore leaf, with real tiles and a
//! signed checkpoint per batch, written exactly as the sequencer writes them; only
//! validation and the queue are skipped. SCT signatures are real, or (`sign: false`, to
//! load millions of entries quickly) a fixed signature of the same length.

use super::sequencer::{TreeState, sign_tree_head};
use super::store::{LogWriter, StoreError, StoredCheckpoint, StoredEntry};
use crate::ct::merkle::{self, Hash};
use crate::model::sct::{self, DigitallySigned, Entry};
use crate::model::signer::Signer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Why a bulk load stopped.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// The storage failed.
    #[error("storage")]
    Store(#[from] StoreError),
    /// The log has no checkpoint (open it once with `Log::open` first).
    #[error("the log is not initialised")]
    Uninitialised,
    /// Signing failed.
    #[error("signing")]
    Sign(#[from] crate::model::signer::SignerError),
}

/// Opens (creating if needed) the log in `dir` on `storage`, with the key kept in `dir`,
/// and appends `count` synthetic entries; returns the tree size.
pub fn fill(
    dir: &std::path::Path,
    storage: &super::Storage,
    origin: &str,
    count: u64,
    batch: usize,
    sign: bool,
    progress: impl FnMut(u64),
) -> Result<u64, BulkError> {
    let (mut writer, signer) = open(dir, storage, origin)?;
    append_synthetic(writer.as_mut(), &signer, count, batch, sign, progress)
}

/// Opens (creating if needed) the log in `dir` on `storage`, with its key kept in `dir`.
fn open(
    dir: &std::path::Path,
    storage: &super::Storage,
    origin: &str,
) -> Result<(Box<dyn LogWriter>, crate::model::signer::LocalSigner), BulkError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Config(format!("creating {}: {e}", dir.display())))?;
    let signer = super::load_or_create_key(dir)
        .map_err(|e| BulkError::Store(StoreError::Config(format!("the log key: {e}"))))?;
    let public_key = crate::ct::LogPublicKey::from_spki_der(signer.public_key_spki())
        .map_err(|_| StoreError::Corrupt("the log key"))?;
    let (mut writer, _) =
        super::open_store(storage, dir, super::store::lookup::DEFAULT_INDEX_EVERY)?;
    super::initialize(
        writer.as_mut(),
        &signer,
        &public_key,
        origin,
        &crate::model::SystemClock,
    )
    .map_err(|e| BulkError::Store(StoreError::Config(format!("opening the log: {e}"))))?;
    Ok((writer, signer))
}

/// Bytes of the synthetic certificate of each entry (a typical Sigstore leaf).
pub const ENTRY_BYTES: usize = 900;

/// Appends `count` synthetic entries in batches of `batch`, each its own transaction, and
/// returns the new tree size. `progress` is called after every batch with the tree size.
pub fn append_synthetic(
    writer: &mut dyn LogWriter,
    signer: &dyn Signer,
    count: u64,
    batch: usize,
    sign: bool,
    progress: impl FnMut(u64),
) -> Result<u64, BulkError> {
    let rng = SystemRandom::new();
    let random = |_| {
        let mut cert = vec![0u8; ENTRY_BYTES];
        rng.fill(&mut cert)
            .map_err(|_| StoreError::Corrupt("no randomness"))?;
        Ok(cert)
    };
    append_with(writer, signer, count, batch, sign, random, progress)
}

/// Opens (creating if needed) the log in `dir` and appends `count` `x509_entry`s whose
/// certificates `make(index)` builds (real certificates, for tests and benchmarks of
/// what reads them: the monitor, the explorer's search).
pub fn fill_with(
    dir: &std::path::Path,
    storage: &super::Storage,
    origin: &str,
    count: u64,
    batch: usize,
    mut make: impl FnMut(u64) -> Vec<u8>,
    progress: impl FnMut(u64),
) -> Result<u64, BulkError> {
    let (mut writer, signer) = open(dir, storage, origin)?;
    append_with(
        writer.as_mut(),
        &signer,
        count,
        batch,
        true,
        |i| Ok(make(i)),
        progress,
    )
}

/// [`append_synthetic`] with the certificate of each index from `make`.
fn append_with(
    writer: &mut dyn LogWriter,
    signer: &dyn Signer,
    count: u64,
    batch: usize,
    sign: bool,
    mut make: impl FnMut(u64) -> Result<Vec<u8>, StoreError>,
    mut progress: impl FnMut(u64),
) -> Result<u64, BulkError> {
    let fixed = signer.sign(b"a fixed signature for unsigned bulk entries")?;
    let issuer_der = vec![0x30u8, 0x03, 0x02, 0x01, 0x01];
    let issuer_fp: Hash = crate::ct::sha256(&issuer_der);
    let mut left = count;
    let mut size = 0;
    let mut first = true;
    while left > 0 {
        let n = left.min(batch.max(1) as u64);
        let cp = writer.begin()?.ok_or(BulkError::Uninitialised)?;
        let result = (|| -> Result<u64, BulkError> {
            let mut state = TreeState::load(writer, &cp)?;
            let timestamp = cp.timestamp + 1;
            let mut entries = Vec::with_capacity(n as usize);
            let mut leaves = Vec::with_capacity(n as usize);
            for i in 0..n {
                let index = cp.tree_size + i;
                let cert = make(index)?;
                let extensions = sct::leaf_index_extension(index);
                let entry = Entry::X509 { certificate: &cert };
                let te = sct::timestamped_entry(timestamp, &entry, &extensions);
                let leaf_hash = merkle::leaf_hash(&sct::merkle_tree_leaf(&te));
                let signature = if sign {
                    signer.sign(&sct::signature_input(timestamp, &entry, &extensions))?
                } else {
                    fixed.clone()
                };
                leaves.push(leaf_hash);
                entries.push(StoredEntry {
                    index,
                    dedup: crate::ct::sha256(&cert),
                    leaf_hash,
                    timestamp,
                    signature: DigitallySigned {
                        hash_algorithm: sct::HASH_SHA256,
                        signature_algorithm: sct::SIG_ECDSA,
                        signature,
                    }
                    .to_tls(),
                    timestamped_entry: te,
                    precert: None,
                    chain: vec![issuer_fp],
                });
            }
            let tiles = state.append_leaves(&leaves);
            let tree_size = state.frontier.size();
            let root = state.frontier.root();
            let sth = sign_tree_head(signer, tree_size, timestamp, root)?;
            writer.insert_entries(&entries)?;
            if first {
                writer.insert_issuers(&[(issuer_fp, issuer_der.clone())])?;
            }
            writer.put_tiles(&tiles)?;
            writer.put_checkpoint(&StoredCheckpoint {
                tree_size,
                timestamp,
                root,
                signature: sth.signature.to_tls(),
                frontier: state.frontier.to_bytes(),
            })?;
            writer.commit()?;
            Ok(tree_size)
        })();
        match result {
            Ok(s) => size = s,
            Err(e) => {
                writer.rollback();
                return Err(e);
            }
        }
        first = false;
        left -= n;
        progress(size);
        let _ = writer.after_commit();
    }
    Ok(size)
}
