//! `brevis monitor`: follows a CT log (brevis's own or any RFC 6962 / static-ct-api log),
//! proves every new tree head consistent with the last one it stored, reads every new
//! entry, and reports certificates that match the watch file.
//!
//! Each cycle: fetch the latest tree head and verify its signature; prove it extends the
//! stored one (a shrunk tree, a timestamp that went backwards, a different root for the
//! same size, a failed proof or a bad signature is an `inconsistent` event, kept in the
//! state for good); then read the entries from where the state says, in batches. Every
//! leaf hash goes into a Merkle frontier, so once the scan reaches the new tree size the
//! frontier's root must be the signed root: the entries read are the entries the log
//! committed to. After each batch the next state is written to a file and synced, the
//! events go out (the webhook, then stdout in one write), and only then the state file is
//! renamed into place: a crash never skips an event, and repeats one only if it falls
//! between the stdout write and the rename.

pub mod source;
pub mod watch;

use crate::ct::LogPublicKey;
use crate::ct::checkpoint::SignedTreeHead;
use crate::ct::facts;
use crate::ct::merkle::{Frontier, Hash};
use crate::metrics;
use crate::trust::rfc3339_millis;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use source::{Head, Leaf, ReadPath, Source, SourceError};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use watch::WatchFile;

/// How the monitor runs.
pub struct MonitorOptions {
    /// The log's base URL.
    pub log_url: String,
    /// The log's public key.
    pub key: LogPublicKey,
    /// Which read path.
    pub read_path: ReadPath,
    /// The watches.
    pub watch: WatchFile,
    /// Where the state file lives.
    pub state_dir: PathBuf,
    /// One cycle, then exit.
    pub once: bool,
    /// Time between cycles.
    pub interval: Duration,
    /// Where a new state starts (`None`: at the current tree size).
    pub from_index: Option<u64>,
    /// Where events are also POSTed.
    pub webhook: Option<String>,
    /// Entries per batch (RFC 6962 `get-entries` request; static-ct reads whole tiles).
    pub batch: u64,
}

/// Why the monitor stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The state file cannot be read or written.
    #[error("the state file {0}")]
    State(String),
    /// The state belongs to another log.
    #[error("the state in {dir} belongs to the log {other}; use another --state-dir")]
    OtherLog {
        /// The state directory.
        dir: String,
        /// The log the state was made for.
        other: String,
    },
    /// The HTTP client could not be built.
    #[error("the HTTP client")]
    Http(#[source] reqwest::Error),
    /// Reading the log failed (with `--once`).
    #[error("reading the log")]
    Source(#[source] SourceError),
    /// The webhook could not take the events (with `--once`, after its retries).
    #[error("the webhook {0} did not accept the events")]
    Webhook(String),
    /// Writing events to stdout failed.
    #[error("writing events to stdout")]
    Stdout(#[source] std::io::Error),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked out (or the service was asked to stop).
    Clean,
    /// The state holds at least one inconsistency.
    Inconsistent,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct StoredHead {
    tree_size: u64,
    timestamp: u64,
    root: String,
}

impl StoredHead {
    fn of(h: &SignedTreeHead) -> StoredHead {
        StoredHead {
            tree_size: h.tree_size,
            timestamp: h.timestamp,
            root: STANDARD.encode(h.root),
        }
    }
}

/// The state file (`state.json`): where the scan is, the last verified tree head, and
/// every inconsistency ever seen.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct State {
    log: String,
    log_id: String,
    /// The last tree head proven consistent and fully scanned.
    head: Option<StoredHead>,
    /// The next entry to read.
    next_index: Option<u64>,
    /// The Merkle frontier of entries `[0, next_index)`, serialised.
    frontier: Option<String>,
    /// Every inconsistency seen, never removed by the monitor.
    inconsistencies: Vec<Value>,
}

impl State {
    fn head(&self) -> Option<SignedTreeHeadView> {
        let h = self.head.as_ref()?;
        Some(SignedTreeHeadView {
            tree_size: h.tree_size,
            timestamp: h.timestamp,
            root: STANDARD.decode(&h.root).ok()?.try_into().ok()?,
        })
    }

    fn frontier(&self) -> Option<Frontier> {
        Frontier::from_bytes(&STANDARD.decode(self.frontier.as_ref()?).ok()?)
    }
}

/// A stored tree head without its signature (it was verified when it was stored).
struct SignedTreeHeadView {
    tree_size: u64,
    timestamp: u64,
    root: Hash,
}

/// The monitor: state, source, event sinks.
pub struct Monitor<W: Write> {
    opts: MonitorOptions,
    source: Source,
    state: State,
    out: W,
    http: reqwest::Client,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl<W: Write> Monitor<W> {
    /// Opens (or starts) the state in `opts.state_dir`; events go to `out`.
    pub fn open(opts: MonitorOptions, out: W) -> Result<Monitor<W>, MonitorError> {
        std::fs::create_dir_all(&opts.state_dir)
            .map_err(|e| MonitorError::State(format!("{}: {e}", opts.state_dir.display())))?;
        let path = opts.state_dir.join("state.json");
        let log_id = STANDARD.encode(opts.key.log_id());
        let state = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let s: State = serde_json::from_str(&text)
                    .map_err(|e| MonitorError::State(format!("{}: {e}", path.display())))?;
                if s.log_id != log_id {
                    return Err(MonitorError::OtherLog {
                        dir: opts.state_dir.display().to_string(),
                        other: s.log,
                    });
                }
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                log: opts.log_url.clone(),
                log_id,
                ..State::default()
            },
            Err(e) => return Err(MonitorError::State(format!("{}: {e}", path.display()))),
        };
        let source = Source::new(&opts.log_url, opts.read_path, opts.key.clone())
            .map_err(MonitorError::Http)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(MonitorError::Http)?;
        metrics::init_monitor();
        metrics::MONITOR_INCONSISTENCIES.set(state.inconsistencies.len() as i64);
        for w in &opts.watch.watches {
            metrics::MONITOR_MATCHES.with_label_values(&[w.name.as_str()]);
        }
        Ok(Monitor {
            opts,
            source,
            state,
            out,
            http,
        })
    }

    fn state_path(&self) -> PathBuf {
        self.opts.state_dir.join("state.json")
    }

    /// Writes the state to `state.json.next` and syncs it; [`Monitor::commit`] renames it
    /// into place. Events are written between the two, so the window in which a crash
    /// repeats them is one rename, not a disk sync.
    fn prepare(&self) -> Result<PathBuf, MonitorError> {
        let tmp = self.opts.state_dir.join("state.json.next");
        let text = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| MonitorError::State(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()
        };
        write().map_err(|e| MonitorError::State(format!("{}: {e}", tmp.display())))?;
        Ok(tmp)
    }

    fn commit(&self, tmp: &std::path::Path) -> Result<(), MonitorError> {
        let path = self.state_path();
        std::fs::rename(tmp, &path)
            .map_err(|e| MonitorError::State(format!("{}: {e}", path.display())))?;
        // The rename itself is made durable by syncing the directory.
        if let Ok(d) = std::fs::File::open(&self.opts.state_dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn save(&self) -> Result<(), MonitorError> {
        let tmp = self.prepare()?;
        self.commit(&tmp)
    }

    /// Runs until `stop` resolves (or one cycle with `--once`).
    pub async fn run(
        &mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Outcome, MonitorError> {
        if self.opts.once {
            self.cycle(true).await?;
            return Ok(self.outcome());
        }
        tokio::pin!(stop);
        loop {
            let cycle = self.cycle(false);
            tokio::select! {
                r = cycle => {
                    if let Err(e) = r {
                        tracing::warn!(error = %crate::errors::Chain(&e), "monitor cycle failed; retrying at the next interval");
                    }
                }
                _ = &mut stop => return Ok(self.outcome()),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.opts.interval) => {}
                _ = &mut stop => return Ok(self.outcome()),
            }
        }
    }

    fn outcome(&self) -> Outcome {
        if self.state.inconsistencies.is_empty() {
            Outcome::Clean
        } else {
            Outcome::Inconsistent
        }
    }

    /// One cycle. Cancellation is safe between awaits: the state is only replaced after a
    /// batch's events went out.
    async fn cycle(&mut self, once: bool) -> Result<(), MonitorError> {
        let head = match self.source.head().await {
            Ok(h) => h,
            Err(e) => {
                metrics::MONITOR_CONSISTENCY
                    .with_label_values(&["error"])
                    .inc();
                return Err(MonitorError::Source(e));
            }
        };
        let new = match head {
            Head::Verified(h) => h,
            Head::BadSignature(size, root) => {
                return self
                    .inconsistent(
                        "bad_signature",
                        "the tree head's signature does not verify with the log's key",
                        Some((size, root, None)),
                    )
                    .await;
            }
        };
        metrics::MONITOR_TREE_SIZE.set(new.tree_size as i64);
        metrics::MONITOR_CHECKPOINT_AGE.set(now_ms().saturating_sub(new.timestamp) as f64 / 1000.0);
        let claim = Some((new.tree_size, new.root, Some(new.timestamp)));
        if let Some(old) = self.state.head() {
            if new.tree_size < old.tree_size {
                return self
                    .inconsistent(
                        "tree_shrank",
                        &format!(
                            "the log's tree shrank from {} to {} entries",
                            old.tree_size, new.tree_size
                        ),
                        claim,
                    )
                    .await;
            }
            if new.timestamp < old.timestamp {
                return self
                    .inconsistent(
                        "timestamp_went_backwards",
                        "the tree head's timestamp is older than the stored one",
                        claim,
                    )
                    .await;
            }
            match self
                .source
                .consistent((old.tree_size, &old.root), &new)
                .await
            {
                Ok(Ok(())) => {
                    metrics::MONITOR_CONSISTENCY
                        .with_label_values(&["consistent"])
                        .inc();
                }
                Ok(Err(e)) => {
                    let reason = if old.tree_size == new.tree_size {
                        "fork"
                    } else {
                        "consistency_proof_failed"
                    };
                    return self
                        .inconsistent(
                            reason,
                            &format!(
                                "the tree of {} entries is not an extension of the stored tree of {}: {e}",
                                new.tree_size, old.tree_size
                            ),
                            claim,
                        )
                        .await;
                }
                Err(e) => {
                    metrics::MONITOR_CONSISTENCY
                        .with_label_values(&["error"])
                        .inc();
                    return Err(MonitorError::Source(e));
                }
            }
        }
        self.scan(&new, once).await
    }

    async fn scan(&mut self, new: &SignedTreeHead, once: bool) -> Result<(), MonitorError> {
        let start = match self.state.next_index {
            Some(n) => {
                if let Some(f) = self.opts.from_index
                    && f != n
                {
                    tracing::warn!(
                        from_index = f,
                        resume_at = n,
                        "--from-index ignored: the state says where to resume"
                    );
                }
                n
            }
            None => self.opts.from_index.unwrap_or(new.tree_size),
        };
        if start > new.tree_size {
            return self
                .inconsistent(
                    "tree_shrank",
                    &format!(
                        "the log has {} entries but the monitor already read up to {start}",
                        new.tree_size
                    ),
                    Some((new.tree_size, new.root, Some(new.timestamp))),
                )
                .await;
        }
        let mut frontier = match self.state.frontier() {
            Some(f) if f.size() == start => f,
            _ => match self
                .source
                .frontier_at(start, new)
                .await
                .map_err(MonitorError::Source)?
            {
                Ok(f) => f,
                Err(e) => {
                    return self
                        .inconsistent(
                            "proof_failed",
                            &format!("the log's proof of the tree up to entry {start} fails: {e}"),
                            Some((new.tree_size, new.root, Some(new.timestamp))),
                        )
                        .await;
                }
            },
        };
        let mut next = start;
        while next < new.tree_size {
            let end = (next + self.opts.batch).min(new.tree_size);
            let leaves = self
                .source
                .leaves(next, end, new.tree_size)
                .await
                .map_err(MonitorError::Source)?;
            let mut events = Vec::new();
            for leaf in &leaves {
                frontier.push(leaf.hash);
                self.examine(leaf, &mut events);
            }
            next += leaves.len() as u64;
            let before = (self.state.next_index, self.state.frontier.take());
            self.state.next_index = Some(next);
            self.state.frontier = Some(STANDARD.encode(frontier.to_bytes()));
            let tmp = self.prepare()?;
            if let Err(e) = self.emit(&events, once).await {
                (self.state.next_index, self.state.frontier) = before;
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            self.commit(&tmp)?;
            metrics::MONITOR_SCANNED.inc_by(leaves.len() as u64);
            metrics::MONITOR_LAG.set((new.tree_size - next) as i64);
        }
        if frontier.root() != new.root {
            return self
                .inconsistent(
                    "entries_do_not_match",
                    "the entries the log served do not hash to its signed root",
                    Some((new.tree_size, new.root, Some(new.timestamp))),
                )
                .await;
        }
        self.state.next_index = Some(new.tree_size);
        self.state.frontier = Some(STANDARD.encode(frontier.to_bytes()));
        self.state.head = Some(StoredHead::of(new));
        self.save()?;
        metrics::MONITOR_LAG.set(0);
        metrics::MONITOR_LAST_SUCCESS.set(now_ms() as f64 / 1000.0);
        Ok(())
    }

    fn examine(&self, leaf: &Leaf, events: &mut Vec<Value>) {
        let facts = match &leaf.entry {
            Ok(e) => facts::of_entry(e).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let f = match facts {
            Ok(f) => f,
            Err(reason) => {
                metrics::MONITOR_UNPARSED.inc();
                events.push(json!({
                    "event": "unparsed",
                    "index": leaf.index,
                    "reason": reason,
                    "log": self.opts.log_url,
                }));
                return;
            }
        };
        let timestamp = leaf.entry.as_ref().map(|e| e.timestamp).unwrap_or(0);
        for w in self.opts.watch.matching(&f) {
            metrics::MONITOR_MATCHES
                .with_label_values(&[w.name.as_str()])
                .inc();
            events.push(json!({
                "event": "match",
                "watch": w.name,
                "index": leaf.index,
                "identity": f.identity(),
                "sans": f.sans,
                "issuer": f.oidc_issuer,
                "serial": f.serial,
                "not_before": rfc3339_millis((f.not_before.max(0) as u64) * 1000),
                "precertificate": f.precertificate,
                "logged_at": rfc3339_millis(timestamp),
                "log": self.opts.log_url,
            }));
        }
    }

    async fn inconsistent(
        &mut self,
        reason: &str,
        detail: &str,
        claim: Option<(u64, Hash, Option<u64>)>,
    ) -> Result<(), MonitorError> {
        metrics::MONITOR_CONSISTENCY
            .with_label_values(&["inconsistent"])
            .inc();
        let claimed = claim.map(|(size, root, ts)| {
            json!({"tree_size": size, "root": STANDARD.encode(root), "timestamp": ts})
        });
        // The same claim is reported once, however many cycles see it again.
        let seen = self.state.inconsistencies.iter().any(|e| {
            e["reason"] == reason && e["claimed"] == claimed.clone().unwrap_or(Value::Null)
        });
        if seen {
            return Ok(());
        }
        let event = json!({
            "event": "inconsistent",
            "reason": reason,
            "detail": detail,
            "stored": self.state.head,
            "claimed": claimed,
            "seen_at": rfc3339_millis(now_ms()),
            "log": self.opts.log_url,
        });
        self.state.inconsistencies.push(event.clone());
        let tmp = self.prepare()?;
        if let Err(e) = self
            .emit(std::slice::from_ref(&event), self.opts.once)
            .await
        {
            self.state.inconsistencies.pop();
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.commit(&tmp)?;
        metrics::MONITOR_INCONSISTENCIES.set(self.state.inconsistencies.len() as i64);
        Ok(())
    }

    /// Delivers events to the webhook (retrying; the scan waits, so its queue is one
    /// batch), then writes them to stdout in one write.
    async fn emit(&mut self, events: &[Value], once: bool) -> Result<(), MonitorError> {
        if events.is_empty() {
            return Ok(());
        }
        if let Some(url) = self.opts.webhook.clone() {
            for e in events {
                self.deliver(&url, e, once).await?;
            }
        }
        let mut text = String::new();
        for e in events {
            text.push_str(&e.to_string());
            text.push('\n');
        }
        self.out
            .write_all(text.as_bytes())
            .and_then(|_| self.out.flush())
            .map_err(MonitorError::Stdout)
    }

    async fn deliver(&self, url: &str, event: &Value, once: bool) -> Result<(), MonitorError> {
        let mut backoff = Duration::from_millis(250);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let sent = self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(event.to_string())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    metrics::MONITOR_WEBHOOK
                        .with_label_values(&["delivered"])
                        .inc();
                    return Ok(());
                }
                Ok(r) => {
                    tracing::warn!(status = %r.status(), attempt, "the webhook refused an event")
                }
                Err(e) => tracing::warn!(error = %e, attempt, "the webhook is unreachable"),
            }
            metrics::MONITOR_WEBHOOK
                .with_label_values(&["failed_attempt"])
                .inc();
            if once && attempt >= WEBHOOK_ATTEMPTS_ONCE {
                return Err(MonitorError::Webhook(url.to_string()));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}

/// With `--once`, how many times one event is offered to the webhook before the run fails
/// (without advancing the state, so the next run offers it again).
pub const WEBHOOK_ATTEMPTS_ONCE: u32 = 5;
