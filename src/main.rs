//! The `brevis` command line: parses arguments into the library's option types, prints
//! what the library reports, owns the process signals (SIGHUP reloads, SIGTERM/SIGINT
//! stop, a second stop signal exits), and prints errors with their causes. The only place
//! `anyhow` is used.

mod cli;

use anyhow::{Context, Result, bail};
use brevis::ca::provision::{self, DataDirFiles, IntermediateRequest};
use brevis::ca::{self, Signer};
use brevis::server::{CtLogServer, Server, Summary};
use brevis::signers::KeyRef;
use brevis::signers::pkcs11::GeneratedKey;
use clap::Parser;
use cli::{
    CaCommand, CaCreateArgs, CaIntermediateArgs, CertCommand, CertRequestArgs, CertVerifyArgs, Cli,
    Command, ConfigCheckArgs, ConfigCommand, CtlogCommand, CtlogKeyArgs, CtlogMigrateArgs,
    CtlogServeArgs, KeyPathArg, MonitorArgs, ServeArgs, TrustArgs, TrustConfigArgs,
};
use std::path::PathBuf;

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if cli.json_logs() {
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
        Command::Serve(args) => serve(*args),
        Command::Ca(CaCommand::Create(args)) => ca_create(args),
        Command::Ca(CaCommand::Intermediate(args)) => ca_intermediate(args),
        Command::Config(ConfigCommand::Check(args)) => config_check(args),
        Command::Ctlog(CtlogCommand::Serve(args)) => ctlog_serve(*args),
        Command::Ctlog(CtlogCommand::Key(args)) => ctlog_key(args),
        Command::Ctlog(CtlogCommand::Migrate(args)) => ctlog_migrate(args),
        Command::Ctlog(CtlogCommand::Freeze(args)) => ctlog_freeze(args),
        Command::Monitor(args) => monitor(*args),
        Command::TrustRoot(args) => emit(&trust_material(&args)?.0, &args.out),
        Command::SigningConfig(args) => emit(&trust_material(&args)?.1, &args.out),
        Command::TrustConfig(args) => trust_config(args),
        Command::Cert(CertCommand::Request(args)) => cert_request(args),
        Command::Cert(CertCommand::Verify(args)) => cert_verify(args),
    }
}

// ---- serving -----------------------------------------------------------------------------

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

    async fn stop(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Resolves on the first SIGTERM/SIGINT (SIGHUP reloads meanwhile); a second stop signal
/// while draining exits at once (what is committed is durable; requests still in flight
/// get no answer).
async fn stop_signal(mut signals: Signals, reload: Option<brevis::server::ReloadHandle>) {
    loop {
        tokio::select! {
            _ = signals.term.recv() => break,
            _ = signals.int.recv() => break,
            _ = signals.hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                if let Some(r) = &reload {
                    r.reload_all().await;
                }
            }
        }
    }
    actix_web::rt::spawn(async move {
        signals.stop().await;
        tracing::warn!("second stop signal: exiting without waiting for requests in flight");
        std::process::exit(130);
    });
}

fn print_summary(summary: &Summary, server: &Server) {
    let addrs = server.addrs();
    println!("brevis {}", env!("CARGO_PKG_VERSION"));
    println!("  API listening on {}", addrs.api_url());
    println!("  metrics on http://{}/metrics", addrs.metrics);
    if let Some(g) = addrs.grpc {
        println!("  gRPC listening on {g}");
    }
    if addrs.grpc_shared {
        println!("  gRPC also on {}", addrs.api);
    }
    println!(
        "  CA: {} ({} certificates, root SHA-256 {})",
        summary.ca, summary.chain_len, summary.root_fingerprint
    );
    if let Some(k) = &summary.new_root_key {
        println!(
            "  root key written to {} (outside the data directory): brevis never needs it to run; move it offline",
            k.display()
        );
    }
    println!("  CT log: {}", summary.ct);
    if let Some(a) = addrs.ctlog {
        println!("  CT log listening on http://{a}{}", summary.ctlog_prefix);
    }
    println!("  trusted OIDC issuers:");
    for i in &summary.issuers {
        println!("    {i}");
    }
    tracing::info!(api = %addrs.api, metrics = %addrs.metrics, "brevis started");
}

fn serve(args: ServeArgs) -> Result<()> {
    let opts = args.options()?;
    actix_web::rt::System::new().block_on(async move {
        let signals = Signals::new().context("installing signal handlers")?;
        let server = Server::build(opts)?;
        print_summary(server.summary(), &server);
        let reload = server.reload_handle();
        server.run(stop_signal(signals, Some(reload))).await?;
        Ok(())
    })
}

fn ctlog_migrate(args: CtlogMigrateArgs) -> Result<()> {
    let dir = std::env::current_dir().context("the current directory")?;
    let target = args.target();
    let report =
        brevis::ct::log::migrate::migrate(&args.from, &target, &dir).with_context(|| {
            format!(
                "migrating {} to {}",
                args.from.describe(&dir),
                target.describe(&dir)
            )
        })?;
    println!(
        "copied {} entries, {} tiles, {} issuers; root {} verified",
        report.entries,
        report.tiles,
        report.issuers,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, report.root)
    );
    Ok(())
}

fn ctlog_freeze(args: cli::CtlogFreezeArgs) -> Result<()> {
    let storage = match args.storage {
        brevis::ct::log::Storage::Postgres(pg) => {
            brevis::ct::log::Storage::Postgres(brevis::ct::log::store::postgres::PgOptions {
                password_file: args.password_file,
                ..pg
            })
        }
        s => s,
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let f = brevis::ct::log::freeze(&storage, &args.data_dir, now_ms)
        .with_context(|| format!("freezing {}", storage.describe(&args.data_dir)))?;
    println!(
        "{} {}: final tree size {}, root {}",
        if f.already {
            "already frozen:"
        } else {
            "froze"
        },
        storage.describe(&args.data_dir),
        f.tree_size,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, f.root)
    );
    println!("its window, for the successor's trust material (brevis trust-root / trust-config):");
    println!(
        "  --previous-ct-log-public-key-path {} --previous-ct-log-start {} --previous-ct-log-end {} --previous-ct-log-url <its URL>",
        args.data_dir.join("log-public-key.pem").display(),
        brevis::trust::rfc3339_millis(f.created_ms),
        brevis::trust::rfc3339_millis(f.frozen_ms)
    );
    Ok(())
}

fn ctlog_serve(args: CtlogServeArgs) -> Result<()> {
    let opts = args.options()?;
    actix_web::rt::System::new().block_on(async move {
        let signals = Signals::new().context("installing signal handlers")?;
        let server = CtLogServer::build(opts)?;
        let log = server.log();
        println!("brevis ctlog {}", env!("CARGO_PKG_VERSION"));
        println!(
            "  CT log listening on http://{}{}",
            server.addr,
            server.prefix()
        );
        println!(
            "  log ID {} (key {})",
            log.public_key().log_id_base64(),
            server.key
        );
        println!("  storage: {}", server.storage);
        println!(
            "  origin {}, tree size {}, {} accepted roots",
            log.origin(),
            log.sth().tree_size,
            log.roots().len()
        );
        if let Some(m) = server.metrics_addr {
            println!("  metrics on http://{m}/metrics");
        }
        server.run(stop_signal(signals, None)).await?;
        Ok(())
    })
}

// ---- monitor ---------------------------------------------------------------------------------

fn monitor_key(args: &MonitorArgs) -> Result<brevis::ct::LogPublicKey> {
    if let Some(p) = &args.log_public_key {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        return brevis::ct::LogPublicKey::from_pem(&text)
            .with_context(|| format!("{}: not a CT log public key", p.display()));
    }
    let Some(p) = &args.trust_root else {
        bail!("give the log's key with --log-public-key or --trust-root");
    };
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let view = brevis::trust::parse_trust_root(&text)
        .with_context(|| format!("{}: not a TrustedRoot", p.display()))?;
    let want = args.log.trim_end_matches('/');
    if let Some((k, _)) = view
        .ctlogs
        .iter()
        .find(|(_, url)| url.trim_end_matches('/') == want)
    {
        return Ok(k.clone());
    }
    match view.ctlogs.as_slice() {
        [(k, _)] => Ok(k.clone()),
        [] => bail!("{}: the TrustedRoot lists no CT log", p.display()),
        many => bail!(
            "{}: no CT log with baseUrl {want}; it lists {}",
            p.display(),
            many.iter()
                .map(|(_, u)| u.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn monitor(args: MonitorArgs) -> Result<()> {
    use brevis::monitor::{Monitor, MonitorOptions, Outcome, source::ReadPath, watch::WatchFile};
    let key = monitor_key(&args)?;
    let text = std::fs::read_to_string(&args.watch)
        .with_context(|| format!("reading {}", args.watch.display()))?;
    let watch = WatchFile::parse(&text).with_context(|| format!("{}", args.watch.display()))?;
    let opts = MonitorOptions {
        log_url: args.log.trim_end_matches('/').to_string(),
        key,
        read_path: if args.static_ct {
            ReadPath::StaticCt
        } else {
            ReadPath::Rfc6962
        },
        watch,
        state_dir: args.state_dir,
        once: args.once,
        interval: args.interval,
        from_index: args.from_index,
        webhook: args.webhook,
        batch: args.batch,
    };
    let outcome = actix_web::rt::System::new().block_on(async move {
        let signals = Signals::new().context("installing signal handlers")?;
        let mut m = Monitor::open(opts, std::io::stdout().lock())?;
        let metrics = match args.metrics_port {
            Some(port) => {
                let (server, addr) = brevis::server::metrics_listener(&args.metrics_host, port)?;
                tracing::info!(%addr, "monitor metrics on /metrics");
                let handle = server.handle();
                actix_web::rt::spawn(server);
                Some(handle)
            }
            None => None,
        };
        let r = m.run(stop_signal(signals, None)).await;
        if let Some(h) = metrics {
            h.stop(true).await;
        }
        anyhow::Ok(r?)
    })?;
    if outcome == Outcome::Inconsistent {
        std::process::exit(2);
    }
    Ok(())
}

// ---- CA material ---------------------------------------------------------------------------

fn ca_intermediate(args: CaIntermediateArgs) -> Result<()> {
    let spec = ca::create::PairSpec {
        organization: args.organization,
        common_name_prefix: args.common_name,
        intermediate_algorithm: args.key_type.into(),
        intermediate_years: args.years,
        ..ca::create::PairSpec::default()
    };
    let chain = args.out.join("chain.pem");
    let key = args.out.join("intermediate-key.pem");
    provision::write_intermediate(
        &IntermediateRequest {
            root_cert: &args.root_cert,
            root_key: &args.root_key,
            root_password: args.root_key_password.as_deref(),
            chain: &chain,
            key: &key,
            spec: &spec,
            password: args.password.as_deref(),
        },
        std::time::SystemTime::now(),
    )?;
    println!("wrote {}", chain.display());
    println!("wrote {}", key.display());
    Ok(())
}

fn ca_create(args: CaCreateArgs) -> Result<()> {
    let spec = ca::create::PairSpec {
        organization: args.organization.clone(),
        common_name_prefix: args.common_name.clone(),
        root_algorithm: args.root_key_type.into(),
        intermediate_algorithm: args.intermediate_key_type.into(),
        root_years: args.root_years,
        intermediate_years: args.intermediate_years,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    if args.hsm_key_label.is_some() || args.kms_resource.is_some() {
        return ca_create_held(args, &spec);
    }
    if args.root_cert.is_some() || args.hsm_root_key_label.is_some() {
        bail!(
            "--root-cert and --hsm-root-key-label apply to an issuing key in a token or a KMS (--hsm-key-label, --kms-resource); for a file key use `brevis ca intermediate`"
        );
    }
    let written = provision::write_pair(
        &DataDirFiles::in_one(&args.out),
        &spec,
        args.password.as_deref(),
        std::time::SystemTime::now(),
    )?;
    for p in [
        &written.chain,
        &written.key,
        &written.root,
        &written.root_key,
    ] {
        println!("wrote {}", p.display());
    }
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

/// `ca create` with the issuing key in a PKCS#11 token or a KMS.
fn ca_create_held(args: CaCreateArgs, spec: &ca::create::PairSpec) -> Result<()> {
    use provision::{HeldKey, RootSource};
    let options = args.custody.options()?;
    let key = match (&args.hsm_key_label, &args.kms_resource) {
        (Some(_), Some(_)) => bail!("give --hsm-key-label or --kms-resource, not both"),
        (Some(label), None) => {
            if options.pkcs11.is_none() {
                bail!("--hsm-key-label needs --pkcs11-config-path");
            }
            HeldKey::GenerateInToken {
                label: label.clone(),
                kind: match spec.intermediate_algorithm {
                    ca::SigningAlgorithm::EcdsaP256Sha256 => GeneratedKey::P256,
                    ca::SigningAlgorithm::EcdsaP384Sha384 => GeneratedKey::P384,
                    ca::SigningAlgorithm::RsaPkcs1Sha256 => GeneratedKey::Rsa3072,
                    _ => bail!(
                        "keys generated in a token are ecdsa-p256, ecdsa-p384 or rsa-3072 (--intermediate-key-type)"
                    ),
                },
            }
        }
        (None, Some(uri)) => HeldKey::Existing(
            KeyRef::parse(uri)
                .map_err(anyhow::Error::msg)
                .context("--kms-resource")?,
        ),
        (None, None) => unreachable!("checked by the caller"),
    };
    let root = match (args.root_cert, args.root_key, args.hsm_root_key_label) {
        (Some(cert), Some(key), None) => RootSource::Files {
            cert,
            key,
            password: args.root_key_password,
        },
        (cert, None, Some(label)) => RootSource::Token { label, cert },
        (None, None, None) => bail!(
            "the new intermediate needs a root: --root-cert and --root-key (files), or --hsm-root-key-label (a root key in the token, generated with a new root when absent)"
        ),
        _ => bail!("give --root-cert with --root-key, or --hsm-root-key-label [--root-cert]"),
    };
    let created = provision::create_for_held_key(
        &provision::HeldKeyRequest {
            key,
            root,
            options: &options,
            out: &args.out,
            caroot_id: args.hsm_caroot_id.clone(),
            spec,
        },
        std::time::SystemTime::now(),
    )?;
    println!("wrote {}", created.chain.display());
    println!("wrote {}", created.root.display());
    println!();
    println!("serve with:");
    match &created.key {
        KeyRef::Pkcs11 { label } => println!(
            "  brevis serve --ca pkcs11ca --pkcs11-config-path {} --hsm-key-label {label} {}",
            args.custody
                .pkcs11_config_path
                .as_deref()
                .unwrap_or(std::path::Path::new("CONFIG"))
                .display(),
            match &args.hsm_caroot_id {
                Some(id) => format!("--hsm-caroot-id {id}"),
                None => format!("--aws-hsm-root-ca-path {}", created.chain.display()),
            }
        ),
        other => println!(
            "  brevis serve --ca kmsca --kms-resource {} --kms-cert-chain-path {}",
            other.describe(),
            created.chain.display()
        ),
    }
    Ok(())
}

fn config_check(args: ConfigCheckArgs) -> Result<()> {
    let cfg = brevis::config::load_identity_config(Some(&args.file), args.insecure_http_issuers)?;
    let identities = brevis::identity::Identities::new(&cfg)?;
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
    if let Some(p) = &args.issuance_policy {
        let policy = brevis::config::load_issuance_policy(p, &cfg)?;
        println!(
            "\n{}: OK; who may get a certificate, per issuer:\n",
            p.display()
        );
        print!("{}", policy.describe(&cfg));
    }
    Ok(())
}

fn ctlog_key(args: CtlogKeyArgs) -> Result<()> {
    let spki = match &args.hsm_key_label {
        Some(label) => {
            let options = args.custody.options()?;
            let Some(config) = options.pkcs11.as_ref() else {
                bail!("--hsm-key-label needs --pkcs11-config-path");
            };
            let spki = brevis::signers::pkcs11::generate_key(config, label, GeneratedKey::P256)
                .with_context(|| format!("generating the CT log key {label:?} in the token"))?;
            std::fs::create_dir_all(&args.out)
                .with_context(|| format!("creating {}", args.out.display()))?;
            brevis::files::write_file(
                &args.out.join("log-public-key.pem"),
                &brevis::model::pem::encode("PUBLIC KEY", &spki),
                false,
            )?;
            spki
        }
        None => brevis::ct::log::load_or_create_key(&args.out)?
            .public_key_spki()
            .to_vec(),
    };
    let key = brevis::ct::LogPublicKey::from_spki_der(&spki)?;
    println!("{}", args.out.join("log-public-key.pem").display());
    println!("log ID {}", key.log_id_base64());
    Ok(())
}

// ---- trust material ------------------------------------------------------------------------

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
        .unwrap_or_else(|| DataDirFiles::new(&args.data_dir).chain);
    let chain_text = std::fs::read_to_string(&chain_path)
        .with_context(|| format!("reading the CA chain {}", chain_path.display()))?;
    let chain = ca::chain::parse_pem_chain(&chain_text)
        .with_context(|| format!("the CA chain {}", chain_path.display()))?;
    let log_dir = args.data_dir.join("ctlog");
    let key_path = args
        .ct_log_public_key_path
        .clone()
        .unwrap_or_else(|| log_dir.join("log-public-key.pem"));
    let key_text = std::fs::read_to_string(&key_path)
        .with_context(|| format!("reading the CT log key {}", key_path.display()))?;
    let key = brevis::ct::LogPublicKey::from_pem(&key_text)
        .with_context(|| format!("the CT log key {}", key_path.display()))?;
    let start_ms = match &args.ct_log_start {
        Some(t) => parse_rfc3339_ms("--ct-log-start", t)?,
        None => brevis::ct::log::created_millis(&log_dir)
            .ok()
            .flatten()
            .context("finding when the CT log was created (or pass --ct-log-start)")?,
    };
    let mut tlogs = Vec::new();
    if let (Some(url), Some(p)) = (&args.rekor_url, &args.rekor_public_key_path) {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("--rekor-public-key-path {}", p.display()))?;
        let block = brevis::model::pem::parse_first(&text)
            .with_context(|| format!("--rekor-public-key-path {}", p.display()))?;
        let rekor_start = match &args.rekor_start {
            Some(t) => parse_rfc3339_ms("--rekor-start", t)?,
            None => start_ms,
        };
        tlogs.push(brevis::trust::tlog_json(&brevis::trust::TlogEntry {
            base_url: url.clone(),
            spki: block.der,
            start_ms: rekor_start,
        })?);
    }
    let read_chain = |p: &PathBuf| -> Result<Vec<Vec<u8>>> {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading the CA chain {}", p.display()))?;
        ca::chain::parse_pem_chain(&text).with_context(|| format!("the CA chain {}", p.display()))
    };
    let entry = |chain, start, end| brevis::trust::CaEntry {
        uri: args.ca_url.clone(),
        chain,
        start,
        end,
    };
    // A rotation lists both CAs, each with its window; the one issuing now comes first.
    let cas = match (
        &args.next_ca_chain,
        &args.previous_ca_chain,
        args.ca_switch_at,
    ) {
        (Some(next), None, Some(at)) => vec![
            entry(chain, None, Some(at)),
            entry(read_chain(next)?, Some(at), None),
        ],
        (None, Some(previous), Some(at)) => vec![
            entry(chain, Some(at), None),
            entry(read_chain(previous)?, None, Some(at)),
        ],
        (None, None, _) => vec![entry(chain, None, None)],
        _ => bail!("--ca-switch-at goes with --next-ca-chain or --previous-ca-chain"),
    };
    let mut logs = vec![brevis::trust::CtLogEntry {
        base_url: args.ctlog_url.clone(),
        key,
        start_ms,
        end_ms: None,
    }];
    for spec in &args.extra_ct_log {
        let Some((url, path)) = spec.rsplit_once('=') else {
            bail!("--extra-ct-log {spec:?}: expected URL=PUBLIC_KEY_PEM_PATH");
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--extra-ct-log {url}: reading {path}"))?;
        logs.push(brevis::trust::CtLogEntry {
            base_url: url.to_string(),
            key: brevis::ct::LogPublicKey::from_pem(&text)
                .with_context(|| format!("--extra-ct-log {url}: {path}"))?,
            start_ms,
            end_ms: None,
        });
    }
    if let (Some(p), Some(url), Some(start), Some(end)) = (
        &args.previous_ct_log_public_key_path,
        &args.previous_ct_log_url,
        &args.previous_ct_log_start,
        &args.previous_ct_log_end,
    ) {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("--previous-ct-log-public-key-path {}", p.display()))?;
        logs.push(brevis::trust::CtLogEntry {
            base_url: url.clone(),
            key: brevis::ct::LogPublicKey::from_pem(&text)
                .with_context(|| format!("--previous-ct-log-public-key-path {}", p.display()))?,
            start_ms: parse_rfc3339_ms("--previous-ct-log-start", start)?,
            end_ms: Some(parse_rfc3339_ms("--previous-ct-log-end", end)?),
        });
    }
    let root = brevis::trust::trusted_root(&cas, &logs, tlogs)?;
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

// ---- the client side -------------------------------------------------------------------------

fn read_trust_root(path: &PathBuf) -> Result<brevis::trust::TrustView> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    brevis::trust::parse_trust_root(&text).with_context(|| format!("{}", path.display()))
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
            ca::keyfile::load(&text, None).with_context(|| format!("{}", p.display()))?
        }
        None => brevis::client::new_key()?,
    };
    let method = match args.method {
        KeyPathArg::Csr => brevis::client::KeyPath::Csr,
        KeyPathArg::PublicKey => brevis::client::KeyPath::PublicKey,
    };
    let chain = actix_web::rt::System::new()
        .block_on(brevis::client::request(&args.url, &token, &key, method))?;
    let leaf = brevis::model::pem::parse_first(chain.first().context("empty chain")?)?.der;
    let trust = match &args.trust_root {
        Some(p) => read_trust_root(p)?,
        None => brevis::trust::TrustView {
            ca_certs: chain
                .iter()
                .skip(1)
                .map(|c| brevis::model::pem::parse_first(c).map(|b| b.der))
                .collect::<Result<_, _>>()?,
            ctlogs: Vec::new(),
        },
    };
    let report = brevis::client::inspect(&leaf, &trust)?;
    std::fs::write(&args.out, chain.concat())
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    if args.key.is_none() {
        let pkcs8 = key.to_pkcs8()?;
        brevis::files::write_file(
            &args.out_key,
            &brevis::model::pem::encode("PRIVATE KEY", &pkcs8),
            true,
        )?;
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
    let leaf = brevis::model::pem::parse_first(&text)?.der;
    let trust = read_trust_root(&args.trust_root)?;
    let report = brevis::client::inspect(&leaf, &trust)?;
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
