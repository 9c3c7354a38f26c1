//! Reading the identity configuration from its file (or Fulcio's built-in set), with
//! brevis's policy on top of Fulcio's validation: issuers are contacted over https only,
//! unless the operator allows http for local testing.

use super::identity::{ConfigError, IdentityConfig};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the identity configuration could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The named configuration file could not be read.
    #[error("cannot read identity config {path}")]
    Read {
        /// The configuration file's path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The issuance policy file could not be read.
    #[error("cannot read issuance policy {path}")]
    ReadPolicy {
        /// The policy file's path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The issuance policy does not parse, or does not fit the identity config.
    #[error("issuance policy {path}")]
    InvalidPolicy {
        /// The policy file.
        path: PathBuf,
        /// What is wrong, and where in the file.
        #[source]
        source: ConfigError,
    },
    /// The configuration does not parse or validate, or names an issuer over plain http when that
    /// is not allowed.
    #[error("identity config {origin}")]
    Invalid {
        /// The file, or `built-in`.
        origin: String,
        /// What is wrong, and where in the configuration.
        #[source]
        source: ConfigError,
    },
}

/// Loads the identity configuration: the file if one is named, else Fulcio's built-in set
/// ([`super::BUILTIN_IDENTITY_CONFIG`]). Warnings go to the log.
pub fn load_identity_config(
    path: Option<&Path>,
    allow_http_issuers: bool,
) -> Result<IdentityConfig, LoadError> {
    let (text, origin) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|source| LoadError::Read {
                path: p.to_path_buf(),
                source,
            })?,
            p.display().to_string(),
        ),
        None => (
            super::BUILTIN_IDENTITY_CONFIG.to_string(),
            "built-in".to_string(),
        ),
    };
    let invalid = |source| LoadError::Invalid {
        origin: origin.clone(),
        source,
    };
    let cfg = IdentityConfig::parse(&text).map_err(invalid)?;
    check_issuer_schemes(&cfg, allow_http_issuers).map_err(invalid)?;
    for w in &cfg.warnings {
        tracing::warn!("identity config {origin}: {w}");
    }
    Ok(cfg)
}

/// Loads an issuance policy file (`--issuance-policy`) and checks it against `identity`.
pub fn load_issuance_policy(
    path: &Path,
    identity: &IdentityConfig,
) -> Result<super::IssuancePolicy, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::ReadPolicy {
        path: path.to_path_buf(),
        source,
    })?;
    super::IssuancePolicy::parse(&text, identity).map_err(|source| LoadError::InvalidPolicy {
        path: path.to_path_buf(),
        source,
    })
}

/// Every issuer URL must be https, or http when `allow_http` (local testing).
pub(crate) fn check_issuer_schemes(
    cfg: &IdentityConfig,
    allow_http: bool,
) -> Result<(), ConfigError> {
    for (kind, list) in [
        ("oidc-issuers", &cfg.issuers),
        ("meta-issuers", &cfg.meta_issuers),
    ] {
        for i in list.iter() {
            let url = &i.key;
            if url.starts_with("https://") || (allow_http && url.starts_with("http://")) {
                continue;
            }
            return Err(ConfigError {
                path: format!("{kind}.{url:?}"),
                reason: format!(
                    "issuer URL must start with https://{}",
                    if allow_http {
                        " or http://"
                    } else {
                        " (pass --insecure-http-issuers to allow http:// for local testing)"
                    }
                ),
            });
        }
    }
    Ok(())
}
