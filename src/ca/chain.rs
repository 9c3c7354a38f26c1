//! The CA certificate chain: parsing and the startup checks Fulcio applies to file-backed
//! CAs (fulcio-compat section 10).

use crate::model::{PublicKey, pem, x509};
use std::time::SystemTime;
use thiserror::Error;
use x509_parser::prelude::*;

/// Why a CA certificate chain was rejected at load time.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChainError {
    /// The chain (file or slice) contains no certificates.
    #[error("the certificate chain file holds no certificates")]
    Empty,
    /// A certificate (or the PEM text around it) fails to decode.
    #[error("certificate {index} of the chain does not parse: {reason}")]
    Unparsable {
        /// Position of the certificate in the chain (0 = issuing certificate; also 0 for PEM
        /// errors).
        index: usize,
        /// The parser's error message.
        reason: String,
    },
    /// A certificate's issuer name does not match, or its signature does not verify against,
    /// the next certificate of the chain.
    #[error("certificate {index} of the chain ({subject}) is not signed by the next one")]
    BrokenLink {
        /// Position of the certificate in the chain (0 = issuing certificate).
        index: usize,
        /// Subject DN of the offending certificate.
        subject: String,
    },
    /// The last certificate is not a self-issued certificate whose signature verifies with its
    /// own key.
    #[error("the last certificate of the chain ({subject}) is not a self-signed root")]
    NotRooted {
        /// Subject DN of the last certificate.
        subject: String,
    },
    /// A certificate's notBefore is in the future or its notAfter is in the past.
    #[error("certificate {index} of the chain ({subject}) is not valid at this time")]
    OutsideValidity {
        /// Position of the certificate in the chain (0 = issuing certificate).
        index: usize,
        /// Subject DN of the offending certificate.
        subject: String,
    },
    /// A certificate lacks basicConstraints with cA set.
    #[error("certificate {index} of the chain ({subject}) is not a CA (basicConstraints cA)")]
    NotCa {
        /// Position of the certificate in the chain (0 = issuing certificate).
        index: usize,
        /// Subject DN of the offending certificate.
        subject: String,
    },
    /// A certificate has an extended key usage extension that does not allow codeSigning.
    #[error(
        "certificate {index} of the chain ({subject}) has an extended key usage without codeSigning"
    )]
    EkuDisallows {
        /// Position of the certificate in the chain (0 = issuing certificate).
        index: usize,
        /// Subject DN of the offending certificate.
        subject: String,
    },
    /// The issuing certificate is an intermediate (chain longer than one) without an explicit
    /// codeSigning extended key usage.
    #[error(
        "the issuing certificate ({subject}) is an intermediate and must carry extended key usage codeSigning"
    )]
    EkuChaining {
        /// Subject DN of the issuing certificate.
        subject: String,
    },
    /// More CA certificates sit below a certificate than its pathLenConstraint allows.
    #[error("certificate {index} of the chain ({subject}) exceeds its issuer's path length")]
    PathLength {
        /// Position in the chain of the certificate whose pathLenConstraint is exceeded.
        index: usize,
        /// Subject DN of that certificate.
        subject: String,
    },
    /// The signer's public key differs from the issuing certificate's key.
    #[error("the private key does not belong to the issuing certificate ({subject})")]
    KeyMismatch {
        /// Subject DN of the issuing certificate.
        subject: String,
    },
    /// The CA key fails the key-strength checks applied to client keys; holds the reason.
    #[error("the CA key is not acceptable: {0}")]
    WeakKey(String),
}

/// Reads every `CERTIFICATE` block of a PEM chain file, issuing certificate first.
pub fn parse_pem_chain(text: &str) -> Result<Vec<Vec<u8>>, ChainError> {
    let blocks = pem::parse_all(text).map_err(|e| ChainError::Unparsable {
        index: 0,
        reason: e.to_string(),
    })?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.der)
        .collect();
    if certs.is_empty() {
        return Err(ChainError::Empty);
    }
    Ok(certs)
}

/// Validates a CA chain against its signing key the way Fulcio's `VerifyCertChain` does:
/// the chain verifies from `chain[0]` up to `chain[last]` as a self-signed root with EKU
/// codeSigning allowed, `chain[0]` is a CA, an intermediate `chain[0]` carries EKU
/// codeSigning, `chain[0]` holds the signer's public key, and that key passes the same
/// strength checks as client keys.
pub(crate) fn validate(
    chain: &[Vec<u8>],
    signer_spki: &[u8],
    now: SystemTime,
) -> Result<(), ChainError> {
    if chain.is_empty() {
        return Err(ChainError::Empty);
    }
    let parsed: Vec<X509Certificate<'_>> = chain
        .iter()
        .enumerate()
        .map(|(index, der)| {
            parse_x509_certificate(der)
                .map(|(_, c)| c)
                .map_err(|e| ChainError::Unparsable {
                    index,
                    reason: e.to_string(),
                })
        })
        .collect::<Result<_, _>>()?;
    let subject = |i: usize| parsed[i].subject().to_string();
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);

    let last = parsed.len() - 1;
    if parsed[last].subject().as_raw() != parsed[last].issuer().as_raw()
        || !x509::is_signed_by(&parsed[last], &parsed[last])
    {
        // A single non-root certificate is reported as "not a CA" first when that is also
        // true, matching what operators see from Fulcio for a leaf passed as a CA.
        if parsed.len() == 1 && !x509::is_ca(&parsed[0]) {
            return Err(ChainError::NotCa {
                index: 0,
                subject: subject(0),
            });
        }
        return Err(ChainError::NotRooted {
            subject: subject(last),
        });
    }
    for (i, cert) in parsed.iter().enumerate() {
        let validity = cert.validity();
        if validity.not_before.timestamp() > now_secs || validity.not_after.timestamp() < now_secs {
            return Err(ChainError::OutsideValidity {
                index: i,
                subject: subject(i),
            });
        }
        if !x509::is_ca(cert) {
            return Err(ChainError::NotCa {
                index: i,
                subject: subject(i),
            });
        }
        if !x509::allows_code_signing(cert) {
            return Err(ChainError::EkuDisallows {
                index: i,
                subject: subject(i),
            });
        }
        if i < last {
            let issuer = &parsed[i + 1];
            if cert.issuer().as_raw() != issuer.subject().as_raw()
                || !x509::is_signed_by(cert, issuer)
            {
                return Err(ChainError::BrokenLink {
                    index: i,
                    subject: subject(i),
                });
            }
        }
        // pathLenConstraint of each CA above bounds the CAs below it.
        if let Ok(Some(bc)) = cert.basic_constraints()
            && let Some(max) = bc.value.path_len_constraint
            && (i as u32) > max
        {
            // `i` CA certificates sit below this one (the leaf is not counted).
            return Err(ChainError::PathLength {
                index: i,
                subject: subject(i),
            });
        }
    }
    if parsed.len() > 1 && !x509::has_code_signing_eku(&parsed[0]) {
        return Err(ChainError::EkuChaining {
            subject: subject(0),
        });
    }
    let issuing_spki = parsed[0].public_key().raw;
    if !same_key(issuing_spki, signer_spki) {
        return Err(ChainError::KeyMismatch {
            subject: subject(0),
        });
    }
    PublicKey::from_spki_der(signer_spki).map_err(|e| ChainError::WeakKey(e.to_string()))?;
    Ok(())
}

/// The window in which every certificate of `chain` is valid (Unix seconds): the latest
/// notBefore and the earliest notAfter.
pub(crate) fn validity_window(chain: &[Vec<u8>]) -> Result<(i64, i64), ChainError> {
    let mut window = (i64::MIN, i64::MAX);
    for (index, der) in chain.iter().enumerate() {
        let (_, c) = parse_x509_certificate(der).map_err(|e| ChainError::Unparsable {
            index,
            reason: e.to_string(),
        })?;
        window.0 = window.0.max(c.validity().not_before.timestamp());
        window.1 = window.1.min(c.validity().not_after.timestamp());
    }
    Ok(window)
}

/// Compares two SPKIs by their canonical re-encoding (tolerates e.g. a missing NULL).
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (PublicKey::from_spki_der(a), PublicKey::from_spki_der(b)) {
        (Ok(x), Ok(y)) => x.spki_der() == y.spki_der(),
        _ => false,
    }
}
