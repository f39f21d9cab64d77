//! Row rules and subscription policies of one table, before and after (rules R1, R2, S1–S4).

use super::masks::audience;
use super::*;

/// Walks two lists sorted by `cmp`, calling `f` with each key's items (either may be absent).
pub(super) fn merge<'x, T>(
    b: &'x [T],
    a: &'x [T],
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
    mut f: impl FnMut(Option<&'x T>, Option<&'x T>),
) {
    let (mut i, mut j) = (0, 0);
    while i < b.len() || j < a.len() {
        match (b.get(i), a.get(j)) {
            (Some(x), Some(y)) => match cmp(x, y) {
                std::cmp::Ordering::Less => {
                    f(Some(x), None);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    f(None, Some(y));
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    f(Some(x), Some(y));
                    i += 1;
                    j += 1;
                }
            },
            (Some(x), None) => {
                f(Some(x), None);
                i += 1;
            }
            (None, Some(y)) => {
                f(None, Some(y));
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// Orders (policy, rule) pairs by key then rule; the same shared policy needs no string
/// comparison.
pub(super) fn by_rule(x: (&Arc<Policy>, u32), y: (&Arc<Policy>, u32)) -> std::cmp::Ordering {
    if Arc::ptr_eq(x.0, y.0) {
        x.1.cmp(&y.1)
    } else {
        (x.0.key.as_str(), x.1).cmp(&(y.0.key.as_str(), y.1))
    }
}

/// Row rules of one table, before and after (rules R1, R2). Both lists are sorted by policy
/// key and rule.
pub(super) fn rows(
    b: &[RowCandidate],
    a: &[RowCandidate],
    changed: bool,
    after: &World,
) -> Vec<Template> {
    let mut out = Vec::new();
    merge(
        b,
        a,
        |x, y| by_rule((&x.policy, x.rule), (&y.policy, y.rule)),
        |x, y| match (x, y) {
            (Some(r), None) => out.push(
                Template::new(FindingKind::RowRestrictionRemoved, Direction::Widening)
                    .policy(&r.policy.key)
                    .was(r.rows().1)
                    .sure(!changed, TAGS_CHANGED)
                    .sure(r.level == Level::Certain, AMBIGUOUS),
            ),
            (None, Some(r)) => out.push(
                Template::new(FindingKind::RowRestrictionAdded, Direction::Narrowing)
                    .policy(&r.policy.key)
                    .now(r.rows().1)
                    .sure(r.level == Level::Certain, AMBIGUOUS),
            ),
            (Some(r), Some(n)) if !Arc::ptr_eq(&r.policy, &n.policy) => {
                if r.rows().0 != n.rows().0 {
                    out.push(
                        Template::new(FindingKind::RowRestrictionChanged, Direction::Widening)
                            .policy(&r.policy.key)
                            .was(r.rows().1)
                            .now(n.rows().1)
                            .sure(false, RULE_CHANGED),
                    );
                }
                if r.audience() != n.audience() {
                    out.extend(audience(
                        &r.policy.key,
                        r.audience(),
                        n.audience(),
                        "see every row of",
                        after,
                    ));
                }
            }
            _ => {}
        },
    );
    out
}

fn principal_labels(p: Option<&Principals>) -> BTreeSet<String> {
    p.map(Principals::labels).unwrap_or_default().into_iter().collect()
}

/// How who may subscribe (or, with `verb` `join`, join a project) changed (rule S2), as
/// (direction, what changed).
pub(super) fn access_changes(b: &Access, a: &Access, verb: &str) -> Vec<(Direction, String)> {
    let mut out = Vec::new();
    let (ob, oa) = (b.openness(), a.openness());
    if b.kind != a.kind {
        let direction = if oa > ob || (oa == ob && oa != Openness::Manual) {
            Direction::Widening
        } else {
            Direction::Narrowing
        };
        let now = if oa == Openness::Anyone {
            format!("anyone may now {verb}")
        } else {
            format!("now {}", a.describe())
        };
        out.push((direction, now));
    } else {
        let (lb, la) =
            (principal_labels(b.entitlements.as_ref()), principal_labels(a.entitlements.as_ref()));
        let op = a.entitlements.as_ref().map_or(Op::Any, Principals::operator);
        let added: Vec<String> = la.difference(&lb).cloned().collect();
        let removed: Vec<String> = lb.difference(&la).cloned().collect();
        let (widen, narrow) = match op {
            Op::Any => (added, removed),
            Op::All => (removed, added),
        };
        if !widen.is_empty() {
            out.push((Direction::Widening, format!("{} may now qualify", widen.join(", "))));
        }
        if !narrow.is_empty() {
            out.push((Direction::Narrowing, format!("{} no longer qualify", narrow.join(", "))));
        }
        let opb = b.entitlements.as_ref().map_or(Op::Any, Principals::operator);
        if widen.is_empty() && narrow.is_empty() && opb != op {
            out.push(if op == Op::Any {
                (Direction::Widening, "any one entitlement now qualifies (was: all)".to_owned())
            } else {
                (Direction::Narrowing, "every entitlement is now required (was: any)".to_owned())
            });
        }
        if b.advanced != a.advanced {
            out.push((
                Direction::Widening,
                format!(
                    "the advanced rule changed to {}",
                    a.advanced.as_deref().map_or("none".into(), |x| format!("`{x}`"))
                ),
            ));
        }
        let gone: Vec<&String> = b.approvals.difference(&a.approvals).collect();
        let new: Vec<&String> = a.approvals.difference(&b.approvals).collect();
        if !gone.is_empty() {
            out.push((
                Direction::Widening,
                format!(
                    "approval by {} is no longer asked",
                    gone.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if !new.is_empty() && gone.is_empty() {
            out.push((
                Direction::Narrowing,
                format!(
                    "approval by {} is now asked",
                    new.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let flags = [
        (
            b.automatic,
            a.automatic,
            "eligible users are subscribed automatically",
            "eligible users must now ask to subscribe",
        ),
        (
            b.discovery,
            a.discovery,
            "users who do not qualify can discover it",
            "only qualifying users can discover it",
        ),
        (
            b.share == Some(true),
            a.share == Some(true),
            "it merges with other policies with OR (`shareResponsibility: true`)",
            "it no longer merges with other policies with OR",
        ),
        (
            b.grant.as_deref() == Some("WRITE"),
            a.grant.as_deref() == Some("WRITE"),
            "it grants WRITE access",
            "it no longer grants WRITE access",
        ),
    ];
    for (was, now, widened, narrowed) in flags {
        if was != now {
            out.push(if now {
                (Direction::Widening, widened.to_owned())
            } else {
                (Direction::Narrowing, narrowed.to_owned())
            });
        }
    }
    out
}

/// Subscription policies of one table, before and after (rules S1–S4). Both lists are sorted
/// by policy key.
pub(super) fn subscriptions(
    b: &[SubCandidate],
    a: &[SubCandidate],
    changed: bool,
) -> Vec<Template> {
    let mut out = Vec::new();
    let listing = |l: &[SubCandidate]| {
        l.iter()
            .map(|s| format!("`{}`: {}", s.policy.key, s.access().describe()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !b.is_empty() && a.is_empty() {
        let certain = b.iter().any(|s| s.level == Level::Certain);
        let mut t = Template::new(FindingKind::SubscriptionUngoverned, Direction::Widening)
            .was(listing(b))
            .sure(!changed, TAGS_CHANGED)
            .sure(certain, AMBIGUOUS);
        if let [only] = b {
            t.policy = Some(only.policy.key.clone());
        }
        out.push(t);
        return out;
    }
    let sole = b.len() <= 1 && a.len() <= 1;
    let by_key = |x: &SubCandidate, y: &SubCandidate| {
        if Arc::ptr_eq(&x.policy, &y.policy) {
            std::cmp::Ordering::Equal
        } else {
            x.policy.key.cmp(&y.policy.key)
        }
    };
    merge(b, a, by_key, |x, y| match (x, y) {
        (None, Some(s)) => {
            let open = s.access().openness();
            let k = &s.policy.key;
            if b.is_empty() {
                let t = if open >= Openness::Unknown {
                    Template::new(FindingKind::SubscriptionWidened, Direction::Widening)
                        .now(format!("{} may subscribe", s.access().describe()))
                        .was("no subscription policy (the data platform's own grants)")
                } else {
                    Template::new(FindingKind::SubscriptionNarrowed, Direction::Narrowing)
                        .now(format!("only {} may subscribe", s.access().describe()))
                        .was("no subscription policy (the data platform's own grants)")
                };
                out.push(t.policy(k).sure(s.level == Level::Certain, AMBIGUOUS));
            } else if open != Openness::Manual {
                out.push(
                    Template::new(FindingKind::SubscriptionWidened, Direction::Widening)
                        .policy(k)
                        .now(format!(
                            "the policy now also applies: {} may subscribe",
                            s.access().describe()
                        ))
                        .was(listing(b))
                        .sure(false, MERGE),
                );
            }
        }
        (Some(s), None) => out.push(
            Template::new(FindingKind::SubscriptionWidened, Direction::Widening)
                .policy(&s.policy.key)
                .now(format!(
                    "the policy no longer applies (it admitted {}); still applying: {}",
                    s.access().describe(),
                    codes(a.iter().map(|x| x.policy.key.as_str()))
                ))
                .was(listing(b))
                .sure(false, MERGE)
                .sure(!changed, TAGS_CHANGED),
        ),
        (Some(sb), Some(sa))
            if !Arc::ptr_eq(&sb.policy, &sa.policy) && sb.access() != sa.access() =>
        {
            for (direction, now) in access_changes(sb.access(), sa.access(), "subscribe") {
                let kind = match direction {
                    Direction::Widening => FindingKind::SubscriptionWidened,
                    Direction::Narrowing => FindingKind::SubscriptionNarrowed,
                };
                let certain = sole && sa.level == Level::Certain && sb.level == Level::Certain;
                out.push(
                    Template::new(kind, direction)
                        .policy(&sa.policy.key)
                        .now(now)
                        .was(sb.access().describe())
                        .sure(certain, if sole { AMBIGUOUS } else { MERGE }),
                );
            }
        }
        _ => {}
    });
    out
}
