//! The `brevis` command line.

use anyhow::{Context, Result, bail};
use brevis::config::{AlgorithmRegistry, algorithms::DEFAULT_NAMES};
use brevis::ct::client::ClientOptions;
use brevis::ct::log::{BatchConfig, LogOptions};
use brevis::oidc::VerifierOptions;
use brevis::serve::{
    self, CaChoice, CtChoice, CtLogServeOptions, EmbeddedLogOptions, ServeOptions,
};
use brevis::{ca, ratelimit};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "brevis",
    version,
    about = "A Fulcio-compatible short-lived code-signing CA"
)]
struct Cli {
    /// Log format: `text` (default) or `json`.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Fulcio's spelling: `dev` (text) or `prod` (JSON).
    #[arg(long = "log_type", alias = "log-type", global = true, value_parser = ["dev", "prod"])]
    log_type: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the CA (and its embedded CT log).
    Serve(Box<ServeArgs>),
    /// CA material.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Identity configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The Certificate Transparency log on its own.
    #[command(subcommand)]
    Ctlog(CtlogCommand),
    /// Print the Sigstore TrustedRoot (CA chain, CT log key, validity windows) that
    /// clients load to trust this deployment.
    TrustRoot(TrustArgs),
    /// Print a Sigstore SigningConfig (v0.2) pointing clients at this CA.
    SigningConfig(TrustArgs),
    /// Write trusted_root.json, signing_config.json and client_trust_config.json (the
    /// ClientTrustConfig sigstore-python's --trust-config loads) into a directory.
    TrustConfig(TrustConfigArgs),
    /// Client-side commands for smoke-testing a deployment.
    #[command(subcommand)]
    Cert(CertCommand),
}

#[derive(Subcommand)]
enum CertCommand {
    /// Request a certificate as a Sigstore client would, verify its chain and SCT, and
    /// write the key and the certificate.
    Request(CertRequestArgs),
    /// Print the identity, issuer, extensions and SCT status of a Fulcio or brevis
    /// certificate, verified against a TrustedRoot; exits non-zero if it does not verify.
    Verify(CertVerifyArgs),
}

#[derive(Args)]
struct CertRequestArgs {
    /// The CA's URL.
    #[arg(long, default_value = "http://localhost:8080")]
    url: String,
    /// The OIDC identity token.
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    /// A file holding the OIDC identity token.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Use this PEM private key (PKCS#8, SEC1 or PKCS#1) instead of generating one.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Key path: `public-key` (proof of possession, token in the body, as sigstore-js) or
    /// `csr` (PKCS#10, token in the Authorization header, as sigstore-python).
    #[arg(long, default_value = "public-key", value_parser = ["public-key", "csr"])]
    method: String,
    /// TrustedRoot (or ClientTrustConfig) to verify the chain and SCT against; default:
    /// the CA's /api/v2/trustBundle for the chain, SCTs unverified.
    #[arg(long)]
    trust_root: Option<PathBuf>,
    /// Where to write the certificate chain (leaf first).
    #[arg(long, default_value = "brevis-cert.pem")]
    out: PathBuf,
    /// Where to write a generated private key.
    #[arg(long, default_value = "brevis-key.pem")]
    out_key: PathBuf,
}

#[derive(Args)]
struct CertVerifyArgs {
    /// PEM certificate (a chain is fine: the first certificate is checked).
    cert: PathBuf,
    /// TrustedRoot (or ClientTrustConfig) JSON.
    #[arg(long)]
    trust_root: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TrustConfigArgs {
    /// Directory to write the three files into.
    #[arg(long)]
    out_dir: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Args, Clone)]
struct TrustArgs {
    /// brevis's data directory (for the CA chain and the embedded log's key).
    #[arg(long, default_value = "brevis-data")]
    data_dir: PathBuf,
    /// CA chain PEM (issuing certificate first); default: <data-dir>/ca/chain.pem.
    #[arg(long)]
    fileca_cert: Option<PathBuf>,
    /// The CA's public URL, as clients reach it.
    #[arg(long, default_value = "http://localhost:8080")]
    ca_url: String,
    /// The CT log's public URL.
    #[arg(long, default_value = "http://localhost:6962")]
    ctlog_url: String,
    /// CT log public key PEM; default: <data-dir>/ctlog/log-public-key.pem.
    #[arg(long)]
    ct_log_public_key_path: Option<PathBuf>,
    /// Start of the CT log key's validity (RFC 3339); default: when the embedded log was
    /// created.
    #[arg(long)]
    ct_log_start: Option<String>,
    /// A Rekor transparency log to include (clients such as sigstore-python need one in
    /// their trust material before they sign anything).
    #[arg(long, requires = "rekor_public_key_path")]
    rekor_url: Option<String>,
    /// The Rekor log's public key (PEM).
    #[arg(long)]
    rekor_public_key_path: Option<PathBuf>,
    /// Start of the Rekor key's validity (RFC 3339); default: the CT log's start.
    #[arg(long)]
    rekor_start: Option<String>,
    /// An OIDC provider to advertise in the SigningConfig.
    #[arg(long)]
    oidc_url: Option<String>,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum CtlogCommand {
    /// Run a standalone CT log (RFC 6962 and static-ct-api), for deployments that keep the
    /// log apart from the CA; point `brevis serve --ct-log-url` at it.
    Serve(CtlogServeArgs),
    /// Create a CT log key pair (log-key.pem, log-public-key.pem) in a directory, unless
    /// one is already there; prints the public key's path and the log ID either way.
    Key(CtlogKeyArgs),
}

#[derive(Args)]
struct CtlogKeyArgs {
    /// Directory for log-key.pem (0600) and log-public-key.pem; a log's data directory
    /// when the key lives with the log.
    #[arg(long)]
    out: PathBuf,
}

/// Batching and acceptance settings shared by the embedded and the standalone log.
#[derive(Args, Clone)]
struct LogArgs {
    /// Checkpoint origin (the log's public submission prefix without scheme). Fixed when
    /// the log is created.
    #[arg(long = "ctlog-origin", default_value = "localhost:6962")]
    origin: String,
    /// Longest a batch waits to fill before it commits. 0 commits as soon as the previous
    /// commit finishes (group commit).
    #[arg(long = "ctlog-batch-max-wait", default_value = "0ms", value_parser = parse_duration)]
    batch_max_wait: Duration,
    /// Most entries in one batch.
    #[arg(long = "ctlog-batch-max-size", default_value_t = 4096)]
    batch_max_size: usize,
    /// Most submissions waiting; beyond this the log answers 503 (with Retry-After).
    #[arg(long = "ctlog-max-pending", default_value_t = 65536)]
    max_pending: usize,
    /// Accept only leaves with extended key usage codeSigning (Sigstore's CT setting).
    #[arg(long = "ctlog-require-code-signing", num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    require_code_signing: bool,
}

impl LogArgs {
    fn options(&self) -> LogOptions {
        LogOptions {
            origin: self.origin.clone(),
            roots: Vec::new(),
            require_code_signing: self.require_code_signing,
            batch: BatchConfig {
                max_size: self.batch_max_size.max(1),
                max_wait: self.batch_max_wait,
                ..BatchConfig::default()
            },
            max_pending: self.max_pending.max(1),
            key_file: None,
            ..LogOptions::default()
        }
    }
}

#[derive(Args)]
struct CtlogServeArgs {
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    #[arg(long, default_value_t = 6962)]
    port: u16,
    /// URL path prefix of the log ("" or "/name", e.g. "/test" like Fulcio's default URL).
    #[arg(long, default_value = "")]
    prefix: String,
    /// Where the log keeps its key and database.
    #[arg(long, default_value = "brevis-ctlog")]
    data_dir: PathBuf,
    /// PEM file with the root certificates whose chains the log accepts.
    #[arg(long)]
    roots: PathBuf,
    /// Serve Prometheus metrics on this port too.
    #[arg(long)]
    metrics_port: Option<u16>,
    /// The log's private key (PEM PKCS#8, ECDSA P-256), e.g. from a mounted secret.
    /// Default: <data-dir>/log-key.pem, created on first start.
    #[arg(long)]
    key: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Subcommand)]
enum CaCommand {
    /// Write a new root + intermediate pair (chain.pem, intermediate-key.pem, root.pem,
    /// root-key.pem) for use with `--ca fileca`.
    Create(CaCreateArgs),
    /// Issue a new intermediate under an existing root (key rotation without changing what
    /// clients trust): writes chain.pem and intermediate-key.pem.
    Intermediate(CaIntermediateArgs),
}

#[derive(Args)]
struct CaIntermediateArgs {
    /// The root certificate (PEM), e.g. root.pem from `brevis ca create`.
    #[arg(long)]
    root_cert: PathBuf,
    /// The root's private key (PEM).
    #[arg(long)]
    root_key: PathBuf,
    /// Password of an encrypted root key.
    #[arg(long, env = "BREVIS_ROOT_KEY_PASSWORD", hide_env_values = true)]
    root_key_password: Option<String>,
    /// Directory to write chain.pem and intermediate-key.pem into (never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Encrypt the new key (PKCS#8, PBES2 with PBKDF2-SHA256 and AES-256-CBC).
    #[arg(long, env = "BREVIS_CA_KEY_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Organization (O) of the new certificate.
    #[arg(long, default_value = "brevis")]
    organization: String,
    /// Common-name prefix: the CN becomes "<prefix> intermediate".
    #[arg(long, default_value = "brevis")]
    common_name: String,
    /// Key type: ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-3072, ed25519.
    #[arg(long, default_value = "ecdsa-p256")]
    key_type: String,
    /// Lifetime in years (capped at the root's).
    #[arg(long, default_value_t = 5)]
    years: i64,
}

#[derive(Args)]
struct CaCreateArgs {
    /// Directory to write into (created if missing; existing files are never overwritten).
    #[arg(long, default_value = "brevis-ca")]
    out: PathBuf,
    /// Encrypt both private keys (PKCS#8, PBES2 with PBKDF2-SHA256 and AES-256-CBC).
    #[arg(long, env = "BREVIS_CA_KEY_PASSWORD")]
    password: Option<String>,
    /// Organization (O) of both certificates.
    #[arg(long, default_value = "brevis")]
    organization: String,
    /// Common-name prefix: CNs become "<prefix> root" and "<prefix> intermediate".
    #[arg(long, default_value = "brevis")]
    common_name: String,
    /// Root key type: ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-3072, ed25519.
    #[arg(long, default_value = "ecdsa-p384")]
    root_key_type: String,
    /// Intermediate (issuing) key type.
    #[arg(long, default_value = "ecdsa-p256")]
    intermediate_key_type: String,
    /// Root lifetime in years.
    #[arg(long, default_value_t = 10)]
    root_years: i64,
    /// Intermediate lifetime in years (capped at the root's).
    #[arg(long, default_value_t = 5)]
    intermediate_years: i64,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate an identity config file and print the effective issuer table.
    Check(ConfigCheckArgs),
}

#[derive(Args)]
struct ConfigCheckArgs {
    /// Fulcio-format identity config (YAML or JSON).
    file: PathBuf,
    /// Accept http:// issuer URLs (as `serve --insecure-http-issuers`).
    #[arg(long)]
    insecure_http_issuers: bool,
}

/// Fulcio's `serve` flags where they apply, plus brevis's own.
#[derive(Args)]
struct ServeArgs {
    /// Address of the HTTP API listener (Fulcio: --host / --http-host).
    #[arg(long, alias = "http-host", default_value = "0.0.0.0")]
    host: String,
    /// Port of the HTTP API listener (Fulcio: --port / --http-port).
    #[arg(long, alias = "http-port", default_value_t = 8080)]
    port: u16,
    /// Port of the Prometheus listener (path /metrics).
    #[arg(long, default_value_t = 2112)]
    metrics_port: u16,
    /// Fulcio-format identity config (YAML or JSON). Without it, Fulcio's built-in issuer
    /// set is trusted (sigstore OAuth proxy, Google, GitHub Actions).
    #[arg(long)]
    config_path: Option<PathBuf>,
    /// CA backend: fileca or ephemeralca. Default: fileca on the data directory's CA,
    /// created on first start.
    #[arg(long, value_parser = ["fileca", "ephemeralca"], default_value = "fileca")]
    ca: String,
    /// PEM chain for fileca: issuing certificate first, root last.
    #[arg(long)]
    fileca_cert: Option<PathBuf>,
    /// PEM private key for fileca (PKCS#8, SEC1, PKCS#1, encrypted PKCS#8, or legacy
    /// OpenSSL-encrypted PEM).
    #[arg(long)]
    fileca_key: Option<PathBuf>,
    /// Password of an encrypted fileca key.
    #[arg(long, env = "BREVIS_FILECA_KEY_PASSWD", hide_env_values = true)]
    fileca_key_passwd: Option<String>,
    /// Reload the fileca chain and key when they change (Fulcio default: true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    fileca_watch: bool,
    /// Remote CT log base URL. Without it brevis runs its embedded log. Empty
    /// (--ct-log-url "") disables CT: responses then carry a detached, empty SCT, which real
    /// Sigstore clients refuse.
    #[arg(long)]
    ct_log_url: Option<String>,
    /// PEM public key the remote CT log's SCTs must verify with.
    #[arg(long)]
    ct_log_public_key_path: Option<PathBuf>,
    /// Longest one submission to the remote CT log may take, retries and waits included;
    /// past it the request fails (no certificate leaves the CA unlogged).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    ct_log_timeout: Duration,
    /// Host header to send to the remote CT log (Fulcio's --ct-log-origin).
    #[arg(long)]
    ct_log_origin: Option<String>,
    /// Extra CA certificates (PEM) for the remote CT log's TLS.
    #[arg(long = "ct-log.tls-ca-cert")]
    ct_log_tls_ca_cert: Option<PathBuf>,
    /// Comma-separated allow-list of client key/hash pairs.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_NAMES.map(String::from))]
    client_signing_algorithms: Vec<String>,
    /// Idle keep-alive timeout of HTTP connections (Fulcio: 30s).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    idle_connection_timeout: Duration,
    /// Fulcio's gRPC listener has no counterpart in brevis; accepted and ignored so Fulcio
    /// command lines keep working.
    #[arg(long, hide = true)]
    grpc_host: Option<String>,
    #[arg(long, hide = true)]
    grpc_port: Option<u16>,
    // ---- brevis-only ----
    /// Where brevis keeps its CA (and CT log) state.
    #[arg(long, default_value = "brevis-data")]
    data_dir: PathBuf,
    /// Allow http:// OIDC issuers (local testing only; tokens then travel unprotected).
    #[arg(long)]
    insecure_http_issuers: bool,
    /// Allowed clock skew for token nbf/iat (exp gets none).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    oidc_clock_skew: Duration,
    /// Timeout of each OIDC discovery or JWKS request.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    oidc_fetch_timeout: Duration,
    /// Minimum time between JWKS refetches caused by unknown key ids, per issuer.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    oidc_jwks_refresh_interval: Duration,
    /// New issuers admitted per meta-issuer pattern, as N/s, N/m or N/h (burst N): a
    /// token naming an issuer under a pattern that no token verified for yet makes brevis
    /// fetch from that issuer, so beyond this rate such tokens are refused unfetched.
    #[arg(long, default_value = "10/m")]
    meta_issuer_admission_rate: String,
    /// Time allowed for a client to send a request's headers.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// HTTP worker threads (default: one per CPU core).
    #[arg(long)]
    workers: Option<usize>,
    /// Port of the embedded CT log's listener (monitors read the log there).
    #[arg(long, default_value_t = 6962)]
    ctlog_port: u16,
    /// URL path prefix of the embedded CT log ("" or "/name").
    #[arg(long, default_value = "")]
    ctlog_prefix: String,
    /// PEM file of extra roots the embedded log accepts besides the CA's own.
    #[arg(long)]
    ctlog_extra_roots: Option<PathBuf>,
    #[command(flatten)]
    ctlog: LogArgs,
    /// TLS certificate chain (PEM, leaf first) for the API listener; with --tls-key the API
    /// speaks HTTPS only. Reloaded with the rest (SIGHUP, file change).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, SEC1 or PKCS#1) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How often the identity config, fileca and TLS files are checked for changes
    /// (content, not mtime); 0 turns watching off. SIGHUP always reloads everything.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    watch_interval: Duration,
    /// Reload the identity config (--config-path) when it changes.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    config_watch: bool,
    /// Time requests in flight get to finish after SIGTERM/SIGINT before connections are
    /// closed; the CT log's pending batch is committed either way.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    shutdown_timeout: Duration,
    /// Longest a signing request may take once its body arrived (token verification, CT
    /// log, signing); past it the client gets 503 and no certificate, and may retry.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    issuance_timeout: Duration,
    /// Time allowed to receive a request body after its headers (408 after it).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    body_timeout: Duration,
    /// Concurrent connections per worker thread (actix default: 25000).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Signing requests allowed per client address, as N/s, N/m or N/h (off by default);
    /// over the limit: 429 with Retry-After.
    #[arg(long)]
    rate_limit_client: Option<String>,
    /// Bucket size of --rate-limit-client: requests a client may send at once.
    #[arg(long, default_value_t = 10)]
    rate_limit_client_burst: u32,
    /// Certificates allowed per identity (issuer + SAN), as N/s, N/m or N/h (off by
    /// default); checked after the token verified.
    #[arg(long)]
    rate_limit_identity: Option<String>,
    /// Bucket size of --rate-limit-identity.
    #[arg(long, default_value_t = 5)]
    rate_limit_identity_burst: u32,
    /// IPv6 clients share one --rate-limit-client bucket per network of this many bits
    /// (64: a /64, what one subscriber is usually given).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u8).range(0..=128))]
    rate_limit_ipv6_prefix: u8,
    /// Take the client address for --rate-limit-client from this header (the last entry
    /// of a list) instead of the TCP peer. Only behind a proxy that sets it.
    #[arg(long)]
    client_ip_header: Option<String>,
}

/// `N/s`, `N/m` or `N/h` with a burst of N (at least 1).
fn admission_rate(spec: &str) -> Result<ratelimit::Rate> {
    let n: f64 = spec
        .split_once('/')
        .and_then(|(n, _)| n.trim().parse().ok())
        .with_context(|| format!("{spec:?}: expected N/s, N/m or N/h"))?;
    ratelimit::Rate::parse(spec, n.ceil().clamp(1.0, 1e6) as u32).map_err(anyhow::Error::msg)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let json = cli.log_format == "json" || cli.log_type.as_deref() == Some("prod");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// mimalloc instead of glibc malloc: issuance allocates many short-lived buffers across
/// worker threads, and glibc's arenas cost measurably more CPU there (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(&cli);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli.command {
        Command::Serve(args) => serve_command(*args),
        Command::Ca(CaCommand::Create(args)) => ca_create(args),
        Command::Ca(CaCommand::Intermediate(args)) => ca_intermediate(args),
        Command::Config(ConfigCommand::Check(args)) => config_check(args),
        Command::Ctlog(CtlogCommand::Serve(args)) => ctlog_serve(args),
        Command::Ctlog(CtlogCommand::Key(args)) => ctlog_key(args),
        Command::TrustRoot(args) => trust_root(args),
        Command::SigningConfig(args) => signing_config(args),
        Command::TrustConfig(args) => trust_config(args),
        Command::Cert(CertCommand::Request(args)) => cert_request(args),
        Command::Cert(CertCommand::Verify(args)) => cert_verify(args),
    }
}

fn parse_rfc3339_ms(flag: &str, t: &str) -> Result<u64> {
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{flag} {t:?}"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as u64)
}

/// The TrustedRoot and SigningConfig JSON for these arguments.
fn trust_material(args: &TrustArgs) -> Result<(serde_json::Value, serde_json::Value)> {
    let chain_path = args
        .fileca_cert
        .clone()
        .unwrap_or_else(|| ca::DataDirFiles::new(&args.data_dir).chain);
    let chain_text = std::fs::read_to_string(&chain_path)
        .with_context(|| format!("reading the CA chain {}", chain_path.display()))?;
    let chain = ca::chain::parse_pem_chain(&chain_text).map_err(anyhow::Error::msg)?;
    let log_dir = args.data_dir.join("ctlog");
    let key_path = args
        .ct_log_public_key_path
        .clone()
        .unwrap_or_else(|| log_dir.join("log-public-key.pem"));
    let key_text = std::fs::read_to_string(&key_path)
        .with_context(|| format!("reading the CT log key {}", key_path.display()))?;
    let key = brevis::ct::LogPublicKey::from_pem(&key_text).map_err(anyhow::Error::msg)?;
    let start_ms = match &args.ct_log_start {
        Some(t) => parse_rfc3339_ms("--ct-log-start", t)?,
        None => brevis::ct::log::created_millis(&log_dir)
            .map_err(anyhow::Error::msg)
            .context("finding when the CT log was created (or pass --ct-log-start)")?,
    };
    let mut tlogs = Vec::new();
    if let (Some(url), Some(p)) = (&args.rekor_url, &args.rekor_public_key_path) {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("--rekor-public-key-path {}", p.display()))?;
        let block = brevis::model::pem::parse_first(&text).map_err(anyhow::Error::msg)?;
        let rekor_start = match &args.rekor_start {
            Some(t) => parse_rfc3339_ms("--rekor-start", t)?,
            None => start_ms,
        };
        tlogs.push(
            brevis::trust::tlog_json(&brevis::trust::TlogEntry {
                base_url: url.clone(),
                spki: block.der,
                start_ms: rekor_start,
            })
            .map_err(anyhow::Error::msg)?,
        );
    }
    let root = brevis::trust::trusted_root(
        &[brevis::trust::CaEntry {
            uri: args.ca_url.clone(),
            chain,
        }],
        &[brevis::trust::CtLogEntry {
            base_url: args.ctlog_url.clone(),
            key,
            start_ms,
        }],
        tlogs,
    )
    .map_err(anyhow::Error::msg)?;
    let signing = brevis::trust::signing_config(
        &args.ca_url,
        args.rekor_url.as_deref(),
        args.oidc_url.as_deref(),
        None,
        start_ms,
    );
    Ok((root, signing))
}

fn emit(value: &serde_json::Value, out: &Option<PathBuf>) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

fn trust_root(args: TrustArgs) -> Result<()> {
    let (root, _) = trust_material(&args)?;
    emit(&root, &args.out)
}

fn signing_config(args: TrustArgs) -> Result<()> {
    let (_, signing) = trust_material(&args)?;
    emit(&signing, &args.out)
}

fn trust_config(args: TrustConfigArgs) -> Result<()> {
    let (root, signing) = trust_material(&args.trust)?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let ctc = brevis::trust::client_trust_config(root.clone(), signing.clone());
    for (name, v) in [
        ("trusted_root.json", &root),
        ("signing_config.json", &signing),
        ("client_trust_config.json", &ctc),
    ] {
        let p = args.out_dir.join(name);
        emit(v, &Some(p.clone()))?;
        println!("wrote {}", p.display());
    }
    if args.trust.rekor_url.is_none() {
        println!(
            "note: no --rekor-url: sigstore-python refuses a signing config without a Rekor log"
        );
    }
    Ok(())
}

fn cert_request(args: CertRequestArgs) -> Result<()> {
    let token = match (args.token, args.token_file) {
        (Some(t), _) => t,
        (None, Some(p)) => std::fs::read_to_string(&p)
            .with_context(|| format!("reading {}", p.display()))?
            .trim()
            .to_string(),
        (None, None) => bail!("give the identity token with --token or --token-file"),
    };
    let key = match &args.key {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            ca::keyfile::load(&text, None).map_err(anyhow::Error::msg)?
        }
        None => brevis::client::new_key().map_err(anyhow::Error::msg)?,
    };
    let method = if args.method == "csr" {
        brevis::client::KeyPath::Csr
    } else {
        brevis::client::KeyPath::PublicKey
    };
    let chain = actix_web::rt::System::new()
        .block_on(brevis::client::request(&args.url, &token, &key, method))
        .map_err(anyhow::Error::msg)?;
    let leaf = brevis::model::pem::parse_first(chain.first().context("empty chain")?)
        .map_err(anyhow::Error::msg)?
        .der;
    let trust = match &args.trust_root {
        Some(p) => brevis::trust::parse_trust_root(&std::fs::read_to_string(p)?)
            .map_err(anyhow::Error::msg)?,
        None => brevis::trust::TrustView {
            ca_certs: chain
                .iter()
                .skip(1)
                .map(|c| brevis::model::pem::parse_first(c).map(|b| b.der))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?,
            ctlogs: Vec::new(),
        },
    };
    let report = brevis::client::inspect(&leaf, &trust).map_err(anyhow::Error::msg)?;
    std::fs::write(&args.out, chain.concat())
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    if args.key.is_none() {
        let pkcs8 = key.to_pkcs8().map_err(anyhow::Error::msg)?;
        ca::write_file(
            &args.out_key,
            &brevis::model::pem::encode("PRIVATE KEY", &pkcs8),
            true,
        )
        .map_err(anyhow::Error::msg)?;
        println!("wrote {}", args.out_key.display());
    }
    print_report(&report);
    if let Err(e) = &report.chain {
        bail!("the chain does not verify: {e}");
    }
    if args.trust_root.is_some() && !report.ok() {
        bail!("the certificate does not verify against the trusted root");
    }
    Ok(())
}

fn print_report(r: &brevis::client::Report) {
    println!("serial:     {}", r.serial);
    println!("identity:   {}", r.sans.join(", "));
    println!("issuer:     {}", r.issuer.as_deref().unwrap_or("(none)"));
    println!(
        "valid:      {} .. {}",
        brevis::trust::rfc3339_millis(r.not_before as u64 * 1000),
        brevis::trust::rfc3339_millis(r.not_after as u64 * 1000)
    );
    match &r.chain {
        Ok(p) => println!("chain:      verified ({})", p.join(" <- ")),
        Err(e) => println!("chain:      NOT VERIFIED: {e}"),
    }
    println!(
        "key usage:  {}",
        if r.key_usage_ok {
            "digitalSignature, codeSigning"
        } else {
            "NOT a code-signing certificate"
        }
    );
    if r.scts.is_empty() {
        println!("SCT:        none verified (no embedded SCT, or no trusted CT log key)");
    }
    for s in &r.scts {
        println!(
            "SCT:        {} by {} at {}{}",
            if s.verified {
                "verified"
            } else {
                "NOT VERIFIED"
            },
            s.log.as_deref().unwrap_or("an unknown log"),
            brevis::trust::rfc3339_millis(s.timestamp_ms),
            s.leaf_index
                .map(|i| format!(", leaf index {i}"))
                .unwrap_or_default()
        );
    }
    for (k, v) in &r.extensions {
        println!("  {k:<45} {v}");
    }
}

fn cert_verify(args: CertVerifyArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.cert)
        .with_context(|| format!("reading {}", args.cert.display()))?;
    let leaf = brevis::model::pem::parse_first(&text)
        .map_err(anyhow::Error::msg)?
        .der;
    let trust_text = std::fs::read_to_string(&args.trust_root)
        .with_context(|| format!("reading {}", args.trust_root.display()))?;
    let trust = brevis::trust::parse_trust_root(&trust_text).map_err(anyhow::Error::msg)?;
    let report = brevis::client::inspect(&leaf, &trust).map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print_report(&report);
    }
    if !report.ok() {
        std::process::exit(1);
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<String> {
    let p = prefix.trim_end_matches('/');
    if !p.is_empty() && !p.starts_with('/') {
        bail!("a URL prefix must be empty or start with '/': {prefix:?}");
    }
    Ok(p.to_string())
}

fn ctlog_key(args: CtlogKeyArgs) -> Result<()> {
    let signer = brevis::ct::log::load_or_create_key(&args.out).map_err(anyhow::Error::msg)?;
    let key = brevis::ct::LogPublicKey::from_spki_der(ca::Signer::public_key_spki(&signer))
        .map_err(anyhow::Error::msg)?;
    println!("{}", args.out.join("log-public-key.pem").display());
    println!(
        "log ID {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.log_id())
    );
    Ok(())
}

fn ctlog_serve(args: CtlogServeArgs) -> Result<()> {
    let opts = CtLogServeOptions {
        host: args.host,
        port: args.port,
        prefix: check_prefix(&args.prefix)?,
        data_dir: args.data_dir,
        roots: args.roots,
        log: LogOptions {
            key_file: args.key,
            ..args.log.options()
        },
        metrics_port: args.metrics_port,
    };
    actix_web::rt::System::new().block_on(serve::run_ctlog(opts))?;
    Ok(())
}

fn serve_command(args: ServeArgs) -> Result<()> {
    if args.grpc_host.is_some() || args.grpc_port.is_some() {
        tracing::warn!("--grpc-host/--grpc-port ignored: brevis serves the REST API only");
    }
    if !args.fileca_watch {
        tracing::info!("--fileca-watch=false: CA files reload on SIGHUP only");
    }
    let rate = |flag: &str, spec: &Option<String>, burst: u32| {
        spec.as_deref()
            .map(|s| ratelimit::Rate::parse(s, burst).map_err(anyhow::Error::msg))
            .transpose()
            .with_context(|| flag.to_string())
    };
    let protection = serve::Protection {
        per_client: rate(
            "--rate-limit-client",
            &args.rate_limit_client,
            args.rate_limit_client_burst,
        )?,
        per_identity: rate(
            "--rate-limit-identity",
            &args.rate_limit_identity,
            args.rate_limit_identity_burst,
        )?,
        client_ip_header: args.client_ip_header.clone(),
        body_timeout: args.body_timeout,
        issuance_timeout: args.issuance_timeout,
        ipv6_prefix: args.rate_limit_ipv6_prefix,
        max_connections: args.max_connections,
        ..serve::Protection::default()
    };
    let reload = serve::ReloadOptions {
        watch_interval: args.watch_interval,
        config_watch: args.config_watch,
        fileca_watch: args.fileca_watch,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(brevis::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let algorithms =
        AlgorithmRegistry::parse(args.client_signing_algorithms.iter().map(String::as_str))
            .map_err(anyhow::Error::msg)
            .context("--client-signing-algorithms")?;
    let ca = match args.ca.as_str() {
        "ephemeralca" => CaChoice::Ephemeral,
        _ => CaChoice::File {
            cert: args.fileca_cert,
            key: args.fileca_key,
            password: args.fileca_key_passwd,
        },
    };
    let ct = match args.ct_log_url.as_deref() {
        Some("") => CtChoice::Disabled,
        Some(url) => CtChoice::Remote {
            url: url.to_string(),
            public_key: args.ct_log_public_key_path,
            options: ClientOptions {
                host: args.ct_log_origin,
                tls_ca: args
                    .ct_log_tls_ca_cert
                    .map(|p| {
                        std::fs::read_to_string(&p)
                            .with_context(|| format!("--ct-log.tls-ca-cert {}", p.display()))
                    })
                    .transpose()?,
                deadline: args.ct_log_timeout,
                attempt_timeout: args
                    .ct_log_timeout
                    .min(ClientOptions::default().attempt_timeout),
                ..ClientOptions::default()
            },
        },
        None => CtChoice::Embedded(EmbeddedLogOptions {
            port: args.ctlog_port,
            prefix: check_prefix(&args.ctlog_prefix)?,
            log: args.ctlog.options(),
            extra_roots: args.ctlog_extra_roots,
        }),
    };
    let opts = ServeOptions {
        host: args.host,
        port: args.port,
        metrics_port: args.metrics_port,
        data_dir: args.data_dir,
        config_path: args.config_path,
        ca,
        ct,
        algorithms,
        insecure_http_issuers: args.insecure_http_issuers,
        oidc: VerifierOptions {
            clock_skew: args.oidc_clock_skew,
            jwks_refresh_interval: args.oidc_jwks_refresh_interval,
            fetch_timeout: args.oidc_fetch_timeout,
            meta_admission: admission_rate(&args.meta_issuer_admission_rate)
                .context("--meta-issuer-admission-rate")?,
        },
        idle_timeout: args.idle_connection_timeout,
        request_timeout: args.request_timeout,
        workers: args.workers,
        protection,
        reload,
        tls,
        shutdown_timeout: args.shutdown_timeout,
    };
    actix_web::rt::System::new().block_on(serve::run(opts))?;
    Ok(())
}

fn ca_intermediate(args: CaIntermediateArgs) -> Result<()> {
    let algorithm = ca::SigningAlgorithm::from_name(&args.key_type).with_context(|| {
        format!(
            "unknown key type {:?} (ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-3072, ed25519)",
            args.key_type
        )
    })?;
    let spec = ca::create::PairSpec {
        organization: args.organization,
        common_name_prefix: args.common_name,
        intermediate_algorithm: algorithm,
        intermediate_years: args.years,
        ..ca::create::PairSpec::default()
    };
    let chain = args.out.join("chain.pem");
    let key = args.out.join("intermediate-key.pem");
    ca::write_intermediate(
        &args.root_cert,
        &args.root_key,
        args.root_key_password.as_deref(),
        &chain,
        &key,
        &spec,
        args.password.as_deref(),
        std::time::SystemTime::now(),
    )?;
    println!("wrote {}", chain.display());
    println!("wrote {}", key.display());
    Ok(())
}

fn ca_create(args: CaCreateArgs) -> Result<()> {
    let alg = |name: &str| {
        ca::SigningAlgorithm::from_name(name).with_context(|| {
            format!(
                "unknown key type {name:?} (ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-3072, ed25519)"
            )
        })
    };
    let spec = ca::create::PairSpec {
        organization: args.organization,
        common_name_prefix: args.common_name,
        root_algorithm: alg(&args.root_key_type)?,
        intermediate_algorithm: alg(&args.intermediate_key_type)?,
        root_years: args.root_years,
        intermediate_years: args.intermediate_years,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let files = ca::DataDirFiles {
        chain: args.out.join("chain.pem"),
        key: args.out.join("intermediate-key.pem"),
        root: args.out.join("root.pem"),
        root_key: args.out.join("root-key.pem"),
    };
    let written = ca::write_pair(
        &files,
        &spec,
        args.password.as_deref(),
        std::time::SystemTime::now(),
    )?;
    println!("wrote {}", written.chain.display());
    println!("wrote {}", written.key.display());
    println!("wrote {}", written.root.display());
    println!("wrote {}", written.root_key.display());
    println!();
    println!("serve with:");
    println!(
        "  brevis serve --ca fileca --fileca-cert {} --fileca-key {}{}",
        written.chain.display(),
        written.key.display(),
        if args.password.is_some() {
            " --fileca-key-passwd <password>"
        } else {
            ""
        }
    );
    println!(
        "keep {} offline: it is only needed to issue a new intermediate",
        written.root_key.display()
    );
    Ok(())
}

fn config_check(args: ConfigCheckArgs) -> Result<()> {
    let cfg = serve::load_identity_config(Some(&args.file), args.insecure_http_issuers)?;
    let identities = brevis::identity::Identities::new(&cfg).map_err(anyhow::Error::msg)?;
    for w in &cfg.warnings {
        println!("warning: {w}");
    }
    println!("{}: OK", args.file.display());
    let print = |i: &brevis::config::IssuerConfig, pattern: bool| {
        let provider = i
            .ci_provider
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        println!(
            "\n{}{}  type={}{provider} client-id={} challenge={}",
            i.key,
            if pattern { " (pattern)" } else { "" },
            i.kind.as_str(),
            i.client_id,
            i.effective_challenge_claim()
        );
        for (field, source) in brevis::identity::describe(&identities, i) {
            println!("    {field:<44} {source}");
        }
    };
    for i in &cfg.issuers {
        print(i, false);
    }
    for i in &cfg.meta_issuers {
        print(i, true);
    }
    Ok(())
}
