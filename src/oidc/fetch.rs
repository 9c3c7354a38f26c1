//! HTTP for OIDC discovery and JWKS: timeouts, a response size cap, same-host redirects
//! only, and the issuer's own CA certificate when one is configured.

use std::time::Duration;
use thiserror::Error;

/// Discovery documents and JWKS larger than this are refused.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

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
pub fn client(ca_cert: Option<&str>, timeout: Duration) -> Result<reqwest::Client, FetchError> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("too many redirects");
        }
        let same_host = attempt
            .previous()
            .last()
            .map(|prev| prev.host_str() == attempt.url().host_str())
            .unwrap_or(false);
        if same_host {
            attempt.follow()
        } else {
            attempt.error("cross-host redirect refused")
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

/// GETs `url` and parses a JSON object, reading at most [`MAX_DOCUMENT_BYTES`].
pub async fn get_json(
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
