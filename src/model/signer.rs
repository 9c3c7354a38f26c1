//! Signing keys (the CA's and the CT log's), behind a small trait: [`LocalSigner`] holds
//! the key in memory; `crate::signers` holds the backends that keep it elsewhere (PKCS#11
//! tokens, AWS KMS), which also sign asynchronously and with a deadline.

use crate::model::der;
use crate::model::oid;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use std::fmt;
use thiserror::Error;

/// Signature algorithms a CA key can sign certificates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384Sha384,
    /// ECDSA on P-521 with SHA-512.
    EcdsaP521Sha512,
    /// RSA PKCS#1 v1.5 with SHA-256 (generated keys are 3072-bit).
    RsaPkcs1Sha256,
    /// Ed25519 (PureEdDSA).
    Ed25519,
}

impl SigningAlgorithm {
    /// The DER `AlgorithmIdentifier` that goes into `signature` and `signatureAlgorithm`.
    pub(crate) fn algorithm_identifier(self) -> Vec<u8> {
        match self {
            SigningAlgorithm::EcdsaP256Sha256 => der::sequence(&[&oid::ECDSA_SHA256.tlv()]),
            SigningAlgorithm::EcdsaP384Sha384 => der::sequence(&[&oid::ECDSA_SHA384.tlv()]),
            SigningAlgorithm::EcdsaP521Sha512 => der::sequence(&[&oid::ECDSA_SHA512.tlv()]),
            SigningAlgorithm::RsaPkcs1Sha256 => {
                der::sequence(&[&oid::RSA_SHA256.tlv(), &[der::TAG_NULL, 0]])
            }
            SigningAlgorithm::Ed25519 => der::sequence(&[&oid::ED25519.tlv()]),
        }
    }

    pub(crate) fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            SigningAlgorithm::EcdsaP256Sha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            SigningAlgorithm::EcdsaP384Sha384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            SigningAlgorithm::EcdsaP521Sha512 => &rcgen::PKCS_ECDSA_P521_SHA512,
            SigningAlgorithm::RsaPkcs1Sha256 => &rcgen::PKCS_RSA_SHA256,
            SigningAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

/// Why a signing key could not be loaded, generated or used.
#[derive(Debug, Error, Clone)]
pub enum SignerError {
    /// The private key is malformed or of an unsupported type (the reason carried).
    #[error("unsupported or malformed private key: {0}")]
    BadKey(String),
    /// Key generation or a signature failed inside the crypto library.
    #[error("signing failed")]
    Failed,
    /// The key's holder (an HSM, a KMS) cannot be reached or refused the operation for
    /// now; retrying later may work.
    #[error("the signing backend is unavailable: {0}")]
    Unavailable(String),
    /// The key's holder did not answer within the signer's deadline.
    #[error("the signing backend did not answer in time")]
    Timeout,
    /// The key's holder answered with something that is not a signature of this key.
    #[error("the signing backend returned an unusable signature: {0}")]
    BadSignature(String),
}

impl SignerError {
    /// Worth a retry (the backend is down or slow), as opposed to a broken key.
    pub fn is_transient(&self) -> bool {
        matches!(self, SignerError::Unavailable(_) | SignerError::Timeout)
    }
}

/// Something that signs certificates and tree heads: the CA's key, the CT log's key.
pub trait Signer: Send + Sync + 'static {
    /// The algorithm this key signs with.
    fn algorithm(&self) -> SigningAlgorithm;
    /// DER SubjectPublicKeyInfo of the signing key.
    fn public_key_spki(&self) -> &[u8];
    /// Signs `message`; ECDSA signatures are DER `Ecdsa-Sig-Value`. Remote backends block
    /// the calling thread at most for their deadline.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
    /// Signs without blocking the calling task (remote backends); in-memory keys sign
    /// at once.
    fn sign_async<'a>(
        &'a self,
        message: &'a [u8],
    ) -> crate::model::BoxFuture<'a, Result<Vec<u8>, SignerError>> {
        Box::pin(std::future::ready(self.sign(message)))
    }
    /// Signs several messages (a batch of SCTs); remote backends overlap the requests.
    fn sign_many(&self, messages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, SignerError> {
        messages.iter().map(|m| self.sign(m)).collect()
    }
    /// Where the key lives, a closed label for metrics: `memory`, `pkcs11`, `awskms`.
    fn backend(&self) -> &'static str {
        "memory"
    }
}

enum Key {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key held in process memory (file CA, ephemeral CA, CT log key).
pub struct LocalSigner {
    key: Key,
    algorithm: SigningAlgorithm,
    spki: Vec<u8>,
    key_bits: Vec<u8>,
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSigner")
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

const EC_CURVES: [(SigningAlgorithm, &EcdsaSigningAlgorithm, oid::Oid); 3] = [
    (
        SigningAlgorithm::EcdsaP256Sha256,
        &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
        oid::CURVE_P256,
    ),
    (
        SigningAlgorithm::EcdsaP384Sha384,
        &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
        oid::CURVE_P384,
    ),
    (
        SigningAlgorithm::EcdsaP521Sha512,
        &sig::ECDSA_P521_SHA512_ASN1_SIGNING,
        oid::CURVE_P521,
    ),
];

impl LocalSigner {
    /// Generates a fresh key.
    pub fn generate(algorithm: SigningAlgorithm) -> Result<LocalSigner, SignerError> {
        let rng = SystemRandom::new();
        let pkcs8 = match algorithm {
            SigningAlgorithm::RsaPkcs1Sha256 => RsaKeyPair::generate(KeySize::Rsa3072)
                .and_then(|k| k.as_der())
                .map(|d| d.as_ref().to_vec()),
            SigningAlgorithm::Ed25519 => {
                Ed25519KeyPair::generate_pkcs8v1(&rng).map(|d| d.as_ref().to_vec())
            }
            ec => {
                let (_, alg, _) = EC_CURVES
                    .iter()
                    .find(|(a, _, _)| *a == ec)
                    .ok_or(SignerError::Failed)?;
                EcdsaKeyPair::generate_pkcs8(alg, &rng).map(|d| d.as_ref().to_vec())
            }
        }
        .map_err(|_| SignerError::Failed)?;
        LocalSigner::from_pkcs8(&pkcs8)
    }

    /// An unencrypted PKCS#8 `PrivateKeyInfo` (any of the supported key types).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<LocalSigner, SignerError> {
        for (algorithm, alg, curve) in EC_CURVES {
            if let Ok(kp) = EcdsaKeyPair::from_pkcs8(alg, pkcs8) {
                return Ok(LocalSigner::ecdsa(kp, algorithm, curve));
            }
        }
        if let Ok(kp) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8) {
            return Ok(LocalSigner::ed25519(kp));
        }
        match RsaKeyPair::from_pkcs8(pkcs8) {
            Ok(kp) => Ok(LocalSigner::rsa(kp)),
            Err(e) => Err(SignerError::BadKey(e.to_string())),
        }
    }

    /// A SEC1 `ECPrivateKey` (`EC PRIVATE KEY`).
    pub(crate) fn from_sec1(sec1: &[u8]) -> Result<LocalSigner, SignerError> {
        for (algorithm, alg, curve) in EC_CURVES {
            if let Ok(kp) = EcdsaKeyPair::from_private_key_der(alg, sec1) {
                return Ok(LocalSigner::ecdsa(kp, algorithm, curve));
            }
        }
        Err(SignerError::BadKey(
            "not an EC private key on P-256, P-384 or P-521".into(),
        ))
    }

    /// A PKCS#1 `RSAPrivateKey` (`RSA PRIVATE KEY`).
    pub(crate) fn from_pkcs1(pkcs1: &[u8]) -> Result<LocalSigner, SignerError> {
        RsaKeyPair::from_der(pkcs1)
            .map(LocalSigner::rsa)
            .map_err(|e| SignerError::BadKey(e.to_string()))
    }

    fn ecdsa(kp: EcdsaKeyPair, algorithm: SigningAlgorithm, curve: oid::Oid) -> LocalSigner {
        let point = kp.public_key().as_ref().to_vec();
        let alg_id = der::sequence(&[&oid::EC_PUBLIC_KEY.tlv(), &curve.tlv()]);
        LocalSigner {
            spki: der::sequence(&[&alg_id, &der::bit_string(&point)]),
            key_bits: point,
            key: Key::Ecdsa(kp),
            algorithm,
        }
    }

    fn ed25519(kp: Ed25519KeyPair) -> LocalSigner {
        let point = kp.public_key().as_ref().to_vec();
        let alg_id = der::sequence(&[&oid::ED25519.tlv()]);
        LocalSigner {
            spki: der::sequence(&[&alg_id, &der::bit_string(&point)]),
            key_bits: point,
            key: Key::Ed25519(kp),
            algorithm: SigningAlgorithm::Ed25519,
        }
    }

    fn rsa(kp: RsaKeyPair) -> LocalSigner {
        let pkcs1 = kp.public_key().as_ref().to_vec();
        let alg_id = der::sequence(&[&oid::RSA_ENCRYPTION.tlv(), &[der::TAG_NULL, 0]]);
        LocalSigner {
            spki: der::sequence(&[&alg_id, &der::bit_string(&pkcs1)]),
            key_bits: pkcs1,
            key: Key::Rsa(kp),
            algorithm: SigningAlgorithm::RsaPkcs1Sha256,
        }
    }

    /// The private key as unencrypted PKCS#8 DER, for writing key files.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, SignerError> {
        match &self.key {
            Key::Ecdsa(kp) => kp.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Key::Ed25519(kp) => kp.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Key::Rsa(kp) => kp.as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| SignerError::Failed)
    }
}

impl Signer for LocalSigner {
    fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    fn public_key_spki(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        crate::model::count::record(crate::model::count::CryptoOp::Sign);
        let rng = SystemRandom::new();
        match &self.key {
            Key::Ecdsa(kp) => kp
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignerError::Failed),
            Key::Ed25519(kp) => Ok(kp.sign(message).as_ref().to_vec()),
            Key::Rsa(kp) => {
                let mut out = vec![0u8; kp.public_modulus_len()];
                kp.sign(&sig::RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .map_err(|_| SignerError::Failed)?;
                Ok(out)
            }
        }
    }
}

/// Lets rcgen sign CA certificates with any [`LocalSigner`].
impl rcgen::PublicKeyData for LocalSigner {
    fn der_bytes(&self) -> &[u8] {
        &self.key_bits
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm.rcgen()
    }
}

impl rcgen::SigningKey for LocalSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Signer::sign(self, msg).map_err(|_| rcgen::Error::RingUnspecified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PublicKey;

    #[test]
    fn every_algorithm_round_trips_through_pkcs8_and_verifies() {
        for alg in [
            SigningAlgorithm::EcdsaP256Sha256,
            SigningAlgorithm::EcdsaP384Sha384,
            SigningAlgorithm::EcdsaP521Sha512,
            SigningAlgorithm::Ed25519,
        ] {
            let s = LocalSigner::generate(alg).unwrap();
            let again = LocalSigner::from_pkcs8(&s.to_pkcs8().unwrap()).unwrap();
            assert_eq!(again.algorithm(), alg);
            assert_eq!(again.public_key_spki(), s.public_key_spki());
            let key = PublicKey::from_spki_der(s.public_key_spki()).unwrap();
            let signature = s.sign(b"tbs").unwrap();
            let scheme = match alg {
                SigningAlgorithm::EcdsaP256Sha256 => {
                    crate::model::SignatureScheme::Ecdsa(crate::model::HashAlg::Sha256)
                }
                SigningAlgorithm::EcdsaP384Sha384 => {
                    crate::model::SignatureScheme::Ecdsa(crate::model::HashAlg::Sha384)
                }
                SigningAlgorithm::EcdsaP521Sha512 => {
                    crate::model::SignatureScheme::Ecdsa(crate::model::HashAlg::Sha512)
                }
                _ => crate::model::SignatureScheme::Ed25519,
            };
            assert!(key.verify(scheme, b"tbs", &signature), "{alg:?}");
        }
    }
}
