//! The CT log's HTTP API: RFC 6962 (`/ct/v1/...`) write and read endpoints, and the
//! static-ct-api read side (`/checkpoint`, `/tile/...`, `/issuer/...`) over the same tree.

use crate::ct::log::{Kind, Log, LogError};
use crate::ct::tiles;
use crate::metrics;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest accepted `add-chain` / `add-pre-chain` body.
pub(crate) const MAX_SUBMISSION_BYTES: usize = 512 * 1024;

pub(crate) struct CtLogState {
    pub log: Arc<Log>,
    /// The URL path prefix the routes are registered under ("" or "/name").
    pub prefix: String,
}

/// Registers the log's routes under `prefix` (empty or `/name`).
pub(crate) fn configure(prefix: &str) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg: &mut web::ServiceConfig| {
        let p = |path: &str| format!("{prefix}{path}");
        cfg.route(&p("/ct/v1/add-chain"), web::post().to(add_chain))
            .route(&p("/ct/v1/add-pre-chain"), web::post().to(add_pre_chain))
            .route(&p("/ct/v1/get-roots"), web::get().to(get_roots))
            .route(&p("/ct/v1/get-sth"), web::get().to(get_sth))
            .route(
                &p("/ct/v1/get-sth-consistency"),
                web::get().to(get_sth_consistency),
            )
            .route(
                &p("/ct/v1/get-proof-by-hash"),
                web::get().to(get_proof_by_hash),
            )
            .route(&p("/ct/v1/get-entries"), web::get().to(get_entries))
            .route(
                &p("/ct/v1/get-entry-and-proof"),
                web::get().to(get_entry_and_proof),
            )
            .route(&p("/checkpoint"), web::get().to(checkpoint))
            .route(&p("/tile/data/{rest:.*}"), web::get().to(data_tile))
            .route(&p("/tile/{level}/{rest:.*}"), web::get().to(hash_tile))
            .route(&p("/issuer/{fingerprint}"), web::get().to(issuer))
            .route(&p("/log.v3.json"), web::get().to(log_info));
        super::explorer::configure(cfg, prefix);
    }
}

/// Counts every request of the log's listener by route pattern (`unmatched` for paths no
/// route knows), method and status: all three from closed sets, whatever the client sends
/// (a matched request carries the pattern it was registered with, never the raw path).
pub(crate) async fn observe(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let method = super::middleware::method_label(req.method());
    let state = req.app_data::<web::Data<CtLogState>>().cloned();
    let route = match (req.match_pattern(), &state) {
        (Some(pattern), Some(state)) => pattern
            .strip_prefix(state.prefix.as_str())
            .unwrap_or(&pattern)
            .to_string(),
        _ => "unmatched".to_string(),
    };
    let res = next.call(req).await?;
    metrics::CTLOG_HTTP_REQUESTS
        .with_label_values(&[route.as_str(), method, res.status().as_str()])
        .inc();
    Ok(res)
}

/// The one map from a log error to HTTP: client mistakes get their reason, server-side
/// failures a fixed text (the cause goes to the log).
fn error(e: LogError) -> HttpResponse {
    let status = match &e {
        LogError::Rejected(_) | LogError::Query(_) => StatusCode::BAD_REQUEST,
        LogError::NotFound(_) => StatusCode::NOT_FOUND,
        LogError::Frozen(_) => StatusCode::FORBIDDEN,
        e if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text_error(status, &e)
}

fn text_error(status: StatusCode, e: &dyn std::error::Error) -> HttpResponse {
    let mut r = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.insert_header(("Retry-After", "1"));
    }
    let body = if status.is_server_error() {
        tracing::error!(error = %crate::errors::Chain(e), "CT log request failed");
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        e.to_string()
    };
    r.content_type("text/plain; charset=utf-8").body(body)
}

/// A request the log cannot even read (body, JSON, parameters).
#[derive(Debug, thiserror::Error)]
enum BadRequest {
    #[error("could not read the request body")]
    Unreadable,
    #[error("request body exceeds {MAX_SUBMISSION_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    Body(#[from] ChainRequestError),
    #[error("missing query parameter {0}")]
    Missing(&'static str),
    #[error("query parameter {0} must be a non-negative integer")]
    NotANumber(&'static str),
    #[error("hash must be a base64 SHA-256 leaf hash")]
    Hash,
}

fn bad(e: BadRequest) -> HttpResponse {
    text_error(StatusCode::BAD_REQUEST, &e)
}

/// Why an `add-chain` body does not parse.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChainRequestError {
    #[error("invalid JSON body")]
    Json(#[source] serde_json::Error),
    #[error("chain[{0}] is not valid base64")]
    Base64(usize),
}

#[derive(Deserialize)]
struct ChainRequest {
    chain: Vec<String>,
}

/// An `add-chain` / `add-pre-chain` body: `{"chain": [base64 DER, ...]}`.
pub(crate) fn parse_chain_request(body: &[u8]) -> Result<Vec<Vec<u8>>, ChainRequestError> {
    let req: ChainRequest = serde_json::from_slice(body).map_err(ChainRequestError::Json)?;
    req.chain
        .iter()
        .enumerate()
        .map(|(i, c)| STANDARD.decode(c).map_err(|_| ChainRequestError::Base64(i)))
        .collect()
}

/// A tile level as the path spells it: canonical decimal only ("01" or "+1" name no
/// tile, like non-canonical indexes and widths).
pub(crate) fn parse_tile_level(text: &str) -> Option<u8> {
    text.parse::<u8>().ok().filter(|l| l.to_string() == text)
}

async fn submit(state: web::Data<CtLogState>, payload: web::Payload, kind: Kind) -> HttpResponse {
    let body = match payload.to_bytes_limited(MAX_SUBMISSION_BYTES).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return bad(BadRequest::Unreadable),
        Err(_) => return bad(BadRequest::TooLarge),
    };
    let chain = match parse_chain_request(&body) {
        Ok(c) => c,
        Err(e) => {
            metrics::CTLOG_SUBMISSIONS
                .with_label_values(&[kind.label(), "rejected"])
                .inc();
            return bad(e.into());
        }
    };
    match state.log.submit(&chain, kind).await {
        Ok(sct) => HttpResponse::Ok().json(sct.to_json()),
        Err(e) => {
            if matches!(e, LogError::Rejected(_)) {
                metrics::CTLOG_SUBMISSIONS
                    .with_label_values(&[kind.label(), "rejected"])
                    .inc();
            }
            error(e)
        }
    }
}

async fn add_chain(state: web::Data<CtLogState>, payload: web::Payload) -> HttpResponse {
    submit(state, payload, Kind::X509).await
}

async fn add_pre_chain(state: web::Data<CtLogState>, payload: web::Payload) -> HttpResponse {
    submit(state, payload, Kind::Precert).await
}

async fn get_roots(state: web::Data<CtLogState>) -> HttpResponse {
    let certs: Vec<String> = state
        .log
        .roots()
        .iter()
        .map(|r| STANDARD.encode(&r.der))
        .collect();
    HttpResponse::Ok().json(json!({ "certificates": certs }))
}

async fn get_sth(state: web::Data<CtLogState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-cache"))
        .json(state.log.sth().to_json())
}

type Query = web::Query<HashMap<String, String>>;

fn number(q: &Query, name: &'static str) -> Result<u64, BadRequest> {
    q.get(name)
        .ok_or(BadRequest::Missing(name))?
        .parse::<u64>()
        .map_err(|_| BadRequest::NotANumber(name))
}

fn two(q: &Query, a: &'static str, b: &'static str) -> Result<(u64, u64), BadRequest> {
    Ok((number(q, a)?, number(q, b)?))
}

fn b64_list(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

async fn get_sth_consistency(state: web::Data<CtLogState>, q: Query) -> HttpResponse {
    let (first, second) = match two(&q, "first", "second") {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    match state.log.consistency(first, second).await {
        Ok(p) => HttpResponse::Ok().json(json!({ "consistency": b64_list(&p) })),
        Err(e) => error(e),
    }
}

async fn get_proof_by_hash(state: web::Data<CtLogState>, q: Query) -> HttpResponse {
    let tree_size = match number(&q, "tree_size") {
        Ok(n) => n,
        Err(e) => return bad(e),
    };
    let hash: [u8; 32] = match q
        .get("hash")
        .and_then(|h| STANDARD.decode(h).ok())
        .and_then(|h| h.try_into().ok())
    {
        Some(h) => h,
        None => return bad(BadRequest::Hash),
    };
    match state.log.proof_by_hash(&hash, tree_size).await {
        Ok((index, p)) => {
            HttpResponse::Ok().json(json!({ "leaf_index": index, "audit_path": b64_list(&p) }))
        }
        Err(e) => error(e),
    }
}

async fn get_entries(state: web::Data<CtLogState>, q: Query) -> HttpResponse {
    let (start, end) = match two(&q, "start", "end") {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    match state.log.entries(start, end).await {
        Ok(entries) => {
            let list: Vec<_> = entries
                .iter()
                .map(|e| json!({"leaf_input": STANDARD.encode(&e.leaf_input), "extra_data": STANDARD.encode(&e.extra_data)}))
                .collect();
            HttpResponse::Ok().json(json!({ "entries": list }))
        }
        Err(e) => error(e),
    }
}

async fn get_entry_and_proof(state: web::Data<CtLogState>, q: Query) -> HttpResponse {
    let (index, tree_size) = match two(&q, "leaf_index", "tree_size") {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let proof = match state.log.proof_by_index(index, tree_size).await {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    match state.log.entries(index, index).await {
        Ok(mut e) if !e.is_empty() => {
            let e = e.remove(0);
            HttpResponse::Ok().json(json!({
                "leaf_input": STANDARD.encode(&e.leaf_input),
                "extra_data": STANDARD.encode(&e.extra_data),
                "audit_path": b64_list(&proof),
            }))
        }
        Ok(_) => error(LogError::NotFound("no such entry")),
        Err(e) => error(e),
    }
}

async fn checkpoint(state: web::Data<CtLogState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(state.log.checkpoint())
}

fn tile_response(bytes: Result<Vec<u8>, LogError>, full: bool) -> HttpResponse {
    match bytes {
        Ok(b) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "application/octet-stream"))
            .insert_header((
                CACHE_CONTROL,
                if full {
                    "public, max-age=31536000, immutable"
                } else {
                    "public, max-age=60"
                },
            ))
            .body(b),
        Err(e) => error(e),
    }
}

async fn hash_tile(
    state: web::Data<CtLogState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (level, rest) = path.into_inner();
    let Some(level) = parse_tile_level(&level) else {
        return error(LogError::NotFound("no such tile"));
    };
    let Some((index, width)) = tiles::decode_path(&rest) else {
        return error(LogError::NotFound("malformed tile path"));
    };
    tile_response(
        state.log.tile(level, index, width).await,
        width == tiles::TILE_WIDTH,
    )
}

async fn data_tile(state: web::Data<CtLogState>, path: web::Path<String>) -> HttpResponse {
    let Some((index, width)) = tiles::decode_path(&path.into_inner()) else {
        return error(LogError::NotFound("malformed tile path"));
    };
    tile_response(
        state.log.data_tile(index, width).await,
        width == tiles::TILE_WIDTH,
    )
}

async fn issuer(state: web::Data<CtLogState>, path: web::Path<String>) -> HttpResponse {
    let hex_fp = path.into_inner();
    let fp: [u8; 32] = match hex::decode(&hex_fp).ok().and_then(|h| h.try_into().ok()) {
        Some(f) if hex_fp.chars().all(|c| !c.is_ascii_uppercase()) => f,
        _ => {
            return error(LogError::NotFound(
                "issuer fingerprints are 64 lowercase hex digits",
            ));
        }
    };
    match state.log.issuer(&fp).await {
        Ok(der) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "application/pkix-cert"))
            .insert_header((CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(der),
        Err(e) => error(e),
    }
}

/// Log metadata in the shape of a v3 log list entry, for monitors to configure themselves.
async fn log_info(state: web::Data<CtLogState>) -> HttpResponse {
    let log = &state.log;
    HttpResponse::Ok().json(json!({
        "description": format!("brevis embedded CT log {}", log.origin()),
        "log_id": log.public_key().log_id_base64(),
        "key": STANDARD.encode(log.public_key().spki_der()),
        "mmd": 0,
        "origin": log.origin(),
    }))
}
