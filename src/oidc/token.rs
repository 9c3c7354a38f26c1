//! Compact JWS parsing, before any verification. One parse of the payload serves both the
//! issuer lookup and, after the signature check, the claims, so there is no parser
//! differential between routing and verification.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Raw tokens longer than this are refused before any decoding (real tokens are 0.4-2 KB;
/// large Entra tokens stay well under it).
pub(crate) const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why a string is not a compact JWS brevis will consider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The token is empty.
    Empty,
    /// The token is longer than `MAX_TOKEN_BYTES` (64 KiB).
    TooLarge,
    /// Not three non-empty, dot-separated parts (a JWE or JSON serialisation, for instance).
    NotCompact,
    /// The header is not a base64url JSON object, has no string `alg`, or has a non-string `kid`.
    BadHeader,
    /// The payload is not a base64url JSON object.
    BadPayload,
    /// The header carries `crit`, `enc` or `cty: JWT`, which brevis refuses (the name carried).
    UnsupportedHeader(&'static str),
}

/// A compact JWS split into its parts, not yet trusted.
#[derive(Debug, Clone)]
pub struct UnverifiedToken<'a> {
    /// The header's `alg`, not yet checked against what the issuer allows.
    pub alg: String,
    /// The header's `kid`, if any (`null` counts as absent).
    pub kid: Option<String>,
    /// The payload's claims (a JSON object), not yet trusted.
    pub claims: Map<String, Value>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the signed bytes.
    pub signing_input: &'a str,
    /// The third part, still base64url.
    pub signature_b64: &'a str,
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and decodes `token` without verifying anything.
    pub fn parse(token: &'a str) -> Result<UnverifiedToken<'a>, ParseError> {
        if token.is_empty() {
            return Err(ParseError::Empty);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ParseError::TooLarge);
        }
        // Exactly two dots: JWE (four) and JSON serialisation are refused outright.
        if token.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(ParseError::NotCompact);
        }
        let mut parts = token.splitn(3, '.');
        let (h, p, s) = match (parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(p), Some(s)) if !h.is_empty() && !p.is_empty() && !s.is_empty() => {
                (h, p, s)
            }
            _ => return Err(ParseError::NotCompact),
        };
        let header: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(ParseError::BadHeader)?;
        let claims: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(ParseError::BadPayload)?;
        if header.contains_key("crit") {
            return Err(ParseError::UnsupportedHeader("crit"));
        }
        if header.contains_key("enc") {
            return Err(ParseError::UnsupportedHeader("enc"));
        }
        if header
            .get("cty")
            .and_then(Value::as_str)
            .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
        {
            return Err(ParseError::UnsupportedHeader("cty"));
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(ParseError::BadHeader)?
            .to_string();
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(ParseError::BadHeader),
        };
        Ok(UnverifiedToken {
            alg,
            kid,
            claims,
            signing_input: &token[..h.len() + 1 + p.len()],
            signature_b64: s,
        })
    }

    /// The unverified `iss`, used only to pick which configured issuer to verify against.
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn parses_a_compact_token() {
        let t = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256","kid":"k1"}"#),
            b64(r#"{"iss":"https://i","sub":"s"}"#)
        );
        let u = UnverifiedToken::parse(&t).unwrap();
        assert_eq!(u.alg, "RS256");
        assert_eq!(u.kid.as_deref(), Some("k1"));
        assert_eq!(u.issuer(), Some("https://i"));
        assert_eq!(u.signature_b64, "c2ln");
        assert!(t.starts_with(u.signing_input));
    }

    #[test]
    fn refuses_malformed_tokens() {
        assert_eq!(UnverifiedToken::parse("").unwrap_err(), ParseError::Empty);
        assert_eq!(
            UnverifiedToken::parse("a.b").unwrap_err(),
            ParseError::NotCompact
        );
        assert_eq!(
            UnverifiedToken::parse("a.b.c.d.e").unwrap_err(),
            ParseError::NotCompact
        );
        assert_eq!(
            UnverifiedToken::parse("a..c").unwrap_err(),
            ParseError::NotCompact
        );
        assert_eq!(
            UnverifiedToken::parse("!.b.c").unwrap_err(),
            ParseError::BadHeader
        );
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            UnverifiedToken::parse(&big).unwrap_err(),
            ParseError::TooLarge
        );
        let crit = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256","crit":["x"]}"#),
            b64("{}")
        );
        assert_eq!(
            UnverifiedToken::parse(&crit).unwrap_err(),
            ParseError::UnsupportedHeader("crit")
        );
        let arr = format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64("[1]"));
        assert_eq!(
            UnverifiedToken::parse(&arr).unwrap_err(),
            ParseError::BadPayload
        );
    }
}
