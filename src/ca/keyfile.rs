//! CA private key files: every format Fulcio's `fileca` reads that a Rust stack can.
//!
//! * `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1), `RSA PRIVATE KEY` (PKCS#1);
//! * `ENCRYPTED PRIVATE KEY` (PKCS#8 + PBES2: PBKDF2 or scrypt, AES-CBC or 3DES);
//! * legacy OpenSSL PEM encryption (`Proc-Type: 4,ENCRYPTED` + `DEK-Info`, AES-CBC or
//!   DES-EDE3-CBC with MD5 `EVP_BytesToKey`).
//!
//! smallstep writes the PBKDF2 PRF parameters as `00 00` instead of NULL; Go accepts it, so
//! brevis repairs that one encoding before decoding (see `repair_smallstep_prf`).

use super::signer::{LocalSigner, SignerError};
use crate::model::der::{self, TAG_OCTET_STRING, TAG_SEQUENCE};
use crate::model::pem;
use ::der::Encode;
use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
use md5::{Digest, Md5};
use thiserror::Error;

/// Why a CA private key file could not be read (or a new one encrypted).
#[derive(Debug, Error)]
pub enum KeyFileError {
    /// The text holds no PEM block whose label ends in `PRIVATE KEY`.
    #[error("no PEM private key block found")]
    NoKey,
    /// The key is encrypted (PKCS#8 or legacy OpenSSL) and no password was given.
    #[error("the key is encrypted; supply its password with --fileca-key-passwd")]
    PasswordRequired,
    /// Decryption failed: wrong password, malformed encryption headers or an unsupported cipher.
    #[error("could not decrypt the key (wrong password or unsupported encryption: {0})")]
    Decrypt(String),
    /// The PEM label names a key format brevis does not read (the label is carried).
    #[error("unsupported key file format {0:?}")]
    UnsupportedFormat(String),
    /// The decoded key is malformed or of an unsupported type.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// Encrypting a generated key with PBES2 failed (the reason is carried).
    #[error("could not encrypt the key: {0}")]
    Encrypt(String),
}

/// Reads a PEM private key file into a signer.
pub fn load(pem_text: &str, password: Option<&str>) -> Result<LocalSigner, KeyFileError> {
    let block = pem::parse_all(pem_text)
        .map_err(|_| KeyFileError::NoKey)?
        .into_iter()
        .find(|b| b.label.ends_with("PRIVATE KEY"))
        .ok_or(KeyFileError::NoKey)?;
    let legacy_encrypted = block
        .headers
        .iter()
        .any(|(k, v)| k == "Proc-Type" && v.contains("ENCRYPTED"));
    let der = if legacy_encrypted {
        let password = password.ok_or(KeyFileError::PasswordRequired)?;
        let dek = block
            .headers
            .iter()
            .find(|(k, _)| k == "DEK-Info")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| KeyFileError::Decrypt("missing DEK-Info".into()))?;
        legacy_decrypt(&dek, password, &block.der)?
    } else {
        block.der
    };
    match block.label.as_str() {
        "PRIVATE KEY" => Ok(LocalSigner::from_pkcs8(&der)?),
        "EC PRIVATE KEY" => Ok(LocalSigner::from_sec1(&der)?),
        "RSA PRIVATE KEY" => Ok(LocalSigner::from_pkcs1(&der)?),
        "ENCRYPTED PRIVATE KEY" => {
            let password = password.ok_or(KeyFileError::PasswordRequired)?;
            let plain = pkcs8_decrypt(&der, password)?;
            Ok(LocalSigner::from_pkcs8(&plain)?)
        }
        other => Err(KeyFileError::UnsupportedFormat(other.to_string())),
    }
}

/// Decrypts an `EncryptedPrivateKeyInfo`.
pub(crate) fn pkcs8_decrypt(der_bytes: &[u8], password: &str) -> Result<Vec<u8>, KeyFileError> {
    let bad = |m: &str| KeyFileError::Decrypt(m.to_string());
    let repaired = repair_smallstep_prf(der_bytes);
    let outer = der::read_single(&repaired, TAG_SEQUENCE).map_err(|_| bad("not PKCS#8"))?;
    let fields = der::children(outer.content).map_err(|_| bad("not PKCS#8"))?;
    let [alg, data] = fields.as_slice() else {
        return Err(bad("not PKCS#8"));
    };
    if data.tag != TAG_OCTET_STRING {
        return Err(bad("not PKCS#8"));
    }
    let scheme = pkcs5::EncryptionScheme::try_from(alg.raw)
        .map_err(|e| KeyFileError::Decrypt(e.to_string()))?;
    scheme
        .decrypt(password, data.content)
        .map_err(|e| KeyFileError::Decrypt(e.to_string()))
}

/// Encrypts a PKCS#8 document with PBES2 (PBKDF2-HMAC-SHA256, 600,000 rounds, AES-256-CBC),
/// a format OpenSSL, Go and brevis all read.
pub(crate) fn pkcs8_encrypt(pkcs8: &[u8], password: &str) -> Result<Vec<u8>, KeyFileError> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| KeyFileError::Encrypt("no randomness".into()))?;
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| KeyFileError::Encrypt("no randomness".into()))?;
    let params = pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(600_000, &salt, iv)
        .map_err(|e| KeyFileError::Encrypt(e.to_string()))?;
    let scheme = pkcs5::EncryptionScheme::from(params);
    let ciphertext = scheme
        .encrypt(password, pkcs8)
        .map_err(|e| KeyFileError::Encrypt(e.to_string()))?;
    let alg = scheme
        .to_der()
        .map_err(|e| KeyFileError::Encrypt(e.to_string()))?;
    Ok(der::sequence(&[&alg, &der::octet_string(&ciphertext)]))
}

/// smallstep encodes the hmacWithSHA256 AlgorithmIdentifier parameters as `00 00`
/// (end-of-contents) where DER wants NULL (`05 00`). Same length, so a byte swap repairs it.
fn repair_smallstep_prf(der_bytes: &[u8]) -> Vec<u8> {
    const BAD: [u8; 14] = [
        0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09, 0x00, 0x00,
    ];
    let mut out = der_bytes.to_vec();
    if let Some(pos) = out.windows(BAD.len()).position(|w| w == BAD) {
        out[pos + 12] = 0x05;
    }
    out
}

/// OpenSSL's legacy PEM encryption: key = EVP_BytesToKey(MD5, password, iv[..8], 1 round).
fn legacy_decrypt(
    dek_info: &str,
    password: &str,
    ciphertext: &[u8],
) -> Result<Vec<u8>, KeyFileError> {
    let (cipher, iv_hex) = dek_info
        .split_once(',')
        .ok_or_else(|| KeyFileError::Decrypt("malformed DEK-Info".into()))?;
    let iv =
        hex::decode(iv_hex.trim()).map_err(|_| KeyFileError::Decrypt("malformed IV".into()))?;
    if iv.len() < 8 {
        return Err(KeyFileError::Decrypt("malformed IV".into()));
    }
    let key_len = match cipher {
        "AES-128-CBC" => 16,
        "AES-192-CBC" => 24,
        "AES-256-CBC" => 32,
        "DES-EDE3-CBC" => 24,
        other => return Err(KeyFileError::Decrypt(format!("cipher {other}"))),
    };
    let key = evp_bytes_to_key(password.as_bytes(), &iv[..8], key_len);
    let wrong = |_| KeyFileError::Decrypt("wrong password or corrupt key".into());
    let plain = match cipher {
        "AES-128-CBC" => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .map_err(|_| KeyFileError::Decrypt("bad IV".into()))?
            .decrypt_padded_vec::<Pkcs7>(ciphertext)
            .map_err(wrong)?,
        "AES-192-CBC" => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(|_| KeyFileError::Decrypt("bad IV".into()))?
            .decrypt_padded_vec::<Pkcs7>(ciphertext)
            .map_err(wrong)?,
        "AES-256-CBC" => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(|_| KeyFileError::Decrypt("bad IV".into()))?
            .decrypt_padded_vec::<Pkcs7>(ciphertext)
            .map_err(wrong)?,
        _ => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(|_| KeyFileError::Decrypt("bad IV".into()))?
            .decrypt_padded_vec::<Pkcs7>(ciphertext)
            .map_err(wrong)?,
    };
    Ok(plain)
}

fn evp_bytes_to_key(password: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < len {
        let mut h = Md5::new();
        h.update(&prev);
        h.update(password);
        h.update(salt);
        prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}
