//! Validated client public keys and the signatures made with them.
//!
//! A [`PublicKey`] can only be built from an encoding that parses, names a supported
//! algorithm and passes the strength checks Fulcio applies (sigstore's `goodkey`, which is
//! Let's Encrypt boulder's policy): RSA moduli of exactly 2048, 3072 or 4096 bits with
//! exponent 65537 and no small, ROCA or Fermat-close factors; EC keys on P-256, P-384 or
//! P-521 with a valid point; Ed25519.

use super::der::{self, TAG_BIT_STRING, TAG_INTEGER, TAG_NULL, TAG_OID, TAG_SEQUENCE};
use super::oid;
use super::pem;
use aws_lc_rs::signature::{
    self as sig, ParsedPublicKey, UnparsedPublicKey, VerificationAlgorithm,
};
use num_bigint::BigUint;
use num_traits::{ToPrimitive, Zero};
use std::fmt;
use std::sync::LazyLock;
use thiserror::Error;

/// Message digests a client may pair with its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub(crate) fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
        }
    }
}

/// The family, size or curve of a validated key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

impl KeyKind {
    /// The hash Fulcio pairs with the key on the public-key path (curve-matched for ECDSA).
    pub(crate) fn default_hash(self) -> Option<HashAlg> {
        match self {
            KeyKind::EcdsaP256 => Some(HashAlg::Sha256),
            KeyKind::EcdsaP384 => Some(HashAlg::Sha384),
            KeyKind::EcdsaP521 => Some(HashAlg::Sha512),
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => Some(HashAlg::Sha256),
            KeyKind::Ed25519 => None,
        }
    }

    /// Go's type name for the key, as Fulcio prints it in allow-list errors.
    pub(crate) fn go_type(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => "*ecdsa.PublicKey",
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => "*rsa.PublicKey",
            KeyKind::Ed25519 => "ed25519.PublicKey",
        }
    }

    /// A short label for logs and metrics (closed set).
    pub(crate) fn label(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 => "ecdsa-p256",
            KeyKind::EcdsaP384 => "ecdsa-p384",
            KeyKind::EcdsaP521 => "ecdsa-p521",
            KeyKind::Rsa2048 => "rsa-2048",
            KeyKind::Rsa3072 => "rsa-3072",
            KeyKind::Rsa4096 => "rsa-4096",
            KeyKind::Ed25519 => "ed25519",
        }
    }

    fn ecdsa_coordinate_len(self) -> Option<usize> {
        match self {
            KeyKind::EcdsaP256 => Some(32),
            KeyKind::EcdsaP384 => Some(48),
            KeyKind::EcdsaP521 => Some(66),
            _ => None,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A signature scheme a client used: the key's family plus the hash (none for Ed25519).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureScheme {
    Ecdsa(HashAlg),
    RsaPkcs1(HashAlg),
    Ed25519,
}

impl SignatureScheme {
    /// Maps a signature AlgorithmIdentifier OID (content bytes) to a scheme; `None` for the
    /// algorithms Fulcio does not recognise on CSRs (RSA-PSS, SHA-1, ...).
    pub(crate) fn from_oid(oid_content: &[u8]) -> Option<SignatureScheme> {
        Some(match oid_content {
            c if c == oid::ECDSA_SHA256.content => SignatureScheme::Ecdsa(HashAlg::Sha256),
            c if c == oid::ECDSA_SHA384.content => SignatureScheme::Ecdsa(HashAlg::Sha384),
            c if c == oid::ECDSA_SHA512.content => SignatureScheme::Ecdsa(HashAlg::Sha512),
            c if c == oid::RSA_SHA256.content => SignatureScheme::RsaPkcs1(HashAlg::Sha256),
            c if c == oid::RSA_SHA384.content => SignatureScheme::RsaPkcs1(HashAlg::Sha384),
            c if c == oid::RSA_SHA512.content => SignatureScheme::RsaPkcs1(HashAlg::Sha512),
            c if c == oid::ED25519.content => SignatureScheme::Ed25519,
            _ => return None,
        })
    }

    pub(crate) fn hash(self) -> Option<HashAlg> {
        match self {
            SignatureScheme::Ecdsa(h) | SignatureScheme::RsaPkcs1(h) => Some(h),
            SignatureScheme::Ed25519 => None,
        }
    }
}

/// Why a client public key was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The PEM or DER encoding is malformed (the message says where).
    #[error("malformed public key: {0}")]
    Malformed(&'static str),
    /// The key algorithm is not EC, RSA or Ed25519 (its OID, dotted).
    #[error("unsupported public key algorithm: {0}")]
    Unsupported(String),
    /// The key fails a strength check: unsupported curve or RSA size, exponent other than 65537,
    /// weak modulus (small factor, ROCA, Fermat) or small-order Ed25519 point.
    #[error("insecure public key: {0}")]
    Insecure(String),
}

/// A client public key that parsed and passed the strength checks.
pub struct PublicKey {
    kind: KeyKind,
    /// Canonical DER SubjectPublicKeyInfo.
    spki: Vec<u8>,
    /// The contents of the SPKI's BIT STRING (EC point, RSAPublicKey, or Ed25519 key).
    key_bits: Vec<u8>,
    parsed: ParsedPublicKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &self.kind)
            .finish()
    }
}

impl PublicKey {
    /// Parses Fulcio's `publicKey.content`: a PEM `PUBLIC KEY` (or PKCS#1 `RSA PUBLIC KEY`)
    /// block, or failing PEM, DER SubjectPublicKeyInfo.
    pub(crate) fn from_content(content: &[u8]) -> Result<PublicKey, KeyError> {
        if let Ok(text) = std::str::from_utf8(content)
            && text.contains("-----BEGIN")
        {
            let block = pem::parse_first(text).map_err(|_| KeyError::Malformed("invalid PEM"))?;
            return match block.label.as_str() {
                "PUBLIC KEY" => PublicKey::from_spki_der(&block.der),
                "RSA PUBLIC KEY" => PublicKey::from_spki_der(&rsa_spki(&block.der)),
                _ => Err(KeyError::Malformed("unexpected PEM block type")),
            };
        }
        PublicKey::from_spki_der(content)
    }

    /// Parses and validates a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(spki: &[u8]) -> Result<PublicKey, KeyError> {
        super::count::record(super::count::CryptoOp::ParsePublicKey);
        let outer = der::read_single(spki, TAG_SEQUENCE)
            .map_err(|_| KeyError::Malformed("not a SubjectPublicKeyInfo"))?;
        let fields = der::children(outer.content)
            .map_err(|_| KeyError::Malformed("not a SubjectPublicKeyInfo"))?;
        let [alg, bits] = fields.as_slice() else {
            return Err(KeyError::Malformed("not a SubjectPublicKeyInfo"));
        };
        if alg.tag != TAG_SEQUENCE || bits.tag != TAG_BIT_STRING {
            return Err(KeyError::Malformed("not a SubjectPublicKeyInfo"));
        }
        let alg_fields =
            der::children(alg.content).map_err(|_| KeyError::Malformed("bad algorithm"))?;
        let Some(alg_oid) = alg_fields.first().filter(|t| t.tag == TAG_OID) else {
            return Err(KeyError::Malformed("bad algorithm"));
        };
        let params = alg_fields.get(1);
        if bits.content.first() != Some(&0) {
            return Err(KeyError::Malformed("public key bit string has unused bits"));
        }
        let key_bits = &bits.content[1..];
        match alg_oid.content {
            c if c == oid::EC_PUBLIC_KEY.content => {
                let curve = params
                    .filter(|p| p.tag == TAG_OID)
                    .ok_or(KeyError::Malformed("EC key without a named curve"))?;
                ec_key(curve.content, key_bits)
            }
            c if c == oid::RSA_ENCRYPTION.content => {
                if params.is_some_and(|p| p.tag != TAG_NULL) {
                    return Err(KeyError::Malformed("RSA key parameters must be NULL"));
                }
                rsa_key(key_bits)
            }
            c if c == oid::ED25519.content => {
                if params.is_some() || key_bits.len() != 32 {
                    return Err(KeyError::Malformed("bad Ed25519 key"));
                }
                ed25519::check_point(key_bits)?;
                let parsed = ParsedPublicKey::new(&sig::ED25519, key_bits)
                    .map_err(|_| KeyError::Malformed("bad Ed25519 key"))?;
                Ok(PublicKey::assemble(
                    KeyKind::Ed25519,
                    alg.raw,
                    key_bits,
                    parsed,
                ))
            }
            other => Err(KeyError::Unsupported(der::oid_to_string(other))),
        }
    }

    fn assemble(kind: KeyKind, alg: &[u8], key_bits: &[u8], parsed: ParsedPublicKey) -> PublicKey {
        PublicKey {
            kind,
            spki: der::sequence(&[alg, &der::bit_string(key_bits)]),
            key_bits: key_bits.to_vec(),
            parsed,
        }
    }

    pub(crate) fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Canonical DER SubjectPublicKeyInfo.
    pub(crate) fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The subjectPublicKey BIT STRING contents (what an SKI is computed over).
    pub(crate) fn key_bits(&self) -> &[u8] {
        &self.key_bits
    }

    /// Verifies a proof of possession over `message`: the curve's hash for ECDSA with a DER
    /// or raw `r||s` signature, PKCS#1 v1.5 with SHA-256 for RSA, pure Ed25519.
    pub fn verify_proof(&self, message: &[u8], signature: &[u8]) -> bool {
        super::count::record(super::count::CryptoOp::VerifyProof);
        if self.kind == KeyKind::Ed25519 && !ed25519::signature_ok(signature) {
            return false;
        }
        if self.parsed.verify_sig(message, signature).is_ok() {
            return true;
        }
        let fixed: &'static dyn VerificationAlgorithm = match self.kind {
            KeyKind::EcdsaP256 => &sig::ECDSA_P256_SHA256_FIXED,
            KeyKind::EcdsaP384 => &sig::ECDSA_P384_SHA384_FIXED,
            KeyKind::EcdsaP521 => &sig::ECDSA_P521_SHA512_FIXED,
            _ => return false,
        };
        let coord = self.kind.ecdsa_coordinate_len().unwrap_or(0);
        signature.len() == 2 * coord
            && UnparsedPublicKey::new(fixed, &self.key_bits)
                .verify(message, signature)
                .is_ok()
    }

    /// Verifies a signature made with an explicit scheme (a CSR's self-signature).
    pub(crate) fn verify(&self, scheme: SignatureScheme, message: &[u8], signature: &[u8]) -> bool {
        super::count::record(super::count::CryptoOp::VerifyProof);
        let Some(alg) = verification_algorithm(self.kind, scheme) else {
            return false;
        };
        if self.kind == KeyKind::Ed25519 && !ed25519::signature_ok(signature) {
            return false;
        }
        UnparsedPublicKey::new(alg, &self.key_bits)
            .verify(message, signature)
            .is_ok()
    }
}

/// The aws-lc-rs verification algorithm for a key kind and scheme; `None` when the scheme
/// does not fit the key.
pub(crate) fn verification_algorithm(
    kind: KeyKind,
    scheme: SignatureScheme,
) -> Option<&'static dyn VerificationAlgorithm> {
    use HashAlg::*;
    Some(match (kind, scheme) {
        (KeyKind::EcdsaP256, SignatureScheme::Ecdsa(Sha256)) => &sig::ECDSA_P256_SHA256_ASN1,
        (KeyKind::EcdsaP256, SignatureScheme::Ecdsa(Sha384)) => &sig::ECDSA_P256_SHA384_ASN1,
        (KeyKind::EcdsaP256, SignatureScheme::Ecdsa(Sha512)) => &sig::ECDSA_P256_SHA512_ASN1,
        (KeyKind::EcdsaP384, SignatureScheme::Ecdsa(Sha256)) => &sig::ECDSA_P384_SHA256_ASN1,
        (KeyKind::EcdsaP384, SignatureScheme::Ecdsa(Sha384)) => &sig::ECDSA_P384_SHA384_ASN1,
        (KeyKind::EcdsaP384, SignatureScheme::Ecdsa(Sha512)) => &sig::ECDSA_P384_SHA512_ASN1,
        (KeyKind::EcdsaP521, SignatureScheme::Ecdsa(Sha256)) => &sig::ECDSA_P521_SHA256_ASN1,
        (KeyKind::EcdsaP521, SignatureScheme::Ecdsa(Sha384)) => &sig::ECDSA_P521_SHA384_ASN1,
        (KeyKind::EcdsaP521, SignatureScheme::Ecdsa(Sha512)) => &sig::ECDSA_P521_SHA512_ASN1,
        (KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096, SignatureScheme::RsaPkcs1(h)) => {
            match h {
                Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            }
        }
        (KeyKind::Ed25519, SignatureScheme::Ed25519) => &sig::ED25519,
        _ => return None,
    })
}

/// Encodings aws-lc-rs accepts but a CA must not: Ed25519 points of small order (the
/// identity among them: with A = R = identity and S = 0 every message "verifies") and
/// non-canonical encodings, for the key and for a signature's R; and S at or above the
/// group order.
mod ed25519 {
    use super::KeyError;

    /// The y coordinates (little-endian, sign bit clear) of the eight points of order
    /// dividing 8: 0, 1, p-1 and the two of order 8 (libsodium's blocklist; each checked
    /// by `small_order_points_are_small` in the tests).
    const SMALL_ORDER_Y: [[u8; 32]; 5] = [
        [0; 32],
        {
            let mut one = [0; 32];
            one[0] = 1;
            one
        },
        {
            let mut p_minus_1 = [0xff; 32];
            p_minus_1[0] = 0xec;
            p_minus_1[31] = 0x7f;
            p_minus_1
        },
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
    ];

    /// The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// `a < b` for little-endian numbers of equal length.
    fn less_than(a: &[u8], b: &[u8]) -> bool {
        a.iter().rev().cmp(b.iter().rev()) == std::cmp::Ordering::Less
    }

    /// y with the sign bit cleared.
    fn y_of(encoded: &[u8]) -> [u8; 32] {
        let mut y = [0u8; 32];
        y.copy_from_slice(&encoded[..32]);
        y[31] &= 0x7f;
        y
    }

    /// A canonical encoding (y < p) of a point not of small order.
    pub(crate) fn check_point(encoded: &[u8]) -> Result<(), KeyError> {
        let y = y_of(encoded);
        // p = 2^255 - 19: the non-canonical y are p..2^255-1.
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        if !less_than(&y, &p) {
            return Err(KeyError::Malformed("non-canonical Ed25519 point encoding"));
        }
        if SMALL_ORDER_Y.contains(&y) {
            return Err(KeyError::Insecure(
                "Ed25519 key is a point of small order".into(),
            ));
        }
        Ok(())
    }

    /// A 64-byte signature whose R is a canonical point not of small order and whose S is
    /// reduced.
    pub(crate) fn signature_ok(signature: &[u8]) -> bool {
        signature.len() == 64
            && check_point(&signature[..32]).is_ok()
            && less_than(&signature[32..], &ORDER)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use num_bigint::BigUint;

        /// [8]P = identity for each listed y, by plain affine arithmetic mod p.
        #[test]
        fn small_order_points_are_small() {
            let p = (BigUint::from(1u32) << 255u32) - 19u32;
            let inv = |a: &BigUint| a.modpow(&(&p - 2u32), &p);
            let d = (&p - BigUint::from(121665u32)) * inv(&BigUint::from(121666u32)) % &p;
            let sub = |a: &BigUint, b: &BigUint| (a + &p - (b % &p)) % &p;
            for y_le in SMALL_ORDER_Y {
                let y = BigUint::from_bytes_le(&y_le);
                // x^2 = (y^2 - 1) / (d y^2 + 1)
                let y2 = &y * &y % &p;
                let x2 = sub(&y2, &BigUint::from(1u32)) * inv(&((&d * &y2 + 1u32) % &p)) % &p;
                let mut x = x2.modpow(&((&p + 3u32) / 8u32), &p);
                if (&x * &x) % &p != x2 {
                    x = x * BigUint::from(2u32).modpow(&((&p - 1u32) / 4u32), &p) % &p;
                }
                assert_eq!((&x * &x) % &p, x2, "a point exists for this y");
                let (mut px, mut py) = (x, y);
                for _ in 0..3 {
                    let xy = &px * &py % &p;
                    let t = &d * &xy % &p * &xy % &p;
                    let nx = (&px * &py * 2u32) % &p * inv(&((t.clone() + 1u32) % &p)) % &p;
                    let ny =
                        (&py * &py + &px * &px) % &p * inv(&sub(&BigUint::from(1u32), &t)) % &p;
                    (px, py) = (nx, ny);
                }
                assert_eq!((px, py), (BigUint::from(0u32), BigUint::from(1u32)));
            }
        }

        #[test]
        fn the_identity_forgery_is_refused() {
            let mut identity = [0u8; 32];
            identity[0] = 1;
            assert!(check_point(&identity).is_err());
            let mut sig = [0u8; 64];
            sig[0] = 1; // R = identity, S = 0
            assert!(!signature_ok(&sig));
            let mut non_canonical = [0xffu8; 32];
            non_canonical[31] = 0x7f; // y = 2^255 - 1 >= p
            assert!(check_point(&non_canonical).is_err());
            let mut s_too_big = [0u8; 64];
            s_too_big[..32].copy_from_slice(&[0x58; 32]); // some canonical R
            s_too_big[32..].copy_from_slice(&ORDER);
            assert!(!signature_ok(&s_too_big), "S = L is not reduced");
        }
    }
}

fn ec_key(curve: &[u8], point: &[u8]) -> Result<PublicKey, KeyError> {
    let (kind, alg, curve_oid): (KeyKind, &'static dyn VerificationAlgorithm, _) = match curve {
        c if c == oid::CURVE_P256.content => (
            KeyKind::EcdsaP256,
            &sig::ECDSA_P256_SHA256_ASN1,
            oid::CURVE_P256,
        ),
        c if c == oid::CURVE_P384.content => (
            KeyKind::EcdsaP384,
            &sig::ECDSA_P384_SHA384_ASN1,
            oid::CURVE_P384,
        ),
        c if c == oid::CURVE_P521.content => (
            KeyKind::EcdsaP521,
            &sig::ECDSA_P521_SHA512_ASN1,
            oid::CURVE_P521,
        ),
        other => {
            return Err(KeyError::Insecure(format!(
                "unsupported elliptic curve {}",
                der::oid_to_string(other)
            )));
        }
    };
    let coord = kind.ecdsa_coordinate_len().unwrap_or(0);
    // Only uncompressed points, as Go's x509 parser; aws-lc-rs checks the point is on the
    // curve, not the identity, and has coordinates below p.
    if point.len() != 1 + 2 * coord || point[0] != 0x04 {
        return Err(KeyError::Malformed("EC point must be uncompressed"));
    }
    let parsed = ParsedPublicKey::new(alg, point)
        .map_err(|_| KeyError::Insecure("invalid elliptic curve point".into()))?;
    let alg_id = der::sequence(&[&oid::EC_PUBLIC_KEY.tlv(), &curve_oid.tlv()]);
    Ok(PublicKey::assemble(kind, &alg_id, point, parsed))
}

fn rsa_key(bits: &[u8]) -> Result<PublicKey, KeyError> {
    let seq = der::read_single(bits, TAG_SEQUENCE)
        .map_err(|_| KeyError::Malformed("bad RSAPublicKey"))?;
    let ints = der::children(seq.content).map_err(|_| KeyError::Malformed("bad RSAPublicKey"))?;
    let [n, e] = ints.as_slice() else {
        return Err(KeyError::Malformed("bad RSAPublicKey"));
    };
    if n.tag != TAG_INTEGER
        || e.tag != TAG_INTEGER
        || n.content.first().is_none_or(|b| b & 0x80 != 0)
    {
        return Err(KeyError::Malformed("bad RSAPublicKey"));
    }
    let modulus = BigUint::from_bytes_be(n.content);
    let exponent = BigUint::from_bytes_be(e.content);
    let kind = match modulus.bits() {
        2048 => KeyKind::Rsa2048,
        3072 => KeyKind::Rsa3072,
        4096 => KeyKind::Rsa4096,
        other => {
            return Err(KeyError::Insecure(format!(
                "RSA key size {other} is not one of 2048, 3072, 4096"
            )));
        }
    };
    if exponent != BigUint::from(65537u32) {
        return Err(KeyError::Insecure("RSA exponent must be 65537".into()));
    }
    check_rsa_modulus(&modulus)?;
    // Re-encode minimally so the certificate carries a canonical key.
    let canonical = der::sequence(&[
        &der::unsigned_integer(&modulus.to_bytes_be()),
        &der::unsigned_integer(&exponent.to_bytes_be()),
    ]);
    let parsed = ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, &canonical)
        .map_err(|_| KeyError::Malformed("bad RSAPublicKey"))?;
    let alg_id = der::sequence(&[&oid::RSA_ENCRYPTION.tlv(), &[TAG_NULL, 0]]);
    Ok(PublicKey::assemble(kind, &alg_id, &canonical, parsed))
}

/// Wraps a PKCS#1 RSAPublicKey into a SubjectPublicKeyInfo.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    let alg_id = der::sequence(&[&oid::RSA_ENCRYPTION.tlv(), &[TAG_NULL, 0]]);
    der::sequence(&[&alg_id, &der::bit_string(pkcs1)])
}

/// Primes below 752, as in boulder's small-factor check.
static SMALL_PRIMES: LazyLock<Vec<u32>> = LazyLock::new(|| {
    (2u32..752)
        .filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0))
        .collect()
});

/// For the primes of the ROCA fingerprint, the residues `65537^k mod p` (as a bit mask).
/// An Infineon-generated modulus has every residue in these subgroups.
static ROCA_MARKERS: LazyLock<Vec<(u32, u128, u128)>> = LazyLock::new(|| {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES
        .iter()
        .map(|&p| {
            let (mut lo, mut hi) = (0u128, 0u128);
            let g = 65537 % p;
            let mut x = 1u32;
            loop {
                if x < 128 {
                    lo |= 1 << x;
                } else {
                    hi |= 1 << (x - 128);
                }
                x = x * g % p;
                if x == 1 {
                    break;
                }
            }
            (p, lo, hi)
        })
        .collect()
});

fn check_rsa_modulus(n: &BigUint) -> Result<(), KeyError> {
    for p in SMALL_PRIMES.iter() {
        if (n % *p).is_zero() {
            return Err(KeyError::Insecure(format!(
                "RSA modulus is divisible by the small prime {p}"
            )));
        }
    }
    let roca = ROCA_MARKERS.iter().all(|(p, lo, hi)| {
        let r = (n % *p).to_u32().unwrap_or(0);
        if r < 128 {
            lo >> r & 1 == 1
        } else {
            hi >> (r - 128) & 1 == 1
        }
    });
    if roca {
        return Err(KeyError::Insecure(
            "RSA modulus has the ROCA (Infineon) fingerprint".into(),
        ));
    }
    if fermat_factorable(n, 100) {
        return Err(KeyError::Insecure(
            "RSA modulus factors are too close together (Fermat)".into(),
        ));
    }
    Ok(())
}

/// The modulus of the quadratic-residue filter in [`fermat_factorable`].
const FERMAT_FILTER_MODULUS: u32 = 64 * 63 * 65 * 11;

/// Bit `r` is set when `r` is a square modulo [`FERMAT_FILTER_MODULUS`]: 2.9 million
/// residues, computed once (360 KiB) rather than on every RSA key parse.
static SQUARE_RESIDUES: LazyLock<Vec<u64>> = LazyLock::new(|| {
    let m = u64::from(FERMAT_FILTER_MODULUS);
    let mut bits = vec![0u64; (m as usize).div_ceil(64)];
    for x in 0..m {
        let r = (x * x % m) as usize;
        bits[r / 64] |= 1 << (r % 64);
    }
    bits
});

fn may_be_square(residue: u32) -> bool {
    let r = residue as usize;
    SQUARE_RESIDUES[r / 64] >> (r % 64) & 1 == 1
}

/// Fermat's method for `rounds` steps from `ceil(sqrt(n))`, as boulder does. Squares are
/// pre-filtered by quadratic residues modulo 64, 63, 65 and 11 so only likely squares pay
/// for a square root.
fn fermat_factorable(n: &BigUint, rounds: u32) -> bool {
    const M: u32 = FERMAT_FILTER_MODULUS;
    let start = n.sqrt() + 1u32;
    let mut b2 = &start * &start - n;
    let mut a = start;
    let mut round = 0;
    while round < rounds {
        round += 1;
        let m = (&b2 % M).to_u32().unwrap_or(0);
        if may_be_square(m) {
            let b = b2.sqrt();
            if &b * &b == b2 {
                return true;
            }
        }
        // (a+1)^2 - n = b2 + 2a + 1
        b2 += &a * 2u32 + 1u32;
        a += 1u32;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair};

    fn p256() -> (EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let kp =
            EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let point = kp.public_key().as_ref().to_vec();
        let spki = der::sequence(&[
            &der::sequence(&[&oid::EC_PUBLIC_KEY.tlv(), &oid::CURVE_P256.tlv()]),
            &der::bit_string(&point),
        ]);
        (kp, spki)
    }

    #[test]
    fn ecdsa_proofs_in_der_and_raw_form() {
        let (kp, spki) = p256();
        let key = PublicKey::from_spki_der(&spki).unwrap();
        assert_eq!(key.kind(), KeyKind::EcdsaP256);
        assert_eq!(key.spki_der(), spki.as_slice());
        let rng = SystemRandom::new();
        let sig_der = kp.sign(&rng, b"alice@example.com").unwrap();
        assert!(key.verify_proof(b"alice@example.com", sig_der.as_ref()));
        assert!(!key.verify_proof(b"mallory@example.com", sig_der.as_ref()));
        // A second key that signs in raw r||s form.
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let fixed = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .unwrap();
        let spki2 = der::sequence(&[
            &der::sequence(&[&oid::EC_PUBLIC_KEY.tlv(), &oid::CURVE_P256.tlv()]),
            &der::bit_string(fixed.public_key().as_ref()),
        ]);
        let key2 = PublicKey::from_spki_der(&spki2).unwrap();
        let raw = fixed.sign(&rng, b"sub").unwrap();
        assert_eq!(raw.as_ref().len(), 64);
        assert!(key2.verify_proof(b"sub", raw.as_ref()));
    }

    #[test]
    fn rejects_bad_points_and_curves() {
        let (_, spki) = p256();
        let mut bad = spki.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1; // point off the curve
        assert!(matches!(
            PublicKey::from_spki_der(&bad),
            Err(KeyError::Insecure(_))
        ));
        // secp256k1
        let k1 = der::sequence(&[
            &der::sequence(&[&oid::EC_PUBLIC_KEY.tlv(), &der::oid(&[1, 3, 132, 0, 10])]),
            &der::bit_string(&[4u8; 65]),
        ]);
        assert!(matches!(
            PublicKey::from_spki_der(&k1),
            Err(KeyError::Insecure(_))
        ));
        assert!(matches!(
            PublicKey::from_content(b"garbage"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            PublicKey::from_content(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            ),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn rsa_policy() {
        // 1024-bit modulus with top bit set.
        let mut n = vec![0xc5u8; 128];
        n[127] |= 1;
        let rsa = |n: &[u8], e: &[u8]| {
            rsa_spki(&der::sequence(&[
                &der::unsigned_integer(n),
                &der::unsigned_integer(e),
            ]))
        };
        let err = PublicKey::from_spki_der(&rsa(&n, &[1, 0, 1])).unwrap_err();
        assert!(err.to_string().contains("1024"), "{err}");
        let mut n2048 = vec![0xc5u8; 256];
        n2048[255] = 3; // odd, 3 divides? 0xc5..03 -> check small primes catches many
        let err = PublicKey::from_spki_der(&rsa(&n2048, &[3])).unwrap_err();
        assert!(err.to_string().contains("65537"), "{err}");
    }

    #[test]
    fn fermat_catches_close_primes() {
        // p and q adjacent primes: n = p*q is factored in the first round.
        let p = BigUint::from(1_000_000_007u64);
        let q = BigUint::from(1_000_000_009u64);
        assert!(fermat_factorable(&(&p * &q), 100));
        let q2 = BigUint::from(998_244_353u64);
        let far = BigUint::from(1_000_000_007u64) * BigUint::from(3u32) * &q2;
        assert!(!fermat_factorable(&(far * BigUint::from(1u32)), 3));
    }

    #[test]
    fn roca_markers_match_the_published_table() {
        // First markers of the published detector: 6, 30, 126, 1026, 5658.
        let m: Vec<u128> = ROCA_MARKERS.iter().take(5).map(|(_, lo, _)| *lo).collect();
        assert_eq!(m, vec![6, 30, 126, 1026, 5658]);
    }
}
