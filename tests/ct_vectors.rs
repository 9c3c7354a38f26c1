//! Known answers for the CT layer from tests/vectors: SCT signatures and leaf hashes from
//! certificate-transparency-go, RFC 6962 byte encodings, Merkle roots and proofs from
//! transparency-dev/merkle (invalid probes included), real Argon2020 responses, and
//! static-ct-api checkpoints and tiles from Sunlight.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use brevis::ct::checkpoint::{GetSth, SignedTreeHead, key_id};
use brevis::ct::entry::{SignedEntry, parse_data_tile, parse_extra_data, parse_leaf_input};
use brevis::ct::merkle::{self, InMemory};
use brevis::ct::{LogPublicKey, embedded_scts};
use brevis::model::pem;
use brevis::model::sct::{self, DigitallySigned, Entry, Sct};
use serde_json::Value;
use std::path::PathBuf;

fn path(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(p)
}
fn json(p: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path(p)).unwrap()).unwrap()
}
fn text(p: &str) -> String {
    std::fs::read_to_string(path(p)).unwrap()
}
fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}
fn pem_der(p: &str) -> Vec<u8> {
    pem::parse_first(&text(p)).unwrap().der
}

#[test]
fn ctgo_scts_verify_and_leaf_hashes_match() {
    let v = json("ct/ctgo-sct-vectors.json");
    let key = LogPublicKey::from_pem(&text("ct/ctgo-log-public-key.pem")).unwrap();
    assert_eq!(
        hex::encode(key.log_id()),
        v["log"]["log_id_hex"].as_str().unwrap()
    );
    let ca = pem_der("ct/ctgo-ca-cert.pem");
    let certs = |name: &str| match name {
        "leaf" => pem_der("ct/ctgo-test-cert.pem"),
        "precert" => pem_der("ct/ctgo-test-precert.pem"),
        "embedded" => pem_der("ct/ctgo-test-embedded-cert.pem"),
        "invalid_embedded" => pem_der("ct/ctgo-test-invalid-embedded-cert.pem"),
        "ca" => ca.clone(),
        other => panic!("{other}"),
    };
    let sct_of = |name: &str| Sct::from_tls(&unhex(&v["scts"][name]["tls_hex"])).unwrap();
    for c in v["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let chain: Vec<Vec<u8>> = c["chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| certs(n.as_str().unwrap()))
            .collect();
        let sct = sct_of(c["sct"].as_str().unwrap());
        if c["expect_error"] == true {
            // The leaf-hash helper must refuse these inputs.
            let found = !chain.is_empty()
                && embedded_scts(&chain[0], &chain[1])
                    .is_ok_and(|list| list.into_iter().any(|e| e.sct == sct));
            assert!(!found, "{name}");
            continue;
        }
        let ok = if c["embedded"] == true {
            let found = embedded_scts(&chain[0], &chain[1]).unwrap();
            let e = &found[0];
            let valid = key.verify_sct(&sct, &e.entry());
            if valid {
                assert_eq!(
                    hex::encode(e.leaf_hash()),
                    c["expected_leaf_hash_hex"].as_str().unwrap(),
                    "{name}"
                );
            }
            valid
        } else if c["entry_type"] == "x509_entry" {
            let entry = Entry::X509 {
                certificate: &chain[0],
            };
            let input = sct::signature_input(sct.timestamp, &entry, &sct.extensions);
            assert_eq!(
                hex::encode(&input),
                c["signature_input_hex"].as_str().unwrap()
            );
            let te = sct::timestamped_entry(sct.timestamp, &entry, &sct.extensions);
            let leaf = sct::merkle_tree_leaf(&te);
            assert_eq!(
                hex::encode(&leaf),
                c["merkle_tree_leaf_hex"].as_str().unwrap()
            );
            assert_eq!(
                hex::encode(merkle::leaf_hash(&leaf)),
                c["expected_leaf_hash_hex"].as_str().unwrap()
            );
            key.verify_sct(&sct, &entry)
        } else {
            let tbs = brevis::model::x509::precert_tbs(&chain[0]).unwrap();
            let (_, issuer) = x509_parser::parse_x509_certificate(&chain[1]).unwrap();
            let ikh = brevis::ct::sha256(issuer.public_key().raw);
            assert_eq!(
                hex::encode(ikh),
                v["certs"]["ca"]["spki_sha256_hex"].as_str().unwrap()
            );
            let entry = Entry::Precert {
                issuer_key_hash: &ikh,
                tbs: &tbs,
            };
            if c["expect_signature_valid"] == true {
                assert_eq!(
                    hex::encode(sct::signature_input(sct.timestamp, &entry, &sct.extensions)),
                    c["signature_input_hex"].as_str().unwrap()
                );
            }
            key.verify_sct(&sct, &entry)
        };
        assert_eq!(ok, c["expect_signature_valid"] == true, "{name}");
    }
}

#[test]
fn rfc6962_serialization_known_answers() {
    let v = json("ct/rfc6962-serialization-kat.json");
    let x = &v["sct_signature_input_x509"];
    let cert = x["certificate_ascii"].as_str().unwrap().as_bytes();
    let got = sct::signature_input(
        x["timestamp"].as_u64().unwrap(),
        &Entry::X509 { certificate: cert },
        &[],
    );
    assert_eq!(hex::encode(got), x["expected_hex"].as_str().unwrap());
    let p = &v["sct_signature_input_precert"];
    let ikh: [u8; 32] = p["issuer_key_hash_ascii"]
        .as_str()
        .unwrap()
        .as_bytes()
        .try_into()
        .unwrap();
    let got = sct::signature_input(
        p["timestamp"].as_u64().unwrap(),
        &Entry::Precert {
            issuer_key_hash: &ikh,
            tbs: p["tbs_ascii"].as_str().unwrap().as_bytes(),
        },
        &[],
    );
    assert_eq!(hex::encode(got), p["expected_hex"].as_str().unwrap());
    let s = &v["sth_signature_input"];
    let root: [u8; 32] = s["root_hash_ascii"]
        .as_str()
        .unwrap()
        .as_bytes()
        .try_into()
        .unwrap();
    let got = sct::tree_head_signature_input(
        s["timestamp"].as_u64().unwrap(),
        s["tree_size"].as_u64().unwrap(),
        &root,
    );
    assert_eq!(hex::encode(got), s["expected_hex"].as_str().unwrap());
    let t = &v["sct_tls_encoding"];
    let s = Sct {
        log_id: t["log_id_ascii"]
            .as_str()
            .unwrap()
            .as_bytes()
            .try_into()
            .unwrap(),
        timestamp: t["timestamp"].as_u64().unwrap(),
        extensions: vec![],
        signature: DigitallySigned {
            hash_algorithm: t["hash_alg"].as_u64().unwrap() as u8,
            signature_algorithm: t["sig_alg"].as_u64().unwrap() as u8,
            signature: t["signature_ascii"].as_str().unwrap().as_bytes().to_vec(),
        },
    };
    assert_eq!(hex::encode(s.to_tls()), t["expected_hex"].as_str().unwrap());
    let d = &v["digitally_signed_decode"];
    let ds = DigitallySigned::from_tls(&unhex(&d["input_hex"])).unwrap();
    assert_eq!(ds.hash_algorithm as u64, d["hash_alg"].as_u64().unwrap());
    assert_eq!(
        ds.signature_algorithm as u64,
        d["sig_alg"].as_u64().unwrap()
    );
    assert_eq!(
        ds.signature,
        d["signature_ascii"].as_str().unwrap().as_bytes()
    );
}

#[test]
fn get_entries_parsing_accepts_real_entries_and_refuses_malformed_ones() {
    let v = json("ct/argon2018-get-entries.json");
    for c in v["cases"].as_array().unwrap() {
        let desc = c["desc"].as_str().unwrap();
        let leaf = STANDARD
            .decode(c["leaf_input_b64"].as_str().unwrap())
            .unwrap();
        let extra = STANDARD
            .decode(c["extra_data_b64"].as_str().unwrap())
            .unwrap();
        let r = parse_leaf_input(&leaf)
            .and_then(|e| parse_extra_data(&e.entry, &extra).map(|x| (e, x)));
        match c["want"].as_str().unwrap() {
            "error" => assert!(r.is_err(), "{desc} must fail"),
            kind => {
                let (e, extra) = r.unwrap_or_else(|err| panic!("{desc}: {err}"));
                assert_eq!(
                    hex::encode(e.leaf_hash()),
                    c["leaf_hash_hex"].as_str().unwrap(),
                    "{desc}"
                );
                assert_eq!(e.timestamp, c["timestamp_ms"].as_u64().unwrap());
                match (&e.entry, kind) {
                    (SignedEntry::X509 { .. }, "x509_entry") => {
                        assert!(extra.precertificate.is_none())
                    }
                    (
                        SignedEntry::Precert {
                            issuer_key_hash,
                            tbs,
                        },
                        "precert_entry",
                    ) => {
                        assert_eq!(
                            hex::encode(issuer_key_hash),
                            c["issuer_key_hash_hex"].as_str().unwrap()
                        );
                        assert_eq!(
                            hex::encode(tbs),
                            v["precert_tbs_poison_removed_hex"].as_str().unwrap()
                        );
                        assert!(extra.precertificate.is_some());
                    }
                    other => panic!("{desc}: {other:?}"),
                }
                assert_eq!(extra.chain.len(), 2, "{desc}: intermediate and root");
            }
        }
    }
}

fn hashes(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .map(|a| a.iter().map(unhex).collect())
        .unwrap_or_default()
}

#[test]
fn merkle_reference_tree_and_generated_proofs() {
    let v = json("merkle/reference-tree.json");
    for k in v["hasher_kats"].as_array().unwrap() {
        let want = k["expected_hex"].as_str().unwrap();
        let got = if let Some(l) = k.get("leaf_input_hex") {
            merkle::leaf_hash(&unhex(l))
        } else if let (Some(a), Some(b)) = (k.get("left_hex"), k.get("right_hex")) {
            merkle::node_hash(&unhex(a), &unhex(b))
        } else {
            merkle::empty_root()
        };
        assert_eq!(hex::encode(got), want, "{}", k["what"]);
    }
    let leaves: Vec<[u8; 32]> = v["leaf_inputs_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| merkle::leaf_hash(&unhex(l)))
        .collect();
    for (i, h) in v["leaf_hashes_hex"].as_array().unwrap().iter().enumerate() {
        assert_eq!(hex::encode(leaves[i]), h.as_str().unwrap());
    }
    for (size, root) in v["root_by_tree_size_hex"].as_object().unwrap() {
        let n: usize = size.parse().unwrap();
        assert_eq!(
            hex::encode(merkle::root_of(&leaves[..n])),
            root.as_str().unwrap(),
            "size {n}"
        );
        let mut f = merkle::Frontier::default();
        for l in &leaves[..n] {
            f.push(*l);
        }
        assert_eq!(hex::encode(f.root()), root.as_str().unwrap());
    }
    // Every proof for sizes 1..8 is generated byte-identically to the derived set, which
    // reproduces upstream's reference proofs.
    let tree = InMemory(leaves.clone());
    let derived = json("merkle/derived-all-proofs-size1-8.json");
    for p in derived["inclusion"].as_array().unwrap() {
        let (m, n) = (
            p["leaf_index"].as_u64().unwrap(),
            p["tree_size"].as_u64().unwrap(),
        );
        let got: Vec<Vec<u8>> = merkle::inclusion_proof(&tree, m, n)
            .unwrap()
            .iter()
            .map(|h| h.to_vec())
            .collect();
        assert_eq!(got, hashes(&p["proof_hex"]), "inclusion {m}/{n}");
    }
    for p in derived["consistency"].as_array().unwrap() {
        let (a, b) = (p["size1"].as_u64().unwrap(), p["size2"].as_u64().unwrap());
        let got: Vec<Vec<u8>> = merkle::consistency_proof(&tree, a, b)
            .unwrap()
            .iter()
            .map(|h| h.to_vec())
            .collect();
        assert_eq!(got, hashes(&p["proof_hex"]), "consistency {a}/{b}");
    }
    for p in v["reference_inclusion_proofs"].as_array().unwrap() {
        let (m, n) = (
            p["leaf_index"].as_u64().unwrap(),
            p["tree_size"].as_u64().unwrap(),
        );
        let got: Vec<Vec<u8>> = merkle::inclusion_proof(&tree, m, n)
            .unwrap()
            .iter()
            .map(|h| h.to_vec())
            .collect();
        assert_eq!(got, hashes(&p["proof_hex"]));
    }
    for p in v["reference_consistency_proofs"].as_array().unwrap() {
        let (a, b) = (p["size1"].as_u64().unwrap(), p["size2"].as_u64().unwrap());
        let got: Vec<Vec<u8>> = merkle::consistency_proof(&tree, a, b)
            .unwrap()
            .iter()
            .map(|h| h.to_vec())
            .collect();
        assert_eq!(got, hashes(&p["proof_hex"]));
    }
}

#[test]
fn merkle_inclusion_and_consistency_probes() {
    let v = json("merkle/inclusion-probes.json");
    let probes = v["probes"].as_array().unwrap();
    assert!(probes.len() >= 98);
    for p in probes {
        let r = merkle::verify_inclusion(
            p["leaf_index"].as_u64().unwrap(),
            p["tree_size"].as_u64().unwrap(),
            &unhex(&p["leaf_hash_hex"]),
            &hashes(&p["proof_hex"]),
            &unhex(&p["root_hex"]),
        );
        assert_eq!(r.is_err(), p["want_error"] == true, "{}: {r:?}", p["file"]);
    }
    let v = json("merkle/consistency-probes.json");
    for p in v["probes"].as_array().unwrap() {
        let r = merkle::verify_consistency(
            p["size1"].as_u64().unwrap(),
            p["size2"].as_u64().unwrap(),
            &hashes(&p["proof_hex"]),
            &unhex(&p["root1_hex"]),
            &unhex(&p["root2_hex"]),
        );
        assert_eq!(r.is_err(), p["want_error"] == true, "{}: {r:?}", p["file"]);
    }
}

#[test]
fn argon2020_real_log_responses() {
    let v = json("static-ct/argon2020-vectors.json");
    let key = LogPublicKey::from_pem(&text("static-ct/argon2020-log-public-key.pem")).unwrap();
    assert_eq!(
        STANDARD.encode(key.log_id()),
        v["log_id_b64"].as_str().unwrap()
    );
    let sth_json: GetSth = serde_json::from_str(&text("static-ct/argon2020-get-sth.json")).unwrap();
    let sth = SignedTreeHead::from_json(&sth_json).unwrap();
    assert_eq!(
        hex::encode(sth.signature_input()),
        v["sth"]["signature_input_hex"].as_str().unwrap()
    );
    assert!(sth.verify(&key));
    let mut tampered = sth.clone();
    tampered.tree_size += 1;
    assert!(!tampered.verify(&key));

    let entries = json("static-ct/argon2020-get-entries-10000.json");
    let e = &entries["entries"][0];
    let parsed =
        parse_leaf_input(&STANDARD.decode(e["leaf_input"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(
        hex::encode(parsed.leaf_hash()),
        v["entry"]["leaf_hash_hex"].as_str().unwrap()
    );
    parse_extra_data(
        &parsed.entry,
        &STANDARD.decode(e["extra_data"].as_str().unwrap()).unwrap(),
    )
    .unwrap();

    let proof = json("static-ct/argon2020-get-proof-by-hash-10000.json");
    let path: Vec<Vec<u8>> = proof["audit_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(path.len(), 30);
    merkle::verify_inclusion(10000, sth.tree_size, &parsed.leaf_hash(), &path, &sth.root).unwrap();
    assert!(
        merkle::verify_inclusion(10001, sth.tree_size, &parsed.leaf_hash(), &path, &sth.root)
            .is_err()
    );

    let cons = json("static-ct/argon2020-get-sth-consistency-3654490-961984011.json");
    let cpath: Vec<Vec<u8>> = cons["consistency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap())
        .collect();
    let c = &v["consistency"];
    let old = STANDARD
        .decode(c["first_root_b64"].as_str().unwrap())
        .unwrap();
    merkle::verify_consistency(3654490, 961984011, &cpath, &old, &sth.root).unwrap();
    let flipped = STANDARD
        .decode(
            c["negative"]["first_root_b64_with_bit_flipped"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert!(merkle::verify_consistency(3654490, 961984011, &cpath, &flipped, &sth.root).is_err());
}

#[test]
fn static_ct_checkpoints_and_tiles() {
    let v = json("static-ct/sunlight-vectors.json");
    // Sunlight's checkpoint verifies under the key from its log list entry.
    let c = &v["checkpoint"];
    let key = LogPublicKey::from_spki_der(
        &STANDARD
            .decode(c["key_spki_b64"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let origin = c["origin"].as_str().unwrap();
    assert_eq!(
        hex::encode(key_id(origin, key.log_id())),
        c["note_key_id_hex"].as_str().unwrap()
    );
    let cp = text("static-ct/skylight-rome2026h1-checkpoint");
    let sth = SignedTreeHead::from_checkpoint(&cp, origin, &key).expect("checkpoint verifies");
    assert_eq!(sth.tree_size, 300);
    assert_eq!(
        hex::encode(sth.signature_input()),
        c["signed_bytes_hex"].as_str().unwrap()
    );
    assert!(
        SignedTreeHead::from_checkpoint(&cp.replace("\n300\n", "\n301\n"), origin, &key).is_none()
    );
    assert!(SignedTreeHead::from_checkpoint(&cp, "other.example", &key).is_none());

    // An STH re-expressed as a checkpoint: our encoder produces the same text.
    let s = &v["sth_as_checkpoint"];
    let sth_json: GetSth = serde_json::from_value(s["sth_json"].clone()).unwrap();
    let sth = SignedTreeHead::from_json(&sth_json).unwrap();
    let key = LogPublicKey::from_spki_der(
        &STANDARD
            .decode(s["log_public_key_spki_b64"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(sth.verify(&key));
    let ours = sth.to_checkpoint(s["origin"].as_str().unwrap(), key.log_id());
    assert_eq!(ours, s["checkpoint_text"].as_str().unwrap());
    assert_eq!(
        SignedTreeHead::from_checkpoint(&ours, "example.com", &key),
        Some(sth)
    );

    // A real data tile: each entry's leaf hash is the matching hash of the level-0 tile.
    let d = &v["data_tile"];
    let data = std::fs::read(path("static-ct/navigli2025h2-tile-data-003.p-10.bin")).unwrap();
    let level0 = std::fs::read(path("static-ct/navigli2025h2-tile-0-003.p-10.bin")).unwrap();
    let leaves = parse_data_tile(&data).unwrap();
    assert_eq!(leaves.len(), 10);
    assert_eq!(level0.len(), 320);
    for (i, (leaf, want)) in leaves
        .iter()
        .zip(d["entries"].as_array().unwrap())
        .enumerate()
    {
        let h = leaf.entry.leaf_hash();
        assert_eq!(&h[..], &level0[i * 32..(i + 1) * 32]);
        assert_eq!(hex::encode(h), want["leaf_hash_hex"].as_str().unwrap());
        assert_eq!(
            sct::parse_leaf_index(&leaf.entry.extensions),
            want["index"].as_u64()
        );
        assert_eq!(
            leaf.chain_fingerprints.len() as u64,
            want["chain_fingerprints"].as_u64().unwrap()
        );
        // The logged TBS is the precertificate's TBS minus the poison.
        let pre = leaf.precertificate.as_ref().unwrap();
        let tbs = brevis::model::x509::precert_tbs(pre).unwrap();
        match &leaf.entry.entry {
            SignedEntry::Precert { tbs: logged, .. } => assert_eq!(logged, &tbs),
            _ => panic!("precert expected"),
        }
    }
    // Truncated tiles are refused.
    assert!(parse_data_tile(&data[..data.len() - 1]).is_err());
}
