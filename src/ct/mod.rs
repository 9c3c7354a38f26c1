//! Certificate Transparency: log keys and SCT verification, the submission interface the
//! authority uses, a client for remote RFC 6962 logs, and the embedded log.

use crate::model::der;
use crate::model::sct::{self, Entry, Sct};
use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use thiserror::Error;

/// Why a precertificate did not come back with a valid SCT; the request fails either way.
#[derive(Debug, Error)]
pub(crate) enum CtError {
    /// The embedded log refused or could not take the submission.
    #[error("the embedded CT log")]
    Embedded(#[from] log::LogError),
    /// A remote log could not be reached, refused, or answered something that is not an
    /// SCT.
    #[error(transparent)]
    Remote(#[from] client::SubmitError),
    /// The SCT's signature does not verify with the log's public key.
    #[error("the SCT from {log} does not verify with the log's public key")]
    BadSignature { log: String },
    /// With several logs: fewer than the required number returned a valid SCT in time.
    #[error(
        "only {got} of the {want} CT logs required returned a valid SCT; first failure: {first}"
    )]
    TooFewScts {
        /// Valid SCTs obtained.
        got: usize,
        /// Valid SCTs required (`--ct-log-min-scts`).
        want: usize,
        /// The first failure, for the log (not the client).
        first: String,
    },
}

impl CtError {
    /// The log cannot take submissions for now (its storage is down or failing over, its
    /// queue is full, it is stopping): worth a retry, unlike a refusal.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            CtError::Embedded(e) => e.is_transient(),
            // Some logs are down or slow: another attempt may find enough of them.
            CtError::TooFewScts { .. } => true,
            _ => false,
        }
    }
}

/// Why a public key is not a usable CT log key.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LogKeyError {
    /// The key is not a well-formed DER SubjectPublicKeyInfo.
    #[error("not a DER SubjectPublicKeyInfo")]
    NotSpki(#[source] der::DerError),
    /// The key is neither ECDSA P-256 nor RSA, the types RFC 6962 allows.
    #[error("CT log keys must be ECDSA P-256 or RSA")]
    Unsupported,
    /// The PEM text has no `PUBLIC KEY` block.
    #[error("no PUBLIC KEY block")]
    NoPublicKey,
}

/// Why the SCTs of a certificate could not be extracted.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EmbeddedSctError {
    /// The leaf or the issuer certificate is not a parsable X.509 certificate.
    #[error("the {which} certificate does not parse: {reason}")]
    Unparsable {
        /// `"leaf"` or `"issuer"`.
        which: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// The leaf has no SCT-list extension (OID 1.3.6.1.4.1.11129.2.4.2).
    #[error("the certificate has no embedded SCT list")]
    NoSctList,
    /// The SCT-list extension is not a DER OCTET STRING, or the TBS cannot be re-encoded
    /// without it.
    #[error("the SCT list extension is malformed")]
    Der(#[source] der::DerError),
    /// The `SignedCertificateTimestampList` inside the extension does not parse.
    #[error("the SCT list is malformed")]
    Sct(#[source] crate::model::sct::SctError),
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
    pub fn from_spki_der(spki: &[u8]) -> Result<LogPublicKey, LogKeyError> {
        crate::model::count::record(crate::model::count::CryptoOp::ParsePublicKey);
        use crate::model::oid;
        let outer = der::read_single(spki, der::TAG_SEQUENCE).map_err(LogKeyError::NotSpki)?;
        let fields = der::children(outer.content).map_err(LogKeyError::NotSpki)?;
        let (Some(alg), Some(bits)) = (fields.first(), fields.get(1)) else {
            return Err(LogKeyError::NotSpki(der::DerError("two fields")));
        };
        let alg_fields = der::children(alg.content).map_err(LogKeyError::NotSpki)?;
        let key_oid = alg_fields.first().map(|t| t.content).unwrap_or_default();
        let param = alg_fields.get(1).map(|t| t.content).unwrap_or_default();
        let key_bits = bits
            .content
            .get(1..)
            .ok_or(LogKeyError::NotSpki(der::DerError("empty public key")))?
            .to_vec();
        let (alg, signature_algorithm): (&'static dyn VerificationAlgorithm, u8) =
            if key_oid == oid::EC_PUBLIC_KEY.content && param == oid::CURVE_P256.content {
                (&sig::ECDSA_P256_SHA256_ASN1, sct::SIG_ECDSA)
            } else if key_oid == oid::RSA_ENCRYPTION.content {
                (&sig::RSA_PKCS1_2048_8192_SHA256, sct::SIG_RSA)
            } else {
                return Err(LogKeyError::Unsupported);
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
    pub fn from_pem(text: &str) -> Result<LogPublicKey, LogKeyError> {
        let block = crate::model::pem::parse_all(text)
            .ok()
            .and_then(|blocks| blocks.into_iter().find(|b| b.label == "PUBLIC KEY"))
            .ok_or(LogKeyError::NoPublicKey)?;
        LogPublicKey::from_spki_der(&block.der)
    }

    /// The RFC 6962 log ID: SHA-256 of the log's DER SubjectPublicKeyInfo.
    pub fn log_id(&self) -> &[u8; 32] {
        &self.log_id
    }

    /// The log ID as standard base64, as log lists and trust roots write it.
    pub fn log_id_base64(&self) -> String {
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, self.log_id)
    }

    pub(crate) fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Verifies a signature over `message` made by this log.
    pub(crate) fn verify(&self, message: &[u8], signed: &sct::DigitallySigned) -> bool {
        crate::model::count::record(crate::model::count::CryptoOp::VerifyLogSignature);
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

pub(crate) use crate::model::BoxFuture;

/// Where the authority logs precertificates: the embedded log or a remote RFC 6962 log.
pub(crate) trait Submitter: Send + Sync {
    /// A metrics label: `embedded` or the log URL.
    fn label(&self) -> &str;
    /// The key the returned SCTs must verify with, if known.
    fn public_key(&self) -> Option<&LogPublicKey>;
    /// `add-pre-chain`: `chain[0]` is the precertificate, then its issuer(s) up to the root.
    fn add_pre_chain<'a>(&'a self, chain: &'a [Vec<u8>]) -> BoxFuture<'a, Result<Sct, CtError>>;
    /// `add-pre-chain` for a precertificate this process's CA just signed, with the entry
    /// the CA already holds: the SHA-256 of its issuer's key and its TBS without the
    /// poison. A log in another process is sent the chain alone.
    fn add_own_pre_chain<'a>(
        &'a self,
        chain: &'a [Vec<u8>],
        issuer_key_hash: &'a [u8; 32],
        unpoisoned_tbs: &'a [u8],
    ) -> BoxFuture<'a, Result<Sct, CtError>> {
        let _ = (issuer_key_hash, unpoisoned_tbs);
        self.add_pre_chain(chain)
    }
}

pub mod checkpoint;
pub mod client;
pub mod entry;
pub mod facts;
pub mod log;
pub mod merkle;
pub mod tiles;

/// The embedded log as the authority's [`Submitter`].
pub(crate) struct EmbeddedLog(pub std::sync::Arc<log::Log>);

impl Submitter for EmbeddedLog {
    fn label(&self) -> &str {
        "embedded"
    }

    fn public_key(&self) -> Option<&LogPublicKey> {
        Some(self.0.public_key())
    }

    fn add_pre_chain<'a>(&'a self, chain: &'a [Vec<u8>]) -> BoxFuture<'a, Result<Sct, CtError>> {
        Box::pin(async move { Ok(self.0.submit_own_precertificate(chain).await?) })
    }

    fn add_own_pre_chain<'a>(
        &'a self,
        chain: &'a [Vec<u8>],
        issuer_key_hash: &'a [u8; 32],
        unpoisoned_tbs: &'a [u8],
    ) -> BoxFuture<'a, Result<Sct, CtError>> {
        Box::pin(async move {
            Ok(self
                .0
                .submit_own_prepared_precertificate(chain, issuer_key_hash, unpoisoned_tbs)
                .await?)
        })
    }
}

/// An SCT embedded in a final certificate, with the precertificate entry it signs.
#[derive(Debug, Clone)]
pub struct EmbeddedSct {
    /// The SCT as parsed from the certificate's SCT list.
    pub sct: Sct,
    /// SHA-256 of the issuer's SubjectPublicKeyInfo (RFC 6962 `issuer_key_hash`).
    pub issuer_key_hash: [u8; 32],
    /// The certificate's TBS with the SCT-list extension removed.
    pub tbs: Vec<u8>,
}

impl EmbeddedSct {
    /// The precertificate entry this SCT signs (RFC 6962 `PreCert`: issuer key hash and TBS).
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
pub fn embedded_scts(leaf: &[u8], issuer: &[u8]) -> Result<Vec<EmbeddedSct>, EmbeddedSctError> {
    use x509_parser::prelude::*;
    let unparsable = |which| {
        move |e: x509_parser::nom::Err<X509Error>| EmbeddedSctError::Unparsable {
            which,
            reason: e.to_string(),
        }
    };
    let (_, cert) = parse_x509_certificate(leaf).map_err(unparsable("leaf"))?;
    let (_, iss) = parse_x509_certificate(issuer).map_err(unparsable("issuer"))?;
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.as_bytes() == crate::model::oid::CT_SCT_LIST.content)
        .ok_or(EmbeddedSctError::NoSctList)?;
    let inner =
        der::read_single(ext.value, der::TAG_OCTET_STRING).map_err(EmbeddedSctError::Der)?;
    let scts = crate::model::sct::parse_sct_list(inner.content).map_err(EmbeddedSctError::Sct)?;
    let tbs = crate::model::x509::tbs_without(
        cert.tbs_certificate.as_ref(),
        &crate::model::oid::CT_SCT_LIST,
    )
    .map_err(EmbeddedSctError::Der)?
    .ok_or(EmbeddedSctError::NoSctList)?;
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
