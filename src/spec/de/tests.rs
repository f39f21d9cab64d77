use serde::Deserialize;

use super::*;
use crate::spec::node::{Limits, parse_documents};

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Inner {
    #[serde(alias = "requiredPermissions")]
    required_permission: Option<String>,
    count: Option<u16>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Doc {
    policy_key: String,
    staged: Option<bool>,
    password: Option<String>,
    items: Option<Vec<Inner>>,
    kind: Option<Kind>,
}

#[derive(Debug, Deserialize, PartialEq)]
enum Kind {
    #[serde(rename = "subscription")]
    Subscription,
    #[serde(rename = "data")]
    Data,
}

fn run(text: &str) -> Checked<Doc> {
    let docs = parse_documents(text, false, &Limits::default());
    check::<Doc>(docs[0].result.as_ref().unwrap())
}

#[test]
fn a_valid_document_passes_with_aliases() {
    let c = run("policyKey: k\nitems:\n  - requiredPermissions: OWNER\n");
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.value.unwrap().items.unwrap()[0].required_permission.as_deref(), Some("OWNER"));
}

#[test]
fn every_type_error_is_reported_with_its_position() {
    let c = run(
        "policyKey: k\nstaged: yes-please\npassword: 12345\nitems:\n  - count: 70000\n  - count: x\n",
    );
    let got: Vec<_> = c
        .errors
        .iter()
        .map(|e| (path_string(e.path.as_ref().unwrap()), e.pos.unwrap().line))
        .collect();
    assert_eq!(
        got,
        [
            ("$.staged".to_string(), 2),
            ("$.password".to_string(), 3),
            ("$.items[0].count".to_string(), 5),
            ("$.items[1].count".to_string(), 6),
        ]
    );
    assert!(c.errors.iter().all(|e| !e.message.contains("12345")), "{:?}", c.errors);
    assert!(c.errors[1].message.contains("quote the value"));
}

#[test]
fn a_missing_required_field_is_reported_once() {
    let c = run("staged: true\n");
    assert_eq!(c.errors.len(), 1);
    assert_eq!(c.errors[0].kind, ErrorKind::MissingField("policyKey".into()));
    let c = run("policyKey: [1]\n");
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    assert!(c.errors[0].message.contains("expected a string"));
}

#[test]
fn unknown_fields_get_a_suggestion_from_the_struct_fields() {
    let c = run("policyKey: k\nstagged: true\nitems:\n  - requiredPermision: OWNER\n    zzz: 1\n");
    assert!(c.errors.is_empty());
    let got: Vec<_> = c
        .unknown_fields
        .iter()
        .map(|u| (u.key.as_str(), u.suggestion.as_deref(), u.pos.line))
        .collect();
    assert_eq!(
        got,
        [
            ("stagged", Some("staged"), 2),
            ("requiredPermision", Some("requiredPermission"), 4),
            ("zzz", None, 5)
        ]
    );
}

#[test]
fn unknown_enum_values_suggest_the_closest() {
    let c = run("policyKey: k\nkind: Data\n");
    assert!(c.errors[0].message.contains("did you mean `data`"), "{}", c.errors[0].message);
}

#[test]
fn paths_quote_unusual_keys() {
    assert_eq!(
        path_string(&[Seg::Key("a b".into()), Seg::Index(2), Seg::Key("c".into())]),
        "$[\"a b\"][2].c"
    );
}
