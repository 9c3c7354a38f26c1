//! A client for remote RFC 6962 logs (`--ct-log-url`): `add-pre-chain` with a per-attempt
//! timeout, bounded retries on network errors, 408, 429 and 5xx (honouring
//! `Retry-After`), and an overall deadline after which the request fails.

use super::{BoxFuture, CtError, LogPublicKey, Submitter};
use crate::model::sct::SctError;
use crate::model::sct::{AddChainResponse, Sct};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How the remote-log client submits (defaults: 10 s per attempt, 30 s overall, 4 attempts).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of one HTTP attempt.
    pub attempt_timeout: Duration,
    /// Give up after this long, retries included.
    pub deadline: Duration,
    /// Attempts at most.
    pub max_attempts: u32,
    /// `Host` header override (Fulcio's `--ct-log-origin`).
    pub host: Option<String>,
    /// Extra CA certificates (PEM) for the log's TLS.
    pub tls_ca: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            attempt_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
            max_attempts: 4,
            host: None,
            tls_ca: None,
        }
    }
}

/// Why a client for a remote log could not be built.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The log's base URL does not parse.
    #[error("{url:?} is not a URL")]
    Url {
        /// The URL as given.
        url: String,
        /// The parser's error.
        #[source]
        source: url::ParseError,
    },
    /// The log's URL scheme is neither `http` nor `https` (the URL is carried).
    #[error("{0:?}: must be http or https")]
    Scheme(String),
    /// `tls_ca` is not a readable PEM certificate bundle.
    #[error("the log's TLS CA certificates")]
    TlsCa(#[source] reqwest::Error),
    /// The HTTP client could not be built.
    #[error("the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// Why a submission to a remote log gave no SCT.
#[derive(Debug, Error)]
pub(crate) enum SubmitError {
    #[error("{url}: no answer after {attempts} attempts")]
    Transport {
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP {status} after {attempts} attempts")]
    Unavailable {
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("{url}: the log refused the submission with HTTP {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: the answer could not be read")]
    Body {
        url: String,
        #[source]
        source: BodyError,
    },
    #[error("{url}: the answer is not an add-chain response")]
    NotJson {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url}: the answer holds no valid SCT")]
    Sct {
        url: String,
        #[source]
        source: SctError,
    },
}

/// Why a response body was not read.
#[derive(Debug, Error)]
pub(crate) enum BodyError {
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Why a readiness probe failed.
#[derive(Debug, Error)]
pub(crate) enum ProbeError {
    #[error("{url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}")]
    Body {
        url: String,
        #[source]
        source: BodyError,
    },
    #[error("{url}: not a tree head")]
    NotTreeHead { url: String },
}

pub(crate) struct RemoteLog {
    base: String,
    http: reqwest::Client,
    key: Option<LogPublicKey>,
    options: ClientOptions,
}

impl RemoteLog {
    pub(crate) fn new(
        base_url: &str,
        key: Option<LogPublicKey>,
        options: ClientOptions,
    ) -> Result<RemoteLog, ClientError> {
        let url = url::Url::parse(base_url).map_err(|source| ClientError::Url {
            url: base_url.to_string(),
            source,
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(ClientError::Scheme(base_url.to_string()));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(options.attempt_timeout)
            .connect_timeout(options.attempt_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("brevis/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &options.tls_ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(ClientError::TlsCa)?;
            builder = builder.tls_certs_merge(certs);
        }
        Ok(RemoteLog {
            base: base_url.trim_end_matches('/').to_string(),
            http: builder.build().map_err(ClientError::Http)?,
            key,
            options,
        })
    }

    /// Whether the log answers: `get-sth` returns 200 with a tree head (readiness).
    pub(crate) async fn probe(&self) -> Result<(), ProbeError> {
        let url = format!("{}/ct/v1/get-sth", self.base);
        let mut req = self.http.get(&url).timeout(PROBE_TIMEOUT);
        if let Some(h) = &self.options.host {
            req = req.header(reqwest::header::HOST, h);
        }
        let resp = req.send().await.map_err(|source| ProbeError::Transport {
            url: url.clone(),
            source,
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ProbeError::Status {
                url,
                status: status.as_u16(),
            });
        }
        let bytes = read_capped(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|source| ProbeError::Body {
                url: url.clone(),
                source,
            })?;
        let tree_size = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|body| body.get("tree_size").and_then(|v| v.as_u64()));
        match tree_size {
            Some(_) => Ok(()),
            None => Err(ProbeError::NotTreeHead { url }),
        }
    }

    async fn post_chain(&self, endpoint: &str, chain: &[Vec<u8>]) -> Result<Sct, SubmitError> {
        let url = format!("{}/ct/v1/{endpoint}", self.base);
        let body = serde_json::json!({
            "chain": chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>()
        })
        .to_string()
        .into_bytes();
        // Every wait below (an attempt, a back-off, a Retry-After) is bounded by what is
        // left of the deadline, so no answer of the log can hold the request longer.
        let deadline = Instant::now() + self.options.deadline;
        let mut attempt = 0u32;
        let mut backoff = Duration::from_millis(250);
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let mut req = self
                .http
                .post(&url)
                .timeout(self.options.attempt_timeout.min(left))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(h) = &self.options.host {
                req = req.header(reqwest::header::HOST, h);
            }
            let (retry_after, failure) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        let bytes =
                            read_capped(resp, MAX_RESPONSE_BYTES)
                                .await
                                .map_err(|source| SubmitError::Body {
                                    url: url.clone(),
                                    source,
                                })?;
                        let parsed: AddChainResponse =
                            serde_json::from_slice(&bytes).map_err(|source| {
                                SubmitError::NotJson {
                                    url: url.clone(),
                                    source,
                                }
                            })?;
                        return Sct::from_json(&parsed).map_err(|source| SubmitError::Sct {
                            url: url.clone(),
                            source,
                        });
                    }
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text: String = read_capped(resp, MAX_ERROR_TEXT_BYTES)
                        .await
                        .map(|b| String::from_utf8_lossy(&b).chars().take(300).collect())
                        .unwrap_or_default();
                    let retryable = status.as_u16() == 408
                        || status.as_u16() == 429
                        || status.is_server_error();
                    if !retryable {
                        return Err(SubmitError::Rejected {
                            url,
                            status: status.as_u16(),
                            body: text,
                        });
                    }
                    tracing::warn!(%url, %status, body = %text, attempt, "CT log answered with a retryable error");
                    (retry_after, Failure::Status(status.as_u16()))
                }
                Err(e) => {
                    tracing::warn!(%url, error = %e, attempt, "CT log request failed");
                    (None, Failure::Transport(e))
                }
            };
            let wait = retry_after.unwrap_or(backoff);
            let left = deadline.saturating_duration_since(Instant::now());
            if attempt >= self.options.max_attempts || wait >= left {
                return Err(match failure {
                    Failure::Status(status) => SubmitError::Unavailable {
                        url,
                        status,
                        attempts: attempt,
                    },
                    Failure::Transport(source) => SubmitError::Transport {
                        url,
                        attempts: attempt,
                        source,
                    },
                });
            }
            tokio::time::sleep(wait).await;
            backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
        }
    }
}

/// What went wrong with one attempt.
enum Failure {
    Status(u16),
    Transport(reqwest::Error),
}

/// Time a readiness probe of the log may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between attempts when the log gives no `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// An `add-pre-chain` answer or a tree head is a few hundred bytes; a log that sends more
/// than this is not answering the question.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Of an error answer, this much is read (and 300 characters logged).
const MAX_ERROR_TEXT_BYTES: usize = 4 * 1024;

/// Reads a response body, refusing it once it exceeds `cap` bytes (whatever its
/// `Content-Length` claims).
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl Submitter for RemoteLog {
    fn label(&self) -> &str {
        &self.base
    }

    fn public_key(&self) -> Option<&LogPublicKey> {
        self.key.as_ref()
    }

    fn add_pre_chain<'a>(&'a self, chain: &'a [Vec<u8>]) -> BoxFuture<'a, Result<Sct, CtError>> {
        Box::pin(async move { Ok(self.post_chain("add-pre-chain", chain).await?) })
    }
}
