//! HTTP for OIDC discovery and JWKS: timeouts, a response size cap, redirects only within
//! the same origin (scheme, host and port), and the issuer's own CA certificate when one
//! is configured.

use std::time::Duration;
use thiserror::Error;

/// Discovery documents and JWKS larger than this are refused.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Error, Clone)]
pub enum FetchError {
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} returned more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} did not return a JSON object: {reason}")]
    NotJson { url: String, reason: String },
    #[error("invalid ca-cert for {0}")]
    BadCaCert(String),
}

/// Builds the HTTP client used for one issuer.
pub(crate) fn client(
    ca_cert: Option<&str>,
    timeout: Duration,
) -> Result<reqwest::Client, FetchError> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("too many redirects");
        }
        let same_origin = attempt
            .previous()
            .last()
            .is_some_and(|prev| same_origin(prev, attempt.url()));
        if same_origin {
            attempt.follow()
        } else {
            attempt.error("redirect to another origin (scheme, host or port) refused")
        }
    });
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(policy)
        .user_agent(concat!("brevis/", env!("CARGO_PKG_VERSION")));
    if let Some(pem_text) = ca_cert {
        let certs = reqwest::Certificate::from_pem_bundle(pem_text.as_bytes())
            .map_err(|e| FetchError::BadCaCert(e.to_string()))?;
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| FetchError::BadCaCert(e.to_string()))
}

/// Whether two URLs share scheme, host and port: a redirect may move within an issuer's
/// origin, never to another service on the same host or down from https to http.
pub(crate) fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A document an issuer points to (its `jwks_uri`) must be https when the issuer is: a
/// key set fetched in plain text could be swapped by anyone on the path.
pub(crate) fn document_url_allowed(issuer: &str, document: &str) -> bool {
    !issuer.starts_with("https://") || document.starts_with("https://")
}

/// Where discovery documents and key sets come from: HTTP in production, a fixed map in
/// tests of the authority.
pub(crate) trait Fetcher: Send + Sync {
    /// GETs `url` and parses a JSON object.
    fn get_json<'a>(
        &'a self,
        url: &'a str,
    ) -> crate::model::BoxFuture<'a, Result<serde_json::Map<String, serde_json::Value>, FetchError>>;
}

/// Fetches over HTTP with one issuer's client (its timeouts, redirect policy, CA).
pub(crate) struct HttpFetcher(pub reqwest::Client);

impl Fetcher for HttpFetcher {
    fn get_json<'a>(
        &'a self,
        url: &'a str,
    ) -> crate::model::BoxFuture<'a, Result<serde_json::Map<String, serde_json::Value>, FetchError>>
    {
        Box::pin(get_json(&self.0, url))
    }
}

/// GETs `url` and parses a JSON object, reading at most [`MAX_DOCUMENT_BYTES`].
pub(crate) async fn get_json(
    client: &reqwest::Client,
    url: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, FetchError> {
    let transport = |e: reqwest::Error| FetchError::Transport {
        url: url.to_string(),
        reason: e.to_string(),
    };
    let mut resp = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(transport)?;
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: resp.status().as_u16(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| FetchError::NotJson {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_within_the_origin() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert!(same_origin(
            &u("https://i.example/a"),
            &u("https://i.example/b")
        ));
        assert!(same_origin(
            &u("https://i.example/a"),
            &u("https://i.example:443/b")
        ));
        assert!(!same_origin(
            &u("https://i.example/a"),
            &u("http://i.example/b")
        ));
        assert!(!same_origin(
            &u("https://i.example/a"),
            &u("https://i.example:8443/b")
        ));
        assert!(!same_origin(
            &u("http://127.0.0.1:1/a"),
            &u("http://127.0.0.1:2/a")
        ));
        assert!(!same_origin(
            &u("https://i.example/a"),
            &u("https://evil.example/a")
        ));
    }

    #[test]
    fn an_https_issuer_serves_its_keys_over_https() {
        assert!(document_url_allowed(
            "https://i.example",
            "https://keys.example/jwks"
        ));
        assert!(!document_url_allowed(
            "https://i.example",
            "http://i.example/jwks"
        ));
        assert!(document_url_allowed(
            "http://127.0.0.1:1",
            "http://127.0.0.1:1/jwks"
        ));
    }
}
