//! Validation tests: documents through the real loader, diagnostics as the user reads them.

use crate::diagnostic::Diagnostic;
use crate::snapshot::Snapshot;
use crate::spec::model::{RULE_TYPES, RuleType};
use crate::spec::{Desired, LoadOptions, load};

fn run(files: &[(&str, &str)]) -> (Desired, Vec<Diagnostic>) {
    let snapshot = Snapshot::from_texts(files.iter().copied());
    load(&snapshot, &LoadOptions::with_env(["LICENSE".to_string()]))
}

/// Each diagnostic as the user reads it: `file:line:col: severity[code]: message`, path, hint.
fn shown(diags: &[Diagnostic]) -> Vec<String> {
    diags.iter().map(ToString::to_string).collect()
}

#[test]
fn subpurpose_names_must_extend_their_parents_name() {
    let (desired, diags) = run(&[(
        "p.yaml",
        "name: Research\nsubpurposes:\n  - name: Research.Clinical\n    subpurposes:\n      \
             - name: Clinical.Trials\n  - name: ResearchX\n  - name: Research.\n",
    )]);
    assert!(desired.objects.is_empty());
    assert_eq!(
        shown(&diags),
        [
            "p.yaml:5:15: error[subpurpose-name]: subpurpose `Clinical.Trials` is not named \
                 after its parent `Research.Clinical`\n  at: $.subpurposes[0].subpurposes[0].name\n  \
                 hint: subpurpose names are full dotted names: write `name: Research.Clinical.Trials`",
            "p.yaml:6:11: error[subpurpose-name]: subpurpose `ResearchX` is not named after its \
                 parent `Research`\n  at: $.subpurposes[1].name\n  \
                 hint: subpurpose names are full dotted names: write `name: Research.ResearchX`",
            "p.yaml:7:11: error[subpurpose-name]: subpurpose `Research.` is not named after its \
                 parent `Research`\n  at: $.subpurposes[2].name\n  \
                 hint: subpurpose names are full dotted names: write `name: Research.<name>`",
        ]
    );
}

#[test]
fn actions_of_the_wrong_shape_for_the_policy_type_are_one_error_each() {
    let (desired, diags) = run(&[
        (
            "data.yaml",
            "policyKey: mask\nname: Mask\ntype: data\nactions:\n  rules:\n    - type: Masking\n",
        ),
        ("sub.yaml", "policyKey: sub\nname: Sub\ntype: subscription\nactions:\n  - type: anyone\n"),
    ]);
    assert!(desired.objects.is_empty());
    assert_eq!(
        shown(&diags),
        [
            "data.yaml:5:3: error[actions-shape]: a data policy's `actions` must be a list of \
                 `{rules: [...]}`, not a mapping\n  at: $.actions\n  hint: write `actions:` followed \
                 by `- rules: [...]` items; a mapping belongs to subscription policies (`type: \
                 subscription`)",
            "sub.yaml:5:3: error[actions-shape]: a subscription policy's `actions` must be a \
                 mapping, not a list\n  at: $.actions\n  hint: write `actions: {type: \
                 anyone|approval|entitlements|manual, ...}`; lists of `{rules: [...]}` belong to \
                 data policies (`type: data`)",
        ]
    );
}

#[test]
fn the_same_natural_key_in_two_documents_of_one_file_is_an_error_at_the_second() {
    let (desired, diags) = run(&[(
        "two.yaml",
        "policyKey: k\nname: A\ntype: subscription\nactions: {type: anyone}\n---\n# again\n\
             policyKey: k\nname: B\ntype: subscription\nactions: {type: manual}\n---\nname: P\n\
             ---\nname: P\n",
    )]);
    assert_eq!(
        shown(&diags),
        [
            "two.yaml:7:12: error[duplicate-object]: policy `k` is defined twice (first at \
                 two.yaml:1:12)\n  hint: keep one definition; every object must be defined \
                 exactly once",
            "two.yaml:14:7: error[duplicate-object]: purpose `P` is defined twice (first at \
                 two.yaml:12:7)\n  hint: keep one definition; every object must be defined \
                 exactly once",
        ]
    );
    // The first definition of each is kept (nothing is applied while errors exist).
    let names: Vec<&str> = desired.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(names, ["P", "k"]);
    assert_eq!(desired.objects[1].payload["name"], "A");
}

#[test]
fn documented_spelling_drift_loads_clean_and_is_posted_as_written() {
    let (desired, diags) = run(&[(
        "drift.yaml",
        "projectKey: p\nname: P\nallowedMaskedJoins: true\nsubscriptionPolicy:\n  type: \
             approval\n  approvals:\n    - requiredPermissions: OWNER\n      \
             specificApproverRequired: false\n---\npolicyKey: rows\nname: Rows\ntype: data\n\
             actions:\n  - rules:\n      - type: Row Restriction By Custom Where Clause\n        \
             config: {predicate: \"a = 1\"}\n      - type: Row Restriction by User Entitlements\n\
             \x20       config: {matches: [{type: attribute, attribute: A, tag: T}]}\n---\n\
             licensekey: ${LICENSE}\n---\nconnectionKey: c\nconnection:\n  handler: Snowflake\n  \
             hostname: h\n  warehouse: w\n  database: d\n  userFiles:\n    - key: PRIV_KEY_FILE\n      \
             fileName: key.p8\n      content: ${LICENSE}\n",
    )]);
    assert_eq!(shown(&diags), Vec::<String>::new());
    assert_eq!(desired.objects.len(), 4);
    let payload = |key: &str| &desired.objects.iter().find(|o| o.key == key).unwrap().payload;
    assert_eq!(payload("p")["allowedMaskedJoins"], true);
    assert_eq!(payload("p")["subscriptionPolicy"]["approvals"][0]["requiredPermissions"], "OWNER");
    let rules = &payload("rows")["actions"][0]["rules"];
    assert_eq!(rules[0]["type"], "Row Restriction By Custom Where Clause");
    assert_eq!(rules[1]["type"], "Row Restriction by User Entitlements");
    assert_eq!(payload("${LICENSE}"), &serde_json::json!({"licensekey": "${LICENSE}"}));
    assert_eq!(payload("c")["connection"]["userFiles"][0]["fileName"], "key.p8");
}

#[test]
fn a_field_written_under_both_spellings_is_an_error_at_the_second() {
    let (desired, diags) = run(&[(
        "both.yaml",
        "projectKey: p\nname: P\nallowMaskedJoins: true\nsubscriptionPolicy:\n  type: \
             approval\n  approvals:\n    - requiredPermission: OWNER\n      \
             requiredPermissions: OWNER\nallowedMaskedJoins: true\n",
    )]);
    assert!(desired.objects.is_empty());
    let hint = "hint: keep one of them: Immuta documents both spellings of this field, and \
                    which one a tenant reads when both are sent is unknown";
    assert_eq!(
        shown(&diags),
        [
            format!(
                "both.yaml:8:7: error[duplicate-key]: `requiredPermission` is written twice, \
                     also as `requiredPermissions`\n  at: \
                     $.subscriptionPolicy.approvals[0].requiredPermissions\n  {hint}"
            ),
            format!(
                "both.yaml:9:1: error[duplicate-key]: `allowMaskedJoins` is written twice, \
                     also as `allowedMaskedJoins`\n  at: $.allowedMaskedJoins\n  {hint}"
            ),
        ]
    );
}

#[test]
fn the_schema_knows_the_natural_keys_the_loader_infers_kinds_from() {
    let names: Vec<&str> = crate::spec::document::KEYS.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, crate::spec::model::NATURAL_KEYS);
}

#[test]
fn rule_type_spellings_are_exactly_what_the_model_accepts() {
    let mut all = Vec::new();
    for kind in [
        RuleType::Masking,
        RuleType::Minimization,
        RuleType::PurposeRestriction,
        RuleType::TimeRestriction,
        RuleType::RowRestrictionByUserEntitlements,
        RuleType::RowRestrictionByCustomWhereClause,
    ] {
        for spelling in kind.spellings() {
            let parsed: RuleType = serde_json::from_value(serde_json::json!(spelling)).unwrap();
            assert_eq!(parsed, kind, "{spelling}");
            all.push(*spelling);
        }
    }
    assert_eq!(all, RULE_TYPES);
    let lower = serde_json::from_value::<RuleType>(serde_json::json!("masking"));
    assert!(lower.is_err());
}

#[test]
fn a_connection_without_a_handler_is_a_warning_naming_the_likely_one() {
    let (desired, diags) = run(&[
        ("dbx.yaml", "connectionKey: dbx\nconnection:\n  hostname: h\n  httpPath: p\n"),
        ("other.yaml", "connectionKey: o\nconnection: {hostname: h}\n"),
    ]);
    assert_eq!(desired.objects.len(), 2, "a warning: the objects still load");
    assert_eq!(
        shown(&diags),
        [
            "dbx.yaml:3:3: warning[missing-field]: the connection has no `handler`: Immuta \
                 needs it to know which kind of database to connect to\n  at: $.connection\n  \
                 hint: add `handler: Databricks` (the connection looks like Databricks)",
            "other.yaml:2:13: warning[missing-field]: the connection has no `handler`: Immuta \
                 needs it to know which kind of database to connect to\n  at: $.connection\n  \
                 hint: add `handler: ...`, one of Snowflake, Databricks, Redshift, Google BigQuery, \
                 BigQuery, Presto, Trino, Athena",
        ]
    );
}

/// The diagnostics of one data-source document, as `CODE: message` lines.
fn connection_diags(connection: &str) -> Vec<String> {
    let text = format!("connectionKey: c\nconnection:\n{connection}");
    let (_, diags) = run(&[("ds.yaml", text.as_str())]);
    diags
        .iter()
        .map(|d| format!("{}: {}", if d.is_error() { "error" } else { "warning" }, d.message))
        .collect()
}

#[test]
fn connections_are_checked_per_handler_and_authentication_method() {
    // Snowflake userPassword needs a password; keyPair a PRIV_KEY_FILE key file.
    assert_eq!(
        connection_diags(
            "  handler: Snowflake\n  hostname: h\n  warehouse: w\n  database: d\n  authenticationMethod: userPassword\n  username: u\n"
        ),
        [
            "error: a Snowflake connection with `authenticationMethod: userPassword` needs `password`"
        ]
    );
    assert_eq!(
        connection_diags(
            "  handler: Snowflake\n  hostname: h\n  warehouse: w\n  database: d\n  authenticationMethod: keyPair\n  username: u\n  userFiles:\n    - {keyName: OTHER, content: \"${LICENSE}\"}\n"
        ),
        [
            "error: a Snowflake connection with `authenticationMethod: keyPair` needs a `userFiles` entry with `keyName: PRIV_KEY_FILE`"
        ]
    );
    // Databricks token: the token as `token` or (the docs' example) as `password`.
    assert!(connection_diags("  handler: Databricks\n  hostname: h\n  httpPath: /p\n  authenticationMethod: token\n  password: ${LICENSE}\n").is_empty());
    assert_eq!(
        connection_diags(
            "  handler: Databricks\n  hostname: h\n  httpPath: /p\n  authenticationMethod: token\n"
        ),
        [
            "error: a Databricks connection with `authenticationMethod: token` needs `token` or `password`"
        ]
    );
    // Databricks oAuthM2M: clientId, audience and useCertificate; clientSecret without a
    // certificate, certificateThumbprint with one.
    assert_eq!(
        connection_diags(
            "  handler: Databricks\n  hostname: h\n  httpPath: /p\n  authenticationMethod: oAuthM2M\n  useCertificate: false\n"
        ),
        ["error: a Databricks connection with `authenticationMethod: oAuthM2M` needs `clientId`, \
             `audience` and `clientSecret`"]
    );
    assert!(connection_diags("  handler: Databricks\n  hostname: h\n  httpPath: /p\n  authenticationMethod: oAuthM2M\n  clientId: i\n  audience: a\n  useCertificate: true\n  certificateThumbprint: t\n").is_empty());
    // Redshift okta: idpHost, appID and role, all known fields.
    assert_eq!(
        connection_diags(
            "  handler: Redshift\n  hostname: h\n  schema: s\n  username: u\n  password: ${LICENSE}\n  authenticationMethod: okta\n  idpHost: okta.example.com\n"
        ),
        ["error: a Redshift connection with `authenticationMethod: okta` needs `appID` and `role`"]
    );
    assert!(connection_diags("  handler: Redshift\n  hostname: h\n  schema: s\n  username: u\n  password: ${LICENSE}\n  authenticationMethod: okta\n  idpHost: i\n  appID: a\n  role: r\n").is_empty());
    // BigQuery: no hostname, a KeyFilePath key file.
    assert!(connection_diags("  handler: Google BigQuery\n  sid: proj\n  userFiles:\n    - {keyName: KeyFilePath, content: \"${LICENSE}\"}\n").is_empty());
    assert_eq!(
        connection_diags("  handler: BigQuery\n  sid: proj\n"),
        ["error: a BigQuery connection needs a `userFiles` entry with `keyName: KeyFilePath`"]
    );
    // Unknown methods are warnings; the older docs' PRIV_KEY_FILE is known, and its password a
    // warning.
    assert_eq!(
        connection_diags(
            "  handler: Snowflake\n  hostname: h\n  warehouse: w\n  database: d\n  authenticationMethod: kerberos\n"
        ),
        ["warning: unknown authenticationMethod `kerberos` for a Snowflake connection"]
    );
    assert_eq!(
        connection_diags(
            "  handler: Snowflake\n  hostname: h\n  warehouse: w\n  database: d\n  authenticationMethod: PRIV_KEY_FILE\n  password: ${LICENSE}\n  userFiles:\n    - {keyName: PRIV_KEY_FILE, content: \"${LICENSE}\"}\n"
        ),
        [
            "warning: a Snowflake connection with `authenticationMethod: PRIV_KEY_FILE` has a `password`: the docs say not to give a password with PRIV_KEY_FILE",
        ]
    );
    // Without an authenticationMethod (as Immuta's own examples), no conditions apply.
    assert!(connection_diags("  handler: Databricks\n  hostname: h\n  httpPath: /p\n  username: token\n  password: ${LICENSE}\n").is_empty());
}

#[test]
fn the_native_schema_format_must_contain_immuta_and_a_table_may_be_named_table() {
    let text = "connectionKey: c\nconnection: {handler: Snowflake, hostname: h, warehouse: w, database: d}\n\
                nameTemplate:\n  nativeSchemaFormat: <schema>_native\n\
                sources:\n  - {table: T, schema: S}\n  - {table: T, schema: S}\n  - {table: U, tableName: U, schema: S}\n";
    let (desired, diags) = run(&[("ds.yaml", text)]);
    let shown: Vec<String> = diags.iter().map(|d| d.message.clone()).collect();
    assert_eq!(
        shown,
        [
            "`nativeSchemaFormat` `<schema>_native` does not contain `_immuta`",
            "table `S.T` is listed twice (first at line 6)",
            "a `sources` entry names its table twice, as `tableName` and as `table`",
        ]
    );
    assert!(diags.iter().all(|d| d.is_error()));
    let ok = "connectionKey: c\nconnection: {handler: Snowflake, hostname: h, warehouse: w, database: d}\n\
              nameTemplate: {nativeSchemaFormat: <schema>_immuta}\nsources:\n  - {table: T, schema: S}\n";
    let (desired_ok, diags) = run(&[("ds.yaml", ok)]);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(desired_ok.objects[0].payload["sources"][0]["table"], "T", "posted as written");
    drop(desired);
}

#[test]
fn documented_fields_are_known() {
    let (_, diags) = run(&[(
        "p.yaml",
        "name: R\nkAnonNoiseReduction: Small\nsubpurposes:\n  - name: R.A\n    description: what A is\n",
    )]);
    assert!(diags.is_empty(), "{diags:?}");
}

/// The errors of `files`, as `code: message` (positions vary with the YAML).
fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let (_, diags) = run(files);
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {}", d.code.as_str(), d.message))
        .collect()
}

#[test]
fn unknown_options_inside_gitops_are_errors_never_posted() {
    let (desired, diags) = run(&[("p.yaml", "name: R\ngitops: {prun: false}\n")]);
    assert!(desired.objects.is_empty());
    let d = diags.iter().find(|d| d.is_error()).expect("an error");
    assert_eq!(d.message, "unknown option `prun` in `gitops:`");
    let hint = d.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("did you mean `prune`?") && hint.contains("never posted"), "{hint}");
    // Unknown fields outside `gitops:` stay warnings (they are posted as written).
    let (desired, diags) = run(&[("p.yaml", "name: R\ndescriptio: x\n")]);
    assert_eq!(desired.objects.len(), 1);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
}

#[test]
fn a_purpose_defined_twice_is_an_error_whichever_comes_first() {
    let root = "name: R\nsubpurposes:\n  - name: R.A\n";
    let alone = "name: R.A\n";
    for files in [[("a.yaml", root), ("b.yaml", alone)], [("a.yaml", alone), ("b.yaml", root)]] {
        let e = errors(&files);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("purpose `R.A` is defined twice"), "{e:?}");
    }
}

#[test]
fn empty_or_blank_natural_keys_are_errors() {
    for (doc, field) in [
        ("policyKey: ''\nname: M\ntype: subscription\nactions: {type: anyone}\n", "policyKey"),
        ("projectKey: '   '\nname: P\n", "projectKey"),
        ("name: ' '\n", "name"),
        ("name: R\nsubpurposes:\n  - name: ''\n", "name"),
    ] {
        let e = errors(&[("x.yaml", doc)]);
        assert!(
            e.iter().any(|m| m
                == &format!("invalid-value: `{field}` is empty: it is the object's natural key")),
            "{doc}: {e:?}"
        );
    }
}

#[test]
fn natural_keys_and_name_templates_may_not_hold_placeholders() {
    let e = errors(&[("p.yaml", "projectKey: proj-${LICENSE}\nname: P\n")]);
    assert!(e.iter().any(|m| m.starts_with("placeholder: `projectKey`")), "{e:?}");
    let e = errors(&[("p.yaml", "name: R\nsubpurposes:\n  - name: R.${LICENSE}\n")]);
    assert!(e.iter().any(|m| m.starts_with("placeholder: `name`")), "{e:?}");
    let ds = "connectionKey: c\nconnection: {handler: PostgreSQL, hostname: h, port: 5432, \
              database: d, username: u, password: '${LICENSE}'}\nnameTemplate:\n  \
              dataSourceFormat: '<table>-${LICENSE}'\nsources:\n  - {all: true}\n";
    let e = errors(&[("ds.yaml", ds)]);
    assert!(e.iter().any(|m| m.starts_with("placeholder: `nameTemplate` holds")), "{e:?}");
    // A license key is a secret: its placeholder is what it should be.
    assert!(errors(&[("l.yaml", "licenseKey: ${LICENSE}\n")]).is_empty());
}
