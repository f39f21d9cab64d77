//! The masking of one column, before and after, and how a rule's audience changed (rules
//! M1–M5, E1, E2).

use super::access::{by_rule, merge};
use super::*;

/// `Constant, policy `k``; `one of Constant (`a`), Null where ... (`b`)`.
fn describe_masks(list: &[&MaskCandidate]) -> String {
    match list {
        [] => "not masked".to_owned(),
        [one] => format!(
            "{}, policy `{}`",
            one.masking().map_or_else(String::new, |m| m.describe()),
            one.policy.key
        ),
        many => {
            let items: Vec<String> = many
                .iter()
                .take(4)
                .map(|c| {
                    format!(
                        "{} (`{}`)",
                        c.masking().map_or_else(String::new, |m| m.describe()),
                        c.policy.key
                    )
                })
                .collect();
            let more = many.len().saturating_sub(4);
            let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
            format!("one of {}{tail}", items.join(", "))
        }
    }
}

/// Masking of one column, before and after (rules M1–M5, E1, E2).
pub(super) fn masking(
    b: &[MaskCandidate],
    a: &[MaskCandidate],
    changed: bool,
    after: &World,
) -> Vec<Template> {
    // Unchanged policies are shared by both sides: the same rule of the same `Arc` is the
    // same rule.
    let same = b.len() == a.len()
        && b.iter().zip(a).all(|(x, y)| {
            x.rule == y.rule
                && x.level == y.level
                && (Arc::ptr_eq(&x.policy, &y.policy)
                    || (x.policy.key == y.policy.key
                        && x.masking() == y.masking()
                        && x.audience() == y.audience()))
        });
    if same {
        return Vec::new();
    }
    let rb: Vec<&MaskCandidate> = b.iter().filter(|c| c.strength() > Strength::None).collect();
    let ra: Vec<&MaskCandidate> = a.iter().filter(|c| c.strength() > Strength::None).collect();
    let certain_b = rb.iter().any(|c| c.level == Level::Certain);
    let certain_a = ra.iter().any(|c| c.level == Level::Certain);
    let single = |l: &[&MaskCandidate]| {
        let keys: BTreeSet<&str> = l.iter().map(|c| c.policy.key.as_str()).collect();
        (keys.len() == 1).then(|| keys.into_iter().next().unwrap_or_default().to_owned())
    };
    let mut out = Vec::new();
    match (rb.is_empty(), ra.is_empty()) {
        (false, true) => {
            let mut t = Template::new(FindingKind::MaskingRemoved, Direction::Widening)
                .was(describe_masks(&rb));
            t.policy = single(&rb);
            out.push(t.sure(!changed, TAGS_CHANGED).sure(certain_b, AMBIGUOUS));
        }
        (true, false) => {
            let mut t = Template::new(FindingKind::MaskingAdded, Direction::Narrowing)
                .now(describe_masks(&ra));
            t.policy = single(&ra);
            out.push(t.sure(certain_a, AMBIGUOUS));
        }
        (false, false) => {
            let range = |l: &[&MaskCandidate]| {
                let s = l.iter().map(|c| c.strength());
                (s.clone().min().unwrap_or(Strength::None), s.max().unwrap_or(Strength::None))
            };
            let ((min_b, max_b), (min_a, max_a)) = (range(&rb), range(&ra));
            let ties = rb.len() > 1 || ra.len() > 1;
            let base = |kind, direction| {
                let mut t = Template::new(kind, direction)
                    .was(describe_masks(&rb))
                    .now(describe_masks(&ra));
                t.policy = single(&ra).filter(|p| single(&rb).as_ref() == Some(p));
                t
            };
            if min_a < min_b || max_a < max_b {
                let certain = max_a.certainly_stronger(min_b);
                out.push(
                    base(FindingKind::MaskingWeakened, Direction::Widening)
                        .sure(!ties, TIES)
                        .sure(certain, STRENGTH)
                        .sure(!changed, TAGS_CHANGED),
                );
            } else if min_a > min_b || max_a > max_b {
                let certain = max_b.certainly_stronger(min_a);
                out.push(
                    base(FindingKind::MaskingStrengthened, Direction::Narrowing)
                        .sure(!ties, TIES)
                        .sure(certain, STRENGTH),
                );
            } else {
                let mut changed_rule = false;
                merge(
                    &rb,
                    &ra,
                    |x, y| by_rule((&x.policy, x.rule), (&y.policy, y.rule)),
                    |x, y| {
                        if let (Some(x), Some(y)) = (x, y) {
                            changed_rule |=
                                !Arc::ptr_eq(&x.policy, &y.policy) && x.masking() != y.masking();
                        }
                    },
                );
                if changed_rule {
                    out.push(
                        base(FindingKind::MaskingChanged, Direction::Widening)
                            .sure(false, RULE_CHANGED),
                    );
                }
            }
        }
        (true, true) => {}
    }
    // The same rule, with other people excepted (rules E1, E2).
    merge(
        &rb,
        &ra,
        |x, y| by_rule((&x.policy, x.rule), (&y.policy, y.rule)),
        |x, y| {
            if let (Some(x), Some(y)) = (x, y)
                && !Arc::ptr_eq(&x.policy, &y.policy)
                && x.audience() != y.audience()
            {
                out.extend(audience(
                    &x.policy.key,
                    x.audience(),
                    y.audience(),
                    "see unmasked values of",
                    after,
                ));
            }
        },
    );
    out
}

/// How a rule's audience changed: exceptions (rule E1) and inclusions (rule E2).
pub(super) fn audience(
    policy: &str,
    b: &Audience,
    a: &Audience,
    what: &str,
    after: &World,
) -> Vec<Template> {
    let mut out = Vec::new();
    let describe = |_: &Principals, who: &BTreeSet<String>| -> String {
        who.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    let empty = Principals::default();
    let eb = b.exceptions.as_ref().unwrap_or(&empty);
    let ea = a.exceptions.as_ref().unwrap_or(&empty);
    let labels = |p: &Principals| -> BTreeSet<String> {
        p.groups
            .iter()
            .map(|g| format!("members of group `{g}`"))
            .chain(p.attributes.iter().map(|x| format!("users with attribute `{x}`")))
            .chain(p.purposes.iter().map(|x| {
                let projects = projects_meeting(x, after.projects.values().map(|p| p.as_ref()));
                let names: Vec<String> = projects.iter().map(|(k, _)| format!("`{k}`")).collect();
                if names.is_empty() {
                    format!("users acting under purpose `{x}`")
                } else {
                    format!(
                        "members of projects acting under purpose `{x}` (project{} {})",
                        if names.len() == 1 { "" } else { "s" },
                        names.join(", ")
                    )
                }
            }))
            .collect()
    };
    let (lb, la) = (labels(eb), labels(ea));
    let added: BTreeSet<String> = la.difference(&lb).cloned().collect();
    let removed: BTreeSet<String> = lb.difference(&la).cloned().collect();
    let was = b.describe();
    let now = a.describe();
    let hierarchy = ea.purposes.iter().any(|p| {
        projects_meeting(p, after.projects.values().map(|x| x.as_ref()))
            .iter()
            .any(|(_, l)| *l == Level::Possible)
    });
    // Under `any` a new principal excepts more people; under `all` it is one more condition
    // to meet, so fewer.
    let (widen, narrow) = match ea.operator() {
        Op::Any => (added, removed),
        Op::All => (removed, added),
    };
    if !widen.is_empty() {
        out.push(
            Template::new(FindingKind::ExceptionWidened, Direction::Widening)
                .policy(policy)
                .who(format!("{} now {what}", describe(ea, &widen)))
                .was(was.clone())
                .now(now.clone())
                .sure(!hierarchy, HIERARCHY),
        );
    }
    if !narrow.is_empty() {
        out.push(
            Template::new(FindingKind::ExceptionNarrowed, Direction::Narrowing)
                .policy(policy)
                .who(format!("{} no longer {what}", describe(eb, &narrow)))
                .was(was.clone())
                .now(now.clone()),
        );
    }
    if widen.is_empty() && narrow.is_empty() && eb.operator() != ea.operator() && !ea.is_empty() {
        let direction =
            if ea.operator() == Op::Any { Direction::Widening } else { Direction::Narrowing };
        let kind = if direction == Direction::Widening {
            FindingKind::ExceptionWidened
        } else {
            FindingKind::ExceptionNarrowed
        };
        out.push(
            Template::new(kind, direction)
                .policy(policy)
                .who(format!(
                    "users meeting {} of the exception's conditions {what}",
                    if ea.operator() == Op::Any { "any" } else { "all" }
                ))
                .was(was.clone())
                .now(now.clone()),
        );
    }
    // Inclusions: the rule protects only the included users.
    if b.inclusions != a.inclusions {
        let ib = b.inclusions.as_ref().filter(|i| !i.is_empty());
        let ia = a.inclusions.as_ref().filter(|i| !i.is_empty());
        let direction = match (ib, ia) {
            (None, Some(_)) => Some(Direction::Widening),
            (Some(_), None) => Some(Direction::Narrowing),
            (Some(x), Some(y)) => {
                let (lx, ly) = (labels(x), labels(y));
                let fewer = match y.operator() {
                    Op::Any => !lx.difference(&ly).collect::<Vec<_>>().is_empty(),
                    Op::All => !ly.difference(&lx).collect::<Vec<_>>().is_empty(),
                };
                Some(if fewer || x.operator() != y.operator() {
                    Direction::Widening
                } else {
                    Direction::Narrowing
                })
            }
            (None, None) => None,
        };
        if let Some(direction) = direction {
            let kind = match direction {
                Direction::Widening => FindingKind::ExceptionWidened,
                Direction::Narrowing => FindingKind::ExceptionNarrowed,
            };
            let who = match direction {
                Direction::Widening => format!("users the rule no longer includes {what}"),
                Direction::Narrowing => format!("users the rule now includes no longer {what}")
                    .replace("no longer no longer", "no longer"),
            };
            out
                .push(Template::new(kind, direction).policy(policy).who(who).was(was).now(now).sure(
                direction == Direction::Narrowing,
                "users outside every inclusion of an otherwise chain may be unprotected (rule E2)",
            ));
        }
    }
    out
}
