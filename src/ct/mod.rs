//! Certificate Transparency: log keys and SCT verification, the submission interface the
//! authority uses, a client for remote RFC 6962 logs, and the embedded log.

use crate::model::der;
use crate::model::sct::{self, Entry, Sct};
use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use std::future::Future;
use std::pin::Pin;
use thiserror::Error;

#[derive(Debug, Error, Clone)]
pub enum CtError {
    /// The log could not be reached or answered with an error; the request must fail.
    #[error("CT log unavailable: {0}")]
    Unavailable(String),
    /// The log refused the submission (bad chain, ...).
    #[error("CT log rejected the submission: {0}")]
    Rejected(String),
    /// The log answered with something that is not a valid SCT for this entry.
    #[error("invalid SCT from the CT log: {0}")]
    InvalidSct(String),
}

/// A CT log's public key, identified by its RFC 6962 log ID (SHA-256 of the SPKI).
#[derive(Clone)]
pub struct LogPublicKey {
    spki: Vec<u8>,
    log_id: [u8; 32],
    alg: &'static dyn VerificationAlgorithm,
    key_bits: Vec<u8>,
    signature_algorithm: u8,
}

impl std::fmt::Debug for LogPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogPublicKey({})", hex::encode(self.log_id))
    }
}

impl LogPublicKey {
    /// From a DER SubjectPublicKeyInfo: ECDSA P-256 or RSA (both with SHA-256), per RFC 6962.
    pub fn from_spki_der(spki: &[u8]) -> Result<LogPublicKey, String> {
        use crate::model::oid;
        let outer = der::read_single(spki, der::TAG_SEQUENCE).map_err(|e| e.to_string())?;
        let fields = der::children(outer.content).map_err(|e| e.to_string())?;
        let (Some(alg), Some(bits)) = (fields.first(), fields.get(1)) else {
            return Err("not a SubjectPublicKeyInfo".into());
        };
        let alg_fields = der::children(alg.content).map_err(|e| e.to_string())?;
        let key_oid = alg_fields.first().map(|t| t.content).unwrap_or_default();
        let param = alg_fields.get(1).map(|t| t.content).unwrap_or_default();
        let key_bits = bits.content.get(1..).ok_or("empty public key")?.to_vec();
        let (alg, signature_algorithm): (&'static dyn VerificationAlgorithm, u8) =
            if key_oid == oid::EC_PUBLIC_KEY.content && param == oid::CURVE_P256.content {
                (&sig::ECDSA_P256_SHA256_ASN1, sct::SIG_ECDSA)
            } else if key_oid == oid::RSA_ENCRYPTION.content {
                (&sig::RSA_PKCS1_2048_8192_SHA256, sct::SIG_RSA)
            } else {
                return Err("CT log keys must be ECDSA P-256 or RSA".into());
            };
        let d = digest::digest(&digest::SHA256, spki);
        let mut log_id = [0u8; 32];
        log_id.copy_from_slice(d.as_ref());
        Ok(LogPublicKey {
            spki: spki.to_vec(),
            log_id,
            alg,
            key_bits,
            signature_algorithm,
        })
    }

    /// From a PEM `PUBLIC KEY` block.
    pub fn from_pem(text: &str) -> Result<LogPublicKey, String> {
        let block = crate::model::pem::parse_all(text)
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|b| b.label == "PUBLIC KEY")
            .ok_or("no PUBLIC KEY block")?;
        LogPublicKey::from_spki_der(&block.der)
    }

    pub fn log_id(&self) -> &[u8; 32] {
        &self.log_id
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Verifies a signature over `message` made by this log.
    pub fn verify(&self, message: &[u8], signed: &sct::DigitallySigned) -> bool {
        signed.hash_algorithm == sct::HASH_SHA256
            && signed.signature_algorithm == self.signature_algorithm
            && UnparsedPublicKey::new(self.alg, &self.key_bits)
                .verify(message, &signed.signature)
                .is_ok()
    }

    /// Verifies an SCT for `entry`: right log id and a valid signature over the exact
    /// RFC 6962 input, extensions included.
    pub fn verify_sct(&self, s: &Sct, entry: &Entry<'_>) -> bool {
        s.log_id == self.log_id
            && self.verify(
                &sct::signature_input(s.timestamp, entry, &s.extensions),
                &s.signature,
            )
    }
}

/// SHA-256 of DER bytes, as CT uses for issuer key hashes and chain fingerprints.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the authority logs precertificates: the embedded log or a remote RFC 6962 log.
pub trait Submitter: Send + Sync {
    /// A metrics label: `embedded` or the log URL.
    fn label(&self) -> &str;
    /// The key the returned SCTs must verify with, if known.
    fn public_key(&self) -> Option<&LogPublicKey>;
    /// `add-pre-chain`: `chain[0]` is the precertificate, then its issuer(s) up to the root.
    fn add_pre_chain<'a>(&'a self, chain: &'a [Vec<u8>]) -> BoxFuture<'a, Result<Sct, CtError>>;
}

pub mod checkpoint;
pub mod client;
pub mod entry;
pub mod log;
pub mod merkle;
pub mod tiles;

/// The embedded log as the authority's [`Submitter`].
pub struct EmbeddedLog(pub std::sync::Arc<log::Log>);

impl Submitter for EmbeddedLog {
    fn label(&self) -> &str {
        "embedded"
    }

    fn public_key(&self) -> Option<&LogPublicKey> {
        Some(self.0.public_key())
    }

    fn add_pre_chain<'a>(&'a self, chain: &'a [Vec<u8>]) -> BoxFuture<'a, Result<Sct, CtError>> {
        Box::pin(async move {
            self.0
                .submit_own_precertificate(chain)
                .await
                .map_err(|e| match e {
                    log::LogError::BadRequest(m) => CtError::Rejected(m),
                    other => CtError::Unavailable(other.to_string()),
                })
        })
    }
}

/// An SCT embedded in a final certificate, with the precertificate entry it signs.
#[derive(Debug, Clone)]
pub struct EmbeddedSct {
    pub sct: Sct,
    pub issuer_key_hash: [u8; 32],
    /// The certificate's TBS with the SCT-list extension removed.
    pub tbs: Vec<u8>,
}

impl EmbeddedSct {
    pub fn entry(&self) -> crate::model::sct::Entry<'_> {
        crate::model::sct::Entry::Precert {
            issuer_key_hash: &self.issuer_key_hash,
            tbs: &self.tbs,
        }
    }

    /// The RFC 6962 leaf hash of the entry this SCT promises.
    pub fn leaf_hash(&self) -> merkle::Hash {
        let te = crate::model::sct::timestamped_entry(
            self.sct.timestamp,
            &self.entry(),
            &self.sct.extensions,
        );
        merkle::leaf_hash(&crate::model::sct::merkle_tree_leaf(&te))
    }
}

/// Extracts the SCTs embedded in `leaf` (DER), issued by `issuer` (DER), the way a
/// verifier does: TBS minus the SCT-list extension, SHA-256 of the issuer's key.
pub fn embedded_scts(leaf: &[u8], issuer: &[u8]) -> Result<Vec<EmbeddedSct>, String> {
    use x509_parser::prelude::*;
    let (_, cert) = parse_x509_certificate(leaf).map_err(|e| format!("leaf: {e}"))?;
    let (_, iss) = parse_x509_certificate(issuer).map_err(|e| format!("issuer: {e}"))?;
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.as_bytes() == crate::model::oid::CT_SCT_LIST.content)
        .ok_or("the certificate has no embedded SCT list")?;
    let inner = der::read_single(ext.value, der::TAG_OCTET_STRING).map_err(|e| e.to_string())?;
    let scts = crate::model::sct::parse_sct_list(inner.content).map_err(|e| e.to_string())?;
    let tbs = der::tbs_without_extension(
        cert.tbs_certificate.as_ref(),
        &crate::model::oid::CT_SCT_LIST.tlv(),
    )
    .map_err(|e| e.to_string())?
    .ok_or("the certificate has no embedded SCT list")?;
    let ikh = sha256(iss.public_key().raw);
    Ok(scts
        .into_iter()
        .map(|sct| EmbeddedSct {
            sct,
            issuer_key_hash: ikh,
            tbs: tbs.clone(),
        })
        .collect())
}
