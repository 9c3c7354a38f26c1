//! Signed tree heads in both forms: RFC 6962 `get-sth` JSON and the static-ct-api
//! checkpoint (a C2SP signed note whose signature is the same TreeHeadSignature).

use super::LogPublicKey;
use super::merkle::Hash;
use crate::model::sct::{self, DigitallySigned};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// A tree head and the log's signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTreeHead {
    /// Number of entries in the tree.
    pub tree_size: u64,
    /// When the head was signed, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The Merkle tree hash (RFC 6962 `sha256_root_hash`) of the first `tree_size` entries.
    pub root: Hash,
    /// The log's signature over the `TreeHeadSignature` structure.
    pub signature: DigitallySigned,
}

/// `get-sth` response JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GetSth {
    /// `tree_size`: number of entries in the tree.
    pub tree_size: u64,
    /// `timestamp`: milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// `sha256_root_hash`: base64 of the 32-byte Merkle tree hash.
    pub sha256_root_hash: String,
    /// `tree_head_signature`: base64 of the TLS-encoded `DigitallySigned` over the tree head.
    pub tree_head_signature: String,
}

impl SignedTreeHead {
    /// The bytes the log signs: RFC 6962's `TreeHeadSignature` (version, signature type,
    /// timestamp, tree size, root hash).
    pub fn signature_input(&self) -> Vec<u8> {
        sct::tree_head_signature_input(self.timestamp, self.tree_size, &self.root)
    }

    pub(crate) fn to_json(&self) -> GetSth {
        GetSth {
            tree_size: self.tree_size,
            timestamp: self.timestamp,
            sha256_root_hash: STANDARD.encode(self.root),
            tree_head_signature: STANDARD.encode(self.signature.to_tls()),
        }
    }

    /// Decodes `get-sth` JSON (without verifying it); `None` if the root hash or the signature
    /// does not decode.
    pub fn from_json(j: &GetSth) -> Option<SignedTreeHead> {
        let root: Hash = STANDARD.decode(&j.sha256_root_hash).ok()?.try_into().ok()?;
        let sig = STANDARD.decode(&j.tree_head_signature).ok()?;
        Some(SignedTreeHead {
            tree_size: j.tree_size,
            timestamp: j.timestamp,
            root,
            signature: DigitallySigned::from_tls(&sig).ok()?,
        })
    }

    /// Whether `signature` is `key`'s valid signature over this tree head.
    pub fn verify(&self, key: &LogPublicKey) -> bool {
        key.verify(&self.signature_input(), &self.signature)
    }

    /// The checkpoint text: `origin`, size, base64 root, a blank line, and one signature
    /// line `— <origin> base64(key id || timestamp || DigitallySigned)`.
    pub fn to_checkpoint(&self, origin: &str, log_id: &[u8; 32]) -> String {
        let mut sig = key_id(origin, log_id).to_vec();
        sig.extend_from_slice(&self.timestamp.to_be_bytes());
        sig.extend_from_slice(&self.signature.to_tls());
        format!(
            "{origin}\n{}\n{}\n\n\u{2014} {origin} {}\n",
            self.tree_size,
            STANDARD.encode(self.root),
            STANDARD.encode(sig)
        )
    }

    /// Parses a checkpoint signed by `key` under `origin`; unknown signature lines are
    /// ignored as the signed-note format requires.
    pub fn from_checkpoint(text: &str, origin: &str, key: &LogPublicKey) -> Option<SignedTreeHead> {
        let (body, sigs) = text.split_once("\n\n")?;
        let mut lines = body.lines();
        if lines.next()? != origin {
            return None;
        }
        let tree_size: u64 = lines.next()?.parse().ok()?;
        let root: Hash = STANDARD.decode(lines.next()?).ok()?.try_into().ok()?;
        let want_id = key_id(origin, key.log_id());
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                continue;
            };
            let Some((name, b64)) = rest.split_once(' ') else {
                continue;
            };
            if name != origin {
                continue;
            }
            let Ok(raw) = STANDARD.decode(b64) else {
                continue;
            };
            if raw.len() < 12 || raw[..4] != want_id {
                continue;
            }
            let timestamp = u64::from_be_bytes(raw[4..12].try_into().ok()?);
            let Ok(signature) = DigitallySigned::from_tls(&raw[12..]) else {
                continue;
            };
            let sth = SignedTreeHead {
                tree_size,
                timestamp,
                root,
                signature,
            };
            if sth.verify(key) {
                return Some(sth);
            }
        }
        None
    }
}

/// Signed-note key id for an RFC 6962 log: the first 4 bytes of
/// SHA-256(origin || "\n" || 0x05 || log id).
pub fn key_id(origin: &str, log_id: &[u8; 32]) -> [u8; 4] {
    let mut c = digest::Context::new(&digest::SHA256);
    c.update(origin.as_bytes());
    c.update(b"\n");
    c.update(&[0x05]);
    c.update(log_id);
    let d = c.finish();
    let mut out = [0u8; 4];
    out.copy_from_slice(&d.as_ref()[..4]);
    out
}
