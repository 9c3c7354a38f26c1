//! The certificate authority: its key, its chain, and leaf issuance (precertificate, final
//! certificate with embedded SCTs, or a plain certificate when CT is off).
//!
//! Invariant: this module never does network IO and never sees HTTP types. The domain
//! (`CertificateAuthority`, `profile`, `chain`) reads no files; `provision` is where CA
//! material is read from and written to disk, and `create` generates it.

pub mod chain;
pub mod create;
pub mod keyfile;
pub(crate) mod profile;
pub mod provision;

use crate::model::der;
use crate::model::extensions::Extension;
use crate::model::oid;
pub use crate::model::signer::{self, LocalSigner, Signer, SignerError, SigningAlgorithm};
use crate::model::{Principal, PublicKey, pem, x509};
pub(crate) use chain::ChainError;
pub(crate) use keyfile::KeyFileError;
pub(crate) use profile::PreparedLeaf;
use std::sync::Arc;
use std::time::SystemTime;
use thiserror::Error;
use x509_parser::prelude::*;

/// Why the CA could not load, prepare or sign.
#[derive(Debug, Error)]
pub enum CaError {
    /// The CA certificate chain was rejected when loaded.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The CA private key file could not be read.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The principal could not fill the certificate (client-side problem).
    #[error(transparent)]
    Template(#[from] crate::model::extensions::ExtensionError),
    /// The signer failed.
    #[error("CA signer failure")]
    Signer(#[from] SignerError),
    /// A signature by the CA key does not verify with the issuing certificate's key.
    #[error("a signature by the CA key does not verify with the issuing certificate")]
    SelfTest,
    /// Generating CA certificates failed.
    #[error("certificate generation failed")]
    Generation(#[from] rcgen::Error),
    /// The system's random number generator failed.
    #[error("no randomness available")]
    Randomness,
    /// `ca intermediate` was given a root key that is not the root certificate's.
    #[error("the root key does not belong to the root certificate")]
    RootKeyMismatch,
    /// A time that cannot be encoded in a certificate.
    #[error("time {0} (Unix seconds) cannot be encoded")]
    TimeOutOfRange(i64),
    /// The final certificate does not correspond to the logged precertificate.
    #[error("final certificate TBS does not match the precertificate TBS")]
    PrecertMismatch,
    /// A certificate of the chain has expired: no leaf may be issued under it.
    #[error(
        "the CA certificate chain expired at {not_after} (Unix time); nothing can be issued until a new chain is installed"
    )]
    ChainExpired {
        /// The earliest `notAfter` in the chain (Unix seconds).
        not_after: i64,
    },
    /// A certificate of the chain is not valid yet.
    #[error("the CA certificate chain is not valid before {not_before} (Unix time)")]
    ChainNotYetValid {
        /// The latest `notBefore` in the chain (Unix seconds).
        not_before: i64,
    },
}

/// A signed precertificate: what goes to the CT log.
#[derive(Debug, Clone)]
pub struct Precertificate {
    /// The precertificate's DER encoding (it carries the CT poison extension).
    pub der: Vec<u8>,
}

/// Which backend a CA came from (shown in its `Debug` form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    File,
    Ephemeral,
    /// A key in a PKCS#11 token or a cloud KMS (the signer says which).
    Remote,
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
    pub(crate) fn new(
        signer: Arc<dyn Signer>,
        chain: Vec<Vec<u8>>,
        backend: Backend,
        now: SystemTime,
    ) -> Result<CertificateAuthority, CaError> {
        chain::validate(&chain, signer.public_key_spki(), now)?;
        let (_, issuing) =
            parse_x509_certificate(&chain[0]).map_err(|e| ChainError::Unparsable {
                index: 0,
                reason: e.to_string(),
            })?;
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

    /// Fulcio's `fileca` from file contents: a PEM chain (issuing certificate first, root
    /// last) and a PEM private key (encrypted when `password` is given).
    pub(crate) fn from_pem(
        chain_pem: &str,
        key_pem: &str,
        password: Option<&str>,
        now: SystemTime,
    ) -> Result<CertificateAuthority, CaError> {
        let chain = chain::parse_pem_chain(chain_pem)?;
        let signer = keyfile::load(key_pem, password)?;
        CertificateAuthority::new(
            crate::signers::metered_local(signer, "ca"),
            chain,
            Backend::File,
            now,
        )
    }

    /// A CA whose key is held elsewhere (an HSM, a KMS), with its chain (issuing
    /// certificate first).
    pub(crate) fn remote(
        signer: Arc<dyn Signer>,
        chain: Vec<Vec<u8>>,
        now: SystemTime,
    ) -> Result<CertificateAuthority, CaError> {
        CertificateAuthority::new(signer, chain, Backend::Remote, now)
    }

    /// The chain without a leaf, issuing certificate first, root last (DER).
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The same chain as canonical PEM strings.
    pub fn chain_pem(&self) -> &[String] {
        &self.chain_pem
    }

    pub(crate) fn root_der(&self) -> &[u8] {
        // `new` refuses an empty chain.
        self.chain.last().map(|c| c.as_slice()).unwrap_or_default()
    }

    /// DER SubjectPublicKeyInfo of the issuing certificate (the CT `issuer_key_hash` input).
    pub(crate) fn issuer_spki(&self) -> &[u8] {
        &self.issuer_spki
    }

    /// The window in which this CA can issue (Unix seconds): from the latest notBefore
    /// to the earliest notAfter of its chain.
    pub(crate) fn validity_window(&self) -> (i64, i64) {
        (self.valid_from, self.valid_until)
    }

    /// Whether the chain is valid at `now_unix` (readiness, and before every issuance).
    pub(crate) fn check_validity(&self, now_unix: i64) -> Result<(), CaError> {
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
    pub async fn sign_precertificate(
        &self,
        leaf: &PreparedLeaf,
    ) -> Result<Precertificate, CaError> {
        let poison = Extension::new(&oid::CT_POISON, true, vec![der::TAG_NULL, 0]);
        let der = profile::assemble(&leaf.tbs(Some(&poison)), self.signer.as_ref()).await?;
        Ok(Precertificate { der })
    }

    /// Signs the final certificate with `sct_list` (a TLS-encoded SignedCertificateTimestampList)
    /// in the poison's place, then checks that removing it gives back exactly the
    /// precertificate's TBS minus the poison, so the embedded SCTs verify.
    pub async fn sign_final(
        &self,
        leaf: &PreparedLeaf,
        precert: &Precertificate,
        sct_list: &[u8],
    ) -> Result<Vec<u8>, CaError> {
        let ext = Extension::new(&oid::CT_SCT_LIST, false, der::octet_string(sct_list));
        let final_der = profile::assemble(&leaf.tbs(Some(&ext)), self.signer.as_ref()).await?;
        let final_tbs = x509::tbs_of(&final_der)
            .and_then(|tbs| x509::tbs_without(tbs, &oid::CT_SCT_LIST))
            .map_err(|_| CaError::PrecertMismatch)?;
        let pre_tbs = x509::precert_tbs(&precert.der).map_err(|_| CaError::PrecertMismatch)?;
        match final_tbs {
            Some(a) if a == pre_tbs => Ok(final_der),
            _ => Err(CaError::PrecertMismatch),
        }
    }

    /// Signs a fixed message with the CA key and verifies it with the issuing
    /// certificate's public key: the signer works and matches the chain (readiness, reload).
    pub(crate) fn self_test(&self) -> Result<(), CaError> {
        const MESSAGE: &[u8] = b"brevis CA signer self-test";
        let signature = self.signer.sign(MESSAGE)?;
        // `new` validated the issuing certificate's key; a key that no longer parses is as
        // bad as a signature that does not verify.
        let verifies = crate::model::keys::PublicKey::from_spki_der(&self.issuer_spki)
            .is_ok_and(|key| key.verify_proof(MESSAGE, &signature));
        if verifies {
            Ok(())
        } else {
            Err(CaError::SelfTest)
        }
    }

    /// Signs a certificate with no CT extension (CT explicitly disabled).
    pub(crate) async fn sign_without_ct(&self, leaf: &PreparedLeaf) -> Result<Vec<u8>, CaError> {
        profile::assemble(&leaf.tbs(None), self.signer.as_ref()).await
    }
}
