//! The log explorer: HTML pages at `/ui/` (search, a certificate's page, log health) and
//! the JSON API behind them at `/ui/api/...`, on the CT log's listener. Pages are rendered
//! here, so search results work without JavaScript; the one script (`/ui/app.js`, embedded
//! in the binary) verifies a certificate's SCT, inclusion proof and tree head signature in
//! the browser, with WebCrypto. Everything from a certificate is HTML-escaped, and a strict
//! Content-Security-Policy allows only the log's own script and stylesheet.

use super::ctlog::CtLogState;
use crate::ct::facts::{self, CertFacts};
use crate::ct::log::LogError;
use crate::ct::log::store::search::{IndexedEntry, SearchKind, SearchPage};
use crate::ct::{entry, merkle};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const APP_JS: &str = include_str!("explorer.js");
const STYLE_CSS: &str = include_str!("explorer.css");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Most results per page.
pub(crate) const MAX_LIMIT: usize = 100;
/// Results per page when `limit` is not given.
const DEFAULT_LIMIT: usize = 20;
/// Longest accepted query text, in bytes.
pub(crate) const MAX_QUERY_BYTES: usize = 512;

/// Registers the explorer's routes under `prefix`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    let p = |path: &str| format!("{prefix}{path}");
    cfg.route(&p("/ui"), web::get().to(redirect_to_ui))
        .route(&p("/ui/"), web::get().to(search_page))
        .route(&p("/ui/entry/{index}"), web::get().to(entry_page))
        .route(&p("/ui/app.js"), web::get().to(app_js))
        .route(&p("/ui/style.css"), web::get().to(style_css))
        .route(&p("/ui/api/search"), web::get().to(search_api))
        .route(&p("/ui/api/entry/{index}"), web::get().to(entry_api))
        .route(&p("/ui/api/stats"), web::get().to(stats_api));
}

/// A search request that cannot be answered as asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SearchError {
    #[error("q is required")]
    MissingQuery,
    #[error("q is longer than {MAX_QUERY_BYTES} bytes")]
    QueryTooLong,
    #[error("by must be identity, repository or serial")]
    By,
    #[error("limit must be a whole number from 1 to {MAX_LIMIT}")]
    Limit,
    #[error("cursor is not one this API returned")]
    Cursor,
    #[error("prefix must be true or false")]
    Prefix,
    #[error("unknown parameter {0} (expected q, by, prefix, limit, cursor)")]
    Unknown(String),
    #[error("this log keeps no search index")]
    NoIndex,
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Search {
    kind: SearchKind,
    text: String,
    prefix: bool,
    limit: usize,
    cursor: Option<String>,
}

fn kind_name(k: SearchKind) -> &'static str {
    match k {
        SearchKind::Identity => "identity",
        SearchKind::Repository => "repository",
        SearchKind::Serial => "serial",
    }
}

/// Reads `q`, `by`, `prefix`, `limit`, `cursor`. A `q` ending in `*` is a prefix search.
pub(crate) fn parse_search(q: &HashMap<String, String>) -> Result<Search, SearchError> {
    if let Some(k) = q
        .keys()
        .find(|k| !["q", "by", "prefix", "limit", "cursor"].contains(&k.as_str()))
    {
        return Err(SearchError::Unknown(k.chars().take(40).collect()));
    }
    let raw = q.get("q").map(|s| s.trim()).unwrap_or("");
    if raw.len() > MAX_QUERY_BYTES {
        return Err(SearchError::QueryTooLong);
    }
    let kind = match q.get("by").map(String::as_str) {
        None | Some("") | Some("identity") => SearchKind::Identity,
        Some("repository") => SearchKind::Repository,
        Some("serial") => SearchKind::Serial,
        Some(_) => return Err(SearchError::By),
    };
    let mut prefix = match q.get("prefix").map(String::as_str) {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("on") => true,
        Some(_) => return Err(SearchError::Prefix),
    };
    let mut text = raw.to_string();
    if let Some(t) = text.strip_suffix('*') {
        text = t.to_string();
        prefix = true;
    }
    if kind == SearchKind::Serial {
        text = text.replace(':', "").to_ascii_lowercase();
    }
    if text.is_empty() {
        return Err(SearchError::MissingQuery);
    }
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or(SearchError::Limit)?,
    };
    let cursor = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let ok = if prefix {
                c.split_once(':')
                    .is_some_and(|(i, k)| i.parse::<u64>().is_ok() && k.starts_with(&text))
            } else {
                c.parse::<u64>().is_ok()
            };
            if !ok || c.len() > MAX_QUERY_BYTES + 24 {
                return Err(SearchError::Cursor);
            }
            Some(c.clone())
        }
    };
    Ok(Search {
        kind,
        text,
        prefix,
        limit,
        cursor,
    })
}

fn run_search(state: &CtLogState, s: &Search) -> Result<SearchPage, ExplorerError> {
    let index = state
        .log
        .search_index()
        .ok_or(ExplorerError::Search(SearchError::NoIndex))?;
    index
        .search(s.kind, &s.text, s.prefix, s.limit, s.cursor.as_deref())
        .map_err(|e| ExplorerError::Log(LogError::Storage(e)))
}

/// Why an explorer request failed.
#[derive(Debug, thiserror::Error)]
enum ExplorerError {
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("the entry index must be a whole number")]
    BadIndex,
    #[error(transparent)]
    Log(#[from] LogError),
}

impl ExplorerError {
    fn status(&self) -> StatusCode {
        match self {
            ExplorerError::Search(SearchError::NoIndex) => StatusCode::NOT_FOUND,
            ExplorerError::Search(_) | ExplorerError::BadIndex => StatusCode::BAD_REQUEST,
            ExplorerError::Log(LogError::NotFound(_)) => StatusCode::NOT_FOUND,
            ExplorerError::Log(LogError::Query(_)) => StatusCode::BAD_REQUEST,
            ExplorerError::Log(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            ExplorerError::Log(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the user sees: the reason for 4xx, fixed text for 5xx (the cause is logged).
    fn message(&self) -> String {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %crate::errors::Chain(self), "explorer request failed");
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            self.to_string()
        }
    }

    fn json(&self) -> HttpResponse {
        let status = self.status();
        HttpResponse::build(status)
            .json(json!({"error": self.message(), "status": status.as_u16()}))
    }

    fn html(&self, prefix: &str, origin: &str) -> HttpResponse {
        let status = self.status();
        let body = format!(
            "<section class=\"error\"><h1>{}</h1><p>{}</p><p><a href=\"{}/ui/\">Back to search</a></p></section>",
            status.as_u16(),
            esc(&self.message()),
            esc(prefix)
        );
        html_response(status, &page(prefix, origin, "Error", &body, false))
    }
}

fn hit_json(prefix: &str, h: &IndexedEntry) -> Value {
    json!({
        "index": h.index,
        "timestamp": h.timestamp,
        "logged_at": rfc3339_ms(h.timestamp),
        "identity": h.identity,
        "issuer": h.issuer,
        "serial": h.serial,
        "precertificate": h.precertificate,
        "url": format!("{prefix}/ui/entry/{}", h.index),
    })
}

async fn search_api(
    state: web::Data<CtLogState>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let result = parse_search(&q)
        .map_err(ExplorerError::from)
        .and_then(|s| run_search(&state, &s).map(|p| (s, p)));
    match result {
        Ok((s, page)) => {
            let indexed = state
                .log
                .search_index()
                .and_then(|i| i.indexed_to().ok())
                .unwrap_or(0);
            HttpResponse::Ok()
                .insert_header((CACHE_CONTROL, "no-cache"))
                .json(json!({
                    "query": {"q": s.text, "by": kind_name(s.kind), "prefix": s.prefix, "limit": s.limit},
                    "results": page.hits.iter().map(|h| hit_json(&state.prefix, h)).collect::<Vec<_>>(),
                    "next_cursor": page.next,
                    "indexed_to": indexed,
                    "tree_size": state.log.sth().tree_size,
                }))
        }
        Err(e) => e.json(),
    }
}

fn parse_index(text: &str) -> Result<u64, ExplorerError> {
    text.parse::<u64>().map_err(|_| ExplorerError::BadIndex)
}

/// Everything the entry page and `/ui/api/entry/N` show.
struct EntryView {
    index: u64,
    leaf_input: Vec<u8>,
    timestamp: u64,
    facts: Result<CertFacts, String>,
    sct_signature: Vec<u8>,
    sct_extensions: Vec<u8>,
    proof: Vec<merkle::Hash>,
    tree_size: u64,
    root: merkle::Hash,
    sth_timestamp: u64,
    sth_signature: Vec<u8>,
    checkpoint: String,
}

async fn entry_view(state: &CtLogState, index: u64) -> Result<EntryView, ExplorerError> {
    let (e, sth, proof) = state.log.entry_with_proof(index).await?;
    let mut leaf_input = vec![0, 0];
    leaf_input.extend_from_slice(&e.timestamped_entry);
    let parsed = entry::parse_leaf_input(&leaf_input);
    let facts = match &parsed {
        Ok(p) => facts::of_entry(p).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    Ok(EntryView {
        index,
        timestamp: e.timestamp,
        facts,
        sct_signature: e.signature.clone(),
        sct_extensions: parsed.map(|p| p.extensions).unwrap_or_default(),
        proof,
        tree_size: sth.tree_size,
        root: sth.root,
        sth_timestamp: sth.timestamp,
        sth_signature: sth.signature.to_tls(),
        checkpoint: state.log.checkpoint(),
        leaf_input,
    })
}

fn facts_json(f: &CertFacts) -> Value {
    json!({
        "precertificate": f.precertificate,
        "serial": f.serial,
        "not_before": rfc3339_ms(f.not_before.max(0) as u64 * 1000),
        "not_after": rfc3339_ms(f.not_after.max(0) as u64 * 1000),
        "issuer_dn": f.issuer_dn,
        "sans": f.sans,
        "oidc_issuer": f.oidc_issuer,
        "extensions": f.extensions.iter().map(|(arc, v)| json!({
            "oid": format!("1.3.6.1.4.1.57264.1.{arc}"),
            "name": facts::extension_name(*arc),
            "value": v,
        })).collect::<Vec<_>>(),
    })
}

fn view_json(state: &CtLogState, v: &EntryView) -> Value {
    let key = state.log.public_key();
    json!({
        "index": v.index,
        "timestamp": v.timestamp,
        "logged_at": rfc3339_ms(v.timestamp),
        "leaf_input": STANDARD.encode(&v.leaf_input),
        "leaf_hash": STANDARD.encode(merkle::leaf_hash(&v.leaf_input)),
        "certificate": match &v.facts {
            Ok(f) => facts_json(f),
            Err(e) => json!({"error": e}),
        },
        "sct": {
            "version": 0,
            "log_id": key.log_id_base64(),
            "timestamp": v.timestamp,
            "extensions": STANDARD.encode(&v.sct_extensions),
            "signature": STANDARD.encode(&v.sct_signature),
        },
        "inclusion": {
            "tree_size": v.tree_size,
            "root": STANDARD.encode(v.root),
            "proof": v.proof.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
            "tree_head_timestamp": v.sth_timestamp,
            "tree_head_signature": STANDARD.encode(&v.sth_signature),
            "checkpoint": v.checkpoint,
        },
        "log": {
            "origin": state.log.origin(),
            "log_id": key.log_id_base64(),
            "public_key": STANDARD.encode(key.spki_der()),
        },
    })
}

async fn entry_api(state: web::Data<CtLogState>, path: web::Path<String>) -> HttpResponse {
    let view = match parse_index(&path) {
        Ok(i) => entry_view(&state, i).await,
        Err(e) => Err(e),
    };
    match view {
        Ok(v) => HttpResponse::Ok().json(view_json(&state, &v)),
        Err(e) => e.json(),
    }
}

/// Log health: tree size, checkpoint age, index progress, entries per hour over a day.
struct Stats {
    tree_size: u64,
    checkpoint_ms: u64,
    indexed_to: Option<u64>,
    /// (hour start ms, entries), the last 24 hours, oldest first.
    hourly: Vec<(u64, u64)>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Hourly counts of one log as last read: (log ID, when, entries indexed then, counts).
type HourlyCache = Vec<([u8; 32], Instant, u64, Vec<(u64, u64)>)>;

/// Hourly counts are re-read when the index grew (at most every 2 s) or after 10 s: a day
/// of a busy log is many rows.
static HOURLY: Mutex<HourlyCache> = Mutex::new(Vec::new());

fn stats(state: &CtLogState) -> Result<Stats, ExplorerError> {
    let sth = state.log.sth();
    let now = now_ms();
    let first_hour = (now / 3_600_000).saturating_sub(23) * 3_600_000;
    let index = state.log.search_index();
    let indexed_to = index.and_then(|i| i.indexed_to().ok());
    let mut counts: HashMap<u64, u64> = HashMap::new();
    if let Some(index) = index {
        let id = *state.log.public_key().log_id();
        let indexed = indexed_to.unwrap_or(0);
        let mut cache = HOURLY.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|(k, at, n, _)| {
            let age = at.elapsed();
            *k != id
                || (age < Duration::from_secs(10)
                    && (*n == indexed || age < Duration::from_secs(2)))
        });
        let rows = match cache.iter().find(|(k, ..)| *k == id) {
            Some((.., rows)) => rows.clone(),
            None => {
                let rows = index
                    .hourly(first_hour)
                    .map_err(|e| ExplorerError::Log(LogError::Storage(e)))?;
                cache.push((id, Instant::now(), indexed, rows.clone()));
                rows
            }
        };
        counts.extend(rows);
    }
    Ok(Stats {
        tree_size: sth.tree_size,
        checkpoint_ms: sth.timestamp,
        indexed_to,
        hourly: (0..24)
            .map(|h| {
                let start = first_hour + h * 3_600_000;
                (start, counts.get(&start).copied().unwrap_or(0))
            })
            .collect(),
    })
}

async fn stats_api(state: web::Data<CtLogState>) -> HttpResponse {
    match stats(&state) {
        Ok(s) => HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-cache"))
            .json(json!({
                "tree_size": s.tree_size,
                "checkpoint_timestamp": s.checkpoint_ms,
                "checkpoint_age_seconds": now_ms().saturating_sub(s.checkpoint_ms) / 1000,
                "indexed_to": s.indexed_to,
                "hourly": s.hourly.iter().map(|(h, n)| json!({"hour": rfc3339_ms(*h), "entries": n})).collect::<Vec<_>>(),
            })),
        Err(e) => e.json(),
    }
}

async fn redirect_to_ui(state: web::Data<CtLogState>) -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", format!("{}/ui/", state.prefix)))
        .finish()
}

async fn app_js() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(APP_JS)
}

async fn style_css() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(STYLE_CSS)
}

// ---- HTML ------------------------------------------------------------------------------------

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query parameter value.
fn url_param(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn rfc3339_ms(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn html_response(status: StatusCode, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(body.to_string())
}

fn page(prefix: &str, origin: &str, title: &str, main: &str, script: bool) -> String {
    let p = esc(prefix);
    let script = if script {
        format!("<script src=\"{p}/ui/app.js\" defer></script>")
    } else {
        String::new()
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · brevis CT log</title><link rel=\"stylesheet\" href=\"{p}/ui/style.css\">{script}</head>\
         <body><header><a class=\"brand\" href=\"{p}/ui/\">brevis CT log</a> <span class=\"origin\">{}</span></header>\
         <main>{main}</main></body></html>\n",
        esc(title),
        esc(origin),
    )
}

fn search_form(prefix: &str, s: Option<&Search>, raw_q: &str) -> String {
    let by = s.map_or(SearchKind::Identity, |s| s.kind);
    let opt = |k: SearchKind, label: &str| {
        format!(
            "<option value=\"{}\"{}>{label}</option>",
            kind_name(k),
            if k == by { " selected" } else { "" }
        )
    };
    format!(
        "<form class=\"search\" method=\"get\" action=\"{}/ui/\" role=\"search\">\
         <input type=\"search\" name=\"q\" id=\"q\" value=\"{}\" placeholder=\"alice@example.com, https://github.com/acme/app, or a serial\" aria-label=\"Search\" maxlength=\"{MAX_QUERY_BYTES}\">\
         <select name=\"by\" id=\"by\" aria-label=\"Search by\">{}{}{}</select>\
         <label><input type=\"checkbox\" name=\"prefix\" value=\"true\"{}> prefix</label>\
         <button type=\"submit\">Search</button></form>",
        esc(prefix),
        esc(raw_q),
        opt(SearchKind::Identity, "identity"),
        opt(SearchKind::Repository, "repository"),
        opt(SearchKind::Serial, "serial"),
        if s.is_some_and(|s| s.prefix) {
            " checked"
        } else {
            ""
        },
    )
}

fn results_html(prefix: &str, s: &Search, page: &SearchPage) -> String {
    let mut out = format!(
        "<section class=\"results\"><h2>{} {} <q>{}</q></h2>",
        if s.prefix {
            "Certificates whose"
        } else {
            "Certificates with"
        },
        esc(&format!(
            "{}{}",
            kind_name(s.kind),
            if s.prefix { " starts with" } else { "" }
        )),
        esc(&s.text)
    );
    if page.hits.is_empty() {
        out.push_str("<p class=\"empty\" id=\"no-results\">No certificates found.</p></section>");
        return out;
    }
    out.push_str("<table id=\"results\"><thead><tr><th>Index</th><th>Logged</th><th>Identity</th><th>Issuer</th><th>Serial</th></tr></thead><tbody>");
    for h in &page.hits {
        let _ = write!(
            out,
            "<tr><td><a href=\"{p}/ui/entry/{i}\">{i}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(&rfc3339_ms(h.timestamp)),
            esc(h.identity.as_deref().unwrap_or("(unparsed)")),
            esc(h.issuer.as_deref().unwrap_or("")),
            esc(h.serial.as_deref().unwrap_or("")),
            p = esc(prefix),
            i = h.index,
        );
    }
    out.push_str("</tbody></table>");
    if let Some(next) = &page.next {
        let _ = write!(
            out,
            "<p><a id=\"next-page\" href=\"{}/ui/?q={}&amp;by={}&amp;prefix={}&amp;limit={}&amp;cursor={}\">Next page</a></p>",
            esc(prefix),
            url_param(&s.text),
            kind_name(s.kind),
            s.prefix,
            s.limit,
            url_param(next)
        );
    }
    out.push_str("</section>");
    out
}

fn health_html(s: &Stats) -> String {
    let age = now_ms().saturating_sub(s.checkpoint_ms) / 1000;
    let max = s.hourly.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let (w, h, bar, top) = (480u64, 120u64, 20u64, 18u64);
    let mut svg = format!(
        "<svg id=\"hourly\" role=\"img\" aria-label=\"Entries per hour over the last day\" viewBox=\"0 0 {w} {t}\" width=\"{w}\" height=\"{t}\">\
         <text x=\"0\" y=\"12\">entries per hour (max {max})</text>",
        t = h + top + 18
    );
    for (i, (start, n)) in s.hourly.iter().enumerate() {
        let bh = n * h / max;
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{bh}\"><title>{}: {n} entries</title></rect>",
            i as u64 * bar,
            top + h - bh,
            bar - 2,
            esc(&rfc3339_ms(*start)),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{y}\">-24 h</text><text x=\"{w}\" y=\"{y}\" text-anchor=\"end\">now</text></svg>",
        y = top + h + 14,
    );
    let total: u64 = s.hourly.iter().map(|(_, n)| n).sum();
    format!(
        "<section class=\"health\" id=\"health\"><h2>Log health</h2><dl>\
         <dt>Tree size</dt><dd id=\"tree-size\">{}</dd>\
         <dt>Latest checkpoint</dt><dd id=\"checkpoint-age\">{} ({age} s ago)</dd>\
         <dt>Search index</dt><dd id=\"indexed\">{}</dd>\
         <dt>Entries, last 24 h</dt><dd id=\"entries-day\">{total}</dd></dl>{svg}</section>",
        s.tree_size,
        esc(&rfc3339_ms(s.checkpoint_ms)),
        match s.indexed_to {
            Some(n) => format!("{n} of {} entries indexed", s.tree_size),
            None => "not kept by this log".into(),
        }
    )
}

async fn search_page(
    state: web::Data<CtLogState>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let prefix = &state.prefix;
    let origin = state.log.origin();
    let raw_q = q.get("q").map(String::as_str).unwrap_or("");
    let mut main = String::from("<h1>Search the log</h1>");
    let searched = if raw_q.trim().is_empty() && q.get("cursor").is_none() {
        main.push_str(&search_form(prefix, None, ""));
        None
    } else {
        match parse_search(&q) {
            Ok(s) => {
                main.push_str(&search_form(prefix, Some(&s), raw_q));
                match run_search(&state, &s) {
                    Ok(p) => Some(results_html(prefix, &s, &p)),
                    Err(e) => return e.html(prefix, origin),
                }
            }
            Err(e) => return ExplorerError::from(e).html(prefix, origin),
        }
    };
    if let Some(r) = searched {
        main.push_str(&r);
    }
    match stats(&state) {
        Ok(s) => main.push_str(&health_html(&s)),
        Err(e) => return e.html(prefix, origin),
    }
    html_response(
        StatusCode::OK,
        &page(prefix, origin, "Search", &main, false),
    )
}

fn row(out: &mut String, name: &str, value: &str, id: &str) {
    let _ = write!(
        out,
        "<dt>{}</dt><dd id=\"{}\">{}</dd>",
        esc(name),
        esc(id),
        esc(value)
    );
}

fn entry_html(state: &CtLogState, v: &EntryView) -> String {
    let mut m = format!("<h1>Entry {}</h1>", v.index);
    match &v.facts {
        Ok(f) => {
            m.push_str("<section><h2>Certificate</h2><dl>");
            row(
                &mut m,
                "Type",
                if f.precertificate {
                    "precertificate (the issued certificate carries the SCT)"
                } else {
                    "certificate"
                },
                "type",
            );
            row(&mut m, "Identity", f.identity().unwrap_or(""), "identity");
            row(
                &mut m,
                "OIDC issuer",
                f.oidc_issuer.as_deref().unwrap_or(""),
                "issuer",
            );
            row(&mut m, "Serial", &f.serial, "serial");
            row(
                &mut m,
                "Valid from",
                &rfc3339_ms(f.not_before.max(0) as u64 * 1000),
                "not-before",
            );
            row(
                &mut m,
                "Valid until",
                &rfc3339_ms(f.not_after.max(0) as u64 * 1000),
                "not-after",
            );
            row(&mut m, "Issued by", &f.issuer_dn, "issuer-dn");
            m.push_str("</dl></section><section><h2>Subject alternative names</h2><table id=\"sans\"><thead><tr><th>Type</th><th>Value</th></tr></thead><tbody>");
            for s in &f.sans {
                let _ = write!(
                    m,
                    "<tr><td>{}</td><td>{}</td></tr>",
                    esc(s.kind),
                    esc(&s.value)
                );
            }
            m.push_str("</tbody></table></section><section><h2>Sigstore extensions</h2><table id=\"extensions\"><thead><tr><th>OID</th><th>Name</th><th>Value</th></tr></thead><tbody>");
            for (arc, value) in &f.extensions {
                let _ = write!(
                    m,
                    "<tr><td class=\"mono\">1.3.6.1.4.1.57264.1.{arc}</td><td>{}</td><td>{}</td></tr>",
                    esc(&facts::extension_name(*arc)),
                    esc(value.as_deref().unwrap_or("(not a valid string)"))
                );
            }
            m.push_str("</tbody></table></section>");
        }
        Err(e) => {
            let _ = write!(
                m,
                "<section><h2>Certificate</h2><p id=\"unparsed\">This entry's certificate does not parse: {}</p></section>",
                esc(e)
            );
        }
    }
    let key = state.log.public_key();
    m.push_str("<section><h2>Signed certificate timestamp</h2><dl>");
    row(&mut m, "Log ID", &key.log_id_base64(), "sct-log-id");
    row(
        &mut m,
        "Timestamp",
        &format!("{} ({})", rfc3339_ms(v.timestamp), v.timestamp),
        "sct-timestamp",
    );
    row(
        &mut m,
        "Extensions",
        &hex::encode(&v.sct_extensions),
        "sct-extensions",
    );
    row(
        &mut m,
        "Signature",
        &STANDARD.encode(&v.sct_signature),
        "sct-signature",
    );
    m.push_str("</dl><p class=\"status\" id=\"sct-status\">SCT signature: not checked (the check runs in your browser with JavaScript)</p></section>");
    m.push_str("<section><h2>Inclusion in the log</h2><dl>");
    row(
        &mut m,
        "Leaf hash",
        &STANDARD.encode(merkle::leaf_hash(&v.leaf_input)),
        "leaf-hash",
    );
    row(
        &mut m,
        "Tree size",
        &v.tree_size.to_string(),
        "proof-tree-size",
    );
    row(&mut m, "Root hash", &STANDARD.encode(v.root), "root-hash");
    m.push_str("</dl><ol id=\"proof\">");
    for h in &v.proof {
        let _ = write!(m, "<li class=\"mono\">{}</li>", STANDARD.encode(h));
    }
    let _ = write!(
        m,
        "</ol><p class=\"status\" id=\"proof-status\">Inclusion proof: not checked (the check runs in your browser with JavaScript)</p>\
         <p class=\"status\" id=\"sth-status\">Checkpoint signature: not checked</p><h3>Current checkpoint</h3><pre id=\"checkpoint\">{}</pre></section>",
        esc(&v.checkpoint)
    );
    // The data the script verifies, as JSON in a non-executable block (`<` escaped).
    let data = view_json(state, v).to_string().replace('<', "\\u003c");
    let _ = write!(
        m,
        "<script type=\"application/json\" id=\"entry-data\">{data}</script>\
         <p><a href=\"{}/ui/api/entry/{}\">This entry as JSON</a></p>",
        esc(&state.prefix),
        v.index
    );
    m
}

async fn entry_page(state: web::Data<CtLogState>, path: web::Path<String>) -> HttpResponse {
    let prefix = &state.prefix;
    let origin = state.log.origin();
    let view = match parse_index(&path) {
        Ok(i) => entry_view(&state, i).await,
        Err(e) => Err(e),
    };
    match view {
        Ok(v) => html_response(
            StatusCode::OK,
            &page(
                prefix,
                origin,
                &format!("Entry {}", v.index),
                &entry_html(&state, &v),
                true,
            ),
        ),
        Err(e) => e.html(prefix, origin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn search_parameters() {
        let s = parse_search(&q(&[("q", "alice@example.com")])).unwrap();
        assert_eq!(
            (s.kind, s.prefix, s.limit),
            (SearchKind::Identity, false, DEFAULT_LIMIT)
        );
        let s = parse_search(&q(&[("q", "alice*")])).unwrap();
        assert_eq!((s.text.as_str(), s.prefix), ("alice", true));
        let s = parse_search(&q(&[("q", "AB:cd"), ("by", "serial")])).unwrap();
        assert_eq!(s.text, "abcd");
        for (pairs, e) in [
            (&[("q", "")][..], SearchError::MissingQuery),
            (&[("by", "identity")][..], SearchError::MissingQuery),
            (&[("q", "*")][..], SearchError::MissingQuery),
            (&[("q", "a"), ("by", "name")][..], SearchError::By),
            (&[("q", "a"), ("limit", "0")][..], SearchError::Limit),
            (&[("q", "a"), ("limit", "101")][..], SearchError::Limit),
            (&[("q", "a"), ("limit", "x")][..], SearchError::Limit),
            (&[("q", "a"), ("cursor", "x")][..], SearchError::Cursor),
            (&[("q", "a*"), ("cursor", "12")][..], SearchError::Cursor),
            (&[("q", "a*"), ("cursor", "12:b")][..], SearchError::Cursor),
            (&[("q", "a"), ("prefix", "maybe")][..], SearchError::Prefix),
            (
                &[("q", "a"), ("sort", "x")][..],
                SearchError::Unknown("sort".into()),
            ),
        ] {
            assert_eq!(parse_search(&q(pairs)), Err(e), "{pairs:?}");
        }
        let long = "a".repeat(MAX_QUERY_BYTES + 1);
        assert_eq!(
            parse_search(&q(&[("q", &long)])),
            Err(SearchError::QueryTooLong)
        );
        assert!(parse_search(&q(&[("q", "a*"), ("cursor", "12:abc")])).is_ok());
    }

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(url_param("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
