//! Upstream known answers from tests/vectors/fulcio: config validation, YAML/JSON parse
//! equivalence, the shipped public-good config, domain rules, file-CA key and chain
//! loading.

use brevis::config::identity::{allowed_domain, uri_subject_allowed};
use brevis::config::{IdentityConfig, IssuerType};
use serde_json::Value;
use std::path::PathBuf;

fn vectors(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/fulcio")
        .join(name)
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(vectors(name)).unwrap()).unwrap()
}

#[test]
fn config_validation_cases() {
    let v = load("config-validation.json");
    let cases = v["validate_config"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 18);
    for c in cases {
        let mut doc = serde_json::Map::new();
        if c["config_is_null"] == true {
            let r = IdentityConfig::parse("null");
            assert!(r.is_err(), "{}", c["name"]);
            continue;
        }
        if let Some(o) = c.get("oidc_issuers") {
            doc.insert("oidc-issuers".into(), o.clone());
        }
        if let Some(m) = c.get("meta_issuers") {
            doc.insert("meta-issuers".into(), m.clone());
        }
        // JSON is valid YAML, and these use the YAML key names.
        let text = serde_json::to_string(&Value::Object(doc)).unwrap();
        let yaml = format!("# yaml\n{text}");
        let r = IdentityConfig::parse(&yaml);
        assert_eq!(r.is_err(), c["want_error"] == true, "{}: {r:?}", c["name"]);
    }
}

#[test]
fn domain_rules() {
    let v = load("config-validation.json");
    for c in v["uri_subject_allowed"]["cases"].as_array().unwrap() {
        let r = uri_subject_allowed(
            c["subject"].as_str().unwrap(),
            c["issuer"].as_str().unwrap(),
        );
        assert_eq!(r.is_err(), c["want_error"] == true, "{}", c["name"]);
        if let (Err(e), Some(m)) = (&r, c["error_message"].as_str()) {
            assert_eq!(e.to_string(), m, "{}", c["name"]);
        }
    }
    for c in v["allowed_domain"]["cases"].as_array().unwrap() {
        let r = allowed_domain(
            c["subject"].as_str().unwrap(),
            c["issuer"].as_str().unwrap(),
        );
        assert_eq!(r.is_err(), c["want_error"] == true, "{}", c["name"]);
        if let (Err(e), Some(m)) = (&r, c["error_message"].as_str()) {
            assert_eq!(e.to_string(), m, "{}", c["name"]);
        }
    }
}

#[test]
fn challenge_claims_by_type() {
    let v = load("config-validation.json");
    for c in v["challenge_claim_by_issuer_type"]["cases"]
        .as_array()
        .unwrap()
    {
        let t = IssuerType::parse(c["type"].as_str().unwrap());
        let configured = c["configured"].as_str().unwrap();
        let got = if configured.is_empty() {
            t.default_challenge_claim().unwrap_or("")
        } else {
            configured
        };
        assert_eq!(got, c["expected"].as_str().unwrap(), "{}", c["type"]);
    }
}

#[test]
fn yaml_and_json_parse_to_the_same_config() {
    let v = load("config-validation.json");
    let yaml = IdentityConfig::parse(v["parse_equivalence"]["yaml"].as_str().unwrap());
    let json = IdentityConfig::parse(v["parse_equivalence"]["json"].as_str().unwrap());
    // The vector's ci-provider meta issuer names github-workflow without metadata; brevis
    // refuses that at load time (Fulcio would fail at request time), so compare with the
    // metadata supplied.
    let with_meta = |t: &str, json: bool| {
        if json {
            t.replacen('{', "{\"CIIssuerMetadata\": {\"github-workflow\": {\"SubjectAlternativeNameTemplate\": \"x\"}},", 1)
        } else {
            format!(
                "{t}\nci-issuer-metadata:\n  github-workflow:\n    subject-alternative-name-template: x\n"
            )
        }
    };
    assert!(
        yaml.is_err() && json.is_err(),
        "a missing ci-provider block is refused"
    );
    let yaml = IdentityConfig::parse(&with_meta(
        v["parse_equivalence"]["yaml"].as_str().unwrap(),
        false,
    ))
    .unwrap();
    let json = IdentityConfig::parse(&with_meta(
        v["parse_equivalence"]["json"].as_str().unwrap(),
        true,
    ))
    .unwrap();
    assert_eq!(yaml, json);
    assert_eq!(yaml.issuers.len(), 2);
    assert!(yaml.issuers.iter().any(|i| i.skip_email_verification));
    assert_eq!(yaml.meta_issuers.len(), 2);
}

#[test]
fn the_shipped_public_good_config_loads_unchanged() {
    let text = std::fs::read_to_string(vectors("identity-config.yaml")).unwrap();
    let cfg = IdentityConfig::parse(&text).unwrap();
    let expect = load("public-good-issuers.json");
    let want: Vec<&str> = expect["oidc_issuers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["issuer_url"].as_str().unwrap())
        .collect();
    let got: Vec<&str> = cfg.issuers.iter().map(|i| i.key.as_str()).collect();
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted);
    for (i, e) in cfg.issuers.iter().zip(want_sorted.iter()) {
        let ex = expect["oidc_issuers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["issuer_url"] == *e)
            .unwrap();
        assert_eq!(i.kind.as_str(), ex["type"].as_str().unwrap());
        assert_eq!(i.client_id, "sigstore");
        assert_eq!(i.ci_provider.as_deref(), ex["ci_provider"].as_str());
    }
    assert_eq!(
        cfg.meta_issuers.len(),
        expect["meta_issuers"].as_array().unwrap().len()
    );
    assert_eq!(cfg.ci_metadata.len(), 6);
    assert!(cfg.ci_metadata.contains_key("github-workflow"));
}

#[test]
fn config_errors_name_the_field() {
    let e = IdentityConfig::parse("oidc-issuers:\n  https://a.example:\n    client-id: x\n")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "oidc-issuers.\"https://a.example\".type: is required"
    );
    let e = IdentityConfig::parse(
        "oidc-issuers:\n  https://a.example:\n    type: email\n    clientid: x\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `clientid`"), "{e}");
    let e = IdentityConfig::parse(
        r#"{"OIDCIssuers": {"https://a.example": {"Type": "email", "ClientId": "x", "Bogus": 1}}}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "OIDCIssuers.\"https://a.example\".Bogus: unknown field"
            .replace("OIDCIssuers", "oidc-issuers")
    );
    let w = IdentityConfig::parse("oidc-issuers:\n  https://a.example:\n    type: email\n    client-id: x\n    issuer-url: https://b.example\n").unwrap();
    assert!(
        w.warnings[0].starts_with("oidc-issuers.\"https://a.example\".issuer-url:"),
        "{:?}",
        w.warnings
    );
}

#[test]
fn file_ca_material_loads_or_fails_as_fulcio_does() {
    let v = load("fileca/expectations.json");
    let password = v["password"].as_str().unwrap();
    // The vectors were generated to be valid for ~100 years from their creation.
    let now = std::time::SystemTime::now();
    for c in v["cases"].as_array().unwrap() {
        let cert = vectors("fileca").join(c["cert_file"].as_str().unwrap());
        let key = vectors("fileca").join(c["key_file"].as_str().unwrap());
        let r = brevis::ca::provision::load_files(&cert, &key, Some(password), now);
        assert_eq!(
            r.is_ok(),
            c["expect_load"] == true,
            "{}: {:?}",
            c["name"],
            r.err()
        );
        if let Ok(ca) = r {
            assert_eq!(
                ca.chain_der().len() as u64,
                c["chain_length"].as_u64().unwrap()
            );
        }
    }
    // A wrong password is an error that says so.
    let err = brevis::ca::provision::load_files(
        &vectors("fileca/ecdsa-cert.pem"),
        &vectors("fileca/ecdsa-key.pem"),
        Some("wrong"),
        now,
    )
    .unwrap_err();
    let err = brevis::errors::Chain(&err).to_string();
    assert!(err.contains("decrypt"), "{err}");
    let err = brevis::ca::provision::load_files(
        &vectors("fileca/ecdsa-cert.pem"),
        &vectors("fileca/ecdsa-key.pem"),
        None,
        now,
    )
    .unwrap_err();
    let err = brevis::errors::Chain(&err).to_string();
    assert!(err.contains("--fileca-key-passwd"), "{err}");
}

mod ci_templates {
    use super::{load, vectors};
    use brevis::config::IdentityConfig;
    use brevis::identity::claims::{Claims, stringify};
    use brevis::identity::template::{Template, Vars};
    use brevis::identity::{Identities, ciprovider};
    use brevis::model::extensions::{Extensions, Field};
    use serde_json::Value;

    fn vars(defaults: &Value, claims: &Value) -> Vars {
        let mut v: Vars = defaults
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        for (k, x) in claims.as_object().unwrap() {
            v.insert(k.clone(), stringify(x));
        }
        v
    }

    #[test]
    fn apply_template_or_replace() {
        let d = load("ciprovider-templates.json");
        let t = &d["apply_template_or_replace"];
        let v = vars(&t["default_template_values"], &t["token_claims"]);
        let cases = t["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 16);
        for c in cases {
            let name = c["name"].as_str().unwrap();
            let r = Template::parse(c["template"].as_str().unwrap()).and_then(|t| t.render(&v));
            if c["expect_error"] == true {
                assert!(r.is_err(), "{name}: {r:?}");
            } else {
                assert_eq!(r.unwrap(), c["expected"].as_str().unwrap(), "{name}");
            }
        }
    }

    #[test]
    fn claim_stringification() {
        let d = load("ciprovider-templates.json");
        let s = &d["claim_value_stringification"];
        for c in s["cases"].as_array().unwrap() {
            let value = &s["claims_json"][c["claim"].as_str().unwrap()];
            assert_eq!(
                stringify(value),
                c["expected_string"].as_str().unwrap(),
                "{}",
                c["name"]
            );
        }
    }

    #[test]
    fn embed_cases() {
        let d = load("ciprovider-templates.json");
        let e = &d["embed"];
        let meta_yaml = serde_norway::to_string(&serde_json::json!({
            "ci-issuer-metadata": {"p": e["metadata"]}
        }))
        .unwrap();
        for c in e["cases"].as_array().unwrap() {
            let mut meta: serde_json::Value = serde_norway::from_str(&meta_yaml).unwrap();
            meta["ci-issuer-metadata"]["p"]["default-template-values"] =
                c["default_template_values"].clone();
            let cfg = IdentityConfig::parse(&serde_norway::to_string(&meta).unwrap()).unwrap();
            let provider = ciprovider::Provider::compile("p", &cfg.ci_metadata["p"]).unwrap();
            let mut claims = c["claims"].as_object().unwrap().clone();
            claims.insert("iss".into(), e["issuer"].clone());
            let (_, ext) = provider.render(&Claims(&claims)).unwrap();
            let got: Vec<(String, Vec<u8>)> = ext
                .render()
                .unwrap()
                .into_iter()
                .map(|x| (oid(&x.oid), x.value))
                .collect();
            let want: Vec<(String, Vec<u8>)> = c["expected"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| x["encoding"] != "absent")
                .map(|x| {
                    let v = x["value"].as_str().unwrap();
                    let bytes = if x["encoding"] == "raw" {
                        v.as_bytes().to_vec()
                    } else {
                        brevis::model::der::utf8_string(v)
                    };
                    (x["oid"].as_str().unwrap().to_string(), bytes)
                })
                .collect();
            assert_eq!(got, want, "{}", c["name"]);
        }
        assert_eq!(
            d["principal_name"]["expected_name"],
            d["principal_name"]["sub"]
        );
    }

    fn oid(content: &[u8]) -> String {
        brevis::model::der::oid_to_string(content)
    }

    #[test]
    fn extensions_render_in_fulcios_order_and_encodings() {
        let d = load("extensions-render.json");
        let c = &d["complete_render"];
        let mut e = Extensions::default();
        for (k, v) in c["input"].as_object().unwrap() {
            e.set(Field::from_config_key(k).unwrap(), v.as_str().unwrap());
        }
        let got: Vec<String> = e
            .render()
            .unwrap()
            .iter()
            .map(|x| hex::encode(x.to_der()))
            .collect();
        let want: Vec<String> = c["expected_ordered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["extension_der_hex"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want);
        let mut only = Extensions::default();
        only.set(Field::GithubWorkflowTrigger, "foo");
        assert!(only.render().is_err(), "an empty issuer is an error");
        let p = &d["parse_der_string"];
        assert_eq!(
            brevis::model::extensions::parse_der_string(
                &hex::decode(p["input_hex"].as_str().unwrap()).unwrap()
            )
            .as_deref(),
            p["expected"].as_str()
        );
        assert_eq!(
            brevis::model::extensions::parse_der_string(&hex::decode("0c01610c").unwrap()),
            None,
            "trailing bytes"
        );
    }

    #[test]
    fn the_full_github_token_renders_byte_identically_with_brevis_public_good_config() {
        let d = load("github-actions-full-token.json");
        let text = std::fs::read_to_string(vectors("../../../config/public-good.yaml")).unwrap();
        let cfg = IdentityConfig::parse(&text).unwrap();
        let identities = Identities::new(&cfg).unwrap();
        let issuer = cfg
            .issuers
            .iter()
            .find(|i| i.key == "https://token.actions.githubusercontent.com")
            .unwrap();
        let claims = d["token_claims"].as_object().unwrap().clone();
        let p = identities.principal(issuer, &claims).unwrap();
        assert_eq!(p.san.value(), d["expected_san_uri"].as_str().unwrap());
        assert_eq!(p.challenge, claims["sub"].as_str().unwrap());
        let got: Vec<String> = p
            .extensions
            .render()
            .unwrap()
            .iter()
            .map(|x| hex::encode(x.to_der()))
            .collect();
        let want: Vec<String> = d["expected_extensions_ordered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["extension_der_hex"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want);
        let mut no_env = claims.clone();
        no_env.remove("environment");
        let p = identities.principal(issuer, &no_env).unwrap();
        let got: Vec<String> = p
            .extensions
            .render()
            .unwrap()
            .iter()
            .map(|x| brevis::model::der::oid_to_string(&x.oid))
            .collect();
        assert!(!got.contains(&"1.3.6.1.4.1.57264.1.23".to_string()));
        assert_eq!(got.len(), want.len() - 1);
    }

    #[test]
    fn brevis_public_good_config_equals_upstreams() {
        let mine = IdentityConfig::parse(
            &std::fs::read_to_string(vectors("../../../config/public-good.yaml")).unwrap(),
        )
        .unwrap();
        let upstream = IdentityConfig::parse(
            &std::fs::read_to_string(vectors("identity-config.yaml")).unwrap(),
        )
        .unwrap();
        assert_eq!(mine, upstream);
        Identities::new(&mine).unwrap();
    }
}
