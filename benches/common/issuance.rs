//! The issuance load generator shared by `load` and `scaling`: a loopback OIDC issuer,
//! prebuilt signing requests, closed-loop keep-alive clients over one or several brevis
//! addresses, and the check of one response in 32 (SAN, signature, embedded SCT).

use super::{process_cpu, process_write_bytes};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use brevis::ca::{LocalSigner, Signer, SigningAlgorithm};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---- a loopback OIDC issuer (RS256, as GitHub Actions and Google sign) ----------------

pub struct Issuer {
    pub url: String,
    pub key: aws_lc_rs::rsa::KeyPair,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl Issuer {
    pub fn start() -> Arc<Issuer> {
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

    pub fn mint(&self, email: &str, lifetime: u64) -> String {
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

pub struct Prepared {
    /// Full HTTP request bytes.
    pub bytes: Vec<u8>,
    pub email: String,
}

pub fn http_request(body: &str, bearer: Option<&str>) -> Vec<u8> {
    let auth = bearer
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /api/v2/signingCert HTTP/1.1\r\nhost: brevis\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn prepare(issuer: &Issuer, path: &str, count: usize, lifetime: u64) -> Vec<Prepared> {
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

pub struct Checker {
    pub ctlog: brevis::ct::LogPublicKey,
}

impl Checker {
    pub fn check(&self, body: &[u8], email: &str) -> Result<(), String> {
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
pub struct Outcome {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub checked: usize,
    pub first_error: Option<String>,
}

pub async fn read_response(
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

pub async fn worker(
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

pub struct Level {
    pub certs: usize,
    pub seconds: f64,
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub checked: usize,
    pub first_error: Option<String>,
    pub cpu: f64,
    pub written: u64,
}

pub fn run_level(
    rt: &tokio::runtime::Runtime,
    addrs: &[String],
    pool: &Arc<Vec<Prepared>>,
    concurrency: usize,
    duration: Duration,
    checker: &Arc<Checker>,
    pids: &[u32],
) -> Level {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before: f64 = pids.iter().map(|p| process_cpu(*p)).sum();
    let written_before: u64 = pids.iter().map(|p| process_write_bytes(*p)).sum();
    let started = Instant::now();
    let deadline = started + duration;
    let outcomes: Vec<Outcome> = rt.block_on(async {
        let tasks: Vec<_> = (0..concurrency)
            .map(|i| {
                tokio::spawn(worker(
                    addrs[i % addrs.len()].clone(),
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
    let cpu = pids.iter().map(|p| process_cpu(*p)).sum::<f64>() - cpu_before;
    let written = pids
        .iter()
        .map(|p| process_write_bytes(*p))
        .sum::<u64>()
        .saturating_sub(written_before);
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
pub fn memory(pid: u32) -> (f64, f64) {
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

// ---- brevis ---------------------------------------------------------------------------

pub fn start_brevis(
    dir: &std::path::Path,
    issuer: &Issuer,
    log_level: &str,
    extra: &[String],
) -> (Child, String, u32, Option<String>, String) {
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
    // BREVIS_BENCH_BINARY runs another build of brevis under the same load (A/B runs of
    // two commits, docs/benchmarks.md).
    let binary = std::env::var_os("BREVIS_BENCH_BINARY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_brevis").into());
    let mut child = Command::new(binary)
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
    let mut ctlog = None;
    let mut metrics = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.trim().strip_prefix("API listening on http://") {
            url = u.to_string();
        }
        if let Some(u) = line.trim().strip_prefix("metrics on ") {
            metrics = u.to_string();
        }
        if let Some(u) = line.trim().strip_prefix("CT log listening on ") {
            ctlog = Some(u.to_string());
        }
        if line.contains("trusted OIDC issuers:") {
            break;
        }
    }
    // Keep reading: brevis prints more (the issuer list), and a closed pipe would kill it.
    std::thread::spawn(move || for _ in lines {});
    let pid = child.id();
    (child, url, pid, ctlog, metrics)
}

/// The phases of one issuance as brevis times them (`brevis_issuance_phase_duration_seconds`).
pub const PHASES: [&str; 6] = [
    "authenticate",
    "identify",
    "prove",
    "prepare",
    "log",
    "issue",
];

/// (sum seconds, count) of each phase in [`PHASES`] order, from brevis's metrics.
pub async fn phase_totals(metrics_url: &str) -> Vec<(f64, f64)> {
    let text = match reqwest::get(metrics_url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let value = |name: &str, phase: &str| -> f64 {
        let prefix = format!("brevis_issuance_phase_duration_seconds_{name}{{phase=\"{phase}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    PHASES
        .iter()
        .map(|p| (value("sum", p), value("count", p)))
        .collect()
}
