//! Helpers over `x509-parser` certificates: signature checks with aws-lc-rs (all curves,
//! P-521 included), and the few extension lookups the CA and the CT log need.

use super::der::{self, DerError};
use super::oid::{self, Oid};
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Verifies `signature` over `message` with the key in `spki`, for the signature algorithm
/// whose OID content bytes are `sig_alg`.
pub(crate) fn verify_with_spki(
    spki: &SubjectPublicKeyInfo<'_>,
    sig_alg: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    super::count::record(super::count::CryptoOp::VerifyCertificate);
    let key_alg = spki.algorithm.algorithm.as_bytes();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.as_bytes().to_vec())
        .unwrap_or_default();
    let alg: &'static dyn VerificationAlgorithm = if key_alg == oid::EC_PUBLIC_KEY.content {
        match (curve.as_slice(), sig_alg) {
            (c, s) if c == oid::CURVE_P256.content && s == oid::ECDSA_SHA256.content => {
                &sig::ECDSA_P256_SHA256_ASN1
            }
            (c, s) if c == oid::CURVE_P256.content && s == oid::ECDSA_SHA384.content => {
                &sig::ECDSA_P256_SHA384_ASN1
            }
            (c, s) if c == oid::CURVE_P384.content && s == oid::ECDSA_SHA256.content => {
                &sig::ECDSA_P384_SHA256_ASN1
            }
            (c, s) if c == oid::CURVE_P384.content && s == oid::ECDSA_SHA384.content => {
                &sig::ECDSA_P384_SHA384_ASN1
            }
            (c, s) if c == oid::CURVE_P384.content && s == oid::ECDSA_SHA512.content => {
                &sig::ECDSA_P384_SHA512_ASN1
            }
            (c, s) if c == oid::CURVE_P521.content && s == oid::ECDSA_SHA256.content => {
                &sig::ECDSA_P521_SHA256_ASN1
            }
            (c, s) if c == oid::CURVE_P521.content && s == oid::ECDSA_SHA384.content => {
                &sig::ECDSA_P521_SHA384_ASN1
            }
            (c, s) if c == oid::CURVE_P521.content && s == oid::ECDSA_SHA512.content => {
                &sig::ECDSA_P521_SHA512_ASN1
            }
            _ => return false,
        }
    } else if key_alg == oid::RSA_ENCRYPTION.content {
        match sig_alg {
            s if s == oid::RSA_SHA256.content => &sig::RSA_PKCS1_2048_8192_SHA256,
            s if s == oid::RSA_SHA384.content => &sig::RSA_PKCS1_2048_8192_SHA384,
            s if s == oid::RSA_SHA512.content => &sig::RSA_PKCS1_2048_8192_SHA512,
            _ => return false,
        }
    } else if key_alg == oid::ED25519.content && sig_alg == oid::ED25519.content {
        &sig::ED25519
    } else {
        return false;
    };
    UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
        .verify(message, signature)
        .is_ok()
}

/// Whether `cert` carries a valid signature by `issuer`'s key.
pub fn is_signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    verify_with_spki(
        issuer.public_key(),
        cert.signature_algorithm.algorithm.as_bytes(),
        cert.tbs_certificate.as_ref(),
        &cert.signature_value.data,
    )
}

/// The subjectKeyIdentifier value, if present.
pub fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

/// Whether the certificate is a CA (basicConstraints cA = TRUE).
pub(crate) fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// EKU usage test the way Go's verifier applies it to CA certificates: no EKU extension
/// means any usage; otherwise codeSigning or anyExtendedKeyUsage must be listed.
pub(crate) fn allows_code_signing(cert: &X509Certificate<'_>) -> bool {
    match cert.extended_key_usage() {
        Ok(Some(eku)) => eku.value.code_signing || eku.value.any,
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Whether the certificate explicitly lists EKU codeSigning.
pub(crate) fn has_code_signing_eku(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.code_signing)
}

/// Whether the certificate carries an extension with the given OID.
pub(crate) fn has_extension(cert: &X509Certificate<'_>, oid_content: &[u8]) -> bool {
    cert.extensions()
        .iter()
        .any(|e| e.oid.as_bytes() == oid_content)
}

/// The TBSCertificate bytes of a DER certificate (which must be exactly one certificate).
pub(crate) fn tbs_of(cert: &[u8]) -> Result<&[u8], DerError> {
    let outer = der::read_single(cert, der::TAG_SEQUENCE)?;
    let (tbs, _) = der::read_tlv(outer.content)?;
    Ok(tbs.raw)
}

/// A TBS with the extension `oid` removed; `None` when it carries none.
pub(crate) fn tbs_without(tbs: &[u8], oid: &Oid) -> Result<Option<Vec<u8>>, DerError> {
    der::tbs_without_extension(tbs, &oid.tlv())
}

/// What an SCT for a precertificate signs (RFC 6962 3.2): its TBS with the CT poison
/// removed. An error when `precert` does not parse or carries no poison.
pub fn precert_tbs(precert: &[u8]) -> Result<Vec<u8>, DerError> {
    tbs_without(tbs_of(precert)?, &oid::CT_POISON)?
        .ok_or(DerError("the precertificate has no CT poison extension"))
}
