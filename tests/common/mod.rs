//! Test harness: a real OpenID Provider (tests/oidc/op.mjs on Node), brevis itself as a
//! child process on 127.0.0.1:0, and independent certificate parsers.
#![allow(dead_code)]

pub mod clients;
pub mod custody;
pub mod fake;
pub mod keys;
pub mod pg;
pub mod profile;
pub mod prom;
pub mod testca;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn vectors() -> PathBuf {
    repo_root().join("tests/vectors")
}

pub fn require(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{} is missing ({what}); run the README's test command (scripts/test.sh), which installs it",
        path.display()
    );
}

/// Reads a child's stdout until every wanted prefix was seen; returns the matching lines.
/// `diagnose` explains a failure (e.g. the child's stderr).
fn wait_for_lines(
    child: &mut Child,
    prefixes: &[&str],
    timeout: Duration,
    diagnose: &dyn Fn() -> String,
) -> Vec<String> {
    wait_for_all(child, prefixes, timeout, diagnose).0
}

/// As [`wait_for_lines`], also returning every line read so far.
fn wait_for_all(
    child: &mut Child,
    prefixes: &[&str],
    timeout: Duration,
    diagnose: &dyn Fn() -> String,
) -> (Vec<String>, Vec<String>) {
    read_until(child, prefixes, timeout).unwrap_or_else(|e| panic!("{e}:\n{}", diagnose()))
}

/// Reads a child's stdout until every wanted prefix was seen: the text after each prefix
/// and every line read; or, after `timeout`, what was missing.
fn read_until(
    child: &mut Child,
    prefixes: &[&str],
    timeout: Duration,
) -> Result<(Vec<String>, Vec<String>), String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut found: Vec<Option<String>> = vec![None; prefixes.len()];
    let mut all = Vec::new();
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(e) => {
                let status = child.try_wait().ok().flatten();
                return Err(format!(
                    "child did not print {prefixes:?} ({e:?}; exit status {status:?})"
                ));
            }
        };
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(rest) = line.trim().strip_prefix(p) {
                found[i] = Some(rest.trim().to_string());
            }
        }
        all.push(line);
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Ok((
        found.into_iter().map(Option::unwrap_or_default).collect(),
        all,
    ))
}

fn line_after(lines: &[String], prefix: &str) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()))
}

/// The real OpenID Provider.
pub struct Op {
    child: Child,
    pub issuer: String,
    http: reqwest::Client,
}

impl Drop for Op {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Op {
    pub fn start() -> Op {
        Op::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Op {
        let dir = repo_root().join("tests/oidc");
        require(
            &dir.join("node_modules/oidc-provider"),
            "npm packages of the test OIDC provider",
        );
        // Two attempts: once (in one CI run in many) a provider started beside others
        // never printed READY within a minute; its stderr says why, and a second process
        // is the test's way on. This is the test's own OpenID Provider, not brevis.
        let mut failures = Vec::new();
        let (child, lines) = loop {
            let stderr = tempfile::NamedTempFile::new().unwrap();
            let mut cmd = Command::new("node");
            cmd.arg("op.mjs")
                .current_dir(&dir)
                .env("PORT", "0")
                .stdout(Stdio::piped())
                .stderr(stderr.reopen().unwrap());
            for (k, v) in env {
                cmd.env(k, v);
            }
            let mut child = cmd.spawn().expect("node must be installed");
            match read_until(&mut child, &["READY "], Duration::from_secs(30)) {
                Ok((lines, _)) => break (child, lines),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let err = std::fs::read_to_string(stderr.path()).unwrap_or_default();
                    failures.push(format!("{e}; its stderr:\n{err}"));
                    eprintln!("the OIDC provider (node tests/oidc/op.mjs) did not start: {e}");
                    assert!(
                        failures.len() < 2,
                        "the OIDC provider (node tests/oidc/op.mjs) did not start:\n{}",
                        failures.join("\n")
                    );
                }
            }
        };
        let issuer = lines[0]
            .split_whitespace()
            .nth(1)
            .expect("READY <port> <issuer>")
            .to_string();
        Op {
            child,
            issuer,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer.trim_end_matches('/'), path)
    }

    /// Mints an ID token for `sub` with `claims` through the real authorization-code flow.
    pub async fn mint(&self, sub: &str, claims: Value) -> String {
        self.mint_for("sigstore", sub, claims).await
    }

    pub async fn mint_for(&self, client_id: &str, sub: &str, claims: Value) -> String {
        let issuer = self.issuer.clone();
        self.mint_at(&issuer, client_id, sub, claims).await
    }

    /// The issuer URL of a tenant started with `TENANTS`.
    pub fn tenant(&self, name: &str) -> String {
        format!("{}/{name}", self.issuer.trim_end_matches('/'))
    }

    /// Mints through the real flow of the provider whose issuer is `issuer` (the root one
    /// or a tenant).
    pub async fn mint_at(&self, issuer: &str, client_id: &str, sub: &str, claims: Value) -> String {
        let at = |path: &str| format!("{}{}", issuer.trim_end_matches('/'), path);
        let enc: String = url::form_urlencoded::byte_serialize(sub.as_bytes()).collect();
        let r = self
            .http
            .put(self.url(&format!("/__test/users/{enc}")))
            .json(&claims)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let mut cookies: Vec<(String, String)> = Vec::new();
        let redirect = "http://127.0.0.1:1/cb";
        let auth = format!(
            "/auth?client_id={client_id}&response_type=code&scope=openid%20email%20ci&redirect_uri={}&state=s1&nonce=n1",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        );
        let mut location = at(&auth);
        let mut code = None;
        for step in 0..6 {
            let req = if location.contains("/interaction/") && step > 0 {
                self.http.post(&location).form(&[
                    ("prompt", "login"),
                    ("login", sub),
                    ("password", "x"),
                ])
            } else {
                self.http.get(&location)
            };
            let cookie = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let resp = req.header("cookie", cookie).send().await.unwrap();
            for c in resp.headers().get_all("set-cookie") {
                let s = c.to_str().unwrap();
                let kv = s.split(';').next().unwrap();
                if let Some((k, v)) = kv.split_once('=') {
                    cookies.retain(|(n, _)| n != k);
                    cookies.push((k.to_string(), v.to_string()));
                }
            }
            let loc = resp
                .headers()
                .get("location")
                .unwrap_or_else(|| {
                    panic!(
                        "OP answered {} without a redirect at step {step}",
                        resp.status()
                    )
                })
                .to_str()
                .unwrap()
                .to_string();
            let absolute = if loc.starts_with("http") {
                loc
            } else {
                self.url(&loc)
            };
            if absolute.starts_with(redirect) {
                let u = url::Url::parse(&absolute).unwrap();
                code = u
                    .query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.to_string());
                break;
            }
            location = absolute;
        }
        let code = code.expect("authorization code");
        let resp: Value = self
            .http
            .post(at("/token"))
            .basic_auth(client_id, Some("test-secret"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no id_token in {resp}"))
            .to_string()
    }

    /// Signs arbitrary header/claims with the OP's current key (negative tests).
    pub async fn sign(&self, body: Value) -> String {
        let resp: Value = self
            .http
            .post(self.url("/__test/sign"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["token"].as_str().unwrap().to_string()
    }

    /// Standard claims for a token from this issuer, valid now.
    pub fn claims(&self, extra: Value) -> Value {
        let now = now_secs();
        let mut c = json!({"iss": self.issuer, "aud": "sigstore", "iat": now, "exp": now + 600});
        if let (Some(m), Value::Object(e)) = (c.as_object_mut(), extra) {
            m.extend(e);
        }
        c
    }

    pub async fn rotate(&self, drop_old: bool) -> String {
        let url = if drop_old {
            self.url("/__test/rotate?drop=1")
        } else {
            self.url("/__test/rotate")
        };
        let v: Value = self
            .http
            .post(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["kid"].as_str().unwrap().to_string()
    }

    pub async fn jwks_fetches(&self) -> u64 {
        let v: Value = self
            .http
            .get(self.url("/__test/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["jwks"].as_u64().unwrap()
    }

    pub async fn public_key_pem(&self) -> String {
        self.http
            .get(self.url("/__test/public-key"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running brevis.
pub struct Brevis {
    child: Child,
    pub url: String,
    pub metrics_url: String,
    /// The embedded CT log's URL, when it runs.
    pub ctlog_url: Option<String>,
    /// Holds identity.yaml, data/ and brevis.stderr.
    pub dir: PathBuf,
    /// The startup banner brevis printed.
    pub stdout_lines: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
    pub stderr: PathBuf,
    pub http: reqwest::Client,
}

impl Drop for Brevis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(&self.stderr)
        {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- brevis stderr (last lines) ----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// Runs `cmd` and returns its stdout; a failure fails the test with the command, its
/// stderr and its stdout.
pub fn succeed(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{:?} {:?} failed:\n{}{}",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

pub fn brevis_bin() -> &'static str {
    env!("CARGO_BIN_EXE_brevis")
}

/// Identity config trusting `op` as an email issuer.
pub fn email_config(op: &Op) -> String {
    format!(
        "oidc-issuers:\n  {iss}:\n    issuer-url: {iss}\n    client-id: sigstore\n    type: email\n",
        iss = op.issuer
    )
}

impl Brevis {
    /// Starts `brevis serve` with `config` as identity config plus `args`.
    pub fn start(config: &str, args: &[&str]) -> Brevis {
        let tmp = tempfile::tempdir().unwrap();
        let config_path = tmp.path().join("identity.yaml");
        std::fs::write(&config_path, config).unwrap();
        let mut b = Brevis::start_in(tmp.path(), Some(&config_path), args);
        b._tmp = Some(tmp);
        b
    }

    /// Starts brevis keeping its state in `dir` (which outlives it, for restarts).
    pub fn start_in(dir: &Path, config: Option<&Path>, args: &[&str]) -> Brevis {
        Brevis::start_in_env(dir, config, args, &[])
    }

    /// [`Brevis::start_in`] with extra environment variables for the process.
    pub fn start_in_env(
        dir: &Path,
        config: Option<&Path>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Brevis {
        let stderr = dir.join("brevis.stderr");
        let data = dir.join("data");
        let mut cmd = Command::new(brevis_bin());
        cmd.arg("serve")
            .args(["--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"])
            .arg("--data-dir")
            .arg(&data)
            .arg("--insecure-http-issuers")
            .args(["--ctlog-port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&stderr)
                    .unwrap(),
            );
        if let Some(c) = config {
            cmd.arg("--config-path").arg(c);
        }
        let mut child = cmd.spawn().unwrap();
        let (lines, all) = wait_for_all(
            &mut child,
            &["API listening on ", "metrics on ", "trusted OIDC issuers:"],
            Duration::from_secs(60),
            &|| std::fs::read_to_string(&stderr).unwrap_or_default(),
        );
        Brevis {
            child,
            url: lines[0].clone(),
            metrics_url: lines[1].clone(),
            ctlog_url: line_after(&all, "CT log listening on "),
            stdout_lines: all.clone(),
            dir: dir.to_path_buf(),
            _tmp: None,
            stderr,
            http: reqwest::Client::new(),
        }
    }

    /// Kills brevis and hands back its state directory (kept alive for a restart).
    pub fn stop(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.dir.clone(), self._tmp.take())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{}", self.url, path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.url, path))
            .send()
            .await
            .unwrap()
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(&self.metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The embedded CT log's public key.
    pub fn ctlog_key(&self) -> brevis::ct::LogPublicKey {
        let pem = std::fs::read_to_string(self.dir.join("data/ctlog/log-public-key.pem")).unwrap();
        brevis::ct::LogPublicKey::from_pem(&pem).unwrap()
    }
}

/// A standalone `brevis ctlog serve`.
pub struct CtLog {
    child: Child,
    pub url: String,
    pub dir: PathBuf,
    stderr: PathBuf,
}

impl Drop for CtLog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl CtLog {
    /// Starts a log keeping its state in `dir`, accepting the roots in `roots_pem`.
    pub fn start(dir: &Path, roots_pem: &Path, args: &[&str]) -> CtLog {
        let stderr = dir.join("ctlog.stderr");
        let mut child = Command::new(brevis_bin())
            .args(["ctlog", "serve", "--host", "127.0.0.1", "--port", "0"])
            .arg("--data-dir")
            .arg(dir.join("log"))
            .arg("--roots")
            .arg(roots_pem)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&stderr)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let lines = wait_for_lines(
            &mut child,
            &["CT log listening on ", "origin "],
            Duration::from_secs(60),
            &|| std::fs::read_to_string(&stderr).unwrap_or_default(),
        );
        CtLog {
            child,
            url: lines[0].clone(),
            dir: dir.to_path_buf(),
            stderr,
        }
    }

    pub fn key(&self) -> brevis::ct::LogPublicKey {
        let pem = std::fs::read_to_string(self.dir.join("log/log-public-key.pem")).unwrap();
        brevis::ct::LogPublicKey::from_pem(&pem).unwrap()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// The Python with pinned test packages (cryptography, sigstore), created by the test
/// command in `.venv-test`.
pub fn python() -> PathBuf {
    let p = std::env::var_os("BREVIS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-test/bin/python"));
    require(&p, "the Python test environment");
    p
}

/// Runs a script from tests/py with `args`, feeding `stdin`; returns stdout as JSON.
pub fn run_python(script: &str, args: &[&str], stdin: &str) -> Value {
    use std::io::Write;
    let mut child = Command::new(python())
        .arg(repo_root().join("tests/py").join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `openssl x509 -text` of a PEM certificate.
pub fn openssl_text(pem: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-text"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// `openssl verify` of `leaf` against `root` with `untrusted` intermediates.
pub fn openssl_verify(leaf: &str, intermediates: &[String], root: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let leaf_p = dir.path().join("leaf.pem");
    let root_p = dir.path().join("root.pem");
    let int_p = dir.path().join("int.pem");
    std::fs::write(&leaf_p, leaf).unwrap();
    std::fs::write(&root_p, root).unwrap();
    std::fs::write(&int_p, intermediates.concat()).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.arg("verify").arg("-CAfile").arg(&root_p);
    if !intermediates.is_empty() {
        cmd.arg("-untrusted").arg(&int_p);
    }
    let out = cmd.arg(&leaf_p).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A whole brevis started in this process (not a child): built from options, run on its
/// own actix system in a thread, stopped and drained on drop. For tests where the process
/// boundary is not the point, and for pinning the time with a clock.
pub struct InProcess {
    pub addrs: brevis::server::Addrs,
    pub url: String,
    pub metrics_url: String,
    pub ctlog_url: Option<String>,
    pub data_dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub http: reqwest::Client,
}

impl InProcess {
    /// Options for a brevis trusting `config` (identity YAML) with state in `dir`.
    pub fn options(dir: &Path, config: &str) -> brevis::server::ServeOptions {
        let config_path = dir.join("identity.yaml");
        std::fs::write(&config_path, config).unwrap();
        let mut opts = brevis::server::ServeOptions::local(dir.join("data"));
        opts.config_path = Some(config_path);
        opts.insecure_http_issuers = true;
        opts
    }

    pub fn start(
        opts: brevis::server::ServeOptions,
        clock: std::sync::Arc<dyn brevis::model::Clock>,
    ) -> InProcess {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let data_dir = opts.data_dir.clone();
        let server = brevis::server::Server::build_with_clock(opts, clock).unwrap();
        let addrs = server.addrs().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new()
                .block_on(server.run(async {
                    let _ = stopped.await;
                }))
                .unwrap();
        });
        InProcess {
            url: addrs.api_url(),
            metrics_url: format!("http://{}/metrics", addrs.metrics),
            ctlog_url: addrs.ctlog.map(|a| format!("http://{a}")),
            addrs,
            data_dir,
            stop: Some(stop),
            thread: Some(thread),
            http: reqwest::Client::new(),
        }
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{}", self.url, path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.url, path))
            .send()
            .await
            .unwrap()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A server certificate for 127.0.0.1 and localhost from a CA of its own, written in `dir`; returns
/// (CA certificate, server certificate, server key) paths.
pub fn server_cert(dir: &Path, name: &str) -> (String, String, String) {
    let p = |f: &str| {
        dir.join(format!("{name}-{f}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let run = |args: &[&str]| {
        succeed(Command::new("openssl").args(args));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca_subj = format!("/CN={name} test CA");
    let mut args = vec!["req", "-x509", "-days", "2", "-subj", &ca_subj];
    args.extend(ec);
    let (ca_key, ca_crt) = (p("ca.key"), p("ca.crt"));
    args.extend(["-keyout", &ca_key, "-out", &ca_crt]);
    run(&args);
    let subj = format!("/CN={name}");
    let (key, csr, crt, ext) = (
        p("server.key"),
        p("server.csr"),
        p("server.crt"),
        p("ext.cnf"),
    );
    let mut args = vec!["req", "-subj", &subj, "-keyout", &key, "-out", &csr];
    args.extend(ec);
    run(&args);
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_crt,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &ext,
        "-out",
        &crt,
    ]);
    (ca_crt, crt, key)
}

/// The text after `prefix` on the first banner line that has it.
pub fn line_after_in(lines: &[String], prefix: &str) -> Option<String> {
    line_after(lines, prefix)
}

/// Polls `check` until it returns true; fails after a generous deadline. Waiting for an
/// event, not a duration: the deadline only bounds a broken run.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The GitHub Actions token of the upstream vector
/// (`tests/vectors/fulcio/github-actions-full-token.json`): (sub, the other claims).
pub fn github_claims() -> (String, Value) {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors().join("fulcio/github-actions-full-token.json")).unwrap(),
    )
    .unwrap();
    let mut c = v["token_claims"].clone();
    let m = c.as_object_mut().unwrap();
    let sub = m.remove("sub").unwrap().as_str().unwrap().to_string();
    m.remove("iss");
    m.remove("aud");
    (sub, c)
}
