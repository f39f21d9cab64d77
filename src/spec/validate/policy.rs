//! Policy checks: the policy `type`, the shape of `actions` for that type, and each data-policy
//! rule's `config` against what its rule type needs (masking types and fields included).

use super::FileCtx;
use crate::diagnostic::Code;
use crate::spec::de::{self, Seg};
use crate::spec::model::{self, RuleType, Spec};
use crate::spec::node::{Node, Value};
use crate::spec::text::shown;

/// Validates a policy document by its `type` (subscription or data).
pub(in crate::spec) fn policy(ctx: &mut FileCtx<'_>, root: &Node) -> Option<Spec> {
    let Some((type_key, type_node)) = root.entry("type") else {
        ctx.error(
            Code::MissingField,
            "missing required field `type`",
            root.pos,
            &[],
            "add `type: subscription` or `type: data`",
        );
        return None;
    };
    let type_path = [Seg::Key(type_key.name.clone())];
    let actions = root.entry("actions");
    match type_node.as_str() {
        Some("subscription") => {
            if let Some((k, a)) = actions
                && matches!(a.value, Value::Seq(_))
            {
                ctx.error(
                    Code::ActionsShape,
                    "a subscription policy's `actions` must be a mapping, not a list",
                    a.pos,
                    &[Seg::Key(k.name.clone())],
                    "write `actions: {type: anyone|approval|entitlements|manual, ...}`; lists of \
                     `{rules: [...]}` belong to data policies (`type: data`)",
                );
            }
            ctx.typed::<model::SubscriptionPolicySpec>(root, &[])
                .map(|s| Spec::SubscriptionPolicy(Box::new(s)))
        }
        Some("data") => {
            if let Some((k, a)) = actions
                && matches!(a.value, Value::Map(_))
            {
                ctx.error(
                    Code::ActionsShape,
                    "a data policy's `actions` must be a list of `{rules: [...]}`, not a mapping",
                    a.pos,
                    &[Seg::Key(k.name.clone())],
                    "write `actions:` followed by `- rules: [...]` items; a mapping belongs to \
                     subscription policies (`type: subscription`)",
                );
            }
            let spec = ctx.typed::<model::DataPolicySpec>(root, &[]);
            if let Some((k, a)) = actions {
                check_rules(ctx, a, &[Seg::Key(k.name.clone())]);
            }
            spec.map(|s| Spec::DataPolicy(Box::new(s)))
        }
        other => {
            let message = match other {
                Some(t) => match de::suggest(t, &["subscription", "data"]) {
                    Some(s) => format!("unknown policy type `{}` (did you mean `{s}`?)", shown(t)),
                    None => format!("unknown policy type `{}`", shown(t)),
                },
                None => {
                    format!("policy `type` must be a string, found {}", type_node.value.type_name())
                }
            };
            ctx.error(
                Code::InvalidValue,
                message,
                type_node.pos,
                &type_path,
                "use `subscription` or `data`",
            );
            None
        }
    }
}

/// Checks each rule's `config` against the shape its `type` needs.
fn check_rules(ctx: &mut FileCtx<'_>, actions: &Node, base: &[Seg]) {
    let Some(actions) = actions.as_seq() else { return };
    for (ai, action) in actions.iter().enumerate() {
        let Some(rules) = action.get("rules").and_then(Node::as_seq) else { continue };
        for (ri, rule) in rules.iter().enumerate() {
            let mut path = base.to_vec();
            path.extend([Seg::Index(ai), Seg::Key("rules".into()), Seg::Index(ri)]);
            let Some(kind) = rule.get("type").and_then(Node::as_str) else { continue };
            let config = rule.entry("config");
            let mut config_path = path.clone();
            config_path.push(Seg::Key("config".into()));
            let needs = |ctx: &mut FileCtx<'_>, what: &str| {
                ctx.error(
                    Code::MissingField,
                    format!("a `{kind}` rule needs a `config` with {what}"),
                    rule.pos,
                    &path,
                    "add `config:` to the rule",
                );
            };
            match kind {
                "Masking" => match config {
                    Some((_, c)) => {
                        if let Some(m) = ctx.typed::<model::MaskingRuleConfig>(c, &config_path) {
                            check_masking(ctx, c, &m, &config_path);
                        }
                    }
                    None => needs(ctx, "`fields` and `maskingConfig`"),
                },
                k if RuleType::RowRestrictionByCustomWhereClause.spellings().contains(&k) => {
                    match config {
                        Some((_, c)) => {
                            ctx.typed::<model::WhereClauseRuleConfig>(c, &config_path);
                        }
                        None => needs(ctx, "a `predicate`"),
                    }
                }
                k if RuleType::RowRestrictionByUserEntitlements.spellings().contains(&k) => {
                    match config {
                        Some((_, c)) => {
                            ctx.typed::<model::EntitlementsRuleConfig>(c, &config_path);
                        }
                        None => needs(ctx, "`matches`"),
                    }
                }
                // Minimization, Time Restriction, Purpose Restriction: shapes not documented.
                _ => {}
            }
        }
    }
}

fn check_masking(ctx: &mut FileCtx<'_>, config: &Node, m: &model::MaskingRuleConfig, path: &[Seg]) {
    let mc_node = config.get("maskingConfig").unwrap_or(config);
    let mut mc_path = path.to_vec();
    mc_path.push(Seg::Key("maskingConfig".into()));
    let type_pos = mc_node.get("type").map_or(mc_node.pos, |n| n.pos);
    let mut type_path = mc_path.clone();
    type_path.push(Seg::Key("type".into()));
    let kind = m.masking_config.kind.as_str();
    match kind {
        "Constant" if m.masking_config.constant.is_none() => ctx.error(
            Code::MissingField,
            "a `Constant` masking rule needs `constant`",
            mc_node.pos,
            &mc_path,
            "add `constant: REDACTED` (the replacement value)",
        ),
        "Custom Function" if m.masking_config.sql_function.is_none() => ctx.error(
            Code::MissingField,
            "a `Custom Function` masking rule needs `sqlFunction`",
            mc_node.pos,
            &mc_path,
            "add `sqlFunction: ...` using `@column` for the masked column",
        ),
        k if !model::MASKING_TYPES.contains(&k) => {
            let hint = match de::suggest(k, model::MASKING_TYPES) {
                Some(s) => format!("did you mean `{s}`? Unknown types are posted as written"),
                None => format!(
                    "known types: {}; others are posted as written",
                    model::MASKING_TYPES.join(", ")
                ),
            };
            ctx.warning(
                Code::InvalidValue,
                format!("unknown masking type `{}`", shown(k)),
                type_pos,
                &type_path,
                hint,
            );
        }
        _ => {}
    }
    for (i, f) in m.fields.iter().enumerate() {
        let mut fp = path.to_vec();
        fp.extend([Seg::Key("fields".into()), Seg::Index(i)]);
        let pos = config
            .get("fields")
            .and_then(Node::as_seq)
            .and_then(|s| s.get(i))
            .map_or(config.pos, |n| n.pos);
        if !model::FIELD_TYPES.contains(&f.kind.as_str()) {
            ctx.warning(
                Code::InvalidValue,
                format!("unknown masking field type `{}`", shown(&f.kind)),
                pos,
                &fp,
                format!(
                    "known types: {}; others are posted as written",
                    model::FIELD_TYPES.join(", ")
                ),
            );
        } else if f.kind == "columnTags" && f.column_tag.is_none() {
            ctx.error(
                Code::MissingField,
                "a `columnTags` field needs `columnTag`",
                pos,
                &fp,
                "add `columnTag: Discovered.PII` (the tag whose columns are masked)",
            );
        }
    }
}
