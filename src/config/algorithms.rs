//! `--client-signing-algorithms`: which (key, hash) pairs clients may use.

use crate::model::{HashAlg, KeyKind};
use std::fmt;
use thiserror::Error;

/// An allow-list that cannot be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AlgorithmError {
    /// An entry is not one of the names Fulcio's flag parser knows.
    #[error("unknown signing algorithm {name:?}; known: {known}")]
    Unknown {
        /// The unrecognised entry.
        name: String,
        /// Every known name, comma-separated.
        known: String,
    },
    /// The list has no entries.
    #[error("the allow-list must name at least one algorithm")]
    Empty,
}

/// One allow-list entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AlgorithmEntry {
    pub name: &'static str,
    pub key: KeyKind,
    pub hash: Option<HashAlg>,
}

/// Every name Fulcio's flag parser knows.
pub(crate) const KNOWN: [AlgorithmEntry; 13] = [
    entry(
        "ecdsa-sha2-256-nistp256",
        KeyKind::EcdsaP256,
        Some(HashAlg::Sha256),
    ),
    entry(
        "ecdsa-sha2-384-nistp384",
        KeyKind::EcdsaP384,
        Some(HashAlg::Sha384),
    ),
    entry(
        "ecdsa-sha2-512-nistp521",
        KeyKind::EcdsaP521,
        Some(HashAlg::Sha512),
    ),
    entry(
        "rsa-sign-pkcs1-2048-sha256",
        KeyKind::Rsa2048,
        Some(HashAlg::Sha256),
    ),
    entry(
        "rsa-sign-pkcs1-3072-sha256",
        KeyKind::Rsa3072,
        Some(HashAlg::Sha256),
    ),
    entry(
        "rsa-sign-pkcs1-4096-sha256",
        KeyKind::Rsa4096,
        Some(HashAlg::Sha256),
    ),
    entry("ed25519", KeyKind::Ed25519, None),
    entry(
        "rsa-sign-pss-2048-sha256",
        KeyKind::Rsa2048,
        Some(HashAlg::Sha256),
    ),
    entry(
        "rsa-sign-pss-3072-sha256",
        KeyKind::Rsa3072,
        Some(HashAlg::Sha256),
    ),
    entry(
        "rsa-sign-pss-4096-sha256",
        KeyKind::Rsa4096,
        Some(HashAlg::Sha256),
    ),
    entry(
        "ecdsa-sha2-256-nistp384",
        KeyKind::EcdsaP384,
        Some(HashAlg::Sha256),
    ),
    entry(
        "ecdsa-sha2-256-nistp521",
        KeyKind::EcdsaP521,
        Some(HashAlg::Sha256),
    ),
    entry("ed25519-ph", KeyKind::Ed25519, Some(HashAlg::Sha512)),
];

const fn entry(name: &'static str, key: KeyKind, hash: Option<HashAlg>) -> AlgorithmEntry {
    AlgorithmEntry { name, key, hash }
}

/// Fulcio's default list (the first seven names).
pub const DEFAULT_NAMES: [&str; 7] = [
    "ecdsa-sha2-256-nistp256",
    "ecdsa-sha2-384-nistp384",
    "ecdsa-sha2-512-nistp521",
    "rsa-sign-pkcs1-2048-sha256",
    "rsa-sign-pkcs1-3072-sha256",
    "rsa-sign-pkcs1-4096-sha256",
    "ed25519",
];

/// The allow-list the server enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmRegistry {
    entries: Vec<AlgorithmEntry>,
}

impl Default for AlgorithmRegistry {
    fn default() -> Self {
        AlgorithmRegistry::parse(DEFAULT_NAMES.iter().copied()).unwrap_or(AlgorithmRegistry {
            entries: Vec::new(),
        })
    }
}

impl AlgorithmRegistry {
    /// Parses flag values; an unknown name is an error naming it.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, AlgorithmError> {
        let mut entries = Vec::new();
        for name in names {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            let e =
                KNOWN
                    .iter()
                    .find(|e| e.name == name)
                    .ok_or_else(|| AlgorithmError::Unknown {
                        name: name.to_string(),
                        known: KNOWN.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
                    })?;
            entries.push(*e);
        }
        if entries.is_empty() {
            return Err(AlgorithmError::Empty);
        }
        Ok(AlgorithmRegistry { entries })
    }

    pub(crate) fn permits(&self, key: KeyKind, hash: Option<HashAlg>) -> bool {
        self.entries.iter().any(|e| e.key == key && e.hash == hash)
    }

    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.name).collect()
    }
}

impl fmt::Display for AlgorithmRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_matching() {
        let r = AlgorithmRegistry::default();
        assert!(r.permits(KeyKind::EcdsaP384, Some(HashAlg::Sha384)));
        assert!(!r.permits(KeyKind::EcdsaP384, Some(HashAlg::Sha256)));
        assert!(r.permits(KeyKind::Ed25519, None));
        let only = AlgorithmRegistry::parse(["ecdsa-sha2-256-nistp256"]).unwrap();
        assert!(!only.permits(KeyKind::Rsa2048, Some(HashAlg::Sha256)));
        assert!(
            AlgorithmRegistry::parse(["nope"])
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }
}
