//! The identity a certificate is issued to.

use super::der;
use super::extensions::{Extension, Extensions};
use super::oid;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("subject alternative name {0:?} cannot be encoded as an IA5String")]
pub struct NotAscii(pub String);

/// The one GeneralName a Fulcio leaf carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAltName {
    /// `rfc822Name`, for email identities.
    Email(String),
    /// `uniformResourceIdentifier`, for every URI-style identity.
    Uri(String),
    /// `otherName` with type-id `1.3.6.1.4.1.57264.1.7`, holding `<user>!<domain>`.
    Username(String),
}

impl SubjectAltName {
    pub fn email(v: impl Into<String>) -> Result<Self, NotAscii> {
        ascii(v.into()).map(SubjectAltName::Email)
    }

    pub fn uri(v: impl Into<String>) -> Result<Self, NotAscii> {
        ascii(v.into()).map(SubjectAltName::Uri)
    }

    pub fn username(v: impl Into<String>) -> Self {
        SubjectAltName::Username(v.into())
    }

    pub fn value(&self) -> &str {
        match self {
            SubjectAltName::Email(v) | SubjectAltName::Uri(v) | SubjectAltName::Username(v) => v,
        }
    }

    /// A closed label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SubjectAltName::Email(_) => "email",
            SubjectAltName::Uri(_) => "uri",
            SubjectAltName::Username(_) => "username",
        }
    }

    /// The SAN extension, critical because the subject is empty.
    pub fn extension(&self) -> Extension {
        let name = match self {
            SubjectAltName::Email(v) => der::tlv(der::context_primitive(1), v.as_bytes()),
            SubjectAltName::Uri(v) => der::tlv(der::context_primitive(6), v.as_bytes()),
            SubjectAltName::Username(v) => {
                let value = der::tlv(der::context_constructed(0), &der::utf8_string(v));
                der::constructed(
                    der::context_constructed(0),
                    &[&oid::SIGSTORE_OTHERNAME_SAN.tlv(), &value],
                )
            }
        };
        Extension::new(&oid::SUBJECT_ALT_NAME, true, der::sequence(&[&name]))
    }
}

fn ascii(v: String) -> Result<String, NotAscii> {
    if v.is_ascii() {
        Ok(v)
    } else {
        Err(NotAscii(v))
    }
}

/// Who a certificate is for: the SAN, the Sigstore extensions, and the challenge string
/// the client's proof of possession must be a signature over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub challenge: String,
    pub san: SubjectAltName,
    pub extensions: Extensions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_san_matches_fulcio_bytes() {
        let ext = SubjectAltName::username("alice!example.com").extension();
        assert!(ext.critical);
        assert_eq!(
            hex::encode(&ext.value),
            "3023a021060a2b0601040183bf300107a0130c11616c696365216578616d706c652e636f6d"
        );
    }

    #[test]
    fn email_and_uri_sans() {
        let e = SubjectAltName::email("a@b.c").unwrap().extension();
        assert_eq!(hex::encode(&e.value), "300781056140622e63");
        let u = SubjectAltName::uri("https://x").unwrap().extension();
        assert_eq!(hex::encode(&u.value), "300b860968747470733a2f2f78");
        assert!(SubjectAltName::email("é@b.c").is_err());
    }
}
