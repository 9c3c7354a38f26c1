//! Where CA material lives on disk: loading a `fileca` chain and key, the data
//! directory's default CA (created on first start), and writing new pairs and
//! intermediates for `brevis ca create` / `brevis ca intermediate`. CA material is never
//! overwritten, and a root's private key is never written into a serving directory.

use super::create::{self, PairSpec};
use super::{CaError, CertificateAuthority, chain, keyfile};
use crate::files::{FileError, write_file};
use crate::model::pem;
use crate::model::signer::{LocalSigner, Signer};
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
