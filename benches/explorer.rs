//! The explorer's search API on a large log: a log is bulk-loaded with `--entries` real
//! certificates (rcgen; an email SAN among `--identities` people and a source-repository
//! extension among a tenth as many repositories), `brevis ctlog serve` indexes it (the
//! time is reported), then searches are timed over HTTP one at a time: exact identity,
//! identity prefix, repository, serial, and the tenth page of a prefix search.
//!
//!     cargo bench --features test-support --bench explorer -- [--entries 100000]
//!         [--identities 10000] [--queries 300]

mod common;

use brevis::ca::{LocalSigner, SigningAlgorithm};
use common::percentile_ms;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, SanType, SerialNumber,
};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    entries: u64,
    identities: u64,
    queries: usize,
}

fn args() -> Args {
    let mut a = Args {
        entries: 100_000,
        identities: 10_000,
        queries: 300,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--entries" => a.entries = v.parse().unwrap(),
            "--identities" => a.identities = v.parse().unwrap(),
            "--queries" => a.queries = v.parse().unwrap(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// A DER UTF8String (short values only).
fn utf8(s: &str) -> Vec<u8> {
    let mut v = vec![0x0c, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// The query path of the i-th search of one kind.
type QueryFor<'a> = Box<dyn Fn(usize) -> String + 'a>;

fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
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
    let repos = (a.identities / 10).max(1);
    let make = |i: u64| -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.serial_number = Some(SerialNumber::from_slice(
            &[&[1u8][..], &i.to_be_bytes()].concat(),
        ));
        p.subject_alt_names = vec![SanType::Rfc822Name(
            format!("user{}@example.com", i % a.identities)
                .try_into()
                .unwrap(),
        )];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        p.custom_extensions = vec![
            CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
                utf8("https://token.actions.githubusercontent.com"),
            ),
            CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 12],
                utf8(&format!("https://github.com/org/repo{}", i % repos)),
            ),
        ];
        p.signed_by(&leaf_key, &issuer).unwrap().der().to_vec()
    };
    let log_dir = dir.path().join("log");
    let started = Instant::now();
    brevis::ct::log::bulk::fill_with(
        &log_dir,
        &brevis::ct::log::Storage::Sqlite(None),
        "localhost:6962",
        a.entries,
        4096,
        make,
        |_| {},
    )
    .unwrap();
    println!(
        "explorer: {} entries of real certificates loaded in {:.1} s ({} identities, {repos} repositories)",
        a.entries,
        started.elapsed().as_secs_f64(),
        a.identities
    );

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_brevis"))
        .args(["ctlog", "serve", "--host", "127.0.0.1", "--port", "0"])
        .arg("--data-dir")
        .arg(&log_dir)
        .arg("--roots")
        .arg(dir.path().join("roots.pem"))
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{url}{path}");
        async move {
            let r = http.get(&url).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "{url}");
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    rt.block_on(async {
        loop {
            let v = get("/ui/api/stats".into()).await;
            if v["indexed_to"].as_u64() == Some(a.entries) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let index_bytes: u64 = ["search.sqlite", "search.sqlite-wal"]
        .iter()
        .map(|f| std::fs::metadata(log_dir.join(f)).map_or(0, |m| m.len()))
        .sum();
    println!(
        "indexed in {secs:.1} s from start ({:.0} entries/s); search.sqlite (with its WAL) {:.1} MiB ({:.0} bytes per entry)",
        a.entries as f64 / secs,
        index_bytes as f64 / 1048576.0,
        index_bytes as f64 / a.entries as f64
    );
    println!("| search | results per page | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    let kinds: Vec<(&str, QueryFor)> = vec![
        (
            "identity, exact",
            Box::new(|i| {
                format!(
                    "/ui/api/search?q=user{}%40example.com",
                    i as u64 * 7919 % a.identities
                )
            }),
        ),
        (
            "identity, prefix",
            Box::new(|i| {
                format!(
                    "/ui/api/search?q=user{}&prefix=true",
                    i as u64 * 7919 % a.identities
                )
            }),
        ),
        (
            "repository",
            Box::new(|i| {
                format!(
                    "/ui/api/search?by=repository&q=https%3A%2F%2Fgithub.com%2Forg%2Frepo{}",
                    i as u64 * 31 % repos
                )
            }),
        ),
        (
            "serial",
            Box::new(|i| {
                format!(
                    "/ui/api/search?by=serial&q=01{:016x}",
                    i as u64 * 104_729 % a.entries
                )
            }),
        ),
    ];
    rt.block_on(async {
        for (name, path) in &kinds {
            let mut lat = Vec::with_capacity(a.queries);
            let mut results = 0usize;
            for i in 0..a.queries {
                let t = Instant::now();
                let v = get(path(i)).await;
                lat.push(t.elapsed());
                results += v["results"].as_array().unwrap().len();
                assert!(!v["results"].as_array().unwrap().is_empty(), "{name}: {v}");
            }
            lat.sort();
            println!(
                "| {name} | {:.1} | {:.2} | {:.2} | {:.2} |",
                results as f64 / a.queries as f64,
                percentile_ms(&lat, 0.5),
                percentile_ms(&lat, 0.99),
                percentile_ms(&lat, 1.0)
            );
        }
        // The tenth page of a prefix matching the whole log.
        let mut lat = Vec::new();
        for _ in 0..(a.queries / 10).max(1) {
            let mut cursor: Option<String> = None;
            for _ in 0..10 {
                let mut p = "/ui/api/search?q=user&prefix=true&limit=100".to_string();
                if let Some(c) = &cursor {
                    p.push_str(&format!("&cursor={}", c.replace('@', "%40")));
                }
                let t = Instant::now();
                let v = get(p).await;
                lat.push(t.elapsed());
                cursor = v["next_cursor"].as_str().map(String::from);
            }
        }
        lat.sort();
        println!(
            "| identity prefix `user`, pages 1-10 | 100 | {:.2} | {:.2} | {:.2} |",
            percentile_ms(&lat, 0.5),
            percentile_ms(&lat, 0.99),
            percentile_ms(&lat, 1.0)
        );
        let t = Instant::now();
        get("/ui/api/stats".into()).await;
        println!(
            "stats (hourly counts over the day): {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
    });
    let _ = child.kill();
    let _ = child.wait();
}
