//! The payload of `POST /api/v2/data`, validated into a [`DataRequest`]: the connection, the
//! naming formats, options, owners and each explicit `sources` entry, with every error naming
//! its field.

use serde_json::{Map, Value};

use crate::http::{ApiError, ApiResult};
use crate::json::{
    as_object, join, opt_array, opt_bool, opt_object, opt_str, opt_str_list, req_str,
};
use crate::naming;
use crate::store::Owner;

/// A validated `POST /api/v2/data` payload (borrowing the canonical, digested payload).
pub(super) struct DataRequest<'a> {
    pub(super) payload: &'a Value,
    pub(super) key: &'a str,
    pub(super) handler: &'a str,
    /// Where the data lives: `hostname`, or for BigQuery (which has none) the GCP project
    /// `sid`, for Athena the `region`.
    pub(super) hostname: &'a str,
    pub(super) database: &'a str,
    pub(super) connection_string: String,
    /// `connection.schema`: restricts `all` to one schema.
    pub(super) only_schema: Option<&'a str>,
    pub(super) formats: Formats<'a>,
    pub(super) hard_delete: bool,
    pub(super) table_tags: Vec<String>,
    pub(super) owners: Option<Vec<Owner>>,
    /// `sources` absent, or holding `{all: true}`.
    pub(super) all: bool,
    pub(super) entries: Vec<Entry<'a>>,
}

pub(super) struct Formats<'a> {
    pub(super) data_source: &'a str,
    pub(super) table: &'a str,
    pub(super) schema: &'a str,
    pub(super) schema_project: &'a str,
}

/// One explicit `sources` entry.
pub(super) struct Entry<'a> {
    pub(super) path: String,
    pub(super) kind: EntryKind<'a>,
    pub(super) naming_datasource: Option<&'a str>,
    pub(super) naming_table: Option<&'a str>,
    pub(super) naming_schema: Option<&'a str>,
    pub(super) description: Option<String>,
    pub(super) documentation: Option<String>,
    pub(super) owners: Option<Vec<Owner>>,
    pub(super) tags: Vec<String>,
    pub(super) column_tags: Vec<(String, Vec<String>)>,
    pub(super) columns: Option<Vec<Value>>,
    pub(super) column_descriptions: Vec<(String, String)>,
}

pub(super) enum EntryKind<'a> {
    Table { schema: &'a str, table: &'a str },
    Query { query: &'a str },
}

impl<'a> DataRequest<'a> {
    pub(super) fn parse(payload: &'a Value) -> ApiResult<DataRequest<'a>> {
        let obj = as_object(payload, "the request body")?;
        let key = req_str(obj, "connectionKey", "")?;
        let connection = match obj.get("connection") {
            None | Some(Value::Null) => {
                return Err(ApiError::bad_request("connection is required"));
            }
            Some(v) => as_object(v, "connection")?,
        };
        let handler = req_str(connection, "handler", "connection")?;
        // BigQuery needs no hostname (it has a GCP project, `sid`), nor does Athena (a region).
        let hostname = match handler {
            "Google BigQuery" | "BigQuery" => {
                match opt_str(connection, "hostname", "connection")? {
                    Some(h) => h,
                    None => req_str(connection, "sid", "connection")?,
                }
            }
            "Athena" | "Amazon Athena" => match opt_str(connection, "hostname", "connection")? {
                Some(h) => h,
                None => req_str(connection, "region", "connection")?,
            },
            _ => req_str(connection, "hostname", "connection")?,
        };
        let database = opt_str(connection, "database", "connection")?.unwrap_or("");
        let port = match connection.get("port") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(s)) if s.parse::<u16>().is_ok() => Some(s.clone()),
            Some(_) => {
                return Err(ApiError::bad_request("connection.port must be a port number"));
            }
        };
        opt_str(connection, "httpPath", "connection")?;
        let username = opt_str(connection, "username", "connection")?;
        let only_schema = opt_str(connection, "schema", "connection")?;
        if let Some(files) = opt_array(connection, "userFiles", "connection")? {
            for (i, file) in files.iter().enumerate() {
                as_object(file, &format!("connection.userFiles[{i}]"))?;
            }
        }
        let mut connection_string = String::new();
        if let Some(user) = username {
            connection_string.push_str(user);
            connection_string.push('@');
        }
        connection_string.push_str(hostname);
        if let Some(port) = &port {
            connection_string.push(':');
            connection_string.push_str(port);
        }
        connection_string.push('/');
        connection_string.push_str(database);

        let template = opt_object(obj, "nameTemplate", "")?;
        let format = |key: &str, default: &'static str| -> ApiResult<&'a str> {
            match template {
                Some(t) => Ok(opt_str(t, key, "nameTemplate")?.unwrap_or(default)),
                None => Ok(default),
            }
        };
        let formats = Formats {
            data_source: format("dataSourceFormat", naming::DEFAULT_DATA_SOURCE_FORMAT)?,
            table: format("tableFormat", naming::DEFAULT_TABLE_FORMAT)?,
            schema: format("schemaFormat", naming::DEFAULT_SCHEMA_FORMAT)?,
            schema_project: format(
                "schemaProjectNameFormat",
                naming::DEFAULT_SCHEMA_PROJECT_FORMAT,
            )?,
        };

        let mut hard_delete = false;
        let mut table_tags = Vec::new();
        if let Some(options) = opt_object(obj, "options", "")? {
            hard_delete = opt_bool(options, "hardDelete", "options")?.unwrap_or(false);
            opt_bool(options, "disableSensitiveDataDiscovery", "options")?;
            if let Some(v) = options.get("staleDataTolerance")
                && !v.is_null()
                && !v.is_number()
            {
                return Err(ApiError::bad_request("options.staleDataTolerance must be a number"));
            }
            table_tags = sorted(opt_str_list(options, "tableTags", "options")?.unwrap_or_default());
        }
        let owners = parse_owners(obj, "")?;

        let mut all = false;
        let mut entries = Vec::new();
        match opt_array(obj, "sources", "")? {
            None => all = true,
            Some(sources) => {
                for (i, source) in sources.iter().enumerate() {
                    let path = format!("sources[{i}]");
                    let src = as_object(source, &path)?;
                    match src.get("all") {
                        Some(Value::Bool(true)) => {
                            all = true;
                            continue;
                        }
                        None | Some(Value::Null) => {}
                        Some(_) => {
                            return Err(ApiError::bad_request(format!(
                                "{path}.all must be true when present"
                            )));
                        }
                    }
                    entries.push(Entry::parse(src, path)?);
                }
            }
        }
        Ok(DataRequest {
            payload,
            key,
            handler,
            hostname,
            database,
            connection_string,
            only_schema,
            formats,
            hard_delete,
            table_tags,
            owners,
            all,
            entries,
        })
    }
}

impl<'a> Entry<'a> {
    pub(super) fn parse(src: &'a Map<String, Value>, path: String) -> ApiResult<Entry<'a>> {
        let naming = opt_object(src, "naming", &path)?;
        let naming_path = join(&path, "naming");
        let naming_field = |key: &str| -> ApiResult<Option<&'a str>> {
            match naming {
                Some(n) => opt_str(n, key, &naming_path),
                None => Ok(None),
            }
        };
        let naming_datasource = naming_field("datasource")?;
        let naming_table = naming_field("table")?;
        let naming_schema = naming_field("schema")?;
        let kind = if let Some(query) = opt_str(src, "query", &path)? {
            if naming_datasource.is_none_or(|n| n.trim().is_empty()) {
                return Err(ApiError::bad_request(format!(
                    "{path}.naming.datasource is required for a query source"
                )));
            }
            EntryKind::Query { query }
        } else if src.contains_key("tableName") || src.contains_key("table") {
            // Immuta's own complex example names the table `table`; the attribute docs say
            // `tableName`.
            if src.contains_key("tableName") && src.contains_key("table") {
                return Err(ApiError::bad_request(format!(
                    "{path} names its table twice (tableName and table)"
                )));
            }
            let field = if src.contains_key("table") { "table" } else { "tableName" };
            EntryKind::Table {
                table: req_str(src, field, &path)?,
                schema: req_str(src, "schema", &path)?,
            }
        } else {
            return Err(ApiError::bad_request(format!(
                "{path} must be {{all: true}}, a table ({{tableName, schema}}) or a query \
                 ({{query, naming}})"
            )));
        };
        let mut tags = Vec::new();
        let mut column_tags = Vec::new();
        if let Some(t) = opt_object(src, "tags", &path)? {
            let tags_path = join(&path, "tags");
            tags = sorted(opt_str_list(t, "table", &tags_path)?.unwrap_or_default());
            for (i, c) in opt_array(t, "columns", &tags_path)?.into_iter().flatten().enumerate() {
                let c_path = format!("{tags_path}.columns[{i}]");
                let c = as_object(c, &c_path)?;
                let name = req_str(c, "columnName", &c_path)?;
                let list = sorted(opt_str_list(c, "tags", &c_path)?.unwrap_or_default());
                column_tags.push((name.to_owned(), list));
            }
        }
        let columns = match opt_array(src, "columns", &path)? {
            None => None,
            Some(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let c_path = format!("{path}.columns[{i}]");
                        let obj = as_object(c, &c_path)?;
                        req_str(obj, "name", &c_path)?;
                        opt_str(obj, "dataType", &c_path)?;
                        opt_str(obj, "remoteType", &c_path)?;
                        opt_str(obj, "description", &c_path)?;
                        opt_bool(obj, "nullable", &c_path)?;
                        opt_bool(obj, "primaryKey", &c_path)?;
                        Ok(c.clone())
                    })
                    .collect::<ApiResult<Vec<_>>>()?,
            ),
        };
        let mut column_descriptions = Vec::new();
        for (i, d) in opt_array(src, "columnDescriptions", &path)?.into_iter().flatten().enumerate()
        {
            let d_path = format!("{path}.columnDescriptions[{i}]");
            let d = as_object(d, &d_path)?;
            let name = req_str(d, "columnName", &d_path)?;
            let text = opt_str(d, "description", &d_path)?.unwrap_or("");
            column_descriptions.push((name.to_owned(), text.to_owned()));
        }
        Ok(Entry {
            description: opt_str(src, "description", &path)?.map(str::to_owned),
            documentation: opt_str(src, "documentation", &path)?.map(str::to_owned),
            owners: parse_owners(src, &path)?,
            path,
            kind,
            naming_datasource,
            naming_table,
            naming_schema,
            tags,
            column_tags,
            columns,
            column_descriptions,
        })
    }
}

fn parse_owners(obj: &Map<String, Value>, parent: &str) -> ApiResult<Option<Vec<Owner>>> {
    let Some(items) = opt_array(obj, "owners", parent)? else {
        return Ok(None);
    };
    let path = join(parent, "owners");
    let mut owners: Vec<Owner> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let o_path = format!("{path}[{i}]");
        let o = as_object(item, &o_path)?;
        let kind = req_str(o, "type", &o_path)?;
        if kind != "user" && kind != "group" {
            return Err(ApiError::bad_request(format!("{o_path}.type must be user or group")));
        }
        let owner = Owner {
            kind: kind.to_owned(),
            name: req_str(o, "name", &o_path)?.to_owned(),
            iam: opt_str(o, "iam", &o_path)?.map(str::to_owned),
        };
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    Ok(Some(owners))
}

fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list.dedup();
    list
}
