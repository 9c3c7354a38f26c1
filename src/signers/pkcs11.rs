//! Keys in a PKCS#11 token (an HSM; SoftHSM2 in the tests), through `cryptoki`.
//!
//! The configuration is Fulcio's crypto11 JSON (`{"Path": "<module .so>", "TokenLabel":
//! "...", "Pin": "..."}`; `TokenSerial` or `SlotNumber` select the token instead of its
//! label); the PIN may instead come from a file or `BREVIS_PKCS11_PIN`. Tokens are found by
//! label or serial, never by a remembered slot id (SoftHSM renumbers slots).
//!
//! Signing runs on a few threads of its own, each with its own logged-in session (PKCS#11
//! sessions are not shareable between threads); callers wait for at most the signer's
//! deadline, so a hung token cannot hold an HTTP worker. A lost session, an invalid handle
//! or a re-initialised module is reconnected (and the key re-found and checked against the
//! public key it had) before the operation is retried once. Messages are hashed on the
//! host and signed with `CKM_ECDSA` or `CKM_RSA_PKCS` (over a DigestInfo), which every
//! token offers. Private keys are generated `CKA_SENSITIVE` and not `CKA_EXTRACTABLE`.

use super::{digest, ecdsa_raw_to_der};
use crate::model::signer::{Signer, SignerError, SigningAlgorithm};
use crate::model::{BoxFuture, der, oid};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use thiserror::Error;

/// Threads (each with a session) signing for one key.
const WORKERS: usize = 2;
/// Signatures waiting for a worker at most; beyond it callers get `Unavailable`.
const QUEUE: usize = 1024;

/// Fulcio's crypto11 configuration file (field names as Go writes them; lower case works
/// too). Exactly one of `TokenLabel`, `TokenSerial`, `SlotNumber`.
#[derive(Clone, Deserialize)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`).
    #[serde(rename = "Path", alias = "path")]
    pub path: PathBuf,
    /// The token's label.
    #[serde(
        rename = "TokenLabel",
        alias = "token_label",
        alias = "tokenlabel",
        default
    )]
    pub token_label: Option<String>,
    /// The token's serial number.
    #[serde(
        rename = "TokenSerial",
        alias = "token_serial",
        alias = "tokenserial",
        default
    )]
    pub token_serial: Option<String>,
    /// The slot number (not stable on every module; prefer the label).
    #[serde(
        rename = "SlotNumber",
        alias = "slot_number",
        alias = "slotnumber",
        default
    )]
    pub slot_number: Option<u64>,
    /// The user PIN; else `--pkcs11-pin-file` or `BREVIS_PKCS11_PIN`.
    #[serde(rename = "Pin", alias = "pin", default)]
    pub pin: Option<String>,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("path", &self.path)
            .field("token_label", &self.token_label)
            .field("token_serial", &self.token_serial)
            .field("slot_number", &self.slot_number)
            .field("pin", &self.pin.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// What went wrong with a token, a key or the configuration. Never carries the PIN.
#[derive(Debug, Error)]
pub enum Pkcs11Error {
    /// The configuration file is unusable.
    #[error("PKCS#11 configuration {path}: {reason}")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The module could not be loaded or initialised.
    #[error("PKCS#11 module {path}")]
    Module {
        /// The module's path.
        path: PathBuf,
        /// The library's error.
        #[source]
        source: P11Error,
    },
    /// No token matches the configuration.
    #[error("no PKCS#11 token {0}")]
    NoToken(String),
    /// No private key (or its public half) with that label.
    #[error("no private key labelled {0:?} (with its public key) in the token")]
    NoKey(String),
    /// A key with that label exists already (generation refuses to overwrite).
    #[error("the token already holds a key labelled {0:?}")]
    KeyExists(String),
    /// The key's type or curve is not one brevis signs with.
    #[error("key {label:?}: {reason}")]
    Unsupported {
        /// The key's label.
        label: String,
        /// What is unsupported.
        reason: String,
    },
    /// A token operation failed.
    #[error("PKCS#11 {what}")]
    Operation {
        /// The operation.
        what: &'static str,
        /// The token's error.
        #[source]
        source: P11Error,
    },
}

fn op(what: &'static str) -> impl FnOnce(P11Error) -> Pkcs11Error {
    move |source| Pkcs11Error::Operation { what, source }
}

impl Pkcs11Config {
    /// Reads the JSON file; the PIN from the file, else `pin_file`, else the environment.
    pub fn load(path: &Path, pin_file: Option<&Path>) -> Result<Pkcs11Config, Pkcs11Error> {
        let bad = |reason: String| Pkcs11Error::Config {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut c: Pkcs11Config = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let selectors = [
            c.token_label.is_some(),
            c.token_serial.is_some(),
            c.slot_number.is_some(),
        ];
        if selectors.iter().filter(|s| **s).count() != 1 {
            return Err(bad(
                "give exactly one of TokenLabel, TokenSerial and SlotNumber".into(),
            ));
        }
        if c.pin.is_none() {
            c.pin = match pin_file {
                Some(f) => Some(
                    std::fs::read_to_string(f)
                        .map_err(|e| bad(format!("the PIN file {}: {e}", f.display())))?
                        .trim_end_matches(['\n', '\r'])
                        .to_string(),
                ),
                None => std::env::var("BREVIS_PKCS11_PIN").ok(),
            };
        }
        Ok(c)
    }

    fn describe_token(&self) -> String {
        match (&self.token_label, &self.token_serial, self.slot_number) {
            (Some(l), _, _) => format!("labelled {l:?}"),
            (_, Some(s), _) => format!("with serial {s:?}"),
            (_, _, Some(n)) => format!("in slot {n}"),
            _ => "(none selected)".into(),
        }
    }
}

/// One loaded module, initialised once per process (PKCS#11's rule), re-initialised
/// when the token reports it lost its state.
struct Module {
    path: PathBuf,
    /// The context and its generation (bumped on every re-initialisation).
    ctx: Mutex<(Pkcs11, u64)>,
}

fn initialize(path: &Path) -> Result<Pkcs11, Pkcs11Error> {
    let module = |source| Pkcs11Error::Module {
        path: path.to_path_buf(),
        source,
    };
    let p = Pkcs11::new(path).map_err(module)?;
    match p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(p),
        Err(e) => Err(module(e)),
    }
}

impl Module {
    fn get(path: &Path) -> Result<Arc<Module>, Pkcs11Error> {
        static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
        let mut all = MODULES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(m) = all.get(path) {
            return Ok(m.clone());
        }
        let m = Arc::new(Module {
            path: path.to_path_buf(),
            ctx: Mutex::new((initialize(path)?, 0)),
        });
        all.insert(path.to_path_buf(), m.clone());
        Ok(m)
    }

    fn current(&self) -> (Pkcs11, u64) {
        let g = self.ctx.lock().unwrap_or_else(|p| p.into_inner());
        (g.0.clone(), g.1)
    }

    /// Finalises and initialises the module again, unless someone did since `seen`.
    fn reinitialize(&self, seen: u64) -> Result<(), Pkcs11Error> {
        let mut g = self.ctx.lock().unwrap_or_else(|p| p.into_inner());
        if g.1 != seen {
            return Ok(());
        }
        let _ = g.0.clone().finalize();
        g.0 = initialize(&self.path)?;
        g.1 += 1;
        tracing::warn!(module = %self.path.display(), "PKCS#11 module re-initialised");
        Ok(())
    }
}

/// Opens a logged-in read-write session on the configured token.
fn open_session(p: &Pkcs11, config: &Pkcs11Config) -> Result<Session, Pkcs11Error> {
    let slots = p
        .get_slots_with_token()
        .map_err(op("listing the token slots"))?;
    let slot = slots
        .into_iter()
        .find(|s| {
            if let Some(n) = config.slot_number {
                return s.id() == n;
            }
            p.get_token_info(*s).is_ok_and(|t| {
                config.token_label.as_deref().is_none_or(|l| t.label() == l)
                    && config
                        .token_serial
                        .as_deref()
                        .is_none_or(|n| t.serial_number() == n)
            })
        })
        .ok_or_else(|| Pkcs11Error::NoToken(config.describe_token()))?;
    let session = p.open_rw_session(slot).map_err(op("opening a session"))?;
    let pin = config.pin.clone().map(AuthPin::from);
    match session.login(UserType::User, pin.as_ref()) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(e) => Err(op("logging in to the token")(e)),
    }
}

fn find_one(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<Option<ObjectHandle>, Pkcs11Error> {
    Ok(session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(op("finding an object"))?
        .into_iter()
        .next())
}

/// Named curves brevis signs with: (CKA_EC_PARAMS, curve OID, algorithm).
const CURVES: [(oid::Oid, SigningAlgorithm); 2] = [
    (oid::CURVE_P256, SigningAlgorithm::EcdsaP256Sha256),
    (oid::CURVE_P384, SigningAlgorithm::EcdsaP384Sha384),
];

/// The public key with `label` as a DER SubjectPublicKeyInfo, and how it signs.
fn public_key(session: &Session, label: &str) -> Result<(Vec<u8>, SigningAlgorithm), Pkcs11Error> {
    let h = find_one(session, ObjectClass::PUBLIC_KEY, label)?
        .ok_or_else(|| Pkcs11Error::NoKey(label.to_string()))?;
    let unsupported = |reason: &str| Pkcs11Error::Unsupported {
        label: label.to_string(),
        reason: reason.to_string(),
    };
    let attrs = session
        .get_attributes(
            h,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::EcPoint,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        )
        .map_err(op("reading the public key"))?;
    let mut kind = None;
    let (mut params, mut point, mut n, mut e) = (None, None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(k) => kind = Some(k),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            _ => {}
        }
    }
    match kind {
        Some(KeyType::EC) => {
            let params = params.ok_or_else(|| unsupported("no CKA_EC_PARAMS"))?;
            let (curve, alg) = CURVES
                .iter()
                .find(|(c, _)| c.tlv() == params)
                .ok_or_else(|| unsupported("a curve other than P-256 or P-384"))?;
            let point = point.ok_or_else(|| unsupported("no CKA_EC_POINT"))?;
            // Most tokens wrap the point in a DER OCTET STRING; some give it bare.
            let point = match der::read_tlv(&point) {
                Ok((tlv, [])) if tlv.tag == der::TAG_OCTET_STRING => tlv.content.to_vec(),
                _ => point,
            };
            let spki = der::sequence(&[
                &der::sequence(&[&oid::EC_PUBLIC_KEY.tlv(), &curve.tlv()]),
                &der::bit_string(&point),
            ]);
            Ok((spki, *alg))
        }
        Some(KeyType::RSA) => {
            let (n, e) = n
                .zip(e)
                .ok_or_else(|| unsupported("no modulus or exponent"))?;
            let spki = der::sequence(&[
                &der::sequence(&[&oid::RSA_ENCRYPTION.tlv(), &[der::TAG_NULL, 0]]),
                &der::bit_string(&der::sequence(&[
                    &der::unsigned_integer(&n),
                    &der::unsigned_integer(&e),
                ])),
            ]);
            Ok((spki, SigningAlgorithm::RsaPkcs1Sha256))
        }
        _ => Err(unsupported("not an EC or RSA key")),
    }
}

/// RFC 8017 section 9.2, note 1: the DER DigestInfo prefix of a SHA-256 digest.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// How a reply reaches the caller.
enum Reply {
    Sync(SyncSender<Result<Vec<u8>, SignerError>>),
    Async(tokio::sync::oneshot::Sender<Result<Vec<u8>, SignerError>>),
}

struct Job {
    digest: Vec<u8>,
    reply: Reply,
}

/// What a signing thread holds: its session, the key's handle, the module generation.
struct Connection {
    session: Session,
    key: ObjectHandle,
    generation: u64,
}

/// A private key in a PKCS#11 token.
pub struct HsmSigner {
    label: String,
    algorithm: SigningAlgorithm,
    spki: Vec<u8>,
    jobs: SyncSender<Job>,
    timeout: Duration,
}

impl HsmSigner {
    /// Finds the key `label` (private and public halves) and starts the signing threads.
    pub fn open(
        config: Pkcs11Config,
        label: &str,
        timeout: Duration,
    ) -> Result<HsmSigner, Pkcs11Error> {
        let module = Module::get(&config.path)?;
        let (p, _) = module.current();
        let session = open_session(&p, &config)?;
        if find_one(&session, ObjectClass::PRIVATE_KEY, label)?.is_none() {
            return Err(Pkcs11Error::NoKey(label.to_string()));
        }
        let (spki, algorithm) = public_key(&session, label)?;
        drop(session);
        let (jobs, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let worker = Arc::new(Worker {
            module,
            config,
            label: label.to_string(),
            algorithm,
            spki: spki.clone(),
        });
        for i in 0..WORKERS {
            let (w, rx) = (worker.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("pkcs11-{i}"))
                .spawn(move || w.run(&rx))
                .map_err(|e| Pkcs11Error::Unsupported {
                    label: label.to_string(),
                    reason: format!("cannot start a signing thread: {e}"),
                })?;
        }
        Ok(HsmSigner {
            label: label.to_string(),
            algorithm,
            spki,
            jobs,
            timeout,
        })
    }

    fn submit(&self, message: &[u8], reply: Reply) -> Result<(), SignerError> {
        let job = Job {
            digest: digest(self.algorithm, message),
            reply,
        };
        self.jobs.try_send(job).map_err(|_| {
            SignerError::Unavailable(format!(
                "PKCS#11 key {:?}: too many signatures waiting",
                self.label
            ))
        })
    }
}

impl Signer for HsmSigner {
    fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    fn public_key_spki(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let (tx, rx) = sync_channel(1);
        self.submit(message, Reply::Sync(tx))?;
        rx.recv_timeout(self.timeout)
            .map_err(|_| SignerError::Timeout)?
    }

    fn sign_async<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, SignerError>> {
        Box::pin(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.submit(message, Reply::Async(tx))?;
            match tokio::time::timeout(self.timeout, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(SignerError::Unavailable(
                    "the PKCS#11 signing thread stopped".into(),
                )),
                Err(_) => Err(SignerError::Timeout),
            }
        })
    }

    fn sign_many(&self, messages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, SignerError> {
        // Queue them all, so both signing threads work, then collect in order.
        let mut waiting = Vec::with_capacity(messages.len());
        for m in messages {
            let (tx, rx) = sync_channel(1);
            self.submit(m, Reply::Sync(tx))?;
            waiting.push(rx);
        }
        let deadline = std::time::Instant::now() + self.timeout;
        waiting
            .into_iter()
            .map(|rx| {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                rx.recv_timeout(left).map_err(|_| SignerError::Timeout)?
            })
            .collect()
    }

    fn backend(&self) -> &'static str {
        "pkcs11"
    }
}

/// The part of a signer its threads share.
struct Worker {
    module: Arc<Module>,
    config: Pkcs11Config,
    label: String,
    algorithm: SigningAlgorithm,
    spki: Vec<u8>,
}

/// Errors after which the session is gone: open a new one.
fn session_lost(e: &P11Error) -> bool {
    matches!(
        e,
        P11Error::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid,
            _
        )
    )
}

/// Errors after which the module itself must start over.
fn module_lost(e: &P11Error) -> bool {
    matches!(
        e,
        P11Error::Pkcs11(
            RvError::CryptokiNotInitialized
                | RvError::GeneralError
                | RvError::DeviceError
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SlotIdInvalid,
            _
        )
    )
}

impl Worker {
    fn run(&self, jobs: &Mutex<Receiver<Job>>) {
        let mut conn: Option<Connection> = None;
        loop {
            let job = {
                let rx = jobs.lock().unwrap_or_else(|p| p.into_inner());
                match rx.recv() {
                    Ok(j) => j,
                    Err(_) => return, // the signer is gone
                }
            };
            let result = self.sign(&mut conn, &job.digest);
            match job.reply {
                Reply::Sync(tx) => {
                    let _ = tx.send(result);
                }
                Reply::Async(tx) => {
                    let _ = tx.send(result);
                }
            }
        }
    }

    fn connect(&self) -> Result<Connection, Pkcs11Error> {
        let (p, generation) = self.module.current();
        let session = open_session(&p, &self.config)?;
        let key = find_one(&session, ObjectClass::PRIVATE_KEY, &self.label)?
            .ok_or_else(|| Pkcs11Error::NoKey(self.label.clone()))?;
        // The token may have been replaced meanwhile: the key must still be this key.
        let (spki, _) = public_key(&session, &self.label)?;
        if spki != self.spki {
            return Err(Pkcs11Error::Unsupported {
                label: self.label.clone(),
                reason: "the key in the token changed since brevis started".into(),
            });
        }
        Ok(Connection {
            session,
            key,
            generation,
        })
    }

    /// Signs a digest, reconnecting once when the session or the module was lost.
    fn sign(&self, conn: &mut Option<Connection>, digest: &[u8]) -> Result<Vec<u8>, SignerError> {
        let mut last = None;
        for attempt in 0..2 {
            if conn.is_none() {
                match self.connect() {
                    Ok(c) => *conn = Some(c),
                    Err(e) => {
                        let generation = self.module.current().1;
                        if attempt == 0 {
                            // A token that came back (or a new one) needs a fresh module.
                            let _ = self.module.reinitialize(generation);
                        }
                        last = Some(e.to_string());
                        continue;
                    }
                }
            }
            let c = conn.as_ref().expect("connected above");
            match self.sign_once(c, digest) {
                Ok(sig) => return Ok(sig),
                Err(e) => {
                    let generation = c.generation;
                    last = Some(e.to_string());
                    *conn = None;
                    if module_lost(&e) {
                        let _ = self.module.reinitialize(generation);
                    } else if !session_lost(&e) {
                        break;
                    }
                }
            }
        }
        tracing::warn!(key = %self.label, error = last.as_deref().unwrap_or("unknown"), "PKCS#11 signature failed");
        Err(SignerError::Unavailable(format!(
            "PKCS#11 key {:?}: {}",
            self.label,
            last.unwrap_or_default()
        )))
    }

    fn sign_once(&self, c: &Connection, digest: &[u8]) -> Result<Vec<u8>, P11Error> {
        match self.algorithm {
            SigningAlgorithm::RsaPkcs1Sha256 => c.session.sign(
                &Mechanism::RsaPkcs,
                c.key,
                &[&SHA256_DIGEST_INFO[..], digest].concat(),
            ),
            _ => {
                let raw = c.session.sign(&Mechanism::Ecdsa, c.key, digest)?;
                ecdsa_raw_to_der(&raw).map_err(|_| P11Error::NotSupported)
            }
        }
    }
}

/// Key types `generate_key` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratedKey {
    /// ECDSA on P-256.
    P256,
    /// ECDSA on P-384.
    P384,
    /// RSA, 3072 bits.
    Rsa3072,
}

/// Generates a key pair labelled `label` (and `CKA_ID` = the label's bytes) in the
/// token: the private half sensitive, never extractable, signing only. Refuses a label in
/// use. Returns the public key as DER SubjectPublicKeyInfo.
pub fn generate_key(
    config: &Pkcs11Config,
    label: &str,
    kind: GeneratedKey,
) -> Result<Vec<u8>, Pkcs11Error> {
    let module = Module::get(&config.path)?;
    let (p, _) = module.current();
    let s = open_session(&p, config)?;
    if find_one(&s, ObjectClass::PRIVATE_KEY, label)?.is_some()
        || find_one(&s, ObjectClass::PUBLIC_KEY, label)?.is_some()
    {
        return Err(Pkcs11Error::KeyExists(label.to_string()));
    }
    let id = label.as_bytes().to_vec();
    let common = |class| {
        vec![
            Attribute::Class(class),
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ]
    };
    let mut public = common(ObjectClass::PUBLIC_KEY);
    public.extend([Attribute::Private(false), Attribute::Verify(true)]);
    let mut private = common(ObjectClass::PRIVATE_KEY);
    private.extend([
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    let mechanism = match kind {
        GeneratedKey::P256 | GeneratedKey::P384 => {
            let curve = if kind == GeneratedKey::P256 {
                oid::CURVE_P256
            } else {
                oid::CURVE_P384
            };
            public.extend([
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(curve.tlv()),
            ]);
            private.push(Attribute::KeyType(KeyType::EC));
            Mechanism::EccKeyPairGen
        }
        GeneratedKey::Rsa3072 => {
            public.extend([
                Attribute::ModulusBits(3072u64.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ]);
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    s.generate_key_pair(&mechanism, &public, &private)
        .map_err(op("generating a key pair"))?;
    Ok(public_key(&s, label)?.0)
}

/// Stores a certificate object: `CKA_ID` = `id` (Fulcio's `--hsm-caroot-id` is the ASCII of
/// the flag), `CKA_LABEL` = `label`, with the subject PKCS#11 requires.
pub fn store_certificate(
    config: &Pkcs11Config,
    id: &[u8],
    label: &str,
    cert_der: &[u8],
) -> Result<(), Pkcs11Error> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| Pkcs11Error::Unsupported {
            label: label.to_string(),
            reason: format!("the certificate does not parse: {e}"),
        })?;
    let module = Module::get(&config.path)?;
    let (p, _) = module.current();
    let s = open_session(&p, config)?;
    s.create_object(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Subject(cert.subject().as_raw().to_vec()),
        Attribute::Issuer(cert.issuer().as_raw().to_vec()),
        Attribute::Value(cert_der.to_vec()),
    ])
    .map_err(op("storing a certificate"))?;
    Ok(())
}

/// A certificate object of the token: its `CKA_ID` and its DER.
pub type TokenCertificate = (Vec<u8>, Vec<u8>);

/// Every certificate object in the token as (CKA_ID, DER).
pub fn certificates(config: &Pkcs11Config) -> Result<Vec<TokenCertificate>, Pkcs11Error> {
    let module = Module::get(&config.path)?;
    let (p, _) = module.current();
    let s = open_session(&p, config)?;
    let handles = s
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .map_err(op("finding certificates"))?;
    let mut out = Vec::new();
    for h in handles {
        let attrs = s
            .get_attributes(h, &[AttributeType::Id, AttributeType::Value])
            .map_err(op("reading a certificate"))?;
        let (mut id, mut value) = (Vec::new(), None);
        for a in attrs {
            match a {
                Attribute::Id(v) => id = v,
                Attribute::Value(v) => value = Some(v),
                _ => {}
            }
        }
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push((id, v));
        }
    }
    Ok(out)
}

/// The chain of the certificate stored under `id`: that certificate first, then its
/// issuers among the token's certificates, by subject (root last). Fulcio's tokens hold
/// only the one self-signed certificate.
pub fn chain_from_token(config: &Pkcs11Config, id: &[u8]) -> Result<Vec<Vec<u8>>, Pkcs11Error> {
    let all = certificates(config)?;
    let first = all
        .iter()
        .find(|(i, _)| i == id)
        .map(|(_, d)| d.clone())
        .ok_or_else(|| Pkcs11Error::Unsupported {
            label: String::from_utf8_lossy(id).into_owned(),
            reason: "no certificate with that CKA_ID in the token".into(),
        })?;
    let parsed: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = all
        .iter()
        .filter_map(|(_, d)| {
            let (_, c) = x509_parser::parse_x509_certificate(d).ok()?;
            Some((
                c.subject().as_raw().to_vec(),
                c.issuer().as_raw().to_vec(),
                d.clone(),
            ))
        })
        .collect();
    let mut chain = vec![first];
    while chain.len() < 8 {
        let last = chain.last().expect("not empty");
        let Some((subject, issuer, _)) = parsed.iter().find(|(_, _, d)| d == last) else {
            break;
        };
        if subject == issuer {
            break; // self-signed: the root
        }
        match parsed
            .iter()
            .find(|(s, _, d)| s == issuer && !chain.contains(d))
        {
            Some((_, _, d)) => chain.push(d.clone()),
            None => break,
        }
    }
    Ok(chain)
}
