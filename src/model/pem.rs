//! PEM armour: canonical encoding (64-column base64, `\n` line ends, trailing `\n`) and a
//! tolerant block reader that also returns RFC 1421 headers (`Proc-Type`, `DEK-Info`) for the
//! legacy encrypted key format.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

/// Canonical PEM for one block: what sigstore-python and sigstore-rs rebuild when they
/// compare PEM text, so brevis emits exactly this everywhere.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Canonical PEM for one DER certificate (`CERTIFICATE` block).
pub fn certificate(der: &[u8]) -> String {
    encode("CERTIFICATE", der)
}

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The label of the `-----BEGIN <label>-----` line, e.g. `CERTIFICATE`.
    pub label: String,
    /// RFC 1421 headers (name, value) in order, e.g. `Proc-Type`, `DEK-Info`.
    pub headers: Vec<(String, String)>,
    /// The base64 body, decoded (for encrypted legacy keys: the ciphertext).
    pub der: Vec<u8>,
}

/// Why PEM text could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PemError {
    /// The text holds no PEM block at all.
    #[error("no PEM block found")]
    NoBlock,
    /// A `BEGIN` line (its label carried) has no matching `END` line.
    #[error("PEM block {0:?} has no matching END line")]
    Unterminated(String),
    /// The body of the block (its label carried) is not valid standard base64.
    #[error("PEM block {0:?} does not contain valid base64")]
    BadBase64(String),
}

/// Parses every PEM block in `text`, ignoring text between blocks.
pub fn parse_all(text: &str) -> Result<Vec<Block>, PemError> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut headers = Vec::new();
        let mut body = String::new();
        let mut terminated = false;
        let mut in_headers = true;
        for inner in lines.by_ref() {
            let inner = inner.trim();
            if inner == end {
                terminated = true;
                break;
            }
            if in_headers {
                if let Some((k, v)) = inner.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                    continue;
                }
                in_headers = false;
                if inner.is_empty() {
                    continue;
                }
            }
            body.push_str(inner);
        }
        if !terminated {
            return Err(PemError::Unterminated(label.to_string()));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|_| PemError::BadBase64(label.to_string()))?;
        blocks.push(Block {
            label: label.to_string(),
            headers,
            der,
        });
    }
    Ok(blocks)
}

/// The first PEM block in `text`.
pub fn parse_first(text: &str) -> Result<Block, PemError> {
    parse_all(text)?.into_iter().next().ok_or(PemError::NoBlock)
}

/// Decodes protobuf-JSON `bytes`: standard or URL-safe alphabet, padded or not, as the
/// grpc-gateway accepts them.
pub(crate) fn decode_proto_bytes(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = s.trim_end_matches('=');
    if trimmed.contains(['-', '_']) {
        URL_SAFE_NO_PAD.decode(trimmed).ok()
    } else {
        STANDARD_NO_PAD.decode(trimmed).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_encoding_wraps_at_64_and_ends_with_newline() {
        let der = vec![0xabu8; 100];
        let pem = certificate(&der);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 64);
        assert_eq!(lines[3].len(), 136 - 128);
        assert_eq!(lines[4], "-----END CERTIFICATE-----");
        assert!(pem.ends_with("-----\n"));
        assert_eq!(parse_first(&pem).unwrap().der, der);
    }

    #[test]
    fn headers_and_multiple_blocks() {
        let text = "junk\n-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAEC\n-----END EC PRIVATE KEY-----\n-----BEGIN X-----\nAw==\n-----END X-----\n";
        let blocks = parse_all(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[0].headers[0],
            ("Proc-Type".into(), "4,ENCRYPTED".into())
        );
        assert_eq!(blocks[0].der, [0, 1, 2]);
        assert_eq!(blocks[1].der, [3]);
        assert_eq!(parse_first("nothing"), Err(PemError::NoBlock));
        assert!(matches!(
            parse_first("-----BEGIN X-----\nAw==\n"),
            Err(PemError::Unterminated(_))
        ));
        assert!(matches!(
            parse_first("-----BEGIN X-----\n!!\n-----END X-----"),
            Err(PemError::BadBase64(_))
        ));
    }

    #[test]
    fn proto_bytes_accept_every_base64_flavour() {
        for s in ["+/8=", "+/8", "-_8=", "-_8"] {
            assert_eq!(decode_proto_bytes(s), Some(vec![0xfb, 0xff]), "{s}");
        }
        assert_eq!(decode_proto_bytes("%%"), None);
    }
}
