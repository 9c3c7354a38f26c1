//! `brevis serve`: load and validate everything, then run the listeners. The composition
//! root: the only place that knows how the components are put together.

use crate::api::{self, AppState};
use crate::authority::{Authority, IdentityState};
use crate::ca::{self, CertificateAuthority};
use crate::config::{self, AlgorithmRegistry, IdentityConfig};
use crate::ct::Submitter;
use crate::metrics;
use crate::model::{Clock, SystemClock, pem};
use crate::oidc::VerifierOptions;
use actix_web::{App, HttpServer, middleware::from_fn, web};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    pub ct: Option<CtChoice>,
    pub algorithms: AlgorithmRegistry,
    pub insecure_http_issuers: bool,
    pub oidc: VerifierOptions,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub workers: Option<usize>,
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

/// Loads or creates the CA.
pub fn load_ca(
    choice: &CaChoice,
    data_dir: &Path,
    now: SystemTime,
) -> Result<(CertificateAuthority, String), StartupError> {
    match choice {
        CaChoice::Ephemeral => {
            let ca = CertificateAuthority::ephemeral(now)
                .map_err(|e| fail(format!("ephemeral CA: {e}")))?;
            Ok((
                ca,
                "ephemeralca (in memory; a new root at every start)".into(),
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
            Ok((ca, format!("fileca, chain {}", cert_path.display())))
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
    let (ca, ca_description) = load_ca(&opts.ca, &opts.data_dir, now)?;

    let (ct, ct_description): (Option<Arc<dyn Submitter>>, String) = match &opts.ct {
        Some(CtChoice::Disabled) => (
            None,
            "disabled (--ct-log-url \"\"): certificates carry no SCT; Sigstore clients will refuse them".into(),
        ),
        None => {
            return Err(fail(
                "no CT log configured: this build needs --ct-log-url \"\" to run without one",
            ));
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
    let authority = Arc::new(Authority::new(
        identity,
        ca,
        opts.algorithms.clone(),
        ct,
        clock.clone(),
    ));

    let api_addr = display_addr(&api_listener);
    let metrics_addr = display_addr(&metrics_listener);
    println!("brevis {}", env!("CARGO_PKG_VERSION"));
    println!("  API listening on http://{api_addr}");
    println!("  metrics on http://{metrics_addr}/metrics");
    println!("  CA: {ca_description} ({chain_len} certificates, root SHA-256 {root_fp})");
    println!("  CT log: {ct_description}");
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

    let state = web::Data::new(AppState {
        authority: authority.clone(),
        readiness: Arc::new(|| Ok(())),
    });
    let mut api_server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(api::observe))
            .configure(api::configure)
    })
    .keep_alive(opts.idle_timeout)
    .client_request_timeout(opts.request_timeout)
    .shutdown_timeout(30);
    if let Some(w) = opts.workers {
        api_server = api_server.workers(w);
    }
    let api_server = api_server
        .listen(api_listener)
        .map_err(|e| fail(format!("API listener: {e}")))?
        .run();
    let metrics_server = HttpServer::new(|| App::new().configure(api::configure_metrics))
        .workers(1)
        .listen(metrics_listener)
        .map_err(|e| fail(format!("metrics listener: {e}")))?
        .run();
    let metrics_handle = metrics_server.handle();
    actix_web::rt::spawn(metrics_server);
    let result = api_server.await;
    metrics_handle.stop(true).await;
    result.map_err(|e| fail(format!("server error: {e}")))
}

/// Chain PEM for printing or writing (issuing certificate first).
pub fn chain_text(ca: &CertificateAuthority) -> String {
    ca.chain_der().iter().map(|c| pem::certificate(c)).collect()
}
