//! The deploy files are checked, not just shipped: every YAML and JSON file parses; the
//! Kubernetes objects reference each other consistently; every brevis flag they pass
//! exists; the container runs as non-root; the systemd unit is hardened; and every metric
//! the dashboard and alert rules query is one a running brevis exports.

mod common;

use common::{Brevis, Op, email_config, repo_root};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    repo_root().join("deploy")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Every YAML document in a file, merge keys (`<<: *anchor`) applied, as JSON values.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| {
            let mut v = serde_norway::Value::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            v.apply_merge()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::to_value(v).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The `--flags` a brevis subcommand accepts, from its --help.
fn flags_of(sub: &[&str]) -> BTreeSet<String> {
    let out = common::succeed(Command::new(common::brevis_bin()).args(sub).arg("--help"));
    let text = String::from_utf8_lossy(&out);
    let mut flags = BTreeSet::new();
    for word in text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']') {
        if let Some(f) = word.strip_prefix("--") {
            let f = f.split(['=', '<']).next().unwrap();
            if !f.is_empty() {
                flags.insert(f.to_string());
            }
        }
    }
    flags
}

/// Asserts every `--flag` in `args` exists for `brevis <sub>`.
fn assert_flags_exist(what: &str, sub: &[&str], args: &[String]) {
    let known = flags_of(sub);
    for a in args {
        if let Some(f) = a.strip_prefix("--") {
            let f = f.split('=').next().unwrap();
            assert!(
                known.contains(f),
                "{what}: brevis {} has no --{f}",
                sub.join(" ")
            );
        }
    }
}

/// Asserts that a command line (`subcommand words`, then flags) uses only flags its brevis
/// subcommand has; returns the flags.
fn assert_command_line(what: &str, args: &[String]) -> Vec<String> {
    let (sub, flags) = split_command(args);
    let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
    assert_flags_exist(what, &sub, &flags);
    flags
}

/// A YAML/JSON list of strings.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Splits a container's args into (subcommand words, flags).
fn split_command(args: &[String]) -> (Vec<String>, Vec<String>) {
    let n = args.iter().take_while(|a| !a.starts_with('-')).count();
    (args[..n].to_vec(), args[n..].to_vec())
}

#[test]
fn every_yaml_and_json_file_parses() {
    let mut seen = 0;
    for f in files_under(&deploy()) {
        match f.extension().and_then(|e| e.to_str()) {
            Some("yaml") | Some("yml") => {
                assert!(!yaml_docs(&f).is_empty(), "{} is empty", f.display());
                seen += 1;
            }
            Some("json") => {
                let _: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                seen += 1;
            }
            _ => {}
        }
    }
    assert!(seen >= 10, "{seen} files");
}

fn k8s_objects() -> Vec<Value> {
    let dir = deploy().join("kubernetes");
    let kustomization = yaml_docs(&dir.join("kustomization.yaml")).remove(0);
    let mut objects = Vec::new();
    for r in kustomization["resources"].as_array().unwrap() {
        let path = dir.join(r.as_str().unwrap());
        assert!(
            path.exists(),
            "kustomization lists missing {}",
            path.display()
        );
        objects.extend(yaml_docs(&path));
    }
    // Every manifest in the directory is listed.
    for f in files_under(&dir) {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        if name != "kustomization.yaml" {
            assert!(
                kustomization["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r == &Value::String(name.clone())),
                "{name} is not in kustomization.yaml"
            );
        }
    }
    objects
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn kubernetes_manifests_fit_together() {
    let objects = k8s_objects();
    for o in &objects {
        assert!(o["apiVersion"].is_string() && o["kind"].is_string(), "{o}");
        assert!(o["metadata"]["name"].is_string(), "{o}");
    }
    let kinds: BTreeSet<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for k in [
        "Deployment",
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceMonitor",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(k), "no {k}");
    }

    let mut workloads = 0;
    for w in objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
    {
        workloads += 1;
        let name = w["metadata"]["name"].as_str().unwrap();
        let pod = &w["spec"]["template"];
        assert!(
            selects(
                &w["spec"]["selector"]["matchLabels"],
                &pod["metadata"]["labels"]
            ),
            "{name}: selector"
        );
        assert_eq!(
            pod["spec"]["securityContext"]["runAsNonRoot"], true,
            "{name}"
        );
        assert!(
            pod["spec"]["securityContext"]["runAsUser"]
                .as_u64()
                .unwrap()
                > 0,
            "{name}"
        );
        let grace = pod["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap();
        let volumes = pod["spec"]["volumes"].as_array().unwrap();
        for c in pod["spec"]["containers"].as_array().unwrap() {
            let flags = assert_command_line(name, &strings(&c["args"]));
            // The default of `--shutdown-timeout` where the flag is absent.
            let shutdown: u64 = flags
                .iter()
                .find_map(|f| f.strip_prefix("--shutdown-timeout="))
                .map_or(30, |t| t.trim_end_matches('s').parse().unwrap());
            let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: a preStop sleep"));
            assert!(
                (1..=15).contains(&pre_stop),
                "{name}: preStop sleep {pre_stop}"
            );
            assert!(
                grace > pre_stop + shutdown,
                "{name}: terminationGracePeriodSeconds must exceed the preStop sleep plus --shutdown-timeout"
            );
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
            assert_eq!(
                sc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{name}"
            );
            assert!(
                c["resources"]["limits"]["cpu"].is_string()
                    && c["resources"]["limits"]["memory"].is_string(),
                "{name}: limits"
            );
            let ports: BTreeSet<&str> = c["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for probe in ["livenessProbe", "readinessProbe"] {
                let port = c[probe]["httpGet"]["port"].as_str().unwrap();
                assert!(ports.contains(port), "{name}: {probe} port {port}");
                assert!(
                    c[probe]["httpGet"]["path"]
                        .as_str()
                        .unwrap()
                        .starts_with('/')
                );
            }
            if name == "brevis" {
                assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
                assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
            }
            // Every file a flag names is mounted from a volume that provides it.
            for f in &flags {
                let Some((_, value)) = f.split_once('=') else {
                    continue;
                };
                if !value.starts_with("/etc/") {
                    continue;
                }
                let mount = c["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| value.starts_with(m["mountPath"].as_str().unwrap()))
                    .unwrap_or_else(|| panic!("{name}: {value} is not under a volume mount"));
                let file =
                    value[mount["mountPath"].as_str().unwrap().len()..].trim_start_matches('/');
                let vol = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
                let (kind, obj_name, items) = if let Some(s) = vol.get("secret") {
                    ("Secret", s["secretName"].as_str().unwrap(), &s["items"])
                } else {
                    let cm = &vol["configMap"];
                    ("ConfigMap", cm["name"].as_str().unwrap(), &cm["items"])
                };
                let source = find(&objects, kind, obj_name);
                let data = if kind == "Secret" {
                    &source["stringData"]
                } else {
                    &source["data"]
                };
                let key = match items.as_array() {
                    Some(items) => {
                        items.iter().find(|i| i["path"] == file).unwrap_or_else(|| {
                            panic!("{name}: {kind} {obj_name} projects no {file}")
                        })["key"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    }
                    None => file.to_string(),
                };
                assert!(
                    data.get(&key).is_some(),
                    "{name}: {kind} {obj_name} has no key {key}"
                );
            }
            for e in c["env"].as_array().into_iter().flatten() {
                if let Some(r) = e["valueFrom"].get("secretKeyRef") {
                    let s = find(&objects, "Secret", r["name"].as_str().unwrap());
                    assert!(s["stringData"].get(r["key"].as_str().unwrap()).is_some());
                }
            }
        }
    }
    assert_eq!(workloads, 2);

    // Services select pods and name ports those pods have; the ServiceMonitor selects
    // services with a metrics port; the PDB covers the CA pods.
    let pods: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
        .map(|w| &w["spec"]["template"])
        .collect();
    for s in objects.iter().filter(|o| o["kind"] == "Service") {
        let pod = pods
            .iter()
            .find(|p| selects(&s["spec"]["selector"], &p["metadata"]["labels"]))
            .unwrap_or_else(|| panic!("service {} selects no pod", s["metadata"]["name"]));
        let names: BTreeSet<&str> = pod["spec"]["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for p in s["spec"]["ports"].as_array().unwrap() {
            assert!(names.contains(p["targetPort"].as_str().unwrap()), "{s}");
        }
    }
    let sm = objects
        .iter()
        .find(|o| o["kind"] == "ServiceMonitor")
        .unwrap();
    let monitored: Vec<&Value> = objects
        .iter()
        .filter(|o| {
            o["kind"] == "Service"
                && selects(
                    &sm["spec"]["selector"]["matchLabels"],
                    &o["metadata"]["labels"],
                )
        })
        .collect();
    assert_eq!(monitored.len(), 2, "the CA and the CT log are scraped");
    let port = sm["spec"]["endpoints"][0]["port"].as_str().unwrap();
    for s in monitored {
        assert!(
            s["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == port)
        );
    }
    let pdb = find(&objects, "PodDisruptionBudget", "brevis");
    let deployment = find(&objects, "Deployment", "brevis");
    assert!(selects(
        &pdb["spec"]["selector"]["matchLabels"],
        &deployment["spec"]["template"]["metadata"]["labels"]
    ));
    assert!(
        deployment["spec"]["replicas"].as_u64().unwrap()
            > pdb["spec"]["minAvailable"].as_u64().unwrap()
    );

    // The identity config in the ConfigMap is one brevis accepts.
    let cm = find(&objects, "ConfigMap", "brevis-identity");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity.yaml");
    std::fs::write(&path, cm["data"]["identity.yaml"].as_str().unwrap()).unwrap();
    common::succeed(
        Command::new(common::brevis_bin())
            .args(["config", "check"])
            .arg(&path),
    );
}

#[test]
fn compose_file_and_dockerfile() {
    let compose_path = deploy().join("compose/compose.yaml");
    let compose = yaml_docs(&compose_path).remove(0);
    let services = compose["services"].as_object().unwrap();
    for name in ["init", "ctlog", "brevis"] {
        let s = &services[name];
        let build = &s["build"];
        let context = compose_path
            .parent()
            .unwrap()
            .join(build["context"].as_str().unwrap());
        assert!(
            context.join(build["dockerfile"].as_str().unwrap()).exists(),
            "{name}: dockerfile"
        );
        for v in s["volumes"].as_array().unwrap() {
            let vol = v.as_str().unwrap().split(':').next().unwrap();
            assert!(
                compose["volumes"].get(vol).is_some(),
                "{name}: volume {vol}"
            );
        }
        if name == "init" {
            // Each brevis invocation of the init script uses real subcommands and flags.
            let script = s["command"][0].as_str().unwrap();
            for part in script.split(';').chain(script.split("||")) {
                if let Some(cmd) = part.trim().split("brevis ").nth(1) {
                    let words: Vec<String> = cmd.split_whitespace().map(String::from).collect();
                    assert_command_line("compose init", &words);
                }
            }
            continue;
        }
        assert_command_line(&format!("compose {name}"), &strings(&s["command"]));
        assert!(s["depends_on"]["init"]["condition"] == "service_completed_successfully");
    }

    // Dockerfile: multi-stage, runs as an unprivileged numeric user, copies what exists.
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let froms: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert!(froms.len() >= 2, "multi-stage");
    let last_stage = &lines[*froms.last().unwrap()..];
    let users: Vec<&&str> = last_stage
        .iter()
        .filter(|l| l.starts_with("USER "))
        .collect();
    assert_eq!(users.len(), 1, "one USER in the final stage");
    let uid: u32 = users[0][5..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric user");
    assert!(uid > 0);
    assert!(
        !text.contains("ADD http"),
        "no downloads at build time besides the package managers"
    );
    for l in &lines {
        if let Some(rest) = l.strip_prefix("COPY ") {
            if rest.starts_with("--from") {
                continue;
            }
            let parts: Vec<&str> = rest.split_whitespace().collect();
            for src in &parts[..parts.len() - 1] {
                assert!(
                    repo_root().join(src).exists(),
                    "Dockerfile copies missing {src}"
                );
            }
        }
    }
    let cmd_line = last_stage.iter().find(|l| l.starts_with("CMD ")).unwrap();
    let cmd: Vec<String> = serde_json::from_str(&cmd_line[4..]).unwrap();
    assert_command_line("Dockerfile CMD", &cmd);
    let expose = last_stage
        .iter()
        .find(|l| l.starts_with("EXPOSE "))
        .unwrap();
    for port in ["8080", "2112", "6962"] {
        assert!(
            expose.split_whitespace().any(|p| p == port),
            "EXPOSE {port}"
        );
    }
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}

/// `[Section]` -> key -> values (repeated keys kept in order), continuation lines joined.
fn unit_file(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    let mut joined = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') || (l.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(c) = l.strip_suffix('\\') {
            cur.push_str(c);
            cur.push(' ');
            continue;
        }
        cur.push_str(l);
        joined.push(std::mem::take(&mut cur));
    }
    for l in joined {
        if l.starts_with('[') {
            section = l.trim_matches(['[', ']']).to_string();
        } else if let Some((k, v)) = l.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
        }
    }
    out
}

#[test]
fn systemd_unit_is_hardened_and_runs_real_flags() {
    let unit =
        unit_file(&std::fs::read_to_string(deploy().join("systemd/brevis.service")).unwrap());
    let service = &unit["Service"];
    let one = |k: &str| service.get(k).unwrap_or_else(|| panic!("no {k}"))[0].clone();
    let exec: Vec<String> = one("ExecStart")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/brevis");
    let flags = assert_command_line("systemd ExecStart", &exec[1..]);
    assert!(one("ExecReload").contains("-HUP"));
    let stop: u64 = one("TimeoutStopSec").parse().unwrap();
    let shutdown = flags
        .iter()
        .position(|f| f == "--shutdown-timeout")
        .map(|i| flags[i + 1].trim_end_matches('s').parse::<u64>().unwrap())
        .unwrap();
    assert!(
        stop > shutdown,
        "TimeoutStopSec must exceed --shutdown-timeout"
    );
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("StateDirectory", "brevis"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }
    assert!(service["SystemCallFilter"].contains(&"@system-service".to_string()));
    assert_eq!(unit["Install"]["WantedBy"][0], "multi-user.target");
}

/// Metric names (in brevis's namespaces) a PromQL expression reads, with the label keys it
/// selects on each.
fn metrics_in(expr: &str) -> Vec<(String, Vec<String>)> {
    let re =
        regex::Regex::new(r"\b((?:fulcio|brevis|http|process)_[a-z0-9_]+)(\{([^}]*)\})?").unwrap();
    let key = regex::Regex::new(r"([a-z_]+)\s*(=~|!=|!~|=)").unwrap();
    re.captures_iter(expr)
        .map(|c| {
            let labels = c
                .get(3)
                .map(|m| {
                    key.captures_iter(m.as_str())
                        .map(|k| k[1].to_string())
                        .collect()
                })
                .unwrap_or_default();
            (c[1].to_string(), labels)
        })
        .collect()
}

#[tokio::test]
async fn dashboard_and_alerts_query_metrics_brevis_exports() {
    // A brevis that has done real work, so labelled families have children.
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &[]);
    let t = op
        .mint(
            "alice",
            serde_json::json!({"email": "alice@example.com", "email_verified": true}),
        )
        .await;
    let k = common::keys::ClientKey::generate(common::keys::Kind::P256);
    let (s, _) = brevis
        .post_json(
            "/api/v2/signingCert",
            &k.v2_key_body(&t, "alice@example.com"),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = brevis
        .post_json(
            "/api/v2/signingCert",
            &k.v2_key_body("x.y.z", "alice@example.com"),
        )
        .await;
    assert_eq!(s, 400);
    let _ = brevis.get("/readyz").await;
    // The monitor rows and alerts read `brevis monitor`'s metrics: a monitor following
    // this brevis's log, scraped too.
    let work = tempfile::tempdir().unwrap();
    let watch = work.path().join("watch.yaml");
    std::fs::write(
        &watch,
        "watches:\n  - name: staff\n    identity-pattern: \"*@example.com\"\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut monitor = Command::new(common::brevis_bin())
        .args(["monitor", "--log", brevis.ctlog_url.as_ref().unwrap()])
        .arg("--log-public-key")
        .arg(brevis.dir.join("data/ctlog/log-public-key.pem"))
        .arg("--watch")
        .arg(&watch)
        .arg("--state-dir")
        .arg(work.path().join("state"))
        .args([
            "--from-index",
            "0",
            "--interval",
            "1h",
            "--metrics-host",
            "127.0.0.1",
        ])
        .args(["--metrics-port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let monitor_url = format!("http://127.0.0.1:{port}/metrics");
    let mut monitor_text = String::new();
    common::eventually("the monitor's first cycle", || {
        let url = monitor_url.clone();
        async move {
            match reqwest::get(&url).await {
                Ok(r) => r
                    .text()
                    .await
                    .is_ok_and(|t| t.contains("brevis_monitor_matches_total{watch=\"staff\"} 1")),
                Err(_) => false,
            }
        }
    })
    .await;
    monitor_text.push_str(
        &reqwest::get(&monitor_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let _ = monitor.kill();
    let _ = monitor.wait();
    let m = common::prom::parse(&format!("{}\n{monitor_text}", brevis.metrics().await));
    let check = |where_: &str, expr: &str| {
        let found = metrics_in(expr);
        assert!(
            !found.is_empty() || expr.contains("up{"),
            "{where_}: no brevis metric in {expr}"
        );
        for (name, labels) in found {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .fold(name.as_str(), |n, s| n.strip_suffix(s).unwrap_or(n));
            assert!(
                m.has(&name) || m.has(family),
                "{where_}: {name} is not exported"
            );
            let sets = m.label_sets(&name);
            for l in labels {
                assert!(
                    sets.iter().any(|s| s.contains_key(&l)),
                    "{where_}: {name} has no label {l}"
                );
            }
        }
    };

    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy().join("grafana/brevis-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut ids = BTreeSet::new();
    let mut exprs = 0;
    for p in dash["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        let g = &p["gridPos"];
        assert!(
            g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
            "{}",
            p["title"]
        );
        for t in p["targets"].as_array().into_iter().flatten() {
            check(p["title"].as_str().unwrap(), t["expr"].as_str().unwrap());
            assert_eq!(t["datasource"]["uid"], "${datasource}");
            exprs += 1;
        }
    }
    assert!(exprs >= 20);

    let rules = yaml_docs(&deploy().join("prometheus/brevis-alerts.yaml")).remove(0);
    let ops = std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap();
    let anchors: BTreeSet<String> = ops
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| h.trim().to_lowercase().replace(' ', "-"))
        .collect();
    let mut alerts = BTreeSet::new();
    let mut alerts_by_severity = BTreeSet::new();
    for group in rules["groups"].as_array().unwrap() {
        for r in group["rules"].as_array().unwrap() {
            let name = r["alert"].as_str().unwrap();
            // One name may carry several severities (a warning, then a critical threshold).
            let severity = r["labels"]["severity"].as_str().unwrap_or("");
            assert!(
                alerts_by_severity.insert(format!("{name}/{severity}")),
                "duplicate alert {name} at {severity}"
            );
            alerts.insert(name.to_string());
            let expr = r["expr"].as_str().unwrap();
            assert_eq!(
                expr.matches('(').count(),
                expr.matches(')').count(),
                "{name}: parentheses"
            );
            check(name, expr);
            assert!(
                ["critical", "warning"].contains(&r["labels"]["severity"].as_str().unwrap()),
                "{name}"
            );
            for a in ["summary", "description", "runbook_url"] {
                assert!(r["annotations"][a].is_string(), "{name}: {a}");
            }
            let anchor = r["annotations"]["runbook_url"]
                .as_str()
                .unwrap()
                .rsplit('#')
                .next()
                .unwrap();
            assert!(
                anchors.contains(anchor),
                "{name}: docs/operations.md has no section #{anchor}"
            );
            if let Some(f) = r.get("for") {
                let f = f.as_str().unwrap();
                assert!(f.ends_with('m') || f.ends_with('s'), "{name}: for {f}");
            }
        }
    }
    for a in [
        "BrevisIssuanceErrors",
        "BrevisCTSubmissionFailures",
        "BrevisOIDCFetchFailures",
        "BrevisCTLogCheckpointStale",
        "BrevisCAChainExpiring",
        "BrevisTLSCertificateExpiring",
        "BrevisSignerFailing",
        "BrevisSignerSlow",
        "BrevisMonitorInconsistency",
        "BrevisMonitorLagging",
    ] {
        assert!(alerts.contains(a), "missing alert {a}");
    }
}

/// The PostgreSQL overlay: its base exists, every patch names an object of the base, the
/// replicas run real flags with a password-free database URL, every mount has a volume,
/// the log's Service selects the replicas and the budget keeps some of them up.
#[test]
fn kubernetes_postgres_overlay_fits_the_base() {
    let dir = deploy().join("kubernetes-postgres");
    let k = yaml_docs(&dir.join("kustomization.yaml")).remove(0);
    let base = k8s_objects();
    let mut own = Vec::new();
    for r in strings(&k["resources"]) {
        let path = dir.join(&r);
        assert!(path.exists(), "missing resource {r}");
        if path.is_file() {
            own.extend(yaml_docs(&path));
        }
    }
    assert!(strings(&k["resources"]).contains(&"../kubernetes".to_string()));
    let mut listed = vec!["kustomization.yaml".to_string()];
    listed.extend(strings(&k["resources"]));
    let mut patched = std::collections::HashMap::new();
    for p in k["patches"].as_array().unwrap() {
        let file = p["path"].as_str().unwrap();
        listed.push(file.to_string());
        let doc = yaml_docs(&dir.join(file)).remove(0);
        let (kind, name) = (
            doc["kind"].as_str().unwrap().to_string(),
            doc["metadata"]["name"].as_str().unwrap().to_string(),
        );
        find(&base, &kind, &name); // the patch targets an object of the base
        patched.insert((kind, name), doc);
    }
    for f in files_under(&dir) {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            listed.contains(&name),
            "{name} is not used by kustomization.yaml"
        );
    }
    assert_eq!(
        patched[&("StatefulSet".into(), "brevis-ctlog".into())]["$patch"],
        "delete"
    );

    let deployment = &patched[&("Deployment".into(), "brevis".into())];
    let base_deployment = find(&base, "Deployment", "brevis");
    let replicas = deployment["spec"]["replicas"].as_u64().unwrap();
    assert!(replicas >= 2);
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args = strings(&c["args"]);
    let flags = assert_command_line("postgres overlay", &args);
    let storage = flags
        .iter()
        .find_map(|f| f.strip_prefix("--ct-log-storage="))
        .expect("--ct-log-storage");
    let url = url::Url::parse(storage).unwrap();
    assert_eq!(url.scheme(), "postgres");
    assert!(url.password().is_none(), "no password in the URL");
    let volumes: Vec<Value> = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(
            base_deployment["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .unwrap(),
        )
        .cloned()
        .collect();
    let mounts = c["volumeMounts"].as_array().unwrap();
    for m in mounts {
        assert!(
            volumes.iter().any(|v| v["name"] == m["name"]),
            "mount {} has no volume",
            m["name"]
        );
    }
    for flag in [
        "--ct-log-storage-password-file=",
        "--ct-log-storage-ca-file=",
        "--ctlog-key=",
    ] {
        let path = flags
            .iter()
            .find_map(|f| f.strip_prefix(flag))
            .unwrap_or_else(|| panic!("{flag}"));
        assert!(
            mounts
                .iter()
                .any(|m| path.starts_with(m["mountPath"].as_str().unwrap())),
            "{flag}{path} is not on a mounted volume"
        );
    }
    // The base's readiness probe (/readyz) stays: a replica cut off from the database
    // leaves the Service.
    assert_eq!(
        base_deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
    let service = &patched[&("Service".into(), "brevis-ctlog".into())];
    assert!(selects(
        &service["spec"]["selector"],
        &base_deployment["spec"]["template"]["metadata"]["labels"]
    ));
    assert!(
        c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["containerPort"] == 6962)
    );
    let pdb = &patched[&("PodDisruptionBudget".into(), "brevis".into())];
    assert!(pdb["spec"]["minAvailable"].as_u64().unwrap() < replicas);
    let cluster = own
        .iter()
        .find(|o| o["kind"] == "Cluster")
        .expect("an example database cluster");
    assert!(cluster["spec"]["instances"].as_u64().unwrap() >= 2);
    assert!(own.iter().any(|o| o["kind"] == "Secret"));
}

/// The compose file for PostgreSQL: three replicas with real flags and the password in a
/// file, PostgreSQL, and a load balancer whose upstreams are exactly the replicas.
#[test]
fn compose_postgres_runs_three_replicas_behind_a_balancer() {
    let path = deploy().join("compose/postgres.yaml");
    let compose = yaml_docs(&path).remove(0);
    let services = compose["services"].as_object().unwrap();
    let nginx = std::fs::read_to_string(deploy().join("compose/nginx.conf")).unwrap();
    let replicas: Vec<&String> = services
        .keys()
        .filter(|k| k.starts_with("brevis-"))
        .collect();
    assert_eq!(replicas.len(), 3);
    for name in &replicas {
        let s = &services[name.as_str()];
        let flags = assert_command_line(&format!("compose {name}"), &strings(&s["command"]));
        assert!(
            flags
                .iter()
                .any(|f| f.starts_with("--ct-log-storage=postgres://"))
        );
        assert!(
            flags
                .iter()
                .any(|f| f.starts_with("--ct-log-storage-password-file="))
        );
        for port in ["8080", "6962"] {
            assert!(
                nginx.contains(&format!("server {name}:{port}")),
                "nginx does not balance over {name}:{port}"
            );
        }
        assert_eq!(s["depends_on"]["postgres"]["condition"], "service_healthy");
    }
    for (name, s) in services {
        for v in s["volumes"].as_array().into_iter().flatten() {
            let vol = v.as_str().unwrap().split(':').next().unwrap();
            if vol.starts_with("./") {
                assert!(path.parent().unwrap().join(vol).exists(), "{name}: {vol}");
            } else {
                assert!(
                    compose["volumes"].get(vol).is_some(),
                    "{name}: volume {vol}"
                );
            }
        }
    }
    let init = services["init"]["command"][0].as_str().unwrap();
    for part in init.split(';') {
        if let Some(cmd) = part.trim().split("brevis ").nth(1) {
            let words: Vec<String> = cmd.split_whitespace().map(String::from).collect();
            if words.first().is_some_and(|w| w == "ca" || w == "ctlog") {
                assert_command_line("compose init", &words);
            }
        }
    }
}

/// The monitor's deploy files: the Kubernetes objects fit together and pass only flags
/// `brevis monitor` has, the watch file in the ConfigMap is one it accepts, and the systemd
/// unit is hardened like brevis's own.
#[test]
fn monitor_deploy_files_fit_together() {
    let dir = deploy().join("kubernetes-monitor");
    let k = yaml_docs(&dir.join("kustomization.yaml")).remove(0);
    let mut objects = Vec::new();
    for r in strings(&k["resources"]) {
        objects.extend(yaml_docs(&dir.join(&r)));
    }
    let d = find(&objects, "Deployment", "brevis-monitor");
    assert_eq!(d["spec"]["replicas"], 1, "one writer of the state");
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    let flags = assert_command_line("monitor", &strings(&c["args"]));
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    let mounts = c["volumeMounts"].as_array().unwrap();
    let volumes = pod["volumes"].as_array().unwrap();
    let mut watch_text = None;
    for f in &flags {
        let Some((flag, value)) = f.split_once('=') else {
            continue;
        };
        if !value.starts_with('/') {
            continue;
        }
        let mount = mounts
            .iter()
            .find(|m| value.starts_with(m["mountPath"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("{flag}: {value} is not under a volume mount"));
        let vol = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
        if let Some(pvc) = vol.get("persistentVolumeClaim") {
            assert_eq!(flag, "--state-dir");
            find(
                &objects,
                "PersistentVolumeClaim",
                pvc["claimName"].as_str().unwrap(),
            );
            continue;
        }
        let file = value[mount["mountPath"].as_str().unwrap().len()..].trim_start_matches('/');
        let (kind, name, items, data) = match vol.get("secret") {
            Some(s) => (
                "Secret",
                s["secretName"].as_str().unwrap(),
                &s["items"],
                "stringData",
            ),
            None => {
                let cm = &vol["configMap"];
                (
                    "ConfigMap",
                    cm["name"].as_str().unwrap(),
                    &cm["items"],
                    "data",
                )
            }
        };
        let key = items
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["path"] == file)
            .unwrap_or_else(|| panic!("{kind} {name} projects no {file}"))["key"]
            .as_str()
            .unwrap()
            .to_string();
        let text = find(&objects, kind, name)[data][&key]
            .as_str()
            .unwrap_or_else(|| panic!("{kind} {name} has no key {key}"))
            .to_string();
        if flag == "--watch" {
            watch_text = Some(text);
        }
    }
    let port = c["livenessProbe"]["httpGet"]["port"].as_str().unwrap();
    assert!(
        c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == port)
    );
    let svc = find(&objects, "Service", "brevis-monitor");
    assert!(selects(
        &svc["spec"]["selector"],
        &d["spec"]["template"]["metadata"]["labels"]
    ));
    let sm = find(&objects, "ServiceMonitor", "brevis-monitor");
    assert!(selects(
        &sm["spec"]["selector"]["matchLabels"],
        &svc["metadata"]["labels"]
    ));

    // The watch file is one the monitor accepts: it gets as far as reading the log.
    let tmp = tempfile::tempdir().unwrap();
    let watch = tmp.path().join("watch.yaml");
    std::fs::write(&watch, watch_text.expect("a --watch flag")).unwrap();
    let key = tmp.path().join("key.pem");
    let signer =
        brevis::ca::LocalSigner::generate(brevis::ca::SigningAlgorithm::EcdsaP256Sha256).unwrap();
    std::fs::write(
        &key,
        brevis::model::pem::encode("PUBLIC KEY", brevis::ca::Signer::public_key_spki(&signer)),
    )
    .unwrap();
    let out = Command::new(common::brevis_bin())
        .args(["monitor", "--once", "--log", "http://127.0.0.1:1"])
        .arg("--log-public-key")
        .arg(&key)
        .arg("--watch")
        .arg(&watch)
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reading the log"), "{err}");

    let unit = unit_file(
        &std::fs::read_to_string(deploy().join("systemd/brevis-monitor.service")).unwrap(),
    );
    let service = &unit["Service"];
    let one = |k: &str| service.get(k).unwrap_or_else(|| panic!("no {k}"))[0].clone();
    let exec: Vec<String> = one("ExecStart")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/brevis");
    assert_command_line("systemd ExecStart", &exec[1..]);
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("StateDirectory", "brevis-monitor"),
        ("CapabilityBoundingSet", ""),
        ("MemoryDenyWriteExecute", "yes"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }
}
