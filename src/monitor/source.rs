//! Reading a CT log as a monitor: the latest signed tree head, a proof that it extends the
//! last one, the frontier at a starting index, and entries with their leaf hashes. Two read
//! paths: RFC 6962 (`/ct/v1/get-*`) and static-ct-api (`/checkpoint`, `/tile/...`), where
//! proofs are recomputed from the hash tiles.

use crate::ct::LogPublicKey;
use crate::ct::checkpoint::{GetSth, SignedTreeHead};
use crate::ct::entry::{self, EntryError, ParsedEntry};
use crate::ct::log::{TileError, TileHashes, TileRecorder};
use crate::ct::merkle::{self, Frontier, Hash, ProofError, SubtreeHashes};
use crate::ct::tiles::encode_index;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

/// Why the log could not be read (the cycle is retried later).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A request failed on the network.
    #[error("{url}")]
    Transport {
        /// The URL requested.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The log answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The answer is not what the endpoint returns.
    #[error("{url}: {what}")]
    Malformed {
        /// The URL requested.
        url: String,
        /// What is wrong with it.
        what: &'static str,
    },
    /// The answer is larger than the monitor reads.
    #[error("{url}: the answer is larger than {cap} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit.
        cap: usize,
    },
}

/// A tree head as fetched: verified, or with a signature that does not verify.
pub enum Head {
    /// The signature verified with the configured key.
    Verified(SignedTreeHead),
    /// The tree head parsed but its signature does not verify (or, for a checkpoint, no
    /// signature line by the log's key verifies): (tree size, root) as claimed.
    BadSignature(u64, Hash),
}

/// One leaf as read: its index, Merkle leaf hash, and the parsed entry or why it does not
/// parse.
pub struct Leaf {
    /// The leaf index.
    pub index: u64,
    /// The RFC 6962 leaf hash (what the tree commits to).
    pub hash: Hash,
    /// The entry, or why it could not be read.
    pub entry: Result<ParsedEntry, EntryError>,
}

/// Which read path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPath {
    /// RFC 6962 `get-sth`, `get-sth-consistency`, `get-entries`, `get-proof-by-hash`.
    Rfc6962,
    /// static-ct-api `checkpoint` and tiles.
    StaticCt,
}

/// A log to read.
pub struct Source {
    base: String,
    path: ReadPath,
    key: LogPublicKey,
    http: reqwest::Client,
}

const MAX_SMALL: usize = 1 << 20;
const MAX_LARGE: usize = 64 << 20;

#[derive(Deserialize)]
struct Consistency {
    consistency: Vec<String>,
}

#[derive(Deserialize)]
struct Entries {
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    leaf_input: String,
}

#[derive(Deserialize)]
struct ProofByHash {
    leaf_index: u64,
    audit_path: Vec<String>,
}

impl Source {
    /// A source for `base` (without a trailing slash).
    pub fn new(base: &str, path: ReadPath, key: LogPublicKey) -> Result<Source, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("brevis-monitor/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Source {
            base: base.trim_end_matches('/').to_string(),
            path,
            key,
            http,
        })
    }

    async fn get(&self, path: &str, cap: usize) -> Result<Vec<u8>, SourceError> {
        let url = format!("{}/{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|source| SourceError::Transport {
                url: url.clone(),
                source,
            })?;
        if !resp.status().is_success() {
            return Err(SourceError::Status {
                url,
                status: resp.status().as_u16(),
            });
        }
        crate::ct::client::read_capped(resp, cap)
            .await
            .map_err(|e| match e {
                crate::ct::client::BodyError::TooLarge(cap) => SourceError::TooLarge {
                    url: url.clone(),
                    cap,
                },
                crate::ct::client::BodyError::Transport(source) => {
                    SourceError::Transport { url, source }
                }
            })
    }

    fn malformed(&self, path: &str, what: &'static str) -> SourceError {
        SourceError::Malformed {
            url: format!("{}/{path}", self.base),
            what,
        }
    }

    /// The latest tree head.
    pub async fn head(&self) -> Result<Head, SourceError> {
        match self.path {
            ReadPath::Rfc6962 => {
                let p = "ct/v1/get-sth";
                let body = self.get(p, MAX_SMALL).await?;
                let j: GetSth = serde_json::from_slice(&body)
                    .map_err(|_| self.malformed(p, "not a get-sth answer"))?;
                let sth = SignedTreeHead::from_json(&j)
                    .ok_or_else(|| self.malformed(p, "not a get-sth answer"))?;
                Ok(if sth.verify(&self.key) {
                    Head::Verified(sth)
                } else {
                    Head::BadSignature(sth.tree_size, sth.root)
                })
            }
            ReadPath::StaticCt => {
                let p = "checkpoint";
                let body = self.get(p, MAX_SMALL).await?;
                let text =
                    String::from_utf8(body).map_err(|_| self.malformed(p, "not UTF-8 text"))?;
                let (size, root) =
                    checkpoint_body(&text).ok_or_else(|| self.malformed(p, "not a checkpoint"))?;
                let origin = text.lines().next().unwrap_or_default();
                Ok(
                    match SignedTreeHead::from_checkpoint(&text, origin, &self.key) {
                        Some(sth) => Head::Verified(sth),
                        None => Head::BadSignature(size, root),
                    },
                )
            }
        }
    }

    /// Whether `new` extends the tree of `old` (size, root) verified earlier: a consistency
    /// proof from the log (RFC 6962) or one recomputed from the new tree's tiles
    /// (static-ct-api), verified against both roots.
    pub async fn consistent(
        &self,
        old: (u64, &Hash),
        new: &SignedTreeHead,
    ) -> Result<Result<(), ProofError>, SourceError> {
        let (old_size, old_root) = old;
        if old_size == 0 || old_size == new.tree_size {
            return Ok(if old_size == new.tree_size && *old_root != new.root {
                Err(ProofError::RootMismatch)
            } else {
                Ok(())
            });
        }
        let proof: Vec<Vec<u8>> = match self.path {
            ReadPath::Rfc6962 => {
                let p = format!(
                    "ct/v1/get-sth-consistency?first={}&second={}",
                    old_size, new.tree_size
                );
                let body = self.get(&p, MAX_SMALL).await?;
                let j: Consistency = serde_json::from_slice(&body)
                    .map_err(|_| self.malformed(&p, "not a consistency proof"))?;
                decode_all(&j.consistency).ok_or_else(|| self.malformed(&p, "bad base64"))?
            }
            ReadPath::StaticCt => {
                let (o, n) = (old_size, new.tree_size);
                self.over_tiles(n, |h| merkle::consistency_proof(h, o, n))
                    .await?
                    .into_iter()
                    .map(|h| h.to_vec())
                    .collect()
            }
        };
        Ok(merkle::verify_consistency(
            old_size,
            new.tree_size,
            &proof,
            old_root,
            &new.root,
        ))
    }

    /// The frontier of the first `n` leaves of `head`'s tree (`0 < n <= head.tree_size`),
    /// proven against its root: from an inclusion proof of leaf `n - 1` (RFC 6962), or
    /// from the hash tiles (static-ct-api).
    pub async fn frontier_at(
        &self,
        n: u64,
        head: &SignedTreeHead,
    ) -> Result<Result<Frontier, ProofError>, SourceError> {
        if n == 0 {
            return Ok(Ok(Frontier::default()));
        }
        match self.path {
            ReadPath::Rfc6962 => {
                let last = self.leaves(n - 1, n, head.tree_size).await?;
                let Some(leaf) = last.first() else {
                    return Err(self.malformed("ct/v1/get-entries", "no entry"));
                };
                let p = format!(
                    "ct/v1/get-proof-by-hash?hash={}&tree_size={}",
                    url_escape(&STANDARD.encode(leaf.hash)),
                    head.tree_size
                );
                let body = self.get(&p, MAX_SMALL).await?;
                let j: ProofByHash = serde_json::from_slice(&body)
                    .map_err(|_| self.malformed(&p, "not an inclusion proof"))?;
                if j.leaf_index != n - 1 {
                    return Ok(Err(ProofError::IndexOutOfRange(j.leaf_index, n)));
                }
                let proof =
                    decode_all(&j.audit_path).ok_or_else(|| self.malformed(&p, "bad base64"))?;
                Ok(merkle::frontier_from_inclusion(
                    n - 1,
                    head.tree_size,
                    &leaf.hash,
                    &proof,
                    &head.root,
                ))
            }
            ReadPath::StaticCt => {
                // The frontier is the complete subtrees of n's binary decomposition.
                let hashes = self
                    .over_tiles(head.tree_size, |h| {
                        let mut out = Vec::new();
                        let mut start = 0u64;
                        for bit in (0..64u32).rev() {
                            if n >> bit & 1 == 1 {
                                out.push(h.hash(bit as u8, start >> bit)?);
                                start += 1 << bit;
                            }
                        }
                        Ok(out)
                    })
                    .await?;
                let mut bytes = n.to_be_bytes().to_vec();
                for h in &hashes {
                    bytes.extend_from_slice(h);
                }
                let f = Frontier::from_bytes(&bytes).ok_or(ProofError::WrongLength);
                // The subtrees are proven by the root they and the rest of the tree make.
                let whole = self
                    .over_tiles(head.tree_size, |h| {
                        Ok(vec![merkle::range_hash(h, 0, head.tree_size)?])
                    })
                    .await?;
                if whole.first() != Some(&head.root) {
                    return Ok(Err(ProofError::RootMismatch));
                }
                Ok(f)
            }
        }
    }

    /// Leaves `[start, end)` of a tree of `size` (fewer if the log answers with fewer; at
    /// least one unless the range is empty).
    pub async fn leaves(&self, start: u64, end: u64, size: u64) -> Result<Vec<Leaf>, SourceError> {
        if start >= end {
            return Ok(Vec::new());
        }
        match self.path {
            ReadPath::Rfc6962 => {
                let p = format!("ct/v1/get-entries?start={start}&end={}", end - 1);
                let body = self.get(&p, MAX_LARGE).await?;
                let j: Entries = serde_json::from_slice(&body)
                    .map_err(|_| self.malformed(&p, "not a get-entries answer"))?;
                if j.entries.is_empty() || j.entries.len() as u64 > end - start {
                    return Err(self.malformed(&p, "wrong number of entries"));
                }
                let mut out = Vec::with_capacity(j.entries.len());
                for (i, e) in j.entries.iter().enumerate() {
                    let raw = STANDARD
                        .decode(&e.leaf_input)
                        .map_err(|_| self.malformed(&p, "bad base64"))?;
                    out.push(Leaf {
                        index: start + i as u64,
                        hash: merkle::leaf_hash(&raw),
                        entry: entry::parse_leaf_input(&raw),
                    });
                }
                Ok(out)
            }
            ReadPath::StaticCt => {
                // One data tile and its level-0 hash tile: the hash tile's hashes are what
                // the tree commits to; an entry whose own hash differs is unparsed.
                let tile = start / 256;
                let width = (size - tile * 256).min(256);
                let suffix = if width == 256 {
                    encode_index(tile)
                } else {
                    format!("{}.p/{width}", encode_index(tile))
                };
                let data_path = format!("tile/data/{suffix}");
                let hash_path = format!("tile/0/{suffix}");
                let hashes = merkle::hashes_from(&self.get(&hash_path, MAX_SMALL).await?)
                    .map_err(|_| self.malformed(&hash_path, "not a hash tile"))?;
                if (hashes.len() as u64) < width {
                    return Err(self.malformed(&hash_path, "tile too short"));
                }
                let data = self.get(&data_path, MAX_LARGE).await?;
                let parsed = entry::split_data_tile(&data);
                let mut out = Vec::new();
                let first = start.max(tile * 256);
                let last = end.min(tile * 256 + width);
                for index in first..last {
                    let pos = (index - tile * 256) as usize;
                    let hash = hashes[pos];
                    let entry = match &parsed {
                        Ok(leaves) => match leaves.get(pos) {
                            Some(Ok(l)) if l.entry.leaf_hash() == hash => Ok(l.entry.clone()),
                            Some(Ok(_)) => Err(EntryError::HashMismatch),
                            Some(Err(e)) => Err(e.clone()),
                            None => Err(EntryError::Truncated("data tile")),
                        },
                        Err(e) => Err(e.clone()),
                    };
                    out.push(Leaf { index, hash, entry });
                }
                Ok(out)
            }
        }
    }

    /// Runs `f` over the hash tiles of a tree of `size`: a dry run records the tiles it
    /// reads, they are fetched, and `f` runs again over them.
    async fn over_tiles<T>(
        &self,
        size: u64,
        f: impl Fn(&dyn SubtreeHashes<Error = TileError>) -> Result<T, TileError>,
    ) -> Result<T, SourceError> {
        let rec = TileRecorder::default();
        let _ = f(&rec);
        let mut tiles = HashMap::new();
        for (level, index) in rec.tiles.into_inner() {
            let available = size >> (8 * u32::from(level));
            let width = available.saturating_sub(index * 256).min(256);
            let p = if width == 256 {
                format!("tile/{level}/{}", encode_index(index))
            } else {
                format!("tile/{level}/{}.p/{width}", encode_index(index))
            };
            tiles.insert((level, index), self.get(&p, MAX_SMALL).await?);
        }
        f(&TileHashes::new(&tiles)).map_err(|_| self.malformed("tile", "a hash tile is too short"))
    }
}

/// The size and root of a checkpoint's body (its signatures are checked separately).
fn checkpoint_body(text: &str) -> Option<(u64, Hash)> {
    let (body, _) = text.split_once("\n\n")?;
    let mut lines = body.lines();
    lines.next()?;
    let size = lines.next()?.parse().ok()?;
    let root = STANDARD.decode(lines.next()?).ok()?.try_into().ok()?;
    Some((size, root))
}

fn decode_all(items: &[String]) -> Option<Vec<Vec<u8>>> {
    items.iter().map(|s| STANDARD.decode(s).ok()).collect()
}

fn url_escape(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}
