//! Sigstore trust material for a brevis deployment: the TrustedRoot (CA chain, CT log
//! keys, validity windows) clients load to trust this CA instead of the public-good one.

use crate::ct::LogPublicKey;
use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use x509_parser::prelude::*;

pub const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// A CT log as the trusted root describes it.
pub struct CtLogEntry {
    pub base_url: String,
    pub key: LogPublicKey,
    /// When the log started signing (ms since the epoch).
    pub start_ms: u64,
}

/// A certificate authority as the trusted root describes it.
pub struct CaEntry {
    pub uri: String,
    /// DER chain: issuing certificate first, root last.
    pub chain: Vec<Vec<u8>>,
}

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
pub fn trusted_root(cas: &[CaEntry], logs: &[CtLogEntry], tlogs: Vec<Value>) -> Value {
    let authorities: Vec<Value> = cas
        .iter()
        .map(|ca| {
            let (o, cn) = subject_fields(&ca.chain[0]);
            json!({
                "subject": {"organization": o, "commonName": cn},
                "uri": ca.uri,
                "certChain": {"certificates": ca.chain.iter().map(|c| json!({"rawBytes": STANDARD.encode(c)})).collect::<Vec<_>>()},
                "validFor": {"start": ca_start(&ca.chain)},
            })
        })
        .collect();
    let ctlogs: Vec<Value> = logs
        .iter()
        .map(|l| {
            json!({
                "baseUrl": l.base_url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": STANDARD.encode(l.key.spki_der()),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": rfc3339_millis(l.start_ms)},
                },
                "logId": {"keyId": STANDARD.encode(l.key.log_id())},
            })
        })
        .collect();
    json!({
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": tlogs,
        "certificateAuthorities": authorities,
        "ctlogs": ctlogs,
        "timestampAuthorities": [],
    })
}
