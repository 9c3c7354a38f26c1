//! The identity types of the core issue over HTTP with real provider tokens: uri,
//! username, spiffe, kubernetes (through a meta-issuer pattern), and their refusals.

mod common;

use common::keys::{ClientKey, Kind};
use common::profile::{self, Expect, San};
use common::{Brevis, Op, now_secs};
use serde_json::{Value, json};

fn chain(resp: &Value) -> Vec<String> {
    resp["signedCertificateDetachedSct"]["chain"]["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("{resp}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

struct Setup {
    uri: Op,
    username: Op,
    spiffe: Op,
    k8s: Op,
    brevis: Brevis,
}

fn setup() -> Setup {
    let (uri, username, spiffe, k8s) = (Op::start(), Op::start(), Op::start(), Op::start());
    let config = format!(
        r#"oidc-issuers:
  {u}:
    issuer-url: {u}
    client-id: sigstore
    type: uri
    subject-domain: http://127.0.0.1
  {n}:
    issuer-url: {n}
    client-id: sigstore
    type: username
    subject-domain: 127.0.0.1
  {s}:
    issuer-url: {s}
    client-id: sigstore
    type: spiffe
    spiffe-trust-domain: example.org
meta-issuers:
  http://127.0.0.1:*:
    client-id: sigstore
    type: kubernetes
"#,
        u = uri.issuer,
        n = username.issuer,
        s = spiffe.issuer
    );
    let brevis = Brevis::start(&config, &["--ct-log-url", ""]);
    Setup {
        uri,
        username,
        spiffe,
        k8s,
        brevis,
    }
}

async fn issue(brevis: &Brevis, token: &str, challenge: &str) -> (u16, Value, ClientKey) {
    let key = ClientKey::generate(Kind::P256);
    let (s, r) = brevis
        .post_json("/api/v2/signingCert", &key.v2_key_body(token, challenge))
        .await;
    (s, r, key)
}

const TOKEN_MSG: &str = "There was an error processing the identity token";

#[tokio::test]
async fn uri_username_spiffe_and_kubernetes_identities() {
    let t = setup();

    // uri: SAN is the sub URL; PoP over sub.
    let sub = "http://127.0.0.1/users/alice";
    let token = t.uri.mint(sub, json!({})).await;
    let (s, r, key) = issue(&t.brevis, &token, sub).await;
    assert_eq!(s, 200, "{r}");
    profile::check_chain(
        &chain(&r),
        &Expect {
            san: San::Uri(sub),
            issuer: &t.uri.issuer,
            subject: sub,
            spki_der: key.spki_der(),
        },
        now_secs(),
    );
    // ... and a subject on another host is refused.
    let token = t.uri.mint("http://evil.example/alice", json!({})).await;
    let (s, r, _) = issue(&t.brevis, &token, "http://evil.example/alice").await;
    assert_eq!((s, r["message"].as_str()), (400, Some(TOKEN_MSG)), "{r}");
    let token = t.uri.mint("https://127.0.0.1/alice", json!({})).await;
    assert_eq!(
        issue(&t.brevis, &token, "https://127.0.0.1/alice").await.0,
        400,
        "scheme must match"
    );

    // username: otherName SAN "<sub>!<domain>".
    let token = t.username.mint("robot", json!({})).await;
    let (s, r, key) = issue(&t.brevis, &token, "robot").await;
    assert_eq!(s, 200, "{r}");
    profile::check_chain(
        &chain(&r),
        &Expect {
            san: San::Username("robot!127.0.0.1"),
            issuer: &t.username.issuer,
            subject: "robot",
            spki_der: key.spki_der(),
        },
        now_secs(),
    );
    let token = t.username.mint("ro!bot", json!({})).await;
    assert_eq!(issue(&t.brevis, &token, "ro!bot").await.0, 400);
    let token = t.username.mint("robot@example.com", json!({})).await;
    assert_eq!(
        issue(&t.brevis, &token, "robot@example.com").await.0,
        400,
        "an email is not a username"
    );

    // spiffe: SAN is the SPIFFE ID; the trust domain must match.
    let id = "spiffe://example.org/ns/foo/sa/bar";
    let token = t.spiffe.mint(id, json!({})).await;
    let (s, r, key) = issue(&t.brevis, &token, id).await;
    assert_eq!(s, 200, "{r}");
    profile::check_chain(
        &chain(&r),
        &Expect {
            san: San::Uri(id),
            issuer: &t.spiffe.issuer,
            subject: id,
            spki_der: key.spki_der(),
        },
        now_secs(),
    );
    for bad in [
        "spiffe://other.org/ns/foo",
        "spiffe://example.org.evil/x",
        "https://example.org/x",
        "spiffe://example.org/a//b",
    ] {
        let token = t.spiffe.mint(bad, json!({})).await;
        let (s, r, _) = issue(&t.brevis, &token, bad).await;
        assert_eq!(
            (s, r["message"].as_str()),
            (400, Some(TOKEN_MSG)),
            "{bad}: {r}"
        );
    }

    // kubernetes through the meta-issuer pattern http://127.0.0.1:*.
    let sub = "system:serviceaccount:foo:baz";
    let claims = json!({"kubernetes.io": {"namespace": "foo", "pod": {"name": "p"}, "serviceaccount": {"name": "baz", "uid": "u"}}});
    let token = t.k8s.mint(sub, claims).await;
    let (s, r, key) = issue(&t.brevis, &token, sub).await;
    assert_eq!(s, 200, "{r}");
    let san = "https://kubernetes.io/namespaces/foo/serviceaccounts/baz";
    profile::check_chain(
        &chain(&r),
        &Expect {
            san: San::Uri(san),
            issuer: &t.k8s.issuer,
            subject: sub,
            spki_der: key.spki_der(),
        },
        now_secs(),
    );
    let token = t
        .k8s
        .mint(
            "system:serviceaccount:foo:nosa",
            json!({"kubernetes.io": {"namespace": "foo"}}),
        )
        .await;
    assert_eq!(
        issue(&t.brevis, &token, "system:serviceaccount:foo:nosa")
            .await
            .0,
        400
    );

    // The configuration endpoint lists exact issuers, then patterns.
    let cfg: Value = t
        .brevis
        .get("/api/v2/configuration")
        .await
        .json()
        .await
        .unwrap();
    let issuers = cfg["issuers"].as_array().unwrap();
    assert_eq!(issuers.len(), 4);
    let wildcard = issuers
        .iter()
        .find(|i| i.get("wildcardIssuerUrl").is_some())
        .unwrap();
    assert_eq!(wildcard["wildcardIssuerUrl"], "http://127.0.0.1:*");
    assert_eq!(wildcard["issuerType"], "kubernetes");
    assert_eq!(wildcard["challengeClaim"], "sub");
    let spiffe = issuers
        .iter()
        .find(|i| i["issuerType"] == "spiffe")
        .unwrap();
    assert_eq!(spiffe["spiffeTrustDomain"], "example.org");
    let uri = issuers.iter().find(|i| i["issuerType"] == "uri").unwrap();
    assert_eq!(uri["subjectDomain"], "http://127.0.0.1");
}
