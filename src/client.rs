//! brevis as a client: request a certificate the way Sigstore clients do, and inspect any
//! Fulcio or brevis certificate against a TrustedRoot. Operators use these to smoke-test a
//! deployment (`brevis cert request`, `brevis cert verify`).

use crate::ct::embedded_scts;
use crate::model::extensions::{Field, parse_der_string};
use crate::model::signer::{LocalSigner, Signer, SigningAlgorithm};
use crate::model::{oid, pem};
use crate::trust::{ChainError, TrustView, verify_chain};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use thiserror::Error;
use x509_parser::prelude::*;

/// Why a certificate request did not give a certificate.
#[derive(Debug, Error)]
pub enum RequestError {
    /// The OIDC token cannot be parsed as a JWT to read its claims.
    #[error("the token is not a usable JWT ({0:?})")]
    Token(crate::oidc::token::ParseError),
    /// The token has neither an `email` nor a `sub` claim to sign as the challenge.
    #[error("the token has neither email nor sub")]
    NoChallenge,
    /// The key failed to sign the challenge (public-key path).
    #[error("signing the challenge")]
    Sign(#[source] crate::model::signer::SignerError),
    /// Building or PEM-encoding the certificate signing request failed (CSR path).
    #[error("building the CSR")]
    Csr(#[source] rcgen::Error),
    /// The HTTP client could not be constructed.
    #[error("the HTTP client")]
    Client(#[source] reqwest::Error),
    /// Sending the request or reading the response body failed.
    #[error("{endpoint}")]
    Transport {
        /// The `/api/v2/signingCert` URL that was requested.
        endpoint: String,
        /// The underlying HTTP error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a non-success status or a body that is not JSON.
    #[error("{endpoint}: HTTP {status}: {message}")]
    Refused {
        /// The `/api/v2/signingCert` URL that was requested.
        endpoint: String,
        /// The HTTP status code of the response.
        status: u16,
        /// The response's JSON `message` field, or the raw body when there is none.
        message: String,
    },
    /// The success response has no `signedCertificateEmbeddedSct` or
    /// `signedCertificateDetachedSct` with a `chain.certificates` array.
    #[error("the response holds no certificate chain")]
    NoChain,
}

/// A certificate that cannot be inspected at all.
#[derive(Debug, Error)]
#[error("the certificate does not parse: {0}")]
pub struct InspectError(String);

/// How to prove possession.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPath {
    /// `publicKeyRequest` with a signature over the challenge; token in the body.
    PublicKey,
    /// `certificateSigningRequest`; token in the Authorization header.
    Csr,
}

/// The challenge a client signs: the token's email when it has one, else `sub` (what
/// sigstore-js and cosign do).
pub(crate) fn challenge_of(token: &str) -> Result<String, RequestError> {
    let claims = crate::oidc::token::UnverifiedToken::parse(token)
        .map_err(RequestError::Token)?
        .claims;
    if let Some(e) = claims.get("email").and_then(Value::as_str) {
        return Ok(e.to_string());
    }
    claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or(RequestError::NoChallenge)
}

/// Requests a certificate from `url`; returns the PEM chain (leaf first).
pub async fn request(
    url: &str,
    token: &str,
    key: &LocalSigner,
    path: KeyPath,
) -> Result<Vec<String>, RequestError> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(RequestError::Client)?;
    let endpoint = format!("{}/api/v2/signingCert", url.trim_end_matches('/'));
    let mut req = http
        .post(&endpoint)
        .header("content-type", "application/json");
    let body = match path {
        KeyPath::PublicKey => {
            let challenge = challenge_of(token)?;
            let proof = key.sign(challenge.as_bytes()).map_err(RequestError::Sign)?;
            json!({
                "credentials": {"oidcIdentityToken": token},
                "publicKeyRequest": {
                    "publicKey": {"content": pem::encode("PUBLIC KEY", key.public_key_spki())},
                    "proofOfPossession": STANDARD.encode(proof),
                }
            })
        }
        KeyPath::Csr => {
            req = req.bearer_auth(token);
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            let csr = params
                .serialize_request(key)
                .and_then(|c| c.pem())
                .map_err(RequestError::Csr)?;
            json!({"certificateSigningRequest": STANDARD.encode(csr)})
        }
    };
    let transport = |source| RequestError::Transport {
        endpoint: endpoint.clone(),
        source,
    };
    let resp = req.body(body.to_string()).send().await.map_err(transport)?;
    let status = resp.status();
    let text = resp.text().await.map_err(transport)?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() || v.is_null() {
        return Err(RequestError::Refused {
            endpoint,
            status: status.as_u16(),
            message: v["message"].as_str().unwrap_or(&text).to_string(),
        });
    }
    let shape = v
        .get("signedCertificateEmbeddedSct")
        .or_else(|| v.get("signedCertificateDetachedSct"))
        .ok_or(RequestError::NoChain)?;
    Ok(shape["chain"]["certificates"]
        .as_array()
        .ok_or(RequestError::NoChain)?
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect())
}

/// A new ECDSA P-256 key for `cert request`.
pub fn new_key() -> Result<LocalSigner, crate::model::signer::SignerError> {
    LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256)
}

/// One SCT's verification status.
#[derive(Debug, Clone)]
pub struct SctStatus {
    /// Base URL of the TrustedRoot CT log whose log ID matches the SCT; `None` if none matches.
    pub log: Option<String>,
    /// The SCT's timestamp, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The log's leaf index from the SCT's `leaf_index` extension, if it carries one.
    pub leaf_index: Option<u64>,
    /// Whether the SCT's signature verifies with the matching log's key (false if no log).
    pub verified: bool,
}

/// What `cert verify` reports.
#[derive(Debug, Clone)]
pub struct Report {
    /// The certificate's serial number, lowercase hex of its raw bytes.
    pub serial: String,
    /// Start of the validity period, in Unix seconds.
    pub not_before: i64,
    /// End of the validity period, in Unix seconds.
    pub not_after: i64,
    /// Subject alternative names, prefixed by kind (`email:`, `uri:`, `username:`; others in
    /// `Debug` form).
    pub sans: Vec<String>,
    /// The OIDC issuer from the v2 issuer extension (`.8`), else the v1 one (`.1`); `None` if
    /// the certificate has neither.
    pub issuer: Option<String>,
    /// The Sigstore (`1.3.6.1.4.1.57264.1.*`) extensions as (name, decoded value) pairs, in
    /// certificate order.
    pub extensions: Vec<(String, String)>,
    /// The verified path's subjects above the leaf, or why it does not verify.
    pub chain: Result<Vec<String>, ChainError>,
    /// The embedded SCTs; empty when the chain does not verify or the leaf has none.
    pub scts: Vec<SctStatus>,
    /// Whether key usage includes digitalSignature and extended key usage includes codeSigning.
    pub key_usage_ok: bool,
}

impl Report {
    /// Whether the certificate passes: the chain verifies, key usage is right, and there is at
    /// least one SCT and every SCT verifies.
    pub fn ok(&self) -> bool {
        self.chain.is_ok()
            && self.key_usage_ok
            && !self.scts.is_empty()
            && self.scts.iter().all(|s| s.verified)
    }

    /// The report as a JSON object (what `cert verify --json` prints), including `ok`.
    pub fn to_json(&self) -> Value {
        json!({
            "serial": self.serial,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "san": self.sans,
            "issuer": self.issuer,
            "extensions": self.extensions.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            "chain": match &self.chain { Ok(p) => json!({"verified": true, "path": p}), Err(e) => json!({"verified": false, "error": e.to_string()}) },
            "key_usage_ok": self.key_usage_ok,
            "scts": self.scts.iter().map(|s| json!({"log": s.log, "timestamp_ms": s.timestamp_ms, "leaf_index": s.leaf_index, "verified": s.verified})).collect::<Vec<_>>(),
            "ok": self.ok(),
        })
    }
}

fn sigstore_name(arc: u8) -> String {
    if arc == 1 {
        return "issuer (v1, .1)".into();
    }
    Field::ALL
        .iter()
        .find(|f| f.arc() == arc)
        .map(|f| format!("{} (.{arc})", f.yaml_key()))
        .unwrap_or_else(|| format!(".{arc}"))
}

/// Inspects `leaf` (DER) against a trusted root, at the certificate's notBefore (when it
/// was used), as sigstore-rs does.
pub fn inspect(leaf: &[u8], trust: &TrustView) -> Result<Report, InspectError> {
    let (_, cert) = parse_x509_certificate(leaf).map_err(|e| InspectError(e.to_string()))?;
    let mut sans = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            sans.push(match n {
                GeneralName::RFC822Name(e) => format!("email:{e}"),
                GeneralName::URI(u) => format!("uri:{u}"),
                GeneralName::OtherName(o, v)
                    if o.as_bytes() == oid::SIGSTORE_OTHERNAME_SAN.content =>
                {
                    // [0] EXPLICIT UTF8String
                    let inner = crate::model::der::read_tlv(v)
                        .ok()
                        .map(|(t, _)| t.content.to_vec())
                        .unwrap_or_default();
                    format!("username:{}", parse_der_string(&inner).unwrap_or_default())
                }
                other => format!("{other:?}"),
            });
        }
    }
    let mut extensions = Vec::new();
    let mut issuer_v1 = None;
    let mut issuer_v2 = None;
    for e in cert.extensions() {
        let b = e.oid.as_bytes();
        if b.len() == 10 && b[..9] == oid::sigstore(0)[..9] {
            let arc = b[9];
            let value = if arc <= 6 {
                String::from_utf8_lossy(e.value).into_owned()
            } else {
                parse_der_string(e.value)
                    .unwrap_or_else(|| format!("<invalid: {}>", hex::encode(e.value)))
            };
            if arc == 1 {
                issuer_v1 = Some(value.clone());
            }
            if arc == 8 {
                issuer_v2 = Some(value.clone());
            }
            extensions.push((sigstore_name(arc), value));
        }
    }
    let at = cert.validity().not_before.timestamp();
    let chain = verify_chain(leaf, trust, at);
    let key_usage_ok = matches!(cert.key_usage(), Ok(Some(ku)) if ku.value.digital_signature())
        && crate::model::x509::has_code_signing_eku(&cert);
    let mut scts = Vec::new();
    if let Ok(path) = &chain
        && path.len() > 1
        && let Ok(found) = embedded_scts(leaf, &path[1])
    {
        for e in found {
            let log = trust
                .ctlogs
                .iter()
                .find(|(k, _)| k.log_id() == &e.sct.log_id);
            scts.push(SctStatus {
                log: log.map(|(_, url)| url.clone()),
                timestamp_ms: e.sct.timestamp,
                leaf_index: crate::model::sct::parse_leaf_index(&e.sct.extensions),
                verified: log.is_some_and(|(k, _)| k.verify_sct(&e.sct, &e.entry())),
            });
        }
    }
    Ok(Report {
        serial: hex::encode(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sans,
        issuer: issuer_v2.or(issuer_v1),
        extensions,
        chain: chain.map(|p| {
            p.iter()
                .skip(1)
                .map(|d| {
                    parse_x509_certificate(d)
                        .map(|(_, c)| c.subject().to_string())
                        .unwrap_or_default()
                })
                .collect()
        }),
        scts,
        key_usage_ok,
    })
}
