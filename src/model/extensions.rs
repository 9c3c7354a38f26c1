//! X.509 extensions, and the Sigstore extension set of the `1.3.6.1.4.1.57264.1` arc.

use super::der;
use super::oid::{self, Oid};
use thiserror::Error;

/// One X.509 extension, ready to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// DER content octets of the extension's OID.
    pub oid: Vec<u8>,
    /// Whether the extension is critical (the BOOLEAN is encoded only when true).
    pub critical: bool,
    /// The content of `extnValue` (the OCTET STRING wrapper is added on encoding).
    pub value: Vec<u8>,
}

impl Extension {
    pub(crate) fn new(oid: &Oid, critical: bool, value: Vec<u8>) -> Self {
        Extension {
            oid: oid.content.to_vec(),
            critical,
            value,
        }
    }

    /// `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }`.
    pub fn to_der(&self) -> Vec<u8> {
        let oid = der::tlv(der::TAG_OID, &self.oid);
        let value = der::octet_string(&self.value);
        if self.critical {
            der::sequence(&[&oid, &[der::TAG_BOOLEAN, 1, 0xff], &value])
        } else {
            der::sequence(&[&oid, &value])
        }
    }
}

/// The fields of Fulcio's `certificate.Extensions`, in the order they are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The OIDC issuer URL; emitted twice, as `.1` (raw, deprecated) and `.8` (DER).
    Issuer,
    /// `.2` (raw, deprecated): the event that triggered the GitHub workflow.
    GithubWorkflowTrigger,
    /// `.3` (raw, deprecated): the commit SHA the GitHub workflow ran on.
    GithubWorkflowSha,
    /// `.4` (raw, deprecated): the GitHub workflow's name.
    GithubWorkflowName,
    /// `.5` (raw, deprecated): the GitHub repository (`owner/name`) of the workflow.
    GithubWorkflowRepository,
    /// `.6` (raw, deprecated): the git ref the GitHub workflow ran on.
    GithubWorkflowRef,
    /// `.9`: reference to the build instructions that signed (e.g. a workflow file at a ref).
    BuildSignerUri,
    /// `.10`: immutable digest of the build instructions that signed.
    BuildSignerDigest,
    /// `.11`: whether the build ran on platform-hosted or self-hosted runners.
    RunnerEnvironment,
    /// `.12`: URI of the source repository the build ran from.
    SourceRepositoryUri,
    /// `.13`: immutable digest (e.g. commit SHA) of the source that was built.
    SourceRepositoryDigest,
    /// `.14`: the source ref that was built (e.g. `refs/heads/main`).
    SourceRepositoryRef,
    /// `.15`: immutable identifier of the source repository.
    SourceRepositoryIdentifier,
    /// `.16`: URI of the source repository's owner.
    SourceRepositoryOwnerUri,
    /// `.17`: immutable identifier of the source repository's owner.
    SourceRepositoryOwnerIdentifier,
    /// `.18`: reference to the top-level build configuration.
    BuildConfigUri,
    /// `.19`: immutable digest of the top-level build configuration.
    BuildConfigDigest,
    /// `.20`: the event or action that started the build.
    BuildTrigger,
    /// `.21`: URI of the specific build run.
    RunInvocationUri,
    /// `.22`: the source repository's visibility (e.g. `public`) when signing.
    SourceRepositoryVisibilityAtSigning,
    /// `.23`: the CI deployment environment (e.g. GitHub's `environment` claim).
    DeploymentEnvironment,
    /// `.24`: the OIDC token's subject (`sub` claim).
    Subject,
}

pub(crate) const FIELD_COUNT: usize = 22;

impl Field {
    pub(crate) const ALL: [Field; FIELD_COUNT] = [
        Field::Issuer,
        Field::GithubWorkflowTrigger,
        Field::GithubWorkflowSha,
        Field::GithubWorkflowName,
        Field::GithubWorkflowRepository,
        Field::GithubWorkflowRef,
        Field::BuildSignerUri,
        Field::BuildSignerDigest,
        Field::RunnerEnvironment,
        Field::SourceRepositoryUri,
        Field::SourceRepositoryDigest,
        Field::SourceRepositoryRef,
        Field::SourceRepositoryIdentifier,
        Field::SourceRepositoryOwnerUri,
        Field::SourceRepositoryOwnerIdentifier,
        Field::BuildConfigUri,
        Field::BuildConfigDigest,
        Field::BuildTrigger,
        Field::RunInvocationUri,
        Field::SourceRepositoryVisibilityAtSigning,
        Field::DeploymentEnvironment,
        Field::Subject,
    ];

    /// The OID arc number (`1.3.6.1.4.1.57264.1.<n>`); the Issuer's DER form is `.8`.
    pub(crate) fn arc(self) -> u8 {
        match self {
            Field::Issuer => 8,
            Field::GithubWorkflowTrigger => 2,
            Field::GithubWorkflowSha => 3,
            Field::GithubWorkflowName => 4,
            Field::GithubWorkflowRepository => 5,
            Field::GithubWorkflowRef => 6,
            Field::BuildSignerUri => 9,
            Field::BuildSignerDigest => 10,
            Field::RunnerEnvironment => 11,
            Field::SourceRepositoryUri => 12,
            Field::SourceRepositoryDigest => 13,
            Field::SourceRepositoryRef => 14,
            Field::SourceRepositoryIdentifier => 15,
            Field::SourceRepositoryOwnerUri => 16,
            Field::SourceRepositoryOwnerIdentifier => 17,
            Field::BuildConfigUri => 18,
            Field::BuildConfigDigest => 19,
            Field::BuildTrigger => 20,
            Field::RunInvocationUri => 21,
            Field::SourceRepositoryVisibilityAtSigning => 22,
            Field::DeploymentEnvironment => 23,
            Field::Subject => 24,
        }
    }

    /// Field name in Fulcio's JSON config (`ExtensionTemplates` keys).
    pub(crate) fn json_name(self) -> &'static str {
        match self {
            Field::Issuer => "Issuer",
            Field::GithubWorkflowTrigger => "GithubWorkflowTrigger",
            Field::GithubWorkflowSha => "GithubWorkflowSHA",
            Field::GithubWorkflowName => "GithubWorkflowName",
            Field::GithubWorkflowRepository => "GithubWorkflowRepository",
            Field::GithubWorkflowRef => "GithubWorkflowRef",
            Field::BuildSignerUri => "BuildSignerURI",
            Field::BuildSignerDigest => "BuildSignerDigest",
            Field::RunnerEnvironment => "RunnerEnvironment",
            Field::SourceRepositoryUri => "SourceRepositoryURI",
            Field::SourceRepositoryDigest => "SourceRepositoryDigest",
            Field::SourceRepositoryRef => "SourceRepositoryRef",
            Field::SourceRepositoryIdentifier => "SourceRepositoryIdentifier",
            Field::SourceRepositoryOwnerUri => "SourceRepositoryOwnerURI",
            Field::SourceRepositoryOwnerIdentifier => "SourceRepositoryOwnerIdentifier",
            Field::BuildConfigUri => "BuildConfigURI",
            Field::BuildConfigDigest => "BuildConfigDigest",
            Field::BuildTrigger => "BuildTrigger",
            Field::RunInvocationUri => "RunInvocationURI",
            Field::SourceRepositoryVisibilityAtSigning => "SourceRepositoryVisibilityAtSigning",
            Field::DeploymentEnvironment => "DeploymentEnvironment",
            Field::Subject => "Subject",
        }
    }

    /// Key in Fulcio's YAML config (`extension-templates` keys).
    pub(crate) fn yaml_key(self) -> &'static str {
        match self {
            Field::Issuer => "issuer",
            Field::GithubWorkflowTrigger => "github-workflow-trigger",
            Field::GithubWorkflowSha => "github-workflow-sha",
            Field::GithubWorkflowName => "github-workflow-name",
            Field::GithubWorkflowRepository => "github-workflow-repository",
            Field::GithubWorkflowRef => "github-workflow-ref",
            Field::BuildSignerUri => "build-signer-uri",
            Field::BuildSignerDigest => "build-signer-digest",
            Field::RunnerEnvironment => "runner-environment",
            Field::SourceRepositoryUri => "source-repository-uri",
            Field::SourceRepositoryDigest => "source-repository-digest",
            Field::SourceRepositoryRef => "source-repository-ref",
            Field::SourceRepositoryIdentifier => "source-repository-identifier",
            Field::SourceRepositoryOwnerUri => "source-repository-owner-uri",
            Field::SourceRepositoryOwnerIdentifier => "source-repository-owner-identifier",
            Field::BuildConfigUri => "build-config-uri",
            Field::BuildConfigDigest => "build-config-digest",
            Field::BuildTrigger => "build-trigger",
            Field::RunInvocationUri => "run-invocation-uri",
            Field::SourceRepositoryVisibilityAtSigning => "source-repository-visibility-at-signing",
            Field::DeploymentEnvironment => "deployment-environment",
            Field::Subject => "subject",
        }
    }

    /// Looks a field up by its JSON name or YAML key.
    pub fn from_config_key(key: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.json_name() == key || f.yaml_key() == key)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a set of Sigstore extensions cannot be rendered.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExtensionError {
    /// The issuer field is unset or empty; every certificate must carry it.
    #[error("the issuer extension value is empty")]
    MissingIssuer,
}

/// Values for the Sigstore extensions of one certificate. Empty values are never emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    values: [Option<String>; FIELD_COUNT],
}

impl Extensions {
    /// Sets `field` to `value`; an empty value clears the field, so it is not emitted.
    pub fn set(&mut self, field: Field, value: impl Into<String>) {
        let value = value.into();
        self.values[field.index()] = if value.is_empty() { None } else { Some(value) };
    }

    pub(crate) fn get(&self, field: Field) -> Option<&str> {
        self.values[field.index()].as_deref()
    }

    /// Renders the extensions in Fulcio's order: `.1`-`.6` raw, then `.8`-`.24` as DER
    /// UTF8String. The issuer appears twice (`.1` raw and `.8` DER) and must be non-empty.
    pub fn render(&self) -> Result<Vec<Extension>, ExtensionError> {
        let issuer = self
            .get(Field::Issuer)
            .ok_or(ExtensionError::MissingIssuer)?;
        let mut out = Vec::with_capacity(FIELD_COUNT + 1);
        out.push(raw(1, issuer));
        for field in &Field::ALL[1..6] {
            if let Some(v) = self.get(*field) {
                out.push(raw(field.arc(), v));
            }
        }
        out.push(utf8(8, issuer));
        for field in &Field::ALL[6..] {
            if let Some(v) = self.get(*field) {
                out.push(utf8(field.arc(), v));
            }
        }
        Ok(out)
    }
}

fn raw(arc: u8, value: &str) -> Extension {
    Extension {
        oid: oid::sigstore(arc).to_vec(),
        critical: false,
        value: value.as_bytes().to_vec(),
    }
}

fn utf8(arc: u8, value: &str) -> Extension {
    Extension {
        oid: oid::sigstore(arc).to_vec(),
        critical: false,
        value: der::utf8_string(value),
    }
}

/// Parses a DER string value as Fulcio's `ParseDERString` does: a single UTF8String (or
/// PrintableString / IA5String) with nothing after it.
pub fn parse_der_string(value: &[u8]) -> Option<String> {
    let (t, rest) = der::read_tlv(value).ok()?;
    if !rest.is_empty() {
        return None;
    }
    match t.tag {
        der::TAG_UTF8_STRING | der::TAG_PRINTABLE_STRING | der::TAG_IA5_STRING => {
            String::from_utf8(t.content.to_vec()).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_round_trip() {
        for f in Field::ALL {
            assert_eq!(Field::from_config_key(f.json_name()), Some(f));
            assert_eq!(Field::from_config_key(f.yaml_key()), Some(f));
        }
        assert_eq!(Field::from_config_key("nope"), None);
    }

    #[test]
    fn empty_values_are_dropped_and_issuer_is_required() {
        let mut e = Extensions::default();
        e.set(Field::GithubWorkflowTrigger, "foo");
        assert_eq!(e.render(), Err(ExtensionError::MissingIssuer));
        e.set(Field::Issuer, "https://issuer");
        e.set(Field::GithubWorkflowTrigger, "");
        let r = e.render().unwrap();
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn critical_flag_is_encoded() {
        let ext = Extension::new(&oid::KEY_USAGE, true, vec![0x03, 0x02, 0x07, 0x80]);
        assert_eq!(
            hex::encode(ext.to_der()),
            "300e0603551d0f0101ff040403020780"
        );
    }
}
