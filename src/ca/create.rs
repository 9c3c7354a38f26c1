//! Generating CA material with rcgen: the data directory's default root + intermediate,
//! `brevis ca create`, and the ephemeral CA.

use super::signer::{LocalSigner, Signer, SigningAlgorithm};
use super::{CaError, ChainError};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer;

/// A freshly generated certificate and its key.
pub(crate) struct Generated {
    pub der: Vec<u8>,
    pub signer: LocalSigner,
}

/// Options for a new root + intermediate pair.
#[derive(Debug, Clone)]
pub struct PairSpec {
    /// Subject `O` of both certificates.
    pub organization: String,
    /// Start of both subject `CN`s: `"{prefix} root"` and `"{prefix} intermediate"`.
    pub common_name_prefix: String,
    /// Key algorithm of the root.
    pub root_algorithm: SigningAlgorithm,
    /// Key algorithm of the intermediate, the key that signs every leaf.
    pub intermediate_algorithm: SigningAlgorithm,
    /// Root lifetime in years of 365 days.
    pub root_years: i64,
    /// Intermediate lifetime in years of 365 days, cut to end no later than the root.
    pub intermediate_years: i64,
}

impl Default for PairSpec {
    fn default() -> Self {
        PairSpec {
            organization: "brevis".into(),
            common_name_prefix: "brevis".into(),
            // The root signs rarely; the intermediate signs every certificate, so it gets the
            // fastest curve.
            root_algorithm: SigningAlgorithm::EcdsaP384Sha384,
            intermediate_algorithm: SigningAlgorithm::EcdsaP256Sha256,
            root_years: 10,
            intermediate_years: 5,
        }
    }
}

fn serial() -> Result<SerialNumber, CaError> {
    let mut s = [0u8; 20];
    aws_lc_rs::rand::fill(&mut s).map_err(|_| CaError::Randomness)?;
    s[0] &= 0x7f;
    s[0] |= 0x01; // keep it 20 bytes long and non-zero
    Ok(SerialNumber::from_slice(&s))
}

fn whole_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// A self-signed root: CN + O, KU certSign|cRLSign, basicConstraints CA:TRUE, SKI, no EKU.
pub(crate) fn root(
    spec: &PairSpec,
    now: OffsetDateTime,
) -> Result<(Generated, CertificateParams), CaError> {
    let signer = LocalSigner::generate(spec.root_algorithm)?;
    let params = root_params(spec, now)?;
    let cert = params.self_signed(&signer)?;
    Ok((
        Generated {
            der: cert.der().to_vec(),
            signer,
        },
        params,
    ))
}

fn root_params(spec: &PairSpec, now: OffsetDateTime) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("{} root", spec.common_name_prefix),
    );
    dn.push(DnType::OrganizationName, spec.organization.clone());
    params.distinguished_name = dn;
    params.serial_number = Some(serial()?);
    params.not_before = whole_second(now);
    params.not_after = whole_second(now + Duration::days(365 * spec.root_years));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.key_identifier_method = KeyIdMethod::Sha256;
    Ok(params)
}

/// An intermediate under `root`: KU certSign|cRLSign, EKU codeSigning, CA:TRUE pathlen 0,
/// SKI, AKI, lifetime inside the root's.
pub(crate) fn intermediate(
    spec: &PairSpec,
    root_params: &CertificateParams,
    root_signer: &LocalSigner,
    now: OffsetDateTime,
) -> Result<Generated, CaError> {
    let issuer = Issuer::from_params(root_params, root_signer);
    intermediate_signed_by(spec, &issuer, root_params.not_after, now)
}

/// A new intermediate under an existing root certificate (DER) and its key: how an
/// operator rotates the issuing key without changing what clients trust.
pub(crate) fn intermediate_under(
    spec: &PairSpec,
    root_der: &[u8],
    root_signer: &LocalSigner,
    now: OffsetDateTime,
) -> Result<Generated, CaError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(root_der).map_err(|e| ChainError::Unparsable {
            index: 0,
            reason: e.to_string(),
        })?;
    if root_signer.public_key_spki() != parsed.public_key().raw {
        return Err(CaError::RootKeyMismatch);
    }
    let not_after = parsed.validity().not_after.to_datetime();
    let der = rustls::pki_types::CertificateDer::from(root_der.to_vec());
    let issuer = Issuer::from_ca_cert_der(&der, root_signer)?;
    intermediate_signed_by(spec, &issuer, not_after, now)
}

fn intermediate_signed_by(
    spec: &PairSpec,
    issuer: &Issuer<'_, &LocalSigner>,
    root_not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Generated, CaError> {
    let signer = LocalSigner::generate(spec.intermediate_algorithm)?;
    let der = intermediate_certificate(spec, &signer, issuer, root_not_after, now)?;
    Ok(Generated { der, signer })
}

/// Lets rcgen use any [`Signer`] (a key in an HSM or a KMS): as the subject key of a
/// certificate (its public half) and as the issuer that signs it.
pub(crate) struct SignerKey<'a> {
    signer: &'a dyn Signer,
    bits: Vec<u8>,
}

impl<'a> SignerKey<'a> {
    pub(crate) fn new(signer: &'a dyn Signer) -> Result<SignerKey<'a>, CaError> {
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(signer.public_key_spki())
            .map_err(|e| ChainError::Unparsable {
                index: 0,
                reason: format!("the key's public key: {e}"),
            })?;
        Ok(SignerKey {
            bits: spki.subject_public_key.data.to_vec(),
            signer,
        })
    }
}

impl rcgen::PublicKeyData for SignerKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.signer.algorithm().rcgen()
    }
}

impl rcgen::SigningKey for SignerKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.signer
            .sign(msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// A self-signed root for a key held anywhere (`brevis ca create` with the root in a
/// PKCS#11 token): the same profile as [`root`].
pub(crate) fn root_for(
    spec: &PairSpec,
    key: &SignerKey<'_>,
    now: OffsetDateTime,
) -> Result<(Vec<u8>, CertificateParams), CaError> {
    let params = root_params(spec, now)?;
    let cert = params.self_signed(key)?;
    Ok((cert.der().to_vec(), params))
}

/// An intermediate certificate for an existing key (in an HSM or a KMS), signed by a root
/// given as its certificate (DER) and a signer: the same profile as [`intermediate`].
pub(crate) fn intermediate_for<S: rcgen::SigningKey>(
    spec: &PairSpec,
    subject: &SignerKey<'_>,
    root_der: &[u8],
    root_key: &S,
    now: OffsetDateTime,
) -> Result<Vec<u8>, CaError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(root_der).map_err(|e| ChainError::Unparsable {
            index: 0,
            reason: e.to_string(),
        })?;
    if root_key.subject_public_key_info() != parsed.public_key().raw {
        return Err(CaError::RootKeyMismatch);
    }
    let not_after = parsed.validity().not_after.to_datetime();
    let der = rustls::pki_types::CertificateDer::from(root_der.to_vec());
    let issuer = Issuer::from_ca_cert_der(&der, root_key)?;
    intermediate_certificate(spec, subject, &issuer, not_after, now)
}

fn intermediate_certificate<S: rcgen::SigningKey>(
    spec: &PairSpec,
    subject: &impl rcgen::PublicKeyData,
    issuer: &Issuer<'_, S>,
    root_not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Vec<u8>, CaError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("{} intermediate", spec.common_name_prefix),
    );
    dn.push(DnType::OrganizationName, spec.organization.clone());
    params.distinguished_name = dn;
    params.serial_number = Some(serial()?);
    params.not_before = whole_second(now);
    let end = whole_second(now + Duration::days(365 * spec.intermediate_years));
    params.not_after = end.min(root_not_after);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;
    let cert = params.signed_by(subject, issuer)?;
    Ok(cert.der().to_vec())
}

/// Fulcio's ephemeral CA: an in-memory P-256 self-signed root with Fulcio's subject
/// (`O=sigstore, C=USA, ST=WA, L=Kirkland, street=767 6th St S, postalCode=98033`),
/// ten years, KU certSign|cRLSign, CA:TRUE pathlen 1.
pub(crate) fn ephemeral_root(now: OffsetDateTime) -> Result<Generated, CaError> {
    let signer = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "sigstore");
    dn.push(DnType::CountryName, "USA");
    dn.push(DnType::StateOrProvinceName, "WA");
    dn.push(DnType::LocalityName, "Kirkland");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 9]), "767 6th St S");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 17]), "98033");
    params.distinguished_name = dn;
    params.serial_number = Some(serial()?);
    params.not_before = whole_second(now);
    params.not_after = whole_second(now + Duration::days(3650));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.key_identifier_method = KeyIdMethod::Sha256;
    let cert = params.self_signed(&signer)?;
    debug_assert_eq!(signer.algorithm(), SigningAlgorithm::EcdsaP256Sha256);
    Ok(Generated {
        der: cert.der().to_vec(),
        signer,
    })
}
