//! Checks across files: the same natural key defined twice, the same purpose defined twice
//! (subpurposes share the purpose namespace), and projects naming purposes nobody defines.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{Code, Diagnostic, Location};
use crate::spec::de;
use crate::spec::text::shown;
use crate::spec::{Kind, LoadOptions, Object};

/// Checks across files: duplicate natural keys and references between objects.
pub(crate) fn across(
    objects: &[Object],
    options: &LoadOptions,
    diags: &mut Vec<Diagnostic>,
) -> Vec<bool> {
    let mut keep = vec![true; objects.len()];
    // The same natural key twice.
    let mut first: BTreeMap<(Kind, &str), &Location> = BTreeMap::new();
    for (i, o) in objects.iter().enumerate() {
        if let Some(prev) = first.get(&(o.kind, o.key.as_str())) {
            let what = match o.kind {
                Kind::License if o.key.starts_with("sha256:") => "the same license key".to_owned(),
                kind => format!("{} `{}`", kind.noun(), shown(&o.key)),
            };
            diags.push(
                Diagnostic::error(
                    Code::DuplicateObject,
                    format!("{what} is defined twice (first at {prev})"),
                )
                .at(o.key_location.clone())
                .hint("keep one definition; every object must be defined exactly once"),
            );
            keep[i] = false;
        } else {
            first.insert((o.kind, o.key.as_str()), &o.key_location);
        }
    }
    // Subpurposes share the purpose namespace.
    let mut purposes: BTreeMap<String, &Location> = BTreeMap::new();
    for (i, o) in objects.iter().enumerate() {
        if !keep[i] {
            continue;
        }
        for name in o.purpose_names() {
            if let Some(prev) = purposes.get(&name) {
                // Whichever comes first (a root purpose `R.A` or the subpurpose `A` of `R`), the
                // second definition is the error: both would be posted, the later one winning.
                {
                    diags.push(
                        Diagnostic::error(
                            Code::DuplicateObject,
                            format!(
                                "purpose `{}` is defined twice (first at {prev})",
                                shown(&name)
                            ),
                        )
                        .at(o.location.clone())
                        .hint("define each purpose once: either as a subpurpose or as its own document"),
                    );
                }
            } else {
                purposes.insert(name, &o.location);
            }
        }
    }
    // Projects naming purposes.
    let defined: BTreeSet<&str> = purposes.keys().map(String::as_str).collect();
    diags.extend(purpose_references(objects, &defined, options.known_purposes.as_ref()));
    keep
}

/// Projects naming purposes that neither a spec (`defined`) nor the tenant (`known`, when it
/// was read) has: errors when the tenant was read, warnings offline.
pub fn purpose_references(
    objects: &[Object],
    defined: &BTreeSet<&str>,
    known: Option<&BTreeSet<String>>,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    // Suggestions cost one comparison per candidate; a tree with many unknown references and
    // many purposes gets them for the first few only.
    let candidates: Vec<&str> =
        defined.iter().copied().chain(known.into_iter().flatten().map(String::as_str)).collect();
    let mut comparisons_left: usize = 200_000;
    for o in objects {
        for r in o.references.iter().filter(|r| r.kind == Kind::Purpose) {
            let name = &r.name;
            if defined.contains(name.as_str()) || known.is_some_and(|k| k.contains(name)) {
                continue;
            }
            let suggestion = if comparisons_left >= candidates.len() {
                comparisons_left -= candidates.len();
                de::suggest(name, &candidates)
            } else {
                None
            };
            let hint = match suggestion {
                Some(s) => format!("did you mean `{}`?", shown(s)),
                None if known.is_none() => {
                    "define it in a purpose spec; if it exists on the tenant already, `plan` confirms it".to_owned()
                }
                None => "define it in a purpose spec, or create it on the tenant first".to_owned(),
            };
            let message = format!(
                "project `{}` names purpose `{}`, which no spec defines",
                shown(&o.key),
                shown(name)
            );
            let d = if known.is_some() {
                Diagnostic::error(
                    Code::UnknownReference,
                    format!("{message} and the tenant does not have"),
                )
            } else {
                Diagnostic::warning(Code::UnknownReference, message)
            };
            diags.push(d.at(r.location.clone()).hint(hint));
        }
    }
    diags
}
