//! Parsing log entries as a monitor reads them: RFC 6962 `MerkleTreeLeaf` /
//! `extra_data` (from `get-entries`) and static-ct-api `TileLeaf`s (from data tiles).
//! Every structure must be consumed exactly; trailing bytes are errors.

use super::merkle::{self, Hash};
use thiserror::Error;
use x509_parser::prelude::*;

/// Why an entry does not parse. `what` names the TLS structure.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EntryError {
    /// The input ends before the named structure is complete.
    #[error("failed to unmarshal {0}: truncated")]
    Truncated(&'static str),
    /// Bytes remain after the named structure was fully parsed.
    #[error("{0}: trailing data")]
    TrailingData(&'static str),
    /// A `MerkleTreeLeaf` whose version is not v1 (0) or whose leaf type is not
    /// `timestamped_entry` (0).
    #[error("failed to unmarshal MerkleTreeLeaf: unsupported version or leaf type")]
    LeafType,
    /// A `LogEntryType` other than `x509_entry` (0) or `precert_entry` (1); holds the value read.
    #[error("unknown entry type {0:#x}")]
    EntryType(u64),
    /// An embedded certificate is not valid X.509 DER.
    #[error("failed to parse {what}: {reason}")]
    Certificate {
        /// Which certificate: `"certificate"` or `"precertificate"`.
        what: &'static str,
        /// The X.509 parser's error message.
        reason: String,
    },
    /// A precert entry's `tbs_certificate` is not exactly one DER `TBSCertificate`.
    #[error("failed to parse precertificate TBS")]
    PrecertTbs,
    /// A data tile's entry does not hash to the leaf hash the tree commits to.
    #[error("the data tile's entry does not hash to the tree's leaf hash")]
    HashMismatch,
    /// A `TileLeaf`'s `certificate_chain` fingerprint list length is not a multiple of 32.
    #[error("TileLeaf: fingerprint list is not a multiple of 32 bytes")]
    Fingerprints,
}

fn certificate(what: &'static str, der: &[u8]) -> Result<(), EntryError> {
    parse_x509_certificate(der)
        .map(|_| ())
        .map_err(|e| EntryError::Certificate {
            what,
            reason: e.to_string(),
        })
}

/// The `signed_entry` of a `TimestampedEntry`, by `LogEntryType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedEntry {
    /// An `x509_entry`: a final certificate.
    X509 {
        /// The leaf certificate (`ASN.1Cert`, DER).
        certificate: Vec<u8>,
    },
    /// A `precert_entry`: a `PreCert` as RFC 6962 section 3.2 defines it.
    Precert {
        /// SHA-256 of the issuer's DER `SubjectPublicKeyInfo` (`issuer_key_hash`).
        issuer_key_hash: Hash,
        /// The precertificate's `TBSCertificate` (DER) without the poison extension
        /// (`tbs_certificate`).
        tbs: Vec<u8>,
    },
}

/// A parsed `TimestampedEntry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEntry {
    /// The entry's `timestamp`, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The certificate or precertificate the entry logs.
    pub entry: SignedEntry,
    /// The raw `CtExtensions` bytes (without their length prefix); may be empty.
    pub extensions: Vec<u8>,
    /// The encoded `TimestampedEntry` (what the leaf hash covers, after `00 00`).
    pub timestamped_entry: Vec<u8>,
}

impl ParsedEntry {
    /// The RFC 6962 Merkle leaf hash of the v1 `timestamped_entry` `MerkleTreeLeaf`.
    pub fn leaf_hash(&self) -> Hash {
        let mut leaf = vec![0, 0];
        leaf.extend_from_slice(&self.timestamped_entry);
        merkle::leaf_hash(&leaf)
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EntryError> {
        if self.b.len() < n {
            return Err(EntryError::Truncated(self.what));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn uint(&mut self, n: usize) -> Result<u64, EntryError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, b| (a << 8) | u64::from(*b)))
    }
    fn vec(&mut self, len_bytes: usize) -> Result<&'a [u8], EntryError> {
        let n = self.uint(len_bytes)? as usize;
        self.take(n)
    }
    fn done(&self) -> Result<(), EntryError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(EntryError::TrailingData(self.what))
        }
    }
}

fn parse_timestamped_entry(c: &mut Cursor<'_>) -> Result<ParsedEntry, EntryError> {
    let e = frame_timestamped_entry(c)?;
    check_entry(&e)?;
    Ok(e)
}

/// Checks that the certificate (or precertificate TBS) an entry carries is valid DER.
fn check_entry(e: &ParsedEntry) -> Result<(), EntryError> {
    match &e.entry {
        SignedEntry::X509 { certificate: cert } => certificate("certificate", cert),
        SignedEntry::Precert { tbs, .. } => match TbsCertificate::from_der(tbs) {
            Ok(([], _)) => Ok(()),
            _ => Err(EntryError::PrecertTbs),
        },
    }
}

/// Reads a `TimestampedEntry`'s framing without looking inside the certificate.
fn frame_timestamped_entry(c: &mut Cursor<'_>) -> Result<ParsedEntry, EntryError> {
    let start = c.b;
    let timestamp = c.uint(8)?;
    let entry = match c.uint(2)? {
        0 => {
            let cert = c.vec(3)?.to_vec();
            SignedEntry::X509 { certificate: cert }
        }
        1 => {
            let mut ikh: Hash = [0; merkle::HASH_LEN];
            ikh.copy_from_slice(c.take(merkle::HASH_LEN)?);
            let tbs = c.vec(3)?.to_vec();
            SignedEntry::Precert {
                issuer_key_hash: ikh,
                tbs,
            }
        }
        other => return Err(EntryError::EntryType(other)),
    };
    let extensions = c.vec(2)?.to_vec();
    let consumed = start.len() - c.b.len();
    Ok(ParsedEntry {
        timestamp,
        entry,
        extensions,
        timestamped_entry: start[..consumed].to_vec(),
    })
}

/// Parses a `MerkleTreeLeaf` (`get-entries` `leaf_input`).
pub fn parse_leaf_input(b: &[u8]) -> Result<ParsedEntry, EntryError> {
    let mut c = Cursor {
        b,
        what: "MerkleTreeLeaf",
    };
    if c.uint(1)? != 0 || c.uint(1)? != 0 {
        return Err(EntryError::LeafType);
    }
    let e = parse_timestamped_entry(&mut c)?;
    c.done()?;
    Ok(e)
}

/// [`parse_leaf_input`] without parsing the certificate inside: for callers that parse it
/// themselves next (the search indexer), so it is parsed once.
pub(crate) fn frame_leaf_input(b: &[u8]) -> Result<ParsedEntry, EntryError> {
    let mut c = Cursor {
        b,
        what: "MerkleTreeLeaf",
    };
    if c.uint(1)? != 0 || c.uint(1)? != 0 {
        return Err(EntryError::LeafType);
    }
    let e = frame_timestamped_entry(&mut c)?;
    c.done()?;
    Ok(e)
}

/// `extra_data` of an entry: the precertificate (for precert entries) and the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraData {
    /// The full precertificate (`pre_certificate`, DER) for precert entries; `None` for x509.
    pub precertificate: Option<Vec<u8>>,
    /// The chain certificates (DER) after the leaf, issuer first; may be empty.
    pub chain: Vec<Vec<u8>>,
}

fn cert_list(b: &[u8], what: &'static str) -> Result<Vec<Vec<u8>>, EntryError> {
    let mut c = Cursor { b, what };
    let mut out = Vec::new();
    while !c.b.is_empty() {
        let cert = c.vec(3)?.to_vec();
        certificate("certificate", &cert)?;
        out.push(cert);
    }
    Ok(out)
}

/// Parses `extra_data` for an entry of the given kind.
pub fn parse_extra_data(entry: &SignedEntry, b: &[u8]) -> Result<ExtraData, EntryError> {
    match entry {
        SignedEntry::X509 { .. } => {
            let mut c = Cursor {
                b,
                what: "CertificateChain",
            };
            let list = c.vec(3)?;
            c.done()?;
            Ok(ExtraData {
                precertificate: None,
                chain: cert_list(list, "CertificateChain")?,
            })
        }
        SignedEntry::Precert { .. } => {
            let mut c = Cursor {
                b,
                what: "PrecertChainEntry",
            };
            let pre = c.vec(3)?.to_vec();
            certificate("precertificate", &pre)?;
            let list = c.vec(3)?;
            c.done()?;
            Ok(ExtraData {
                precertificate: Some(pre),
                chain: cert_list(list, "PrecertChainEntry")?,
            })
        }
    }
}

/// One entry of a static-ct-api data tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileLeaf {
    /// The leaf's `TimestampedEntry`.
    pub entry: ParsedEntry,
    /// The full precertificate (DER) for precert entries; `None` for x509 entries.
    pub precertificate: Option<Vec<u8>>,
    /// SHA-256 fingerprints of the chain certificates (`certificate_chain`), issuer first.
    pub chain_fingerprints: Vec<Hash>,
}

/// Splits a data tile into its `TileLeaf`s, checking each leaf's certificate on its own: the
/// outer error means the tile's framing is broken; an inner one, that leaf's certificate
/// (what a monitor reports as one unparsed entry, without losing its neighbours).
pub fn split_data_tile(b: &[u8]) -> Result<Vec<Result<TileLeaf, EntryError>>, EntryError> {
    let mut c = Cursor {
        b,
        what: "TileLeaf",
    };
    let mut out = Vec::new();
    while !c.b.is_empty() {
        let entry = frame_timestamped_entry(&mut c)?;
        let precertificate = match entry.entry {
            SignedEntry::Precert { .. } => Some(c.vec(3)?.to_vec()),
            SignedEntry::X509 { .. } => None,
        };
        let chain_fingerprints =
            merkle::hashes_from(c.vec(2)?).map_err(|_| EntryError::Fingerprints)?;
        out.push(check_entry(&entry).map(|()| TileLeaf {
            entry,
            precertificate,
            chain_fingerprints,
        }));
    }
    Ok(out)
}

/// Parses a data tile into its `TileLeaf`s.
pub fn parse_data_tile(b: &[u8]) -> Result<Vec<TileLeaf>, EntryError> {
    let mut c = Cursor {
        b,
        what: "TileLeaf",
    };
    let mut out = Vec::new();
    while !c.b.is_empty() {
        let entry = parse_timestamped_entry(&mut c)?;
        let precertificate = match entry.entry {
            SignedEntry::Precert { .. } => Some(c.vec(3)?.to_vec()),
            SignedEntry::X509 { .. } => None,
        };
        let chain_fingerprints =
            merkle::hashes_from(c.vec(2)?).map_err(|_| EntryError::Fingerprints)?;
        out.push(TileLeaf {
            entry,
            precertificate,
            chain_fingerprints,
        });
    }
    Ok(out)
}
