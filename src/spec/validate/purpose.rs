//! Purpose checks: every subpurpose is named after its parent (`Parent.Child`), at any depth.

use super::FileCtx;
use crate::diagnostic::Code;
use crate::spec::de::Seg;
use crate::spec::node::Node;
use crate::spec::text::shown;

/// Checks the subpurposes of `node` (named `parent`) and theirs, recursively.
pub(in crate::spec) fn check_subpurposes(
    ctx: &mut FileCtx<'_>,
    node: &Node,
    parent: &str,
    path: &mut Vec<Seg>,
) {
    let Some(subs) = node.get("subpurposes").and_then(Node::as_seq) else { return };
    path.push(Seg::Key("subpurposes".into()));
    for (i, sub) in subs.iter().enumerate() {
        path.push(Seg::Index(i));
        if let Some((nk, nn)) = sub.entry("name")
            && let Some(name) = nn.as_str()
        {
            let ok = name
                .strip_prefix(parent)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|r| !r.is_empty());
            if !ok {
                path.push(Seg::Key(nk.name.clone()));
                let own = match name.rsplit('.').next() {
                    Some(own) if !own.is_empty() => shown(own).into_owned(),
                    _ => "<name>".to_owned(),
                };
                ctx.error(
                    Code::SubpurposeName,
                    format!(
                        "subpurpose `{}` is not named after its parent `{}`",
                        shown(name),
                        shown(parent)
                    ),
                    nn.pos,
                    path,
                    format!(
                        "subpurpose names are full dotted names: write `name: {}.{own}`",
                        shown(parent),
                    ),
                );
                path.pop();
            }
            check_subpurposes(ctx, sub, name, path);
        }
        path.pop();
    }
    path.pop();
}
