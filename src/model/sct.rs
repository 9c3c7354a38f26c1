//! RFC 6962 (CT v1) structures and their exact byte encodings: SCTs, SCT lists, the data
//! a log signs, Merkle tree leaves, tree-head signature input.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// TLS `HashAlgorithm` value for SHA-256 (RFC 5246 section 7.4.1.4.1).
pub const HASH_SHA256: u8 = 4;
pub(crate) const SIG_RSA: u8 = 1;
/// TLS `SignatureAlgorithm` value for ECDSA (RFC 5246 section 7.4.1.4.1).
pub const SIG_ECDSA: u8 = 3;

/// Why an SCT or `DigitallySigned` does not decode.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SctError {
    /// The bytes or JSON fields are not a well-formed v1 SCT; holds what is wrong.
    #[error("malformed SCT: {0}")]
    Malformed(&'static str),
}

/// What a log entry is: a certificate or a precertificate (by issuer key hash and the TBS
/// with the poison removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// An `x509_entry`.
    X509 {
        /// The leaf certificate, DER (`ASN.1Cert`).
        certificate: &'a [u8],
    },
    /// A `precert_entry`.
    Precert {
        /// SHA-256 of the issuer's DER `SubjectPublicKeyInfo` (`issuer_key_hash`).
        issuer_key_hash: &'a [u8; 32],
        /// The precertificate's DER `TBSCertificate` without the poison (`tbs_certificate`).
        tbs: &'a [u8],
    },
}

impl Entry<'_> {
    pub(crate) fn entry_type(&self) -> u16 {
        match self {
            Entry::X509 { .. } => 0,
            Entry::Precert { .. } => 1,
        }
    }

    fn write_signed_entry(&self, out: &mut Vec<u8>) {
        match self {
            Entry::X509 { certificate } => write_u24_prefixed(out, certificate),
            Entry::Precert {
                issuer_key_hash,
                tbs,
            } => {
                out.extend_from_slice(&issuer_key_hash[..]);
                write_u24_prefixed(out, tbs);
            }
        }
    }
}

fn write_u24_prefixed(out: &mut Vec<u8>, data: &[u8]) {
    let n = data.len() as u32;
    out.extend_from_slice(&n.to_be_bytes()[1..]);
    out.extend_from_slice(data);
}

fn write_u16_prefixed(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// `TimestampedEntry`: `timestamp || entry_type || signed_entry || extensions`.
pub fn timestamped_entry(timestamp: u64, entry: &Entry<'_>, extensions: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + extensions.len());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&entry.entry_type().to_be_bytes());
    entry.write_signed_entry(&mut out);
    write_u16_prefixed(&mut out, extensions);
    out
}

/// `MerkleTreeLeaf`: version 0, leaf type 0 (timestamped_entry), then the entry.
pub fn merkle_tree_leaf(timestamped_entry: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + timestamped_entry.len());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(timestamped_entry);
    out
}

/// The bytes a log signs for an SCT (`digitally-signed struct` of RFC 6962 section 3.2).
pub fn signature_input(timestamp: u64, entry: &Entry<'_>, extensions: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + extensions.len());
    out.push(0); // sct_version v1
    out.push(0); // signature_type certificate_timestamp
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&entry.entry_type().to_be_bytes());
    entry.write_signed_entry(&mut out);
    write_u16_prefixed(&mut out, extensions);
    out
}

/// The bytes a log signs for a tree head (`TreeHeadSignature`).
pub fn tree_head_signature_input(timestamp: u64, tree_size: u64, root: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(50);
    out.push(0); // version v1
    out.push(1); // signature_type tree_hash
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&tree_size.to_be_bytes());
    out.extend_from_slice(root);
    out
}

/// The static-ct-api `leaf_index` extension: type 0, length 5, 40-bit big-endian index.
pub fn leaf_index_extension(index: u64) -> Vec<u8> {
    let mut out = vec![0, 0, 5];
    out.extend_from_slice(&index.to_be_bytes()[3..]);
    out
}

/// Finds the `leaf_index` in a CtExtensions byte string.
pub fn parse_leaf_index(mut extensions: &[u8]) -> Option<u64> {
    while extensions.len() >= 3 {
        let kind = extensions[0];
        let len = usize::from(u16::from_be_bytes([extensions[1], extensions[2]]));
        let data = extensions.get(3..3 + len)?;
        if kind == 0 && len == 5 {
            let mut b = [0u8; 8];
            b[3..].copy_from_slice(data);
            return Some(u64::from_be_bytes(b));
        }
        extensions = &extensions[3 + len..];
    }
    None
}

/// A TLS `DigitallySigned`: hash algorithm, signature algorithm, signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitallySigned {
    /// TLS `HashAlgorithm` (e.g. [`HASH_SHA256`]).
    pub hash_algorithm: u8,
    /// TLS `SignatureAlgorithm` (e.g. [`SIG_ECDSA`]).
    pub signature_algorithm: u8,
    /// The signature bytes, without their length prefix.
    pub signature: Vec<u8>,
}

impl DigitallySigned {
    pub(crate) fn to_tls(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.signature.len());
        out.push(self.hash_algorithm);
        out.push(self.signature_algorithm);
        write_u16_prefixed(&mut out, &self.signature);
        out
    }

    /// Decodes exactly one `DigitallySigned`, refusing trailing bytes.
    pub fn from_tls(bytes: &[u8]) -> Result<DigitallySigned, SctError> {
        if bytes.len() < 4 {
            return Err(SctError::Malformed("DigitallySigned too short"));
        }
        let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if bytes.len() != 4 + len {
            return Err(SctError::Malformed("DigitallySigned length mismatch"));
        }
        Ok(DigitallySigned {
            hash_algorithm: bytes[0],
            signature_algorithm: bytes[1],
            signature: bytes[4..].to_vec(),
        })
    }
}

/// A v1 SignedCertificateTimestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sct {
    /// The log's ID: SHA-256 of its DER `SubjectPublicKeyInfo` (`LogID`).
    pub log_id: [u8; 32],
    /// When the log saw the entry, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Raw `CtExtensions` (without the length prefix); empty if none.
    pub extensions: Vec<u8>,
    /// The log's signature over [`signature_input`].
    pub signature: DigitallySigned,
}

/// The JSON shape of an RFC 6962 `add-chain` / `add-pre-chain` response (Go's
/// `ct.AddChainResponse`; field order as Go marshals it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddChainResponse {
    /// SCT version; 0 (v1) is the only one accepted.
    pub sct_version: u8,
    /// Base64 of the 32-byte log ID.
    pub id: String,
    /// The SCT timestamp, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Base64 of the raw `CtExtensions` (empty string if none).
    pub extensions: String,
    /// Base64 of the TLS-encoded `DigitallySigned`.
    pub signature: String,
}

impl Sct {
    /// TLS encoding, as embedded in certificates.
    pub fn to_tls(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(48 + self.extensions.len() + self.signature.signature.len());
        out.push(0);
        out.extend_from_slice(&self.log_id);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        write_u16_prefixed(&mut out, &self.extensions);
        out.extend_from_slice(&self.signature.to_tls());
        out
    }

    /// Decodes exactly one TLS-encoded v1 SCT, refusing other versions and trailing bytes.
    pub fn from_tls(b: &[u8]) -> Result<Sct, SctError> {
        if b.len() < 1 + 32 + 8 + 2 {
            return Err(SctError::Malformed("SCT too short"));
        }
        if b[0] != 0 {
            return Err(SctError::Malformed("SCT version is not v1"));
        }
        let mut log_id = [0u8; 32];
        log_id.copy_from_slice(&b[1..33]);
        let timestamp = u64::from_be_bytes(
            b[33..41]
                .try_into()
                .map_err(|_| SctError::Malformed("timestamp"))?,
        );
        let ext_len = usize::from(u16::from_be_bytes([b[41], b[42]]));
        let ext_end = 43 + ext_len;
        let extensions = b
            .get(43..ext_end)
            .ok_or(SctError::Malformed("extensions run past the end"))?
            .to_vec();
        let signature = DigitallySigned::from_tls(&b[ext_end..])?;
        Ok(Sct {
            log_id,
            timestamp,
            extensions,
            signature,
        })
    }

    pub(crate) fn to_json(&self) -> AddChainResponse {
        AddChainResponse {
            sct_version: 0,
            id: STANDARD.encode(self.log_id),
            timestamp: self.timestamp,
            extensions: STANDARD.encode(&self.extensions),
            signature: STANDARD.encode(self.signature.to_tls()),
        }
    }

    /// Decodes an `add-chain` / `add-pre-chain` response; refuses versions other than v1 and
    /// bad base64.
    pub fn from_json(r: &AddChainResponse) -> Result<Sct, SctError> {
        if r.sct_version != 0 {
            return Err(SctError::Malformed("SCT version is not v1"));
        }
        let id = STANDARD
            .decode(&r.id)
            .map_err(|_| SctError::Malformed("id is not base64"))?;
        let log_id: [u8; 32] = id
            .try_into()
            .map_err(|_| SctError::Malformed("log id is not 32 bytes"))?;
        let extensions = STANDARD
            .decode(&r.extensions)
            .map_err(|_| SctError::Malformed("extensions are not base64"))?;
        let sig = STANDARD
            .decode(&r.signature)
            .map_err(|_| SctError::Malformed("signature is not base64"))?;
        Ok(Sct {
            log_id,
            timestamp: r.timestamp,
            extensions,
            signature: DigitallySigned::from_tls(&sig)?,
        })
    }
}

/// `SignedCertificateTimestampList`: u16 total length, then u16-prefixed serialized SCTs.
pub fn sct_list(scts: &[Sct]) -> Vec<u8> {
    let mut body = Vec::new();
    for s in scts {
        write_u16_prefixed(&mut body, &s.to_tls());
    }
    let mut out = Vec::with_capacity(body.len() + 2);
    write_u16_prefixed(&mut out, &body);
    out
}

/// Parses an SCT list.
pub(crate) fn parse_sct_list(b: &[u8]) -> Result<Vec<Sct>, SctError> {
    if b.len() < 2 {
        return Err(SctError::Malformed("SCT list too short"));
    }
    let total = usize::from(u16::from_be_bytes([b[0], b[1]]));
    if b.len() != 2 + total {
        return Err(SctError::Malformed("SCT list length mismatch"));
    }
    let mut rest = &b[2..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(SctError::Malformed("truncated SCT entry"));
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let item = rest
            .get(2..2 + len)
            .ok_or(SctError::Malformed("SCT entry runs past the end"))?;
        out.push(Sct::from_tls(item)?);
        rest = &rest[2 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_index_round_trip() {
        let e = leaf_index_extension(3);
        assert_eq!(hex::encode(&e), "0000050000000003");
        assert_eq!(parse_leaf_index(&e), Some(3));
        assert_eq!(
            parse_leaf_index(&leaf_index_extension(0xff_ffff_ffff)),
            Some(0xff_ffff_ffff)
        );
        assert_eq!(parse_leaf_index(&[]), None);
    }

    #[test]
    fn sct_tls_and_json_round_trip() {
        let s = Sct {
            log_id: [7; 32],
            timestamp: 1337,
            extensions: leaf_index_extension(9),
            signature: DigitallySigned {
                hash_algorithm: HASH_SHA256,
                signature_algorithm: SIG_ECDSA,
                signature: vec![1, 2, 3],
            },
        };
        assert_eq!(Sct::from_tls(&s.to_tls()).unwrap(), s);
        assert_eq!(Sct::from_json(&s.to_json()).unwrap(), s);
        let list = sct_list(std::slice::from_ref(&s));
        assert_eq!(parse_sct_list(&list).unwrap(), vec![s]);
        assert!(DigitallySigned::from_tls(&[4, 3, 0, 2, 1]).is_err());
        assert!(DigitallySigned::from_tls(&[4, 3, 0, 1, 1, 9]).is_err());
    }
}
