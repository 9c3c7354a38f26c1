//! Parsing log entries as a monitor reads them: RFC 6962 `MerkleTreeLeaf` /
//! `extra_data` (from `get-entries`) and static-ct-api `TileLeaf`s (from data tiles).
//! Every structure must be consumed exactly; trailing bytes are errors.

use super::merkle::{self, Hash};
use x509_parser::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedEntry {
    X509 { certificate: Vec<u8> },
    Precert { issuer_key_hash: Hash, tbs: Vec<u8> },
}

/// A parsed `TimestampedEntry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEntry {
    pub timestamp: u64,
    pub entry: SignedEntry,
    pub extensions: Vec<u8>,
    /// The encoded `TimestampedEntry` (what the leaf hash covers, after `00 00`).
    pub timestamped_entry: Vec<u8>,
}

impl ParsedEntry {
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
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err(format!("failed to unmarshal {}: truncated", self.what));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, b| (a << 8) | u64::from(*b)))
    }
    fn vec(&mut self, len_bytes: usize) -> Result<&'a [u8], String> {
        let n = self.uint(len_bytes)? as usize;
        self.take(n)
    }
    fn done(&self) -> Result<(), String> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: trailing data", self.what))
        }
    }
}

fn parse_timestamped_entry(c: &mut Cursor<'_>) -> Result<ParsedEntry, String> {
    let start = c.b;
    let timestamp = c.uint(8)?;
    let entry = match c.uint(2)? {
        0 => {
            let cert = c.vec(3)?.to_vec();
            parse_x509_certificate(&cert)
                .map_err(|e| format!("failed to parse certificate: {e}"))?;
            SignedEntry::X509 { certificate: cert }
        }
        1 => {
            let ikh: Hash = c.take(32)?.try_into().map_err(|_| "bad issuer key hash")?;
            let tbs = c.vec(3)?.to_vec();
            match TbsCertificate::from_der(&tbs) {
                Ok(([], _)) => {}
                _ => return Err("failed to parse precertificate TBS".into()),
            }
            SignedEntry::Precert {
                issuer_key_hash: ikh,
                tbs,
            }
        }
        other => return Err(format!("unknown entry type {other:#x}")),
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
pub fn parse_leaf_input(b: &[u8]) -> Result<ParsedEntry, String> {
    let mut c = Cursor {
        b,
        what: "MerkleTreeLeaf",
    };
    if c.uint(1)? != 0 || c.uint(1)? != 0 {
        return Err("failed to unmarshal MerkleTreeLeaf: unsupported version or leaf type".into());
    }
    let e = parse_timestamped_entry(&mut c)?;
    c.done()?;
    Ok(e)
}

/// `extra_data` of an entry: the precertificate (for precert entries) and the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraData {
    pub precertificate: Option<Vec<u8>>,
    pub chain: Vec<Vec<u8>>,
}

fn cert_list(b: &[u8], what: &'static str) -> Result<Vec<Vec<u8>>, String> {
    let mut c = Cursor { b, what };
    let mut out = Vec::new();
    while !c.b.is_empty() {
        let cert = c.vec(3)?.to_vec();
        parse_x509_certificate(&cert).map_err(|e| format!("failed to parse certificate: {e}"))?;
        out.push(cert);
    }
    Ok(out)
}

/// Parses `extra_data` for an entry of the given kind.
pub fn parse_extra_data(entry: &SignedEntry, b: &[u8]) -> Result<ExtraData, String> {
    match entry {
        SignedEntry::X509 { .. } => {
            let mut c = Cursor {
                b,
                what: "CertificateChain",
            };
            let list = c
                .vec(3)
                .map_err(|_| "failed to unmarshal CertificateChain".to_string())?;
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
            let pre = c
                .vec(3)
                .map_err(|_| "failed to unmarshal PrecertChainEntry".to_string())?
                .to_vec();
            parse_x509_certificate(&pre)
                .map_err(|e| format!("failed to parse precertificate: {e}"))?;
            let list = c
                .vec(3)
                .map_err(|_| "failed to unmarshal PrecertChainEntry".to_string())?;
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
    pub entry: ParsedEntry,
    pub precertificate: Option<Vec<u8>>,
    pub chain_fingerprints: Vec<Hash>,
}

/// Parses a data tile into its `TileLeaf`s.
pub fn parse_data_tile(b: &[u8]) -> Result<Vec<TileLeaf>, String> {
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
        let fps = c.vec(2)?;
        if fps.len() % 32 != 0 {
            return Err("TileLeaf: fingerprint list is not a multiple of 32 bytes".into());
        }
        let chain_fingerprints = fps
            .chunks_exact(32)
            .map(|f| f.try_into().unwrap_or([0u8; 32]))
            .collect();
        out.push(TileLeaf {
            entry,
            precertificate,
            chain_fingerprints,
        });
    }
    Ok(out)
}
