//! Load benchmark of issuance: `brevis serve` on its embedded defaults (the embedded CT
//! log, durable group-commit batches) trusting a loopback OIDC issuer, driven through
//! `POST /api/v2/signingCert` at fixed concurrency levels, both key paths, with tokens
//! minted and request bodies built before timing starts.
//!
//!     cargo bench --bench load -- [--seconds 10] [--concurrency 1,16,64,256]
//!         [--paths key,csr] [--soak-minutes 0] [--log-level info]
//!
//! The load generator is a closed-loop HTTP/1.1 keep-alive client on one thread (raw
//! sockets, prebuilt request bytes), so it takes as little of the machine as possible.
//! Every response's status is checked; one in 32 is decoded and verified (the leaf's SAN,
//! its signature by the intermediate, its embedded SCT under the CT log's key).
//!
//! Before the load, the crypto floor is measured on one thread with the same library
//! (aws-lc-rs): the cryptography one issuance cannot avoid. brevis's certificates per
//! CPU-second of its own process (from /proc) are reported as a share of it.

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use brevis::ca::{LocalSigner, Signer, SigningAlgorithm};
use common::{percentile_ms, process_cpu, process_write_bytes};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Args {
    seconds: u64,
    levels: Vec<usize>,
    paths: Vec<String>,
    soak_minutes: u64,
    log_level: String,
    /// Extra flags for `brevis serve` (e.g. "--workers 1").
    serve_args: Vec<String>,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10,
        levels: vec![1, 16, 64, 256],
        paths: vec!["key".into(), "csr".into()],
        soak_minutes: 0,
        log_level: "info".into(),
        serve_args: Vec::new(),
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--seconds" => a.seconds = v.parse().unwrap(),
            "--concurrency" => a.levels = v.split(',').map(|x| x.parse().unwrap()).collect(),
            "--paths" => a.paths = v.split(',').map(String::from).collect(),
            "--soak-minutes" => a.soak_minutes = v.parse().unwrap(),
            "--log-level" => a.log_level = v,
            "--serve-args" => a.serve_args = v.split_whitespace().map(String::from).collect(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

// ---- a loopback OIDC issuer (RS256, as GitHub Actions and Google sign) ----------------

struct Issuer {
    url: String,
    key: aws_lc_rs::rsa::KeyPair,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl Issuer {
    fn start() -> Arc<Issuer> {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let public = aws_lc_rs::signature::KeyPair::public_key(&key);
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issuer = Arc::new(Issuer { url, key, n, e });
        let me = issuer.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req.split_whitespace().nth(1).unwrap_or("/");
                let body = if path.ends_with("/.well-known/openid-configuration") {
                    json!({"issuer": me.url, "jwks_uri": format!("{}/jwks", me.url),
                           "id_token_signing_alg_values_supported": ["RS256"]})
                } else {
                    json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                        "n": URL_SAFE_NO_PAD.encode(&me.n), "e": URL_SAFE_NO_PAD.encode(&me.e)}]})
                }
                .to_string();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        issuer
    }

    fn mint(&self, email: &str, lifetime: u64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            json!({"iss": self.url, "aud": "sigstore", "sub": email, "email": email,
                   "email_verified": true, "iat": now, "exp": now + lifetime})
            .to_string(),
        );
        let input = format!("{header}.{claims}");
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

// ---- requests -------------------------------------------------------------------------

struct Prepared {
    /// Full HTTP request bytes.
    bytes: Vec<u8>,
    email: String,
}

fn http_request(body: &str, bearer: Option<&str>) -> Vec<u8> {
    let auth = bearer
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /api/v2/signingCert HTTP/1.1\r\nhost: brevis\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn prepare(issuer: &Issuer, path: &str, count: usize, lifetime: u64) -> Vec<Prepared> {
    (0..count)
        .map(|i| {
            let email = format!("user{}@example.com", i % 256);
            let token = issuer.mint(&email, lifetime);
            let key = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
            let bytes = match path {
                "key" => {
                    let pop = key.sign(email.as_bytes()).unwrap();
                    let body = json!({
                        "credentials": {"oidcIdentityToken": token},
                        "publicKeyRequest": {
                            "publicKey": {"algorithm": "ECDSA",
                                "content": brevis::model::pem::encode("PUBLIC KEY", key.public_key_spki())},
                            "proofOfPossession": STANDARD.encode(pop)
                        }
                    });
                    http_request(&body.to_string(), None)
                }
                _ => {
                    let pkcs8 = key.to_pkcs8().unwrap();
                    let kp = rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap();
                    let csr = rcgen::CertificateParams::default()
                        .serialize_request(&kp)
                        .unwrap()
                        .pem()
                        .unwrap();
                    let body = json!({"certificateSigningRequest": STANDARD.encode(csr)});
                    http_request(&body.to_string(), Some(&token))
                }
            };
            Prepared { bytes, email }
        })
        .collect()
}

// ---- checking responses ---------------------------------------------------------------

struct Checker {
    ctlog: brevis::ct::LogPublicKey,
}

impl Checker {
    fn check(&self, body: &[u8], email: &str) -> Result<(), String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let chain = v["signedCertificateEmbeddedSct"]["chain"]["certificates"]
            .as_array()
            .ok_or("no embedded-SCT chain")?;
        let der: Vec<Vec<u8>> = chain
            .iter()
            .map(|p| {
                brevis::model::pem::parse_first(p.as_str().unwrap_or_default())
                    .map(|b| b.der)
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let (_, leaf) = x509_parser::parse_x509_certificate(&der[0]).map_err(|e| e.to_string())?;
        let (_, inter) = x509_parser::parse_x509_certificate(&der[1]).map_err(|e| e.to_string())?;
        let san = leaf
            .subject_alternative_name()
            .ok()
            .flatten()
            .ok_or("no SAN")?;
        let ok_san = san.value.general_names.iter().any(
            |g| matches!(g, x509_parser::extensions::GeneralName::RFC822Name(e) if *e == email),
        );
        if !ok_san {
            return Err(format!("SAN is not {email}"));
        }
        if !brevis::model::x509::is_signed_by(&leaf, &inter) {
            return Err("leaf not signed by the intermediate".into());
        }
        let scts = brevis::ct::embedded_scts(&der[0], &der[1]).map_err(|e| e.to_string())?;
        if scts.len() != 1 || !self.ctlog.verify_sct(&scts[0].sct, &scts[0].entry()) {
            return Err("embedded SCT does not verify".into());
        }
        Ok(())
    }
}

// ---- the load generator ---------------------------------------------------------------

#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    errors: usize,
    checked: usize,
    first_error: Option<String>,
}

async fn read_response(
    s: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    buf.clear();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or("bad status line")?;
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or("no content-length")?;
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed mid-body".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok((status, buf[end + 4..end + 4 + len].to_vec()));
        }
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn worker(
    addr: String,
    pool: Arc<Vec<Prepared>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
    checker: Arc<Checker>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut conn: Option<tokio::net::TcpStream> = None;
    let mut buf = Vec::with_capacity(16384);
    let mut n = 0usize;
    while Instant::now() < deadline {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let req = &pool[i % pool.len()];
        if conn.is_none() {
            match tokio::net::TcpStream::connect(&addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    conn = Some(s);
                }
                Err(e) => {
                    out.errors += 1;
                    out.first_error.get_or_insert(e.to_string());
                    continue;
                }
            }
        }
        let s = conn.as_mut().unwrap();
        let t = Instant::now();
        let result = match s.write_all(&req.bytes).await {
            Ok(()) => read_response(s, &mut buf).await,
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok((200, body)) => {
                out.latencies.push(t.elapsed());
                n += 1;
                if n % 32 == 1 {
                    out.checked += 1;
                    if let Err(e) = checker.check(&body, &req.email) {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                    }
                }
            }
            Ok((status, body)) => {
                out.errors += 1;
                out.first_error
                    .get_or_insert(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
                conn = None;
            }
        }
    }
    out
}

struct Level {
    certs: usize,
    seconds: f64,
    latencies: Vec<Duration>,
    errors: usize,
    checked: usize,
    first_error: Option<String>,
    cpu: f64,
    written: u64,
}

fn run_level(
    rt: &tokio::runtime::Runtime,
    addr: &str,
    pool: &Arc<Vec<Prepared>>,
    concurrency: usize,
    duration: Duration,
    checker: &Arc<Checker>,
    pid: u32,
) -> Level {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = process_cpu(pid);
    let written_before = process_write_bytes(pid);
    let started = Instant::now();
    let deadline = started + duration;
    let outcomes: Vec<Outcome> = rt.block_on(async {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                tokio::spawn(worker(
                    addr.to_string(),
                    pool.clone(),
                    next.clone(),
                    deadline,
                    checker.clone(),
                ))
            })
            .collect();
        let mut v = Vec::new();
        for t in tasks {
            v.push(t.await.unwrap());
        }
        v
    });
    let seconds = started.elapsed().as_secs_f64();
    let cpu = process_cpu(pid) - cpu_before;
    let written = process_write_bytes(pid).saturating_sub(written_before);
    let mut latencies: Vec<Duration> = outcomes
        .iter()
        .flat_map(|o| o.latencies.iter().copied())
        .collect();
    latencies.sort();
    Level {
        certs: latencies.len(),
        seconds,
        latencies,
        errors: outcomes.iter().map(|o| o.errors).sum(),
        checked: outcomes.iter().map(|o| o.checked).sum(),
        first_error: outcomes.into_iter().find_map(|o| o.first_error),
        cpu,
        written,
    }
}

// ---- /proc ----------------------------------------------------------------------------

/// (VmRSS, VmHWM) in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

/// CPU nanoseconds used by the calling thread.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

// ---- the crypto floor -----------------------------------------------------------------

/// Mean thread-CPU microseconds of `f` over enough iterations to take ~0.3 s.
fn measure(mut f: impl FnMut()) -> f64 {
    for _ in 0..50 {
        f();
    }
    let mut iters = 0u64;
    let start = thread_cpu_ns();
    let wall = Instant::now();
    while wall.elapsed() < Duration::from_millis(300) {
        for _ in 0..50 {
            f();
        }
        iters += 50;
    }
    (thread_cpu_ns() - start) as f64 / iters as f64 / 1000.0
}

fn crypto_floor(issuer: &Issuer) -> Vec<(&'static str, f64)> {
    // The token verification brevis does: jsonwebtoken's RS256 verify with the JWK.
    let token = issuer.mint("floor@example.com", 600);
    let (input, sig) = token.rsplit_once('.').unwrap();
    let dk = jsonwebtoken::DecodingKey::from_rsa_raw_components(&issuer.n, &issuer.e);
    assert!(
        jsonwebtoken::crypto::verify(sig, input.as_bytes(), &dk, jsonwebtoken::Algorithm::RS256)
            .unwrap()
    );
    // Client key, CA key (the default intermediate is P-256) and CT log key.
    let client = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let client_pub =
        brevis::model::keys::PublicKey::from_spki_der(client.public_key_spki()).unwrap();
    let pop = client.sign(b"floor@example.com").unwrap();
    let ca = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let log = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let log_pub = brevis::model::keys::PublicKey::from_spki_der(log.public_key_spki()).unwrap();
    // Message sizes as in a real issuance: a ~650-byte TBS, a ~700-byte SCT input.
    let tbs = vec![0x5au8; 650];
    let sct_input = vec![0xa5u8; 700];
    let sct_sig = log.sign(&sct_input).unwrap();
    vec![
        (
            "token signature verify (RS256)",
            measure(|| {
                let _ = jsonwebtoken::crypto::verify(
                    sig,
                    input.as_bytes(),
                    &dk,
                    jsonwebtoken::Algorithm::RS256,
                );
            }),
        ),
        (
            "proof of possession verify (ECDSA P-256)",
            measure(|| {
                assert!(client_pub.verify_proof(b"floor@example.com", &pop));
            }),
        ),
        (
            "precertificate sign (ECDSA P-256)",
            measure(|| {
                let _ = ca.sign(&tbs).unwrap();
            }),
        ),
        (
            "SCT sign (ECDSA P-256)",
            measure(|| {
                let _ = log.sign(&sct_input).unwrap();
            }),
        ),
        (
            "SCT verify (ECDSA P-256)",
            measure(|| {
                assert!(log_pub.verify_proof(&sct_input, &sct_sig));
            }),
        ),
        (
            "final certificate sign (ECDSA P-256)",
            measure(|| {
                let _ = ca.sign(&tbs).unwrap();
            }),
        ),
    ]
}

// ---- brevis ---------------------------------------------------------------------------

fn start_brevis(
    dir: &std::path::Path,
    issuer: &Issuer,
    log_level: &str,
    extra: &[String],
) -> (Child, String, u32) {
    let config = dir.join("identity.yaml");
    std::fs::write(
        &config,
        format!(
            "oidc-issuers:\n  {u}:\n    issuer-url: {u}\n    client-id: sigstore\n    type: email\n",
            u = issuer.url
        ),
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.join("brevis.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_brevis"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--metrics-port",
            "0",
        ])
        .args(["--ctlog-port", "0", "--insecure-http-issuers"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--config-path")
        .arg(&config)
        .args(extra)
        .env("RUST_LOG", log_level)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut url = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(u) = line.trim().strip_prefix("API listening on http://") {
            url = u.to_string();
        }
        if line.contains("trusted OIDC issuers:") {
            break;
        }
    }
    let pid = child.id();
    (child, url, pid)
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::start();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "load: {cores} cores; brevis serve on embedded defaults, RUST_LOG={}",
        a.log_level
    );

    // The crypto floor, on an idle machine, before anything else runs.
    let floor = crypto_floor(&issuer);
    let floor_us: f64 = floor.iter().map(|(_, us)| us).sum();
    println!("\ncrypto floor (one thread, aws-lc-rs), µs of CPU per operation:");
    for (name, us) in &floor {
        println!("  {name:<44} {us:>7.1}");
    }
    println!(
        "  {:<44} {floor_us:>7.1}  => {:.0} issuances per CPU-second",
        "total",
        1e6 / floor_us
    );

    let lifetime = 3600 + a.soak_minutes * 60 + 60 * a.seconds * (a.levels.len() as u64);
    let pools: Vec<(String, Arc<Vec<Prepared>>)> = a
        .paths
        .iter()
        .map(|p| (p.clone(), Arc::new(prepare(&issuer, p, 2048, lifetime))))
        .collect();

    let (mut child, addr, pid) = start_brevis(dir.path(), &issuer, &a.log_level, &a.serve_args);
    let key = std::fs::read_to_string(dir.path().join("data/ctlog/log-public-key.pem")).unwrap();
    let checker = Arc::new(Checker {
        ctlog: brevis::ct::LogPublicKey::from_pem(&key).unwrap(),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Warm up: discovery, JWKS, connections, allocator.
    let warm = run_level(
        &rt,
        &addr,
        &pools[0].1,
        16,
        Duration::from_secs(2),
        &checker,
        pid,
    );
    assert_eq!(warm.errors, 0, "warm-up failed: {:?}", warm.first_error);
    let (rss0, hwm0) = memory(pid);
    println!("\nbrevis memory after warm-up: RSS {rss0:.1} MiB, peak {hwm0:.1} MiB");

    println!(
        "\n| path | clients | certs/s | p50 ms | p99 ms | p99.9 ms | errors | checked | brevis CPU s/s | certs per CPU-s | % of floor | KiB written per cert |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (path, pool) in &pools {
        for &c in &a.levels {
            let l = run_level(
                &rt,
                &addr,
                pool,
                c,
                Duration::from_secs(a.seconds),
                &checker,
                pid,
            );
            let per_cpu = l.certs as f64 / l.cpu.max(1e-9);
            println!(
                "| {path} | {c} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {:.2} | {:.0} | {:.0}% | {:.1} |",
                l.certs as f64 / l.seconds,
                percentile_ms(&l.latencies, 0.5),
                percentile_ms(&l.latencies, 0.99),
                percentile_ms(&l.latencies, 0.999),
                l.errors,
                l.checked,
                l.cpu / l.seconds,
                per_cpu,
                per_cpu * floor_us / 1e6 * 100.0,
                l.written as f64 / 1024.0 / (l.certs.max(1) as f64),
            );
            if let Some(e) = l.first_error {
                println!("    first error: {e}");
            }
        }
    }

    if a.soak_minutes > 0 {
        println!("\nsoak: {} minutes at 64 clients, key path", a.soak_minutes);
        println!("| minute | certs/s | p99 ms | errors | RSS MiB | peak RSS MiB |");
        println!("|---|---|---|---|---|---|");
        for m in 1..=a.soak_minutes {
            let l = run_level(
                &rt,
                &addr,
                &pools[0].1,
                64,
                Duration::from_secs(60),
                &checker,
                pid,
            );
            let (rss, hwm) = memory(pid);
            println!(
                "| {m} | {:.0} | {:.2} | {} | {rss:.1} | {hwm:.1} |",
                l.certs as f64 / l.seconds,
                percentile_ms(&l.latencies, 0.99),
                l.errors
            );
        }
    }
    let (rss1, hwm1) = memory(pid);
    println!("\nbrevis memory at the end: RSS {rss1:.1} MiB, peak {hwm1:.1} MiB");
    let _ = child.kill();
    let _ = child.wait();
    // The machine's speed drifts (a shared VM): the floor again, with nothing running.
    let after: f64 = crypto_floor(&issuer).iter().map(|(_, us)| us).sum();
    println!(
        "crypto floor again after the load: {after:.1} µs ({:.0} issuances per CPU-second); \
         the percentages above use the first, {floor_us:.1} µs",
        1e6 / after
    );
}
