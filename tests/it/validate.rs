//! The spec format end to end: `validate` and `schema` through the real binary.

use immuta_gitops::diagnostic::Severity;
use immuta_gitops::snapshot::Snapshot;
use immuta_gitops::spec::{self, LoadOptions};

use crate::support::{SpecDir, bin, fixture, output_text, repo_root};

#[test]
fn the_example_tenant_validates_clean_without_any_environment() {
    let out = bin().args(["validate", "specs-example"]).env_clear().output().unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("valid: 0 errors, 0 warnings"), "{text}");
    assert!(
        text.contains(
            "(1 license key, 2 purposes, 2 data source connections, 6 policies, 2 projects)"
        ),
        "{text}"
    );
}

#[test]
fn a_broken_tree_gets_one_diagnostic_per_problem_and_exit_1() {
    let out = bin().args(["validate", "tests/fixtures/broken"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("broken_tree_text", stdout);
}

#[test]
fn json_output_is_machine_readable() {
    let out =
        bin().args(["validate", "tests/fixtures/broken", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["valid"], false);
    assert_eq!(report["summary"], serde_json::json!({"errors": 6, "warnings": 1}));
    let diags = report["diagnostics"].as_array().unwrap();
    let files: Vec<&str> = diags.iter().map(|d| d["file"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        [
            "bad-yaml.yaml",
            "duplicate-key.yaml",
            "duplicate-natural-key-b.yaml",
            "missing-env.yaml",
            "null-trap.yaml",
            "unknown-field.yaml",
            "wrong-type.yaml"
        ]
    );
    for d in diags {
        assert!(d["line"].as_u64().unwrap() > 0, "{d}");
        assert!(d["column"].as_u64().unwrap() > 0, "{d}");
        assert!(d["hint"].as_str().is_some_and(|h| !h.is_empty()), "{d}");
    }
    let null_trap = diags.iter().find(|d| d["code"] == "null-trap").unwrap();
    assert_eq!(null_trap["path"], "$.actions[0].rules[0].config.maskingConfig.type");
    assert_eq!((null_trap["line"].as_u64(), null_trap["column"].as_u64()), (Some(11), Some(19)));
}

#[test]
fn strict_turns_warnings_into_errors() {
    let dir = SpecDir::new();
    dir.write("p.yaml", "name: P\nacknowledgment: typo\n");
    let out = bin().arg("validate").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(output_text(&out).contains("did you mean `acknowledgement`?"));
    let out = bin().arg("validate").arg(dir.path()).arg("--strict").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(output_text(&out).contains("error[unknown-field]"));
}

#[test]
fn every_payload_example_of_the_immuta_docs_validates_without_errors() {
    let env =
        ["DATABRICKS_PASSWORD", "service_principal_clientId", "clientSecret"].map(String::from);
    let mut warnings = Vec::new();
    let dir = fixture("immuta-api-examples");
    let mut names: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names.len(), 14);
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        // Each example is its own tree: several reuse the same natural key.
        let snapshot = Snapshot::from_texts([(name.clone(), text)]);
        let (desired, diags) = spec::load(&snapshot, &LoadOptions::with_env(env.clone()));
        let errors: Vec<String> =
            diags.iter().filter(|d| d.severity == Severity::Error).map(|d| d.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        assert!(!desired.objects.is_empty(), "{name}");
        warnings.extend(diags.iter().map(|d| d.to_string()));
    }
    // Expected warnings only, each one a user should see:
    // - example-03 (Databricks OAuth, cut off in the docs) has no `handler`; Immuta needs one
    //   and the `httpPath` says which;
    // - example-07's owner-restriction policy keeps the docs' `type: ...` placeholder, which is
    //   no masking type;
    // - example-10's projects name purposes that no spec in the example defines (a warning
    //   offline; `plan` checks them against the tenant).
    insta::assert_snapshot!("immuta_api_example_warnings", warnings.join("\n"));
}

#[test]
fn a_canary_secret_never_appears_in_any_output() {
    const CANARY_ENV: &str = "canary-from-env-8f3a1c";
    const CANARY_LITERAL: &str = "canary-literal-27d9e4";
    const CANARY_ENVFILE: &str = "canary-envfile-5b6c0d";
    const CANARY_FILE: &str = "canary-file-9e8d7c";
    let secrets = SpecDir::new();
    secrets.write("db-key", CANARY_FILE);
    let dir = SpecDir::new();
    dir.write("immuta-gitops.yaml", "envFiles: [dev.env]\n");
    dir.write(
        "dev.env",
        &format!("FROM_ENV_FILE={CANARY_ENVFILE}\nBROKEN LINE {CANARY_ENVFILE}\n"),
    );
    dir.write(
        "ds.yaml",
        &format!(
            "connectionKey: canary\nconnection:\n  handler: Snowflake\n  hostname: h\n  warehouse: w\n  \
             password: ${{CANARY_PW}}\n  token: {CANARY_LITERAL}\n  clientSecret: ${{FROM_ENV_FILE}}\n  \
             userFiles:\n    - keyName: PRIV_KEY_FILE\n      content: ${{file:db-key}}\n  \
             privateKey: \"{CANARY_LITERAL}${{\"\n  port: {CANARY_LITERAL}\n"
        ),
    );
    for format in ["text", "json"] {
        for strict in [false, true] {
            let mut cmd = bin();
            cmd.args(["validate", "--format", format])
                .arg(dir.path())
                .arg("--secrets-dir")
                .arg(secrets.path())
                .env("CANARY_PW", CANARY_ENV);
            if strict {
                cmd.arg("--strict");
            }
            let out = cmd.output().unwrap();
            let text = output_text(&out);
            assert_eq!(out.status.code(), Some(1), "{text}");
            for canary in [CANARY_ENV, CANARY_LITERAL, CANARY_ENVFILE, CANARY_FILE] {
                assert!(
                    !text.contains(canary),
                    "{canary} leaked in {format} (strict: {strict}):\n{text}"
                );
            }
            // The problems are still reported, by name.
            assert!(text.contains("plaintext-secret"), "{text}");
            assert!(text.contains("placeholder"), "{text}");
        }
    }
}

#[test]
fn secret_files_must_exist_inside_the_secrets_dir() {
    let secrets = SpecDir::new();
    secrets.write("present", "value");
    let dir = SpecDir::new();
    dir.write(
        "ds.yaml",
        "connectionKey: c\nconnection:\n  handler: Databricks\n  hostname: h\n  httpPath: p\n  \
         password: ${file:present}\n  clientSecret: ${file:absent}\n  token: ${file:../../etc/passwd}\n",
    );
    let out = bin()
        .arg("validate")
        .arg(dir.path())
        .arg("--secrets-dir")
        .arg(secrets.path())
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("ds.yaml:7:17: error[secret-file]: secret file `absent` cannot be read"),
        "{text}"
    );
    assert!(
        text.contains(
            "ds.yaml:8:10: error[placeholder]: a `${file:...}` path must not contain `..`"
        ),
        "{text}"
    );
    assert!(!text.contains("`present`"), "{text}");
}

#[test]
fn a_missing_spec_root_is_a_clear_error() {
    let out = bin().args(["validate", "no/such/dir"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = output_text(&out);
    assert!(
        text.contains(
            "error: nothing was validated; pass the directory that holds your spec files"
        ),
        "{text}"
    );
    assert!(text.contains("spec root `no/such/dir` does not exist"), "{text}");
}

#[test]
fn the_committed_schemas_are_up_to_date() {
    for (file, generated, command) in [
        ("schema/spec.schema.json", spec::schema::spec_schema(), "schema"),
        ("schema/settings.schema.json", spec::schema::settings_schema(), "schema --settings"),
    ] {
        let committed = std::fs::read_to_string(repo_root().join(file)).unwrap_or_default();
        assert!(
            committed == generated,
            "{file} is stale: run `cargo run -q -- {command} > {file}` and commit the result"
        );
    }
    let out = bin().arg("schema").output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), spec::schema::spec_schema());
}

#[test]
fn every_example_spec_points_editors_at_the_schema() {
    let root = repo_root().join("specs-example");
    let mut stack = vec![root.clone()];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let first = text.lines().next().unwrap_or_default();
            let target =
                first.strip_prefix("# yaml-language-server: $schema=").unwrap_or_else(|| {
                    panic!("{} has no yaml-language-server modeline", path.display())
                });
            assert!(
                path.parent().unwrap().join(target).is_file(),
                "{}: {target} does not exist",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10);
}

#[test]
fn a_plan_saved_in_the_spec_root_is_not_a_spec() {
    let dir = SpecDir::new();
    dir.write("p.yaml", "name: P\n");
    // What `plan --out plan.json` run from the spec root leaves there.
    dir.write(
        "plan.json",
        r#"{"format_version": 1, "tenant": "sandbox", "changes": [], "fingerprint": {"specs": "a", "state": "b", "live": null}, "spec_root": "/x"}"#,
    );
    let out = bin().arg("validate").arg(dir.path()).output().unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1 valid object in 2 files"), "{text}");
}

/// The subset of JSON Schema draft-07 that `schemars` emits, checked strictly enough to catch a
/// schema that rejects a valid document. No JSON-Schema crate is a dependency, so this is a
/// small checker of its own; a keyword it does not know fails the test instead of being
/// silently ignored.
mod draft07 {
    use serde_json::{Map, Value};

    /// Annotations: no effect on validity.
    const ANNOTATIONS: &[&str] =
        &["$schema", "title", "description", "definitions", "default", "format", "examples"];

    /// Every reason `value` does not match `schema`, as `path: reason` lines.
    pub fn errors(root: &Value, schema: &Value, value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        check(root, schema, value, "$", &mut out);
        out
    }

    fn check(root: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return out.push(format!("{at}: nothing is allowed here")),
            Value::Object(s) => s,
            other => panic!("not a schema: {other}"),
        };
        for (keyword, arg) in schema {
            match keyword.as_str() {
                k if ANNOTATIONS.contains(&k) => {}
                "$ref" => {
                    let name = arg.as_str().and_then(|r| r.strip_prefix("#/definitions/"));
                    let target = name.and_then(|n| root["definitions"].get(n));
                    let target = target.unwrap_or_else(|| panic!("unresolved $ref {arg}"));
                    check(root, target, value, at, out);
                }
                "type" => {
                    let types: Vec<&str> = match arg {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        other => panic!("bad type {other}"),
                    };
                    if !types.iter().any(|t| has_type(value, t)) {
                        out.push(format!("{at}: expected {types:?}, found {value}"));
                    }
                }
                "enum" => {
                    if !arg.as_array().is_some_and(|vs| vs.contains(value)) {
                        out.push(format!("{at}: {value} is not one of {arg}"));
                    }
                }
                "const" if arg != value => out.push(format!("{at}: {value} is not {arg}")),
                "const" => {}
                "minimum" | "maximum" => {
                    if let (Some(n), Some(limit)) = (value.as_f64(), arg.as_f64())
                        && (if keyword == "minimum" { n < limit } else { n > limit })
                    {
                        out.push(format!("{at}: {n} is out of range ({keyword} {limit})"));
                    }
                }
                "required" => {
                    if let Value::Object(map) = value {
                        for field in arg.as_array().into_iter().flatten().filter_map(Value::as_str)
                        {
                            if !map.contains_key(field) {
                                out.push(format!("{at}: missing required `{field}`"));
                            }
                        }
                    }
                }
                "properties" | "additionalProperties" => {
                    if let Value::Object(map) = value {
                        properties(root, schema, keyword, map, at, out);
                    }
                }
                "items" => {
                    if let Value::Array(items) = value {
                        for (i, item) in items.iter().enumerate() {
                            check(root, arg, item, &format!("{at}[{i}]"), out);
                        }
                    }
                }
                "allOf" => {
                    for sub in arg.as_array().into_iter().flatten() {
                        check(root, sub, value, at, out);
                    }
                }
                "anyOf" | "oneOf" => {
                    let subs: Vec<&Value> = arg.as_array().into_iter().flatten().collect();
                    let matching = subs.iter().filter(|s| errors_at(root, s, value, at)).count();
                    let ok = if keyword == "anyOf" { matching >= 1 } else { matching == 1 };
                    if !ok {
                        out.push(format!("{at}: {matching} of the {keyword} branches match"));
                    }
                }
                "not" => {
                    if errors_at(root, arg, value, at) {
                        out.push(format!("{at}: matches a schema it must not match: {arg}"));
                    }
                }
                "if" => {
                    let branch = if errors_at(root, arg, value, at) { "then" } else { "else" };
                    if let Some(sub) = schema.get(branch) {
                        check(root, sub, value, at, out);
                    }
                }
                "then" | "else" => {} // through "if"
                other => panic!("the schema uses `{other}`, which this checker does not know"),
            }
        }
    }

    /// Whether `value` matches `schema` (no errors).
    fn errors_at(root: &Value, schema: &Value, value: &Value, at: &str) -> bool {
        let mut out = Vec::new();
        check(root, schema, value, at, &mut out);
        out.is_empty()
    }

    fn properties(
        root: &Value,
        schema: &Map<String, Value>,
        keyword: &str,
        map: &Map<String, Value>,
        at: &str,
        out: &mut Vec<String>,
    ) {
        let declared = schema.get("properties").and_then(Value::as_object);
        for (key, v) in map {
            let path = format!("{at}.{key}");
            match (keyword, declared.and_then(|d| d.get(key))) {
                ("properties", Some(sub)) => check(root, sub, v, &path, out),
                ("additionalProperties", None) => {
                    check(root, &schema["additionalProperties"], v, &path, out);
                }
                _ => {}
            }
        }
    }

    fn has_type(value: &Value, t: &str) -> bool {
        match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            other => panic!("unknown type {other}"),
        }
    }
}

/// Every document of a spec file as JSON (the `gitops:` block included: the schema covers it).
fn documents(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let json = path.extension().is_some_and(|e| e == "json");
    spec::node::parse_documents(&text, json, &spec::node::Limits::default())
        .into_iter()
        .map(|d| d.result.unwrap_or_else(|e| panic!("{}: {e:?}", path.display())).to_json())
        .collect()
}

#[test]
fn every_documented_example_and_example_spec_matches_the_schema() {
    let spec_schema: serde_json::Value =
        serde_json::from_str(&spec::schema::spec_schema()).unwrap();
    let settings_schema: serde_json::Value =
        serde_json::from_str(&spec::schema::settings_schema()).unwrap();
    let mut files = Vec::new();
    for dir in [fixture("immuta-api-examples"), repo_root().join("specs-example")] {
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if spec::is_spec_file(&path.to_string_lossy()) {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 14 + 11, "{files:#?}");
    let mut problems = Vec::new();
    for path in &files {
        let schema =
            if path.ends_with("immuta-gitops.yaml") { &settings_schema } else { &spec_schema };
        for (i, doc) in documents(path).iter().enumerate() {
            for e in draft07::errors(schema, schema, doc) {
                problems.push(format!("{} (document {}): {e}", path.display(), i + 1));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_schema_accepts_the_spellings_validate_accepts_and_still_rejects_errors() {
    let schema: serde_json::Value = serde_json::from_str(&spec::schema::spec_schema()).unwrap();
    let policy = |rule: serde_json::Value| {
        serde_json::json!({"policyKey": "k", "name": "K", "type": "data",
                           "actions": [{"rules": [rule]}]})
    };
    let valid = [
        policy(serde_json::json!({"type": "Minimization"})),
        policy(serde_json::json!({"type": "Time Restriction"})),
        policy(serde_json::json!({"type": "Purpose Restriction", "config": {"anything": 1}})),
        policy(serde_json::json!({"type": "Row Restriction By Custom Where Clause",
                                  "config": {"predicate": "a = 1"}})),
        policy(serde_json::json!({"type": "Row Restriction by User Entitlements",
                                  "config": {"matches": [{"type": "attribute"}]}})),
        serde_json::json!({"licensekey": "${LICENSE}"}),
        serde_json::json!({"licenseKey": "${LICENSE}"}),
        serde_json::json!({"projectKey": "p", "name": "P", "allowedMaskedJoins": true}),
        serde_json::json!({"connectionKey": "c", "connection": {"hostname": "h", "userFiles":
            [{"key": "PRIV_KEY_FILE", "fileName": "k.p8", "content": "${K}"}]}}),
    ];
    for doc in &valid {
        let errors = draft07::errors(&schema, &schema, doc);
        assert!(errors.is_empty(), "{doc}: {errors:#?}");
        // The loader agrees (errors only; a missing handler is a warning).
        let text = serde_json::to_string(doc).unwrap();
        let (_, diags) = spec::load(
            &Snapshot::from_texts([("d.json", text)]),
            &LoadOptions::with_env(["LICENSE".to_owned(), "K".to_owned()]),
        );
        assert!(diags.iter().all(|d| d.severity == Severity::Warning), "{doc}: {diags:#?}");
    }
    let invalid = [
        policy(serde_json::json!({"type": "Masking"})),
        policy(serde_json::json!({"type": "Row Restriction by Custom Where Clause"})),
        policy(serde_json::json!({"type": "Row Restriction BY User Entitlements", "config": {}})),
        serde_json::json!({"licenseKey": "a", "licensekey": "b"}),
        serde_json::json!({"projectKey": "p", "name": "P", "allowMaskedJoins": true,
                           "allowedMaskedJoins": true}),
        serde_json::json!({"projectKey": "p", "policyKey": "p", "name": "P"}),
        serde_json::json!({"name": "P", "subpurposes": "not a list"}),
    ];
    for doc in &invalid {
        assert!(!draft07::errors(&schema, &schema, doc).is_empty(), "accepted: {doc}");
        let text = serde_json::to_string(doc).unwrap();
        let (_, diags) =
            spec::load(&Snapshot::from_texts([("d.json", text)]), &LoadOptions::default());
        assert!(diags.iter().any(|d| d.severity == Severity::Error), "{doc}: {diags:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_leaves_a_purpose_only_the_tenant_has_to_the_tenant() {
    let env = crate::support::tenant::Env::start().await;
    env.specs.write("p.yaml", "projectKey: p\nname: P\npurposes: [On Tenant]\n");
    // Offline, under --strict: still a warning (only the tenant can tell).
    let specs = env.specs.path().display().to_string();
    let out = bin().args(["validate", "--strict", &specs]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(output_text(&out).contains("warning[unknown-reference]"));
    // The tenant has it: the plan goes through, strict or not.
    env.by_hand(
        reqwest::Method::POST,
        "/api/v2/purpose",
        Some(&serde_json::json!({"name": "On Tenant"})),
    )
    .await;
    env.plan(&["--strict"]).await.must_exit(0);
    // A purpose neither has is an error then.
    env.specs.write("p.yaml", "projectKey: p\nname: P\npurposes: [Nowhere]\n");
    let run = env.plan(&["--strict"]).await.must_exit(1);
    run.stderr_has("names purpose `Nowhere`, which no spec defines and the tenant does not have");
}
