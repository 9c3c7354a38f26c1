//! Object identifiers brevis reads or writes, as DER content bytes (no tag or length).
//! Each constant is checked against its dotted form by a unit test.

use super::der;

/// An object identifier, in dotted text and as DER content octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oid {
    /// Dotted-decimal form, e.g. `2.5.29.17`.
    pub dotted: &'static str,
    /// DER content octets of the OBJECT IDENTIFIER.
    pub content: &'static [u8],
}

impl Oid {
    /// The complete OBJECT IDENTIFIER TLV.
    pub fn tlv(&self) -> Vec<u8> {
        der::tlv(der::TAG_OID, self.content)
    }
}

macro_rules! oids {
    ($($name:ident = $dotted:literal => [$($b:literal),*];)*) => {
        $(
            #[doc = concat!("The OID `", $dotted, "`.")]
            pub const $name: Oid = Oid { dotted: $dotted, content: &[$($b),*] };
        )*
        #[cfg(test)]
        pub(crate) const ALL: &[Oid] = &[$($name),*];
    };
}

oids! {
    // X.509 extensions
    SUBJECT_KEY_IDENTIFIER = "2.5.29.14" => [0x55, 0x1d, 0x0e];
    KEY_USAGE = "2.5.29.15" => [0x55, 0x1d, 0x0f];
    SUBJECT_ALT_NAME = "2.5.29.17" => [0x55, 0x1d, 0x11];
    BASIC_CONSTRAINTS = "2.5.29.19" => [0x55, 0x1d, 0x13];
    AUTHORITY_KEY_IDENTIFIER = "2.5.29.35" => [0x55, 0x1d, 0x23];
    EXT_KEY_USAGE = "2.5.29.37" => [0x55, 0x1d, 0x25];
    EKU_CODE_SIGNING = "1.3.6.1.5.5.7.3.3" => [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
    EKU_ANY = "2.5.29.37.0" => [0x55, 0x1d, 0x25, 0x00];
    // Certificate Transparency (RFC 6962)
    CT_SCT_LIST = "1.3.6.1.4.1.11129.2.4.2" => [0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
    CT_POISON = "1.3.6.1.4.1.11129.2.4.3" => [0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];
    CT_PRECERT_SIGNING = "1.3.6.1.4.1.11129.2.4.4" => [0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x04];
    // Key algorithms
    EC_PUBLIC_KEY = "1.2.840.10045.2.1" => [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    CURVE_P256 = "1.2.840.10045.3.1.7" => [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    CURVE_P384 = "1.3.132.0.34" => [0x2b, 0x81, 0x04, 0x00, 0x22];
    CURVE_P521 = "1.3.132.0.35" => [0x2b, 0x81, 0x04, 0x00, 0x23];
    RSA_ENCRYPTION = "1.2.840.113549.1.1.1" => [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    ED25519 = "1.3.101.112" => [0x2b, 0x65, 0x70];
    // Signature algorithms
    ECDSA_SHA256 = "1.2.840.10045.4.3.2" => [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    ECDSA_SHA384 = "1.2.840.10045.4.3.3" => [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    ECDSA_SHA512 = "1.2.840.10045.4.3.4" => [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    RSA_SHA256 = "1.2.840.113549.1.1.11" => [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    RSA_SHA384 = "1.2.840.113549.1.1.12" => [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    RSA_SHA512 = "1.2.840.113549.1.1.13" => [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    // Sigstore arc 1.3.6.1.4.1.57264.1.*
    SIGSTORE_OTHERNAME_SAN = "1.3.6.1.4.1.57264.1.7" => [0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, 0x07];
}

/// The Sigstore OID `1.3.6.1.4.1.57264.1.<n>` as content bytes.
pub(crate) fn sigstore(n: u8) -> [u8; 10] {
    [0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arcs(dotted: &str) -> Vec<u64> {
        dotted.split('.').map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn constants_match_their_dotted_form() {
        for o in ALL {
            assert_eq!(o.tlv(), der::oid(&arcs(o.dotted)), "{}", o.dotted);
        }
        for n in 1..=24u8 {
            let dotted = format!("1.3.6.1.4.1.57264.1.{n}");
            assert_eq!(der::tlv(6, &sigstore(n)), der::oid(&arcs(&dotted)));
        }
    }
}
