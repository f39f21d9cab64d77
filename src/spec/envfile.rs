//! Env files listed in `immuta-gitops.yaml` (`envFiles:`): default values for `${VAR}`
//! placeholders, for variables the process environment does not set (the environment wins, as
//! with docker compose's `.env`).
//!
//! The format is the common dotenv subset: `KEY=VALUE` lines, an optional `export ` prefix,
//! `#` comments, blank lines, and values in single quotes (literal) or double quotes (with `\n`,
//! `\"`, `\\` escapes). Unlike the `dotenvy` crate this parser is pure (no substitution from the
//! process environment) and its errors never quote the line, which may hold a secret.

use std::collections::BTreeMap;
use std::fmt;

/// Variables read from env files. `Debug` never shows values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvValues(BTreeMap<String, String>);

impl fmt::Debug for EnvValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl EnvValues {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether `name` is defined.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The defined names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Adds the variables of `other` that are not defined yet (earlier files win).
    pub fn merge(&mut self, other: EnvValues) {
        for (k, v) in other.0 {
            self.0.entry(k).or_insert(v);
        }
    }
}

/// A syntax error: the 1-based line and what is wrong, never the line's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileError {
    /// 1-based line.
    pub line: u32,
    /// What is wrong.
    pub message: &'static str,
}

/// Parses an env file.
pub fn parse(text: &str) -> Result<EnvValues, EnvFileError> {
    let mut values = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let err = |message| EnvFileError { line: line_no, message };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            return Err(err("expected `KEY=VALUE`"));
        };
        let key = key.trim();
        let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(err("the variable name must be letters, digits and `_`"));
        }
        let value = value.trim();
        let value = if let Some(rest) = value.strip_prefix('\'') {
            let Some(end) = rest.find('\'') else { return Err(err("unterminated single quote")) };
            rest[..end].to_owned()
        } else if let Some(rest) = value.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = rest.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(other) => out.push(other),
                        None => break,
                    },
                    c => out.push(c),
                }
            }
            if !closed {
                return Err(err("unterminated double quote"));
            }
            out
        } else {
            // Unquoted: a ` #` starts a comment.
            value.split(" #").next().unwrap_or_default().trim_end().to_owned()
        };
        values.entry(key.to_owned()).or_insert(value);
    }
    Ok(EnvValues(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_dotenv_subset() {
        let v = parse(
            "# c\nA=1\nexport B = two # note\nC='lit $X #x'\nD=\"a\\nb \\\"q\\\"\"\nA=ignored\n",
        )
        .unwrap();
        assert_eq!(v.get("A"), Some("1"));
        assert_eq!(v.get("B"), Some("two"));
        assert_eq!(v.get("C"), Some("lit $X #x"));
        assert_eq!(v.get("D"), Some("a\nb \"q\""));
    }

    #[test]
    fn errors_name_the_line_not_its_text_and_debug_hides_values() {
        let e = parse("A=1\nsecret-value\n").unwrap_err();
        assert_eq!(e, EnvFileError { line: 2, message: "expected `KEY=VALUE`" });
        let v = parse("PW=hunter2\n").unwrap();
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
