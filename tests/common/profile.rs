//! Field-by-field checks of an issued chain against Fulcio's leaf profile, with two
//! independent parsers (x509-parser here, pyca/cryptography via tests/py/inspect_cert.py)
//! and OpenSSL's chain verification.

use super::{openssl_text, openssl_verify, run_python};
use serde_json::Value;
use x509_parser::prelude::*;

/// What a leaf must say.
pub struct Expect<'a> {
    pub san: San<'a>,
    pub issuer: &'a str,
    pub subject: &'a str,
    pub spki_der: &'a [u8],
}

pub enum San<'a> {
    Email(&'a str),
    Uri(&'a str),
    /// otherName 1.3.6.1.4.1.57264.1.7 with this UTF-8 value.
    Username(&'a str),
}

pub fn assert_canonical_pem(pem: &str) {
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
    assert!(
        pem.ends_with("-----END CERTIFICATE-----\n"),
        "no trailing newline: {pem:?}"
    );
    let body: Vec<&str> = pem
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("-----"))
        .collect();
    for (i, l) in body.iter().enumerate() {
        if i + 1 < body.len() {
            assert_eq!(l.len(), 64, "PEM line {i} is not 64 columns");
        } else {
            assert!(l.len() <= 64 && !l.is_empty());
        }
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    brevis::model::pem::parse_first(pem).unwrap().der
}

/// Checks a full response chain (leaf, intermediates..., root) and returns Python's view of
/// the leaf.
pub fn check_chain(chain: &[String], expect: &Expect<'_>, now: u64) -> Value {
    assert!(chain.len() >= 2, "chain too short");
    for p in chain {
        assert_canonical_pem(p);
    }
    let leaf_der = der_of(&chain[0]);
    let issuer_der = der_of(&chain[1]);
    let (_, leaf) = parse_x509_certificate(&leaf_der).expect("leaf parses with x509-parser");
    let (_, issuer) = parse_x509_certificate(&issuer_der).unwrap();

    // Version, serial, validity, names.
    assert_eq!(leaf.version(), X509Version::V3);
    let serial = leaf.raw_serial();
    assert!(
        serial.len() <= 20 && serial[0] & 0x80 == 0,
        "serial must be positive, <= 20 octets"
    );
    assert!(leaf.serial.bits() <= 159 && leaf.serial.bits() > 0);
    let nb = leaf.validity().not_before.timestamp() as u64;
    let na = leaf.validity().not_after.timestamp() as u64;
    assert_eq!(na - nb, 600, "validity must be exactly ten minutes");
    assert!(
        nb <= now + 5 && nb + 30 >= now,
        "notBefore {nb} not close to now {now}"
    );
    assert_eq!(
        leaf.subject().as_raw(),
        &[0x30, 0x00],
        "subject must be empty"
    );
    assert_eq!(
        leaf.issuer().as_raw(),
        issuer.subject().as_raw(),
        "issuer = issuing CA subject"
    );
    assert_eq!(
        leaf.public_key().raw,
        expect.spki_der,
        "certified key = requested key"
    );

    // Extension order and criticality.
    let sig = |n: u8| format!("1.3.6.1.4.1.57264.1.{n}");
    let oids: Vec<String> = leaf
        .extensions()
        .iter()
        .map(|e| e.oid.to_id_string())
        .collect();
    let mut want = vec![
        "2.5.29.15".to_string(),
        "2.5.29.37".into(),
        "2.5.29.14".into(),
        "2.5.29.35".into(),
        "2.5.29.17".into(),
        sig(1),
        sig(8),
        sig(24),
    ];
    if oids.last().map(String::as_str) == Some("1.3.6.1.4.1.11129.2.4.2") {
        want.push("1.3.6.1.4.1.11129.2.4.2".into());
    }
    assert_eq!(oids, want, "extension order");
    let ext = |oid: &str| {
        leaf.extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == oid)
            .unwrap()
    };
    assert!(ext("2.5.29.15").critical && ext("2.5.29.17").critical);
    assert!(!ext("2.5.29.37").critical && !ext(&sig(1)).critical && !ext(&sig(8)).critical);
    assert_eq!(
        ext("2.5.29.15").value,
        [0x03, 0x02, 0x07, 0x80],
        "KU digitalSignature only"
    );
    assert_eq!(
        ext("2.5.29.37").value,
        [
            0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03
        ],
        "EKU codeSigning only"
    );
    assert!(
        leaf.basic_constraints().unwrap().is_none(),
        "no basicConstraints on leaves"
    );

    // Sigstore extensions: .1 raw, .8 and .24 DER UTF8String.
    assert_eq!(ext(&sig(1)).value, expect.issuer.as_bytes());
    let utf8 = |s: &str| {
        let mut v = vec![0x0c];
        brevis::model::der::write_len(&mut v, s.len());
        v.extend_from_slice(s.as_bytes());
        v
    };
    assert_eq!(ext(&sig(8)).value, utf8(expect.issuer));
    assert_eq!(ext(&sig(24)).value, utf8(expect.subject));

    // SKI / AKI.
    let ski = brevis::model::x509::subject_key_id(&leaf).expect("leaf SKI");
    let sha1 = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &leaf.public_key().subject_public_key.data,
    );
    assert_eq!(ski, sha1.as_ref(), "SKI is SHA-1 of the public key");
    let aki = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .expect("AKI");
    assert_eq!(Some(aki), brevis::model::x509::subject_key_id(&issuer));
    assert!(brevis::model::x509::is_signed_by(&leaf, &issuer));

    // Independent parser: pyca/cryptography.
    let py = run_python("inspect_cert.py", &[], &chain.concat());
    assert_eq!(py["version"], "v3");
    assert_eq!(py["subject_der_hex"], "3000");
    assert_eq!(
        py["not_after"].as_u64().unwrap() - py["not_before"].as_u64().unwrap(),
        600
    );
    assert_eq!(py["signed_by_issuer"], true, "{py}");
    assert_eq!(py["key_usage"]["digital_signature"], true);
    assert_eq!(py["key_usage"]["key_cert_sign"], false);
    assert_eq!(py["eku"], serde_json::json!(["1.3.6.1.5.5.7.3.3"]));
    assert_eq!(py["aki_hex"], py["issuer_ski_hex"]);
    assert_eq!(py["spki_der_hex"], hex::encode(expect.spki_der));
    assert_eq!(py["basic_constraints"], Value::Null);
    let py_oids: Vec<&str> = py["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["oid"].as_str().unwrap())
        .collect();
    assert_eq!(py_oids, oids.iter().map(String::as_str).collect::<Vec<_>>());
    match expect.san {
        San::Email(e) => assert_eq!(py["san"]["emails"], serde_json::json!([e])),
        San::Uri(u) => assert_eq!(py["san"]["uris"], serde_json::json!([u])),
        San::Username(u) => {
            assert_eq!(
                py["san"]["other_names"][0]["type_id"],
                "1.3.6.1.4.1.57264.1.7"
            );
            // pyca reports the value inside the [0] EXPLICIT wrapper.
            assert_eq!(
                py["san"]["other_names"][0]["value_hex"],
                hex::encode(utf8(u))
            );
        }
    }

    // OpenSSL: text decode and chain verification.
    let text = openssl_text(&chain[0]);
    assert!(text.contains("Code Signing"), "{text}");
    assert!(
        text.contains("X509v3 Subject Alternative Name: critical"),
        "{text}"
    );
    let root = chain.last().unwrap();
    let (ok, msg) = openssl_verify(&chain[0], &chain[1..chain.len() - 1], root);
    assert!(ok, "openssl verify: {msg}");
    py
}
