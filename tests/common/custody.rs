//! Where keys live outside files, for real: a SoftHSM2 token initialised per test in a
//! temporary directory (`SOFTHSM2_CONF`), moto's KMS server on loopback, and a TCP proxy
//! that can stall the connection to it (a KMS that stops answering).

use super::{python, run_python, succeed};
use serde_json::Value;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The PIN of every test token: distinctive, so a test can prove it is never logged.
pub const PIN: &str = "brevis-pin-7731";

/// SoftHSM2's PKCS#11 module.
pub fn module() -> PathBuf {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect(
        "SoftHSM2 is missing; run the README's test command (scripts/test.sh), which installs it",
    )
}

/// A fresh SoftHSM2 token.
pub struct SoftHsm {
    pub dir: tempfile::TempDir,
    /// `SOFTHSM2_CONF` for every process that uses the token.
    pub conf: PathBuf,
    /// Fulcio's PKCS#11 JSON (no PIN inside: it is in `pin_file`).
    pub config: PathBuf,
    pub pin_file: PathBuf,
    pub label: String,
}

impl SoftHsm {
    pub fn new(label: &str) -> SoftHsm {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .unwrap();
        succeed(
            Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", PIN, "--so-pin", "5678-so"]),
        );
        let config = dir.path().join("pkcs11.json");
        std::fs::write(
            &config,
            serde_json::json!({"Path": module(), "TokenLabel": label}).to_string(),
        )
        .unwrap();
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        SoftHsm {
            dir,
            conf,
            config,
            pin_file,
            label: label.to_string(),
        }
    }

    /// The environment a process needs to see this token.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("SOFTHSM2_CONF", self.conf.display().to_string())]
    }

    /// `--pkcs11-config-path CFG --pkcs11-pin-file PIN`.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--pkcs11-config-path".into(),
            self.config.display().to_string(),
            "--pkcs11-pin-file".into(),
            self.pin_file.display().to_string(),
        ]
    }

    /// `pkcs11-tool` (OpenSC) against this token, logged in; its stdout.
    pub fn pkcs11_tool(&self, args: &[&str]) -> String {
        let out = succeed(
            Command::new("pkcs11-tool")
                .env("SOFTHSM2_CONF", &self.conf)
                .arg("--module")
                .arg(module())
                .args(["--token-label", &self.label, "--login", "--pin", PIN])
                .args(args),
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `pkcs11-tool --list-objects --type privkey`, one block per key, by label.
    pub fn private_keys(&self) -> Vec<(String, String)> {
        let text = self.pkcs11_tool(&["--list-objects", "--type", "privkey"]);
        let mut out = Vec::new();
        for block in text.split("Private Key Object").skip(1) {
            let label = block
                .lines()
                .find_map(|l| l.trim().strip_prefix("label:"))
                .unwrap_or("")
                .trim()
                .to_string();
            out.push((label, block.to_string()));
        }
        out
    }
}

/// moto's server (KMS among its services) on loopback.
pub struct Moto {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- moto_server ----\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

impl Moto {
    pub fn start() -> Moto {
        let server = python().parent().unwrap().join("moto_server");
        assert!(
            server.exists(),
            "moto_server is missing; run scripts/test.sh (it installs tests/py/requirements.txt)"
        );
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        // Port 0: moto binds a port of its own and prints it. (A port picked here and
        // released before moto binds it can be taken meanwhile by another test's
        // listener, which then answered the readiness probe in moto's place.)
        let mut child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        const PREFIX: &str = "Running on http://127.0.0.1:";
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let port = text.lines().find_map(|l| {
                let rest = &l[l.find(PREFIX)? + PREFIX.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u16>().ok()
            });
            if let Some(port) = port {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("moto_server exited ({status}): {text}");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let url = format!("http://127.0.0.1:{port}");
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            url,
            log,
            _dir: dir,
        }
    }

    /// Creates a signing key (`spec`, e.g. ECC_NIST_P256) with `alias/<alias>`.
    pub fn create_key(&self, alias: &str, spec: &str) -> Value {
        run_python("kms_key.py", &[&self.url, alias, spec], "")
    }

    /// The environment brevis needs to reach KMS at `endpoint` with moto's test
    /// credentials.
    pub fn env(endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

/// A TCP proxy to `upstream` that can stall: while stalled, open connections are cut and
/// new ones are accepted but never answered, as a KMS behind a broken network looks.
pub struct StallProxy {
    pub url: String,
    stalled: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl StallProxy {
    pub fn start(upstream: &str) -> StallProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stalled = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, o) = (stalled.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if s.load(Ordering::SeqCst) {
                    // Held open, never answered.
                    o.lock().unwrap().push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                {
                    let mut open = o.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        StallProxy { url, stalled, open }
    }

    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// A TCP proxy to `upstream` that holds every new connection for `delay` before
/// connecting it (a slow CT log); returns its URL.
pub fn slow_proxy(upstream: &str, delay: Duration) -> String {
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let Ok(server) = TcpStream::connect(&upstream) else {
                    return;
                };
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            });
        }
    });
    url
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Every file under `dir` whose contents contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_containing(&p, needle));
        } else if let Ok(bytes) = std::fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            out.push(p);
        }
    }
    out
}
