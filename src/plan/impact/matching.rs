//! Immuta's documented matching rules, one function per rule, each three-valued ([`Level`]):
//! a relation holds `Certain`ly (under every reading of the docs and of the facts we hold),
//! `Possible` (under at least one reading), or not at all (`No`).
//!
//! Every rule names its source (short names are listed in the module docs of
//! [`impact`](super)); where the docs are silent, the rule taken is the conservative one: it
//! never under-reports lost protection or gained access. The research behind each rule is in
//! `docs/access-impact.md`.
//!
//! Nothing here reads a file or the network, and nothing here knows about plans: these are the
//! rules, applied by `model/`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A fast, non-cryptographic hasher for the model's own keys (tags, names): the model looks
/// tags up hundreds of thousands of times on a large tree, and SipHash's resistance to
/// hash flooding buys nothing for keys the tool builds itself. (FxHash's multiply-rotate.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(K);
    }
}

/// Builds [`Fx`] hashers.
pub type FxBuild = BuildHasherDefault<Fx>;
/// A hash map with [`Fx`].
pub type FxMap<K, V> = HashMap<K, V, FxBuild>;
/// A hash set with [`Fx`].
pub type FxSet<K> = HashSet<K, FxBuild>;

/// How surely a relation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// It does not hold under any reading.
    No,
    /// It holds under at least one reading of the docs or of the facts.
    Possible,
    /// It holds under every reading.
    Certain,
}

impl Level {
    /// Both hold.
    pub fn and(self, other: Level) -> Level {
        self.min(other)
    }

    /// Either holds.
    pub fn or(self, other: Level) -> Level {
        self.max(other)
    }

    /// Whether it may hold.
    pub fn possible(self) -> bool {
        self != Level::No
    }
}

/// `any` or `all` (`circumstanceOperator`, `exceptions.operator`, `entitlements.operator`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// At least one condition.
    Any,
    /// Every condition.
    All,
}

impl Op {
    /// The operator written at `field`, `default` when absent or not `any`/`all`.
    pub fn parse(value: Option<&str>, default: Op) -> Op {
        match value {
            Some("any") => Op::Any,
            Some("all") => Op::All,
            _ => default,
        }
    }

    /// Combines levels under this operator (three-valued: `all` is the weakest, `any` the
    /// strongest). An empty list holds for `all` and not for `any`.
    pub fn combine(self, levels: impl IntoIterator<Item = Level>) -> Level {
        match self {
            Op::Any => levels.into_iter().fold(Level::No, Level::or),
            Op::All => levels.into_iter().fold(Level::Certain, Level::and),
        }
    }
}

/// The [`Fx`] hash of a string, computed once per tag so that lookups compare numbers.
fn fx(s: &str) -> u64 {
    use std::hash::Hash;
    let mut h = Fx::default();
    s.hash(&mut h);
    h.finish()
}

/// A tag a policy names, prepared for matching: as written, lower-cased, its depth (the
/// number of dot-separated segments, which decides between masking policies, rule M5), and
/// the hashes of both spellings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagRef {
    /// As written (`Discovered.Passport`).
    pub exact: String,
    /// Lower-cased, for the case-insensitive (possible) reading.
    pub lower: String,
    /// Segments (`Discovered.Passport` is 2).
    pub depth: usize,
    exact_hash: u64,
    lower_hash: u64,
}

impl TagRef {
    /// A tag as a policy writes it.
    pub fn new(tag: &str) -> TagRef {
        let lower = tag.to_lowercase();
        TagRef {
            exact: tag.to_owned(),
            exact_hash: fx(tag),
            lower_hash: fx(&lower),
            lower,
            depth: tag.split('.').count(),
        }
    }
}

/// The tags something carries, with every ancestor (rule T1: a policy on a parent tag reaches
/// every descendant), as written and lower-cased (rule T3: case is undocumented). Looked up by
/// precomputed hash, then compared as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSet {
    /// The tags as carried (no ancestors), sorted.
    pub tags: BTreeSet<String>,
    exact: FxMap<u64, Vec<String>>,
    lower: FxMap<u64, Vec<String>>,
}

impl TagSet {
    /// The set of `tags` (with their ancestors for matching).
    pub fn new<'a>(tags: impl IntoIterator<Item = &'a str>) -> TagSet {
        let mut set = TagSet::default();
        for t in tags {
            set.insert(t);
        }
        set
    }

    fn insert(&mut self, tag: &str) {
        if tag.is_empty() || !self.tags.insert(tag.to_owned()) {
            return;
        }
        // `A.B.C` carries `A.B.C`, `A.B` and `A` for matching (rule T1, path segments only:
        // `PII` must not reach `PIIX`).
        let mut end = tag.len();
        loop {
            let prefix = &tag[..end];
            let lower = prefix.to_lowercase();
            for (map, text) in [(&mut self.exact, prefix), (&mut self.lower, lower.as_str())] {
                let same = map.entry(fx(text)).or_default();
                if !same.iter().any(|s| s == text) {
                    same.push(text.to_owned());
                }
            }
            match prefix.rfind('.') {
                Some(dot) => end = dot,
                None => break,
            }
        }
    }

    /// Whether the set carries `tag` or a descendant of it: `Certain` with the case as
    /// written, `Possible` when only a case-insensitive comparison matches (rules T1, T3).
    pub fn has(&self, tag: &TagRef) -> Level {
        let found = |map: &FxMap<u64, Vec<String>>, hash: u64, text: &str| {
            map.get(&hash).is_some_and(|same| same.iter().any(|s| s == text))
        };
        if found(&self.exact, tag.exact_hash, &tag.exact) {
            Level::Certain
        } else if found(&self.lower, tag.lower_hash, &tag.lower) {
            Level::Possible
        } else {
            Level::No
        }
    }

    /// Whether it carries no tag at all.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Every tag and ancestor, lower-cased (the keys of the policy index).
    pub fn lower_with_ancestors(&self) -> impl Iterator<Item = &str> {
        self.lower.values().flatten().map(String::as_str)
    }
}

/// How strong a masking type is, weakest first (rule M3). The docs give a property matrix,
/// not an order; this order is inferred from it, and anything it cannot place is `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Strength {
    /// No masking at all (also a `Custom Function` that returns `@column` unchanged).
    None,
    /// A type this build cannot place (`Custom Function`, an unknown type).
    Unknown,
    /// Reversible: authorised users can unmask (`Reversible`, format-preserving masking).
    Reversible,
    /// Partial or statistical (`Regex`, `Rounding`, `K-Anonymization`, `Randomized
    /// Response`), and any masking that applies only to some rows (cell-level masking).
    Partial,
    /// One-way and deterministic (`Hash`): equal values stay equal.
    OneWay,
    /// Nothing left (`Null`, `Constant`).
    Redact,
}

impl Strength {
    /// The strength of a `maskingConfig.type` (and its `sqlFunction`, for `Custom Function`).
    pub fn of(masking_type: &str, sql_function: Option<&str>) -> Strength {
        match masking_type {
            "Null" | "Constant" => Strength::Redact,
            "Hash" | "Consistent Value" => Strength::OneWay,
            "Regex" | "Rounding" | "K-Anonymization" | "Randomized Response" => Strength::Partial,
            "Reversible" | "Format Preserving Masking" => Strength::Reversible,
            // A custom function that returns the column itself is the identity: real exports
            // use it as the "unmasked" branch of an otherwise chain.
            "Custom Function"
                if sql_function.is_some_and(|f| f.trim().eq_ignore_ascii_case("@column")) =>
            {
                Strength::None
            }
            _ => Strength::Unknown,
        }
    }

    /// Whether a change from `self` to `other` is certainly stronger: a strictly stronger
    /// known class (rule M3: same class, or to or from `Unknown`, is no proof either way).
    pub fn certainly_stronger(self, other: Strength) -> bool {
        other > self && other != Strength::Unknown && self != Strength::Unknown
    }
}

/// Who may subscribe, least restrictive first (rule S2: `anyone` > `approval` ≈
/// `entitlements` > `manual`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Openness {
    /// `manual`: only users a data owner adds by hand.
    Manual,
    /// `approval` or `entitlements` (not comparable with each other: rule S2).
    Restricted,
    /// An unknown `type`: treated as possibly open.
    Unknown,
    /// `anyone`.
    Anyone,
}

impl Openness {
    /// The openness of a subscription `type`.
    pub fn of(kind: &str) -> Openness {
        match kind {
            "manual" => Openness::Manual,
            "approval" | "entitlements" => Openness::Restricted,
            "anyone" => Openness::Anyone,
            _ => Openness::Unknown,
        }
    }
}

/// Whether a purpose an exception names is met by a project acting under `held` (rule P2):
/// `Certain` for the same purpose; `Possible` for a descendant or an ancestor (the docs are
/// silent on the hierarchy); otherwise `No`.
pub fn purpose_meets(exception: &str, held: &str) -> Level {
    if exception == held {
        Level::Certain
    } else if is_descendant(held, exception) || is_descendant(exception, held) {
        Level::Possible
    } else {
        Level::No
    }
}

/// Whether `name` is a strict descendant of `ancestor` (dotted names).
fn is_descendant(name: &str, ancestor: &str) -> bool {
    name.len() > ancestor.len()
        && name.starts_with(ancestor)
        && name.as_bytes().get(ancestor.len()) == Some(&b'.')
}

/// The name Immuta gives a table's data source (rule N1): `nameTemplate.dataSourceFormat`
/// (default `<schema> <tablename>`), placeholders `<tablename>`, `<schema>`, `<database>`
/// matched case-insensitively; a placeholder written in lower case gives a lower-case value,
/// in upper case an upper-case one, otherwise a capitalised one. Other text is kept.
pub fn data_source_name(format: Option<&str>, table: &str, schema: &str, database: &str) -> String {
    let format = format.unwrap_or("<schema> <tablename>");
    let mut out = String::with_capacity(format.len() + table.len() + schema.len());
    let mut rest = format;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let placeholder = &after[..close];
        let value = match placeholder.to_ascii_lowercase().as_str() {
            "tablename" => Some(table),
            "schema" => Some(schema),
            "database" => Some(database),
            _ => None,
        };
        match value {
            Some(v) if v.is_ascii() && placeholder.chars().all(|c| !c.is_uppercase()) => {
                let at = out.len();
                out.push_str(v);
                out[at..].make_ascii_lowercase();
            }
            Some(v) if placeholder.chars().all(|c| !c.is_uppercase()) => {
                out.extend(v.chars().flat_map(char::to_lowercase));
            }
            Some(v) if placeholder.chars().all(|c| !c.is_lowercase()) => {
                out.extend(v.chars().flat_map(char::to_uppercase));
            }
            Some(v) => {
                let mut chars = v.chars().flat_map(char::to_lowercase);
                if let Some(first) = chars.next() {
                    out.extend(first.to_uppercase());
                    out.extend(chars);
                }
            }
            None => {
                out.push('<');
                out.push_str(placeholder);
                out.push('>');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// A data-source name as compared for the possible reading (rule N2): lower case, runs of
/// whitespace and dots as one space. The docs' own example turns `<schema> <tablename>` into
/// `tpc.customer`, so an exact comparison alone could miss the name Immuta really gives.
pub fn loose_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.chars() {
        if c.is_whitespace() || c == '.' {
            gap = !out.is_empty();
        } else {
            if gap {
                out.push(' ');
                gap = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The tags `@columnTagged('T')` names in a SQL predicate (cell-level masking, where clauses).
pub fn column_tagged(sql: &str) -> Vec<String> {
    const CALL: &str = "@columntagged(";
    let lower = sql.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find(CALL) {
        let start = from + at + CALL.len();
        let rest = sql[start..].trim_start();
        let quote = rest.chars().next();
        if let Some(q @ ('\'' | '"')) = quote
            && let Some(end) = rest[1..].find(q)
        {
            out.push(rest[1..1 + end].to_owned());
        }
        from = start;
    }
    out
}

/// Whether a regex has no metacharacter, so that it can be compared as text (the pure core has
/// no regex engine, and the docs name neither the dialect nor the anchoring: rule C3).
pub fn literal_regex(regex: &str) -> bool {
    !regex.chars().any(|c| "\\^$.|?*+()[]{}".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_tag_reaches_its_descendants_by_path_segments_only() {
        let set = TagSet::new(["Discovered.Passport", "PIIX"]);
        assert_eq!(set.has(&TagRef::new("Discovered")), Level::Certain);
        assert_eq!(set.has(&TagRef::new("Discovered.Passport")), Level::Certain);
        assert_eq!(set.has(&TagRef::new("discovered.passport")), Level::Possible);
        assert_eq!(set.has(&TagRef::new("Discovered.Passport.US")), Level::No, "never upwards");
        assert_eq!(set.has(&TagRef::new("PII")), Level::No, "PII does not reach PIIX");
    }

    #[test]
    fn operators_are_three_valued() {
        use Level::*;
        assert_eq!(Op::All.combine([Certain, Possible]), Possible);
        assert_eq!(Op::All.combine([Certain, No]), No);
        assert_eq!(Op::Any.combine([No, Possible]), Possible);
        assert_eq!(Op::Any.combine([]), No);
        assert_eq!(Op::All.combine([]), Certain);
    }

    #[test]
    fn strength_classes() {
        assert!(Strength::of("Constant", None) > Strength::of("Hash", None));
        assert!(Strength::of("Hash", None) > Strength::of("Rounding", None));
        assert_eq!(Strength::of("Custom Function", Some(" @column ")), Strength::None);
        assert_eq!(Strength::of("Custom Function", Some("SHA2(@column)")), Strength::Unknown);
        assert!(Strength::OneWay.certainly_stronger(Strength::Redact));
        assert!(!Strength::Unknown.certainly_stronger(Strength::Redact));
    }

    #[test]
    fn purposes_meet_exactly_or_possibly_through_the_hierarchy() {
        assert_eq!(purpose_meets("Research", "Research"), Level::Certain);
        assert_eq!(purpose_meets("Research", "Research.Clinical"), Level::Possible);
        assert_eq!(purpose_meets("Research.Clinical", "Research"), Level::Possible);
        assert_eq!(purpose_meets("Research", "ResearchX"), Level::No);
    }

    #[test]
    fn names_follow_the_template_cases() {
        assert_eq!(data_source_name(None, "CUSTOMERS", "PUBLIC", "SALES"), "public customers");
        assert_eq!(
            data_source_name(Some("sales <tablename>"), "CUSTOMERS", "PUBLIC", "SALES"),
            "sales customers"
        );
        assert_eq!(
            data_source_name(Some("<Database> <TABLENAME> <x>"), "Orders", "s", "sales"),
            "Sales ORDERS <x>"
        );
        assert_eq!(loose_name("TPC.Customer"), loose_name("tpc  customer"));
    }

    #[test]
    fn column_tagged_finds_the_tags_of_a_predicate() {
        let sql = "@columnTagged('Discovered.Country') = 'US' OR @COLUMNTAGGED( \"A.B\" ) > 1";
        assert_eq!(column_tagged(sql), ["Discovered.Country", "A.B"]);
        assert!(literal_regex("EMAIL") && !literal_regex("^EMAIL$"));
    }
}
