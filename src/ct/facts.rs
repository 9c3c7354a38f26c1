//! What a monitor and the log explorer read from a logged certificate: every SAN by type,
//! the issuer extensions (`.1` raw and `.8` DER), every Sigstore extension by name, serial
//! and validity. Works on a final certificate and on a precertificate entry's TBS alike.

use super::entry::{ParsedEntry, SignedEntry};
use crate::model::extensions::{Field, parse_der_string};
use crate::model::oid;
use std::collections::BTreeMap;
use x509_parser::prelude::*;

/// Why a logged certificate could not be read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FactsError {
    /// The certificate or TBS is not valid DER X.509.
    #[error("the logged certificate does not parse: {0}")]
    Unparsable(String),
    /// The SAN extension is present but malformed.
    #[error("the subject alternative name extension does not parse")]
    BadSan,
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct San {
    /// `email`, `uri`, `dns`, `ip`, `username` (Sigstore's otherName), or `other`.
    pub kind: &'static str,
    /// The name as text (for `other`: the type OID and the value in hex).
    pub value: String,
}

/// The facts of one logged certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertFacts {
    /// Whether the entry is a precertificate.
    pub precertificate: bool,
    /// Serial number, lower-case hex of its DER content bytes.
    pub serial: String,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// The certificate issuer's distinguished name.
    pub issuer_dn: String,
    /// Every SAN in order.
    pub sans: Vec<San>,
    /// The OIDC issuer: `.8` if present, else `.1`.
    pub oidc_issuer: Option<String>,
    /// Sigstore extensions by arc (`1.3.6.1.4.1.57264.1.<arc>`), values decoded (`.1`-`.6`
    /// raw, the others as DER strings; an undecodable value is `None`).
    pub extensions: BTreeMap<u8, Option<String>>,
}

impl CertFacts {
    /// The identity a person searches by: the first SAN's value.
    pub fn identity(&self) -> Option<&str> {
        self.sans.first().map(|s| s.value.as_str())
    }

    /// A Sigstore extension's decoded value.
    pub fn extension(&self, arc: u8) -> Option<&str> {
        self.extensions.get(&arc).and_then(|v| v.as_deref())
    }
}

/// The name of a Sigstore extension arc: Fulcio's YAML key, `issuer-v1` for `.1`, and
/// `username-san` for `.7`.
pub fn extension_name(arc: u8) -> String {
    match arc {
        1 => "issuer-v1".into(),
        7 => "username-san".into(),
        8 => "issuer".into(),
        _ => Field::ALL
            .iter()
            .find(|f| f.arc() == arc)
            .map(|f| f.yaml_key().to_string())
            .unwrap_or_else(|| format!("1.3.6.1.4.1.57264.1.{arc}")),
    }
}

/// The arc of an extension named by Fulcio's YAML or JSON key, `issuer-v1`, or a dotted
/// OID under `1.3.6.1.4.1.57264.1`.
pub fn extension_arc(name: &str) -> Option<u8> {
    if let Some(rest) = name.strip_prefix("1.3.6.1.4.1.57264.1.") {
        return rest.parse::<u8>().ok().filter(|a| *a >= 1);
    }
    if name == "issuer-v1" {
        return Some(1);
    }
    Field::from_config_key(name).map(|f| f.arc())
}

/// Facts of a parsed log entry: the final certificate, or the precertificate's TBS.
pub fn of_entry(entry: &ParsedEntry) -> Result<CertFacts, FactsError> {
    match &entry.entry {
        SignedEntry::X509 { certificate } => of_certificate(certificate),
        SignedEntry::Precert { tbs, .. } => of_tbs(tbs, true),
    }
}

/// Facts of a DER certificate.
pub fn of_certificate(der: &[u8]) -> Result<CertFacts, FactsError> {
    let (_, cert) =
        parse_x509_certificate(der).map_err(|e| FactsError::Unparsable(e.to_string()))?;
    facts(&cert.tbs_certificate, false)
}

/// Facts of a DER `TBSCertificate`.
pub fn of_tbs(der: &[u8], precertificate: bool) -> Result<CertFacts, FactsError> {
    let (_, tbs) =
        TbsCertificate::from_der(der).map_err(|e| FactsError::Unparsable(e.to_string()))?;
    facts(&tbs, precertificate)
}

fn facts(tbs: &TbsCertificate<'_>, precertificate: bool) -> Result<CertFacts, FactsError> {
    let mut sans = Vec::new();
    match tbs.subject_alternative_name() {
        Ok(Some(san)) => {
            for n in &san.value.general_names {
                sans.push(san_of(n));
            }
        }
        Ok(None) => {}
        Err(_) => return Err(FactsError::BadSan),
    }
    let mut extensions = BTreeMap::new();
    let prefix = &oid::sigstore(0)[..9];
    for e in tbs.extensions() {
        let b = e.oid.as_bytes();
        if b.len() == 10 && &b[..9] == prefix {
            let arc = b[9];
            let value = if arc <= 6 {
                String::from_utf8(e.value.to_vec()).ok()
            } else {
                parse_der_string(e.value)
            };
            extensions.insert(arc, value);
        }
    }
    let oidc_issuer = extensions
        .get(&8)
        .cloned()
        .flatten()
        .or_else(|| extensions.get(&1).cloned().flatten());
    Ok(CertFacts {
        precertificate,
        serial: hex::encode(tbs.raw_serial()),
        not_before: tbs.validity().not_before.timestamp(),
        not_after: tbs.validity().not_after.timestamp(),
        issuer_dn: tbs.issuer().to_string(),
        sans,
        oidc_issuer,
        extensions,
    })
}

fn san_of(n: &GeneralName<'_>) -> San {
    let (kind, value) = match n {
        GeneralName::RFC822Name(e) => ("email", e.to_string()),
        GeneralName::URI(u) => ("uri", u.to_string()),
        GeneralName::DNSName(d) => ("dns", d.to_string()),
        GeneralName::IPAddress(ip) => ("ip", ip_text(ip)),
        GeneralName::OtherName(o, v) if o.as_bytes() == oid::SIGSTORE_OTHERNAME_SAN.content => {
            // [0] EXPLICIT UTF8String
            let inner = crate::model::der::read_tlv(v)
                .ok()
                .and_then(|(t, _)| parse_der_string(t.content));
            match inner {
                Some(u) => ("username", u),
                None => ("other", format!("{o}:{}", hex::encode(v))),
            }
        }
        GeneralName::OtherName(o, v) => ("other", format!("{o}:{}", hex::encode(v))),
        other => ("other", format!("{other}")),
    };
    San { kind, value }
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => hex::encode(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arcs_round_trip() {
        for arc in 1..=24u8 {
            if arc == 7 {
                continue;
            }
            assert_eq!(extension_arc(&extension_name(arc)), Some(arc), "{arc}");
        }
        assert_eq!(extension_arc("1.3.6.1.4.1.57264.1.12"), Some(12));
        assert_eq!(extension_arc("SourceRepositoryURI"), Some(12));
        assert_eq!(extension_arc("no-such-extension"), None);
        assert_eq!(extension_arc("1.3.6.1.4.1.57264.1.x"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(of_certificate(b"\x30\x03\x02\x01\x01").is_err());
        assert!(of_tbs(b"", true).is_err());
    }
}
