//! Load benchmark of the CT log's write path: `add-pre-chain` over HTTP against a
//! standalone `brevis ctlog serve` (durable SQLite batches), at fixed numbers of concurrent
//! submitters, each submission a distinct precertificate.
//!
//!     cargo bench --bench ctlog_load -- [--seconds N] [--concurrency 1,16,256] [--batch-wait MS]
//!
//! Reports entries/s, latency percentiles and errors per concurrency level.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use brevis::ca::{LocalSigner, SigningAlgorithm};
use common::{percentile_ms, process_cpu, process_write_bytes};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, SerialNumber,
};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Args {
    seconds: u64,
    levels: Vec<usize>,
    batch_wait_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10,
        levels: vec![1, 16, 256],
        batch_wait_ms: 0,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        match argv[i].as_str() {
            "--seconds" => {
                a.seconds = argv[i + 1].parse().unwrap();
                i += 1;
            }
            "--concurrency" => {
                a.levels = argv[i + 1].split(',').map(|x| x.parse().unwrap()).collect();
                i += 1;
            }
            "--batch-wait" => {
                a.batch_wait_ms = argv[i + 1].parse().unwrap();
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    a
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    // A root that signs precertificates directly.
    let ca_key = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let mut root = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "bench root");
    root.distinguished_name = dn;
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let root_der = root.self_signed(&ca_key).unwrap().der().to_vec();
    std::fs::write(
        dir.path().join("roots.pem"),
        brevis::model::pem::certificate(&root_der),
    )
    .unwrap();
    let leaf_key = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let issuer = Issuer::from_params(&root, &ca_key);
    let make = |serial: u64| -> String {
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.serial_number = Some(SerialNumber::from_slice(
            &[&[1u8][..], &serial.to_be_bytes()].concat(),
        ));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let mut poison =
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3], vec![5, 0]);
        poison.set_criticality(true);
        p.custom_extensions = vec![poison];
        let der = p.signed_by(&leaf_key, &issuer).unwrap().der().to_vec();
        serde_json::json!({"chain": [STANDARD.encode(der)]}).to_string()
    };

    let mut child = Command::new(env!("CARGO_BIN_EXE_brevis"))
        .args(["ctlog", "serve", "--host", "127.0.0.1", "--port", "0"])
        .arg("--data-dir")
        .arg(dir.path().join("log"))
        .arg("--roots")
        .arg(dir.path().join("roots.pem"))
        .arg("--ctlog-batch-max-wait")
        .arg(format!("{}ms", a.batch_wait_ms))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(u) = line.trim().strip_prefix("CT log listening on ") {
            url = u.to_string();
            break;
        }
    }
    let server_pid = child.id();
    let endpoint = format!("{url}/ct/v1/add-pre-chain");
    println!(
        "ctlog_load: {url}, batch max wait {} ms, {} s per level",
        a.batch_wait_ms, a.seconds
    );
    println!(
        "| submitters | entries/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU per entry (µs) | KiB written per entry |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut serial = 0u64;
    for &c in &a.levels {
        // Enough distinct precertificates for this level (generated before timing).
        let budget = (8000 * a.seconds as usize).max(2000);
        let bodies: Arc<Vec<String>> = Arc::new(
            (0..budget)
                .map(|_| {
                    serial += 1;
                    make(serial)
                })
                .collect(),
        );
        let next = Arc::new(AtomicUsize::new(0));
        let cpu_before = process_cpu(server_pid);
        let written_before = process_write_bytes(server_pid);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(a.seconds);
        let results: Vec<(Vec<Duration>, usize)> = rt.block_on(async {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()
                .unwrap();
            let tasks: Vec<_> = (0..c)
                .map(|_| {
                    let (http, bodies, next, endpoint) =
                        (http.clone(), bodies.clone(), next.clone(), endpoint.clone());
                    tokio::spawn(async move {
                        let mut lat = Vec::new();
                        let mut errors = 0;
                        while Instant::now() < deadline {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(body) = bodies.get(i) else { break };
                            let t = Instant::now();
                            match http
                                .post(&endpoint)
                                .header("content-type", "application/json")
                                .body(body.clone())
                                .send()
                                .await
                            {
                                Ok(r) if r.status() == 200 => {
                                    let _ = r.bytes().await;
                                    lat.push(t.elapsed());
                                }
                                _ => errors += 1,
                            }
                        }
                        (lat, errors)
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        let elapsed = started.elapsed();
        let cpu = process_cpu(server_pid) - cpu_before;
        let written = process_write_bytes(server_pid).saturating_sub(written_before);
        let mut lat: Vec<Duration> = results
            .iter()
            .flat_map(|(l, _)| l.iter().copied())
            .collect();
        let errors: usize = results.iter().map(|(_, e)| e).sum();
        lat.sort();
        let n = lat.len();
        println!(
            "| {c} | {:.0} | {:.2} | {:.2} | {:.2} | {errors} | {:.1} | {:.1} |",
            n as f64 / elapsed.as_secs_f64(),
            percentile_ms(&lat, 0.5),
            percentile_ms(&lat, 0.99),
            percentile_ms(&lat, 0.999),
            if n > 0 { cpu / n as f64 * 1e6 } else { 0.0 },
            written as f64 / 1024.0 / n.max(1) as f64,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
