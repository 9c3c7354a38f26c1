//! `brevis serve`: load and validate everything, then run the listeners. The composition
//! root: the only place that knows how the components are put together.

use crate::api::{self, AppState};
use crate::authority::{Authority, IdentityState};
use crate::ca::{self, CertificateAuthority};
use crate::config::{self, AlgorithmRegistry, IdentityConfig};
use crate::ct::client::{ClientOptions, RemoteLog};
use crate::ct::log::{Log, LogOptions};
use crate::ct::{EmbeddedLog, LogPublicKey, Submitter};
use crate::metrics;
use crate::model::{Clock, SystemClock, pem};
use crate::oidc::VerifierOptions;
use crate::ratelimit::{Rate, RateLimiter};
use crate::reload::{CaSource, Component, IdentitySource, Reloader, TlsSource};
use crate::tls::{self, TlsFiles};
use actix_web::{App, HttpServer, middleware::from_fn, web};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("{0}")]
pub struct StartupError(pub String);

fn fail(msg: impl Into<String>) -> StartupError {
    StartupError(msg.into())
}

/// Which CA backend to run.
#[derive(Debug, Clone)]
pub enum CaChoice {
    /// A chain + key on disk. Without explicit paths, the data directory's CA, created on
    /// first start.
    File {
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        password: Option<String>,
    },
    Ephemeral,
}

/// Where certificates are logged.
#[derive(Debug, Clone)]
pub enum CtChoice {
    /// `--ct-log-url ""`: no CT log, detached responses with an empty SCT (as Fulcio).
    Disabled,
    /// The embedded log (default).
    Embedded(EmbeddedLogOptions),
    /// A remote RFC 6962 log.
    Remote {
        url: String,
        public_key: Option<PathBuf>,
        options: ClientOptions,
    },
}

/// The embedded log's settings.
#[derive(Debug, Clone)]
pub struct EmbeddedLogOptions {
    /// Listener for monitors (0 = any free port).
    pub port: u16,
    /// URL path prefix of the log's API ("" or "/name").
    pub prefix: String,
    pub log: LogOptions,
    /// Extra accepted roots (PEM file), beside the CA's own.
    pub extra_roots: Option<PathBuf>,
}

/// `brevis ctlog serve`: a standalone log.
#[derive(Debug, Clone)]
pub struct CtLogServeOptions {
    pub host: String,
    pub port: u16,
    pub prefix: String,
    pub data_dir: PathBuf,
    pub roots: PathBuf,
    pub log: LogOptions,
    pub metrics_port: Option<u16>,
}

/// Everything `brevis serve` needs, already parsed from the command line.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    pub metrics_port: u16,
    pub data_dir: PathBuf,
    pub config_path: Option<PathBuf>,
    pub ca: CaChoice,
    pub ct: CtChoice,
    pub algorithms: AlgorithmRegistry,
    pub insecure_http_issuers: bool,
    pub oidc: VerifierOptions,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub workers: Option<usize>,
    pub protection: Protection,
    pub reload: ReloadOptions,
    /// TLS on the API listener.
    pub tls: Option<TlsFiles>,
    /// Time in-flight requests get to finish after SIGTERM.
    pub shutdown_timeout: Duration,
}

/// Rate limits, timeouts and connection limits of the API listener.
#[derive(Debug, Clone)]
pub struct Protection {
    pub per_client: Option<Rate>,
    pub per_identity: Option<Rate>,
    /// Most client addresses / identities tracked by each limiter.
    pub max_tracked: usize,
    pub client_ip_header: Option<String>,
    pub body_timeout: Duration,
    /// Longest an issuance may take once the body arrived.
    pub issuance_timeout: Duration,
    /// Prefix length by which IPv6 clients share a rate-limit bucket.
    pub ipv6_prefix: u8,
    /// Concurrent connections per worker.
    pub max_connections: Option<usize>,
}

impl Default for Protection {
    fn default() -> Protection {
        Protection {
            per_client: None,
            per_identity: None,
            max_tracked: 100_000,
            client_ip_header: None,
            body_timeout: Duration::from_secs(30),
            issuance_timeout: Duration::from_secs(60),
            ipv6_prefix: 64,
            max_connections: None,
        }
    }
}

/// What reloads when files change.
#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// How often watched files are checked; zero turns watching off (SIGHUP still works).
    pub watch_interval: Duration,
    pub config_watch: bool,
    pub fileca_watch: bool,
}

/// Loads the identity configuration: the file if one is named, else Fulcio's built-in set.
pub fn load_identity_config(
    path: Option<&Path>,
    insecure_http_issuers: bool,
) -> Result<IdentityConfig, StartupError> {
    let (text, source) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| fail(format!("cannot read identity config {}: {e}", p.display())))?,
            p.display().to_string(),
        ),
        None => (
            config::BUILTIN_IDENTITY_CONFIG.to_string(),
            "built-in".to_string(),
        ),
    };
    let cfg =
        IdentityConfig::parse(&text).map_err(|e| fail(format!("identity config {source}: {e}")))?;
    check_issuer_schemes(&cfg, insecure_http_issuers)
        .map_err(|e| fail(format!("identity config {source}: {e}")))?;
    for w in &cfg.warnings {
        tracing::warn!("identity config {source}: {w}");
    }
    Ok(cfg)
}

/// brevis policy on top of Fulcio's validation: issuers are contacted over https only,
/// unless `--insecure-http-issuers` is given (local testing).
pub fn check_issuer_schemes(cfg: &IdentityConfig, allow_http: bool) -> Result<(), String> {
    for (kind, list) in [
        ("oidc-issuers", &cfg.issuers),
        ("meta-issuers", &cfg.meta_issuers),
    ] {
        for i in list.iter() {
            let url = &i.key;
            if url.starts_with("https://") || (allow_http && url.starts_with("http://")) {
                continue;
            }
            return Err(format!(
                "{kind}.{url:?}: issuer URL must start with https://{}",
                if allow_http {
                    " or http://"
                } else {
                    " (pass --insecure-http-issuers to allow http:// for local testing)"
                }
            ));
        }
    }
    Ok(())
}

/// A loaded CA, its description, and the (chain, key) files it came from, if any.
type LoadedCa = (CertificateAuthority, String, Option<(PathBuf, PathBuf)>);

/// Loads or creates the CA, and says which files it came from (for reloading).
pub fn load_ca(
    choice: &CaChoice,
    data_dir: &Path,
    now: SystemTime,
) -> Result<LoadedCa, StartupError> {
    match choice {
        CaChoice::Ephemeral => {
            let ca = CertificateAuthority::ephemeral(now)
                .map_err(|e| fail(format!("ephemeral CA: {e}")))?;
            Ok((
                ca,
                "ephemeralca (in memory; a new root at every start)".into(),
                None,
            ))
        }
        CaChoice::File {
            cert,
            key,
            password,
        } => {
            let defaults = ca::DataDirFiles::new(data_dir);
            let (cert_path, key_path) = match (cert, key) {
                (Some(c), Some(k)) => (c.clone(), k.clone()),
                (None, None) => {
                    if !defaults.chain.exists() && !defaults.key.exists() {
                        let written = ca::write_pair(
                            &defaults,
                            &ca::create::PairSpec::default(),
                            password.as_deref(),
                            now,
                        )
                        .map_err(|e| {
                            fail(format!("creating the CA in {}: {e}", data_dir.display()))
                        })?;
                        tracing::info!(chain = %written.chain.display(), "created a new root and intermediate CA");
                        tracing::warn!(
                            root_key = %written.root_key.display(),
                            "the new root's private key was written outside the data directory; brevis never needs it to run: move it offline"
                        );
                        println!(
                            "  root key written to {} (outside the data directory): brevis never needs it to run; move it offline",
                            written.root_key.display()
                        );
                    }
                    let legacy = ca::DataDirFiles::legacy_root_key(data_dir);
                    if legacy.exists() {
                        tracing::warn!(
                            root_key = %legacy.display(),
                            "the root's private key is inside the serving data directory; brevis never needs it: move it offline"
                        );
                    }
                    (defaults.chain.clone(), defaults.key.clone())
                }
                _ => {
                    return Err(fail(
                        "--fileca-cert and --fileca-key must be given together",
                    ));
                }
            };
            let ca =
                CertificateAuthority::from_files(&cert_path, &key_path, password.as_deref(), now)
                    .map_err(|e| fail(format!("fileca {}: {e}", cert_path.display())))?;
            Ok((
                ca,
                format!("fileca, chain {}", cert_path.display()),
                Some((cert_path, key_path)),
            ))
        }
    }
}

fn bind(host: &str, port: u16) -> Result<TcpListener, StartupError> {
    TcpListener::bind((host, port))
        .map_err(|e| fail(format!("cannot listen on {host}:{port}: {e}")))
}

fn display_addr(l: &TcpListener) -> String {
    l.local_addr().map(|a| a.to_string()).unwrap_or_default()
}

/// Runs `brevis serve` until SIGINT/SIGTERM.
pub async fn run(opts: ServeOptions) -> Result<(), StartupError> {
    metrics::init();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    std::fs::create_dir_all(&opts.data_dir).map_err(|e| {
        fail(format!(
            "cannot create data directory {}: {e}",
            opts.data_dir.display()
        ))
    })?;

    let identity_config =
        load_identity_config(opts.config_path.as_deref(), opts.insecure_http_issuers)?;
    let identity = IdentityState::new(identity_config, clock.clone(), opts.oidc)
        .map_err(|e| fail(format!("identity config: {e}")))?;
    let (ca, ca_description, ca_files) = load_ca(&opts.ca, &opts.data_dir, now)?;
    ca.self_test()
        .map_err(|e| fail(format!("CA signer: {e}")))?;

    let mut embedded: Option<(Arc<Log>, TcpListener, String)> = None;
    let mut remote_log: Option<Arc<RemoteLog>> = None;
    let (ct, ct_description): (Option<Arc<dyn Submitter>>, String) = match &opts.ct {
        CtChoice::Disabled => (
            None,
            "disabled (--ct-log-url \"\"): certificates carry no SCT; Sigstore clients will refuse them".into(),
        ),
        CtChoice::Remote {
            url,
            public_key,
            options,
        } => {
            let key = match public_key {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| fail(format!("--ct-log-public-key-path {}: {e}", p.display())))
                        .and_then(|t| {
                            LogPublicKey::from_pem(&t)
                                .map_err(|e| fail(format!("--ct-log-public-key-path {}: {e}", p.display())))
                        })?,
                ),
                None => {
                    tracing::warn!("no --ct-log-public-key-path: SCTs from {url} are not verified");
                    None
                }
            };
            let verified = if key.is_some() { "SCTs verified" } else { "SCTs NOT verified" };
            let remote = Arc::new(RemoteLog::new(url, key, options.clone()).map_err(fail)?);
            remote_log = Some(remote.clone());
            (Some(remote), format!("remote {url} ({verified})"))
        }
        CtChoice::Embedded(e) => {
            let mut log_opts = e.log.clone();
            log_opts.roots = vec![ca.root_der().to_vec()];
            if let Some(p) = &e.extra_roots {
                let text = std::fs::read_to_string(p)
                    .map_err(|err| fail(format!("--ctlog-extra-roots {}: {err}", p.display())))?;
                let more = ca::chain::parse_pem_chain(&text)
                    .map_err(|err| fail(format!("--ctlog-extra-roots {}: {err}", p.display())))?;
                log_opts.roots.extend(more);
            }
            let dir = opts.data_dir.join("ctlog");
            let log = Arc::new(
                Log::open(&dir, log_opts).map_err(|err| fail(format!("CT log in {}: {err}", dir.display())))?,
            );
            let listener = bind(&opts.host, e.port)?;
            let url = format!("http://{}{}", display_addr(&listener), e.prefix);
            let desc = format!(
                "embedded, {url} (log ID {}, key {}, tree size {})",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, log.public_key().log_id()),
                dir.join("log-public-key.pem").display(),
                log.sth().tree_size
            );
            embedded = Some((log.clone(), listener, e.prefix.clone()));
            (Some(Arc::new(EmbeddedLog(log))), desc)
        }
    };

    let api_listener = bind(&opts.host, opts.port)?;
    let metrics_listener = bind(&opts.host, opts.metrics_port)?;

    let issuers: Vec<String> = identity
        .config
        .issuers
        .iter()
        .chain(identity.config.meta_issuers.iter())
        .map(|i| format!("{} ({}, client-id {})", i.key, i.kind.as_str(), i.client_id))
        .collect();
    let root_fp = hex::encode(crate::ct::sha256(ca.root_der()));
    let chain_len = ca.chain_der().len();
    let accepted_roots = embedded
        .as_ref()
        .map(|(log, _, _)| log.roots().iter().map(|r| r.der.clone()).collect());
    let mut authority = Authority::new(identity, ca, opts.algorithms.clone(), ct, clock.clone());
    if let Some(rate) = opts.protection.per_identity {
        authority =
            authority.with_identity_rate_limit(RateLimiter::new(rate, opts.protection.max_tracked));
    }
    let authority = Arc::new(authority);

    let tls = match &opts.tls {
        None => None,
        Some(files) => {
            let key = tls::load(files).map_err(|e| fail(format!("TLS: {e}")))?;
            let resolver = Arc::new(tls::Resolver::new(key));
            let config =
                tls::server_config(resolver.clone()).map_err(|e| fail(format!("TLS: {e}")))?;
            Some((files.clone(), resolver, config))
        }
    };
    let reloader = Arc::new(Reloader::new(
        authority.clone(),
        clock.clone(),
        opts.config_path.as_ref().map(|p| IdentitySource {
            path: p.clone(),
            insecure_http_issuers: opts.insecure_http_issuers,
            oidc: opts.oidc,
            watch: opts.reload.config_watch,
        }),
        ca_files.map(|(cert, key)| CaSource {
            cert,
            key,
            password: match &opts.ca {
                CaChoice::File { password, .. } => password.clone(),
                CaChoice::Ephemeral => None,
            },
            watch: opts.reload.fileca_watch,
            accepted_roots,
        }),
        tls.as_ref().map(|(files, resolver, _)| TlsSource {
            files: files.clone(),
            resolver: resolver.clone(),
        }),
    ));

    let api_addr = display_addr(&api_listener);
    let metrics_addr = display_addr(&metrics_listener);
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("brevis {}", env!("CARGO_PKG_VERSION"));
    println!("  API listening on {scheme}://{api_addr}");
    println!("  metrics on http://{metrics_addr}/metrics");
    println!("  CA: {ca_description} ({chain_len} certificates, root SHA-256 {root_fp})");
    println!("  CT log: {ct_description}");
    if let Some((_, l, prefix)) = &embedded {
        println!("  CT log listening on http://{}{prefix}", display_addr(l));
    }
    println!("  trusted OIDC issuers:");
    for i in &issuers {
        println!("    {i}");
    }
    tracing::info!(api = %api_addr, metrics = %metrics_addr, "brevis started");

    // Discover configured issuers in the background; failures are retried on first use.
    {
        let authority = authority.clone();
        actix_web::rt::spawn(async move {
            authority.identity().verifier.warm_up().await;
        });
    }

    // Readiness: not shutting down, the CA signer works, the CT log takes submissions.
    let stopping = Arc::new(AtomicBool::new(false));
    let remote_status: Arc<Mutex<Result<(), String>>> =
        Arc::new(Mutex::new(Err("the CT log has not been probed yet".into())));
    if let Some(remote) = &remote_log {
        let (remote, status) = (remote.clone(), remote_status.clone());
        actix_web::rt::spawn(async move {
            loop {
                let r = remote.probe().await.map_err(|e| format!("CT log: {e}"));
                if let Err(e) = &r {
                    tracing::warn!(error = %e, "CT log probe failed");
                }
                *status.lock().unwrap_or_else(|p| p.into_inner()) = r;
                tokio::time::sleep(CT_PROBE_INTERVAL).await;
            }
        });
    }
    let readiness = {
        let (authority, stopping) = (authority.clone(), stopping.clone());
        let log = embedded.as_ref().map(|(l, _, _)| l.clone());
        let remote = remote_log.as_ref().map(|_| remote_status.clone());
        move || -> Result<(), String> {
            let result = (|| {
                if stopping.load(Ordering::Relaxed) {
                    return Err("shutting down".to_string());
                }
                authority.can_issue()?;
                if let Some(log) = &log {
                    log.health().map_err(|e| format!("CT log: {e}"))?;
                }
                if let Some(status) = &remote {
                    status.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
                }
                Ok(())
            })();
            metrics::READY.set(i64::from(result.is_ok()));
            result
        }
    };
    let _ = readiness();
    let client_ip_header = match &opts.protection.client_ip_header {
        None => None,
        Some(h) => Some(
            actix_web::http::header::HeaderName::try_from(h.as_str())
                .map_err(|e| fail(format!("--client-ip-header {h:?}: {e}")))?,
        ),
    };
    let state = web::Data::new(AppState {
        authority: authority.clone(),
        readiness: Arc::new(readiness),
        last_readiness: Mutex::new(Ok(())),
        limits: api::Limits {
            per_client: opts
                .protection
                .per_client
                .map(|r| RateLimiter::new(r, opts.protection.max_tracked)),
            client_ip_header,
            body_timeout: opts.protection.body_timeout,
            issuance_timeout: opts.protection.issuance_timeout,
            ipv6_prefix: opts.protection.ipv6_prefix,
        },
    });
    let mut api_server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(api::observe))
            .configure(api::configure)
    })
    .keep_alive(opts.idle_timeout)
    .client_request_timeout(opts.request_timeout)
    .shutdown_timeout(opts.shutdown_timeout.as_secs().max(1))
    .disable_signals();
    if let Some(w) = opts.workers {
        api_server = api_server.workers(w);
    }
    if let Some(n) = opts.protection.max_connections {
        api_server = api_server.max_connections(n);
    }
    let api_server = match tls {
        Some((_, _, config)) => api_server.listen_rustls_0_23(api_listener, config),
        None => api_server.listen(api_listener),
    }
    .map_err(|e| fail(format!("API listener: {e}")))?
    .run();
    let api_handle = api_server.handle();
    let metrics_server = HttpServer::new(|| App::new().configure(api::configure_metrics))
        .workers(1)
        .disable_signals()
        .listen(metrics_listener)
        .map_err(|e| fail(format!("metrics listener: {e}")))?
        .run();
    let metrics_handle = metrics_server.handle();
    actix_web::rt::spawn(metrics_server);
    let mut log_handle = None;
    if let Some((log, listener, prefix)) = &embedded {
        let log_server = ctlog_server(
            log.clone(),
            listener.try_clone().map_err(|e| fail(e.to_string()))?,
            prefix.clone(),
            false,
        )?;
        log_handle = Some(log_server.handle());
        actix_web::rt::spawn(log_server);
    }

    // Signals: SIGHUP reloads, SIGTERM/SIGINT stop gracefully; watched files reload.
    {
        let signals = Signals::new().map_err(|e| fail(format!("signal handlers: {e}")))?;
        let log = embedded.as_ref().map(|(l, _, _)| l.clone());
        let (reloader, authority) = (reloader.clone(), authority.clone());
        let watch = opts.reload.watch_interval;
        actix_web::rt::spawn(async move {
            let mut signals = supervise(signals, reloader, authority, watch).await;
            // A second SIGTERM/SIGINT while draining: stop waiting (what is committed is
            // durable; requests still in flight get no answer).
            actix_web::rt::spawn(async move {
                tokio::select! {
                    _ = signals.term.recv() => {}
                    _ = signals.int.recv() => {}
                }
                tracing::warn!(
                    "second stop signal: exiting without waiting for requests in flight"
                );
                std::process::exit(130);
            });
            stopping.store(true, Ordering::Relaxed);
            metrics::READY.set(0);
            tracing::info!("shutting down: no new connections; finishing requests in flight");
            if let Some(log) = &log {
                log.hurry();
            }
            api_handle.stop(true).await;
        });
    }

    let result = api_server.await;
    // The API has drained; stop the side listeners and flush the log's queue.
    if let Some(h) = log_handle {
        h.stop(true).await;
    }
    metrics_handle.stop(true).await;
    if let Some((log, _, _)) = embedded {
        log.shutdown();
        tracing::info!(tree_size = log.sth().tree_size, "CT log flushed");
    }
    tracing::info!("brevis stopped");
    result.map_err(|e| fail(format!("server error: {e}")))
}

/// How often a remote CT log is probed for readiness.
const CT_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// The process signals brevis acts on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Reloads on SIGHUP and on watched file changes; returns the signal streams on SIGTERM or
/// SIGINT. Reloads (file reads, key decryption, config compilation) run on the blocking
/// pool, and OIDC discovery after an identity reload in the background, so a stop signal
/// is never kept waiting.
async fn supervise(
    mut signals: Signals,
    reloader: Arc<Reloader>,
    authority: Arc<Authority>,
    watch: Duration,
) -> Signals {
    let mut tick = (!watch.is_zero() && reloader.watches_anything()).then(|| {
        let mut t = tokio::time::interval(watch);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        let all = tokio::select! {
            _ = signals.term.recv() => return signals,
            _ = signals.int.recv() => return signals,
            _ = signals.hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                true
            }
            _ = async {
                match tick.as_mut() {
                    Some(t) => { t.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => false,
        };
        let r = reloader.clone();
        let results = tokio::task::spawn_blocking(move || {
            if all {
                r.reload_all()
            } else {
                r.reload_changed()
            }
        })
        .await
        .unwrap_or_default();
        if results
            .iter()
            .any(|(c, r)| *c == Component::Identity && r.is_ok())
        {
            let authority = authority.clone();
            actix_web::rt::spawn(async move {
                authority.identity().verifier.warm_up().await;
            });
        }
    }
}

fn ctlog_server(
    log: Arc<Log>,
    listener: TcpListener,
    prefix: String,
    handle_signals: bool,
) -> Result<actix_web::dev::Server, StartupError> {
    let state = web::Data::new(api::ctlog::CtLogState {
        log,
        prefix: prefix.clone(),
    });
    let mut server = HttpServer::new(move || {
        let prefix = prefix.clone();
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(api::ctlog::observe))
            .configure(move |cfg| api::ctlog::configure(&prefix)(cfg))
    })
    .workers(2)
    .shutdown_timeout(30);
    if !handle_signals {
        server = server.disable_signals();
    }
    Ok(server
        .listen(listener)
        .map_err(|e| fail(format!("CT log listener: {e}")))?
        .run())
}

/// Runs `brevis ctlog serve` until SIGINT/SIGTERM.
pub async fn run_ctlog(opts: CtLogServeOptions) -> Result<(), StartupError> {
    metrics::init();
    let text = std::fs::read_to_string(&opts.roots)
        .map_err(|e| fail(format!("--roots {}: {e}", opts.roots.display())))?;
    let roots = ca::chain::parse_pem_chain(&text)
        .map_err(|e| fail(format!("--roots {}: {e}", opts.roots.display())))?;
    let mut log_opts = opts.log.clone();
    log_opts.roots = roots;
    let log = Arc::new(
        Log::open(&opts.data_dir, log_opts)
            .map_err(|e| fail(format!("CT log in {}: {e}", opts.data_dir.display())))?,
    );
    let listener = bind(&opts.host, opts.port)?;
    println!("brevis ctlog {}", env!("CARGO_PKG_VERSION"));
    println!(
        "  CT log listening on http://{}{}",
        display_addr(&listener),
        opts.prefix
    );
    println!(
        "  log ID {} (key {})",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            log.public_key().log_id()
        ),
        match &opts.log.key_file {
            Some(k) => k.display().to_string(),
            None => opts
                .data_dir
                .join("log-public-key.pem")
                .display()
                .to_string(),
        }
    );
    println!(
        "  origin {}, tree size {}, {} accepted roots",
        log.origin(),
        log.sth().tree_size,
        log.roots().len()
    );
    let mut metrics_handle = None;
    if let Some(port) = opts.metrics_port {
        let l = bind(&opts.host, port)?;
        println!("  metrics on http://{}/metrics", display_addr(&l));
        let server = HttpServer::new(|| App::new().configure(api::configure_metrics))
            .workers(1)
            .listen(l)
            .map_err(|e| fail(e.to_string()))?
            .run();
        metrics_handle = Some(server.handle());
        actix_web::rt::spawn(server);
    }
    let server = ctlog_server(log.clone(), listener, opts.prefix.clone(), true)?;
    let result = server.await;
    if let Some(h) = metrics_handle {
        h.stop(true).await;
    }
    log.shutdown();
    result.map_err(|e| fail(format!("server error: {e}")))
}

/// Chain PEM for printing or writing (issuing certificate first).
pub fn chain_text(ca: &CertificateAuthority) -> String {
    ca.chain_der().iter().map(|c| pem::certificate(c)).collect()
}
