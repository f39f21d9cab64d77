//! Data-source and schema-project names from `nameTemplate` formats.
//!
//! Placeholders are `<tablename>`, `<schema>` and `<database>`, matched case-insensitively. The
//! case the placeholder is written in sets the case of the value: all lower-case (`<tablename>`)
//! gives a lower-case value, all upper-case (`<TABLENAME>`) an upper-case one, anything else
//! (`<Tablename>`) a capitalised one (first character upper-case, the rest lower-case). Other text,
//! including unknown `<placeholders>`, is kept verbatim.

/// Default `dataSourceFormat` when the payload has no `nameTemplate.dataSourceFormat`.
pub(crate) const DEFAULT_DATA_SOURCE_FORMAT: &str = "<schema> <tablename>";
/// Default `tableFormat` (the SQL table name).
pub(crate) const DEFAULT_TABLE_FORMAT: &str = "<tablename>";
/// Default `schemaFormat` (the SQL schema name).
pub(crate) const DEFAULT_SCHEMA_FORMAT: &str = "<schema>";
/// Default `schemaProjectNameFormat`.
pub(crate) const DEFAULT_SCHEMA_PROJECT_FORMAT: &str = "<schema>";

/// The values placeholders expand to.
pub(crate) struct Names<'a> {
    pub(crate) table: &'a str,
    pub(crate) schema: &'a str,
    pub(crate) database: &'a str,
}

/// Expands `format` with `names`.
pub(crate) fn render(format: &str, names: &Names<'_>) -> String {
    let mut out = String::with_capacity(format.len() + 16);
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
            "tablename" => Some(names.table),
            "schema" => Some(names.schema),
            "database" => Some(names.database),
            _ => None,
        };
        match value {
            Some(value) => out.push_str(&apply_case(placeholder, value)),
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

fn apply_case(placeholder: &str, value: &str) -> String {
    if placeholder.chars().all(|c| !c.is_uppercase()) {
        value.to_lowercase()
    } else if placeholder.chars().all(|c| !c.is_lowercase()) {
        value.to_uppercase()
    } else {
        let lower = value.to_lowercase();
        let mut chars = lower.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: Names<'static> = Names { table: "CUSTOMER_ORDERS", schema: "Public", database: "TPC" };

    #[test]
    fn placeholder_case_sets_value_case() {
        assert_eq!(render("<schema> <tablename>", &N), "public customer_orders");
        assert_eq!(render("Databricks <Tablename>", &N), "Databricks Customer_orders");
        assert_eq!(render("<DATABASE>.<SCHEMA>.<TABLENAME>", &N), "TPC.PUBLIC.CUSTOMER_ORDERS");
    }

    #[test]
    fn unknown_placeholders_and_stray_brackets_are_kept() {
        assert_eq!(render("<owner> x<tablename", &N), "<owner> x<tablename");
    }
}
