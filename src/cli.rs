//! The command-line grammar: every closed choice is a [`ValueEnum`], and `serve`'s flags
//! are grouped into sections that mirror the library's option types (`HttpOptions`,
//! `Protection`, `ReloadOptions`, `CaChoice`, `CtChoice`, `VerifierOptions`), each
//! converted in one place.

use anyhow::{Context, Result, bail};
use brevis::ca::SigningAlgorithm;
use brevis::ca::provision::{CaChoice, ChainSource};
use brevis::config::{AlgorithmRegistry, algorithms::DEFAULT_NAMES};
use brevis::ct::checkpoint::{GetSth, SignedTreeHead};
use brevis::ct::client::ClientOptions;
use brevis::ct::log::store::postgres::PgOptions;
use brevis::ct::log::{BatchConfig, LogOptions, Storage};
use brevis::oidc::VerifierOptions;
use brevis::ratelimit::Rate;
use brevis::server::{
    CtChoice, CtLogServeOptions, EmbeddedLogOptions, GrpcServe, HttpOptions, NextCa, Protection,
    ReloadOptions, RemoteLogSpec, ServeOptions, SeveralLogs,
};
use brevis::signers::pkcs11::Pkcs11Config;
use brevis::signers::{KeyRef, RemoteOptions};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "brevis",
    version,
    about = "A Fulcio-compatible short-lived code-signing CA"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Fulcio's spelling: `dev` (text) or `prod` (JSON).
    #[arg(long = "log_type", alias = "log-type", global = true, value_enum)]
    pub log_type: Option<LogType>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn json_logs(&self) -> bool {
        self.log_format == LogFormat::Json || self.log_type == Some(LogType::Prod)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogType {
    Dev,
    Prod,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Follow a CT log: verify every tree head and report certificates matching a watch
    /// file (events as JSON lines on stdout).
    Monitor(Box<MonitorArgs>),
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

// ---- serve ---------------------------------------------------------------------------------

/// Fulcio's `serve` flags where they apply, plus brevis's own, in sections.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub ca: CaArgs,
    #[command(flatten)]
    pub ct: CtArgs,
    #[command(flatten)]
    pub oidc: OidcArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub protection: ProtectionArgs,
    #[command(flatten)]
    pub reload: ReloadArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub custody: CustodyArgs,
    /// Comma-separated allow-list of client key/hash pairs.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_NAMES.map(String::from))]
    pub client_signing_algorithms: Vec<String>,
    #[command(flatten)]
    pub grpc: GrpcArgs,
}

/// Fulcio's gRPC API (`dev.sigstore.fulcio.v2.CA`).
#[derive(Args)]
#[command(next_help_heading = "gRPC")]
pub struct GrpcArgs {
    /// Serve Fulcio's gRPC API on this port too (0: any free port); without it brevis
    /// serves REST only.
    #[arg(long)]
    pub grpc_port: Option<u16>,
    /// Address of the gRPC listener (default: --host).
    #[arg(long)]
    pub grpc_host: Option<String>,
    /// PEM certificate chain for TLS on the gRPC listener (ALPN h2); plaintext HTTP/2
    /// without it.
    #[arg(long, requires = "grpc_tls_key")]
    pub grpc_tls_certificate: Option<PathBuf>,
    /// PEM private key for --grpc-tls-certificate.
    #[arg(long, requires = "grpc_tls_certificate")]
    pub grpc_tls_key: Option<PathBuf>,
    /// Also serve gRPC on the API port: connections that open with the HTTP/2 preface (or,
    /// under TLS, whose ClientHello offers only ALPN h2) go to gRPC, the rest to REST.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub grpc_on_api_port: bool,
}

impl GrpcArgs {
    fn options(&self) -> Option<GrpcServe> {
        let port = self.grpc_port?;
        Some(GrpcServe {
            host: self.grpc_host.clone(),
            port,
            tls: match (&self.grpc_tls_certificate, &self.grpc_tls_key) {
                (Some(cert), Some(key)) => Some(brevis::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
        })
    }
}

impl ServeArgs {
    /// The library's options for these flags.
    pub fn options(self) -> Result<ServeOptions> {
        let algorithms =
            AlgorithmRegistry::parse(self.client_signing_algorithms.iter().map(String::as_str))
                .context("--client-signing-algorithms")?;
        if !self.ca.fileca_watch {
            tracing::info!("--fileca-watch=false: CA files reload on SIGHUP only");
        }
        Ok(ServeOptions {
            host: self.listen.host,
            port: self.listen.port,
            metrics_port: self.listen.metrics_port,
            data_dir: self.listen.data_dir,
            config_path: self.listen.config_path,
            issuance_policy: self.listen.issuance_policy,
            insecure_http_issuers: self.listen.insecure_http_issuers,
            reload: ReloadOptions {
                watch_interval: self.reload.watch_interval,
                config_watch: self.reload.config_watch,
                fileca_watch: self.ca.fileca_watch,
            },
            next_ca: self.ca.next(&self.custody)?,
            ca: self.ca.choice(&self.custody)?,
            ct: self.ct.choice(&self.custody)?,
            algorithms,
            oidc: self.oidc.options()?,
            http: self.http.options(),
            protection: self.protection.options()?,
            tls: self.tls.files(),
            grpc: self.grpc.options(),
            grpc_on_api_port: self.grpc.grpc_on_api_port,
        })
    }
}

/// Where brevis listens and what it reads at start.
#[derive(Args)]
#[command(next_help_heading = "Listeners and configuration")]
pub struct ListenArgs {
    /// Address of the HTTP API listener (Fulcio: --host / --http-host).
    #[arg(long, alias = "http-host", default_value = "0.0.0.0")]
    pub host: String,
    /// Port of the HTTP API listener (Fulcio: --port / --http-port).
    #[arg(long, alias = "http-port", default_value_t = 8080)]
    pub port: u16,
    /// Port of the Prometheus listener (path /metrics).
    #[arg(long, default_value_t = 2112)]
    pub metrics_port: u16,
    /// Fulcio-format identity config (YAML or JSON). Without it, Fulcio's built-in issuer
    /// set is trusted (sigstore OAuth proxy, Google, GitHub Actions).
    #[arg(long)]
    pub config_path: Option<PathBuf>,
    /// Issuance policy (YAML or JSON): which verified tokens of each issuer may get a
    /// certificate, by their claims (docs/configuration.md); reloaded with the identity
    /// config.
    #[arg(long)]
    pub issuance_policy: Option<PathBuf>,
    /// Where brevis keeps its CA (and CT log) state.
    #[arg(long, default_value = "brevis-data")]
    pub data_dir: PathBuf,
    /// Allow http:// OIDC issuers (local testing only; tokens then travel unprotected).
    #[arg(long)]
    pub insecure_http_issuers: bool,
}

/// The CA backends (Fulcio's `--ca`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaKind {
    /// A chain and key on disk (default: the data directory's CA, created on first start).
    Fileca,
    /// A new in-memory root at every start.
    Ephemeralca,
    /// The issuing key in a PKCS#11 token (HSM): --pkcs11-config-path, --hsm-key-label,
    /// and the chain from the token (--hsm-caroot-id) or a file (--aws-hsm-root-ca-path).
    Pkcs11ca,
    /// The issuing key in a cloud KMS: --kms-resource and --kms-cert-chain-path.
    Kmsca,
}

/// Where keys outside files are reached: the PKCS#11 token (for `pkcs11:` keys) and the
/// deadline of every remote signature.
#[derive(Args, Clone)]
#[command(next_help_heading = "Keys in an HSM or a KMS")]
pub struct CustodyArgs {
    /// Fulcio's PKCS#11 configuration: JSON {"Path": "<module .so>", "TokenLabel": "...",
    /// "Pin": "..."} (or TokenSerial / SlotNumber instead of TokenLabel).
    #[arg(long)]
    pub pkcs11_config_path: Option<PathBuf>,
    /// File holding the token's PIN when the configuration has none (else the
    /// BREVIS_PKCS11_PIN environment variable).
    #[arg(long)]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// Longest one signature by an HSM or KMS key may take; past it the request fails
    /// with 503.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub signer_timeout: Duration,
}

impl CustodyArgs {
    /// The options every remote key is opened with.
    pub fn options(&self) -> Result<RemoteOptions> {
        let pkcs11 = self
            .pkcs11_config_path
            .as_deref()
            .map(|p| Pkcs11Config::load(p, self.pkcs11_pin_file.as_deref()))
            .transpose()
            .context("--pkcs11-config-path")?;
        Ok(RemoteOptions {
            pkcs11,
            timeout: self.signer_timeout,
        })
    }
}

/// A key reference flag: a PEM file path, `pkcs11:LABEL` or `awskms://...`.
pub fn parse_key_ref(s: &str) -> Result<KeyRef, String> {
    KeyRef::parse(s)
}

#[derive(Args)]
#[command(next_help_heading = "CA")]
pub struct CaArgs {
    /// CA backend.
    #[arg(long, value_enum, default_value_t = CaKind::Fileca)]
    pub ca: CaKind,
    /// PEM chain for fileca: issuing certificate first, root last.
    #[arg(long)]
    pub fileca_cert: Option<PathBuf>,
    /// PEM private key for fileca (PKCS#8, SEC1, PKCS#1, encrypted PKCS#8, or legacy
    /// OpenSSL-encrypted PEM).
    #[arg(long)]
    pub fileca_key: Option<PathBuf>,
    /// Password of an encrypted fileca key.
    #[arg(long, env = "BREVIS_FILECA_KEY_PASSWD", hide_env_values = true)]
    pub fileca_key_passwd: Option<String>,
    /// Reload the fileca chain and key when they change (Fulcio default: true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub fileca_watch: bool,
    /// pkcs11ca: CKA_LABEL of the issuing key in the token.
    #[arg(long, default_value = "PKCS11CA")]
    pub hsm_key_label: String,
    /// pkcs11ca: CKA_ID of the issuing certificate in the token; its issuers are found
    /// there by subject.
    #[arg(long)]
    pub hsm_caroot_id: Option<String>,
    /// pkcs11ca: the chain as a PEM file instead (Fulcio's name for it).
    #[arg(long)]
    pub aws_hsm_root_ca_path: Option<PathBuf>,
    /// kmsca: the issuing key, awskms://[ENDPOINT]/KEY-ID-OR-ALIAS-OR-ARN.
    #[arg(long)]
    pub kms_resource: Option<String>,
    /// kmsca: PEM chain of the KMS key (issuing certificate first, root last).
    #[arg(long)]
    pub kms_cert_chain_path: Option<PathBuf>,
    /// Rotation: the next CA's chain (PEM, issuing certificate first). Published in
    /// /api/v2/trustBundle at once; it signs from --ca-switch-at on.
    #[arg(long, requires_all = ["next_ca_key", "ca_switch_at"])]
    pub next_ca_chain: Option<PathBuf>,
    /// Rotation: the next CA's key: a PEM file (decrypted with --fileca-key-passwd),
    /// pkcs11:LABEL or awskms://...
    #[arg(long, value_parser = parse_key_ref, requires = "next_ca_chain")]
    pub next_ca_key: Option<KeyRef>,
    /// Rotation: when the next CA starts signing (RFC 3339, whole seconds), the same
    /// time given to `brevis trust-root --ca-switch-at`.
    #[arg(long, value_parser = parse_switch_time, requires = "next_ca_chain")]
    pub ca_switch_at: Option<i64>,
}

/// An RFC 3339 time in whole seconds, as Unix seconds.
pub fn parse_switch_time(s: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))?;
    if t.nanosecond() != 0 {
        return Err(format!(
            "{s:?}: give whole seconds (certificates carry whole seconds)"
        ));
    }
    Ok(t.unix_timestamp())
}

impl CaArgs {
    /// The CA a rotation moves to, when --next-ca-chain is given.
    fn next(&self, custody: &CustodyArgs) -> Result<Option<NextCa>> {
        let (Some(chain), Some(key), Some(switch_at)) =
            (&self.next_ca_chain, &self.next_ca_key, self.ca_switch_at)
        else {
            return Ok(None);
        };
        let ca = match key {
            KeyRef::File(path) => CaChoice::File {
                cert: Some(chain.clone()),
                key: Some(path.clone()),
                password: self.fileca_key_passwd.clone(),
            },
            held => CaChoice::Remote {
                key: held.clone(),
                chain: ChainSource::File(chain.clone()),
                options: custody.options()?,
            },
        };
        Ok(Some(NextCa { ca, switch_at }))
    }

    fn choice(self, custody: &CustodyArgs) -> Result<CaChoice> {
        Ok(match self.ca {
            CaKind::Ephemeralca => CaChoice::Ephemeral,
            CaKind::Fileca => CaChoice::File {
                cert: self.fileca_cert,
                key: self.fileca_key,
                password: self.fileca_key_passwd,
            },
            CaKind::Pkcs11ca => {
                if custody.pkcs11_config_path.is_none() {
                    bail!("--ca pkcs11ca needs --pkcs11-config-path");
                }
                let chain = match (self.hsm_caroot_id, self.aws_hsm_root_ca_path) {
                    (Some(id), None) => ChainSource::Token(id.into_bytes()),
                    (None, Some(path)) => ChainSource::File(path),
                    _ => bail!(
                        "--ca pkcs11ca needs the chain: --hsm-caroot-id (in the token) or --aws-hsm-root-ca-path (a file), one of them"
                    ),
                };
                CaChoice::Remote {
                    key: KeyRef::Pkcs11 {
                        label: self.hsm_key_label,
                    },
                    chain,
                    options: custody.options()?,
                }
            }
            CaKind::Kmsca => {
                let (Some(uri), Some(chain)) = (self.kms_resource, self.kms_cert_chain_path) else {
                    bail!("--ca kmsca needs --kms-resource and --kms-cert-chain-path");
                };
                let key = KeyRef::parse(&uri)
                    .map_err(anyhow::Error::msg)
                    .context("--kms-resource")?;
                if matches!(key, KeyRef::File(_) | KeyRef::Pkcs11 { .. }) {
                    bail!("--kms-resource takes a KMS URI (awskms://...), not {uri}");
                }
                CaChoice::Remote {
                    key,
                    chain: ChainSource::File(chain),
                    options: custody.options()?,
                }
            }
        })
    }
}

#[derive(Args)]
#[command(next_help_heading = "Certificate Transparency")]
pub struct CtArgs {
    /// Remote CT log base URL; give it several times to log every certificate to several
    /// logs. Without it brevis runs its embedded log. Empty (--ct-log-url "") disables CT:
    /// responses then carry a detached, empty SCT, which real Sigstore clients refuse.
    #[arg(long)]
    pub ct_log_url: Vec<String>,
    /// PEM public key each remote CT log's SCTs must verify with, one per --ct-log-url in
    /// the same order.
    #[arg(long)]
    pub ct_log_public_key_path: Vec<PathBuf>,
    /// With --ct-log-url: also log to the embedded log (first in the order).
    #[arg(long)]
    pub ct_log_embedded: bool,
    /// With several logs: how many must return a valid SCT before a certificate is issued
    /// (default: every log); with fewer the request fails with 503.
    #[arg(long)]
    pub ct_log_min_scts: Option<usize>,
    /// With several logs: `one` embeds the first valid SCT in the configured order (every
    /// Sigstore client accepts it); `all` embeds every valid SCT (sigstore-python and the
    /// sigstore crate refuse more than one).
    #[arg(long, value_enum, default_value_t = EmbedArg::One)]
    pub ct_log_embed: EmbedArg,
    /// With several logs: once enough SCTs are in, how long the other logs still get.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub ct_log_grace: Duration,
    /// Host header to send to the remote CT log (Fulcio's --ct-log-origin).
    #[arg(long)]
    pub ct_log_origin: Option<String>,
    /// Extra CA certificates (PEM) for the remote CT log's TLS.
    #[arg(long = "ct-log.tls-ca-cert")]
    pub ct_log_tls_ca_cert: Option<PathBuf>,
    /// Longest one submission to the remote CT log may take, retries and waits included;
    /// past it the request fails (no certificate leaves the CA unlogged).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub ct_log_timeout: Duration,
    /// Port of the embedded CT log's listener (monitors read the log there).
    #[arg(long, default_value_t = 6962)]
    pub ctlog_port: u16,
    /// URL path prefix of the embedded CT log ("" or "/name").
    #[arg(long, default_value = "")]
    pub ctlog_prefix: String,
    /// PEM file of extra roots the embedded log accepts besides the CA's own.
    #[arg(long)]
    pub ctlog_extra_roots: Option<PathBuf>,
    /// The embedded log's private key (ECDSA P-256): a PEM PKCS#8 file (e.g. from a
    /// secret every replica mounts), pkcs11:LABEL (in the token of
    /// --pkcs11-config-path) or awskms://... Default: <data-dir>/ctlog/log-key.pem,
    /// created on first start.
    #[arg(long, value_parser = parse_key_ref)]
    pub ctlog_key: Option<KeyRef>,
    #[command(flatten)]
    pub log: LogArgs,
}

/// `--ct-log-embed`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmbedArg {
    One,
    All,
}

impl CtArgs {
    fn choice(self, custody: &CustodyArgs) -> Result<CtChoice> {
        let options = ClientOptions {
            host: self.ct_log_origin.clone(),
            tls_ca: self
                .ct_log_tls_ca_cert
                .as_ref()
                .map(|p| {
                    std::fs::read_to_string(p)
                        .with_context(|| format!("--ct-log.tls-ca-cert {}", p.display()))
                })
                .transpose()?,
            deadline: self.ct_log_timeout,
            attempt_timeout: self
                .ct_log_timeout
                .min(ClientOptions::default().attempt_timeout),
            ..ClientOptions::default()
        };
        let embedded = || -> Result<EmbeddedLogOptions> {
            Ok(EmbeddedLogOptions {
                port: self.ctlog_port,
                prefix: check_prefix(&self.ctlog_prefix)?,
                log: LogOptions {
                    key: self.ctlog_key.clone(),
                    remote_keys: custody.options()?,
                    ..self.log.options()?
                },
                extra_roots: self.ctlog_extra_roots.clone(),
            })
        };
        let urls = &self.ct_log_url;
        if urls.iter().any(String::is_empty) {
            if urls.len() > 1 || self.ct_log_embedded {
                bail!("--ct-log-url \"\" disables CT; it cannot be combined with other logs");
            }
            return Ok(CtChoice::Disabled);
        }
        if urls.is_empty() {
            return Ok(CtChoice::Embedded(Box::new(embedded()?)));
        }
        let keys = &self.ct_log_public_key_path;
        if !keys.is_empty() && keys.len() != urls.len() {
            bail!(
                "{} --ct-log-url but {} --ct-log-public-key-path: give one key per log, in the same order",
                urls.len(),
                keys.len()
            );
        }
        let key = |i: usize| keys.get(i).cloned();
        if urls.len() == 1 && !self.ct_log_embedded {
            if self.ct_log_min_scts.is_some_and(|k| k != 1) {
                bail!("--ct-log-min-scts: there is one CT log");
            }
            return Ok(CtChoice::Remote {
                url: urls[0].clone(),
                public_key: key(0),
                options,
            });
        }
        Ok(CtChoice::Several(Box::new(SeveralLogs {
            embedded: self.ct_log_embedded.then(embedded).transpose()?,
            remotes: urls
                .iter()
                .enumerate()
                .map(|(i, url)| RemoteLogSpec {
                    url: url.clone(),
                    public_key: key(i),
                    options: options.clone(),
                })
                .collect(),
            min_scts: self.ct_log_min_scts,
            embed: match self.ct_log_embed {
                EmbedArg::One => brevis::authority::EmbedScts::One,
                EmbedArg::All => brevis::authority::EmbedScts::All,
            },
            grace: self.ct_log_grace,
        })))
    }
}

/// Batching and acceptance settings shared by the embedded and the standalone log.
#[derive(Args, Clone)]
pub struct LogArgs {
    /// Checkpoint origin (the log's public submission prefix without scheme). Fixed when
    /// the log is created.
    #[arg(long = "ctlog-origin", default_value = "localhost:6962")]
    pub origin: String,
    /// Longest a batch waits to fill before it commits. 0 commits as soon as the previous
    /// commit finishes (group commit).
    #[arg(long = "ctlog-batch-max-wait", default_value = "0ms", value_parser = parse_duration)]
    pub batch_max_wait: Duration,
    /// Most entries in one batch.
    #[arg(long = "ctlog-batch-max-size", default_value_t = 4096)]
    pub batch_max_size: usize,
    /// Most submissions waiting; beyond this the log answers 503 (with Retry-After).
    #[arg(long = "ctlog-max-pending", default_value_t = 65536)]
    pub max_pending: usize,
    /// Accept only leaves with extended key usage codeSigning (Sigstore's CT setting).
    #[arg(long = "ctlog-require-code-signing", num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub require_code_signing: bool,
    /// Where the log is stored: sqlite:PATH (default: log.sqlite in the log's directory, one
    /// writer) or postgres://USER@HOST:PORT/DATABASE[?sslmode=require] (any number of
    /// replicas; docs/scaling.md). Put the password in --ct-log-storage-password-file or
    /// PGPASSWORD, not in the URL.
    #[arg(long = "ct-log-storage", default_value = "sqlite:", value_parser = Storage::parse)]
    pub storage: Storage,
    /// File holding the PostgreSQL password.
    #[arg(long = "ct-log-storage-password-file")]
    pub storage_password_file: Option<PathBuf>,
    /// PEM CA certificates for the PostgreSQL server's TLS certificate (default: the
    /// system's roots). The server's certificate is always verified when TLS is used.
    #[arg(long = "ct-log-storage-ca-file")]
    pub storage_ca_file: Option<PathBuf>,
    /// How long a replica may hold the log's write lock without talking to PostgreSQL
    /// before the database ends its session and another replica takes over.
    #[arg(long = "ct-log-storage-lease-timeout", default_value = "5s", value_parser = parse_duration)]
    pub storage_lease_timeout: Duration,
    /// With PostgreSQL, how often each replica reads the latest checkpoint (so it serves
    /// what the other replicas committed).
    #[arg(long = "ct-log-checkpoint-poll", default_value = "500ms", value_parser = parse_duration)]
    pub checkpoint_poll: Duration,
    /// A tree head this log published (its `get-sth` JSON, saved by a monitor): the log
    /// refuses to start on storage whose tree is smaller or inconsistent with it (a
    /// database restored from an older backup). See docs/scaling.md, "Backups".
    #[arg(long = "ct-log-last-checkpoint")]
    pub last_checkpoint: Option<PathBuf>,
    /// Full tiles (8 KiB each) the log keeps in memory for reads; 0 keeps none.
    #[arg(long = "ctlog-tile-cache", default_value_t = brevis::ct::log::DEFAULT_TILE_CACHE)]
    pub tile_cache: usize,
    /// Keep the explorer's search index (search.sqlite in the log's directory, built from
    /// the log as entries are sequenced). `false` turns /ui/ search off.
    #[arg(
        long = "ctlog-search-index",
        num_args = 0..=1,
        default_missing_value = "true",
        default_value = "true"
    )]
    pub search_index: bool,
}

impl LogArgs {
    pub fn options(&self) -> Result<LogOptions> {
        let last_published = match &self.last_checkpoint {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("--ct-log-last-checkpoint {}", p.display()))?;
                let json: GetSth = serde_json::from_str(&text).with_context(|| {
                    format!("--ct-log-last-checkpoint {}: not get-sth JSON", p.display())
                })?;
                Some(SignedTreeHead::from_json(&json).with_context(|| {
                    format!("--ct-log-last-checkpoint {}: not a tree head", p.display())
                })?)
            }
        };
        Ok(LogOptions {
            last_published,
            origin: self.origin.clone(),
            require_code_signing: self.require_code_signing,
            batch: BatchConfig {
                max_size: self.batch_max_size.max(1),
                max_wait: self.batch_max_wait,
                ..BatchConfig::default()
            },
            max_pending: self.max_pending.max(1),
            storage: match &self.storage {
                Storage::Postgres(pg) => Storage::Postgres(PgOptions {
                    password_file: self.storage_password_file.clone(),
                    ca_file: self.storage_ca_file.clone(),
                    lease_timeout: self.storage_lease_timeout,
                    ..pg.clone()
                }),
                s => s.clone(),
            },
            checkpoint_poll: self.checkpoint_poll,
            tile_cache: self.tile_cache,
            search_index: self.search_index,
            ..LogOptions::default()
        })
    }
}

#[derive(Args)]
#[command(next_help_heading = "OIDC")]
pub struct OidcArgs {
    /// Allowed clock skew for token nbf/iat (exp gets none).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub oidc_clock_skew: Duration,
    /// Timeout of each OIDC discovery or JWKS request.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub oidc_fetch_timeout: Duration,
    /// Minimum time between JWKS refetches caused by unknown key ids, per issuer.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub oidc_jwks_refresh_interval: Duration,
    /// Age after which an issuer's keys are refetched in the background on their next use
    /// (tokens keep verifying with the keys held while that runs or fails).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub oidc_jwks_refresh_after: Duration,
    /// Age after which keys that could not be refreshed are no longer trusted: tokens from
    /// that issuer are refused until its JWKS can be fetched again.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub oidc_jwks_max_age: Duration,
    /// New issuers admitted per meta-issuer pattern, as N/s, N/m or N/h (burst N): a
    /// token naming an issuer under a pattern that no token verified for yet makes brevis
    /// fetch from that issuer, so beyond this rate such tokens are refused unfetched.
    #[arg(long, default_value = "10/m")]
    pub meta_issuer_admission_rate: String,
}

impl OidcArgs {
    fn options(self) -> Result<VerifierOptions> {
        anyhow::ensure!(
            self.oidc_jwks_max_age > self.oidc_jwks_refresh_after,
            "--oidc-jwks-max-age ({:?}) must be longer than --oidc-jwks-refresh-after ({:?}): keys are refreshed before they expire",
            self.oidc_jwks_max_age,
            self.oidc_jwks_refresh_after
        );
        Ok(VerifierOptions {
            clock_skew: self.oidc_clock_skew,
            jwks_refresh_interval: self.oidc_jwks_refresh_interval,
            jwks_refresh_after: self.oidc_jwks_refresh_after,
            jwks_max_age: self.oidc_jwks_max_age,
            fetch_timeout: self.oidc_fetch_timeout,
            meta_admission: admission_rate(&self.meta_issuer_admission_rate)
                .context("--meta-issuer-admission-rate")?,
        })
    }
}

#[derive(Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpArgs {
    /// Idle keep-alive timeout of HTTP connections (Fulcio: 30s).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub idle_connection_timeout: Duration,
    /// Time allowed for a client to send a request's headers.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// HTTP worker threads (default: one per CPU core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Time requests in flight get to finish after SIGTERM/SIGINT before connections are
    /// closed; the CT log's pending batch is committed either way.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

impl HttpArgs {
    fn options(self) -> HttpOptions {
        HttpOptions {
            idle_timeout: self.idle_connection_timeout,
            request_timeout: self.request_timeout,
            workers: self.workers,
            shutdown_timeout: self.shutdown_timeout,
        }
    }
}

#[derive(Args)]
#[command(next_help_heading = "Limits")]
pub struct ProtectionArgs {
    /// Time allowed to receive a request body after its headers (408 after it).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Longest a signing request may take once its body arrived (token verification, CT
    /// log, signing); past it the client gets 503 and no certificate, and may retry.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub issuance_timeout: Duration,
    /// Concurrent connections per worker thread (actix default: 25000).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Signing requests allowed per client address, as N/s, N/m or N/h (off by default);
    /// over the limit: 429 with Retry-After.
    #[arg(long)]
    pub rate_limit_client: Option<String>,
    /// Bucket size of --rate-limit-client: requests a client may send at once.
    #[arg(long, default_value_t = 10)]
    pub rate_limit_client_burst: u32,
    /// Certificates allowed per identity (issuer + SAN), as N/s, N/m or N/h (off by
    /// default); checked after the token verified.
    #[arg(long)]
    pub rate_limit_identity: Option<String>,
    /// Bucket size of --rate-limit-identity.
    #[arg(long, default_value_t = 5)]
    pub rate_limit_identity_burst: u32,
    /// IPv6 clients share one --rate-limit-client bucket per network of this many bits
    /// (64: a /64, what one subscriber is usually given).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u8).range(0..=128))]
    pub rate_limit_ipv6_prefix: u8,
    /// Take the client address for --rate-limit-client from this header (the last entry
    /// of a list) instead of the TCP peer. Only behind a proxy that sets it.
    #[arg(long)]
    pub client_ip_header: Option<String>,
}

impl ProtectionArgs {
    fn options(self) -> Result<Protection> {
        let rate = |flag: &str, spec: &Option<String>, burst: u32| {
            spec.as_deref()
                .map(|s| Rate::parse(s, burst))
                .transpose()
                .with_context(|| flag.to_string())
        };
        Ok(Protection {
            per_client: rate(
                "--rate-limit-client",
                &self.rate_limit_client,
                self.rate_limit_client_burst,
            )?,
            per_identity: rate(
                "--rate-limit-identity",
                &self.rate_limit_identity,
                self.rate_limit_identity_burst,
            )?,
            client_ip_header: self.client_ip_header,
            body_timeout: self.body_timeout,
            issuance_timeout: self.issuance_timeout,
            ipv6_prefix: self.rate_limit_ipv6_prefix,
            max_connections: self.max_connections,
            ..Protection::default()
        })
    }
}

#[derive(Args)]
#[command(next_help_heading = "Reload")]
pub struct ReloadArgs {
    /// How often the identity config, fileca and TLS files are checked for changes
    /// (content, not mtime); 0 turns watching off. SIGHUP always reloads everything.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub watch_interval: Duration,
    /// Reload the identity config (--config-path) when it changes.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub config_watch: bool,
}

#[derive(Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// TLS certificate chain (PEM, leaf first) for the API listener; with --tls-key the API
    /// speaks HTTPS only. Reloaded with the rest (SIGHUP, file change).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, SEC1 or PKCS#1) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    fn files(self) -> Option<brevis::tls::TlsFiles> {
        Some(brevis::tls::TlsFiles {
            cert: self.tls_cert?,
            key: self.tls_key?,
        })
    }
}

// ---- ctlog -----------------------------------------------------------------------------------

#[derive(Subcommand)]
pub enum CtlogCommand {
    /// Run a standalone CT log (RFC 6962 and static-ct-api), for deployments that keep the
    /// log apart from the CA; point `brevis serve --ct-log-url` at it.
    Serve(Box<CtlogServeArgs>),
    /// Create a CT log key pair (log-key.pem, log-public-key.pem) in a directory, unless
    /// one is already there; prints the public key's path and the log ID either way.
    Key(CtlogKeyArgs),
    /// Copy a stopped log to other storage (sqlite:PATH to postgres://...): same entries,
    /// tiles and checkpoint, verified against the source's root before the copy commits.
    /// Refuses a target that already holds a log.
    Migrate(CtlogMigrateArgs),
    /// Freeze a log for good (a new log key means a new log): it keeps serving its final
    /// tree and every read, and refuses submissions. Prints its validity window for the
    /// successor's trust material. Stop every brevis writing to it first.
    Freeze(CtlogFreezeArgs),
}

#[derive(Args)]
pub struct CtlogFreezeArgs {
    /// The log's directory (log.sqlite, log-public-key.pem): `<data-dir>/ctlog` for the
    /// embedded log.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Its storage, when not the directory's SQLite file (postgres://...).
    #[arg(long = "ct-log-storage", value_parser = Storage::parse, default_value = "sqlite:")]
    pub storage: Storage,
    /// File holding the PostgreSQL password (else PGPASSWORD).
    #[arg(long = "ct-log-storage-password-file")]
    pub password_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct CtlogMigrateArgs {
    /// The log to copy: sqlite:PATH (stop the brevis that writes it first).
    #[arg(long, value_parser = Storage::parse)]
    pub from: Storage,
    /// Where to: an empty postgres://USER@HOST:PORT/DATABASE (or sqlite:PATH).
    #[arg(long, value_parser = Storage::parse)]
    pub to: Storage,
    /// File holding the target PostgreSQL password (else PGPASSWORD).
    #[arg(long)]
    pub to_password_file: Option<PathBuf>,
    /// PEM CA certificates for the target PostgreSQL server's TLS certificate.
    #[arg(long)]
    pub to_ca_file: Option<PathBuf>,
}

impl CtlogMigrateArgs {
    /// The target with its password and CA file; its sessions may stay in one transaction
    /// for the whole copy.
    pub fn target(&self) -> Storage {
        match &self.to {
            Storage::Postgres(pg) => Storage::Postgres(PgOptions {
                password_file: self.to_password_file.clone(),
                ca_file: self.to_ca_file.clone(),
                lease_timeout: Duration::from_secs(600),
                statement_timeout: Duration::from_secs(600),
                ..pg.clone()
            }),
            s => s.clone(),
        }
    }
}

#[derive(Args)]
pub struct CtlogKeyArgs {
    /// Directory for log-key.pem (0600) and log-public-key.pem; a log's data directory
    /// when the key lives with the log.
    #[arg(long)]
    pub out: PathBuf,
    /// Generate the key inside the PKCS#11 token (--pkcs11-config-path) under this label
    /// instead (ECDSA P-256, sensitive, not extractable); only log-public-key.pem is
    /// written. Serve it with --ctlog-key pkcs11:LABEL (or `ctlog serve --key`).
    #[arg(long)]
    pub hsm_key_label: Option<String>,
    #[command(flatten)]
    pub custody: CustodyArgs,
}

#[derive(Args)]
pub struct CtlogServeArgs {
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    #[arg(long, default_value_t = 6962)]
    pub port: u16,
    /// URL path prefix of the log ("" or "/name", e.g. "/test" like Fulcio's default URL).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Where the log keeps its key and database.
    #[arg(long, default_value = "brevis-ctlog")]
    pub data_dir: PathBuf,
    /// PEM file with the root certificates whose chains the log accepts.
    #[arg(long)]
    pub roots: PathBuf,
    /// Serve Prometheus metrics on this port too.
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// The log's private key (ECDSA P-256): a PEM PKCS#8 file (e.g. a mounted secret),
    /// pkcs11:LABEL or awskms://... Default: <data-dir>/log-key.pem, created on first
    /// start.
    #[arg(long, value_parser = parse_key_ref)]
    pub key: Option<KeyRef>,
    #[command(flatten)]
    pub custody: CustodyArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl CtlogServeArgs {
    pub fn options(self) -> Result<CtLogServeOptions> {
        Ok(CtLogServeOptions {
            host: self.host,
            port: self.port,
            prefix: check_prefix(&self.prefix)?,
            data_dir: self.data_dir,
            roots: self.roots,
            log: LogOptions {
                key: self.key,
                remote_keys: self.custody.options()?,
                ..self.log.options()?
            },
            metrics_port: self.metrics_port,
        })
    }
}

// ---- monitor ---------------------------------------------------------------------------------

#[derive(Args)]
pub struct MonitorArgs {
    /// The log's base URL (RFC 6962: the part before /ct/v1; static-ct-api: the
    /// monitoring prefix before /checkpoint).
    #[arg(long)]
    pub log: String,
    /// The log's public key (PEM SubjectPublicKeyInfo).
    #[arg(long, conflicts_with = "trust_root")]
    pub log_public_key: Option<PathBuf>,
    /// A Sigstore TrustedRoot (or ClientTrustConfig) to take the log's key from: the CT log
    /// whose baseUrl is --log, or its only CT log.
    #[arg(long)]
    pub trust_root: Option<PathBuf>,
    /// The watch file (YAML or JSON).
    #[arg(long)]
    pub watch: PathBuf,
    /// Where the monitor keeps its state (state.json).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Run one cycle and exit: 0 when the log checked out, 2 when the state holds an
    /// inconsistency, 1 on an error.
    #[arg(long)]
    pub once: bool,
    /// Time between cycles.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Where a new state starts reading (0: the whole log). Default: the current tree
    /// size. Ignored once the state has a position.
    #[arg(long)]
    pub from_index: Option<u64>,
    /// Serve Prometheus metrics on this port.
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// Address of the metrics listener.
    #[arg(long, default_value = "0.0.0.0")]
    pub metrics_host: String,
    /// POST every event (JSON) to this URL too, retrying until it answers 2xx.
    #[arg(long)]
    pub webhook: Option<String>,
    /// Read through the static-ct-api (checkpoint and tiles) instead of RFC 6962.
    #[arg(long)]
    pub static_ct: bool,
    /// Entries per get-entries request.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub batch: u64,
}

// ---- ca --------------------------------------------------------------------------------------

#[derive(Subcommand)]
pub enum CaCommand {
    /// Write a new root + intermediate pair (chain.pem, intermediate-key.pem, root.pem,
    /// root-key.pem) for use with `--ca fileca`.
    Create(CaCreateArgs),
    /// Issue a new intermediate under an existing root (key rotation without changing what
    /// clients trust): writes chain.pem and intermediate-key.pem.
    Intermediate(CaIntermediateArgs),
}

/// Key types for CA certificates.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    #[value(name = "ecdsa-p256", alias = "p256")]
    EcdsaP256,
    #[value(name = "ecdsa-p384", alias = "p384")]
    EcdsaP384,
    #[value(name = "ecdsa-p521", alias = "p521")]
    EcdsaP521,
    #[value(name = "rsa-3072", alias = "rsa")]
    Rsa3072,
    Ed25519,
}

impl From<KeyType> for SigningAlgorithm {
    fn from(k: KeyType) -> SigningAlgorithm {
        match k {
            KeyType::EcdsaP256 => SigningAlgorithm::EcdsaP256Sha256,
            KeyType::EcdsaP384 => SigningAlgorithm::EcdsaP384Sha384,
            KeyType::EcdsaP521 => SigningAlgorithm::EcdsaP521Sha512,
            KeyType::Rsa3072 => SigningAlgorithm::RsaPkcs1Sha256,
            KeyType::Ed25519 => SigningAlgorithm::Ed25519,
        }
    }
}

#[derive(Args)]
pub struct CaIntermediateArgs {
    /// The root certificate (PEM), e.g. root.pem from `brevis ca create`.
    #[arg(long)]
    pub root_cert: PathBuf,
    /// The root's private key (PEM).
    #[arg(long)]
    pub root_key: PathBuf,
    /// Password of an encrypted root key.
    #[arg(long, env = "BREVIS_ROOT_KEY_PASSWORD", hide_env_values = true)]
    pub root_key_password: Option<String>,
    /// Directory to write chain.pem and intermediate-key.pem into (never overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Encrypt the new key (PKCS#8, PBES2 with PBKDF2-SHA256 and AES-256-CBC).
    #[arg(long, env = "BREVIS_CA_KEY_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Organization (O) of the new certificate.
    #[arg(long, default_value = "brevis")]
    pub organization: String,
    /// Common-name prefix: the CN becomes "<prefix> intermediate".
    #[arg(long, default_value = "brevis")]
    pub common_name: String,
    /// Key type of the new intermediate.
    #[arg(long, value_enum, default_value_t = KeyType::EcdsaP256)]
    pub key_type: KeyType,
    /// Lifetime in years (capped at the root's).
    #[arg(long, default_value_t = 5)]
    pub years: i64,
}

#[derive(Args)]
pub struct CaCreateArgs {
    /// Directory to write into (created if missing; existing files are never overwritten).
    #[arg(long, default_value = "brevis-ca")]
    pub out: PathBuf,
    /// Encrypt both private keys (PKCS#8, PBES2 with PBKDF2-SHA256 and AES-256-CBC).
    #[arg(long, env = "BREVIS_CA_KEY_PASSWORD")]
    pub password: Option<String>,
    /// Organization (O) of both certificates.
    #[arg(long, default_value = "brevis")]
    pub organization: String,
    /// Common-name prefix: CNs become "<prefix> root" and "<prefix> intermediate".
    #[arg(long, default_value = "brevis")]
    pub common_name: String,
    /// Root key type.
    #[arg(long, value_enum, default_value_t = KeyType::EcdsaP384)]
    pub root_key_type: KeyType,
    /// Intermediate (issuing) key type.
    #[arg(long, value_enum, default_value_t = KeyType::EcdsaP256)]
    pub intermediate_key_type: KeyType,
    /// Root lifetime in years.
    #[arg(long, default_value_t = 10)]
    pub root_years: i64,
    /// Intermediate lifetime in years (capped at the root's).
    #[arg(long, default_value_t = 5)]
    pub intermediate_years: i64,
    /// Generate the issuing key inside the PKCS#11 token (--pkcs11-config-path) under
    /// this label, sensitive and not extractable; no key file is written.
    #[arg(long)]
    pub hsm_key_label: Option<String>,
    /// Also store the issuing certificate (and the root) in the token under this CKA_ID,
    /// where `serve --ca pkcs11ca --hsm-caroot-id` reads them.
    #[arg(long)]
    pub hsm_caroot_id: Option<String>,
    /// Use this existing KMS key (awskms://...) as the issuing key: only its certificate
    /// is made.
    #[arg(long)]
    pub kms_resource: Option<String>,
    /// Sign with this existing root certificate (PEM) instead of generating a root.
    #[arg(long)]
    pub root_cert: Option<PathBuf>,
    /// The existing root's private key (PEM), with --root-cert.
    #[arg(long)]
    pub root_key: Option<PathBuf>,
    /// Password of an encrypted --root-key.
    #[arg(long, env = "BREVIS_ROOT_KEY_PASSWORD", hide_env_values = true)]
    pub root_key_password: Option<String>,
    /// Keep the root key in the PKCS#11 token too, under this label: generated with a new
    /// self-signed root when absent (then root.pem is written), or the key of --root-cert.
    #[arg(long)]
    pub hsm_root_key_label: Option<String>,
    #[command(flatten)]
    pub custody: CustodyArgs,
}

// ---- config, trust, cert -------------------------------------------------------------------

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate an identity config file and print the effective issuer table.
    Check(ConfigCheckArgs),
}

#[derive(Args)]
pub struct ConfigCheckArgs {
    /// Fulcio-format identity config (YAML or JSON).
    pub file: PathBuf,
    /// Accept http:// issuer URLs (as `serve --insecure-http-issuers`).
    #[arg(long)]
    pub insecure_http_issuers: bool,
    /// Also validate this issuance policy against the config and print, per issuer, who
    /// may get a certificate.
    #[arg(long)]
    pub issuance_policy: Option<PathBuf>,
}

#[derive(Args)]
pub struct TrustConfigArgs {
    /// Directory to write the three files into.
    #[arg(long)]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
}

#[derive(Args, Clone)]
pub struct TrustArgs {
    /// brevis's data directory (for the CA chain and the embedded log's key).
    #[arg(long, default_value = "brevis-data")]
    pub data_dir: PathBuf,
    /// CA chain PEM (issuing certificate first); default: <data-dir>/ca/chain.pem.
    #[arg(long)]
    pub fileca_cert: Option<PathBuf>,
    /// The CA's public URL, as clients reach it.
    #[arg(long, default_value = "http://localhost:8080")]
    pub ca_url: String,
    /// The CT log's public URL.
    #[arg(long, default_value = "http://localhost:6962")]
    pub ctlog_url: String,
    /// CT log public key PEM; default: <data-dir>/ctlog/log-public-key.pem.
    #[arg(long)]
    pub ct_log_public_key_path: Option<PathBuf>,
    /// Start of the CT log key's validity (RFC 3339); default: when the embedded log was
    /// created.
    #[arg(long)]
    pub ct_log_start: Option<String>,
    /// A Rekor transparency log to include (clients such as sigstore-python need one in
    /// their trust material before they sign anything).
    #[arg(long, requires = "rekor_public_key_path")]
    pub rekor_url: Option<String>,
    /// The Rekor log's public key (PEM).
    #[arg(long)]
    pub rekor_public_key_path: Option<PathBuf>,
    /// Start of the Rekor key's validity (RFC 3339); default: the CT log's start.
    #[arg(long)]
    pub rekor_start: Option<String>,
    /// An OIDC provider to advertise in the SigningConfig.
    #[arg(long)]
    pub oidc_url: Option<String>,
    /// CA rotation, before the switch: the staged CA's chain (as given to `serve
    /// --next-ca-chain`); it is listed from --ca-switch-at, the current one until then.
    #[arg(long, requires = "ca_switch_at", conflicts_with = "previous_ca_chain")]
    pub next_ca_chain: Option<PathBuf>,
    /// CA rotation, after the switch: the chain that issued until --ca-switch-at, listed
    /// with that end so its certificates keep verifying.
    #[arg(long, requires = "ca_switch_at")]
    pub previous_ca_chain: Option<PathBuf>,
    /// CA rotation: the switch time (RFC 3339, whole seconds), as given to `serve`.
    #[arg(long, value_parser = parse_switch_time)]
    pub ca_switch_at: Option<i64>,
    /// Another CT log the CA logs to (serve given several logs): URL=PUBLIC_KEY_PEM_PATH,
    /// repeatable, in the CA's order after the first log; listed from the first log's
    /// start.
    #[arg(long, value_name = "URL=KEY_PEM")]
    pub extra_ct_log: Vec<String>,
    /// CT log rotation: the public key (PEM) of the log this one succeeded; listed with
    /// its window so SCTs it issued keep verifying.
    #[arg(long, requires_all = ["previous_ct_log_url", "previous_ct_log_start", "previous_ct_log_end"])]
    pub previous_ct_log_public_key_path: Option<PathBuf>,
    /// CT log rotation: the previous log's URL.
    #[arg(long)]
    pub previous_ct_log_url: Option<String>,
    /// CT log rotation: when the previous log started (RFC 3339; `brevis ctlog freeze`
    /// prints it).
    #[arg(long)]
    pub previous_ct_log_start: Option<String>,
    /// CT log rotation: when the previous log was frozen (RFC 3339; `brevis ctlog freeze`
    /// prints it).
    #[arg(long)]
    pub previous_ct_log_end: Option<String>,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum CertCommand {
    /// Request a certificate as a Sigstore client would, verify its chain and SCT, and
    /// write the key and the certificate.
    Request(CertRequestArgs),
    /// Print the identity, issuer, extensions and SCT status of a Fulcio or brevis
    /// certificate, verified against a TrustedRoot; exits non-zero if it does not verify.
    Verify(CertVerifyArgs),
}

/// How a client proves possession of its key.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyPathArg {
    /// Proof of possession with the token in the body, as sigstore-js.
    PublicKey,
    /// A PKCS#10 request with the token in the Authorization header, as sigstore-python.
    Csr,
}

#[derive(Args)]
pub struct CertRequestArgs {
    /// The CA's URL.
    #[arg(long, default_value = "http://localhost:8080")]
    pub url: String,
    /// The OIDC identity token.
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the OIDC identity token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Use this PEM private key (PKCS#8, SEC1 or PKCS#1) instead of generating one.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Key path.
    #[arg(long, value_enum, default_value_t = KeyPathArg::PublicKey)]
    pub method: KeyPathArg,
    /// TrustedRoot (or ClientTrustConfig) to verify the chain and SCT against; default:
    /// the CA's /api/v2/trustBundle for the chain, SCTs unverified.
    #[arg(long)]
    pub trust_root: Option<PathBuf>,
    /// Where to write the certificate chain (leaf first).
    #[arg(long, default_value = "brevis-cert.pem")]
    pub out: PathBuf,
    /// Where to write a generated private key.
    #[arg(long, default_value = "brevis-key.pem")]
    pub out_key: PathBuf,
}

#[derive(Args)]
pub struct CertVerifyArgs {
    /// PEM certificate (a chain is fine: the first certificate is checked).
    pub cert: PathBuf,
    /// TrustedRoot (or ClientTrustConfig) JSON.
    #[arg(long)]
    pub trust_root: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

// ---- value parsers ----------------------------------------------------------------------------

fn check_prefix(prefix: &str) -> Result<String> {
    let p = prefix.trim_end_matches('/');
    if !p.is_empty() && !p.starts_with('/') {
        anyhow::bail!("a URL prefix must be empty or start with '/': {prefix:?}");
    }
    Ok(p.to_string())
}

/// `N/s`, `N/m` or `N/h` with a burst of N (at least 1).
fn admission_rate(spec: &str) -> Result<Rate> {
    let n: f64 = spec
        .split_once('/')
        .and_then(|(n, _)| n.trim().parse().ok())
        .with_context(|| format!("{spec:?}: expected N/s, N/m or N/h"))?;
    Ok(Rate::parse(spec, n.ceil().clamp(1.0, 1e6) as u32)?)
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
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
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {s:?}"))
}
