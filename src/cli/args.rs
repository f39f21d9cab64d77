//! Terraform-style single-dash long flags: `-auto-approve` is read as `--auto-approve`, as
//! Terraform users type it (Terraform accepts both spellings).
//!
//! Only a word that is exactly the long name of an option of the command being parsed (or a
//! global option) is rewritten, with its `=value` if any; short flags, clusters of short flags,
//! values and everything after `--` are left alone, so nothing that parsed before means
//! something else now.

use std::ffi::OsString;

/// The command line with single-dash long flags spelled with two dashes.
pub fn normalize(args: Vec<OsString>, root: &clap::Command) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut path: Vec<&clap::Command> = vec![root];
    let mut rest = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || rest {
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let current = path.last().copied().unwrap_or(root);
        if !text.starts_with('-') {
            if let Some(sub) = current.find_subcommand(text) {
                path.push(sub);
            }
            out.push(arg);
            continue;
        }
        let rewritten = single_dash_long(text).filter(|name| {
            path.iter().enumerate().any(|(depth, cmd)| {
                cmd.get_arguments().any(|a| {
                    a.get_long() == Some(name) && (depth + 1 == path.len() || a.is_global_set())
                })
            })
        });
        match rewritten {
            Some(_) => out.push(OsString::from(format!("-{text}"))),
            None => out.push(arg),
        }
    }
    out
}

/// The long name in `-name` or `-name=value` (two or more characters, starting with a letter).
fn single_dash_long(text: &str) -> Option<&str> {
    let body = text.strip_prefix('-').filter(|b| !b.starts_with('-'))?;
    let name = body.split_once('=').map_or(body, |(name, _)| name);
    let valid = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        let args = std::iter::once("immuta-gitops").chain(args.iter().copied());
        normalize(args.map(OsString::from).collect(), &super::super::Cli::command())
            .into_iter()
            .skip(1)
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_of_the_command_get_two_dashes() {
        assert_eq!(
            run(&["apply", "specs", "-auto-approve", "-parallelism=4"]),
            ["apply", "specs", "--auto-approve", "--parallelism=4"]
        );
        // A global option, after the subcommand.
        assert_eq!(
            run(&["plan", "specs", "-color", "never"]),
            ["plan", "specs", "--color", "never"]
        );
        // A nested subcommand's own option.
        assert_eq!(
            run(&["license", "status", "-format", "json"]),
            ["license", "status", "--format", "json"]
        );
    }

    #[test]
    fn everything_else_is_left_alone() {
        for args in [
            &["plan", "-h"][..],
            &["plan", "specs", "--", "-auto-approve"],
            &["plan", "-no-such-flag"],
            // `--auto-approve` is apply's, not plan's.
            &["plan", "-auto-approve"],
            &["plan", "--out", "-"],
        ] {
            assert_eq!(run(args), args, "{args:?}");
        }
    }
}
