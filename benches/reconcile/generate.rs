//! Synthetic spec trees with a realistic mix of objects.
//!
//! For `n` objects: about 10% data-source connections (5 to 50 tables each, column tags and
//! descriptions), 40% policies (every subscription type and every data rule type), 30%
//! purposes (some with subpurpose hierarchies), 20% projects (naming generated purposes and
//! data sources). One object per file, as teams usually lay them out. Deterministic for a seed.

use std::fmt::Write as _;

/// A tiny deterministic generator (xorshift), so trees are the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A generated tree: `(path, text)` pairs and what they hold.
pub struct Tree {
    pub files: Vec<(String, String)>,
    pub data_sources: usize,
    pub policies: usize,
    pub purposes: usize,
    pub projects: usize,
    pub tables: usize,
}

impl Tree {
    /// Spec documents (objects), settings excluded.
    pub fn objects(&self) -> usize {
        self.data_sources + self.policies + self.purposes + self.projects
    }
}

const TAGS: [&str; 6] = [
    "Discovered.PII",
    "Discovered.PII.Email",
    "Discovered.Country",
    "Discovered.Passport",
    "Sales.Region",
    "Finance",
];

fn connection(i: usize, rng: &mut Rng, names: &mut Vec<String>) -> (String, usize) {
    let tables = 5 + rng.below(46) as usize;
    let mut s = String::new();
    let _ = write!(
        s,
        "connectionKey: conn-{i:05}\nconnection:\n  handler: Snowflake\n  hostname: acct{i}.snowflakecomputing.com\n  \
         port: 443\n  ssl: true\n  database: DB{i}\n  warehouse: WH\n  username: IMMUTA\n  \
         password: ${{BENCH_PASSWORD}}\nnameTemplate:\n  dataSourceFormat: ds{i} <tablename>\n  \
         schemaProjectNameFormat: ds{i} <schema>\noptions:\n  tableTags: [Source.Snowflake, Team.T{}]\n\
         owners:\n  - type: group\n    name: stewards-{}\nsources:\n",
        i % 20,
        i % 7
    );
    for t in 0..tables {
        let _ = write!(s, "  - tableName: T{t}\n    schema: S{}\n", t % 3);
        if t % 2 == 0 {
            let _ = write!(
                s,
                "    tags:\n      table: [{}]\n      columns:\n        - columnName: EMAIL\n          tags: [{}]\n        \
                 - columnName: COUNTRY\n          tags: [{}]\n    columnDescriptions:\n      - columnName: EMAIL\n        \
                 description: Contact address\n",
                TAGS[t % TAGS.len()],
                TAGS[1],
                TAGS[2]
            );
        }
        names.push(format!("ds{i} t{t}"));
    }
    (s, tables)
}

fn policy(i: usize, purposes: &[String]) -> String {
    let key = format!("policy-{i:05}");
    let tag = TAGS[i % TAGS.len()];
    let exception =
        purposes.get(i % purposes.len().max(1)).cloned().unwrap_or_else(|| "Analytics".into());
    match i % 10 {
        0 => format!(
            "policyKey: {key}\nname: Anyone {i}\ntype: subscription\nactions:\n  type: anyone\n  description: open\ncircumstances:\n  - type: tags\n    tag: {tag}\n"
        ),
        1 => format!(
            "policyKey: {key}\nname: Approval {i}\ntype: subscription\nactions:\n  type: approval\n  approvals:\n    - specificApproverRequired: false\n      requiredPermission: OWNER\ncircumstances:\n  - type: tags\n    tag: {tag}\n"
        ),
        2 => format!(
            "policyKey: {key}\nname: Entitlements {i}\ntype: subscription\nactions:\n  type: entitlements\n  entitlements:\n    operator: any\n    groups: [g{}]\n    attributes:\n      - name: Department\n        value: D{}\n  automaticSubscription: true\ncircumstances:\n  - type: columnTags\n    columnTag: {tag}\n",
            i % 13,
            i % 5
        ),
        3 => format!(
            "policyKey: {key}\nname: Manual {i}\ntype: subscription\nactions:\n  type: manual\n"
        ),
        4 => format!(
            "policyKey: {key}\nname: Hash {i}\ntype: data\nactions:\n  - rules:\n      - type: Masking\n        exceptions:\n          purposes: [\"{exception}\"]\n        config:\n          fields: [{{type: columnTags, columnTag: {tag}}}]\n          maskingConfig: {{type: Hash}}\ncircumstances:\n  - type: columnTags\n    columnTag: {tag}\n"
        ),
        5 => format!(
            "policyKey: {key}\nname: Constant {i}\ntype: data\nactions:\n  - rules:\n      - type: Masking\n        config:\n          fields: [{{type: columnTags, columnTag: {tag}}}]\n          maskingConfig: {{type: Constant, constant: REDACTED}}\ncircumstances:\n  - type: columnTags\n    columnTag: {tag}\n"
        ),
        6 => format!(
            "policyKey: {key}\nname: Conditional {i}\ntype: data\nactions:\n  - rules:\n      - type: Masking\n        config:\n          fields: [{{type: columnTags, columnTag: {tag}}}]\n          conditionalPredicate: \"@columnTagged('Discovered.Country') = 'US'\"\n          maskingConfig: {{type: \"Null\"}}\ncircumstanceOperator: all\ncircumstances:\n  - type: columnTags\n    columnTag: {tag}\n"
        ),
        7 => format!(
            "policyKey: {key}\nname: Where {i}\ntype: data\nactions:\n  - rules:\n      - type: Row Restriction by Custom Where Clause\n        config:\n          predicate: \"REGION = @attributeValue('Region')\"\ncircumstances:\n  - type: tags\n    tag: {tag}\n"
        ),
        8 => format!(
            "policyKey: {key}\nname: Entitled rows {i}\ntype: data\nactions:\n  - rules:\n      - type: Row Restriction By User Entitlements\n        config:\n          operator: any\n          matches:\n            - type: attribute\n              attribute: Region\n              tag: Sales.Region\ncircumstances:\n  - type: tags\n    tag: {tag}\n"
        ),
        _ => format!(
            "policyKey: {key}\nname: Custom {i}\ntype: data\nactions:\n  - rules:\n      - type: Masking\n        config:\n          fields: [{{type: columnTags, columnTag: {tag}}}]\n          maskingConfig:\n            type: Custom Function\n            sqlFunction: \"SHA2(@column)\"\n  - rules:\n      - type: Minimization\n        config: {{percent: 10}}\n      - type: Time Restriction\n        config: {{days: 30}}\n  - rules:\n      - type: Purpose Restriction\n        config: {{purposes: [\"{exception}\"]}}\ncircumstances:\n  - type: anyTag\n"
        ),
    }
}

fn purpose(i: usize, rng: &mut Rng, names: &mut Vec<String>) -> String {
    let root = format!("Purpose {i:05}");
    names.push(root.clone());
    let mut s = format!(
        "name: {root}\ndescription: Generated purpose {i}\nacknowledgement: I use it for purpose {i}.\n"
    );
    let children = rng.below(4);
    if children > 0 {
        s.push_str("subpurposes:\n");
        for c in 0..children {
            let child = format!("{root}.Child {c}");
            let _ = writeln!(s, "  - name: {child}");
            names.push(child);
        }
    }
    s
}

fn project(i: usize, rng: &mut Rng, purposes: &[String], data_sources: &[String]) -> String {
    let mut s = format!(
        "projectKey: project-{i:05}\nname: Project {i}\ndescription: Generated project {i}\n"
    );
    if !purposes.is_empty() {
        let p = &purposes[rng.below(purposes.len() as u64) as usize];
        let _ = write!(s, "purposes:\n  - \"{p}\"\n");
    }
    if !data_sources.is_empty() && i.is_multiple_of(2) {
        s.push_str("datasources:\n");
        for _ in 0..2 {
            let d = &data_sources[rng.below(data_sources.len() as u64) as usize];
            let _ = writeln!(s, "  - \"{d}\"");
        }
    }
    let _ = write!(
        s,
        "subscriptionPolicy:\n  type: entitlements\n  entitlements:\n    groups: [team-{}]\n",
        i % 11
    );
    s
}

/// A tree of `n` objects.
pub fn tree(n: usize, seed: u64) -> Tree {
    let mut rng = Rng::new(seed);
    let data_sources = n / 10;
    let purposes = n * 3 / 10;
    let projects = n / 5;
    let policies = n - data_sources - purposes - projects;
    let mut files = vec![
        (
            "immuta-gitops.yaml".to_owned(),
            "envFiles: [bench.env]\nmaxDeletePercent: 100\n".to_owned(),
        ),
        ("bench.env".to_owned(), "BENCH_PASSWORD=bench-only-not-a-secret\n".to_owned()),
    ];
    let mut ds_names = Vec::new();
    let mut tables = 0;
    for i in 0..data_sources {
        let (text, t) = connection(i, &mut rng, &mut ds_names);
        tables += t;
        files.push((format!("datasources/conn-{i:05}.yaml"), text));
    }
    let mut purpose_names = Vec::new();
    for i in 0..purposes {
        let text = purpose(i, &mut rng, &mut purpose_names);
        files.push((format!("purposes/purpose-{i:05}.yaml"), text));
    }
    for i in 0..policies {
        files.push((format!("policies/policy-{i:05}.yaml"), policy(i, &purpose_names)));
    }
    for i in 0..projects {
        files.push((
            format!("projects/project-{i:05}.yaml"),
            project(i, &mut rng, &purpose_names, &ds_names),
        ));
    }
    Tree { files, data_sources, policies, purposes, projects, tables }
}

/// Writes a tree under `dir`.
pub fn write(tree: &Tree, dir: &std::path::Path) -> std::io::Result<()> {
    for (path, text) in &tree.files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, text)?;
    }
    Ok(())
}
