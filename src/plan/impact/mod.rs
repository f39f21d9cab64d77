//! Access impact: what a plan does to people's access, not to YAML. Who loses protection (a
//! column no longer masked, a table that loses its row restriction, a subscription widened to
//! anyone, an exception added) and who gains it, each marked as **widening** (less protection,
//! more access) or **narrowing**, and **certain** or **possible**; plus the references a plan
//! breaks (a project listing a data source the plan removes).
//!
//! The impact of a plan is the access model after the plan minus the model before it:
//!
//! - `model/`: the model of one side: tables and their tags, policies, projects, purposes;
//!   per table profile, which masking rules decide each column, which row rules and which
//!   subscription policies apply.
//! - `matching.rs`: Immuta's matching rules (below), three-valued.
//! - `diff/`: after minus before, as [`Finding`]s, and the [`BrokenReference`]s.
//! - `finding.rs`: what an impact says ([`Impact`], [`Finding`], [`Subject`]).
//!
//! **Invariant:** no I/O. The "before" side is the last applied payloads (the state, or the
//! specs at `plan --base REV`), the "after" side the desired payloads; tags the tenant reports
//! come in as plain values ([`TenantFacts`]), read by `live::metadata` (at most
//! [`MAX_TAG_READS`] data sources per plan).
//!
//! The work is incremental: only the profiles a changed policy may match and the tables of a
//! changed connection are evaluated, so a plan that changes 1% of a 10,000-object tree costs
//! about 1% of the model (`benches/reconcile`, row "access impact").
//!
//! # Possible and certain
//!
//! Many rules are undocumented, and some facts are not in Git (tags applied by identification
//! or a catalog, columns no spec names, owners set by hand, the tenant's default subscription
//! policy). A single yes/no match would silently pick one reading, so every relation is
//! three-valued ([`matching::Level`]): `certain` under every reading, `possible` under at
//! least one. Lost protection is reported when it was possible before and is not certain
//! after; it is *certain* only when it was certain before and is not even possible after, and
//! the facts did not change (a tag removed in Git may still come from identification: rule
//! T2). Gained access is reported when the possible grant after exceeds the certain grant
//! before. The rule only ever adds findings, at the cost of some "possible" ones, which every
//! renderer lists after the certain ones.
//!
//! # The rules, with their sources
//!
//! Tags: `\[doc\]` Immuta's documentation says it; `\[code\]` public code or real exports show it;
//! `\[inferred\]` our reading of the evidence; `\[silent\]` no source, the conservative rule is
//! taken. Short names of sources are listed after the table.
//!
//! | Rule | What | Source |
//! |---|---|---|
//! | T1 | A policy on tag `A` reaches columns and data sources tagged `A` or any descendant (`A.B`), by path segments (`PII` does not reach `PIIX`); never upwards. | [doc CONFLICTS, HIER]; for table tags \[inferred\] from the V2-POL examples |
//! | T2 | Tags also come from outside Git (identification, catalogs, lineage, by hand), and removing one in Git does not prove it is gone. They are not guessed: a finding that rests on a tag change is never *certain*. | [doc META, TAGS, SF]; \[silent\] on whether a V2 post removes tags of other origins |
//! | T3 | Tag case: *certain* as written, *possible* case-insensitively. | \[silent\] |
//! | T4 | A data source's tags are `options.tableTags` ∪ `sources[].tags.table`; column tags are `sources[].tags.columns`. | [doc DS-V2]; the union is \[inferred\] |
//! | C1 | No `circumstances`: every data source (certain). `null` or `[]`: "when selected by data owners" in V1: possible everywhere, certain nowhere. | [doc V1-WRITE, V1-POL]; V2 \[silent\] |
//! | C2 | `circumstanceOperator`: `any` (default) or `all`, evaluated three-valued. | [doc V2-POL] |
//! | C3 | `columnTags` (some column carries the tag), `tags` (the data source carries it), `columnRegex` (possible everywhere; certain only for a literal naming a column in Git: the dialect and anchoring are undocumented and the core has no regex engine), `anyTag` (certain with a tag in Git, otherwise possible), `noTags` and unknown types (possible everywhere), `domains` (certain by id against `domainCollectionId`, possible by name). | [doc V2-POL, MASK-HOWTO; code FH, SAK]; `noTags`, `anyTag`, `columnRegex` semantics \[silent\] |
//! | C4 | A `staged: true` policy applies to nothing; un-staging it is every effect it has. | [doc V1-WRITE] |
//! | C5 | `ownerRestrictions`: possible ignoring it; certain only with an owner declared in Git. | [doc SUB-RESTRICTED] |
//! | M1 | Masking `fields`: `columnTags` (T1), `anyTag`, `noTags`; unknown selectors ("all columns", "names spelled like") are possible on every column. Columns no spec names are one pseudo-column per table, `(columns not named in the specs)`. | [doc V2-POL, MASK-HOWTO]; V2 spellings of the UI's other selectors \[silent\] |
//! | M2 | `config.operator`: possible under `any`, certain under `all` (or absent) only when every field matches. | \[silent\] ([code SAK] shows it in every export) |
//! | M3 | Strength, weakest first: none (also `Custom Function` returning `@column`), unknown (`Custom Function`, unknown types), reversible, partial (`Regex`, `Rounding`, `K-Anonymization`, `Randomized Response`), one-way (`Hash`), redact (`Null`, `Constant`). Only a strictly stronger *known* class is certain narrowing. | [doc MASK-REF matrix]; the order is \[inferred\] |
//! | M4 | `conditionalPredicate`: cell-level masking; rows outside the condition are in the clear, so it is partial at most. | [doc MASK-REF, V2-POL] |
//! | M5 | One masking rule decides a column: the deepest matching tag wins; at equal depth "the policy that was authored first" (not known offline: the column is "masked by one of" them, weakest after against strongest before). `anyTag`/`noTags` rank at depth 0. An excepted user sees clear values (no fallback to the losing policy). | [doc CONFLICTS]; the exception fallback \[silent\] |
//! | R1 | Row-level rules all apply, AND'ed; removing any one is lost protection. | [doc CONFLICTS] |
//! | R2 | A rule reading columns by tag (`matches[].tag`, `@columnTagged`) is certain only where a column in Git carries the tag. Minimization, time and purpose restrictions are opaque row protection: any change is possible widening. | [doc ROW-REF, MIN, TIME, PURP]; behaviour without a tagged column \[silent\] |
//! | E1 | `exceptions`: everyone but the users meeting it (`any`, the default here, or `all`); an empty exception excepts no one. Adding a principal (or `all` → `any`) widens. | [doc V2-POL, DATA-REF]; default operator \[silent\] |
//! | E2 | `inclusions`: only the users meeting it (an "otherwise" chain). Fewer included on a protective rule widens. | [doc V2-POL, DATA-REF] |
//! | P1 | A project listing a data source is a possible access path for its members; widening its `subscriptionPolicy` (default `manual`), `allowMaskedJoins: true` and `equalization: false` widen. | [doc PROJ, PROJ-HOWTO; `immuta-api.md` §1.4]; membership granting access \[silent\] |
//! | P2 | A purpose exception `P` is met by projects acting under `P` (certain) or a descendant or ancestor of `P` (possible). | [doc PURP, PROJ-HOWTO]; the hierarchy \[silent\] |
//! | S1 | Subscription policies apply by the circumstances above (C1–C5). | [doc V2-POL] |
//! | S2 | Openness: `anyone` > `approval` ≈ `entitlements` > `manual`; entitlements under `any` widen with more principals. `automaticSubscription`, `allowDiscovery`, `accessGrant: WRITE` and `shareResponsibility: true` widen. | [doc SUB-REF, V1-POL, SUB-DSL] |
//! | S3 | Several subscription policies on one data source: the merge rule is ambiguous (grant/guardrail, `shareResponsibility`), so a change to one of several is *possible*. | [doc SUB-REF, SUB-2022]; V2 spelling \[silent\] |
//! | S4 | A data source losing its last subscription policy falls back to the data platform's own grants: widening. | [doc SUB-DEFAULT] |
//! | N1 | Data-source names come from `nameTemplate.dataSourceFormat` (default `<schema> <tablename>`), the placeholder's case setting the value's case. | [doc DS-V2]; the default is the emulator's assumption |
//! | D1 | A table dropped from `sources` (disabled, or deleted with `hardDelete`) possibly loses every Immuta protection. | [doc DS-V2]; enforcement after disabling \[silent\] |
//!
//! Sources (Immuta's documentation as stored copies of the pages, often only their first
//! part; `docs/access-impact.md` lists every page with all its versions, and what would settle
//! each silent point against a real tenant):
//!
//! - V2-POL: <https://documentation.immuta.com/latest/developer-guides/api-intro/immuta-v2-api/policies>
//! - CONFLICTS: <https://documentation.immuta.com/SaaS/secure-your-data/authoring-policies-in-secure/data-policies/reference-guides/data-policy-conflicts>
//! - HIER: <https://documentation.immuta.com/2024.1/pov/walkthroughs/tag-based/>
//! - DATA-REF: <https://documentation.immuta.com/saas/governance/secure-your-data/authoring-policies-in-secure/data-policies/reference-guides/data-policies>
//! - MASK-HOWTO: <https://documentation.immuta.com/latest/governance/author-policies-for-data-access-control/authoring-policies-in-secure/data-policies/how-to-guides/data-policy-tutorial>
//! - MASK-REF: <https://documentation.immuta.com/saas/governance/secure-your-data/authoring-policies-in-secure/data-policies/reference-guides/masking-matrix-functions>
//! - ROW-REF: <https://documentation.immuta.com/2024.3/secure-your-data/authoring-policies-in-secure/data-policies/reference-guides/row-redaction-explained>
//! - MIN, TIME, PURP: <https://documentation.immuta.com/saas/govern/secure-your-data/authoring-policies-in-secure/data-policies/how-to-guides/minimization-tutorial>,
//!   <https://documentation.immuta.com/2023.1/3-writing-global-policies-for-compliance/global-policy-builder/time-based-tutorial/>,
//!   <https://documentation.immuta.com/latest/governance/author-policies-for-data-access-control/authoring-policies-in-secure/data-policies/how-to-guides/purpose-tutorial>
//! - V1-POL: <https://documentation.immuta.com/saas/developer-guides/api-intro/immuta-v1-api/manage-data-access/policy>
//! - V1-WRITE: <https://documentation.immuta.com/2024.2/developer-guides/api-intro/immuta-v1-api/manage-data-access/write-policies-api/payload-reference>
//! - SUB-REF: <https://documentation.immuta.com/SaaS/governance/secure-your-data/authoring-policies-in-secure/section-contents/reference-guides/subscription-policies>
//! - SUB-2022: <https://docs-immuta-2022-5.netlify.app/2022.5/3-writing-global-policies-for-compliance/policies/subscription-policies/>
//! - SUB-DEFAULT: <https://documentation.immuta.com/2024.1/~gitbook/pdf?only=yes&page=O1N626Z8krT18RHd0dlB>
//! - SUB-DSL: <https://documentation.immuta.com/saas/governance/secure-your-data/authoring-policies-in-secure/section-contents/how-to-guides/advanced-dsl-policies>
//! - SUB-RESTRICTED: <https://documentation.immuta.com/2023.4/write-policies/how-to-guides/subscription-policy-tutorial/restricted-subscription-policies>
//! - PROJ: <https://documentation.immuta.com/2024.3/secure-your-data/projects-and-purpose-based-access-control/projects-and-purpose-controls/reference-guides/projects>
//! - PROJ-HOWTO: <https://docs-immuta-2024-2.netlify.app/2024.2/collaborating-writing-sharing/projects/project-member-guide>
//! - DS-V2: <https://documentation.immuta.com/2024.3/developer-guides/api-intro/immuta-v2-api/payload-attributes>
//! - META: <https://documentation.immuta.com/2024.2/use-cases/secure/automate-access-decisions/managing-data-metadata/>
//! - TAGS: <https://documentation.immuta.com/SaaS/configuration/tags/manage-tags/index-tags>
//! - SF: <https://documentation.immuta.com/saas/~gitbook/pdf?only=yes&page=ngkCcsZyoQwQtZTYoKiE>
//! - SAK: 63 real V2 policy exports, `Sakanarmmfec/Immuta-Data-Policy-Document-Generation@cfc3fb07061d6175a3c81dff8441d90fef465457:Input/*.yaml`
//! - FH: `flatironhealth/fh-immuta-utils@1ea3bf89b699cc8148f2eecee06eb22806d60008` (`doc/managing_policies.md`, `fh_immuta_utils/policy.py`)
//! - TAP: `immuta/tap-immuta@9ad98113afade8b84b05712c264e7815c2c1807f` (`tap_immuta/schemas/data_source.py`: the detail's `tags`)
//!
//! # Where the facts come from
//!
//! Offline (`plan --base`), everything comes from the two spec trees. Against a tenant, the
//! "before" side is the state (the last applied payloads); and for the managed data sources a
//! finding is about, the table tags the tenant reports (`GET /dataSource/{id}`, documented
//! `tags`) are added on both sides: they may come from outside Git and survive the post. No
//! documented read exposes column tags (`GET /dictionary/{id}` appears only in client code), so
//! column tags always come from the specs. Findings on data sources whose tags came from the
//! tenant carry `tenant: true`; [`Basis`] says how many were read.

mod diff;
mod finding;
mod matching;
mod model;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

pub use self::finding::*;
pub use self::matching::Level;
use self::model::{Interner, Needs, Policy, Project, World, purpose_names};
use crate::spec::Kind;
use crate::state::Payload;

/// One object on one side of a plan.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// Its kind.
    pub kind: Kind,
    /// Its natural key.
    pub key: &'a str,
    /// Its canonical payload (shared: tables keep a reference to name themselves later).
    pub payload: &'a Payload,
    /// The digest of the payload (equal digests: the same object on both sides).
    pub digest: &'a str,
    /// Data sources: the names the tenant gave them (state), when recorded.
    pub names: &'a [String],
}

/// What the tenant says, as plain values (read by `live::metadata`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantFacts {
    /// Table tags the tenant reports, by data-source name.
    pub tags: BTreeMap<String, Vec<String>>,
    /// Names of the enabled data sources the tenant lists.
    pub data_sources: BTreeSet<String>,
    /// Data-source names the server's dry runs say are deleted or disabled, by connection.
    pub deleting: BTreeMap<String, Vec<String>>,
    /// Data-source names the dry runs say exist after the post, by connection.
    pub keeping: BTreeMap<String, Vec<String>>,
}

/// Everything the impact is computed from.
#[derive(Debug, Clone, Default)]
pub struct Input<'a> {
    /// The last applied objects (state, or the base revision's specs), with objects kept by
    /// `prune: false` whose spec is gone.
    pub before: Vec<Side<'a>>,
    /// The desired objects, plus the kept ones (they stay on the tenant and keep acting).
    pub after: Vec<Side<'a>>,
    /// What the tenant says, `None` offline.
    pub tenant: Option<&'a TenantFacts>,
}

/// Objects of one kind on both sides, and which changed.
struct Pairs<'s, 'a> {
    before: matching::FxMap<&'a str, &'s Side<'a>>,
    after: matching::FxMap<&'a str, &'s Side<'a>>,
    changed: BTreeSet<&'a str>,
}

fn pairs<'s, 'a>(input: &'s Input<'a>, kind: Kind) -> Pairs<'s, 'a> {
    let before: matching::FxMap<&str, &Side<'_>> =
        input.before.iter().filter(|s| s.kind == kind).map(|s| (s.key, s)).collect();
    let after: matching::FxMap<&str, &Side<'_>> =
        input.after.iter().filter(|s| s.kind == kind).map(|s| (s.key, s)).collect();
    let mut changed = BTreeSet::new();
    for (k, b) in &before {
        if after.get(k).is_none_or(|a| a.digest != b.digest) {
            changed.insert(*k);
        }
    }
    for k in after.keys() {
        if !before.contains_key(k) {
            changed.insert(*k);
        }
    }
    Pairs { before, after, changed }
}

/// The access impact of going from `input.before` to `input.after`.
pub fn impact(input: &Input<'_>) -> Impact {
    let policies = pairs(input, Kind::Policy);
    let connections = pairs(input, Kind::DataSource);
    let projects = pairs(input, Kind::Project);
    let purposes = pairs(input, Kind::Purpose);
    let mut out = Impact {
        basis: Basis { offline: input.tenant.is_none(), ..Basis::default() },
        ..Impact::default()
    };
    if policies.changed.is_empty()
        && connections.changed.is_empty()
        && projects.changed.is_empty()
        && purposes.changed.is_empty()
    {
        return out;
    }
    // Policies: parsed once when the same on both sides.
    let mut before = World::default();
    let mut after = World::default();
    for (key, b) in &policies.before {
        if let Some(mut p) = Policy::parse(b.payload) {
            p.shared = policies.after.get(key).is_some_and(|a| a.digest == b.digest);
            let p = Arc::new(p);
            if p.shared {
                after.policies.insert((*key).to_owned(), Arc::clone(&p));
            }
            before.policies.insert((*key).to_owned(), p);
        }
    }
    for (key, a) in &policies.after {
        if !after.policies.contains_key(*key)
            && let Some(p) = Policy::parse(a.payload)
        {
            after.policies.insert((*key).to_owned(), Arc::new(p));
        }
    }
    let mut needs = Needs::default();
    for p in before.policies.values().chain(after.policies.values()) {
        let n = p.needs();
        needs.names |= n.names;
        needs.owners |= n.owners;
        needs.domains |= n.domains;
    }
    before.index();
    after.index();

    // Connections: every one when a policy or a connection changed (a policy may match any
    // table; the tag check needs every tag), none for changes to projects and purposes only.
    // Tables of an unchanged connection are parsed once.
    let tenant_tags: Option<model::TenantTags> =
        input.tenant.map(|t| t.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    let mut interner = Interner::new(needs);
    let all = !policies.changed.is_empty() || !connections.changed.is_empty();
    let mut keys: Vec<&str> =
        connections.before.keys().chain(connections.after.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let changed = connections.changed.contains(key);
        if !all && !changed {
            continue;
        }
        let b = connections.before.get(key);
        let a = connections.after.get(key);
        let shared = !changed;
        if let Some(b) = b {
            let tables = Arc::new(model::tables(b.payload, &mut interner, tenant_tags.as_ref()));
            if shared {
                after.connections.insert(key.to_owned(), Arc::clone(&tables));
            }
            before.connections.insert(key.to_owned(), tables);
            if !b.names.is_empty() {
                before.recorded_names.insert(key.to_owned(), b.names.to_vec());
            }
        }
        if let Some(a) = a {
            let hard = a.payload.get("options").and_then(|o| o.get("hardDelete"));
            if hard.and_then(Value::as_bool) == Some(true) {
                after.hard_delete.insert(key.to_owned());
            }
        }
        if let Some(a) = a
            && !shared
        {
            // A tag the last applied payload declared is the post's to keep or drop: what the
            // tenant reports of it says nothing about the state after this post.
            let reported = match (&tenant_tags, b) {
                (Some(t), Some(b)) => {
                    let declared = model::declared_tags(b.payload);
                    Some(
                        t.iter()
                            .map(|(name, tags)| {
                                let gone = declared.get(name);
                                let kept = tags
                                    .iter()
                                    .filter(|x| !gone.is_some_and(|g| g.contains(x)))
                                    .cloned()
                                    .collect();
                                (name.clone(), kept)
                            })
                            .collect(),
                    )
                }
                (t, _) => t.clone(),
            };
            let tables = model::tables(a.payload, &mut interner, reported.as_ref());
            after.connections.insert(key.to_owned(), Arc::new(tables));
        }
    }
    // Projects matter when one changed, when a data source or purpose may go away (their
    // references), or when a changed policy names purposes (who meets its exceptions);
    // purposes only when one changed.
    let names_purposes = policies.changed.iter().any(|k| {
        [before.policies.get(*k), after.policies.get(*k)]
            .into_iter()
            .flatten()
            .any(|p| !p.purposes().is_empty())
    });
    if !projects.changed.is_empty()
        || !connections.changed.is_empty()
        || !purposes.changed.is_empty()
        || names_purposes
    {
        // Before, only changed projects are compared; after, every project may be named (by
        // a reference, or as acting under an excepted purpose).
        for key in &projects.changed {
            if let Some(p) = projects.before.get(key).and_then(|s| Project::parse(s.payload)) {
                before.projects.insert((*key).to_owned(), Arc::new(p));
            }
        }
        for (key, s) in &projects.after {
            if let Some(p) = Project::parse(s.payload) {
                after.projects.insert((*key).to_owned(), Arc::new(p));
            }
        }
    }
    if !purposes.changed.is_empty() {
        for (side, world) in [(&purposes.before, &mut before), (&purposes.after, &mut after)] {
            for s in side.values() {
                purpose_names(s.payload, &mut world.purposes);
            }
        }
    }

    let changes = diff::Changes {
        policies: &policies.changed,
        connections: &connections.changed,
        projects: &projects.changed,
    };
    diff::diff(&before, &after, &interner, &changes, input.tenant, &mut out);
    out
}

/// Marks the findings about objects taken under management from the tenant (`adopted`) as
/// possible: their current form there is unknown, so they were compared as if new.
pub fn adopted(impact: &mut Impact, adopted: &[(Kind, &str)]) {
    if adopted.is_empty() {
        return;
    }
    for f in &mut impact.findings {
        let kind = match f.kind {
            FindingKind::ProjectReachAdded
            | FindingKind::ProjectReachRemoved
            | FindingKind::PurposeExceptionAdded
            | FindingKind::PurposeExceptionRemoved
            | FindingKind::ProjectJoinWidened
            | FindingKind::ProjectJoinNarrowed
            | FindingKind::ProjectSettingWidened
            | FindingKind::ProjectSettingNarrowed => Kind::Project,
            _ => Kind::Policy,
        };
        if f.policy.as_deref().is_some_and(|p| adopted.contains(&(kind, p))) {
            f.confidence = Confidence::Possible;
            f.caveat = Some(ADOPTED.to_owned());
        }
    }
}

/// Why a finding about an adopted object is only possible.
const ADOPTED: &str = "the object already exists on the tenant and is adopted: what it says \
                       there now is not known, so it is compared as if it were new";

#[cfg(test)]
mod tests;
