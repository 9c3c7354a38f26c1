//! Where private keys live: a PEM file (in memory once loaded), a PKCS#11 token (HSM), or
//! AWS KMS. A [`KeyRef`] names a key; [`open`] turns it into a [`Signer`] wrapped in
//! [`Metered`], so every backend is measured the same way and a slow or failing one fails
//! closed within its deadline instead of holding a worker.
//!
//! Key references, one spelling for the CA and the CT log: a path (`/etc/brevis/key.pem`),
//! `pkcs11:LABEL` (the private key with that `CKA_LABEL` in the token of the PKCS#11
//! config), or `awskms://[ENDPOINT]/KEY` (Fulcio's URI: a key id, `alias/NAME`, or an
//! ARN). `gcpkms://`, `azurekms://` and `hashivault://` are recognised and refused.

#[cfg(feature = "kms")]
pub mod kms;
pub mod pkcs11;

use crate::metrics;
use crate::model::BoxFuture;
use crate::model::signer::{LocalSigner, Signer, SignerError, SigningAlgorithm};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Default longest one signature may take at a remote backend.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A private key's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// An unencrypted (or passphrase-protected, for the CA) PEM file.
    File(PathBuf),
    /// The private key labelled so in the configured PKCS#11 token.
    Pkcs11 {
        /// `CKA_LABEL` of the private key.
        label: String,
    },
    /// An AWS KMS key: `awskms://[ENDPOINT]/KEY`.
    AwsKms(String),
}

impl KeyRef {
    /// Parses a key reference; a plain path is a file.
    pub fn parse(spec: &str) -> Result<KeyRef, String> {
        if let Some(label) = spec.strip_prefix("pkcs11:") {
            if label.is_empty() {
                return Err("pkcs11: needs the key's label (pkcs11:LABEL)".into());
            }
            return Ok(KeyRef::Pkcs11 {
                label: label.to_string(),
            });
        }
        if spec.starts_with("awskms://") {
            return Ok(KeyRef::AwsKms(spec.to_string()));
        }
        for scheme in ["gcpkms://", "azurekms://", "hashivault://"] {
            if spec.starts_with(scheme) {
                return Err(format!(
                    "{scheme} keys are not built into brevis; supported: a PEM file path, pkcs11:LABEL (with --pkcs11-config-path) and awskms://"
                ));
            }
        }
        if spec.is_empty() {
            return Err("empty key reference".into());
        }
        Ok(KeyRef::File(PathBuf::from(spec)))
    }

    /// The reference as given, for logs and errors (never a secret).
    pub fn describe(&self) -> String {
        match self {
            KeyRef::File(p) => p.display().to_string(),
            KeyRef::Pkcs11 { label } => format!("pkcs11:{label}"),
            KeyRef::AwsKms(uri) => uri.clone(),
        }
    }
}

/// Why a key could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// A PKCS#11 token or key problem.
    #[error(transparent)]
    Pkcs11(#[from] pkcs11::Pkcs11Error),
    /// A `pkcs11:` key without `--pkcs11-config-path`.
    #[error("{0} needs a PKCS#11 configuration (--pkcs11-config-path)")]
    NoPkcs11Config(String),
    /// An AWS KMS problem.
    #[error("AWS KMS key {uri}: {reason}")]
    Kms {
        /// The key's URI.
        uri: String,
        /// What went wrong.
        reason: String,
    },
    /// This build has no AWS KMS support.
    #[error("{0}: this brevis was built without AWS KMS support (build with --features kms)")]
    KmsNotBuilt(String),
    /// A key file is not usable here (files are loaded by the caller).
    #[error("{0} is a file; load it as a key file")]
    File(String),
}

/// The settings the remote backends share.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The PKCS#11 module and token, for `pkcs11:` keys.
    pub pkcs11: Option<pkcs11::Pkcs11Config>,
    /// Longest one signature may take.
    pub timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            pkcs11: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Opens a key held outside the process (`pkcs11:` or `awskms://`), measured under `role`
/// (`ca` or `ctlog`).
pub fn open(
    key: &KeyRef,
    options: &RemoteOptions,
    role: &'static str,
) -> Result<Arc<dyn Signer>, OpenError> {
    let inner: Arc<dyn Signer> = match key {
        KeyRef::File(p) => return Err(OpenError::File(p.display().to_string())),
        KeyRef::Pkcs11 { label } => {
            let config = options
                .pkcs11
                .clone()
                .ok_or_else(|| OpenError::NoPkcs11Config(key.describe()))?;
            Arc::new(pkcs11::HsmSigner::open(config, label, options.timeout)?)
        }
        #[cfg(feature = "kms")]
        KeyRef::AwsKms(uri) => Arc::new(kms::KmsSigner::open(uri, options.timeout)?),
        #[cfg(not(feature = "kms"))]
        KeyRef::AwsKms(uri) => return Err(OpenError::KmsNotBuilt(uri.clone())),
    };
    Ok(Arc::new(Metered::new(inner, role)))
}

/// Wraps a key loaded from a file in the same measurement as the remote ones.
pub fn metered_local(signer: LocalSigner, role: &'static str) -> Arc<dyn Signer> {
    Arc::new(Metered::new(Arc::new(signer), role))
}

/// Counts and times every signature by role and backend
/// (`brevis_signer_operations_total`, `brevis_signer_duration_seconds`).
pub struct Metered {
    inner: Arc<dyn Signer>,
    role: &'static str,
}

impl Metered {
    /// Measures `inner` under `role`.
    pub fn new(inner: Arc<dyn Signer>, role: &'static str) -> Metered {
        for outcome in ["ok", "error", "timeout"] {
            metrics::SIGNER_OPERATIONS.with_label_values(&[role, inner.backend(), outcome]);
        }
        Metered { inner, role }
    }

    fn record(&self, started: Instant, result: &Result<impl Sized, SignerError>, n: usize) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(SignerError::Timeout) => "timeout",
            Err(_) => "error",
        };
        metrics::SIGNER_OPERATIONS
            .with_label_values(&[self.role, self.inner.backend(), outcome])
            .inc_by(n as u64);
        metrics::SIGNER_LATENCY
            .with_label_values(&[self.role, self.inner.backend()])
            .observe(started.elapsed().as_secs_f64());
    }
}

impl Signer for Metered {
    fn algorithm(&self) -> SigningAlgorithm {
        self.inner.algorithm()
    }

    fn public_key_spki(&self) -> &[u8] {
        self.inner.public_key_spki()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let t = Instant::now();
        let r = self.inner.sign(message);
        self.record(t, &r, 1);
        r
    }

    fn sign_async<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, SignerError>> {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.sign_async(message).await;
            self.record(t, &r, 1);
            r
        })
    }

    fn sign_many(&self, messages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, SignerError> {
        let t = Instant::now();
        let r = self.inner.sign_many(messages);
        self.record(t, &r, messages.len());
        r
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

/// How long a key check's outcome answers readiness probes, so probes cannot make a key
/// sign in a loop.
pub const CHECK_TTL: Duration = Duration::from_secs(5);

/// Readiness of a key: signs a fixed message at most once per [`CHECK_TTL`] and
/// remembers the outcome. Call it off the request workers (it waits for the signer's
/// deadline when the backend hangs).
pub struct KeyCheck {
    signer: Arc<dyn Signer>,
    last: std::sync::Mutex<Option<(Instant, Result<(), SignerError>)>>,
}

impl KeyCheck {
    /// Checks `signer`.
    pub fn new(signer: Arc<dyn Signer>) -> KeyCheck {
        KeyCheck {
            signer,
            last: std::sync::Mutex::new(None),
        }
    }

    /// Whether the key signed the last time it was tried (within [`CHECK_TTL`]).
    pub fn check(&self) -> Result<(), SignerError> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, result)) = last.as_ref()
            && at.elapsed() < CHECK_TTL
        {
            return result.clone();
        }
        let result = self.signer.sign(b"brevis key check").map(|_| ());
        *last = Some((Instant::now(), result.clone()));
        result
    }
}

/// A raw ECDSA signature (`r || s`, each `len` bytes) as a DER `Ecdsa-Sig-Value`.
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, SignerError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(SignerError::BadSignature(format!(
            "an ECDSA signature of {} bytes",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    use crate::model::der;
    Ok(der::sequence(&[
        &der::unsigned_integer(r),
        &der::unsigned_integer(s),
    ]))
}

/// The digest a signing algorithm signs (the host hashes for tokens that only sign
/// digests).
pub(crate) fn digest(algorithm: SigningAlgorithm, message: &[u8]) -> Vec<u8> {
    use aws_lc_rs::digest;
    let alg = match algorithm {
        SigningAlgorithm::EcdsaP384Sha384 => &digest::SHA384,
        SigningAlgorithm::EcdsaP521Sha512 => &digest::SHA512,
        _ => &digest::SHA256,
    };
    digest::digest(alg, message).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_references_parse_and_unsupported_schemes_say_what_is_supported() {
        assert_eq!(
            KeyRef::parse("/etc/k.pem"),
            Ok(KeyRef::File("/etc/k.pem".into()))
        );
        assert_eq!(
            KeyRef::parse("pkcs11:brevis-ca"),
            Ok(KeyRef::Pkcs11 {
                label: "brevis-ca".into()
            })
        );
        assert!(KeyRef::parse("pkcs11:").is_err());
        assert_eq!(
            KeyRef::parse("awskms:///alias/ca"),
            Ok(KeyRef::AwsKms("awskms:///alias/ca".into()))
        );
        let e =
            KeyRef::parse("gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k").unwrap_err();
        assert!(
            e.contains("not built into brevis") && e.contains("awskms://"),
            "{e}"
        );
        assert!(KeyRef::parse("hashivault://k").is_err());
        assert!(KeyRef::parse("azurekms://v.vault.azure.net/k").is_err());
    }

    #[test]
    fn raw_ecdsa_signatures_become_der() {
        let raw: Vec<u8> = [vec![0x80; 32], vec![0x01; 32]].concat();
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x45, 0x02, 0x21]);
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_err());
    }
}
