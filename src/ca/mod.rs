//! The certificate authority: its key, its chain, and leaf issuance (precertificate, final
//! certificate with embedded SCTs, or a plain certificate when CT is off).
//!
//! Invariant: this module never does network IO and never sees HTTP types. Files are read
//! only when a CA is loaded.

pub mod chain;
pub mod create;
pub mod keyfile;
pub mod profile;

pub use crate::files::write_file;
use crate::model::der;
use crate::model::extensions::Extension;
use crate::model::oid;
pub use crate::model::signer::{self, LocalSigner, Signer, SigningAlgorithm};
use crate::model::{Principal, PublicKey, pem, x509};
pub use chain::ChainError;
pub use keyfile::KeyFileError;
pub use profile::PreparedLeaf;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use thiserror::Error;
use x509_parser::prelude::*;

#[derive(Debug, Error)]
pub enum CaError {
    #[error("{0}")]
    Load(String),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// The principal could not fill the certificate (client-side problem).
    #[error("{0}")]
    Template(String),
    /// Signing or encoding failed inside the CA.
    #[error("CA backend failure: {0}")]
    Backend(String),
    /// The final certificate does not correspond to the logged precertificate.
    #[error("final certificate TBS does not match the precertificate TBS")]
    PrecertMismatch,
    /// A certificate of the chain has expired: no leaf may be issued under it.
    #[error(
        "the CA certificate chain expired at {not_after} (Unix time); nothing can be issued until a new chain is installed"
    )]
    ChainExpired { not_after: i64 },
    /// A certificate of the chain is not valid yet.
    #[error("the CA certificate chain is not valid before {not_before} (Unix time)")]
    ChainNotYetValid { not_before: i64 },
}

/// A signed precertificate: what goes to the CT log.
#[derive(Debug, Clone)]
pub struct Precertificate {
    pub der: Vec<u8>,
}

/// Which backend a CA came from (shown in logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    File,
    Ephemeral,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::File => "fileca",
            Backend::Ephemeral => "ephemeralca",
        }
    }
}

/// A CA key and its chain (issuing certificate first, root last).
pub struct CertificateAuthority {
    signer: Arc<dyn Signer>,
    chain: Vec<Vec<u8>>,
    chain_pem: Vec<String>,
    issuer_subject: Vec<u8>,
    issuer_key_id: Option<Vec<u8>>,
    issuer_spki: Vec<u8>,
    backend: Backend,
    /// The latest notBefore and the earliest notAfter of the chain (Unix seconds): a leaf
    /// is issued only inside this window and never outlives it.
    valid_from: i64,
    valid_until: i64,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("backend", &self.backend)
            .field("chain_len", &self.chain.len())
            .finish()
    }
}

impl CertificateAuthority {
    /// Builds a CA from a signer and its chain after validating them as Fulcio does.
    pub fn new(
        signer: Arc<dyn Signer>,
        chain: Vec<Vec<u8>>,
        backend: Backend,
        now: SystemTime,
    ) -> Result<CertificateAuthority, CaError> {
        chain::validate(&chain, signer.public_key_spki(), now)?;
        let (_, issuing) = parse_x509_certificate(&chain[0])
            .map_err(|e| CaError::Load(format!("issuing certificate: {e}")))?;
        let issuer_subject = issuing.subject().as_raw().to_vec();
        let issuer_key_id = x509::subject_key_id(&issuing);
        let issuer_spki = issuing.public_key().raw.to_vec();
        let chain_pem = chain.iter().map(|c| pem::certificate(c)).collect();
        let (valid_from, valid_until) = chain::validity_window(&chain)?;
        Ok(CertificateAuthority {
            signer,
            chain,
            chain_pem,
            issuer_subject,
            issuer_key_id,
            issuer_spki,
            backend,
            valid_from,
            valid_until,
        })
    }

    /// Fulcio's `ephemeralca`: a fresh in-memory P-256 root that issues leaves directly.
    pub fn ephemeral(now: SystemTime) -> Result<CertificateAuthority, CaError> {
        let root = create::ephemeral_root(::time::OffsetDateTime::from(now))?;
        CertificateAuthority::new(
            Arc::new(root.signer),
            vec![root.der],
            Backend::Ephemeral,
            now,
        )
    }

    /// Fulcio's `fileca`: a PEM chain file (issuing certificate first) and a PEM key file.
    pub fn from_files(
        cert_path: &Path,
        key_path: &Path,
        password: Option<&str>,
        now: SystemTime,
    ) -> Result<CertificateAuthority, CaError> {
        let chain_text = read(cert_path)?;
        let key_text = read(key_path)?;
        let chain = chain::parse_pem_chain(&chain_text)?;
        let signer = keyfile::load(&key_text, password)?;
        CertificateAuthority::new(Arc::new(signer), chain, Backend::File, now)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The chain without a leaf, issuing certificate first, root last (DER).
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The same chain as canonical PEM strings.
    pub fn chain_pem(&self) -> &[String] {
        &self.chain_pem
    }

    pub fn root_der(&self) -> &[u8] {
        // `new` refuses an empty chain.
        self.chain.last().map(|c| c.as_slice()).unwrap_or_default()
    }

    /// DER SubjectPublicKeyInfo of the issuing certificate (the CT `issuer_key_hash` input).
    pub fn issuer_spki(&self) -> &[u8] {
        &self.issuer_spki
    }

    /// The window in which this CA can issue (Unix seconds): from the latest notBefore
    /// to the earliest notAfter of its chain.
    pub fn validity_window(&self) -> (i64, i64) {
        (self.valid_from, self.valid_until)
    }

    /// Whether the chain is valid at `now_unix` (readiness, and before every issuance).
    pub fn check_validity(&self, now_unix: i64) -> Result<(), CaError> {
        if now_unix >= self.valid_until {
            return Err(CaError::ChainExpired {
                not_after: self.valid_until,
            });
        }
        if now_unix < self.valid_from {
            return Err(CaError::ChainNotYetValid {
                not_before: self.valid_from,
            });
        }
        Ok(())
    }

    /// Decides every field of a leaf for `principal` and `key`. The leaf never outlives
    /// the chain: within the last ten minutes of the chain's validity its notAfter is
    /// the chain's earliest notAfter (clamped, not refused); after that nothing is issued.
    pub fn prepare(
        &self,
        principal: &Principal,
        key: &PublicKey,
        now_unix: i64,
    ) -> Result<PreparedLeaf, CaError> {
        self.check_validity(now_unix)?;
        let issuer = profile::IssuerInfo {
            subject_raw: &self.issuer_subject,
            key_id: self.issuer_key_id.as_deref(),
            not_after_limit: self.valid_until,
        };
        profile::prepare(&issuer, self.signer.as_ref(), principal, key, now_unix)
    }

    /// Signs the precertificate: the prepared TBS with the critical CT poison last.
    pub fn sign_precertificate(&self, leaf: &PreparedLeaf) -> Result<Precertificate, CaError> {
        let poison = Extension::new(&oid::CT_POISON, true, vec![der::TAG_NULL, 0]);
        let der = profile::assemble(&leaf.tbs(Some(&poison)), self.signer.as_ref())?;
        Ok(Precertificate { der })
    }

    /// Signs the final certificate with `sct_list` (a TLS-encoded SignedCertificateTimestampList)
    /// in the poison's place, then checks that removing it gives back exactly the
    /// precertificate's TBS minus the poison, so the embedded SCTs verify.
    pub fn sign_final(
        &self,
        leaf: &PreparedLeaf,
        precert: &Precertificate,
        sct_list: &[u8],
    ) -> Result<Vec<u8>, CaError> {
        let ext = Extension::new(&oid::CT_SCT_LIST, false, der::octet_string(sct_list));
        let final_der = profile::assemble(&leaf.tbs(Some(&ext)), self.signer.as_ref())?;
        let final_tbs = tbs_of(&final_der)?;
        let pre_tbs = tbs_of(&precert.der)?;
        let a = der::tbs_without_extension(&final_tbs, &oid::CT_SCT_LIST.tlv())
            .map_err(|_| CaError::PrecertMismatch)?;
        let b = der::tbs_without_extension(&pre_tbs, &oid::CT_POISON.tlv())
            .map_err(|_| CaError::PrecertMismatch)?;
        match (a, b) {
            (Some(a), Some(b)) if a == b => Ok(final_der),
            _ => Err(CaError::PrecertMismatch),
        }
    }

    /// Signs a fixed message with the CA key and verifies it with the issuing
    /// certificate's public key: the signer works and matches the chain (readiness, reload).
    pub fn self_test(&self) -> Result<(), CaError> {
        const MESSAGE: &[u8] = b"brevis CA signer self-test";
        let signature = self
            .signer
            .sign(MESSAGE)
            .map_err(|e| CaError::Backend(e.to_string()))?;
        let key = crate::model::keys::PublicKey::from_spki_der(&self.issuer_spki)
            .map_err(|e| CaError::Backend(format!("issuing certificate key: {e}")))?;
        if key.verify_proof(MESSAGE, &signature) {
            Ok(())
        } else {
            Err(CaError::Backend(
                "a signature by the CA key does not verify with the issuing certificate".into(),
            ))
        }
    }

    /// Signs a certificate with no CT extension (CT explicitly disabled).
    pub fn sign_without_ct(&self, leaf: &PreparedLeaf) -> Result<Vec<u8>, CaError> {
        profile::assemble(&leaf.tbs(None), self.signer.as_ref())
    }
}

/// The TBSCertificate bytes of a DER certificate.
pub fn tbs_of(cert: &[u8]) -> Result<Vec<u8>, CaError> {
    let bad = |_| CaError::Backend("malformed certificate".into());
    let outer = der::read_single(cert, der::TAG_SEQUENCE).map_err(bad)?;
    let (tbs, _) = der::read_tlv(outer.content).map_err(bad)?;
    Ok(tbs.raw.to_vec())
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path)
        .map_err(|e| CaError::Load(format!("cannot read {}: {e}", path.display())))
}

/// Where the default CA lives: chain, issuing key and root certificate inside the data
/// directory; the root's private key beside it, in `<data-dir>-offline/`, because the
/// running server never needs it (it only issues the next intermediate) and it belongs
/// on a machine that is not online.
pub struct DataDirFiles {
    pub chain: PathBuf,
    pub key: PathBuf,
    pub root: PathBuf,
    pub root_key: PathBuf,
}

impl DataDirFiles {
    pub fn new(data_dir: &Path) -> DataDirFiles {
        let dir = data_dir.join("ca");
        DataDirFiles {
            chain: dir.join("chain.pem"),
            key: dir.join("intermediate-key.pem"),
            root: dir.join("root.pem"),
            root_key: offline_dir(data_dir).join("root-key.pem"),
        }
    }

    /// Where releases before this layout wrote the root key: inside the serving directory.
    pub fn legacy_root_key(data_dir: &Path) -> PathBuf {
        data_dir.join("ca").join("root-key.pem")
    }
}

/// The directory beside `data_dir` for material that must not stay on the server:
/// `brevis-data` -> `brevis-data-offline`.
pub fn offline_dir(data_dir: &Path) -> PathBuf {
    let text = data_dir.to_string_lossy();
    let trimmed = text.trim_end_matches('/');
    let base = if trimmed.is_empty() || trimmed == "." {
        "brevis-data"
    } else {
        trimmed
    };
    PathBuf::from(format!("{base}-offline"))
}

/// Files written by [`write_pair`].
#[derive(Debug, Clone)]
pub struct WrittenPair {
    pub chain: PathBuf,
    pub key: PathBuf,
    pub root: PathBuf,
    pub root_key: PathBuf,
}

/// Refuses to go on when any of `paths` exists: CA material is never overwritten.
fn refuse_existing(paths: &[&Path]) -> Result<(), CaError> {
    match paths.iter().find(|p| p.exists()) {
        Some(p) => Err(CaError::Load(format!(
            "{} already exists; refusing to overwrite CA material",
            p.display()
        ))),
        None => Ok(()),
    }
}

/// A private key as PEM PKCS#8, encrypted when a password is given.
fn key_pem(signer: &LocalSigner, password: Option<&str>) -> Result<String, CaError> {
    let pkcs8 = signer
        .to_pkcs8()
        .map_err(|e| CaError::Backend(e.to_string()))?;
    Ok(match password {
        Some(p) => pem::encode("ENCRYPTED PRIVATE KEY", &keyfile::pkcs8_encrypt(&pkcs8, p)?),
        None => pem::encode("PRIVATE KEY", &pkcs8),
    })
}

/// Writes an intermediate's key (0600) and its chain file (intermediate, then root),
/// creating the chain's directory.
fn write_intermediate_files(
    chain: &Path,
    key: &Path,
    inter: &create::Generated,
    root_der: &[u8],
    password: Option<&str>,
) -> Result<(), CaError> {
    if let Some(dir) = chain.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CaError::Load(format!("cannot create {}: {e}", dir.display())))?;
    }
    write_file(key, &key_pem(&inter.signer, password)?, true)?;
    let text = format!(
        "{}{}",
        pem::certificate(&inter.der),
        pem::certificate(root_der)
    );
    write_file(chain, &text, false)?;
    Ok(())
}

/// Issues a new intermediate under the root in `root_cert` (PEM) signed with `root_key`,
/// and writes `chain` (new intermediate, then root) and `key` (0600, PKCS#8, encrypted
/// when a password is given). Refuses to overwrite existing files.
#[allow(clippy::too_many_arguments)]
pub fn write_intermediate(
    root_cert: &Path,
    root_key: &Path,
    root_password: Option<&str>,
    chain: &Path,
    key: &Path,
    spec: &create::PairSpec,
    password: Option<&str>,
    now: SystemTime,
) -> Result<(), CaError> {
    refuse_existing(&[chain, key])?;
    let roots = chain::parse_pem_chain(&read(root_cert)?)?;
    let root_der = match roots.as_slice() {
        [one] => one,
        _ => {
            return Err(CaError::Load(format!(
                "{}: expected exactly one certificate (the root)",
                root_cert.display()
            )));
        }
    };
    let root_signer = keyfile::load(&read(root_key)?, root_password)?;
    let inter = create::intermediate_under(
        spec,
        root_der,
        &root_signer,
        ::time::OffsetDateTime::from(now),
    )?;
    // The pair must pass the same validation a running CA applies.
    let pair = vec![inter.der.clone(), root_der.clone()];
    chain::validate(&pair, inter.signer.public_key_spki(), now)?;
    write_intermediate_files(chain, key, &inter, root_der, password)
}

/// Generates a root + intermediate and writes `root.pem`, `root-key.pem`, `chain.pem`
/// (intermediate then root) and `intermediate-key.pem` into `dir`. Keys are written 0600,
/// PKCS#8, encrypted when a password is given. Refuses to overwrite existing files.
pub fn write_pair(
    files: &DataDirFiles,
    spec: &create::PairSpec,
    password: Option<&str>,
    now: SystemTime,
) -> Result<WrittenPair, CaError> {
    refuse_existing(&[&files.chain, &files.key, &files.root, &files.root_key])?;
    let now_t = ::time::OffsetDateTime::from(now);
    let (root, root_params) = create::root(spec, now_t)?;
    let inter = create::intermediate(spec, &root_params, &root.signer, now_t)?;
    write_intermediate_files(&files.chain, &files.key, &inter, &root.der, password)?;
    if let Some(dir) = files.root_key.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CaError::Load(format!("cannot create {}: {e}", dir.display())))?;
    }
    write_file(&files.root_key, &key_pem(&root.signer, password)?, true)?;
    write_file(&files.root, &pem::certificate(&root.der), false)?;
    Ok(WrittenPair {
        chain: files.chain.clone(),
        key: files.key.clone(),
        root: files.root.clone(),
        root_key: files.root_key.clone(),
    })
}
