//! Reloading what an operator rotates while brevis runs: the identity config, the fileca
//! chain and key, and the TLS certificate. On SIGHUP everything reloads; with watching on,
//! a component reloads when the content of one of its files changes (content, not mtime,
//! so Kubernetes' symlink swaps of mounted ConfigMaps and Secrets are seen too).
//!
//! A new file is loaded and validated completely before anything is swapped; if it is
//! broken the running component stays, the failure is logged and counted in
//! `brevis_config_reloads_total{component,outcome="failure"}`, and the next change of the
//! file is tried again.

use crate::authority::{Authority, IdentityState, IdentityStateError};
use crate::ca::CaError;
use crate::ca::provision::{self, ProvisionError};
use crate::config::LoadError;
use crate::errors::Chain;
use crate::metrics;
use crate::model::Clock;
use crate::oidc::VerifierOptions;
use crate::tls::{self, TlsError, TlsFiles};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// What can be reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Component {
    Identity,
    Ca,
    Tls,
}

impl Component {
    /// Every component, in reload order.
    pub(crate) const ALL: [Component; 3] = [Component::Identity, Component::Ca, Component::Tls];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Component::Identity => "identity_config",
            Component::Ca => "ca",
            Component::Tls => "tls",
        }
    }
}

/// Why a reload was refused (the running component stays in effect).
#[derive(Debug, Error)]
pub(crate) enum ReloadError {
    #[error(transparent)]
    IdentityFile(#[from] LoadError),
    #[error("identity config {path}")]
    Identity {
        path: PathBuf,
        #[source]
        source: IdentityStateError,
    },
    #[error(transparent)]
    CaFiles(#[from] ProvisionError),
    #[error("fileca {path}: the CA signer fails its self-test")]
    CaSelfTest {
        path: PathBuf,
        #[source]
        source: CaError,
    },
    #[error(
        "fileca {0}: the new chain's root is not one the embedded CT log accepts; a new root needs a restart (the log's roots are fixed while it runs)"
    )]
    ForeignRoot(PathBuf),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Where the identity config comes from.
#[derive(Debug, Clone)]
pub(crate) struct IdentitySource {
    /// The identity config file (`None`: the built-in issuers).
    pub path: Option<PathBuf>,
    /// The issuance policy file, reloaded with it and checked against it.
    pub policy: Option<PathBuf>,
    pub insecure_http_issuers: bool,
    pub oidc: VerifierOptions,
    pub watch: bool,
}

/// The fileca files.
#[derive(Debug, Clone)]
pub(crate) struct CaSource {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub password: Option<String>,
    pub watch: bool,
    /// Roots the CT log accepts; a new chain must end in one of them (the embedded log's
    /// roots are fixed while it runs). `None`: no restriction (remote log or no CT).
    pub accepted_roots: Option<Vec<Vec<u8>>>,
}

/// The TLS files and the resolver serving them.
#[derive(Debug, Clone)]
pub(crate) struct TlsSource {
    pub files: TlsFiles,
    pub resolver: Arc<tls::Resolver>,
}

pub(crate) struct Reloader {
    authority: Arc<Authority>,
    clock: Arc<dyn Clock>,
    identity: Option<IdentitySource>,
    ca: Option<CaSource>,
    tls: Option<TlsSource>,
    seen: Mutex<HashMap<PathBuf, Option<[u8; 32]>>>,
}

fn fingerprint(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| crate::ct::sha256(&b))
}

impl Reloader {
    pub(crate) fn new(
        authority: Arc<Authority>,
        clock: Arc<dyn Clock>,
        identity: Option<IdentitySource>,
        ca: Option<CaSource>,
        tls: Option<TlsSource>,
    ) -> Reloader {
        let r = Reloader {
            authority,
            clock,
            identity,
            ca,
            tls,
            seen: Mutex::new(HashMap::new()),
        };
        // What is running now was loaded from these contents.
        for c in Component::ALL {
            r.changed(c);
        }
        r
    }

    fn files(&self, c: Component) -> Vec<PathBuf> {
        match c {
            Component::Identity => self
                .identity
                .iter()
                .flat_map(|i| i.path.iter().chain(&i.policy).cloned())
                .collect(),
            Component::Ca => self
                .ca
                .iter()
                .flat_map(|s| [s.cert.clone(), s.key.clone()])
                .collect(),
            Component::Tls => self
                .tls
                .iter()
                .flat_map(|s| [s.files.cert.clone(), s.files.key.clone()])
                .collect(),
        }
    }

    fn watched(&self, c: Component) -> bool {
        match c {
            Component::Identity => self.identity.as_ref().is_some_and(|s| s.watch),
            Component::Ca => self.ca.as_ref().is_some_and(|s| s.watch),
            // TLS files are watched whenever TLS is on.
            Component::Tls => self.tls.is_some(),
        }
    }

    /// Whether any file of `c` changed since last seen (and remembers the new contents).
    fn changed(&self, c: Component) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = false;
        for f in self.files(c) {
            let now = fingerprint(&f);
            if seen.insert(f, now) != Some(now) {
                changed = true;
            }
        }
        changed
    }

    /// Whether anything is watched at all.
    pub(crate) fn watches_anything(&self) -> bool {
        Component::ALL.into_iter().any(|c| self.watched(c))
    }

    /// SIGHUP: reload every configured component.
    pub(crate) fn reload_all(&self) -> Vec<(Component, Result<(), ReloadError>)> {
        Component::ALL
            .into_iter()
            .filter(|&c| !self.files(c).is_empty())
            .map(|c| {
                self.changed(c);
                (c, self.reload(c))
            })
            .collect()
    }

    /// File watch: reload the watched components whose files changed.
    pub(crate) fn reload_changed(&self) -> Vec<(Component, Result<(), ReloadError>)> {
        Component::ALL
            .into_iter()
            .filter(|&c| self.watched(c) && self.changed(c))
            .map(|c| (c, self.reload(c)))
            .collect()
    }

    fn reload(&self, c: Component) -> Result<(), ReloadError> {
        let result = match c {
            Component::Identity => self.reload_identity(),
            Component::Ca => self.reload_ca(),
            Component::Tls => self.reload_tls(),
        };
        let outcome = if result.is_ok() { "success" } else { "failure" };
        metrics::CONFIG_RELOADS
            .with_label_values(&[c.name(), outcome])
            .inc();
        match &result {
            Ok(()) => {
                metrics::CONFIG_LAST_RELOAD
                    .with_label_values(&[c.name()])
                    .set(self.clock.unix_seconds() as f64);
                tracing::info!(component = c.name(), "reloaded");
            }
            Err(e) => tracing::error!(
                component = c.name(),
                error = %Chain(e),
                "reload failed; the running configuration stays in effect"
            ),
        }
        result
    }

    fn reload_identity(&self) -> Result<(), ReloadError> {
        let Some(src) = &self.identity else {
            return Ok(());
        };
        let cfg =
            crate::config::load_identity_config(src.path.as_deref(), src.insecure_http_issuers)?;
        // The policy is checked against the new config: both load, or neither changes.
        let policy = src
            .policy
            .as_deref()
            .map(|p| crate::config::load_issuance_policy(p, &cfg))
            .transpose()?;
        let state = IdentityState::new(cfg, self.clock.clone(), src.oidc)
            .map_err(|source| ReloadError::Identity {
                path: src
                    .path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("built-in")),
                source,
            })?
            .with_policy(policy);
        self.authority.replace_identity(state);
        Ok(())
    }

    fn reload_ca(&self) -> Result<(), ReloadError> {
        let Some(src) = &self.ca else {
            return Ok(());
        };
        let ca = provision::load_files(
            &src.cert,
            &src.key,
            src.password.as_deref(),
            self.clock.now(),
        )?;
        ca.self_test().map_err(|source| ReloadError::CaSelfTest {
            path: src.key.clone(),
            source,
        })?;
        if let Some(roots) = &src.accepted_roots
            && !roots.iter().any(|r| r.as_slice() == ca.root_der())
        {
            return Err(ReloadError::ForeignRoot(src.cert.clone()));
        }
        self.authority.replace_ca(ca);
        Ok(())
    }

    fn reload_tls(&self) -> Result<(), ReloadError> {
        let Some(src) = &self.tls else {
            return Ok(());
        };
        let key = tls::load(&src.files)?;
        publish_tls_expiry(&key);
        src.resolver.replace(key);
        Ok(())
    }
}

/// `brevis_expiry_timestamp_seconds{object="tls_certificate"}` for the served certificate.
pub(crate) fn publish_tls_expiry(key: &rustls::sign::CertifiedKey) {
    if let Some(t) = tls::not_after(key) {
        metrics::EXPIRY
            .with_label_values(&["tls_certificate"])
            .set(t as f64);
    }
}
