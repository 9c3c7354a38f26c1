//! Sigstore trust material for a brevis deployment: the TrustedRoot (CA chain, CT log
//! keys, validity windows) clients load to trust this CA instead of the public-good one.

use crate::ct::LogPublicKey;
use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use thiserror::Error;
use x509_parser::prelude::*;

/// A key that cannot be described in a TrustedRoot.
#[derive(Debug, Error)]
#[error("a trust-root key")]
pub struct KeyDetailsError(#[source] crate::model::KeyError);

/// A TrustedRoot (or ClientTrustConfig) that cannot be used.
#[derive(Debug, Error)]
pub enum TrustRootError {
    /// The text is not JSON.
    #[error("not JSON")]
    Json(#[source] serde_json::Error),
    /// `mediaType` is not the TrustedRoot v0.1 media type (the value found, as JSON).
    #[error("unsupported trusted root media type {0}")]
    MediaType(String),
    /// A `rawBytes` field is not standard base64.
    #[error("{what} rawBytes is not base64")]
    Base64 {
        /// Which field: `certificate` or `ctlog`.
        what: &'static str,
    },
    /// The trusted root holds no CA certificate.
    #[error("the trusted root has no certificate authorities")]
    NoAuthorities,
}

/// Why a certificate does not chain to the trusted root.
#[derive(Debug, Error, Clone)]
pub enum ChainError {
    /// A CA certificate of the trusted root does not parse (the parser's message).
    #[error("a trusted root certificate does not parse: {0}")]
    TrustedUnparsable(String),
    /// The certificate being verified does not parse (the parser's message).
    #[error("the certificate does not parse: {0}")]
    Unparsable(String),
    /// The certificate is outside its validity period at the verification time.
    #[error("the certificate is not valid at the verification time")]
    NotValidThen,
    /// No trusted CA certificate has the certificate's issuer name and a verifying signature.
    #[error("no trusted CA certificate issued this certificate")]
    NoIssuer,
    /// The issuer found is not a CA, or not valid at the verification time (its subject carried).
    #[error("CA certificate {0} is not a valid CA at that time")]
    BadCa(String),
    /// No self-signed root within eight issuer steps.
    #[error("certificate path too long")]
    TooLong,
}

pub(crate) const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// A CT log as the trusted root describes it.
pub struct CtLogEntry {
    /// `baseUrl`: the log's URL.
    pub base_url: String,
    /// The log's public key (`publicKey.rawBytes`; the log ID is its SHA-256).
    pub key: LogPublicKey,
    /// When the log started signing (ms since the epoch).
    pub start_ms: u64,
    /// When it stopped (frozen, replaced by a successor), if it did.
    pub end_ms: Option<u64>,
}

/// A certificate authority as the trusted root describes it.
pub struct CaEntry {
    /// `uri`: the CA's URL, where clients request certificates.
    pub uri: String,
    /// DER chain: issuing certificate first, root last.
    pub chain: Vec<Vec<u8>>,
    /// When it started issuing (Unix seconds); default: the issuing certificate's
    /// notBefore.
    pub start: Option<i64>,
    /// When it stopped issuing (a rotation's switch time), if it did.
    pub end: Option<i64>,
}

/// Unix milliseconds as RFC 3339 text (UTC); empty when out of range.
pub fn rfc3339_millis(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn rfc3339_secs(s: i64) -> String {
    OffsetDateTime::from_unix_timestamp(s)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn subject_fields(der: &[u8]) -> (String, String) {
    let Ok((_, c)) = parse_x509_certificate(der) else {
        return (String::new(), String::new());
    };
    let get = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue<'_>>| {
        it.next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let o = get(&mut c.subject().iter_organization());
    let cn = get(&mut c.subject().iter_common_name());
    (o, cn)
}

/// The CA's `validFor` starts when its issuing certificate became valid.
fn ca_start(chain: &[Vec<u8>]) -> String {
    chain
        .first()
        .and_then(|d| parse_x509_certificate(d).ok())
        .map(|(_, c)| rfc3339_secs(c.validity().not_before.timestamp()))
        .unwrap_or_default()
}

/// A TrustedRoot with `cas` and `logs`; `tlogs` (Rekor) are passed through as JSON.
pub fn trusted_root(
    cas: &[CaEntry],
    logs: &[CtLogEntry],
    tlogs: Vec<Value>,
) -> Result<Value, KeyDetailsError> {
    let authorities: Vec<Value> = cas
        .iter()
        .map(|ca| {
            let (o, cn) = subject_fields(&ca.chain[0]);
            json!({
                "subject": {"organization": o, "commonName": cn},
                "uri": ca.uri,
                "certChain": {"certificates": ca.chain.iter().map(|c| json!({"rawBytes": STANDARD.encode(c)})).collect::<Vec<_>>()},
                "validFor": valid_for(
                    ca.start.map(rfc3339_secs).unwrap_or_else(|| ca_start(&ca.chain)),
                    ca.end.map(rfc3339_secs),
                ),
            })
        })
        .collect();
    let ctlogs: Vec<Value> = logs
        .iter()
        .map(|l| log_json(&l.base_url, l.key.spki_der(), l.start_ms, l.end_ms))
        .collect::<Result<_, _>>()?;
    Ok(json!({
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": tlogs,
        "certificateAuthorities": authorities,
        "ctlogs": ctlogs,
        "timestampAuthorities": [],
    }))
}

pub(crate) const SIGNING_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.signingconfig.v0.2+json";
pub(crate) const CLIENT_TRUST_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";

/// A transparency log (Rekor) entry for the trusted root's `tlogs`.
pub struct TlogEntry {
    /// `baseUrl`: the Rekor log's URL.
    pub base_url: String,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// When the log started signing (ms since the epoch), its key's `validFor.start`.
    pub start_ms: u64,
}

/// The `keyDetails` name of a public key, from its SPKI.
pub(crate) fn key_details(spki: &[u8]) -> Result<&'static str, KeyDetailsError> {
    use crate::model::{KeyKind, PublicKey};
    let k = PublicKey::from_spki_der(spki).map_err(KeyDetailsError)?;
    Ok(match k.kind() {
        KeyKind::EcdsaP256 => "PKIX_ECDSA_P256_SHA_256",
        KeyKind::EcdsaP384 => "PKIX_ECDSA_P384_SHA_384",
        KeyKind::EcdsaP521 => "PKIX_ECDSA_P521_SHA_512",
        KeyKind::Ed25519 => "PKIX_ED25519",
        KeyKind::Rsa2048 => "PKIX_RSA_PKCS1V15_2048_SHA256",
        KeyKind::Rsa3072 => "PKIX_RSA_PKCS1V15_3072_SHA256",
        KeyKind::Rsa4096 => "PKIX_RSA_PKCS1V15_4096_SHA256",
    })
}

/// The trusted root's `tlogs` entry (JSON) for a Rekor log; fails when its key does not parse.
pub fn tlog_json(t: &TlogEntry) -> Result<Value, KeyDetailsError> {
    log_json(&t.base_url, &t.spki, t.start_ms, None)
}

/// One transparency log (CT or Rekor) of a TrustedRoot: log id = SHA-256 of its SPKI.
/// A `validFor` TimeRange: `end` only when there is one.
fn valid_for(start: String, end: Option<String>) -> Value {
    match end {
        Some(end) => json!({"start": start, "end": end}),
        None => json!({"start": start}),
    }
}

fn log_json(
    base_url: &str,
    spki: &[u8],
    start_ms: u64,
    end_ms: Option<u64>,
) -> Result<Value, KeyDetailsError> {
    Ok(json!({
        "baseUrl": base_url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": STANDARD.encode(spki),
            "keyDetails": key_details(spki)?,
            "validFor": valid_for(rfc3339_millis(start_ms), end_ms.map(rfc3339_millis)),
        },
        "logId": {"keyId": STANDARD.encode(crate::ct::sha256(spki))},
    }))
}

/// A service entry of a SigningConfig.
fn service(url: &str, version: u32, start: &str) -> Value {
    json!({"url": url, "majorApiVersion": version, "validFor": {"start": start}, "operator": "brevis"})
}

/// A Sigstore SigningConfig v0.2 naming this CA (and, when given, a Rekor, an OIDC
/// provider and a timestamp authority).
pub fn signing_config(
    ca_url: &str,
    rekor_url: Option<&str>,
    oidc_url: Option<&str>,
    tsa_url: Option<&str>,
    start_ms: u64,
) -> Value {
    let start = rfc3339_millis(start_ms);
    json!({
        "mediaType": SIGNING_CONFIG_MEDIA_TYPE,
        "caUrls": [service(ca_url, 1, &start)],
        "oidcUrls": oidc_url.map(|u| vec![service(u, 1, &start)]).unwrap_or_default(),
        "rekorTlogUrls": rekor_url.map(|u| vec![service(u, 1, &start)]).unwrap_or_default(),
        "tsaUrls": tsa_url.map(|u| vec![service(u, 1, &start)]).unwrap_or_default(),
        "rekorTlogConfig": {"selector": "ANY"},
        "tsaConfig": {"selector": "ANY"},
    })
}

/// A ClientTrustConfig (sigstore-python's `--trust-config`).
pub fn client_trust_config(trusted_root: Value, signing_config: Value) -> Value {
    json!({
        "mediaType": CLIENT_TRUST_CONFIG_MEDIA_TYPE,
        "trustedRoot": trusted_root,
        "signingConfig": signing_config,
    })
}

/// What a verifier needs from a TrustedRoot.
pub struct TrustView {
    /// Every CA certificate (DER), intermediates included.
    pub ca_certs: Vec<Vec<u8>>,
    /// CT logs: key and base URL.
    pub ctlogs: Vec<(crate::ct::LogPublicKey, String)>,
}

/// Reads a TrustedRoot (or a ClientTrustConfig wrapping one).
pub fn parse_trust_root(text: &str) -> Result<TrustView, TrustRootError> {
    let v: Value = serde_json::from_str(text).map_err(TrustRootError::Json)?;
    let root = if v.get("trustedRoot").is_some() {
        &v["trustedRoot"]
    } else {
        &v
    };
    if root["mediaType"] != TRUSTED_ROOT_MEDIA_TYPE {
        return Err(TrustRootError::MediaType(root["mediaType"].to_string()));
    }
    let mut ca_certs = Vec::new();
    for ca in root["certificateAuthorities"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for c in ca["certChain"]["certificates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let der = STANDARD
                .decode(c["rawBytes"].as_str().unwrap_or(""))
                .map_err(|_| TrustRootError::Base64 {
                    what: "certificate",
                })?;
            ca_certs.push(der);
        }
    }
    let mut ctlogs = Vec::new();
    for l in root["ctlogs"].as_array().into_iter().flatten() {
        let spki = STANDARD
            .decode(l["publicKey"]["rawBytes"].as_str().unwrap_or(""))
            .map_err(|_| TrustRootError::Base64 { what: "ctlog" })?;
        if let Ok(k) = crate::ct::LogPublicKey::from_spki_der(&spki) {
            ctlogs.push((k, l["baseUrl"].as_str().unwrap_or("").to_string()));
        }
    }
    if ca_certs.is_empty() {
        return Err(TrustRootError::NoAuthorities);
    }
    Ok(TrustView { ca_certs, ctlogs })
}

/// Builds and verifies the path from `leaf` to a self-signed root among `trust.ca_certs`,
/// every certificate valid at `at_secs`; returns the path (leaf first).
pub(crate) fn verify_chain(
    leaf: &[u8],
    trust: &TrustView,
    at_secs: i64,
) -> Result<Vec<Vec<u8>>, ChainError> {
    use crate::model::x509 as xx;
    let parsed: Vec<X509Certificate<'_>> = trust
        .ca_certs
        .iter()
        .map(|d| parse_x509_certificate(d).map(|(_, c)| c))
        .collect::<Result<_, _>>()
        .map_err(|e| ChainError::TrustedUnparsable(e.to_string()))?;
    let (_, mut current) =
        parse_x509_certificate(leaf).map_err(|e| ChainError::Unparsable(e.to_string()))?;
    let valid_at = |c: &X509Certificate<'_>| {
        c.validity().not_before.timestamp() <= at_secs
            && at_secs <= c.validity().not_after.timestamp()
    };
    if !valid_at(&current) {
        return Err(ChainError::NotValidThen);
    }
    let mut path = vec![leaf.to_vec()];
    for _ in 0..8 {
        let issuer = parsed.iter().enumerate().find(|(_, c)| {
            c.subject().as_raw() == current.issuer().as_raw() && xx::is_signed_by(&current, c)
        });
        let Some((i, issuer)) = issuer else {
            return Err(ChainError::NoIssuer);
        };
        if !xx::is_ca(issuer) || !valid_at(issuer) {
            return Err(ChainError::BadCa(issuer.subject().to_string()));
        }
        path.push(trust.ca_certs[i].clone());
        if issuer.subject().as_raw() == issuer.issuer().as_raw() {
            return Ok(path);
        }
        current = issuer.clone();
    }
    Err(ChainError::TooLong)
}
