//! OIDC identity token verification against the configured issuers.
//!
//! Flow: parse the compact JWS once; route on the unverified `iss` to an exact configured
//! issuer or an anchored meta-issuer pattern (nothing else is ever contacted); verify the
//! signature with that issuer's cached JWKS using only algorithms its discovery document
//! advertises; then check `iss`, `aud`, `exp`, `nbf` and `iat` on the same parsed claims.

pub(crate) mod fetch;
pub mod keys;
pub mod token;

use crate::config::{IdentityConfig, IssuerConfig};
use crate::model::Clock;
use crate::ratelimit::{Rate, RateLimiter};
use keys::{KeySet, KeysError, MAX_KEYS_WITHOUT_KID};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use token::{ParseError, UnverifiedToken};

/// Verified meta-issuers kept at once (Fulcio: an LRU of 100). Only issuers whose tokens
/// verified enter, and only another verified issuer can displace one.
pub(crate) const META_CACHE_SIZE: usize = 100;
/// How long an admitted, not yet verified meta-issuer is kept for further tokens (its
/// discovery and keys fetched once) before it must be admitted again.
pub(crate) const META_PENDING_TTL: Duration = Duration::from_secs(60);

/// Why a token was refused. Clients always see Fulcio's fixed message; this goes to logs
/// and to the `brevis_rejections_total{reason}` metric.
#[derive(Debug, Error, Clone)]
pub(crate) enum TokenError {
    #[error("no identity token was supplied")]
    Missing,
    #[error("token too large")]
    TooLarge,
    #[error("token is not a well-formed compact JWS: {0:?}")]
    Malformed(ParseError),
    #[error("token issuer {0:?} is not configured")]
    UnknownIssuer(String),
    /// A new issuer under a meta-issuer pattern, beyond the pattern's admission rate: no
    /// request is made to it.
    #[error(
        "too many new issuers under meta-issuer pattern {pattern:?}; {issuer:?} was not contacted"
    )]
    IssuerAdmission { pattern: String, issuer: String },
    #[error("could not load the issuer's keys: {0}")]
    Keys(#[from] KeysError),
    #[error("algorithm {0:?} is not allowed for this issuer")]
    Algorithm(String),
    #[error("no key in the issuer's JWKS matches kid {0:?}")]
    UnknownKey(String),
    #[error("signature does not verify")]
    Signature,
    #[error("token iss {found:?} does not equal the issuer {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("token audience does not include {0:?}")]
    Audience(String),
    #[error("token expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token issued in the future (iat)")]
    IssuedInFuture,
    #[error("token claim {0} is missing or has the wrong type")]
    Claim(&'static str),
}

impl TokenError {
    /// A closed set of reason codes for metrics.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            TokenError::Missing => "token_missing",
            TokenError::TooLarge => "token_too_large",
            TokenError::Malformed(_) => "token_malformed",
            TokenError::UnknownIssuer(_) => "unknown_issuer",
            TokenError::IssuerAdmission { .. } => "meta_issuer_admission",
            TokenError::Keys(_) => "issuer_unavailable",
            TokenError::Algorithm(_) => "token_algorithm",
            TokenError::UnknownKey(_) => "token_unknown_key",
            TokenError::Signature => "token_signature",
            TokenError::IssuerMismatch { .. } => "token_issuer_mismatch",
            TokenError::Audience(_) => "token_audience",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::IssuedInFuture => "token_issued_in_future",
            TokenError::Claim(_) => "token_claims",
        }
    }
}

/// Why the verifier for a configuration could not be built (found at startup or reload,
/// never at request time).
#[derive(Debug, Error)]
pub enum BuildError {
    /// An issuer's `ca-cert` cannot be used to build its HTTP client.
    #[error("issuer {issuer}: unusable ca-cert")]
    CaCert {
        /// The issuer URL, or the meta-issuer pattern.
        issuer: String,
        /// Why the certificate or the client was refused.
        #[source]
        source: fetch::FetchError,
    },
    /// A meta-issuer pattern does not make a valid regex.
    #[error("meta-issuer {pattern}: the pattern does not compile")]
    Pattern {
        /// The configured pattern.
        pattern: String,
        /// The regex compiler's error.
        #[source]
        source: regex::Error,
    },
}

/// A configured issuer with its key cache.
pub(crate) struct Issuer {
    /// The effective configuration (for meta matches: the concrete URL and copied fields).
    pub config: Arc<IssuerConfig>,
    /// The configured URL or pattern this issuer came from (a closed set: metrics label).
    pub label: String,
    keys: Arc<KeySet>,
}

/// A token whose signature and standard claims checked out.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedToken {
    pub issuer: Arc<IssuerConfig>,
    pub label: String,
    pub claims: Map<String, Value>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("label", &self.label)
            .finish()
    }
}

struct MetaPattern {
    regex: Regex,
    config: Arc<IssuerConfig>,
    /// Built once at startup: admitting an issuer builds nothing.
    fetcher: Arc<dyn fetch::Fetcher>,
    /// New concrete issuers admitted under this pattern (one bucket).
    admission: RateLimiter,
}

/// Turns a meta-issuer pattern into its anchored regex: every character literal, each `*`
/// one or more of `[-_a-zA-Z0-9]` (never `.`, `/`, `:`, `?`).
pub(crate) fn meta_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let body: Vec<String> = pattern.split('*').map(regex::escape).collect();
    Regex::new(&format!("^{}$", body.join("[-_a-zA-Z0-9]+")))
}

/// Options for token verification.
#[derive(Debug, Clone, Copy)]
pub struct VerifierOptions {
    /// Allowance for `nbf` and `iat` in the future. `exp` gets none.
    pub clock_skew: Duration,
    /// Timeout for each discovery or JWKS request.
    pub fetch_timeout: Duration,
    /// Minimum time between JWKS fetches caused by unknown key ids, per issuer.
    pub jwks_refresh_interval: Duration,
    /// Age after which an issuer's keys are refreshed in the background on next use.
    pub jwks_refresh_after: Duration,
    /// Age after which keys not refreshed successfully are no longer trusted.
    pub jwks_max_age: Duration,
    /// New issuers admitted per meta-issuer pattern (default 10 per minute, burst 10).
    pub meta_admission: Rate,
}

impl VerifierOptions {
    fn freshness(&self) -> keys::Freshness {
        keys::Freshness {
            fetch_interval: self.jwks_refresh_interval,
            refresh_after: self.jwks_refresh_after,
            max_age: self.jwks_max_age,
        }
    }
}

impl Default for VerifierOptions {
    fn default() -> Self {
        VerifierOptions {
            clock_skew: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(10),
            jwks_refresh_interval: keys::REFRESH_INTERVAL,
            jwks_refresh_after: keys::REFRESH_AFTER,
            jwks_max_age: keys::MAX_AGE,
            meta_admission: Rate {
                per_second: 10.0 / 60.0,
                burst: 10,
            },
        }
    }
}

/// Concrete issuers met under meta-issuer patterns.
#[derive(Default)]
struct MetaCache {
    tick: u64,
    /// Issuers a token verified for, with the tick of their last use (LRU).
    verified: HashMap<String, (Arc<Issuer>, u64)>,
    /// Admitted issuers no token has verified for yet, with when they were admitted.
    pending: HashMap<String, (Arc<Issuer>, Instant)>,
}

/// Where a token's `iss` routes.
enum Route {
    /// A configured issuer, or a meta-issuer whose tokens verified before.
    Known(Arc<Issuer>),
    /// A meta-issuer admitted under its pattern's rate, not yet vouched for by a token.
    Admitted(Arc<Issuer>),
}

/// Routes and verifies identity tokens.
pub(crate) struct Verifier {
    exact: HashMap<String, Arc<Issuer>>,
    meta: Vec<MetaPattern>,
    meta_cache: Mutex<MetaCache>,
    clock: Arc<dyn Clock>,
    options: VerifierOptions,
}

impl Verifier {
    pub(crate) fn new(
        config: &IdentityConfig,
        clock: Arc<dyn Clock>,
        options: VerifierOptions,
    ) -> Result<Verifier, BuildError> {
        Verifier::with_fetcher(config, clock, options, None)
    }

    /// A verifier whose issuers' documents all come from `fetcher` (tests of the
    /// authority); `None`: each issuer gets an HTTP client of its own.
    pub(crate) fn with_fetcher(
        config: &IdentityConfig,
        clock: Arc<dyn Clock>,
        options: VerifierOptions,
        fetcher: Option<Arc<dyn fetch::Fetcher>>,
    ) -> Result<Verifier, BuildError> {
        let fetcher_for =
            |ca_cert: Option<&str>| -> Result<Arc<dyn fetch::Fetcher>, fetch::FetchError> {
                Ok(match &fetcher {
                    Some(f) => f.clone(),
                    None => Arc::new(fetch::HttpFetcher(fetch::client(
                        ca_cert,
                        options.fetch_timeout,
                    )?)),
                })
            };
        let mut exact = HashMap::new();
        for issuer in &config.issuers {
            let client =
                fetcher_for(issuer.ca_cert.as_deref()).map_err(|source| BuildError::CaCert {
                    issuer: issuer.issuer_url.clone(),
                    source,
                })?;
            let entry = Issuer {
                config: Arc::new(issuer.clone()),
                label: issuer.key.clone(),
                keys: Arc::new(KeySet::new(
                    issuer.issuer_url.clone(),
                    issuer.key.clone(),
                    client,
                    options.freshness(),
                )),
            };
            exact.insert(issuer.key.clone(), Arc::new(entry));
        }
        let mut meta = Vec::new();
        for m in &config.meta_issuers {
            let regex = meta_regex(&m.key).map_err(|source| BuildError::Pattern {
                pattern: m.key.clone(),
                source,
            })?;
            // Fail at startup, not at request time, on an unusable CA certificate.
            let client =
                fetcher_for(m.ca_cert.as_deref()).map_err(|source| BuildError::CaCert {
                    issuer: m.key.clone(),
                    source,
                })?;
            meta.push(MetaPattern {
                regex,
                config: Arc::new(m.clone()),
                fetcher: client,
                admission: RateLimiter::new(options.meta_admission, 1),
            });
        }
        Ok(Verifier {
            exact,
            meta,
            meta_cache: Mutex::new(MetaCache::default()),
            clock,
            options,
        })
    }

    /// Runs discovery for every exact issuer. Failures are logged only; such issuers are
    /// discovered again on first use, as in Fulcio.
    pub(crate) async fn warm_up(&self) {
        for issuer in self.exact.values() {
            if let Err(e) = issuer.keys.keys().await {
                tracing::warn!(issuer = %issuer.label, error = %e, "OIDC discovery failed at startup; will retry on first use");
            }
        }
    }

    /// Routes `iss`. A concrete issuer under a meta pattern that no token verified for yet
    /// is admitted only within the pattern's admission rate (beyond it: an error, and no
    /// request to the issuer); it stays pending, not cached, until a token from it
    /// verifies. Nothing here blocks on the network or holds a lock across a fetch.
    fn route(&self, iss: &str) -> Result<Route, TokenError> {
        if let Some(i) = self.exact.get(iss) {
            return Ok(Route::Known(i.clone()));
        }
        let Some(pattern) = self.meta.iter().find(|m| m.regex.is_match(iss)) else {
            return Err(TokenError::UnknownIssuer(iss.to_string()));
        };
        let mut cache = self.meta_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.tick += 1;
        let tick = cache.tick;
        if let Some((issuer, used)) = cache.verified.get_mut(iss) {
            *used = tick;
            return Ok(Route::Known(issuer.clone()));
        }
        cache
            .pending
            .retain(|_, (_, admitted)| admitted.elapsed() < META_PENDING_TTL);
        if let Some((issuer, _)) = cache.pending.get(iss) {
            return Ok(Route::Admitted(issuer.clone()));
        }
        if pattern.admission.check("").is_err() {
            return Err(TokenError::IssuerAdmission {
                pattern: pattern.config.key.clone(),
                issuer: iss.to_string(),
            });
        }
        let issuer = Arc::new(Issuer {
            keys: Arc::new(KeySet::new(
                iss.to_string(),
                pattern.config.key.clone(),
                pattern.fetcher.clone(),
                self.options.freshness(),
            )),
            label: pattern.config.key.clone(),
            config: Arc::new(pattern.config.for_concrete_issuer(iss)),
        });
        cache
            .pending
            .insert(iss.to_string(), (issuer.clone(), Instant::now()));
        Ok(Route::Admitted(issuer))
    }

    /// A token from an admitted meta-issuer verified: cache the issuer, displacing the
    /// least recently used verified one only when the cache is full.
    fn vouch(&self, iss: &str, issuer: &Arc<Issuer>) {
        let mut cache = self.meta_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.pending.remove(iss);
        cache.tick += 1;
        let tick = cache.tick;
        if !cache.verified.contains_key(iss)
            && cache.verified.len() >= META_CACHE_SIZE
            && let Some(oldest) = cache
                .verified
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            cache.verified.remove(&oldest);
        }
        cache
            .verified
            .insert(iss.to_string(), (issuer.clone(), tick));
    }

    /// Verifies `token` completely.
    pub(crate) async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let parsed = UnverifiedToken::parse(token).map_err(|e| match e {
            ParseError::Empty => TokenError::Missing,
            ParseError::TooLarge => TokenError::TooLarge,
            other => TokenError::Malformed(other),
        })?;
        let iss = parsed.issuer().ok_or(TokenError::Claim("iss"))?;
        let (issuer, admitted) = match self.route(iss)? {
            Route::Known(i) => (i, false),
            Route::Admitted(i) => (i, true),
        };
        let mut keys = issuer.keys.keys().await?;
        if !keys.algorithms.contains(&parsed.alg) {
            return Err(TokenError::Algorithm(parsed.alg.clone()));
        }
        let alg = keys::algorithm_from_name(&parsed.alg)
            .ok_or_else(|| TokenError::Algorithm(parsed.alg.clone()))?;
        let verified = match &parsed.kid {
            Some(kid) => {
                if !keys.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                    keys = issuer
                        .keys
                        .refresh_for_unknown_kid(&keys)
                        .await
                        .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
                }
                let candidates: Vec<_> = keys
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid.as_str()) && k.fits(alg))
                    .collect();
                if candidates.is_empty() {
                    return Err(TokenError::UnknownKey(kid.clone()));
                }
                candidates
                    .iter()
                    .any(|k| k.verify(parsed.signing_input, parsed.signature_b64, alg))
            }
            None => keys
                .keys
                .iter()
                .filter(|k| k.fits(alg))
                .take(MAX_KEYS_WITHOUT_KID)
                .any(|k| k.verify(parsed.signing_input, parsed.signature_b64, alg)),
        };
        if !verified {
            return Err(TokenError::Signature);
        }
        self.check_claims(&issuer.config, &parsed.claims)?;
        if admitted {
            self.vouch(iss, &issuer);
        }
        Ok(VerifiedToken {
            issuer: issuer.config.clone(),
            label: issuer.label.clone(),
            claims: parsed.claims,
        })
    }

    fn check_claims(
        &self,
        config: &IssuerConfig,
        claims: &Map<String, Value>,
    ) -> Result<(), TokenError> {
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(TokenError::Claim("iss"))?;
        let google_without_scheme =
            config.issuer_url == "https://accounts.google.com" && iss == "accounts.google.com";
        if iss != config.issuer_url && !google_without_scheme {
            return Err(TokenError::IssuerMismatch {
                expected: config.issuer_url.clone(),
                found: iss.to_string(),
            });
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => return Err(TokenError::Claim("aud")),
        };
        if !audiences.contains(&config.client_id.as_str()) {
            return Err(TokenError::Audience(config.client_id.clone()));
        }
        // OIDC Core 3.1.3.7: with several audiences, an azp (when present) must be us.
        if audiences.len() > 1
            && let Some(azp) = claims.get("azp")
            && azp.as_str() != Some(config.client_id.as_str())
        {
            return Err(TokenError::Audience(config.client_id.clone()));
        }
        let now = self
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let skew = self.options.clock_skew.as_secs_f64();
        let number = |name: &'static str| -> Result<Option<f64>, TokenError> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or(TokenError::Claim(name)),
            }
        };
        let exp = number("exp")?.ok_or(TokenError::Claim("exp"))?;
        if now > exp {
            return Err(TokenError::Expired);
        }
        if number("nbf")?.is_some_and(|nbf| nbf > now + skew) {
            return Err(TokenError::NotYetValid);
        }
        if number("iat")?.is_some_and(|iat| iat > now + skew) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vectors {
        cases: Vec<Case>,
    }
    #[derive(serde::Deserialize)]
    struct Case {
        pattern: String,
        must_match: Vec<String>,
        must_not_match: Vec<Miss>,
    }
    #[derive(serde::Deserialize)]
    struct Miss {
        url: String,
    }

    #[test]
    fn upstream_meta_issuer_vectors() {
        let text = include_str!("../../tests/vectors/fulcio/meta-issuer-patterns.json");
        let v: Vectors = serde_json::from_str(text).unwrap();
        assert!(!v.cases.is_empty());
        for c in v.cases {
            let re = meta_regex(&c.pattern).unwrap();
            for m in &c.must_match {
                assert!(re.is_match(m), "{} should match {}", c.pattern, m);
            }
            for m in &c.must_not_match {
                assert!(
                    !re.is_match(&m.url),
                    "{} must not match {}",
                    c.pattern,
                    m.url
                );
            }
        }
    }
}
