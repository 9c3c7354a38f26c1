//! Keys in AWS KMS (`awskms://[ENDPOINT]/KEY`, Fulcio's and sigstore's URI), through the
//! AWS SDK for Rust on a runtime of its own.
//!
//! `KEY` is a key id, `alias/NAME`, or a key or alias ARN (whose region is used). The
//! endpoint, when given, is `host[:port]` reached over HTTPS; `AWS_ENDPOINT_URL` (the SDK's
//! own setting) points elsewhere, e.g. a local test server. Credentials and the region
//! come from the SDK's usual chain (environment, profile, web identity, instance role).
//! Messages are signed as `RAW` (KMS hashes them); a message over KMS's 4 KiB limit is
//! hashed here and signed as `DIGEST`. Every call is bounded by the signer's deadline.

use super::OpenError;
use crate::model::BoxFuture;
use crate::model::keys::{KeyKind, PublicKey};
use crate::model::signer::{Signer, SignerError, SigningAlgorithm};
use crate::runtime::Dedicated;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use std::sync::Arc;
use std::time::Duration;

/// KMS signs at most this many bytes as a `RAW` message.
const RAW_LIMIT: usize = 4096;

/// An `awskms://` URI taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsUri {
    /// `host[:port]`, or empty for the SDK's endpoint.
    pub endpoint: String,
    /// The key id, alias or ARN as KMS takes it.
    pub key: String,
    /// The region of an ARN.
    pub region: Option<String>,
}

fn is_key_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl KmsUri {
    /// Parses `awskms://[ENDPOINT]/KEY`.
    pub fn parse(uri: &str) -> Result<KmsUri, String> {
        let rest = uri
            .strip_prefix("awskms://")
            .ok_or("an AWS KMS key is awskms://[ENDPOINT]/KEY")?;
        let (endpoint, key) = rest
            .split_once('/')
            .ok_or("an AWS KMS key is awskms://[ENDPOINT]/KEY")?;
        if let Some(arn) = key.strip_prefix("arn:") {
            // arn:PARTITION:kms:REGION:ACCOUNT:key/ID or :alias/NAME
            let f: Vec<&str> = arn.splitn(5, ':').collect();
            let ok = f.len() == 5
                && ["aws", "aws-us-gov", "aws-cn"].contains(&f[0])
                && f[1] == "kms"
                && !f[2].is_empty()
                && f[3].len() == 12
                && f[3].bytes().all(|b| b.is_ascii_digit())
                && (f[4].strip_prefix("key/").is_some_and(is_key_id)
                    || f[4].strip_prefix("alias/").is_some_and(|a| !a.is_empty()));
            if !ok {
                return Err(format!("{key:?} is not a KMS key or alias ARN"));
            }
            return Ok(KmsUri {
                endpoint: endpoint.to_string(),
                key: key.to_string(),
                region: Some(f[2].to_string()),
            });
        }
        if is_key_id(key) || key.strip_prefix("alias/").is_some_and(|a| !a.is_empty()) {
            return Ok(KmsUri {
                endpoint: endpoint.to_string(),
                key: key.to_string(),
                region: None,
            });
        }
        Err(format!("{key:?} is not a KMS key id, alias/NAME or ARN"))
    }
}

/// A private key in AWS KMS.
pub struct KmsSigner {
    rt: Arc<Dedicated>,
    client: Client,
    key: String,
    algorithm: SigningAlgorithm,
    spec: SigningAlgorithmSpec,
    spki: Vec<u8>,
    timeout: Duration,
}

fn kms_error(uri: &str, reason: impl std::fmt::Display) -> OpenError {
    OpenError::Kms {
        uri: uri.to_string(),
        reason: reason.to_string(),
    }
}

/// The SDK's error with its service code, without the request (no credentials in it).
fn describe<E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug>(
    e: &aws_sdk_kms::error::SdkError<E>,
) -> String {
    use aws_sdk_kms::error::SdkError;
    match e {
        SdkError::ServiceError(s) => format!(
            "{}: {}",
            s.err().code().unwrap_or("error"),
            s.err().message().unwrap_or("")
        ),
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(d) => {
            if d.is_timeout() {
                "timed out".into()
            } else {
                "could not reach KMS".into()
            }
        }
        _ => "request failed".into(),
    }
}

impl KmsSigner {
    /// Connects, reads the key's public key and checks it can sign.
    pub fn open(uri: &str, timeout: Duration) -> Result<KmsSigner, OpenError> {
        let parsed = KmsUri::parse(uri).map_err(|e| kms_error(uri, e))?;
        let rt = Arc::new(Dedicated::new("brevis-kms", 2).map_err(|e| kms_error(uri, e))?);
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .operation_attempt_timeout(timeout)
            .operation_timeout(timeout)
            .build();
        let client = {
            let parsed = parsed.clone();
            rt.block_on(async move {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .timeout_config(timeouts);
                if let Some(r) = parsed.region {
                    loader = loader.region(aws_config::Region::new(r));
                }
                if !parsed.endpoint.is_empty() {
                    loader = loader.endpoint_url(format!("https://{}", parsed.endpoint));
                }
                Client::new(&loader.load().await)
            })
        };
        let key = parsed.key.clone();
        let c = client.clone();
        let pk = rt
            .block_on(async move { c.get_public_key().key_id(key).send().await })
            .map_err(|e| kms_error(uri, describe(&e)))?;
        let spki = pk
            .public_key()
            .ok_or_else(|| kms_error(uri, "KMS returned no public key"))?
            .as_ref()
            .to_vec();
        let kind = PublicKey::from_spki_der(&spki)
            .map_err(|e| kms_error(uri, format!("the public key: {e}")))?
            .kind();
        let (algorithm, spec) = match kind {
            KeyKind::EcdsaP256 => (
                SigningAlgorithm::EcdsaP256Sha256,
                SigningAlgorithmSpec::EcdsaSha256,
            ),
            KeyKind::EcdsaP384 => (
                SigningAlgorithm::EcdsaP384Sha384,
                SigningAlgorithmSpec::EcdsaSha384,
            ),
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => (
                SigningAlgorithm::RsaPkcs1Sha256,
                SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
            ),
            other => {
                return Err(kms_error(
                    uri,
                    format!("a {other:?} key; brevis signs with ECDSA P-256/P-384 or RSA"),
                ));
            }
        };
        if !pk.signing_algorithms().is_empty() && !pk.signing_algorithms().contains(&spec) {
            return Err(kms_error(
                uri,
                format!("the key cannot sign with {}", spec.as_str()),
            ));
        }
        Ok(KmsSigner {
            rt,
            client,
            key: parsed.key,
            algorithm,
            spec,
            spki,
            timeout,
        })
    }

    /// The signing request as a task on the KMS runtime.
    fn spawn(&self, message: &[u8]) -> tokio::task::JoinHandle<Result<Vec<u8>, SignerError>> {
        let (client, key, spec) = (self.client.clone(), self.key.clone(), self.spec.clone());
        let (kind, body) = if message.len() <= RAW_LIMIT {
            (MessageType::Raw, message.to_vec())
        } else {
            (MessageType::Digest, super::digest(self.algorithm, message))
        };
        let timeout = self.timeout;
        self.rt.handle().spawn(async move {
            let call = client
                .sign()
                .key_id(key)
                .message(Blob::new(body))
                .message_type(kind)
                .signing_algorithm(spec)
                .send();
            match tokio::time::timeout(timeout, call).await {
                Err(_) => Err(SignerError::Timeout),
                Ok(Err(e)) => {
                    let why = describe(&e);
                    tracing::warn!(error = %why, "AWS KMS signature failed");
                    if why == "timed out" {
                        Err(SignerError::Timeout)
                    } else {
                        Err(SignerError::Unavailable(format!("AWS KMS: {why}")))
                    }
                }
                Ok(Ok(out)) => out
                    .signature()
                    .map(|s| s.as_ref().to_vec())
                    .ok_or_else(|| SignerError::BadSignature("no signature".into())),
            }
        })
    }
}

async fn joined(
    task: tokio::task::JoinHandle<Result<Vec<u8>, SignerError>>,
) -> Result<Vec<u8>, SignerError> {
    task.await
        .map_err(|_| SignerError::Unavailable("the KMS task failed".into()))?
}

impl Signer for KmsSigner {
    fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    fn public_key_spki(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let task = self.spawn(message);
        self.rt.block_on(joined(task))
    }

    fn sign_async<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, SignerError>> {
        let task = self.spawn(message);
        Box::pin(joined(task))
    }

    fn sign_many(&self, messages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, SignerError> {
        let tasks: Vec<_> = messages.iter().map(|m| self.spawn(m)).collect();
        self.rt.block_on(async move {
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(joined(t).await?);
            }
            Ok(out)
        })
    }

    fn backend(&self) -> &'static str {
        "awskms"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_as_sigstore_writes_them() {
        let k = KmsUri::parse("awskms:///alias/brevis-ca").unwrap();
        assert_eq!(
            (k.endpoint.as_str(), k.key.as_str(), k.region),
            ("", "alias/brevis-ca", None)
        );
        let k =
            KmsUri::parse("awskms://localhost:4566/1234abcd-12ab-34cd-56ef-1234567890ab").unwrap();
        assert_eq!(k.endpoint, "localhost:4566");
        let k = KmsUri::parse(
            "awskms:///arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )
        .unwrap();
        assert_eq!(k.region.as_deref(), Some("eu-west-1"));
        let k = KmsUri::parse("awskms:///arn:aws:kms:us-east-2:123456789012:alias/ca").unwrap();
        assert_eq!(k.region.as_deref(), Some("us-east-2"));
        for bad in [
            "awskms://alias/x",
            "awskms:///not-a-key",
            "awskms:///arn:aws:kms:us-east-1:1234:key/x",
            "awskms:///arn:aws:s3:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "gcpkms://x",
        ] {
            assert!(KmsUri::parse(bad).is_err(), "{bad}");
        }
    }
}
