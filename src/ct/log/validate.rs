//! What the log accepts: chains that reach one of its roots, with a currently valid leaf,
//! a precertificate (exactly one critical poison) for `add-pre-chain` and a plain
//! certificate for `add-chain`, and (optionally) EKU codeSigning on the leaf.

use crate::ct::merkle::Hash;
use crate::ct::sha256;
use crate::model::{der, oid, x509};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use x509_parser::prelude::*;

/// The two submission endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    X509,
    Precert,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::X509 => "x509",
            Kind::Precert => "precert",
        }
    }
}

/// A submission that passed every check, ready to be sequenced.
#[derive(Debug, Clone)]
pub struct Submission {
    pub kind: Kind,
    /// `chain[0]` as submitted.
    pub leaf: Vec<u8>,
    /// SHA-256 of `leaf`: resubmissions of the same certificate get the same entry.
    pub dedup: Hash,
    /// The issuer chain up to and including the accepted root.
    pub issuers: Vec<Vec<u8>>,
    /// SHA-256 of each of `issuers` (how entries and static-ct-api address them),
    /// computed once per verified chain.
    pub issuer_fingerprints: Arc<[Hash]>,
    /// Precertificates: SHA-256 of the issuer's SubjectPublicKeyInfo.
    pub issuer_key_hash: Hash,
    /// Precertificates: the TBS with the poison removed.
    pub tbs: Vec<u8>,
    /// Look for an earlier entry of the same certificate. Off only for precertificates
    /// the in-process CA signed a moment ago: a fresh random serial cannot have been
    /// logged before.
    pub check_duplicates: bool,
}

/// Longest chain accepted (leaf included).
pub const MAX_CHAIN: usize = 10;
/// A leaf may start this far in the future (clock skew between CA and log).
pub const NOT_BEFORE_LEEWAY_SECS: i64 = 60;

/// One accepted root.
#[derive(Debug, Clone)]
pub struct Root {
    pub der: Vec<u8>,
    subject: Vec<u8>,
}

impl Root {
    pub fn new(der: Vec<u8>) -> Result<Root, String> {
        let (_, c) =
            parse_x509_certificate(&der).map_err(|e| format!("root does not parse: {e}"))?;
        Ok(Root {
            subject: c.subject().as_raw().to_vec(),
            der,
        })
    }
}

/// Validation settings and the cache of issuer chains already verified.
pub struct Validator {
    roots: Vec<Root>,
    require_code_signing: bool,
    verified_issuer_chains: Mutex<HashMap<Hash, Arc<IssuerInfo>>>,
}

/// What the leaf checks need from a verified issuer chain.
#[derive(Debug)]
struct IssuerInfo {
    /// Subject of the direct issuer (chain[1]).
    subject: Vec<u8>,
    /// SHA-256 of the direct issuer's SubjectPublicKeyInfo (the precert issuer_key_hash).
    spki_hash: Hash,
    /// The direct issuer is a precertificate signing certificate (not supported).
    precert_signing: bool,
    /// SHA-256 of each certificate of the chain.
    fingerprints: Arc<[Hash]>,
}

fn reject(msg: impl Into<String>) -> String {
    msg.into()
}

impl Validator {
    pub fn new(roots: Vec<Root>, require_code_signing: bool) -> Validator {
        Validator {
            roots,
            require_code_signing,
            verified_issuer_chains: Mutex::new(HashMap::new()),
        }
    }

    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// Checks `chain` (leaf first). `verify_leaf_signature` is false only for
    /// precertificates handed over in-process by the CA that just signed them.
    pub fn validate(
        &self,
        chain: &[Vec<u8>],
        kind: Kind,
        now_secs: i64,
        verify_leaf_signature: bool,
    ) -> Result<Submission, String> {
        if chain.is_empty() {
            return Err(reject("chain is empty"));
        }
        if chain.len() > MAX_CHAIN {
            return Err(reject(format!(
                "chain is longer than {MAX_CHAIN} certificates"
            )));
        }
        // Only the leaf is parsed per submission; what the checks need from an issuer
        // chain is cached once it verified (the CA sends the same chain every time).
        let leaf = match parse_x509_certificate(&chain[0]) {
            Ok(([], c)) => c,
            Ok(_) => return Err("certificate 0 has trailing data".into()),
            Err(e) => return Err(format!("certificate 0 does not parse: {e}")),
        };
        let leaf = &leaf;

        // Entry type.
        let poisons: Vec<_> = leaf
            .extensions()
            .iter()
            .filter(|e| e.oid.as_bytes() == oid::CT_POISON.content)
            .collect();
        match kind {
            Kind::Precert => {
                if poisons.len() != 1 || !poisons[0].critical {
                    return Err(reject(
                        "add-pre-chain needs a precertificate: chain[0] must carry exactly one critical CT poison extension",
                    ));
                }
            }
            Kind::X509 => {
                if !poisons.is_empty() {
                    return Err(reject(
                        "add-chain got a precertificate (CT poison extension); submit it with add-pre-chain",
                    ));
                }
            }
        }

        // Validity now.
        let nb = leaf.validity().not_before.timestamp();
        let na = leaf.validity().not_after.timestamp();
        if na < now_secs {
            return Err(reject("certificate has expired"));
        }
        if nb > now_secs + NOT_BEFORE_LEEWAY_SECS {
            return Err(reject("certificate is not yet valid"));
        }
        if self.require_code_signing && !x509::has_code_signing_eku(leaf) {
            return Err(reject(
                "certificate does not carry extended key usage codeSigning",
            ));
        }

        // Issuers: complete to an accepted root.
        let mut issuers: Vec<Vec<u8>> = chain[1..].to_vec();
        let ends_at_root = self.roots.iter().any(|r| Some(&r.der) == chain.last());
        if !ends_at_root || chain.len() == 1 {
            let last_issuer = if chain.len() == 1 {
                leaf.issuer().as_raw().to_vec()
            } else {
                match parse_x509_certificate(&chain[chain.len() - 1]) {
                    Ok(([], c)) => c.issuer().as_raw().to_vec(),
                    Ok(_) => {
                        return Err(format!("certificate {} has trailing data", chain.len() - 1));
                    }
                    Err(e) => {
                        return Err(format!(
                            "certificate {} does not parse: {e}",
                            chain.len() - 1
                        ));
                    }
                }
            };
            let root = self
                .roots
                .iter()
                .find(|r| r.subject == last_issuer)
                .ok_or_else(|| reject("chain does not lead to a root this log accepts"))?;
            issuers.push(root.der.clone());
        }
        if issuers.is_empty() {
            return Err(reject("a root certificate cannot be logged as a leaf"));
        }
        let info = self.verify_issuers(&issuers)?;
        if leaf.issuer().as_raw() != info.subject.as_slice() {
            return Err(reject("chain[0] is not issued by chain[1]"));
        }
        if info.precert_signing {
            return Err(reject(
                "precertificate signing certificates are not supported",
            ));
        }
        if verify_leaf_signature {
            let (_, direct_issuer) = parse_x509_certificate(&issuers[0])
                .map_err(|e| reject(format!("issuer does not parse: {e}")))?;
            if !x509::is_signed_by(leaf, &direct_issuer) {
                return Err(reject(
                    "chain[0] signature does not verify with chain[1]'s key",
                ));
            }
        }

        let dedup = sha256(&chain[0]);
        let (issuer_key_hash, tbs) = match kind {
            Kind::X509 => ([0u8; 32], Vec::new()),
            Kind::Precert => {
                let tbs = der::tbs_without_extension(
                    leaf.tbs_certificate.as_ref(),
                    &oid::CT_POISON.tlv(),
                )
                .map_err(|e| reject(format!("precertificate TBS: {e}")))?
                .ok_or_else(|| reject("precertificate has no poison"))?;
                (info.spki_hash, tbs)
            }
        };
        Ok(Submission {
            kind,
            leaf: chain[0].clone(),
            dedup,
            issuers,
            issuer_fingerprints: info.fingerprints.clone(),
            issuer_key_hash,
            tbs,
            check_duplicates: true,
        })
    }

    /// Verifies an issuer chain (each certificate a CA signed by the next, ending at an
    /// accepted root) and returns what leaf checks need from it; remembers chains already
    /// verified.
    fn verify_issuers(&self, issuers: &[Vec<u8>]) -> Result<Arc<IssuerInfo>, String> {
        let key = sha256(&issuers.concat());
        if let Some(info) = self
            .verified_issuer_chains
            .lock()
            .ok()
            .and_then(|s| s.get(&key).cloned())
        {
            return Ok(info);
        }
        let parsed: Vec<X509Certificate<'_>> = issuers
            .iter()
            .enumerate()
            .map(|(i, d)| match parse_x509_certificate(d) {
                Ok(([], c)) => Ok(c),
                Ok(_) => Err(format!("certificate {} has trailing data", i + 1)),
                Err(e) => Err(reject(format!("issuer does not parse: {e}"))),
            })
            .collect::<Result<_, _>>()?;
        for (i, c) in parsed.iter().enumerate() {
            let is_root = i + 1 == parsed.len();
            if !is_root {
                if !x509::is_ca(c) {
                    return Err(reject(format!("chain[{}] is not a CA certificate", i + 1)));
                }
                if c.issuer().as_raw() != parsed[i + 1].subject().as_raw()
                    || !x509::is_signed_by(c, &parsed[i + 1])
                {
                    return Err(reject(format!(
                        "chain[{}] is not signed by chain[{}]",
                        i + 1,
                        i + 2
                    )));
                }
            }
        }
        if !self.roots.iter().any(|r| Some(&r.der) == issuers.last()) {
            return Err(reject("chain does not lead to a root this log accepts"));
        }
        let direct = &parsed[0];
        let info = Arc::new(IssuerInfo {
            subject: direct.subject().as_raw().to_vec(),
            spki_hash: sha256(direct.public_key().raw),
            fingerprints: issuers.iter().map(|d| sha256(d)).collect(),
            precert_signing: x509::has_extension(direct, oid::CT_PRECERT_SIGNING.content)
                || matches!(direct.extended_key_usage(), Ok(Some(e)) if e.value.other.iter().any(|o| o.as_bytes() == oid::CT_PRECERT_SIGNING.content)),
        });
        if let Ok(mut s) = self.verified_issuer_chains.lock() {
            if s.len() > 10_000 {
                s.clear();
            }
            s.insert(key, info.clone());
        }
        Ok(info)
    }
}
