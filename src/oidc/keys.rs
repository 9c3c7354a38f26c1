//! Per-issuer discovery and JWKS, cached, with bounded refresh: an unknown `kid` triggers
//! at most one JWKS refetch per [`REFRESH_INTERVAL`] per issuer, concurrent refreshes are
//! coalesced into one request, and a failed refresh keeps the keys already held.
//!
//! Keys age: after [`Freshness::refresh_after`] the next token that uses them starts one
//! background refresh and is verified with the keys held (a provider that is down costs
//! nobody a certificate); after [`Freshness::max_age`] without a successful fetch they are
//! no longer trusted, so a key the provider withdrew cannot verify tokens forever.

use super::fetch::{self, FetchError};
use crate::metrics;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
// tokio's clock, so tests can move time without sleeping.
use tokio::time::Instant;

/// Default minimum time between two JWKS fetches caused by unknown key ids.
pub(crate) const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Default age after which held keys are refreshed in the background on their next use.
pub(crate) const REFRESH_AFTER: Duration = Duration::from_secs(3600);
/// Default age after which held keys are no longer trusted without a successful fetch.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// After a failed first discovery, requests fail fast for this long instead of hammering
/// a down issuer.
pub(crate) const FAILED_DISCOVERY_BACKOFF: Duration = Duration::from_secs(5);
/// Keys tried for a token without `kid`.
pub(crate) const MAX_KEYS_WITHOUT_KID: usize = 10;

/// Algorithms brevis verifies. Never `none` or `HS*`.
pub(crate) const SUPPORTED: [(&str, Algorithm); 10] = [
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

pub(crate) fn algorithm_from_name(name: &str) -> Option<Algorithm> {
    SUPPORTED.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// One usable verification key from a JWKS.
pub struct VerificationKey {
    /// The JWK's `kid`; a token whose header names a `kid` is verified only with keys of that
    /// `kid`.
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
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
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

    /// Whether `signature_b64` (base64url, as in a compact JWS) is a valid `alg` signature over
    /// `signing_input` (`header.payload`); any error counts as `false`.
    pub fn verify(&self, signing_input: &str, signature_b64: &str, alg: Algorithm) -> bool {
        crate::model::count::record(crate::model::count::CryptoOp::VerifyToken);
        jsonwebtoken::crypto::verify(signature_b64, signing_input.as_bytes(), &self.key, alg)
            .unwrap_or(false)
    }
}

/// What discovery and the JWKS told us about one issuer.
pub(crate) struct IssuerKeys {
    pub jwks_uri: String,
    /// Header `alg` values accepted: discovery's list intersected with [`SUPPORTED`]
    /// (RS256 alone when discovery lists none).
    pub algorithms: Vec<String>,
    pub keys: Vec<VerificationKey>,
    /// When the JWKS these keys came from was fetched.
    pub fetched: Instant,
}

/// How long an issuer's keys are used, and how often they may be fetched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Freshness {
    /// Minimum time between two JWKS fetches caused by unknown `kid`s or background
    /// refreshes.
    pub fetch_interval: Duration,
    /// Keys older than this are refreshed in the background on their next use (and still
    /// used meanwhile).
    pub refresh_after: Duration,
    /// Keys older than this are dropped: the next token waits for a fresh discovery and is
    /// refused if it fails.
    pub max_age: Duration,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            fetch_interval: REFRESH_INTERVAL,
            refresh_after: REFRESH_AFTER,
            max_age: MAX_AGE,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum KeysError {
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
pub(crate) struct KeySet {
    issuer: String,
    /// Metrics label: the configured issuer URL or meta-issuer pattern.
    label: String,
    fetcher: Arc<dyn fetch::Fetcher>,
    freshness: Freshness,
    current: RwLock<Option<Arc<IssuerKeys>>>,
    fetch: tokio::sync::Mutex<FetchState>,
    /// A background refresh is running.
    refreshing: AtomicBool,
}

impl KeySet {
    pub(crate) fn new(
        issuer: String,
        label: String,
        fetcher: Arc<dyn fetch::Fetcher>,
        freshness: Freshness,
    ) -> KeySet {
        KeySet {
            issuer,
            label,
            fetcher,
            freshness,
            current: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            refreshing: AtomicBool::new(false),
        }
    }

    fn snapshot(&self) -> Option<Arc<IssuerKeys>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    /// The cached keys, running discovery first if this issuer was never loaded or its
    /// keys outlived [`Freshness::max_age`]; keys past [`Freshness::refresh_after`] are
    /// returned at once and refreshed in the background.
    pub(crate) async fn keys(self: &Arc<Self>) -> Result<Arc<IssuerKeys>, KeysError> {
        if let Some(k) = self.snapshot() {
            let age = k.fetched.elapsed();
            if age < self.freshness.refresh_after {
                return Ok(k);
            }
            if age < self.freshness.max_age {
                self.refresh_in_background(&k);
                return Ok(k);
            }
        }
        let mut state = self.fetch.lock().await;
        if let Some(k) = self.snapshot() {
            if k.fetched.elapsed() < self.freshness.max_age {
                return Ok(k);
            }
            tracing::warn!(issuer = %self.issuer, max_age = ?self.freshness.max_age, "OIDC keys expired without a successful refresh; no longer trusted");
            if let Ok(mut g) = self.current.write() {
                *g = None;
            }
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

    /// Starts one JWKS refresh for aging keys unless one is running or the last fetch was
    /// within [`Freshness::fetch_interval`]; failures keep the keys held.
    fn refresh_in_background(self: &Arc<Self>, seen: &Arc<IssuerKeys>) {
        if self.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let (this, seen) = (self.clone(), seen.clone());
        tokio::spawn(async move {
            this.refresh(&seen, "scheduled").await;
            this.refreshing.store(false, Ordering::SeqCst);
        });
    }

    /// Called when a token names a `kid` the cached JWKS lacks. Returns newer keys if a
    /// refresh happened (here or concurrently), or `None` when rate-limited or failed.
    pub(crate) async fn refresh_for_unknown_kid(
        &self,
        seen: &Arc<IssuerKeys>,
    ) -> Option<Arc<IssuerKeys>> {
        self.refresh(seen, "unknown kid").await
    }

    /// Refetches the JWKS of `seen` unless newer keys arrived meanwhile or the last fetch
    /// was too recent. Returns the newer keys, or `None`.
    async fn refresh(&self, seen: &Arc<IssuerKeys>, why: &'static str) -> Option<Arc<IssuerKeys>> {
        let mut state = self.fetch.lock().await;
        if let Some(k) = self.snapshot()
            && !Arc::ptr_eq(&k, seen)
        {
            return Some(k);
        }
        if state
            .last_fetch
            .is_some_and(|t| t.elapsed() < self.freshness.fetch_interval)
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
                    fetched: Instant::now(),
                });
                if let Ok(mut g) = self.current.write() {
                    *g = Some(k.clone());
                }
                Some(k)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, reason = why, "JWKS refresh failed; keeping the keys already held");
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
        let r = self.fetcher.get_json(url).await;
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
            fetched: Instant::now(),
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
pub(crate) struct Discovery {
    pub jwks_uri: String,
    /// `id_token_signing_alg_values_supported` intersected with [`SUPPORTED`]; RS256 when
    /// the document lists none.
    pub algorithms: Vec<String>,
}

impl Discovery {
    /// Checks a discovery document fetched for `issuer`: it names that exact issuer, and
    /// a `jwks_uri` that an https issuer serves over https.
    pub(crate) fn parse(
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
pub(crate) fn usable_keys(doc: &serde_json::Map<String, Value>) -> Vec<VerificationKey> {
    doc.get("keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(VerificationKey::from_jwk).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BoxFuture;
    use serde_json::json;
    use std::sync::atomic::AtomicUsize;

    const ISSUER: &str = "https://issuer.example";

    /// An issuer that is up or down, counting the documents it was asked for.
    #[derive(Default)]
    struct Switch {
        down: AtomicBool,
        requests: AtomicUsize,
    }

    impl fetch::Fetcher for Switch {
        fn get_json<'a>(
            &'a self,
            url: &'a str,
        ) -> BoxFuture<'a, Result<serde_json::Map<String, Value>, FetchError>> {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let r = if self.down.load(Ordering::SeqCst) {
                Err(FetchError::Status {
                    url: url.to_string(),
                    status: 503,
                })
            } else if url.ends_with("/openid-configuration") {
                Ok(json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/jwks")}))
            } else {
                // RFC 8037's example Ed25519 key.
                Ok(
                    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
                    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}),
                )
            };
            Box::pin(async move { r.map(|v| v.as_object().unwrap().clone()) })
        }
    }

    fn keyset(switch: &Arc<Switch>) -> Arc<KeySet> {
        Arc::new(KeySet::new(
            ISSUER.into(),
            ISSUER.into(),
            switch.clone(),
            Freshness {
                fetch_interval: Duration::from_secs(30),
                refresh_after: Duration::from_secs(3600),
                max_age: Duration::from_secs(24 * 3600),
            },
        ))
    }

    /// Lets spawned background refreshes run (the test runtime has one thread).
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn aging_keys_serve_through_an_outage_and_expire_after_max_age() {
        let switch = Arc::new(Switch::default());
        let set = keyset(&switch);
        let first = set.keys().await.unwrap();
        assert_eq!(
            switch.requests.load(Ordering::SeqCst),
            2,
            "discovery + JWKS"
        );

        // The issuer goes down; keys past refresh_after still serve, one refresh is tried.
        switch.down.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        for _ in 0..5 {
            assert!(Arc::ptr_eq(&set.keys().await.unwrap(), &first));
        }
        settle().await;
        assert_eq!(
            switch.requests.load(Ordering::SeqCst),
            3,
            "one background refresh"
        );
        for _ in 0..5 {
            set.keys().await.unwrap();
        }
        settle().await;
        assert_eq!(
            switch.requests.load(Ordering::SeqCst),
            3,
            "no second attempt within the fetch interval"
        );

        // Back up: the next use refreshes in the background, and the keys are young again.
        switch.down.store(false, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(Arc::ptr_eq(&set.keys().await.unwrap(), &first));
        settle().await;
        let refreshed = set.keys().await.unwrap();
        assert!(
            !Arc::ptr_eq(&refreshed, &first),
            "refreshed keys replace the old"
        );

        // Down for longer than max_age: the keys stop being trusted, and the failure is
        // fast (no fetch while backing off).
        switch.down.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(23 * 3600)).await;
        set.keys().await.unwrap();
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        assert!(matches!(set.keys().await, Err(KeysError::Fetch(_))));
        let asked = switch.requests.load(Ordering::SeqCst);
        assert!(matches!(set.keys().await, Err(KeysError::BackingOff(_))));
        assert_eq!(switch.requests.load(Ordering::SeqCst), asked);

        // The issuer returns: after the backoff, discovery runs again.
        switch.down.store(false, Ordering::SeqCst);
        tokio::time::advance(FAILED_DISCOVERY_BACKOFF).await;
        let back = set.keys().await.unwrap();
        assert_eq!(back.keys.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_keys_cost_no_fetch() {
        let switch = Arc::new(Switch::default());
        let set = keyset(&switch);
        set.keys().await.unwrap();
        tokio::time::advance(Duration::from_secs(3599)).await;
        for _ in 0..10 {
            set.keys().await.unwrap();
        }
        settle().await;
        assert_eq!(switch.requests.load(Ordering::SeqCst), 2);
    }
}
