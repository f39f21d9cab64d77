//! The simulated remote catalog: which schemas, tables and columns each database "has".
//!
//! File and control-API shape (YAML or JSON):
//!
//! ```yaml
//! connections:
//!   - hostname: acme.snowflakecomputing.com
//!     database: ANALYTICS
//!     schemas:
//!       PUBLIC:
//!         CUSTOMERS: [{name: ID, dataType: integer}, {name: EMAIL, dataType: text}]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;

/// The remote databases the emulator pretends to reach, keyed by hostname and database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// One entry per (hostname, database).
    #[serde(default)]
    pub connections: Vec<CatalogConnection>,
}

/// One remote database: schema name -> table name -> columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConnection {
    /// Matched case-insensitively against `connection.hostname`.
    pub hostname: String,
    /// Matched exactly against `connection.database`.
    #[serde(default)]
    pub database: String,
    /// Schemas, each a map of table name to columns.
    #[serde(default)]
    pub schemas: BTreeMap<String, BTreeMap<String, Vec<CatalogColumn>>>,
}

/// A remote column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogColumn {
    /// Column name as the remote database reports it.
    pub name: String,
    /// Remote data type, e.g. `integer`.
    pub data_type: String,
}

impl Catalog {
    /// Parses a catalog from YAML (which includes JSON).
    pub fn from_text(text: &str) -> Result<Catalog, String> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            serde_saphyr::from_str(text).map_err(|e| e.to_string())
        }
    }

    /// Reads a catalog file (YAML or JSON).
    pub fn load(path: &Path) -> Result<Catalog, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::ReadCatalog { path: path.to_owned(), source })?;
        Catalog::from_text(&text)
            .map_err(|message| Error::InvalidCatalog { path: path.to_owned(), message })
    }

    /// The entry for `hostname` (case-insensitive) and `database`, if the catalog has one.
    pub fn lookup(&self, hostname: &str, database: &str) -> Option<&CatalogConnection> {
        self.connections
            .iter()
            .find(|c| c.hostname.eq_ignore_ascii_case(hostname) && c.database == database)
    }

    /// True when the catalog describes no database at all.
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }
}
