//! Optional TLS for the API listener (rustls). The certificate is served through a
//! resolver holding the current certificate and key, so a reload swaps them for new
//! connections without restarting the listener; connections already open keep theirs.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The certificate and key files of the listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// Why the listener's certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate or key file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file is not valid PEM.
    #[error("{path}: not a PEM certificate chain")]
    Chain {
        /// The certificate file.
        path: PathBuf,
        /// Why the PEM could not be parsed.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0}: no certificate found")]
    NoCertificate(PathBuf),
    /// The key file holds no private key in a supported format.
    #[error("{path}: no usable private key")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why no key could be read.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The key is not the leaf certificate's, or rustls cannot use it.
    #[error("{cert} and {key} do not belong together")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The error rustls reported.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused to build the server configuration.
    #[error("the TLS configuration")]
    Config(#[source] rustls::Error),
}

/// Loads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, SEC1 or
/// PKCS#1), and checks that they belong together.
pub(crate) fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(&files.cert)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Chain {
            path: files.cert.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key =
        PrivateKeyDer::from_pem_slice(&read(&files.key)?).map_err(|source| TlsError::Key {
            path: files.key.clone(),
            source,
        })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(certs, key, &provider).map_err(|source| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    })
}

/// When the served certificate (the leaf) expires, in Unix seconds.
pub(crate) fn not_after(key: &CertifiedKey) -> Option<i64> {
    let leaf = key.cert.first()?;
    x509_parser::parse_x509_certificate(leaf)
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp())
}

/// Serves whatever certificate it currently holds.
#[derive(Debug)]
pub(crate) struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Resolver {
    pub(crate) fn new(key: CertifiedKey) -> Resolver {
        Resolver {
            current: RwLock::new(Arc::new(key)),
        }
    }

    pub(crate) fn replace(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// A server configuration (TLS 1.2 and 1.3, HTTP/1.1) served by `resolver`.
pub(crate) fn server_config(resolver: Arc<Resolver>) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(TlsError::Config)?
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
