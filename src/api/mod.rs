//! The HTTP handlers: Fulcio's REST routes (v2 and legacy v1), health and readiness, the
//! metrics endpoint, and the CT log's routes (`ctlog`). Handlers, the error map and the
//! middleware live here; `server` builds the HTTP servers around them. Those two are the
//! only modules that know actix-web (`tests/architecture.rs`).

pub(crate) mod ctlog;
pub(crate) mod error;
pub(crate) mod explorer;
pub mod json;
pub(crate) mod middleware;

use crate::authority::{Authority, IssueError, Issued, KeyProof, SigningRequest};
use crate::metrics;
use crate::model::pem::decode_proto_bytes;
use crate::ratelimit::RateLimiter;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use error::ApiError;
use std::sync::Arc;
use std::time::Duration;

/// The rejection reasons the API itself reports (beside the authority's).
pub(crate) const API_REJECTIONS: &[&str] = &["rate_limited_client", "issuance_timeout"];

/// Fulcio's request size cap (4 MiB).
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Why brevis cannot issue right now (`/readyz` answers 503; the cause goes to the log).
#[derive(Debug, thiserror::Error, Clone)]
pub(crate) enum NotReady {
    #[error("shutting down")]
    ShuttingDown,
    #[error("the CA cannot issue")]
    Ca(#[source] Arc<crate::ca::CaError>),
    #[error("the embedded CT log")]
    Log(#[source] crate::ct::log::Unhealthy),
    #[error("the remote CT log")]
    RemoteLog(#[source] Arc<crate::ct::client::ProbeError>),
    #[error("the remote CT log has not been probed yet")]
    NotProbed,
}

/// What the handlers share.
pub(crate) struct AppState {
    pub authority: Arc<Authority>,
    /// Readiness checks beyond "the process runs" (CT log, signer, config).
    pub readiness: Arc<dyn Fn() -> Result<(), NotReady> + Send + Sync>,
    /// The last readiness outcome (its cause as text), so a change is logged once.
    pub last_readiness: std::sync::Mutex<Option<String>>,
    /// Protection of the signing endpoints.
    pub limits: Limits,
}

/// Per-client limits on the signing endpoints.
pub(crate) struct Limits {
    /// Token bucket per client address (off when `None`).
    pub per_client: Option<RateLimiter>,
    /// Header carrying the client address when a trusted proxy sets it (for example
    /// `X-Real-IP`); the TCP peer address otherwise.
    pub client_ip_header: Option<header::HeaderName>,
    /// Time allowed to receive a request body once the headers arrived.
    pub body_timeout: Duration,
    /// Time allowed for the issuance itself (the request is dropped after it: nothing is
    /// returned, the identity's budget is refunded).
    pub issuance_timeout: Duration,
    /// IPv6 clients share a bucket per network of this prefix length (64: one /64, what
    /// a single subscriber usually gets), so rotating through addresses gains nothing.
    pub ipv6_prefix: u8,
}

impl Limits {
    fn client_address(&self, req: &HttpRequest) -> String {
        let header = self
            .client_ip_header
            .as_ref()
            .and_then(|h| req.headers().get_all(h).last())
            .and_then(|v| v.to_str().ok());
        self.client_key_from(header, req.peer_addr().map(|a| a.ip()))
    }

    /// The rate-limit key of a client: the last address in the trusted proxy's header
    /// when one is configured and present, else the TCP peer.
    pub(crate) fn client_key_from(
        &self,
        header: Option<&str>,
        peer: Option<std::net::IpAddr>,
    ) -> String {
        // A list (X-Forwarded-For): the proxy appends the address it saw last, possibly on
        // a header line of its own after the client's.
        if let Some(last) =
            header.and_then(|v| v.rsplit(',').map(str::trim).find(|s| !s.is_empty()))
        {
            return match last.parse::<std::net::IpAddr>() {
                Ok(ip) => client_key(ip, self.ipv6_prefix),
                // Not an address (a misconfigured proxy): keyed as sent, bounded.
                Err(_) => last.chars().take(64).collect(),
            };
        }
        peer.map(|ip| client_key(ip, self.ipv6_prefix))
            .unwrap_or_else(|| "unknown".into())
    }

    /// Takes a token from the client's bucket, or refuses with 429.
    fn admit(&self, req: &HttpRequest) -> Result<(), ApiError> {
        self.admit_key(&self.client_address(req))
    }

    /// [`Limits::admit`] for a client already keyed (gRPC).
    pub(crate) fn admit_key(&self, client: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_client else {
            return Ok(());
        };
        limiter.check(client).map_err(|wait| {
            metrics::REJECTIONS
                .with_label_values(&["rate_limited_client"])
                .inc();
            ApiError::too_many_requests(
                format!(
                    "too many requests from this client address; retry after {} seconds",
                    crate::ratelimit::retry_after_secs(wait)
                ),
                wait,
            )
        })
    }
}

/// The rate-limit key of a client address: an IPv4 address (or an IPv4-mapped IPv6 one)
/// as itself, an IPv6 address as its network of `v6_prefix` bits.
pub(crate) fn client_key(ip: std::net::IpAddr, v6_prefix: u8) -> String {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let bits = u32::from(v6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                let net = std::net::Ipv6Addr::from(u128::from(v6) & mask);
                format!("{net}/{bits}")
            }
        },
    }
}

/// Registers every route of the main listener: Fulcio's, each with the one method it
/// answers (any other method gets Fulcio's 501), and 404 for everything else.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    let routes: [(&str, actix_web::Route); 7] = [
        ("/api/v2/signingCert", web::post().to(signing_cert_v2)),
        ("/api/v2/trustBundle", web::get().to(trust_bundle)),
        ("/api/v2/configuration", web::get().to(configuration)),
        ("/api/v1/signingCert", web::post().to(signing_cert_v1)),
        ("/api/v1/rootCert", web::get().to(root_cert)),
        ("/healthz", web::get().to(healthz)),
        ("/readyz", web::get().to(readyz)),
    ];
    for (path, route) in routes {
        cfg.service(
            web::resource(path)
                .route(route)
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(ApiError::method_not_allowed())
                })),
        );
    }
    cfg.default_service(web::to(|| async {
        Err::<HttpResponse, _>(ApiError::not_found())
    }));
}

pub(crate) use middleware::observe;

/// The metrics listener's one route.
pub(crate) fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/metrics",
        web::get().to(|| async {
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(metrics::render())
        }),
    );
}

async fn read_body(payload: web::Payload, limits: &Limits) -> Result<web::Bytes, ApiError> {
    let read = payload.to_bytes_limited(MAX_BODY_BYTES);
    match tokio::time::timeout(limits.body_timeout, read).await {
        Err(_) => Err(ApiError::request_timeout(format!(
            "the request body did not arrive within {} seconds",
            limits.body_timeout.as_secs_f64()
        ))),
        Ok(Ok(Ok(b))) => Ok(b),
        Ok(Ok(Err(_))) => Err(ApiError::bad_request("could not read the request body")),
        Ok(Err(_)) => Err(ApiError::bad_request(format!(
            "request body exceeds the limit of {MAX_BODY_BYTES} bytes"
        ))),
    }
}

/// The bearer token as the grpc-gateway derives it: the `Authorization` header with the
/// first occurrence of `Bearer ` removed.
fn header_token(req: &HttpRequest) -> String {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.replacen("Bearer ", "", 1))
        .unwrap_or_default()
}

fn decode_json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// Admits the client (per-client rate limit), reads the body within its limits and
/// decodes it.
async fn admitted_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<T, ApiError> {
    state.limits.admit(req)?;
    let body = read_body(payload, &state.limits).await?;
    decode_json(&body)
}

fn bytes_field(value: &str, field: &str) -> Result<Vec<u8>, ApiError> {
    decode_proto_bytes(value).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid request body: field {field} is not valid base64"
        ))
    })
}

async fn issue(
    state: &AppState,
    req: &HttpRequest,
    request: SigningRequest,
) -> Result<Issued, ApiError> {
    let client = req
        .connection_info()
        .peer_addr()
        .unwrap_or("unknown")
        .to_string();
    issue_for_client(state, &client, request).await
}

/// One issuance as every protocol runs it (REST and gRPC): the deadline, the authority,
/// the error map, the rejection metric and the audit record. `client` names the peer
/// in the audit record; the caller admitted it (per-client rate limit) already.
pub(crate) async fn issue_for_client(
    state: &AppState,
    client: &str,
    request: SigningRequest,
) -> Result<Issued, ApiError> {
    let timeout = state.limits.issuance_timeout;
    let outcome = match tokio::time::timeout(timeout, state.authority.issue(request)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            metrics::REJECTIONS
                .with_label_values(&["issuance_timeout"])
                .inc();
            tracing::error!(
                timeout_s = timeout.as_secs_f64(),
                "signing request timed out; no certificate was returned"
            );
            return Err(ApiError::deadline_exceeded(format!(
                "the certificate could not be issued within {} seconds; retry later",
                timeout.as_secs_f64()
            )));
        }
    };
    match outcome {
        Ok(issued) => {
            let sct = issued.sct.as_ref();
            tracing::info!(
                target: "audit",
                serial = %issued.identity.serial_hex,
                identity = %issued.identity.san,
                issuer = %issued.identity.issuer_label,
                issuer_type = %issued.identity.issuer_type,
                key_type = %issued.identity.key,
                ct_log_index = sct.and_then(|s| crate::model::sct::parse_leaf_index(&s.extensions)),
                sct_timestamp = sct.map(|s| s.timestamp),
                client = %client,
                "certificate issued"
            );
            Ok(issued)
        }
        Err(e) => {
            let api = ApiError::from(&e);
            metrics::REJECTIONS.with_label_values(&[e.reason()]).inc();
            if let IssueError::Policy {
                refusal,
                identity,
                issuer,
            } = &e
            {
                tracing::info!(
                    target: "audit",
                    identity = %identity,
                    issuer = %issuer,
                    policy = refusal.policy().unwrap_or("(default: deny)"),
                    refusal = %refusal,
                    client = %client,
                    "certificate refused by issuance policy"
                );
            }
            if api.status.is_server_error() {
                tracing::error!(reason = e.reason(), error = %e, "signing request failed");
            } else {
                tracing::info!(reason = e.reason(), error = %e, "signing request refused");
            }
            Err(api)
        }
    }
}

async fn signing_cert_v2(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let parsed: json::CreateSigningCertificateRequest =
        admitted_json(&req, payload, &state).await?;
    if parsed.public_key_request.is_some() && parsed.certificate_signing_request.is_some() {
        return Err(ApiError::bad_request(
            "invalid request body: publicKeyRequest and certificateSigningRequest are mutually exclusive (oneof key)",
        ));
    }
    let token = parsed
        .credentials
        .and_then(|c| c.oidc_identity_token)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| header_token(&req));
    let key = match (
        parsed.public_key_request,
        parsed.certificate_signing_request,
    ) {
        (_, Some(csr)) => KeyProof::Csr {
            pem: bytes_field(&csr, "certificateSigningRequest")?,
        },
        (Some(pk), None) => KeyProof::PublicKey {
            content: pk
                .public_key
                .and_then(|k| k.content)
                .unwrap_or_default()
                .into_bytes(),
            proof: bytes_field(
                pk.proof_of_possession.as_deref().unwrap_or(""),
                "proofOfPossession",
            )?,
        },
        (None, None) => KeyProof::PublicKey {
            content: Vec::new(),
            proof: Vec::new(),
        },
    };
    let issued = issue(&state, &req, SigningRequest { token, key }).await?;
    let chain = json::CertificateChain {
        certificates: issued.chain_pem,
    };
    let body = match issued.sct {
        Some(_) => json::SigningCertificate::Embedded { chain },
        None => json::SigningCertificate::Detached {
            chain,
            signed_certificate_timestamp: String::new(),
        },
    };
    metrics::NEW_CERTS.inc();
    Ok(HttpResponse::Ok().json(body))
}

async fn signing_cert_v1(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let parsed: json::LegacyRequest = admitted_json(&req, payload, &state).await?;
    let key = match parsed.certificate_signing_request.filter(|c| !c.is_empty()) {
        Some(csr) => KeyProof::Csr {
            pem: bytes_field(&csr, "certificateSigningRequest")?,
        },
        None => {
            let content = match parsed.public_key.and_then(|k| k.content) {
                Some(c) => bytes_field(&c, "publicKey.content")?,
                None => Vec::new(),
            };
            KeyProof::PublicKey {
                content,
                proof: bytes_field(
                    parsed.signed_email_address.as_deref().unwrap_or(""),
                    "signedEmailAddress",
                )?,
            }
        }
    };
    let token = header_token(&req);
    let issued = issue(&state, &req, SigningRequest { token, key }).await?;
    let text = issued.chain_pem.concat();
    metrics::NEW_CERTS.inc();
    // Embedded SCTs travel in the certificate; no SCT header, as Fulcio in embedded mode.
    Ok(HttpResponse::Created()
        .content_type("application/pem-certificate-chain")
        .body(text.trim_end().to_string()))
}

async fn trust_bundle(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // The issuing chain first, then a staged one and one being retired (rotation).
    let chains = state
        .authority
        .published_cas()
        .iter()
        .map(|ca| json::CertificateChain {
            certificates: ca.chain_pem().to_vec(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json::TrustBundle { chains }))
}

async fn root_cert(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ca = state.authority.ca();
    let text: String = ca.chain_pem().iter().map(|p| format!("{p}\n")).collect();
    Ok(HttpResponse::Ok()
        .content_type("application/pem-certificate-chain")
        .body(text.trim().to_string()))
}

/// The issuers `GetConfiguration` lists (REST and gRPC): exact issuers, then patterns.
pub(crate) fn configured_issuers(state: &AppState) -> Vec<json::ConfiguredIssuer> {
    let identity = state.authority.identity();
    let issuer = |c: &crate::config::IssuerConfig, wildcard: bool| json::ConfiguredIssuer {
        issuer_url: (!wildcard).then(|| c.issuer_url.clone()),
        wildcard_issuer_url: wildcard.then(|| c.key.clone()),
        audience: c.client_id.clone(),
        challenge_claim: c.effective_challenge_claim().to_string(),
        spiffe_trust_domain: c.spiffe_trust_domain.clone().unwrap_or_default(),
        issuer_type: c.kind.as_str().to_string(),
        subject_domain: c.subject_domain.clone().unwrap_or_default(),
        skip_email_verification: c.skip_email_verification,
    };
    identity
        .config
        .issuers
        .iter()
        .map(|c| issuer(c, false))
        .chain(identity.config.meta_issuers.iter().map(|c| issuer(c, true)))
        .collect()
}

async fn configuration(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(json::Configuration {
        issuers: configured_issuers(&state),
    }))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "SERVING"}))
}

/// `/readyz`: 200 while brevis can issue, 503 with a fixed body otherwise. The cause is
/// internal (it may name files, hosts or storage errors); it goes to the log, once per
/// change, not to whoever probes.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // The checks may wait for a key in an HSM or a KMS: never on a request worker.
    let check = state.readiness.clone();
    let result = web::block(move || check())
        .await
        .unwrap_or(Err(NotReady::ShuttingDown));
    {
        let cause = result
            .as_ref()
            .err()
            .map(|e| crate::errors::Chain(e).to_string());
        let mut last = state
            .last_readiness
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *last != cause {
            match &cause {
                None => tracing::info!("ready"),
                Some(reason) => tracing::warn!(reason = %reason, "not ready"),
            }
            *last = cause;
        }
    }
    match result {
        Ok(()) => Ok(HttpResponse::Ok().json(serde_json::json!({"status": "SERVING"}))),
        Err(_) => Err(ApiError::unavailable("not ready to issue certificates")),
    }
}

#[cfg(test)]
mod tests {
    use super::client_key;

    #[test]
    fn ipv6_clients_are_keyed_by_their_network() {
        let key = |s: &str, bits| client_key(s.parse().unwrap(), bits);
        assert_eq!(key("192.0.2.7", 64), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7", 64), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(
            key("2001:db8:1:2:aaaa::1", 64),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff", 64),
            "one /64, one bucket"
        );
        assert_ne!(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
        assert_eq!(key("2001:db8:1:2::1", 48), "2001:db8:1::/48");
        assert_eq!(key("2001:db8::1", 128), "2001:db8::1/128");
        assert_eq!(key("2001:db8::1", 0), "::/0");
    }
}
