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

use brevis::ca::{LocalSigner, Signer, SigningAlgorithm};
use common::issuance::{
    Checker, Issuer, PHASES, Prepared, memory, phase_totals, prepare, run_level, start_brevis,
};
use common::percentile_ms;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

    let (mut child, addr, pid, _, metrics_url) =
        start_brevis(dir.path(), &issuer, &a.log_level, &a.serve_args);
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
        std::slice::from_ref(&addr),
        &pools[0].1,
        16,
        Duration::from_secs(2),
        &checker,
        &[pid],
    );
    assert_eq!(warm.errors, 0, "warm-up failed: {:?}", warm.first_error);
    let (rss0, hwm0) = memory(pid);
    println!("\nbrevis memory after warm-up: RSS {rss0:.1} MiB, peak {hwm0:.1} MiB");

    println!(
        "\n| path | clients | certs/s | p50 ms | p99 ms | p99.9 ms | errors | checked | brevis CPU s/s | certs per CPU-s | % of floor | KiB written per cert |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    // One client's latency by phase (brevis's own timers; "HTTP and the rest" is the
    // client-side mean minus the phases).
    let mut breakdown = Vec::new();
    for (path, pool) in &pools {
        for &c in &a.levels {
            let before = rt.block_on(phase_totals(&metrics_url));
            let l = run_level(
                &rt,
                std::slice::from_ref(&addr),
                pool,
                c,
                Duration::from_secs(a.seconds),
                &checker,
                &[pid],
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
            if c == 1 {
                let after = rt.block_on(phase_totals(&metrics_url));
                let mean_ms = |(s1, n1): (f64, f64), (s0, n0): (f64, f64)| {
                    (s1 - s0) / (n1 - n0).max(1.0) * 1000.0
                };
                let phases: Vec<f64> = after
                    .iter()
                    .zip(&before)
                    .map(|(a, b)| mean_ms(*a, *b))
                    .collect();
                let total = l.latencies.iter().map(|d| d.as_secs_f64()).sum::<f64>()
                    / (l.latencies.len().max(1) as f64)
                    * 1000.0;
                breakdown.push((path.clone(), phases, total));
            }
        }
    }
    if !breakdown.is_empty() {
        println!(
            "\none client, mean ms per issuance by phase (log = queue + batch commit with fsync):"
        );
        println!(
            "| path | {} | HTTP and the rest | total (client) |",
            PHASES.join(" | ")
        );
        println!("|---|{}---|---|", "---|".repeat(PHASES.len()));
        for (path, phases, total) in &breakdown {
            let sum: f64 = phases.iter().sum();
            println!(
                "| {path} | {} | {:.3} | {total:.3} |",
                phases
                    .iter()
                    .map(|p| format!("{p:.3}"))
                    .collect::<Vec<_>>()
                    .join(" | "),
                total - sum
            );
        }
    }

    if a.soak_minutes > 0 {
        println!("\nsoak: {} minutes at 64 clients, key path", a.soak_minutes);
        println!("| minute | certs/s | p99 ms | errors | RSS MiB | peak RSS MiB |");
        println!("|---|---|---|---|---|---|");
        for m in 1..=a.soak_minutes {
            let l = run_level(
                &rt,
                std::slice::from_ref(&addr),
                &pools[0].1,
                64,
                Duration::from_secs(60),
                &checker,
                &[pid],
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
