//! Scaling benchmark: issuance on SQLite against PostgreSQL with one and three replicas,
//! and how cost grows with the size of the log.
//!
//!     cargo bench --features test-support --bench scaling -- [--seconds 15]
//!         [--concurrency 64] [--grow 10000000] [--part issuance|growth|all]
//!
//! Part 1 (issuance): in the same run and against the same loopback OIDC issuer,
//! `brevis serve` on its embedded SQLite log, one replica on PostgreSQL, and three replicas
//! on one PostgreSQL database (the load generator spreads its connections over them). The
//! PostgreSQL cluster is started by the benchmark in a temporary directory, as the tests
//! do (tests/common/pg.rs).
//!
//! Part 2 (growth): for each backend, a log is bulk-loaded with synthetic entries of a real
//! leaf's size (`ct::log::bulk`, not the public API) first to 65,536 entries, then to
//! `--grow`; at both sizes issuance (64 clients), `get-entries` (256 entries per call, random
//! offsets) and full-tile reads (random level-0 tiles) are measured, and bytes stored per
//! entry are reported.

mod common;

#[path = "../tests/common/pg.rs"]
#[allow(dead_code)]
mod pg;

use brevis::ct::log::Storage;
use common::issuance::{Checker, Issuer, Prepared, run_level, start_brevis};
use common::{percentile_ms, process_cpu};
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    seconds: u64,
    concurrency: usize,
    grow: u64,
    part: String,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 15,
        concurrency: 64,
        grow: 10_000_000,
        part: "all".into(),
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--seconds" => a.seconds = v.parse().unwrap(),
            "--concurrency" => a.concurrency = v.parse().unwrap(),
            "--grow" => a.grow = v.parse().unwrap(),
            "--part" => a.part = v,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// CPU seconds of every `postgres` process (only the benchmark's cluster runs here).
fn postgres_cpu() -> f64 {
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            total += process_cpu(pid);
        }
    }
    total
}

/// A running brevis and what the load generator needs of it.
struct Running {
    child: Child,
    addr: String,
    pid: u32,
    ctlog: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, issuer: &Issuer, extra: &[&str]) -> Running {
    std::fs::create_dir_all(dir).unwrap();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let (child, addr, pid, ctlog, _) = start_brevis(dir, issuer, "info", &extra);
    Running {
        child,
        addr,
        pid,
        ctlog,
    }
}

fn checker(dir: &Path) -> Arc<Checker> {
    let key = std::fs::read_to_string(dir.join("data/ctlog/log-public-key.pem")).unwrap();
    Arc::new(Checker {
        ctlog: brevis::ct::LogPublicKey::from_pem(&key).unwrap(),
    })
}

/// The CA and the log key of one replica's data directory, for another replica.
fn copy_identity(from: &Path, to: &Path) {
    for sub in ["data/ca", "data/ctlog"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for e in std::fs::read_dir(from.join(sub)).unwrap().flatten() {
            let name = e.file_name();
            let n = name.to_string_lossy();
            if e.path().is_file()
                && (sub == "data/ca" || n.starts_with("log-"))
                && !n.contains("sqlite")
            {
                std::fs::copy(e.path(), to.join(sub).join(&name)).unwrap();
            }
        }
    }
}

struct Row {
    name: String,
    certs_per_s: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    errors: usize,
    brevis_cpu: f64,
    pg_cpu: f64,
}

#[allow(clippy::too_many_arguments)]
fn measure_issuance(
    rt: &tokio::runtime::Runtime,
    name: &str,
    replicas: &[Running],
    pool: &Arc<Vec<Prepared>>,
    checker: &Arc<Checker>,
    a: &Args,
) -> Row {
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
    let pids: Vec<u32> = replicas.iter().map(|r| r.pid).collect();
    let warm = run_level(rt, &addrs, pool, 16, Duration::from_secs(2), checker, &pids);
    assert_eq!(
        warm.errors, 0,
        "{name}: warm-up failed: {:?}",
        warm.first_error
    );
    let pg0 = postgres_cpu();
    let l = run_level(
        rt,
        &addrs,
        pool,
        a.concurrency,
        Duration::from_secs(a.seconds),
        checker,
        &pids,
    );
    let pg = postgres_cpu() - pg0;
    if let Some(e) = &l.first_error {
        println!("    {name}: first error: {e}");
    }
    Row {
        name: name.to_string(),
        certs_per_s: l.certs as f64 / l.seconds,
        p50: percentile_ms(&l.latencies, 0.5),
        p99: percentile_ms(&l.latencies, 0.99),
        p999: percentile_ms(&l.latencies, 0.999),
        errors: l.errors,
        brevis_cpu: l.cpu / l.seconds,
        pg_cpu: pg / l.seconds,
    }
}

fn print_rows(rows: &[Row]) {
    let base = rows[0].certs_per_s;
    println!(
        "| setup | certs/s | vs SQLite | p50 ms | p99 ms | p99.9 ms | errors | brevis CPU s/s | PostgreSQL CPU s/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.0} | {:.0}% | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.2} |",
            r.name,
            r.certs_per_s,
            r.certs_per_s / base * 100.0,
            r.p50,
            r.p99,
            r.p999,
            r.errors,
            r.brevis_cpu,
            r.pg_cpu
        );
    }
}

fn issuance(a: &Args, issuer: &Arc<Issuer>, pool: &Arc<Vec<Prepared>>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    {
        let dir = tmp.path().join("sqlite");
        let r = start(&dir, issuer, &[]);
        rows.push(measure_issuance(
            &rt,
            "1 replica, SQLite",
            &[r],
            pool,
            &checker(&dir),
            a,
        ));
    }
    let pgc = pg::PgCluster::start();
    pgc.create_db("one");
    pgc.create_db("three");
    {
        let dir = tmp.path().join("pg1");
        let url = pgc.url("one");
        let r = start(&dir, issuer, &["--ct-log-storage", &url]);
        rows.push(measure_issuance(
            &rt,
            "1 replica, PostgreSQL",
            &[r],
            pool,
            &checker(&dir),
            a,
        ));
    }
    {
        let url = pgc.url("three");
        let dirs: Vec<_> = (0..3)
            .map(|i| tmp.path().join(format!("pg3-{i}")))
            .collect();
        let mut replicas = vec![start(&dirs[0], issuer, &["--ct-log-storage", &url])];
        for d in &dirs[1..] {
            copy_identity(&dirs[0], d);
            replicas.push(start(d, issuer, &["--ct-log-storage", &url]));
        }
        rows.push(measure_issuance(
            &rt,
            "3 replicas, PostgreSQL",
            &replicas,
            pool,
            &checker(&dirs[0]),
            a,
        ));
    }
    println!(
        "\nissuance at {} clients, key path, {} s each:\n",
        a.concurrency, a.seconds
    );
    print_rows(&rows);
}

/// Requests per second of `urls()` over `seconds` with 16 concurrent clients.
fn read_rate(
    rt: &tokio::runtime::Runtime,
    seconds: u64,
    url: impl Fn(u64) -> String + Send + Sync + 'static,
) -> (f64, usize) {
    let url = Arc::new(url);
    rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let http = reqwest::Client::new();
        let tasks: Vec<_> = (0..16u64)
            .map(|w| {
                let (url, http) = (url.clone(), http.clone());
                tokio::spawn(async move {
                    let (mut ok, mut errors) = (0usize, 0usize);
                    let mut n = w.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    while Instant::now() < deadline {
                        n = n
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        match http.get(url(n >> 11)).send().await {
                            Ok(r) if r.status() == 200 => {
                                let _ = r.bytes().await;
                                ok += 1;
                            }
                            _ => errors += 1,
                        }
                    }
                    (ok, errors)
                })
            })
            .collect();
        let (mut ok, mut errors) = (0, 0);
        for t in tasks {
            let (o, e) = t.await.unwrap();
            ok += o;
            errors += e;
        }
        (ok as f64 / seconds as f64, errors)
    })
}

fn growth(a: &Args, issuer: &Arc<Issuer>, pool: &Arc<Vec<Prepared>>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pgc = pg::PgCluster::start();
    pgc.create_db("grow");
    let small = 65_536u64;
    println!(
        "\ngrowth: each backend at {small} entries, then at {} (synthetic {}-byte entries)\n",
        a.grow,
        brevis::ct::log::bulk::ENTRY_BYTES
    );
    println!(
        "| backend | entries | bulk load entries/s | issuance certs/s | p99 ms | get-entries calls/s (256 each) | full tiles/s | full tiles/s, no cache | bytes per entry |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for backend in ["SQLite", "PostgreSQL"] {
        let dir = tmp.path().join(backend);
        let logdir = dir.join("data/ctlog");
        let (storage, flag): (Storage, Vec<String>) = if backend == "SQLite" {
            (Storage::Sqlite(None), vec![])
        } else {
            let url = pgc.url("grow");
            (
                Storage::parse(&url).unwrap(),
                vec!["--ct-log-storage".into(), url],
            )
        };
        let mut size = 0u64;
        for target in [small, a.grow.max(small)] {
            let t = Instant::now();
            let added = target - size;
            let mut last_report = Instant::now();
            size = brevis::ct::log::bulk::fill(
                &logdir,
                &storage,
                "localhost:6962",
                added,
                4096,
                false,
                |s| {
                    if last_report.elapsed() > Duration::from_secs(60) {
                        eprintln!("  {backend}: {} entries", size + s);
                        last_report = Instant::now();
                    }
                },
            )
            .unwrap();
            let load_rate = added as f64 / t.elapsed().as_secs_f64();
            let flags: Vec<&str> = flag.iter().map(String::as_str).collect();
            let r = start(&dir, issuer, &flags);
            let ctlog = r.ctlog.clone().expect("the embedded log's URL");
            let row = measure_issuance(
                &rt,
                backend,
                std::slice::from_ref(&r),
                pool,
                &checker(&dir),
                a,
            );
            let tree = size;
            let base = ctlog.clone();
            let (entries_rate, e1) = read_rate(&rt, 10, move |n| {
                let start = n % tree.saturating_sub(256).max(1);
                format!("{base}/ct/v1/get-entries?start={start}&end={}", start + 255)
            });
            let base = ctlog.clone();
            let full = tree / 256;
            let (tiles_rate, e2) = read_rate(&rt, 10, move |n| {
                format!(
                    "{base}/tile/0/{}",
                    brevis::ct::tiles::encode_index(n % full.max(1))
                )
            });
            drop(r);
            // The same reads with no tile cache: what storage itself delivers.
            let mut uncached_flags = flags.clone();
            uncached_flags.extend(["--ctlog-tile-cache", "0"]);
            let r = start(&dir, issuer, &uncached_flags);
            let base = r.ctlog.clone().expect("the embedded log's URL");
            let (uncached_rate, e3) = read_rate(&rt, 10, move |n| {
                format!(
                    "{base}/tile/0/{}",
                    brevis::ct::tiles::encode_index(n % full.max(1))
                )
            });
            drop(r);
            let bytes = if backend == "SQLite" {
                ["log.sqlite", "log.sqlite-wal"]
                    .iter()
                    .filter_map(|f| std::fs::metadata(logdir.join(f)).ok())
                    .map(|m| m.len())
                    .sum::<u64>()
            } else {
                brevis::ct::log::store::postgres::storage_bytes(
                    &brevis::ct::log::store::postgres::PgOptions::new(pgc.url("grow")),
                )
                .unwrap()
                .0
            };
            // The entries issued during the measurement count too.
            let entries = size + (row.certs_per_s * a.seconds as f64) as u64;
            println!(
                "| {backend} | {size} | {load_rate:.0} | {:.0} | {:.2} | {entries_rate:.0} | {tiles_rate:.0} | {uncached_rate:.0} | {:.0} |",
                row.certs_per_s,
                row.p99,
                bytes as f64 / entries as f64
            );
            if e1 + e2 + e3 > 0 || row.errors > 0 {
                println!(
                    "    errors: issuance {}, get-entries {e1}, tiles {e2}, uncached tiles {e3}",
                    row.errors
                );
            }
        }
    }
}

fn main() {
    let a = args();
    let issuer = Issuer::start();
    let lifetime = 7200 + a.seconds * 20;
    let pool = Arc::new(common::issuance::prepare(&issuer, "key", 2048, lifetime));
    if a.part == "issuance" || a.part == "all" {
        issuance(&a, &issuer, &pool);
    }
    if (a.part == "growth" || a.part == "all") && a.grow > 0 {
        growth(&a, &issuer, &pool);
    }
}
