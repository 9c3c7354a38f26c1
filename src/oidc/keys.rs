//! Per-issuer discovery and JWKS, cached, with bounded refresh: an unknown `kid` triggers
//! at most one JWKS refetch per [`REFRESH_INTERVAL`] per issuer, concurrent refreshes are
//! coalesced into one request, and a failed refresh keeps the keys already held.

use super::fetch::{self, FetchError};
use crate::metrics;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Default minimum time between two JWKS fetches caused by unknown key ids.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// After a failed first discovery, requests fail fast for this long instead of hammering
/// a down issuer.
pub const FAILED_DISCOVERY_BACKOFF: Duration = Duration::from_secs(5);
/// Keys tried for a token without `kid`.
pub const MAX_KEYS_WITHOUT_KID: usize = 10;

/// Algorithms brevis verifies. Never `none` or `HS*`.
pub const SUPPORTED: [(&str, Algorithm); 10] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
    // RFC 9864's fully specified name for EdDSA over Ed25519.
    ("Ed25519", Algorithm::EdDSA),
];

pub fn algorithm_from_name(name: &str) -> Option<Algorithm> {
    SUPPORTED.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// One usable verification key from a JWKS.
pub struct VerificationKey {
    pub kid: Option<String>,
    kty: KeyType,
    key: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl VerificationKey {
    /// A key from one JWKS entry; `None` for keys that cannot verify ID tokens.
    pub fn from_jwk(value: &Value) -> Option<VerificationKey> {
        let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
        if let Some(u) = &jwk.common.public_key_use
            && !matches!(u, jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            return None;
        }
        let kty = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyType::Rsa,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => KeyType::P256,
                EllipticCurve::P384 => KeyType::P384,
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => KeyType::Ed25519,
                _ => return None,
            },
            // Symmetric keys never verify ID tokens.
            _ => return None,
        };
        let key = DecodingKey::from_jwk(&jwk).ok()?;
        Some(VerificationKey {
            kid: jwk.common.key_id.clone(),
            kty,
            key,
        })
    }

    /// Whether this key's type can produce `alg` signatures.
    pub fn fits(&self, alg: Algorithm) -> bool {
        matches!(
            (self.kty, alg),
            (
                KeyType::Rsa,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) | (KeyType::P256, Algorithm::ES256)
                | (KeyType::P384, Algorithm::ES384)
                | (KeyType::Ed25519, Algorithm::EdDSA)
        )
    }

    pub fn verify(&self, signing_input: &str, signature_b64: &str, alg: Algorithm) -> bool {
        jsonwebtoken::crypto::verify(signature_b64, signing_input.as_bytes(), &self.key, alg)
            .unwrap_or(false)
    }
}

/// What discovery and the JWKS told us about one issuer.
pub struct IssuerKeys {
    pub jwks_uri: String,
    /// Header `alg` values accepted: discovery's list intersected with [`SUPPORTED`]
    /// (RS256 alone when discovery lists none).
    pub algorithms: Vec<String>,
    pub keys: Vec<VerificationKey>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("discovery document of {issuer} names issuer {found:?}")]
    IssuerMismatch { issuer: String, found: String },
    #[error("discovery document of {0} has no jwks_uri")]
    NoJwksUri(String),
    #[error(
        "discovery document of {issuer} names jwks_uri {jwks_uri:?}: an https issuer's keys must come over https"
    )]
    InsecureJwksUri { issuer: String, jwks_uri: String },
    #[error("JWKS of {0} has no usable keys")]
    NoKeys(String),
    #[error("discovery of {0} failed recently; not retrying yet")]
    BackingOff(String),
}

#[derive(Default)]
struct FetchState {
    last_fetch: Option<Instant>,
    last_failure: Option<Instant>,
}

/// Discovery + JWKS for one concrete issuer URL.
pub struct KeySet {
    issuer: String,
    /// Metrics label: the configured issuer URL or meta-issuer pattern.
    label: String,
    client: reqwest::Client,
    refresh_interval: Duration,
    current: RwLock<Option<Arc<IssuerKeys>>>,
    fetch: tokio::sync::Mutex<FetchState>,
}

impl KeySet {
    pub fn new(
        issuer: String,
        label: String,
        client: reqwest::Client,
        refresh_interval: Duration,
    ) -> KeySet {
        KeySet {
            issuer,
            label,
            client,
            refresh_interval,
            current: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn snapshot(&self) -> Option<Arc<IssuerKeys>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    /// The cached keys, running discovery first if this issuer was never loaded.
    pub async fn keys(&self) -> Result<Arc<IssuerKeys>, KeysError> {
        if let Some(k) = self.snapshot() {
            return Ok(k);
        }
        let mut state = self.fetch.lock().await;
        if let Some(k) = self.snapshot() {
            return Ok(k);
        }
        if state
            .last_failure
            .is_some_and(|t| t.elapsed() < FAILED_DISCOVERY_BACKOFF)
        {
            return Err(KeysError::BackingOff(self.issuer.clone()));
        }
        match self.discover().await {
            Ok(k) => {
                let k = Arc::new(k);
                state.last_fetch = Some(Instant::now());
                state.last_failure = None;
                if let Ok(mut g) = self.current.write() {
                    *g = Some(k.clone());
                }
                Ok(k)
            }
            Err(e) => {
                state.last_failure = Some(Instant::now());
                Err(e)
            }
        }
    }

    /// Called when a token names a `kid` the cached JWKS lacks. Returns newer keys if a
    /// refresh happened (here or concurrently), or `None` when rate-limited or failed.
    pub async fn refresh_for_unknown_kid(&self, seen: &Arc<IssuerKeys>) -> Option<Arc<IssuerKeys>> {
        let mut state = self.fetch.lock().await;
        if let Some(k) = self.snapshot()
            && !Arc::ptr_eq(&k, seen)
        {
            return Some(k);
        }
        if state
            .last_fetch
            .is_some_and(|t| t.elapsed() < self.refresh_interval)
        {
            return None;
        }
        state.last_fetch = Some(Instant::now());
        match self.fetch_jwks(&seen.jwks_uri).await {
            Ok(keys) => {
                let k = Arc::new(IssuerKeys {
                    jwks_uri: seen.jwks_uri.clone(),
                    algorithms: seen.algorithms.clone(),
                    keys,
                });
                if let Ok(mut g) = self.current.write() {
                    *g = Some(k.clone());
                }
                Some(k)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "JWKS refresh failed; keeping the keys already held");
                None
            }
        }
    }

    async fn timed_get(
        &self,
        url: &str,
        document: &'static str,
    ) -> Result<serde_json::Map<String, Value>, FetchError> {
        let start = Instant::now();
        let r = fetch::get_json(&self.client, url).await;
        metrics::OIDC_FETCH_DURATION
            .with_label_values(&[self.label.as_str(), document])
            .observe(start.elapsed().as_secs_f64());
        metrics::OIDC_FETCHES
            .with_label_values(&[
                self.label.as_str(),
                document,
                if r.is_ok() { "ok" } else { "error" },
            ])
            .inc();
        r
    }

    async fn discover(&self) -> Result<IssuerKeys, KeysError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let doc = self.timed_get(&url, "discovery").await?;
        let discovery = Discovery::parse(&self.issuer, &doc)?;
        let keys = self.fetch_jwks(&discovery.jwks_uri).await?;
        tracing::info!(issuer = %self.issuer, keys = keys.len(), algorithms = ?discovery.algorithms, "OIDC issuer discovered");
        Ok(IssuerKeys {
            jwks_uri: discovery.jwks_uri,
            algorithms: discovery.algorithms,
            keys,
        })
    }

    async fn fetch_jwks(&self, jwks_uri: &str) -> Result<Vec<VerificationKey>, KeysError> {
        let doc = self.timed_get(jwks_uri, "jwks").await?;
        let keys = usable_keys(&doc);
        if keys.is_empty() {
            return Err(KeysError::NoKeys(self.issuer.clone()));
        }
        Ok(keys)
    }
}

/// What brevis takes from a discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub jwks_uri: String,
    /// `id_token_signing_alg_values_supported` intersected with [`SUPPORTED`]; RS256 when
    /// the document lists none.
    pub algorithms: Vec<String>,
}

impl Discovery {
    /// Checks a discovery document fetched for `issuer`: it names that exact issuer, and
    /// a `jwks_uri` that an https issuer serves over https.
    pub fn parse(
        issuer: &str,
        doc: &serde_json::Map<String, Value>,
    ) -> Result<Discovery, KeysError> {
        let found = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if found != issuer {
            return Err(KeysError::IssuerMismatch {
                issuer: issuer.to_string(),
                found: found.to_string(),
            });
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| KeysError::NoJwksUri(issuer.to_string()))?
            .to_string();
        if !fetch::document_url_allowed(issuer, &jwks_uri) {
            return Err(KeysError::InsecureJwksUri {
                issuer: issuer.to_string(),
                jwks_uri,
            });
        }
        let mut algorithms: Vec<String> = doc
            .get("id_token_signing_alg_values_supported")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|n| algorithm_from_name(n).is_some())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if algorithms.is_empty() {
            algorithms.push("RS256".into());
        }
        Ok(Discovery {
            jwks_uri,
            algorithms,
        })
    }
}

/// The keys of a JWKS document that can verify ID tokens (others are skipped).
pub fn usable_keys(doc: &serde_json::Map<String, Value>) -> Vec<VerificationKey> {
    doc.get("keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(VerificationKey::from_jwk).collect())
        .unwrap_or_default()
}
