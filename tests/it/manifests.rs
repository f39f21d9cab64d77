//! The Kubernetes manifests we publish (the YAML blocks of docs/kubernetes.md and every file
//! under deploy/), checked the way an admission controller would: each document is well formed
//! for its kind (the fields of the vendored schema subset in
//! `tests/fixtures/kubernetes/schema.json`: kinds, required fields, field types, no unknown
//! field where Kubernetes rejects one), and every pod passes Pod Security "restricted"
//! (Kubernetes' `restricted` profile, latest version: the baseline checks plus non-root,
//! no privilege escalation, `RuntimeDefault` seccomp, capabilities dropped, allowed volume
//! types) with a pinned image tag.
//!
//! Debian packages no Kubernetes validator (kubeconform, kubeval), so the check is this test;
//! it runs in `cargo test`, hence in CI.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::repo_root;

/// Every manifest document with where it came from.
fn manifests() -> Vec<(String, Value)> {
    let root = repo_root();
    let mut docs = Vec::new();
    let markdown = std::fs::read_to_string(root.join("docs/kubernetes.md")).unwrap();
    for (i, block) in markdown.split("```yaml\n").skip(1).enumerate() {
        let text = block.split("```").next().unwrap();
        for doc in parse(text, &format!("docs/kubernetes.md block {}", i + 1)) {
            docs.push((format!("docs/kubernetes.md block {}", i + 1), doc));
        }
    }
    let deploy = root.join("deploy");
    for path in yaml_files(&deploy) {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        for doc in parse(&text, &name) {
            docs.push((name.clone(), doc));
        }
    }
    docs.retain(|(_, d)| !d.is_null());
    docs
}

fn parse(text: &str, what: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{what} does not parse: {e}"))
}

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

// --- Structure: the vendored schema subset ------------------------------------------------

/// Checks `value` against `schema` (a small subset of JSON Schema: `type`, `required`,
/// `properties`, `additionalProperties: false`, `items`, `enum`, `oneOf` of types), appending
/// problems with their path.
fn check(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = types.iter().any(|t| *t == actual || (*t == "number" && actual == "integer"));
        if !ok {
            problems.push(format!("{path}: expected {types:?}, found {actual}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        problems.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    if let Value::Object(map) = value {
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let key = required.as_str().unwrap();
            if !map.contains_key(key) {
                problems.push(format!("{path}: `{key}` is required"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        for (key, child) in map {
            match properties.and_then(|p| p.get(key)) {
                Some(sub) => check(sub, child, &format!("{path}.{key}"), problems),
                None if closed => problems.push(format!("{path}: unknown field `{key}`")),
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(sub)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(sub, item, &format!("{path}[{i}]"), problems);
        }
    }
}

/// The schema of a document's kind, with `$ref`s to `definitions` resolved.
fn schema_for(schemas: &Value, api_version: &str, kind: &str) -> Option<Value> {
    let key = format!("{api_version}/{kind}");
    let schema = schemas["kinds"].get(&key)?;
    Some(resolve(schema, &schemas["definitions"]))
}

fn resolve(schema: &Value, definitions: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map.get("$ref").and_then(Value::as_str) {
                let name = name.trim_start_matches("#/definitions/");
                return resolve(&definitions[name], definitions);
            }
            Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve(v, definitions))).collect())
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| resolve(v, definitions)).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn every_manifest_is_well_formed_for_its_kind() {
    let schemas: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/fixtures/kubernetes/schema.json"))
            .unwrap(),
    )
    .unwrap();
    let docs = manifests();
    assert!(docs.len() >= 4, "the manifests were found: {}", docs.len());
    let mut problems = Vec::new();
    for (from, doc) in &docs {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default();
        let kind = doc["kind"].as_str().unwrap_or_default();
        let Some(schema) = schema_for(&schemas, api_version, kind) else {
            problems.push(format!("{from}: no schema for {api_version}/{kind}"));
            continue;
        };
        let mut found = Vec::new();
        check(&schema, doc, kind, &mut found);
        problems.extend(found.into_iter().map(|p| format!("{from}: {p}")));
        if kind == "Deployment" {
            let selector = &doc["spec"]["selector"]["matchLabels"];
            let labels = &doc["spec"]["template"]["metadata"]["labels"];
            for (k, v) in selector.as_object().into_iter().flatten() {
                if labels.get(k) != Some(v) {
                    problems.push(format!("{from}: the selector's {k} is not a pod label"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_schema_check_catches_what_kubernetes_rejects() {
    let schemas: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/fixtures/kubernetes/schema.json"))
            .unwrap(),
    )
    .unwrap();
    let schema = schema_for(&schemas, "apps/v1", "Deployment").unwrap();
    let bad: Value = serde_saphyr::from_str(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: one\n  \
         selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    \
         spec:\n      containers:\n        - name: c\n          imagePullPolicy: Sometimes\n          \
         securityContext: {runAsNonRot: true}\n",
    )
    .unwrap();
    let mut problems = Vec::new();
    check(&schema, &bad, "Deployment", &mut problems);
    let text = problems.join("\n");
    assert!(text.contains("spec.replicas: expected"), "{text}");
    assert!(text.contains("`image` is required"), "{text}");
    assert!(text.contains("Sometimes"), "{text}");
    assert!(text.contains("unknown field `runAsNonRot`"), "{text}");
}

// --- Pod Security "restricted" ----------------------------------------------------------------

/// The pod specs of the workloads among `docs`.
fn pods(docs: &[(String, Value)]) -> Vec<(String, &Value)> {
    docs.iter()
        .filter_map(|(from, d)| {
            let pod = match d["kind"].as_str()? {
                "Pod" => &d["spec"],
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                    &d["spec"]["template"]["spec"]
                }
                "CronJob" => &d["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                _ => return None,
            };
            Some((format!("{from} ({} {})", d["kind"], d["metadata"]["name"]), pod))
        })
        .collect()
}

/// What Pod Security "restricted" (which includes "baseline") finds wrong with `pod`.
fn restricted_violations(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let pod_sc = &pod["securityContext"];
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[host] == true {
            out.push(format!("{host} must not be true"));
        }
    }
    const VOLUMES: [&str; 8] = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        let kinds: BTreeSet<&str> = volume
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "name")
            .collect();
        for kind in kinds {
            if !VOLUMES.contains(&kind) {
                out.push(format!("volume {}: type {kind} is not allowed", volume["name"]));
            }
        }
    }
    for (key, value) in [("seccompProfile", &pod_sc["seccompProfile"]["type"])] {
        if !value.is_null()
            && !["RuntimeDefault", "Localhost"].contains(&value.as_str().unwrap_or(""))
        {
            out.push(format!("pod {key} must be RuntimeDefault or Localhost"));
        }
    }
    if pod_sc["runAsUser"] == 0 {
        out.push("pod runAsUser must not be 0".into());
    }
    for sysctl in pod_sc["sysctls"].as_array().into_iter().flatten() {
        out.push(format!("sysctl {} is not in the safe set", sysctl["name"]));
    }
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod[*k].as_array().into_iter().flatten());
    for c in containers {
        let name = c["name"].as_str().unwrap_or("?");
        let sc = &c["securityContext"];
        if sc["privileged"] == true {
            out.push(format!("{name}: privileged"));
        }
        if sc["allowPrivilegeEscalation"] != false {
            out.push(format!("{name}: allowPrivilegeEscalation must be false"));
        }
        if sc["runAsNonRoot"] != true
            && !(pod_sc["runAsNonRoot"] == true && sc["runAsNonRoot"].is_null())
        {
            out.push(format!("{name}: runAsNonRoot must be true (pod or container)"));
        }
        if sc["runAsUser"] == 0 {
            out.push(format!("{name}: runAsUser must not be 0"));
        }
        let seccomp = if sc["seccompProfile"]["type"].is_null() {
            &pod_sc["seccompProfile"]["type"]
        } else {
            &sc["seccompProfile"]["type"]
        };
        if !["RuntimeDefault", "Localhost"].contains(&seccomp.as_str().unwrap_or("")) {
            out.push(format!(
                "{name}: seccompProfile.type must be RuntimeDefault (pod or container)"
            ));
        }
        let drop = sc["capabilities"]["drop"].as_array();
        if !drop.is_some_and(|d| d.iter().any(|c| c == "ALL")) {
            out.push(format!("{name}: capabilities must drop ALL"));
        }
        for add in sc["capabilities"]["add"].as_array().into_iter().flatten() {
            if add != "NET_BIND_SERVICE" {
                out.push(format!("{name}: capability {add} may not be added"));
            }
        }
        if !sc["procMount"].is_null() && sc["procMount"] != "Default" {
            out.push(format!("{name}: procMount must be Default"));
        }
        for port in c["ports"].as_array().into_iter().flatten() {
            if port["hostPort"].as_u64().is_some_and(|p| p != 0) {
                out.push(format!("{name}: hostPort is not allowed"));
            }
        }
        let image = c["image"].as_str().unwrap_or("");
        let pinned = image.contains("@sha256:")
            || image.rsplit_once(':').is_some_and(|(repo, tag)| {
                !tag.contains('/') && !repo.is_empty() && tag != "latest" && !tag.is_empty()
            });
        if !pinned {
            out.push(format!("{name}: image `{image}` must be pinned (a version tag or a digest)"));
        }
    }
    out
}

#[test]
fn every_pod_passes_pod_security_restricted_with_a_pinned_image() {
    let docs = manifests();
    let pods = pods(&docs);
    assert!(pods.len() >= 2, "the sidecar and the standalone Deployment");
    let mut problems = Vec::new();
    for (from, pod) in &pods {
        problems.extend(restricted_violations(pod).into_iter().map(|p| format!("{from}: {p}")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Our image is pinned to this version (the release workflow publishes that tag).
    let version = env!("CARGO_PKG_VERSION");
    for (from, pod) in &pods {
        for c in pod["containers"].as_array().into_iter().flatten() {
            let image = c["image"].as_str().unwrap_or("");
            if image.contains("immuta-gitops/immuta-gitops") {
                assert!(image.ends_with(&format!(":{version}")), "{from}: {image}");
            }
        }
    }
}

#[test]
fn the_restricted_check_finds_each_violation() {
    let pod: Value = serde_saphyr::from_str(
        "hostNetwork: true\nsecurityContext: {runAsUser: 0}\nvolumes:\n  - {name: h, hostPath: {path: /}}\n\
         containers:\n  - name: c\n    image: x:latest\n    securityContext:\n      privileged: true\n      \
         capabilities: {add: [SYS_ADMIN]}\n    ports: [{containerPort: 80, hostPort: 80}]\n",
    )
    .unwrap();
    let found = restricted_violations(&pod).join("\n");
    for expected in [
        "hostNetwork",
        "hostPath",
        "pod runAsUser",
        "privileged",
        "allowPrivilegeEscalation",
        "runAsNonRoot",
        "seccompProfile",
        "drop ALL",
        "SYS_ADMIN",
        "hostPort",
        "pinned",
    ] {
        assert!(found.contains(expected), "{expected} not found in:\n{found}");
    }
}
