//! Where CA material lives on disk: loading a `fileca` chain and key, the data
//! directory's default CA (created on first start), and writing new pairs and
//! intermediates for `brevis ca create` / `brevis ca intermediate`. CA material is never
//! overwritten, and a root's private key is never written into a serving directory.

use super::create::{self, PairSpec};
use super::{CaError, CertificateAuthority, chain, keyfile};
use crate::files::{FileError, write_file};
use crate::model::pem;
use crate::model::signer::{LocalSigner, Signer};
use crate::signers::{self, KeyRef, RemoteOptions, pkcs11};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use thiserror::Error;

/// Why CA material could not be read or written.
#[derive(Debug, Error)]
pub enum ProvisionError {
    /// A CA file (chain or key) could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A directory for new CA material could not be created.
    #[error("cannot create {path}")]
    CreateDir {
        /// The directory that could not be created.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a new certificate or key file failed.
    #[error(transparent)]
    Write(#[from] FileError),
    /// A file to be written already exists; CA material is never overwritten.
    #[error("{0} already exists; refusing to overwrite CA material")]
    Exists(PathBuf),
    /// The root certificate file holds no certificate or more than one.
    #[error("{0}: expected exactly one certificate (the root)")]
    NotOneRoot(PathBuf),
    /// Only one of `--fileca-cert` and `--fileca-key` was given.
    #[error("--fileca-cert and --fileca-key must be given together")]
    HalfAPair,
    /// A key in a PKCS#11 token or a KMS could not be opened or used.
    #[error("the CA key {key}")]
    Key {
        /// The key reference (never a secret).
        key: String,
        /// What went wrong.
        #[source]
        source: signers::OpenError,
    },
    /// The CA material was read but is unusable: a bad chain or key, a wrong password, or a
    /// failure generating or issuing a certificate.
    #[error("the CA in {path}")]
    Ca {
        /// The file the CA material came from (`(memory)` for `ephemeralca`).
        path: PathBuf,
        /// What was wrong with it.
        #[source]
        source: CaError,
    },
}

/// Which CA backend to run.
#[derive(Debug, Clone)]
pub enum CaChoice {
    /// A chain + key on disk. Without explicit paths, the data directory's CA, created on
    /// first start.
    File {
        /// The PEM chain file (issuing certificate first); `None` for the data directory's CA.
        cert: Option<PathBuf>,
        /// The PEM private key of the issuing certificate; `None` for the data directory's CA.
        key: Option<PathBuf>,
        /// Decrypts an encrypted key; also encrypts the keys of a newly created default CA.
        password: Option<String>,
    },
    /// Fulcio's `ephemeralca`: a new in-memory root at every start.
    Ephemeral,
    /// Fulcio's `pkcs11ca` and `kmsca`: the issuing key stays in a PKCS#11 token or a
    /// cloud KMS; only signatures leave it.
    Remote {
        /// The issuing key (`pkcs11:LABEL` or `awskms://...`).
        key: KeyRef,
        /// Where the chain is.
        chain: ChainSource,
        /// The token's configuration and the signer's deadline.
        options: RemoteOptions,
    },
}

/// Where a remote CA's chain (issuing certificate first, root last) is read from.
#[derive(Debug, Clone)]
pub enum ChainSource {
    /// A PEM file (`--kms-cert-chain-path`, `--aws-hsm-root-ca-path`).
    File(PathBuf),
    /// The certificate with this `CKA_ID` in the PKCS#11 token, and its issuers there
    /// (`--hsm-caroot-id`).
    Token(Vec<u8>),
}

/// A CA ready to issue, and where it came from.
pub(crate) struct Provisioned {
    pub ca: CertificateAuthority,
    /// One line for the startup summary.
    pub description: String,
    /// The chain and key files, when they can be reloaded.
    pub files: Option<(PathBuf, PathBuf)>,
    /// Set when this start created the data directory's CA: where the root's private key
    /// was written (outside the data directory; it belongs offline).
    pub new_root_key: Option<PathBuf>,
}

/// Loads the CA `choice` names, creating the data directory's default CA on first start.
pub(crate) fn load_or_create(
    choice: &CaChoice,
    data_dir: &Path,
    now: SystemTime,
) -> Result<Provisioned, ProvisionError> {
    let (cert, key, password) = match choice {
        CaChoice::Ephemeral => {
            let ca = CertificateAuthority::ephemeral(now).map_err(|source| ProvisionError::Ca {
                path: PathBuf::from("(memory)"),
                source,
            })?;
            return Ok(Provisioned {
                ca,
                description: "ephemeralca (in memory; a new root at every start)".into(),
                files: None,
                new_root_key: None,
            });
        }
        CaChoice::File {
            cert,
            key,
            password,
        } => (cert, key, password.as_deref()),
        CaChoice::Remote {
            key,
            chain,
            options,
        } => return load_remote(key, chain, options, now),
    };
    let mut new_root_key = None;
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => {
            let defaults = DataDirFiles::new(data_dir);
            if !defaults.chain.exists() && !defaults.key.exists() {
                let written = write_pair(&defaults, &PairSpec::default(), password, now)?;
                tracing::info!(chain = %written.chain.display(), "created a new root and intermediate CA");
                tracing::warn!(
                    root_key = %written.root_key.display(),
                    "the new root's private key was written outside the data directory; brevis never needs it to run: move it offline"
                );
                new_root_key = Some(written.root_key);
            }
            let legacy = DataDirFiles::legacy_root_key(data_dir);
            if legacy.exists() {
                tracing::warn!(
                    root_key = %legacy.display(),
                    "the root's private key is inside the serving data directory; brevis never needs it: move it offline"
                );
            }
            (defaults.chain, defaults.key)
        }
        _ => return Err(ProvisionError::HalfAPair),
    };
    let ca = load_files(&cert_path, &key_path, password, now)?;
    Ok(Provisioned {
        ca,
        description: format!("fileca, chain {}", cert_path.display()),
        files: Some((cert_path, key_path)),
        new_root_key,
    })
}

/// Fulcio's `fileca`: a PEM chain file (issuing certificate first) and a PEM key file.
pub fn load_files(
    cert_path: &Path,
    key_path: &Path,
    password: Option<&str>,
    now: SystemTime,
) -> Result<CertificateAuthority, ProvisionError> {
    let chain = read(cert_path)?;
    let key = read(key_path)?;
    CertificateAuthority::from_pem(&chain, &key, password, now).map_err(|source| {
        ProvisionError::Ca {
            path: cert_path.to_path_buf(),
            source,
        }
    })
}

/// A CA whose key is in a PKCS#11 token or a KMS: opens the key (checking it exists and
/// reading its public half), reads the chain, and validates them together.
fn load_remote(
    key: &KeyRef,
    source: &ChainSource,
    options: &RemoteOptions,
    now: SystemTime,
) -> Result<Provisioned, ProvisionError> {
    let signer = signers::open(key, options, "ca").map_err(|source| ProvisionError::Key {
        key: key.describe(),
        source,
    })?;
    let (chain, from) = match source {
        ChainSource::File(path) => {
            let chain =
                chain::parse_pem_chain(&read(path)?).map_err(|e| ca_error(path)(e.into()))?;
            (chain, path.display().to_string())
        }
        ChainSource::Token(id) => {
            let config = options.pkcs11.as_ref().ok_or_else(|| ProvisionError::Key {
                key: key.describe(),
                source: signers::OpenError::NoPkcs11Config("--hsm-caroot-id".into()),
            })?;
            let chain = pkcs11::chain_from_token(config, id).map_err(|e| ProvisionError::Key {
                key: key.describe(),
                source: e.into(),
            })?;
            (
                chain,
                format!("token CKA_ID {:?}", String::from_utf8_lossy(id)),
            )
        }
    };
    let kind = match signer.backend() {
        "pkcs11" => "pkcs11ca",
        _ => "kmsca",
    };
    let ca =
        CertificateAuthority::remote(signer, chain, now).map_err(|source| ProvisionError::Ca {
            path: PathBuf::from(&from),
            source,
        })?;
    Ok(Provisioned {
        ca,
        description: format!("{kind}, key {}, chain {from}", key.describe()),
        files: None,
        new_root_key: None,
    })
}

fn read(path: &Path) -> Result<String, ProvisionError> {
    std::fs::read_to_string(path).map_err(|source| ProvisionError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Where the default CA lives: chain, issuing key and root certificate inside the data
/// directory; the root's private key beside it, in `<data-dir>-offline/`, because the
/// running server never needs it (it only issues the next intermediate) and it belongs
/// on a machine that is not online.
#[derive(Debug, Clone)]
pub struct DataDirFiles {
    /// The chain file: the intermediate certificate, then the root (`chain.pem`).
    pub chain: PathBuf,
    /// The intermediate's private key (`intermediate-key.pem`).
    pub key: PathBuf,
    /// The root certificate alone (`root.pem`).
    pub root: PathBuf,
    /// The root's private key (`root-key.pem`); belongs offline.
    pub root_key: PathBuf,
}

impl DataDirFiles {
    /// The default layout for `data_dir`: chain, key and root in `<data-dir>/ca/`, the root's key
    /// in `<data-dir>-offline/`.
    pub fn new(data_dir: &Path) -> DataDirFiles {
        let dir = data_dir.join("ca");
        DataDirFiles {
            chain: dir.join("chain.pem"),
            key: dir.join("intermediate-key.pem"),
            root: dir.join("root.pem"),
            root_key: offline_dir(data_dir).join("root-key.pem"),
        }
    }

    /// The four files of `brevis ca create --out DIR`: everything in one directory, for
    /// an operator to split up.
    pub fn in_one(dir: &Path) -> DataDirFiles {
        DataDirFiles {
            chain: dir.join("chain.pem"),
            key: dir.join("intermediate-key.pem"),
            root: dir.join("root.pem"),
            root_key: dir.join("root-key.pem"),
        }
    }

    /// Where releases before this layout wrote the root key: inside the serving directory.
    pub(crate) fn legacy_root_key(data_dir: &Path) -> PathBuf {
        data_dir.join("ca").join("root-key.pem")
    }
}

/// The directory beside `data_dir` for material that must not stay on the server:
/// `brevis-data` -> `brevis-data-offline`.
pub(crate) fn offline_dir(data_dir: &Path) -> PathBuf {
    let text = data_dir.to_string_lossy();
    let trimmed = text.trim_end_matches('/');
    let base = if trimmed.is_empty() || trimmed == "." {
        "brevis-data"
    } else {
        trimmed
    };
    PathBuf::from(format!("{base}-offline"))
}

/// Refuses to go on when any of `paths` exists: CA material is never overwritten.
fn refuse_existing(paths: &[&Path]) -> Result<(), ProvisionError> {
    match paths.iter().find(|p| p.exists()) {
        Some(p) => Err(ProvisionError::Exists(p.to_path_buf())),
        None => Ok(()),
    }
}

fn create_parent(path: &Path) -> Result<(), ProvisionError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| ProvisionError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// A private key as PEM PKCS#8, encrypted when a password is given.
fn key_pem(signer: &LocalSigner, password: Option<&str>) -> Result<String, CaError> {
    let pkcs8 = signer.to_pkcs8()?;
    Ok(match password {
        Some(p) => pem::encode("ENCRYPTED PRIVATE KEY", &keyfile::pkcs8_encrypt(&pkcs8, p)?),
        None => pem::encode("PRIVATE KEY", &pkcs8),
    })
}

fn ca_error(path: &Path) -> impl FnOnce(CaError) -> ProvisionError + '_ {
    move |source| ProvisionError::Ca {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes an intermediate's key (0600) and its chain file (intermediate, then root).
fn write_intermediate_files(
    chain: &Path,
    key: &Path,
    inter: &create::Generated,
    root_der: &[u8],
    password: Option<&str>,
) -> Result<(), ProvisionError> {
    create_parent(chain)?;
    create_parent(key)?;
    write_file(
        key,
        &key_pem(&inter.signer, password).map_err(ca_error(key))?,
        true,
    )?;
    let text = format!(
        "{}{}",
        pem::certificate(&inter.der),
        pem::certificate(root_der)
    );
    write_file(chain, &text, false)?;
    Ok(())
}

/// What `brevis ca intermediate` needs.
pub struct IntermediateRequest<'a> {
    /// The root certificate (PEM); the file must hold exactly one certificate.
    pub root_cert: &'a Path,
    /// The root's private key (PEM).
    pub root_key: &'a Path,
    /// Decrypts the root key when it is encrypted.
    pub root_password: Option<&'a str>,
    /// Where the new chain (intermediate, then root) and key go; never overwritten.
    pub chain: &'a Path,
    /// Where the new intermediate's private key goes (0600); never overwritten.
    pub key: &'a Path,
    /// Subject names, key algorithm and validity of the new intermediate.
    pub spec: &'a PairSpec,
    /// Encrypts the new key.
    pub password: Option<&'a str>,
}

/// Issues a new intermediate under an existing root and writes its chain and key (0600,
/// PKCS#8, encrypted when a password is given).
pub fn write_intermediate(
    r: &IntermediateRequest<'_>,
    now: SystemTime,
) -> Result<(), ProvisionError> {
    refuse_existing(&[r.chain, r.key])?;
    let roots =
        chain::parse_pem_chain(&read(r.root_cert)?).map_err(|e| ca_error(r.root_cert)(e.into()))?;
    let root_der = match roots.as_slice() {
        [one] => one,
        _ => return Err(ProvisionError::NotOneRoot(r.root_cert.to_path_buf())),
    };
    let root_signer = keyfile::load(&read(r.root_key)?, r.root_password)
        .map_err(|e| ca_error(r.root_key)(e.into()))?;
    let inter = create::intermediate_under(
        r.spec,
        root_der,
        &root_signer,
        ::time::OffsetDateTime::from(now),
    )
    .map_err(ca_error(r.root_cert))?;
    // The pair must pass the same validation a running CA applies.
    let pair = vec![inter.der.clone(), root_der.clone()];
    chain::validate(&pair, inter.signer.public_key_spki(), now)
        .map_err(|e| ca_error(r.chain)(e.into()))?;
    write_intermediate_files(r.chain, r.key, &inter, root_der, r.password)
}

/// Generates a root + intermediate and writes the four files of `files`: keys 0600,
/// PKCS#8, encrypted when a password is given. Refuses to overwrite existing files.
pub fn write_pair(
    files: &DataDirFiles,
    spec: &PairSpec,
    password: Option<&str>,
    now: SystemTime,
) -> Result<DataDirFiles, ProvisionError> {
    refuse_existing(&[&files.chain, &files.key, &files.root, &files.root_key])?;
    let now_t = ::time::OffsetDateTime::from(now);
    let (root, root_params) = create::root(spec, now_t).map_err(ca_error(&files.root))?;
    let inter = create::intermediate(spec, &root_params, &root.signer, now_t)
        .map_err(ca_error(&files.chain))?;
    write_intermediate_files(&files.chain, &files.key, &inter, &root.der, password)?;
    create_parent(&files.root_key)?;
    write_file(
        &files.root_key,
        &key_pem(&root.signer, password).map_err(ca_error(&files.root_key))?,
        true,
    )?;
    write_file(&files.root, &pem::certificate(&root.der), false)?;
    Ok(files.clone())
}

/// The issuing key of `brevis ca create` when it is not a file.
#[derive(Debug, Clone)]
pub enum HeldKey {
    /// Generate it in the PKCS#11 token under this label (sensitive, never extractable).
    GenerateInToken {
        /// `CKA_LABEL` (and `CKA_ID`) of the new key pair.
        label: String,
        /// Its type.
        kind: pkcs11::GeneratedKey,
    },
    /// A key that already exists (`awskms://...`, or `pkcs11:LABEL`).
    Existing(KeyRef),
}

/// The root that signs the new intermediate.
#[derive(Debug, Clone)]
pub enum RootSource {
    /// A root certificate and its private key as files (the offline root).
    Files {
        /// The root certificate (PEM, exactly one).
        cert: PathBuf,
        /// Its private key (PEM).
        key: PathBuf,
        /// Decrypts the key.
        password: Option<String>,
    },
    /// A root key in the PKCS#11 token, under this label: generated with a new
    /// self-signed root certificate when the token has no such key; otherwise `cert` is
    /// that key's certificate.
    Token {
        /// `CKA_LABEL` of the root key.
        label: String,
        /// The existing root certificate, when the key exists.
        cert: Option<PathBuf>,
    },
}

/// What `brevis ca create` needs when the issuing key is held in a token or a KMS.
#[derive(Debug)]
pub struct HeldKeyRequest<'a> {
    /// The issuing key.
    pub key: HeldKey,
    /// The root that signs its certificate.
    pub root: RootSource,
    /// The token's configuration (and the signer's deadline).
    pub options: &'a RemoteOptions,
    /// Where `chain.pem` and `root.pem` go (never overwritten).
    pub out: &'a Path,
    /// Also store the chain in the token under this `CKA_ID` (Fulcio's `--hsm-caroot-id`).
    pub caroot_id: Option<String>,
    /// Subject names and lifetimes.
    pub spec: &'a PairSpec,
}

/// What `ca create` made for a held key.
#[derive(Debug)]
pub struct HeldKeyCreated {
    /// The chain file (intermediate, root).
    pub chain: PathBuf,
    /// The root certificate file.
    pub root: PathBuf,
    /// The issuing key, as `serve --ca pkcs11ca/kmsca` names it.
    pub key: KeyRef,
}

fn held_key_error(key: &str) -> impl FnOnce(signers::OpenError) -> ProvisionError + '_ {
    move |source| ProvisionError::Key {
        key: key.to_string(),
        source,
    }
}

/// Issues an intermediate certificate for a key held in a PKCS#11 token or a KMS
/// (generating it in the token first when asked), signed by a root from files or from
/// the token, and writes `chain.pem` and `root.pem`; with `caroot_id`, stores both
/// certificates in the token too. No private key is ever written.
pub fn create_for_held_key(
    r: &HeldKeyRequest<'_>,
    now: SystemTime,
) -> Result<HeldKeyCreated, ProvisionError> {
    let files = DataDirFiles::in_one(r.out);
    refuse_existing(&[&files.chain, &files.root])?;
    let now_t = ::time::OffsetDateTime::from(now);
    let config = || {
        r.options
            .pkcs11
            .as_ref()
            .ok_or_else(|| signers::OpenError::NoPkcs11Config("a key in the token".into()))
    };
    let key = match &r.key {
        HeldKey::Existing(k) => k.clone(),
        HeldKey::GenerateInToken { label, kind } => {
            let cfg = config().map_err(held_key_error(label))?;
            pkcs11::generate_key(cfg, label, *kind).map_err(|e| held_key_error(label)(e.into()))?;
            KeyRef::Pkcs11 {
                label: label.clone(),
            }
        }
    };
    let issuing = signers::open(&key, r.options, "ca").map_err(held_key_error(&key.describe()))?;
    let subject = create::SignerKey::new(issuing.as_ref()).map_err(ca_error(&files.chain))?;
    let (root_der, inter_der) = match &r.root {
        RootSource::Files {
            cert,
            key: root_key,
            password,
        } => {
            let roots =
                chain::parse_pem_chain(&read(cert)?).map_err(|e| ca_error(cert)(e.into()))?;
            let [root_der] = roots.as_slice() else {
                return Err(ProvisionError::NotOneRoot(cert.clone()));
            };
            let root_signer = keyfile::load(&read(root_key)?, password.as_deref())
                .map_err(|e| ca_error(root_key)(e.into()))?;
            let inter = create::intermediate_for(r.spec, &subject, root_der, &&root_signer, now_t)
                .map_err(ca_error(cert))?;
            (root_der.clone(), inter)
        }
        RootSource::Token { label, cert } => {
            let cfg = config().map_err(held_key_error(label))?;
            let root_ref = KeyRef::Pkcs11 {
                label: label.clone(),
            };
            let root_der = match cert {
                Some(path) => {
                    let roots = chain::parse_pem_chain(&read(path)?)
                        .map_err(|e| ca_error(path)(e.into()))?;
                    match roots.as_slice() {
                        [one] => Some(one.clone()),
                        _ => return Err(ProvisionError::NotOneRoot(path.clone())),
                    }
                }
                None => {
                    let kind = match r.spec.root_algorithm {
                        crate::model::signer::SigningAlgorithm::RsaPkcs1Sha256 => {
                            pkcs11::GeneratedKey::Rsa3072
                        }
                        crate::model::signer::SigningAlgorithm::EcdsaP256Sha256 => {
                            pkcs11::GeneratedKey::P256
                        }
                        _ => pkcs11::GeneratedKey::P384,
                    };
                    pkcs11::generate_key(cfg, label, kind)
                        .map_err(|e| held_key_error(label)(e.into()))?;
                    None
                }
            };
            let root_signer =
                signers::open(&root_ref, r.options, "ca").map_err(held_key_error(label))?;
            let root_key =
                create::SignerKey::new(root_signer.as_ref()).map_err(ca_error(&files.root))?;
            let root_der = match root_der {
                Some(d) => d,
                None => {
                    create::root_for(r.spec, &root_key, now_t)
                        .map_err(ca_error(&files.root))?
                        .0
                }
            };
            let inter = create::intermediate_for(r.spec, &subject, &root_der, &root_key, now_t)
                .map_err(ca_error(&files.chain))?;
            (root_der, inter)
        }
    };
    let pair = vec![inter_der.clone(), root_der.clone()];
    chain::validate(&pair, issuing.public_key_spki(), now)
        .map_err(|e| ca_error(&files.chain)(e.into()))?;
    if let Some(id) = &r.caroot_id {
        let cfg = config().map_err(held_key_error(id))?;
        let store = |cert_id: &[u8], label: &str, der: &[u8]| {
            pkcs11::store_certificate(cfg, cert_id, label, der)
                .map_err(|e| held_key_error(id)(e.into()))
        };
        store(id.as_bytes(), &key.describe(), &inter_der)?;
        store(format!("{id}-root").as_bytes(), "root", &root_der)?;
    }
    create_parent(&files.chain)?;
    write_file(
        &files.chain,
        &format!(
            "{}{}",
            pem::certificate(&inter_der),
            pem::certificate(&root_der)
        ),
        false,
    )?;
    write_file(&files.root, &pem::certificate(&root_der), false)?;
    Ok(HeldKeyCreated {
        chain: files.chain,
        root: files.root,
        key,
    })
}
