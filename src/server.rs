//! The composition root: [`Server`] builds every component of `brevis serve` from
//! [`ServeOptions`] and binds its listeners; [`Server::run`] serves until a shutdown
//! future resolves, then drains in order. [`CtLogServer`] does the same for
//! `brevis ctlog serve`.
//!
//! IO at the edge, as mini-redis keeps it: nothing here prints, installs signal handlers
//! or exits the process. The binary (src/main.rs) prints the [`Summary`], turns SIGTERM
//! and SIGINT into the shutdown future and SIGHUP into [`ReloadHandle::reload_all`].
//! Tests build a `Server` on port 0, read [`Server::addrs`], and run it in-process.

use crate::api::{self, AppState, NotReady};
use crate::authority::{Authority, IdentityState, IdentityStateError};
use crate::ca::provision::{self, CaChoice, ProvisionError};
use crate::ca::{self, CaError};
use crate::config::{self, AlgorithmRegistry, LoadError};
use crate::ct::client::{ClientOptions, RemoteLog};
use crate::ct::log::{Log, LogOptions};
use crate::ct::{EmbeddedLog, LogPublicKey, Submitter};
use crate::errors::Chain;
use crate::metrics;
use crate::model::{Clock, SystemClock};
use crate::oidc::VerifierOptions;
use crate::ratelimit::{Rate, RateLimiter};
use crate::reload::{CaSource, Component, IdentitySource, Reloader, TlsSource};
use crate::tls::{self, TlsError, TlsFiles};
use actix_web::{App, HttpServer, middleware::from_fn, web};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

/// Why brevis could not start. Each variant keeps its cause; the binary prints the chain.
#[derive(Debug, Error)]
pub enum StartupError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}")]
    DataDir {
        /// The data directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The identity config file could not be read or is invalid.
    #[error(transparent)]
    IdentityConfig(#[from] LoadError),
    /// The identity config loaded, but its issuers could not be set up.
    #[error("identity config")]
    Identity(#[source] IdentityStateError),
    /// The CA could not be loaded or created.
    #[error(transparent)]
    Ca(#[from] ProvisionError),
    /// The CA key cannot make a test signature that verifies against the issuing certificate.
    #[error("the CA signer fails its self-test")]
    CaSelfTest(#[source] CaError),
    /// The remote CT log's public key file could not be read.
    #[error("--ct-log-public-key-path {path}")]
    CtLogKeyFile {
        /// The public key file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The remote CT log's public key file holds no usable key.
    #[error("--ct-log-public-key-path {path}")]
    CtLogKey {
        /// The public key file.
        path: PathBuf,
        /// Why the key is unusable.
        #[source]
        source: crate::ct::LogKeyError,
    },
    /// `--ct-log-min-scts` asks for more SCTs than there are logs (or none).
    #[error("--ct-log-min-scts {min_scts}: there are {logs} CT logs; give 1 to {logs}")]
    CtQuorum {
        /// What was asked.
        min_scts: usize,
        /// How many logs are configured.
        logs: usize,
    },
    /// The client for the remote CT log could not be built.
    #[error("--ct-log-url")]
    RemoteLog(#[source] crate::ct::client::ClientError),
    /// A file of accepted CT log roots is unusable.
    #[error("{flag} {path}")]
    Roots {
        /// The flag that named the file (`--ctlog-extra-roots` or `--roots`).
        flag: &'static str,
        /// The roots file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: RootsError,
    },
    /// The CT log could not be opened or created.
    #[error("CT log in {dir}")]
    CtLog {
        /// The log's directory.
        dir: PathBuf,
        /// Why it could not be opened.
        #[source]
        source: crate::ct::log::OpenError,
    },
    /// A listener could not be bound, or its bound address could not be read.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address (`host:port`), or `a listener` when reading the bound address failed.
        addr: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded, or the TLS configuration failed.
    #[error("TLS")]
    Tls(#[from] TlsError),
    /// `--client-ip-header` is not a valid HTTP header name.
    #[error("--client-ip-header {0:?} is not a header name")]
    ClientIpHeader(String),
    /// A listener could not start serving, or failed while serving.
    #[error("the {listener} listener")]
    Serve {
        /// Which listener: `API`, `metrics` or `CT log`.
        listener: &'static str,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A roots file that cannot be used.
#[derive(Debug, Error)]
pub enum RootsError {
    /// The roots file could not be read.
    #[error("cannot read it")]
    Read(#[source] std::io::Error),
    /// The file holds no certificates, or one does not parse.
    #[error(transparent)]
    Chain(#[from] ca::ChainError),
}

/// Reads a PEM file of root certificates.
fn read_roots(flag: &'static str, path: &PathBuf) -> Result<Vec<Vec<u8>>, StartupError> {
    let wrap = |source| StartupError::Roots {
        flag,
        path: path.clone(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|e| wrap(RootsError::Read(e)))?;
    ca::chain::parse_pem_chain(&text).map_err(|e| wrap(e.into()))
}

/// Where certificates are logged.
#[derive(Debug, Clone)]
pub enum CtChoice {
    /// `--ct-log-url ""`: no CT log, detached responses with an empty SCT (as Fulcio).
    Disabled,
    /// The embedded log (default).
    Embedded(Box<EmbeddedLogOptions>),
    /// Several logs per certificate (`--ct-log-url` more than once, or with
    /// `--ct-log-embedded`).
    Several(Box<SeveralLogs>),
    /// A remote RFC 6962 log.
    Remote {
        /// The log's base URL (`--ct-log-url`).
        url: String,
        /// PEM public key file SCTs are verified against; `None`: SCTs are not verified.
        public_key: Option<PathBuf>,
        /// Timeouts, retries, `Host` override and TLS trust of the client.
        options: ClientOptions,
    },
}

/// Several CT logs per certificate.
#[derive(Debug, Clone)]
pub struct SeveralLogs {
    /// The embedded log, first in the order when present (`--ct-log-embedded`).
    pub embedded: Option<EmbeddedLogOptions>,
    /// Remote logs, in the order given.
    pub remotes: Vec<RemoteLogSpec>,
    /// Valid SCTs required before a certificate is issued; `None`: every log.
    pub min_scts: Option<usize>,
    /// Which SCTs go into the certificate.
    pub embed: crate::authority::EmbedScts,
    /// Once enough SCTs are in hand, how long the other logs still get.
    pub grace: Duration,
}

/// A remote log of [`SeveralLogs`].
#[derive(Debug, Clone)]
pub struct RemoteLogSpec {
    /// Base URL.
    pub url: String,
    /// PEM public key file its SCTs are verified with; `None`: not verified.
    pub public_key: Option<PathBuf>,
    /// Timeouts, retries, `Host` override and TLS trust of the client.
    pub options: ClientOptions,
}

/// The embedded log's settings.
#[derive(Debug, Clone)]
pub struct EmbeddedLogOptions {
    /// Listener for monitors (0 = any free port).
    pub port: u16,
    /// URL path prefix of the log's API ("" or "/name").
    pub prefix: String,
    /// The log's settings; `roots` is replaced by the CA's root plus `extra_roots`.
    pub log: LogOptions,
    /// Extra accepted roots (PEM file), beside the CA's own.
    pub extra_roots: Option<PathBuf>,
}

/// The CA a rotation moves to, and when.
#[derive(Debug, Clone)]
pub struct NextCa {
    /// Its chain and key (a file pair, or a key in an HSM or a KMS with its chain file).
    pub ca: CaChoice,
    /// The Unix second from which it signs every certificate.
    pub switch_at: i64,
}

/// Everything `brevis serve` needs, already parsed from the command line.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address every listener binds to (API, metrics and the embedded CT log).
    pub host: String,
    /// Port of the API listener (0 = any free port).
    pub port: u16,
    /// Port of the Prometheus listener, path `/metrics` (0 = any free port).
    pub metrics_port: u16,
    /// Where the CA and the embedded CT log keep their state; created if missing.
    pub data_dir: PathBuf,
    /// The identity config file (Fulcio format, YAML or JSON); `None`: Fulcio's built-in
    /// issuers.
    pub config_path: Option<PathBuf>,
    /// Who may get a certificate, on the verified claims (`--issuance-policy`); reloaded
    /// with the identity config.
    pub issuance_policy: Option<PathBuf>,
    /// Which CA backend issues certificates.
    pub ca: CaChoice,
    /// A CA staged for rotation: published in the trust bundle at once, issuing from
    /// its switch time on.
    pub next_ca: Option<NextCa>,
    /// Where certificates are logged.
    pub ct: CtChoice,
    /// The client key and signature algorithms accepted (`--client-signing-algorithms`).
    pub algorithms: AlgorithmRegistry,
    /// Allow `http://` OIDC issuers (local testing only).
    pub insecure_http_issuers: bool,
    /// How tokens are verified: clock skew, fetch timeouts, key refresh.
    pub oidc: VerifierOptions,
    /// Timeouts and workers of the API listener.
    pub http: HttpOptions,
    /// Rate limits, timeouts and connection limits of the API listener.
    pub protection: Protection,
    /// Which files are watched for changes, and how often.
    pub reload: ReloadOptions,
    /// TLS on the API listener.
    pub tls: Option<TlsFiles>,
    /// Fulcio's gRPC API on a listener of its own (`--grpc-port`).
    pub grpc: Option<GrpcServe>,
    /// Serve gRPC on the API's port too: HTTP/2 prior-knowledge connections (under TLS,
    /// a ClientHello offering only `h2`) go to gRPC, everything else to REST.
    pub grpc_on_api_port: bool,
}

/// Where and how the gRPC API is served.
#[derive(Debug, Clone)]
pub struct GrpcServe {
    /// Address to bind (`--grpc-host`; default the API's `--host`).
    pub host: Option<String>,
    /// Port (0 = any free port).
    pub port: u16,
    /// TLS (`--grpc-tls-certificate`, `--grpc-tls-key`); plaintext HTTP/2 without.
    pub tls: Option<TlsFiles>,
}

impl ServeOptions {
    /// Everything at its default on 127.0.0.1 with ports chosen by the OS (0), the data
    /// directory `data_dir`, Fulcio's built-in issuers, the embedded CT log: what tests and
    /// embedders start from.
    pub fn local(data_dir: impl Into<PathBuf>) -> ServeOptions {
        ServeOptions {
            host: "127.0.0.1".into(),
            port: 0,
            metrics_port: 0,
            data_dir: data_dir.into(),
            config_path: None,
            issuance_policy: None,
            ca: CaChoice::File {
                cert: None,
                key: None,
                password: None,
            },
            next_ca: None,
            ct: CtChoice::Embedded(Box::new(EmbeddedLogOptions {
                port: 0,
                prefix: String::new(),
                log: LogOptions::default(),
                extra_roots: None,
            })),
            algorithms: AlgorithmRegistry::default(),
            insecure_http_issuers: false,
            oidc: VerifierOptions::default(),
            http: HttpOptions::default(),
            protection: Protection::default(),
            reload: ReloadOptions::default(),
            tls: None,
            grpc: None,
            grpc_on_api_port: true,
        }
    }
}

/// How the API listener treats connections.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Idle keep-alive timeout (Fulcio: 30 s).
    pub idle_timeout: Duration,
    /// Time allowed to send a request's headers.
    pub request_timeout: Duration,
    /// Worker threads (default: one per CPU core).
    pub workers: Option<usize>,
    /// Time in-flight requests get to finish after shutdown began.
    pub shutdown_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            workers: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Rate limits, timeouts and connection limits of the API listener.
#[derive(Debug, Clone)]
pub struct Protection {
    /// Signing requests allowed per client address (429 beyond it); `None`: no limit.
    pub per_client: Option<Rate>,
    /// Certificates allowed per identity (issuer + SAN), checked after the token verified;
    /// `None`: no limit.
    pub per_identity: Option<Rate>,
    /// Most client addresses / identities tracked by each limiter.
    pub max_tracked: usize,
    /// Header the client address is taken from (its last entry) instead of the TCP peer; only
    /// behind a proxy that sets it. `None`: the TCP peer.
    pub client_ip_header: Option<String>,
    /// Time allowed to receive a request body after its headers (408 after it).
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
    /// Reload the identity config (`config_path`) when it changes.
    pub config_watch: bool,
    /// Reload the fileca chain and key when they change.
    pub fileca_watch: bool,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            watch_interval: Duration::from_secs(5),
            config_watch: true,
            fileca_watch: true,
        }
    }
}

/// The addresses a server listens on (port 0 in the options: the ones the OS chose).
#[derive(Debug, Clone)]
pub struct Addrs {
    /// The API listener.
    pub api: SocketAddr,
    /// The Prometheus metrics listener.
    pub metrics: SocketAddr,
    /// The embedded CT log's listener, when it runs.
    pub ctlog: Option<SocketAddr>,
    /// Whether the API speaks HTTPS.
    pub tls: bool,
    /// The gRPC listener, when `--grpc-port` is given.
    pub grpc: Option<SocketAddr>,
    /// Whether gRPC is served on the API's port too.
    pub grpc_shared: bool,
}

impl Addrs {
    /// The API's base URL.
    pub fn api_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.api)
    }
}

/// What a server is running, for the startup banner.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The CA backend and where its chain comes from, in one line.
    pub ca: String,
    /// Certificates in the CA's chain, issuing certificate through root.
    pub chain_len: usize,
    /// SHA-256 of the root certificate, hex.
    pub root_fingerprint: String,
    /// Where certificates are logged, in one line (disabled, remote or embedded).
    pub ct: String,
    /// The embedded log's URL path prefix.
    pub ctlog_prefix: String,
    /// `<issuer> (<type>, client-id <id>)`, exact issuers then meta patterns.
    pub issuers: Vec<String>,
    /// Where this start wrote a new root's private key (it belongs offline).
    pub new_root_key: Option<PathBuf>,
}

/// The embedded log and its listener.
struct Embedded {
    log: Arc<Log>,
    listener: TcpListener,
    prefix: String,
}

/// `brevis serve`, built and bound, not yet serving.
pub struct Server {
    addrs: Addrs,
    summary: Summary,
    authority: Arc<Authority>,
    reloader: Arc<Reloader>,
    embedded: Option<Embedded>,
    remotes: Vec<Arc<RemoteLog>>,
    ready_quorum: usize,
    api_listener: TcpListener,
    metrics_listener: TcpListener,
    grpc: Option<crate::grpc::GrpcListener>,
    handoff: Option<crate::grpc::Handoff>,
    tls: Option<rustls::ServerConfig>,
    http: HttpOptions,
    limits: api::Limits,
    max_connections: Option<usize>,
    watch_interval: Duration,
}

/// The log's key for the startup summary: its reference, or the default file.
fn describe_log_key(log: &LogOptions, default: &std::path::Path) -> String {
    log.key
        .as_ref()
        .map(|k| k.describe())
        .unwrap_or_else(|| default.display().to_string())
}

fn bind(host: &str, port: u16) -> Result<TcpListener, StartupError> {
    TcpListener::bind((host, port)).map_err(|source| StartupError::Bind {
        addr: format!("{host}:{port}"),
        source,
    })
}

fn local_addr(l: &TcpListener) -> Result<SocketAddr, StartupError> {
    l.local_addr().map_err(|source| StartupError::Bind {
        addr: "a listener".into(),
        source,
    })
}

impl Server {
    /// Loads and validates everything (identity config, CA, CT log, TLS), binds the
    /// listeners, and returns the server ready to run. Nothing is served yet.
    pub fn build(opts: ServeOptions) -> Result<Server, StartupError> {
        Server::build_with_clock(opts, Arc::new(SystemClock))
    }

    /// [`Server::build`] with a given clock (tests pin the time).
    pub fn build_with_clock(
        opts: ServeOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, StartupError> {
        register_metrics();
        std::fs::create_dir_all(&opts.data_dir).map_err(|source| StartupError::DataDir {
            path: opts.data_dir.clone(),
            source,
        })?;
        let identity_config =
            config::load_identity_config(opts.config_path.as_deref(), opts.insecure_http_issuers)?;
        let policy = opts
            .issuance_policy
            .as_deref()
            .map(|p| config::load_issuance_policy(p, &identity_config))
            .transpose()?;
        let identity = IdentityState::new(identity_config, clock.clone(), opts.oidc)
            .map_err(StartupError::Identity)?
            .with_policy(policy);
        let provisioned = provision::load_or_create(&opts.ca, &opts.data_dir, clock.now())?;
        provisioned
            .ca
            .self_test()
            .map_err(StartupError::CaSelfTest)?;
        let next = match &opts.next_ca {
            None => None,
            Some(n) => {
                let p = provision::load_or_create(&n.ca, &opts.data_dir, clock.now())?;
                p.ca.self_test().map_err(StartupError::CaSelfTest)?;
                tracing::info!(ca = %p.description, switch_at = n.switch_at, "next CA staged: published now, issuing from its switch time");
                Some((p.ca, n.switch_at))
            }
        };
        let ct = CtSide::open(&opts, &provisioned.ca, next.as_ref().map(|(ca, _)| ca))?;
        let api_listener = bind(&opts.host, opts.port)?;
        let metrics_listener = bind(&opts.host, opts.metrics_port)?;
        let tls = opts.tls.as_ref().map(TlsSide::load).transpose()?;
        let own_grpc = opts
            .grpc
            .as_ref()
            .map(|g| bind(g.host.as_deref().unwrap_or(&opts.host), g.port))
            .transpose()?;
        let grpc_tls = opts
            .grpc
            .as_ref()
            .and_then(|g| g.tls.as_ref())
            .map(|files| -> Result<_, StartupError> {
                let mut config = TlsSide::load(files)?.config;
                config.alpn_protocols = vec![b"h2".to_vec()];
                Ok(Arc::new(config))
            })
            .transpose()?;
        // gRPC shares the REST port unless turned off: h2c in plaintext, ALPN h2 under TLS.
        let shared = opts.grpc_on_api_port;
        let mut grpc = (own_grpc.is_some() || shared).then(|| {
            crate::grpc::GrpcListener::new(
                own_grpc,
                crate::grpc::GrpcOptions {
                    tls: grpc_tls,
                    shutdown_timeout: opts.http.shutdown_timeout,
                },
            )
        });
        let handoff = if shared {
            // Under TLS the gRPC runtime finishes the handshake with the API's certificate
            // (the same resolver, so reloads reach both) and ALPN h2.
            let shared_tls = tls.as_ref().map(|t| {
                let mut config = t.config.clone();
                config.alpn_protocols = vec![b"h2".to_vec()];
                Arc::new(config)
            });
            grpc.as_mut().map(|g| g.handoff(shared_tls))
        } else {
            None
        };
        let addrs = Addrs {
            api: local_addr(&api_listener)?,
            metrics: local_addr(&metrics_listener)?,
            ctlog: ct
                .embedded
                .as_ref()
                .map(|e| local_addr(&e.listener))
                .transpose()?,
            tls: tls.is_some(),
            grpc: grpc
                .as_ref()
                .and_then(|g| g.local_addr())
                .transpose()
                .map_err(|source| StartupError::Bind {
                    addr: "the gRPC listener".into(),
                    source,
                })?,
            grpc_shared: shared,
        };
        let summary = Summary::new(&identity, &provisioned, &ct);
        let accepted_roots = ct
            .embedded
            .as_ref()
            .map(|e| e.log.roots().iter().map(|r| r.der.clone()).collect());
        let mut authority = Authority::new(
            identity,
            provisioned.ca,
            opts.algorithms.clone(),
            ct.submitter,
            clock.clone(),
        );
        if let Some((ca, at)) = next {
            authority = authority.with_next_ca(ca, at);
        }
        if let Some(plan) = ct.plan {
            authority = authority.with_ct_plan(plan);
        }
        if let Some(rate) = opts.protection.per_identity {
            authority = authority
                .with_identity_rate_limit(RateLimiter::new(rate, opts.protection.max_tracked));
        }
        let authority = Arc::new(authority);
        let tls_source = tls.as_ref().map(|t| TlsSource {
            files: t.files.clone(),
            resolver: t.resolver.clone(),
        });
        let reloader = Arc::new(reloader(
            &opts,
            authority.clone(),
            clock,
            provisioned.files,
            accepted_roots,
            tls_source,
        ));
        Ok(Server {
            addrs,
            summary,
            authority,
            reloader,
            embedded: ct.embedded,
            remotes: ct.remotes,
            ready_quorum: ct.ready_quorum,
            api_listener,
            metrics_listener,
            grpc,
            handoff,
            tls: tls.map(|t| t.config),
            http: opts.http,
            limits: limits(&opts.protection)?,
            max_connections: opts.protection.max_connections,
            watch_interval: opts.reload.watch_interval,
        })
    }

    /// The bound addresses (with the ports the OS chose where the options said 0).
    pub fn addrs(&self) -> &Addrs {
        &self.addrs
    }

    /// What the server runs, for the startup banner.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// What SIGHUP drives.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            reloader: self.reloader.clone(),
            authority: self.authority.clone(),
        }
    }

    /// Serves until `shutdown` resolves, then stops in order: readiness drops, the
    /// embedded log commits its queue at once, the API drains within the shutdown
    /// timeout, the side listeners stop, and the log's last commit finishes. Must run
    /// inside an actix system (`actix_web::rt::System`).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), StartupError> {
        // Discover configured issuers in the background; failures are retried on first use.
        {
            let authority = self.authority.clone();
            actix_web::rt::spawn(async move {
                authority.identity().verifier.warm_up().await;
            });
        }
        let stopping = Arc::new(AtomicBool::new(false));
        let watcher = (!self.watch_interval.is_zero() && self.reloader.watches_anything())
            .then(|| actix_web::rt::spawn(watch_files(self.reload_handle(), self.watch_interval)));
        let log = self.embedded.as_ref().map(|e| e.log.clone());
        let metrics_server = metrics_server(self.metrics_listener)?;
        let metrics_handle = metrics_server.handle();
        actix_web::rt::spawn(metrics_server);
        let log_handle = match &self.embedded {
            Some(e) => Some(serve_embedded_log(e)?),
            None => None,
        };
        let (api, state) = serve_api(
            ApiSide {
                authority: self.authority.clone(),
                embedded_log: log.clone(),
                remotes: self.remotes.clone(),
                ready_quorum: self.ready_quorum,
                limits: self.limits,
                http: self.http,
                max_connections: self.max_connections,
                tls: self.tls,
                handoff: self.handoff,
            },
            self.api_listener,
            stopping.clone(),
        )?;
        let api_handle = api.handle();
        let api_task = actix_web::rt::spawn(api);
        let grpc_stop = Arc::new(tokio::sync::Notify::new());
        let grpc =
            match self.grpc {
                Some(g) => Some(g.start(state, grpc_stop.clone()).map_err(|source| {
                    StartupError::Serve {
                        listener: "gRPC",
                        source,
                    }
                })?),
                None => None,
            };
        let drained = {
            let stop = async {
                shutdown.await;
                stopping.store(true, Ordering::Relaxed);
                metrics::READY.set(0);
                tracing::info!("shutting down: no new connections; finishing requests in flight");
                if let Some(log) = &log {
                    log.hurry();
                }
                grpc_stop.notify_one();
                api_handle.stop(true).await;
            };
            tokio::pin!(stop);
            tokio::select! {
                result = api_task => result,
                _ = &mut stop => Ok(Ok(())),
            }
        };
        if let Some(w) = watcher {
            w.abort();
        }
        // In-flight RPCs finish too (the listener stopped accepting with the API).
        grpc_stop.notify_one();
        if let Some(g) = grpc {
            g.stopped().await;
        }
        // The API has drained; stop the side listeners and flush the log's queue.
        if let Some(h) = log_handle {
            h.stop(true).await;
        }
        metrics_handle.stop(true).await;
        if let Some(log) = log {
            log.shutdown();
            tracing::info!(tree_size = log.sth().tree_size, "CT log flushed");
        }
        tracing::info!("brevis stopped");
        let failed = |source| StartupError::Serve {
            listener: "API",
            source,
        };
        match drained {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(failed(source)),
            Err(_) => Err(failed(std::io::Error::other("the API server task failed"))),
        }
    }
}

/// What the API listener serves with.
struct ApiSide {
    authority: Arc<Authority>,
    embedded_log: Option<Arc<Log>>,
    remotes: Vec<Arc<RemoteLog>>,
    /// Logs that must be healthy for readiness (the SCT quorum).
    ready_quorum: usize,
    limits: api::Limits,
    http: HttpOptions,
    max_connections: Option<usize>,
    tls: Option<rustls::ServerConfig>,
    /// Hands HTTP/2 prior-knowledge connections to gRPC (the shared port).
    handoff: Option<crate::grpc::Handoff>,
}

/// Starts the API's HTTP server on `listener` (not yet polled: the caller spawns it).
fn serve_api(
    side: ApiSide,
    listener: TcpListener,
    stopping: Arc<AtomicBool>,
) -> Result<(actix_web::dev::Server, Arc<AppState>), StartupError> {
    let remote_status = side.remotes.into_iter().map(probe_remote).collect();
    let readiness = readiness(
        side.authority.clone(),
        stopping,
        side.embedded_log,
        remote_status,
        side.ready_quorum,
    );
    let _ = readiness();
    let shared = Arc::new(AppState {
        authority: side.authority,
        readiness: Arc::new(readiness),
        last_readiness: Mutex::new(None),
        limits: side.limits,
    });
    let state = web::Data::from(shared.clone());
    let app = move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(api::observe))
            .configure(api::configure)
    };
    if let Some(handoff) = side.handoff {
        let server = shared_api_server(
            app,
            listener,
            &side.http,
            side.max_connections,
            side.tls,
            handoff,
        )
        .map_err(|source| StartupError::Serve {
            listener: "API",
            source,
        })?;
        return Ok((server, shared));
    }
    let mut api = HttpServer::new(app)
        .keep_alive(side.http.idle_timeout)
        .client_request_timeout(side.http.request_timeout)
        .shutdown_timeout(side.http.shutdown_timeout.as_secs().max(1))
        .disable_signals();
    if let Some(w) = side.http.workers {
        api = api.workers(w);
    }
    if let Some(n) = side.max_connections {
        api = api.max_connections(n);
    }
    let bound = match side.tls {
        Some(config) => api.listen_rustls_0_23(listener, config),
        None => api.listen(listener),
    };
    let server = bound
        .map_err(|source| StartupError::Serve {
            listener: "API",
            source,
        })?
        .run();
    Ok((server, shared))
}

/// The API on a port shared with gRPC: actix's HTTP service with the settings
/// `HttpServer` would apply, behind a look at each connection's first bytes. In plaintext
/// a connection that opens with the HTTP/2 preface (gRPC with prior knowledge) is handed
/// to the gRPC runtime; under TLS one whose ClientHello offers only `h2` (what gRPC
/// clients offer; browsers, curl and HTTP libraries also offer `http/1.1`) is. Every
/// other connection is HTTP/1 for actix.
fn shared_api_server<F, A, B>(
    app: F,
    listener: TcpListener,
    http: &HttpOptions,
    max_connections: Option<usize>,
    tls: Option<rustls::ServerConfig>,
    handoff: crate::grpc::Handoff,
) -> std::io::Result<actix_web::dev::Server>
where
    F: Fn() -> App<A> + Send + Clone + 'static,
    A: actix_service::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    use actix_service::{
        IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, boxed, fn_factory,
        fn_service,
    };
    let addr = listener.local_addr()?;
    let (keep_alive, request_timeout) = (http.idle_timeout, http.request_timeout);
    let mut builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(http.shutdown_timeout.as_secs().max(1));
    if let Some(w) = http.workers {
        builder = builder.workers(w);
    }
    if let Some(n) = max_connections {
        builder = builder.max_concurrent_connections(n);
    }
    let server = builder
        .listen("api", listener, move || {
            // The same HTTP service over TCP or over TLS (the IO type differs).
            macro_rules! service {
                () => {
                    actix_http::HttpService::build()
                        .keep_alive(keep_alive)
                        .client_request_timeout(request_timeout)
                        .local_addr(addr)
                        .finish(actix_service::map_config(app().into_factory(), |_| {
                            actix_web::dev::AppConfig::default()
                        }))
                };
            }
            let secure = tls.is_some();
            let http = match &tls {
                None => boxed::factory(service!().tcp().map_err(|_| ())),
                Some(config) => {
                    boxed::factory(service!().rustls_0_23(config.clone()).map_err(|_| ()))
                }
            };
            let handoff = handoff.clone();
            fn_factory(move || {
                let http = http.new_service(());
                let handoff = handoff.clone();
                async move {
                    let http = std::rc::Rc::new(http.await?);
                    Ok::<_, ()>(fn_service(move |stream: actix_web::rt::net::TcpStream| {
                        let (http, handoff) = (http.clone(), handoff.clone());
                        async move {
                            let grpc = if secure {
                                crate::grpc::offers_only_h2(&stream, request_timeout).await
                            } else {
                                crate::grpc::opens_with_h2_preface(&stream, request_timeout).await
                            };
                            if grpc {
                                if let (Ok(peer), Ok(stream)) =
                                    (stream.peer_addr(), stream.into_std())
                                {
                                    let _ = handoff.send(crate::grpc::HandedOver {
                                        stream,
                                        peer,
                                        tls: secure,
                                    });
                                }
                                return Ok(());
                            }
                            http.call(stream).await
                        }
                    }))
                }
            })
        })?
        .run();
    Ok(server)
}

/// Starts the embedded log's listener; returns the handle that stops it.
fn serve_embedded_log(e: &Embedded) -> Result<actix_web::dev::ServerHandle, StartupError> {
    let listener = e
        .listener
        .try_clone()
        .map_err(|source| StartupError::Serve {
            listener: "CT log",
            source,
        })?;
    let server = ctlog_server(e.log.clone(), listener, e.prefix.clone())?;
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(handle)
}

/// Every rejection reason exists from the start, at zero.
fn register_metrics() {
    metrics::init();
    for reason in crate::authority::IssueError::REASONS
        .iter()
        .chain(api::API_REJECTIONS)
    {
        metrics::REJECTIONS.with_label_values(&[reason]);
    }
    crate::ct::log::Rejection::register_metrics();
}

/// What reloads, from where: the identity config, the file CA, the TLS pair.
fn reloader(
    opts: &ServeOptions,
    authority: Arc<Authority>,
    clock: Arc<dyn Clock>,
    ca_files: Option<(PathBuf, PathBuf)>,
    accepted_roots: Option<Vec<Vec<u8>>>,
    tls: Option<TlsSource>,
) -> Reloader {
    Reloader::new(
        authority,
        clock,
        (opts.config_path.is_some() || opts.issuance_policy.is_some()).then(|| IdentitySource {
            path: opts.config_path.clone(),
            policy: opts.issuance_policy.clone(),
            insecure_http_issuers: opts.insecure_http_issuers,
            oidc: opts.oidc,
            watch: opts.reload.config_watch,
        }),
        ca_files.map(|(cert, key)| CaSource {
            cert,
            key,
            password: match &opts.ca {
                CaChoice::File { password, .. } => password.clone(),
                CaChoice::Ephemeral | CaChoice::Remote { .. } => None,
            },
            watch: opts.reload.fileca_watch,
            accepted_roots,
        }),
        tls,
    )
}

/// The API's per-request protections, from the options.
fn limits(p: &Protection) -> Result<api::Limits, StartupError> {
    let client_ip_header = match &p.client_ip_header {
        None => None,
        Some(h) => Some(
            actix_web::http::header::HeaderName::try_from(h.as_str())
                .map_err(|_| StartupError::ClientIpHeader(h.clone()))?,
        ),
    };
    Ok(api::Limits {
        per_client: p.per_client.map(|r| RateLimiter::new(r, p.max_tracked)),
        client_ip_header,
        body_timeout: p.body_timeout,
        issuance_timeout: p.issuance_timeout,
        ipv6_prefix: p.ipv6_prefix,
    })
}

/// The served certificate: its files, the resolver reloads swap it in, the rustls config.
struct TlsSide {
    files: TlsFiles,
    resolver: Arc<tls::Resolver>,
    config: rustls::ServerConfig,
}

impl TlsSide {
    fn load(files: &TlsFiles) -> Result<TlsSide, StartupError> {
        let key = tls::load(files)?;
        crate::reload::publish_tls_expiry(&key);
        let resolver = Arc::new(tls::Resolver::new(key));
        let config = tls::server_config(resolver.clone())?;
        Ok(TlsSide {
            files: files.clone(),
            resolver,
            config,
        })
    }
}

/// The CT side: what the authority submits to, how it is described, and the embedded
/// log or the remote one.
struct CtSide {
    submitter: Option<Arc<dyn Submitter>>,
    /// With several logs: all of them and the quorum (then `submitter` is `None`).
    plan: Option<crate::authority::CtPlan>,
    description: String,
    embedded: Option<Embedded>,
    remotes: Vec<Arc<RemoteLog>>,
    /// Logs that must be healthy for readiness.
    ready_quorum: usize,
}

impl CtSide {
    fn open(
        opts: &ServeOptions,
        ca: &ca::CertificateAuthority,
        next: Option<&ca::CertificateAuthority>,
    ) -> Result<CtSide, StartupError> {
        match &opts.ct {
            CtChoice::Disabled => Ok(CtSide {
                submitter: None,
                description: "disabled (--ct-log-url \"\"): certificates carry no SCT; Sigstore clients will refuse them".into(),
                embedded: None,
                remotes: Vec::new(),
                plan: None,
                ready_quorum: 0,
            }),
            CtChoice::Several(s) => CtSide::several(opts, s, ca, next),
            CtChoice::Remote {
                url,
                public_key,
                options,
            } => CtSide::remote(url, public_key.as_deref(), options),
            CtChoice::Embedded(e) => CtSide::embedded(opts, e, ca, next),
        }
    }

    fn remote(
        url: &str,
        public_key: Option<&Path>,
        options: &crate::ct::client::ClientOptions,
    ) -> Result<CtSide, StartupError> {
        let key = match public_key {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|source| StartupError::CtLogKeyFile {
                        path: p.to_path_buf(),
                        source,
                    })?;
                Some(
                    LogPublicKey::from_pem(&text).map_err(|source| StartupError::CtLogKey {
                        path: p.to_path_buf(),
                        source,
                    })?,
                )
            }
            None => {
                tracing::warn!("no --ct-log-public-key-path: SCTs from {url} are not verified");
                None
            }
        };
        let verified = if key.is_some() {
            "SCTs verified"
        } else {
            "SCTs NOT verified"
        };
        let remote =
            Arc::new(RemoteLog::new(url, key, options.clone()).map_err(StartupError::RemoteLog)?);
        Ok(CtSide {
            submitter: Some(remote.clone() as Arc<dyn Submitter>),
            description: format!("remote {url} ({verified})"),
            embedded: None,
            remotes: vec![remote],
            plan: None,
            ready_quorum: 1,
        })
    }

    fn several(
        opts: &ServeOptions,
        s: &SeveralLogs,
        ca: &ca::CertificateAuthority,
        next: Option<&ca::CertificateAuthority>,
    ) -> Result<CtSide, StartupError> {
        let mut logs: Vec<Arc<dyn Submitter>> = Vec::new();
        let mut parts = Vec::new();
        let mut side = CtSide {
            submitter: None,
            plan: None,
            description: String::new(),
            embedded: None,
            remotes: Vec::new(),
            ready_quorum: 0,
        };
        if let Some(e) = &s.embedded {
            let one = CtSide::embedded(opts, e, ca, next)?;
            logs.extend(one.submitter);
            parts.push(one.description);
            side.embedded = one.embedded;
        }
        for r in &s.remotes {
            let one = CtSide::remote(&r.url, r.public_key.as_deref(), &r.options)?;
            logs.extend(one.submitter);
            parts.push(one.description);
            side.remotes.extend(one.remotes);
        }
        let n = logs.len();
        let min_scts = s.min_scts.unwrap_or(n);
        if min_scts == 0 || min_scts > n {
            return Err(StartupError::CtQuorum { min_scts, logs: n });
        }
        side.description = format!(
            "{n} logs, {min_scts} SCTs required, {} embedded: {}",
            match s.embed {
                crate::authority::EmbedScts::One => "one",
                crate::authority::EmbedScts::All => "all",
            },
            parts.join("; ")
        );
        side.ready_quorum = min_scts;
        side.plan = Some(crate::authority::CtPlan {
            logs,
            min_scts,
            embed: s.embed,
            grace: s.grace,
        });
        Ok(side)
    }

    fn embedded(
        opts: &ServeOptions,
        e: &EmbeddedLogOptions,
        ca: &ca::CertificateAuthority,
        next: Option<&ca::CertificateAuthority>,
    ) -> Result<CtSide, StartupError> {
        let mut log_opts = e.log.clone();
        log_opts.roots = vec![ca.root_der().to_vec()];
        // A rotation to a new root: the log accepts the next CA's chains too.
        if let Some(n) = next
            && n.root_der() != ca.root_der()
        {
            log_opts.roots.push(n.root_der().to_vec());
        }
        if let Some(p) = &e.extra_roots {
            log_opts.roots.extend(read_roots("--ctlog-extra-roots", p)?);
        }
        let dir = opts.data_dir.join("ctlog");
        let log = Arc::new(
            Log::open(&dir, log_opts).map_err(|source| StartupError::CtLog {
                dir: dir.clone(),
                source,
            })?,
        );
        let listener = bind(&opts.host, e.port)?;
        let url = format!("http://{}{}", local_addr(&listener)?, e.prefix);
        let description = format!(
            "embedded, {url} (log ID {}, key {}, {}, tree size {})",
            log.public_key().log_id_base64(),
            describe_log_key(&e.log, &dir.join("log-public-key.pem")),
            e.log.storage.describe(&dir),
            log.sth().tree_size
        );
        Ok(CtSide {
            submitter: Some(Arc::new(EmbeddedLog(log.clone())) as Arc<dyn Submitter>),
            description,
            embedded: Some(Embedded {
                log,
                listener,
                prefix: e.prefix.clone(),
            }),
            remotes: Vec::new(),
            plan: None,
            ready_quorum: 1,
        })
    }
}

impl Summary {
    fn new(identity: &IdentityState, provisioned: &provision::Provisioned, ct: &CtSide) -> Self {
        let ca = &provisioned.ca;
        Summary {
            ca: provisioned.description.clone(),
            chain_len: ca.chain_der().len(),
            root_fingerprint: hex::encode(crate::ct::sha256(ca.root_der())),
            ct: ct.description.clone(),
            ctlog_prefix: ct
                .embedded
                .as_ref()
                .map(|e| e.prefix.clone())
                .unwrap_or_default(),
            issuers: identity
                .config
                .issuers
                .iter()
                .chain(identity.config.meta_issuers.iter())
                .map(|i| format!("{} ({}, client-id {})", i.key, i.kind.as_str(), i.client_id))
                .collect(),
            new_root_key: provisioned.new_root_key.clone(),
        }
    }
}

/// Reloads on demand (SIGHUP) and when watched files change.
#[derive(Clone)]
pub struct ReloadHandle {
    reloader: Arc<Reloader>,
    authority: Arc<Authority>,
}

impl ReloadHandle {
    /// Reloads every configured component (files read and keys decrypted on the blocking
    /// pool); a new identity config is discovered in the background.
    pub async fn reload_all(&self) {
        self.reload(true).await;
    }

    async fn reload(&self, all: bool) {
        let r = self.reloader.clone();
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
            let authority = self.authority.clone();
            actix_web::rt::spawn(async move {
                authority.identity().verifier.warm_up().await;
            });
        }
    }
}

/// Checks watched files every `interval` and reloads what changed.
async fn watch_files(handle: ReloadHandle, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        handle.reload(false).await;
    }
}

/// How often a remote CT log is probed for readiness.
const CT_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// Whether a remote log answered its last probe.
type ProbeStatus = Arc<Mutex<Result<(), NotReady>>>;

/// Probes a remote log in the background; the status says whether it answered last time.
fn probe_remote(remote: Arc<RemoteLog>) -> ProbeStatus {
    let status = Arc::new(Mutex::new(Err(NotReady::NotProbed)));
    let out = status.clone();
    actix_web::rt::spawn(async move {
        loop {
            let r = remote.probe().await.map_err(|e| {
                tracing::warn!(error = %Chain(&e), "CT log probe failed");
                NotReady::RemoteLog(Arc::new(e))
            });
            *status.lock().unwrap_or_else(|p| p.into_inner()) = r;
            tokio::time::sleep(CT_PROBE_INTERVAL).await;
        }
    });
    out
}

/// Readiness: not shutting down, the CA can issue, the CT log takes submissions. The
/// reason for "not ready" is for the log, never for the client.
fn readiness(
    authority: Arc<Authority>,
    stopping: Arc<AtomicBool>,
    log: Option<Arc<Log>>,
    remotes: Vec<ProbeStatus>,
    quorum: usize,
) -> impl Fn() -> Result<(), NotReady> + Send + Sync + 'static {
    move || {
        let result = (|| {
            if stopping.load(Ordering::Relaxed) {
                return Err(NotReady::ShuttingDown);
            }
            authority.can_issue().map_err(NotReady::Ca)?;
            // Enough logs must take submissions for a certificate to get its SCTs.
            let mut healthy = 0;
            let mut first = None;
            if let Some(log) = &log {
                match log.health() {
                    Ok(()) => healthy += 1,
                    Err(e) => first = Some(NotReady::Log(e)),
                }
            }
            for status in &remotes {
                match status.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                    Ok(()) => healthy += 1,
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
            match first {
                Some(e) if healthy < quorum => Err(e),
                _ => Ok(()),
            }
        })();
        metrics::READY.set(i64::from(result.is_ok()));
        result
    }
}

/// A listener serving only `/metrics` (for `brevis monitor`): the server (not yet
/// spawned) and its bound address.
pub fn metrics_listener(
    host: &str,
    port: u16,
) -> Result<(actix_web::dev::Server, SocketAddr), StartupError> {
    let listener = bind(host, port)?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartupError::Serve {
            listener: "metrics",
            source,
        })?;
    Ok((metrics_server(listener)?, addr))
}

fn metrics_server(listener: TcpListener) -> Result<actix_web::dev::Server, StartupError> {
    Ok(
        HttpServer::new(|| App::new().configure(api::configure_metrics))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .map_err(|source| StartupError::Serve {
                listener: "metrics",
                source,
            })?
            .run(),
    )
}

fn ctlog_server(
    log: Arc<Log>,
    listener: TcpListener,
    prefix: String,
) -> Result<actix_web::dev::Server, StartupError> {
    let state = web::Data::new(api::ctlog::CtLogState {
        log,
        prefix: prefix.clone(),
    });
    Ok(HttpServer::new(move || {
        let prefix = prefix.clone();
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(api::ctlog::observe))
            .configure(move |cfg| api::ctlog::configure(&prefix)(cfg))
    })
    .workers(2)
    .shutdown_timeout(30)
    .disable_signals()
    .listen(listener)
    .map_err(|source| StartupError::Serve {
        listener: "CT log",
        source,
    })?
    .run())
}

/// `brevis ctlog serve`: a standalone log.
#[derive(Debug, Clone)]
pub struct CtLogServeOptions {
    /// Address the log's listener and the metrics listener bind to.
    pub host: String,
    /// Port of the log's listener (0 = any free port).
    pub port: u16,
    /// URL path prefix of the log's API ("" or "/name").
    pub prefix: String,
    /// Where the log keeps its key and database; created if missing.
    pub data_dir: PathBuf,
    /// PEM file of the root certificates whose chains the log accepts.
    pub roots: PathBuf,
    /// The log's settings; `roots` is replaced by the certificates read from `roots`.
    pub log: LogOptions,
    /// Port of a Prometheus metrics listener; `None`: no metrics listener.
    pub metrics_port: Option<u16>,
}

/// `brevis ctlog serve`, built and bound, not yet serving.
pub struct CtLogServer {
    log: Arc<Log>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    prefix: String,
    /// The log's listener.
    pub addr: SocketAddr,
    /// The metrics listener's address; `None` without `metrics_port`.
    pub metrics_addr: Option<SocketAddr>,
    /// The log's private key (`--key`, or the file `<data-dir>/log-key.pem`).
    pub key: String,
    /// Where the log is stored, for the banner (no password).
    pub storage: String,
}

impl CtLogServer {
    /// Opens the log and binds its listeners.
    pub fn build(opts: CtLogServeOptions) -> Result<CtLogServer, StartupError> {
        metrics::init();
        crate::ct::log::Rejection::register_metrics();
        let mut log_opts = opts.log.clone();
        log_opts.roots = read_roots("--roots", &opts.roots)?;
        let key = describe_log_key(&opts.log, &crate::ct::log::key_path(&opts.data_dir));
        let storage = log_opts.storage.describe(&opts.data_dir);
        let log = Arc::new(Log::open(&opts.data_dir, log_opts).map_err(|source| {
            StartupError::CtLog {
                dir: opts.data_dir.clone(),
                source,
            }
        })?);
        let listener = bind(&opts.host, opts.port)?;
        let metrics_listener = opts.metrics_port.map(|p| bind(&opts.host, p)).transpose()?;
        Ok(CtLogServer {
            addr: local_addr(&listener)?,
            metrics_addr: metrics_listener.as_ref().map(local_addr).transpose()?,
            log,
            listener,
            metrics_listener,
            prefix: opts.prefix,
            key,
            storage,
        })
    }

    /// The running log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The URL path prefix the log's API is served under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Serves until `shutdown` resolves; then drains and commits the log's queue.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), StartupError> {
        let mut metrics_handle = None;
        if let Some(l) = self.metrics_listener {
            let server = metrics_server(l)?;
            metrics_handle = Some(server.handle());
            actix_web::rt::spawn(server);
        }
        let server = ctlog_server(self.log.clone(), self.listener, self.prefix.clone())?;
        let handle = server.handle();
        let task = actix_web::rt::spawn(server);
        let log = self.log.clone();
        let stop = async {
            shutdown.await;
            log.hurry();
            handle.stop(true).await;
        };
        tokio::pin!(stop);
        let result = tokio::select! {
            r = task => r,
            _ = &mut stop => Ok(Ok(())),
        };
        if let Some(h) = metrics_handle {
            h.stop(true).await;
        }
        self.log.shutdown();
        let serve = |source| StartupError::Serve {
            listener: "CT log",
            source,
        };
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(serve(e)),
            Err(_) => Err(serve(std::io::Error::other(
                "the CT log server task failed",
            ))),
        }
    }
}
