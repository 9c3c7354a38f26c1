//! The leaf certificate profile (fulcio-compat section 3), built as DER by hand so the
//! extension order is exactly Fulcio's and the precertificate and the final certificate
//! share every byte of their TBS but the last extension.

use super::CaError;
use super::signer::Signer;
use crate::model::der;
use crate::model::extensions::Extension;
use crate::model::oid;
use crate::model::{Principal, PublicKey};
use aws_lc_rs::digest;
use time::OffsetDateTime;

/// Certificate lifetime: ten minutes, as Fulcio.
pub(crate) const LEAF_LIFETIME_SECS: i64 = 600;

/// A leaf TBS with everything decided, waiting for its last extension (CT poison or SCT
/// list). Only [`super::CertificateAuthority::prepare`] makes one, after the principal and
/// key have been checked, so it is the only thing the signing methods accept.
#[derive(Debug, Clone)]
pub struct PreparedLeaf {
    /// TBS fields from `version` through `subjectPublicKeyInfo`, encoded and concatenated.
    head: Vec<u8>,
    /// The DER of every extension before the last one, concatenated in order.
    extensions: Vec<u8>,
    pub serial: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
}

impl PreparedLeaf {
    /// The TBS with `last` as the final extension (or none).
    pub(crate) fn tbs(&self, last: Option<&Extension>) -> Vec<u8> {
        let last = last.map(|e| e.to_der()).unwrap_or_default();
        let exts = der::sequence(&[&self.extensions, &last]);
        let exts = der::tlv(der::context_constructed(3), &exts);
        der::sequence(&[&self.head, &exts])
    }
}

/// The issuing side of a leaf: what comes from the CA certificate.
pub(crate) struct IssuerInfo<'a> {
    pub subject_raw: &'a [u8],
    pub key_id: Option<&'a [u8]>,
    /// No leaf may be valid after this (Unix seconds): the chain's earliest notAfter.
    pub not_after_limit: i64,
}

pub(crate) fn prepare(
    issuer: &IssuerInfo<'_>,
    signer: &dyn Signer,
    principal: &Principal,
    key: &PublicKey,
    now_unix: i64,
) -> Result<PreparedLeaf, CaError> {
    let serial = random_serial()?;
    let not_before = now_unix;
    let not_after = now_unix
        .saturating_add(LEAF_LIFETIME_SECS)
        .min(issuer.not_after_limit);
    let version = [0xa0, 0x03, 0x02, 0x01, 0x02];
    let head = [
        version.as_slice(),
        &der::unsigned_integer(&serial),
        &signer.algorithm().algorithm_identifier(),
        issuer.subject_raw,
        &der::sequence(&[&time(not_before)?, &time(not_after)?]),
        &[der::TAG_SEQUENCE, 0],
        key.spki_der(),
    ]
    .concat();

    let mut extensions = Vec::with_capacity(1024);
    let mut push = |e: Extension| extensions.extend_from_slice(&e.to_der());
    push(Extension::new(
        &oid::KEY_USAGE,
        true,
        vec![der::TAG_BIT_STRING, 0x02, 0x07, 0x80],
    ));
    push(Extension::new(
        &oid::EXT_KEY_USAGE,
        false,
        der::sequence(&[&oid::EKU_CODE_SIGNING.tlv()]),
    ));
    let ski = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, key.key_bits());
    push(Extension::new(
        &oid::SUBJECT_KEY_IDENTIFIER,
        false,
        der::octet_string(ski.as_ref()),
    ));
    if let Some(kid) = issuer.key_id {
        push(Extension::new(
            &oid::AUTHORITY_KEY_IDENTIFIER,
            false,
            der::sequence(&[&der::tlv(der::context_primitive(0), kid)]),
        ));
    }
    push(principal.san.extension());
    for e in principal.extensions.render()? {
        push(e);
    }
    Ok(PreparedLeaf {
        head,
        extensions,
        serial,
        not_before,
        not_after,
    })
}

/// 20 random bytes with the top bit cleared: positive, at most 159 bits, never zero.
fn random_serial() -> Result<Vec<u8>, CaError> {
    loop {
        let mut s = vec![0u8; 20];
        aws_lc_rs::rand::fill(&mut s).map_err(|_| CaError::Randomness)?;
        s[0] &= 0x7f;
        if s.iter().any(|b| *b != 0) {
            return Ok(s);
        }
    }
}

/// UTCTime before 2050, GeneralizedTime after, whole seconds, `Z`.
fn time(unix: i64) -> Result<Vec<u8>, CaError> {
    let t = OffsetDateTime::from_unix_timestamp(unix).map_err(|_| CaError::TimeOutOfRange(unix))?;
    let (tag, text) = if t.year() < 2050 {
        (
            der::TAG_UTC_TIME,
            format!(
                "{:02}{:02}{:02}{:02}{:02}{:02}Z",
                t.year() % 100,
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        )
    } else {
        (
            der::TAG_GENERALIZED_TIME,
            format!(
                "{:04}{:02}{:02}{:02}{:02}{:02}Z",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        )
    };
    Ok(der::tlv(tag, text.as_bytes()))
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`,
/// signed without blocking the calling task (the key may be in an HSM or a KMS).
pub(crate) async fn assemble(tbs: &[u8], signer: &dyn Signer) -> Result<Vec<u8>, CaError> {
    let signature = signer.sign_async(tbs).await?;
    Ok(der::sequence(&[
        tbs,
        &signer.algorithm().algorithm_identifier(),
        &der::bit_string(&signature),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(time(0).unwrap(), b"\x17\x0d700101000000Z");
        assert_eq!(time(2_524_608_000).unwrap(), b"\x18\x0f20500101000000Z");
    }
}
