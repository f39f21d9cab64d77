//! Tests of the Immuta emulator over real HTTP, and the harness they share.
//!
//! Each test starts its own emulator on `127.0.0.1:0` and talks to it with reqwest, as a
//! reconciler would.

mod auth;
mod cli;
mod control;
mod creation;
mod data;
mod governance;
mod license;
mod lists;
mod persistence;
mod v1;
mod variants;

use immuta_emulator::{ADMIN_KEY, Emulator, EmulatorConfig, EmulatorHandle};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

/// The emulator's configuration for these tests: the test kit's, with data sources created at
/// once. Creation stays in the background (the default variant); these tests read what they
/// post right away, and `creation.rs` tests the delay itself.
pub fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        creation_delay: std::time::Duration::ZERO,
        ..crate::support::emulator_config()
    }
}

/// A running emulator and a client for it.
pub struct Tenant {
    pub handle: EmulatorHandle,
    pub http: reqwest::Client,
    /// Key sent by [`Tenant::call`] helpers that do not take one.
    pub key: String,
}

/// One answer: status, headers and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error message of a `{statusCode, error, message}` body.
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    /// The item named `name` in the array field `field` of a listing, e.g.
    /// `named("hits", "sales")`.
    pub fn named(&self, field: &str, name: &str) -> Option<Value> {
        self.body[field].as_array()?.iter().find(|item| item["name"] == name).cloned()
    }

    /// The strings of a JSON array field, e.g. `names("creating")`.
    pub fn names(&self, field: &str) -> Vec<String> {
        strings(&self.body[field])
    }
}

/// The strings in a JSON array.
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

impl Tenant {
    /// An emulator with the default configuration (key [`ADMIN_KEY`]).
    pub async fn start() -> Tenant {
        Tenant::start_with(emulator_config()).await
    }

    /// An emulator playing the variants `settings` (`DIMENSION=VALUE`).
    pub async fn with_variants(settings: &[&str]) -> Tenant {
        let variants =
            immuta_emulator::Variants::parse(settings.iter().copied()).expect("valid variants");
        Tenant::start_with(EmulatorConfig { variants, ..emulator_config() }).await
    }

    pub async fn start_with(config: EmulatorConfig) -> Tenant {
        let key = config.api_keys.first().map_or(ADMIN_KEY.to_owned(), |k| k.key.clone());
        let handle = Emulator::start_with(config).await.expect("emulator starts");
        Tenant { handle, http: reqwest::Client::new(), key }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// Sends a request with an optional `Authorization` value and optional JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.http.request(method, self.url(path));
        if let Some(auth) = authorization {
            request = request.header("Authorization", auth);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request.send().await.expect("request is answered")).await
    }

    /// Sends a YAML body.
    pub async fn send_yaml(&self, path: &str, yaml: &str) -> Answer {
        let response = self
            .http
            .post(self.url(path))
            .header("Authorization", format!("Bearer {}", self.key))
            .header("Content-Type", "application/yaml")
            .body(yaml.to_owned())
            .send()
            .await
            .expect("request is answered");
        answer(response).await
    }

    /// Sends with `Authorization: Bearer <self.key>`.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let auth = format!("Bearer {}", self.key);
        self.send(method, path, Some(&auth), body).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// A `/_emulator/` control call that must succeed; answers its body.
    pub async fn control(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let answer = self.send(method, &format!("/_emulator{path}"), None, body).await;
        assert_eq!(answer.status, StatusCode::OK, "control {path}: {:?}", answer.body);
        answer.body
    }

    /// `GET /_emulator/state`.
    pub async fn state(&self) -> Value {
        self.control(Method::GET, "/state", None).await
    }

    /// Replaces the remote catalog.
    pub async fn set_catalog(&self, catalog: &Value) {
        self.control(Method::PUT, "/catalog", Some(catalog)).await;
    }

    /// `POST /api/v2/data` that must succeed.
    pub async fn post_data(&self, payload: &Value) -> Answer {
        let answer = self.post("/api/v2/data", payload).await;
        assert_eq!(answer.status, StatusCode::OK, "POST /api/v2/data: {:?}", answer.body);
        answer
    }

    /// Every data source from `GET /dataSource`, by name.
    pub async fn data_sources(&self) -> Vec<Value> {
        let answer = self.get("/dataSource?size=1000").await;
        assert_eq!(answer.status, StatusCode::OK);
        answer.body["hits"].as_array().cloned().unwrap_or_default()
    }

    /// The V1 list item of the data source named `name`.
    pub async fn data_source(&self, name: &str) -> Option<Value> {
        self.data_sources().await.into_iter().find(|d| d["name"] == name)
    }

    /// The V1 detail of the data source named `name`.
    pub async fn data_source_detail(&self, name: &str) -> Value {
        let item = self.data_source(name).await.expect("data source listed");
        let answer = self.get(&format!("/dataSource/{}", item["id"])).await;
        assert_eq!(answer.status, StatusCode::OK);
        answer.body
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body is read");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { status, headers, body }
}

/// A catalog with one host+database and the given schemas and tables (each with `ID` and
/// `EMAIL` columns).
pub fn catalog(hostname: &str, database: &str, schemas: &[(&str, &[&str])]) -> Value {
    let mut out = serde_json::Map::new();
    for (schema, tables) in schemas {
        let tables: serde_json::Map<String, Value> = tables
            .iter()
            .map(|t| {
                let columns =
                    json!([{"name": "ID", "dataType": "integer"}, {"name": "EMAIL", "dataType": "text"}]);
                ((*t).to_owned(), columns)
            })
            .collect();
        out.insert((*schema).to_owned(), Value::Object(tables));
    }
    json!({"connections": [{"hostname": hostname, "database": database, "schemas": out}]})
}

/// A Snowflake connection payload for `key` on `hostname`/`database`, with `sources` when given.
pub fn data_payload(key: &str, hostname: &str, database: &str, sources: Option<Value>) -> Value {
    let mut payload = json!({
        "connectionKey": key,
        "connection": {
            "handler": "Snowflake",
            "hostname": hostname,
            "port": 443,
            "database": database,
            "warehouse": "WH",
            "username": "svc",
            "password": "pw-1",
        },
    });
    if let Some(sources) = sources {
        payload["sources"] = sources;
    }
    payload
}

/// `[{tableName, schema: PUBLIC}, ...]`.
pub fn tables(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|t| json!({"tableName": t, "schema": "PUBLIC"})).collect())
}
