//! The identity a certificate is issued to.

use super::der;
use super::extensions::{Extension, Extensions};
use super::oid;
use thiserror::Error;

/// Why a claim cannot become a subject alternative name.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SanError {
    /// The value has non-ASCII characters, which an `IA5String` cannot hold (the value carried).
    #[error("subject alternative name {0:?} cannot be encoded as an IA5String")]
    NotAscii(String),
    /// The value has whitespace, a control character or a backslash (the value carried).
    #[error(
        "subject alternative name {0:?} contains whitespace, a control character or a backslash"
    )]
    ForbiddenCharacter(String),
    /// The value does not parse as an absolute URI (the value carried).
    #[error("subject alternative name {0:?} is not an absolute URI")]
    NotUri(String),
    /// Other URL parsers would read a different URI (host, path, encoding) than the one
    /// the certificate names; only URIs already in their canonical form are certified.
    #[error(
        "subject alternative name {given:?} is not in canonical form (it parses as {canonical:?})"
    )]
    NotCanonical {
        /// The value as the claim gave it.
        given: String,
        /// How the URL parser serializes it.
        canonical: String,
    },
}

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
    /// An rfc822Name: ASCII, with no whitespace, control character or backslash.
    pub fn email(v: impl Into<String>) -> Result<Self, SanError> {
        plain(ascii(v.into())?).map(SubjectAltName::Email)
    }

    /// A uniformResourceIdentifier. Every issuer type that turns a claim into a URI SAN
    /// comes through here, so the rules hold for all of them: ASCII; no whitespace,
    /// control character or backslash (parsers disagree about them: WHATWG URL reads `\`
    /// as `/`, RFC 3986 does not, so `http://127.0.0.1\@evil.com/` names two different
    /// hosts); an absolute URI that serializes back to exactly the given text, so any
    /// verifier that parses it reads the scheme, host and path the CA checked.
    pub(crate) fn uri(v: impl Into<String>) -> Result<Self, SanError> {
        let v = plain(ascii(v.into())?)?;
        let parsed = url::Url::parse(&v).map_err(|_| SanError::NotUri(v.clone()))?;
        // An empty path and "/" are the same resource (RFC 3986 6.2.3): `https://x` is
        // canonical although the parser writes it `https://x/`.
        let same = parsed.as_str() == v
            || (parsed.path() == "/"
                && parsed.query().is_none()
                && parsed.fragment().is_none()
                && parsed.as_str().strip_suffix('/') == Some(v.as_str()));
        if !same {
            return Err(SanError::NotCanonical {
                canonical: parsed.as_str().to_string(),
                given: v,
            });
        }
        Ok(SubjectAltName::Uri(v))
    }

    pub(crate) fn username(v: impl Into<String>) -> Self {
        SubjectAltName::Username(v.into())
    }

    /// The SAN's text, whatever its kind.
    pub fn value(&self) -> &str {
        match self {
            SubjectAltName::Email(v) | SubjectAltName::Uri(v) | SubjectAltName::Username(v) => v,
        }
    }

    /// The SAN extension, critical because the subject is empty.
    pub(crate) fn extension(&self) -> Extension {
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

fn ascii(v: String) -> Result<String, SanError> {
    if v.is_ascii() {
        Ok(v)
    } else {
        Err(SanError::NotAscii(v))
    }
}

/// Refuses whitespace, control characters and backslashes.
fn plain(v: String) -> Result<String, SanError> {
    if v.bytes()
        .any(|b| b.is_ascii_control() || b.is_ascii_whitespace() || b == b'\\')
    {
        Err(SanError::ForbiddenCharacter(v))
    } else {
        Ok(v)
    }
}

/// Who a certificate is for: the SAN, the Sigstore extensions, and the challenge string
/// the client's proof of possession must be a signature over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What the proof of possession signs: the token's `email` (email issuers) or `sub` claim.
    pub challenge: String,
    /// The certificate's single subject alternative name.
    pub san: SubjectAltName,
    /// The Sigstore extensions (`1.3.6.1.4.1.57264.1.*`) to put in the certificate.
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

    #[test]
    fn uri_sans_must_be_canonical_and_plain() {
        for ok in [
            "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
            "https://gitlab.com/group/proj//.gitlab-ci.yml@refs/tags/v1",
            "spiffe://example.org/ns/prod/sa/web",
            "https://kubernetes.io/namespaces/ns/serviceaccounts/sa",
            "https://example.com/a%20b?x=1#f",
            "https://example.com",
        ] {
            assert!(SubjectAltName::uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://127.0.0.1\\@evil.com/x",
            "https://example.com/a\tb",
            "https://example.com/a\nb",
            "https://example.com/a b",
            " https://example.com/",
            "https://example.com/\u{7f}",
            "HTTPS://EXAMPLE.COM/x",
            "https://example.com:443/x",
            "https://example.com/a/../b",
            "https://ex%61mple.com/",
            "https://example.com/{x}",
            "not a uri",
            "/relative/path",
            "https://exämple.com/",
        ] {
            assert!(SubjectAltName::uri(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(SubjectAltName::email("a@b.c\n").is_err());
        assert!(SubjectAltName::email("a b@c.d").is_err());
    }
}
