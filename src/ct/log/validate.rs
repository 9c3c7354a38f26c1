//! What the log accepts: chains that reach one of its roots, with a currently valid leaf,
//! a precertificate (exactly one critical poison) for `add-pre-chain` and a plain
//! certificate for `add-chain`, and (optionally) EKU codeSigning on the leaf.

use crate::ct::merkle::Hash;
use crate::ct::sha256;
use crate::model::{oid, x509};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use thiserror::Error;
use x509_parser::prelude::*;

/// Why a submission is refused. Each has a fixed label for
/// `brevis_ctlog_rejections_total{reason}`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The submitted chain has no certificates.
    #[error("chain is empty")]
    EmptyChain,
    /// The submitted chain has more than `MAX_CHAIN` certificates (leaf included).
    #[error("chain is longer than {MAX_CHAIN} certificates")]
    ChainTooLong,
    /// A certificate is not valid X.509 DER.
    #[error("certificate {index} does not parse: {reason}")]
    Unparsable {
        /// Position of the certificate in the chain (0 = leaf).
        index: usize,
        /// The X.509 parser's error message.
        reason: String,
    },
    /// Bytes follow the DER certificate at this chain position (0 = leaf).
    #[error("certificate {0} has trailing data")]
    TrailingData(usize),
    /// An `add-pre-chain` leaf does not have exactly one critical CT poison extension.
    #[error(
        "add-pre-chain needs a precertificate: chain[0] must carry exactly one critical CT poison extension"
    )]
    NotPrecertificate,
    /// An `add-chain` leaf carries the CT poison extension.
    #[error("add-chain got a precertificate (CT poison extension); submit it with add-pre-chain")]
    UnexpectedPrecertificate,
    /// The leaf's notAfter is in the past.
    #[error("certificate has expired")]
    Expired,
    /// The leaf's notBefore is more than `NOT_BEFORE_LEEWAY_SECS` in the future.
    #[error("certificate is not yet valid")]
    NotYetValid,
    /// The log requires EKU codeSigning and the leaf does not carry it.
    #[error("certificate does not carry extended key usage codeSigning")]
    NoCodeSigning,
    /// The chain neither ends at nor is issued by one of the log's accepted roots.
    #[error("chain does not lead to a root this log accepts")]
    UnknownRoot,
    /// No issuer remains above the leaf, i.e. the leaf itself is an accepted root.
    #[error("a root certificate cannot be logged as a leaf")]
    RootAsLeaf,
    /// An intermediate issuer (at this chain position) lacks basicConstraints cA.
    #[error("chain[{0}] is not a CA certificate")]
    IssuerNotCa(usize),
    /// The issuer at this chain position is not issued by, or its signature does not verify
    /// with, the next certificate (the accepted root when it was appended).
    #[error("chain[{0}] is not signed by chain[{next}]", next = .0 + 1)]
    BrokenChain(usize),
    /// The leaf's issuer name differs from the direct issuer's subject.
    #[error("chain[0] is not issued by chain[1]")]
    WrongIssuer,
    /// The direct issuer is an RFC 6962 precertificate signing certificate (it carries the
    /// precertificate signing EKU or extension).
    #[error("precertificate signing certificates are not supported")]
    PrecertSigningCertificate,
    /// The leaf's signature does not verify with the direct issuer's key (network submissions).
    #[error("chain[0] signature does not verify with chain[1]'s key")]
    BadSignature,
    /// Removing the poison extension from the precertificate's TBSCertificate failed.
    #[error("precertificate TBS: {0}")]
    PrecertTbs(#[source] crate::model::der::DerError),
}

impl Rejection {
    /// A closed set of metric labels.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Rejection::EmptyChain => "empty_chain",
            Rejection::ChainTooLong => "chain_too_long",
            Rejection::Unparsable { .. } => "unparsable",
            Rejection::TrailingData(_) => "trailing_data",
            Rejection::NotPrecertificate => "not_precertificate",
            Rejection::UnexpectedPrecertificate => "unexpected_precertificate",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::NoCodeSigning => "no_code_signing",
            Rejection::UnknownRoot => "unknown_root",
            Rejection::RootAsLeaf => "root_as_leaf",
            Rejection::IssuerNotCa(_) => "issuer_not_ca",
            Rejection::BrokenChain(_) => "broken_chain",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::PrecertSigningCertificate => "precert_signing_certificate",
            Rejection::BadSignature => "bad_signature",
            Rejection::PrecertTbs(_) => "precert_tbs",
        }
    }

    /// Creates every `brevis_ctlog_rejections_total` series at zero, so dashboards and
    /// alerts see each reason before the first rejection.
    pub(crate) fn register_metrics() {
        for kind in [Kind::X509, Kind::Precert] {
            for reason in Rejection::LABELS {
                crate::metrics::CTLOG_REJECTIONS.with_label_values(&[kind.label(), reason]);
            }
        }
    }

    /// Every label, for initialising the metric.
    pub(crate) const LABELS: [&'static str; 17] = [
        "empty_chain",
        "chain_too_long",
        "unparsable",
        "trailing_data",
        "not_precertificate",
        "unexpected_precertificate",
        "expired",
        "not_yet_valid",
        "no_code_signing",
        "unknown_root",
        "root_as_leaf",
        "issuer_not_ca",
        "broken_chain",
        "wrong_issuer",
        "precert_signing_certificate",
        "bad_signature",
        "precert_tbs",
    ];
}

/// Parses exactly one certificate (chain position `index`).
fn parse(index: usize, der: &[u8]) -> Result<X509Certificate<'_>, Rejection> {
    match parse_x509_certificate(der) {
        Ok(([], c)) => Ok(c),
        Ok(_) => Err(Rejection::TrailingData(index)),
        Err(e) => Err(Rejection::Unparsable {
            index,
            reason: e.to_string(),
        }),
    }
}

/// The two submission endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `add-chain`: a final certificate, logged as an `x509_entry`.
    X509,
    /// `add-pre-chain`: a precertificate, logged as a `precert_entry`.
    Precert,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::X509 => "x509",
            Kind::Precert => "precert",
        }
    }
}

/// Where a submission comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `add-chain` / `add-pre-chain` from the network: every check, and a resubmission
    /// gets its original SCT.
    Network,
    /// A precertificate the in-process CA signed a moment ago: its signature is not
    /// verified again, and it is not looked up as a resubmission (a fresh random serial
    /// cannot have been logged before).
    OwnCa,
}

/// What a submission is logged as.
#[derive(Debug, Clone)]
pub(crate) enum Logged {
    X509,
    Precert {
        /// SHA-256 of the issuer's SubjectPublicKeyInfo.
        issuer_key_hash: Hash,
        /// The TBS with the poison removed.
        tbs: Vec<u8>,
    },
}

/// A submission that passed every check, ready to be sequenced.
#[derive(Debug, Clone)]
pub(crate) struct Submission {
    pub entry: Logged,
    /// `chain[0]` as submitted.
    pub leaf: Vec<u8>,
    /// SHA-256 of `leaf`: resubmissions of the same certificate get the same entry.
    pub dedup: Hash,
    /// The issuer chain up to and including the accepted root.
    pub issuers: Vec<Vec<u8>>,
    /// SHA-256 of each of `issuers` (how entries and static-ct-api address them),
    /// computed once per verified chain.
    pub issuer_fingerprints: Arc<[Hash]>,
    pub origin: Origin,
}

impl Submission {
    pub(crate) fn kind(&self) -> Kind {
        match self.entry {
            Logged::X509 => Kind::X509,
            Logged::Precert { .. } => Kind::Precert,
        }
    }

    /// The RFC 6962 entry an SCT for this submission signs.
    pub(crate) fn signed_entry(&self) -> crate::model::sct::Entry<'_> {
        match &self.entry {
            Logged::X509 => crate::model::sct::Entry::X509 {
                certificate: &self.leaf,
            },
            Logged::Precert {
                issuer_key_hash,
                tbs,
            } => crate::model::sct::Entry::Precert {
                issuer_key_hash,
                tbs,
            },
        }
    }
}

/// Longest chain accepted (leaf included).
pub(crate) const MAX_CHAIN: usize = 10;
/// A leaf may start this far in the future (clock skew between CA and log).
pub(crate) const NOT_BEFORE_LEEWAY_SECS: i64 = 60;

/// One accepted root.
#[derive(Debug, Clone)]
pub struct Root {
    /// The root certificate, DER.
    pub der: Vec<u8>,
    subject: Vec<u8>,
}

impl Root {
    pub(crate) fn new(der: Vec<u8>) -> Result<Root, Rejection> {
        let subject = parse(0, &der)?.subject().as_raw().to_vec();
        Ok(Root { subject, der })
    }
}

/// Validation settings and the cache of issuer chains already verified.
pub struct Validator {
    roots: Vec<Root>,
    require_code_signing: bool,
    verified_issuer_chains: Mutex<HashMap<Hash, Arc<VerifiedIssuers>>>,
}

/// What the leaf checks need from a verified issuer chain.
#[derive(Debug)]
struct VerifiedIssuers {
    /// Subject of the direct issuer (chain[1]).
    subject: Vec<u8>,
    /// SHA-256 of the direct issuer's SubjectPublicKeyInfo (the precert issuer_key_hash).
    spki_hash: Hash,
    /// The direct issuer is a precertificate signing certificate (not supported).
    precert_signing: bool,
    /// SHA-256 of each certificate of the chain.
    fingerprints: Arc<[Hash]>,
}

impl Validator {
    pub(crate) fn new(roots: Vec<Root>, require_code_signing: bool) -> Validator {
        Validator {
            roots,
            require_code_signing,
            verified_issuer_chains: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// Checks `chain` (leaf first). `verify_leaf_signature` is false only for
    /// precertificates handed over in-process by the CA that just signed them.
    pub(crate) fn validate(
        &self,
        chain: &[Vec<u8>],
        kind: Kind,
        now_secs: i64,
        origin: Origin,
    ) -> Result<Submission, Rejection> {
        if chain.is_empty() {
            return Err(Rejection::EmptyChain);
        }
        if chain.len() > MAX_CHAIN {
            return Err(Rejection::ChainTooLong);
        }
        // Only the leaf is parsed per submission; what the checks need from an issuer
        // chain is cached once it verified (the CA sends the same chain every time).
        let leaf = parse(0, &chain[0])?;
        let leaf = &leaf;

        // Entry type.
        let poisons: Vec<_> = leaf
            .extensions()
            .iter()
            .filter(|e| e.oid.as_bytes() == oid::CT_POISON.content)
            .collect();
        match kind {
            Kind::Precert if poisons.len() != 1 || !poisons[0].critical => {
                return Err(Rejection::NotPrecertificate);
            }
            Kind::X509 if !poisons.is_empty() => return Err(Rejection::UnexpectedPrecertificate),
            _ => {}
        }

        // Validity now.
        let nb = leaf.validity().not_before.timestamp();
        let na = leaf.validity().not_after.timestamp();
        if na < now_secs {
            return Err(Rejection::Expired);
        }
        if nb > now_secs.saturating_add(NOT_BEFORE_LEEWAY_SECS) {
            return Err(Rejection::NotYetValid);
        }
        if self.require_code_signing && !x509::has_code_signing_eku(leaf) {
            return Err(Rejection::NoCodeSigning);
        }

        // Issuers: complete to an accepted root.
        let mut issuers: Vec<Vec<u8>> = chain[1..].to_vec();
        let ends_at_root = self.roots.iter().any(|r| Some(&r.der) == chain.last());
        if !ends_at_root || chain.len() == 1 {
            let last_issuer = if chain.len() == 1 {
                leaf.issuer().as_raw().to_vec()
            } else {
                let last = chain.len() - 1;
                parse(last, &chain[last])?.issuer().as_raw().to_vec()
            };
            let root = self
                .roots
                .iter()
                .find(|r| r.subject == last_issuer)
                .ok_or(Rejection::UnknownRoot)?;
            issuers.push(root.der.clone());
        }
        if issuers.is_empty() {
            return Err(Rejection::RootAsLeaf);
        }
        let info = self.verify_issuers(&issuers)?;
        if leaf.issuer().as_raw() != info.subject.as_slice() {
            return Err(Rejection::WrongIssuer);
        }
        if info.precert_signing {
            return Err(Rejection::PrecertSigningCertificate);
        }
        if origin == Origin::Network {
            let direct_issuer = parse(1, &issuers[0])?;
            if !x509::is_signed_by(leaf, &direct_issuer) {
                return Err(Rejection::BadSignature);
            }
        }

        let entry = match kind {
            Kind::X509 => Logged::X509,
            Kind::Precert => Logged::Precert {
                issuer_key_hash: info.spki_hash,
                tbs: x509::tbs_without(leaf.tbs_certificate.as_ref(), &oid::CT_POISON)
                    .map_err(Rejection::PrecertTbs)?
                    .ok_or(Rejection::NotPrecertificate)?,
            },
        };
        Ok(Submission {
            entry,
            leaf: chain[0].clone(),
            dedup: sha256(&chain[0]),
            issuers,
            issuer_fingerprints: info.fingerprints.clone(),
            origin,
        })
    }

    /// A precertificate the in-process CA signed a moment ago, with what the CA already
    /// knows about it: the SHA-256 of its issuer's key and its TBS without the poison
    /// (the entry an SCT signs). The leaf is not parsed again: the CA built it from the
    /// same prepared TBS, on the same clock, with the poison and codeSigning its profile
    /// always carries. The issuer chain is checked as for any submission (cached once
    /// verified) and must be the one whose key `issuer_key_hash` names. `None` when the
    /// chain does not end at an accepted root itself: the caller then validates it fully.
    pub(crate) fn own_precertificate(
        &self,
        chain: &[Vec<u8>],
        issuer_key_hash: &Hash,
        unpoisoned_tbs: &[u8],
    ) -> Option<Result<Submission, Rejection>> {
        if chain.len() < 2 || chain.len() > MAX_CHAIN {
            return None;
        }
        if !self.roots.iter().any(|r| Some(&r.der) == chain.last()) {
            return None;
        }
        let issuers = chain[1..].to_vec();
        Some(self.verify_issuers(&issuers).and_then(|info| {
            if info.spki_hash != *issuer_key_hash {
                return Err(Rejection::WrongIssuer);
            }
            if info.precert_signing {
                return Err(Rejection::PrecertSigningCertificate);
            }
            debug_assert_eq!(
                x509::precert_tbs(&chain[0]).ok().as_deref(),
                Some(unpoisoned_tbs),
                "the CA's unpoisoned TBS is its precertificate's TBS without the poison"
            );
            Ok(Submission {
                entry: Logged::Precert {
                    issuer_key_hash: *issuer_key_hash,
                    tbs: unpoisoned_tbs.to_vec(),
                },
                leaf: chain[0].clone(),
                dedup: sha256(&chain[0]),
                issuers,
                issuer_fingerprints: info.fingerprints.clone(),
                origin: Origin::OwnCa,
            })
        }))
    }

    /// Verifies an issuer chain (each certificate a CA signed by the next, ending at an
    /// accepted root) and returns what leaf checks need from it; remembers chains already
    /// verified.
    fn verify_issuers(&self, issuers: &[Vec<u8>]) -> Result<Arc<VerifiedIssuers>, Rejection> {
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
            .map(|(i, d)| parse(i + 1, d))
            .collect::<Result<_, _>>()?;
        for (i, c) in parsed.iter().enumerate() {
            let is_root = i + 1 == parsed.len();
            if !is_root {
                if !x509::is_ca(c) {
                    return Err(Rejection::IssuerNotCa(i + 1));
                }
                if c.issuer().as_raw() != parsed[i + 1].subject().as_raw()
                    || !x509::is_signed_by(c, &parsed[i + 1])
                {
                    return Err(Rejection::BrokenChain(i + 1));
                }
            }
        }
        if !self.roots.iter().any(|r| Some(&r.der) == issuers.last()) {
            return Err(Rejection::UnknownRoot);
        }
        let direct = &parsed[0];
        let info = Arc::new(VerifiedIssuers {
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
