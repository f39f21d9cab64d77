//! The Immuta tenant: a REST client ([`client`]), the retry classifier ([`retry`]), the
//! endpoints this tool uses (this file), [`observe`], which reads what a plan needs, and
//! [`metadata`], the table tags the access impact asks for.
//!
//! Wire formats of the Immuta API live here and only here: V2 responses and V1 listings are
//! decoded into the plain [`crate::plan::observed`] types the planner reads.

pub mod client;
mod license;
pub mod metadata;
pub mod retry;

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

pub use self::client::{Client, ClientConfig, Observer, Request};
pub use self::license::{LicenseUsage, UserCount, license_usage};
use crate::plan::observed::{
    DryRun, Inventory, LicenseStatus, LiveDataSource, LiveLicense, LivePolicy, LiveProject,
    LivePurpose, ObjectId, Observed,
};
use crate::spec::secrets::InterpolateError;
use crate::spec::{Kind, ObjectOptions};

/// Errors talking to the tenant.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// No answer (after retries): the tenant is unreachable, timed out or dropped the connection.
    #[error("cannot reach the Immuta tenant ({url}): {message}")]
    Transport {
        /// The URL.
        url: String,
        /// The transport error.
        message: String,
    },
    /// The API key (or token) was refused.
    #[error("the Immuta tenant refused the API key ({url}): {message}")]
    Unauthorized {
        /// The URL.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The key lacks a permission.
    #[error(
        "{method} {path} was refused (403): the API key lacks a permission ({message}); {}",
        permission_hint(path)
    )]
    Forbidden {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// The server's message.
        message: String,
    },
    /// Any other failed status (after retries for 429/502/503/504).
    #[error("{method} {path} failed ({status}): {message}")]
    Status {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// Status code.
        status: u16,
        /// The server's message (secrets masked).
        message: String,
    },
    /// An answer we cannot read.
    #[error("unexpected answer from {path}: {message}")]
    Decode {
        /// Path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A placeholder could not be filled in.
    #[error(transparent)]
    Secret(#[from] InterpolateError),
}

impl Error {
    /// Whether the tenant rejected the request itself (a 4xx other than 401/403): the object is
    /// wrong, not the connection.
    pub fn is_rejection(&self) -> bool {
        matches!(self, Error::Status { status, .. } if (400..500).contains(status))
    }
}

fn permission_hint(path: &str) -> &'static str {
    if path.starts_with("/api/v2/data") || path.starts_with("/dataSource") {
        "data sources need CREATE_DATA_SOURCE"
    } else if path.starts_with("/api/v2/project") {
        "projects need CREATE_PROJECT"
    } else if path.starts_with("/admin/license") {
        "licenses need APPLICATION_ADMIN (set IMMUTA_ADMIN_API_KEY when GOVERNANCE and APPLICATION_ADMIN are separate)"
    } else {
        "policies and purposes need GOVERNANCE"
    }
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The V2 endpoint of a kind (licenses have none).
pub fn v2_path(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::DataSource => Some("/api/v2/data"),
        Kind::Policy => Some("/api/v2/policy"),
        Kind::Project => Some("/api/v2/project"),
        Kind::Purpose => Some("/api/v2/purpose"),
        Kind::License => None,
    }
}

/// Query parameters of a V2 post, from the object's `gitops:` options.
pub fn v2_params(
    kind: Kind,
    options: &ObjectOptions,
    dry_run: bool,
) -> Vec<(&'static str, String)> {
    let mut q = vec![("dryRun", dry_run.to_string())];
    match kind {
        Kind::Policy if options.re_certify => q.push(("reCertify", "true".into())),
        Kind::Purpose if options.re_acknowledge_required => {
            q.push(("reAcknowledgeRequired", "true".into()))
        }
        Kind::Project if options.delete_data_sources_on_workspace_delete => {
            q.push(("deleteDataSourcesOnWorkspaceDelete", "true".into()));
        }
        Kind::DataSource if !dry_run => {
            if let Some(wait) = options.wait {
                q.push(("wait", wait.to_string()));
            }
        }
        _ => {}
    }
    q
}

/// What a successful write returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Immuta's id (policy, project, purpose, license).
    pub id: Option<i64>,
    /// Data sources: the names the connection now has.
    pub names: Vec<String>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    // Tolerate objects carrying a name.
                    Value::Object(m) => m.get("name").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn id_field(v: &Value, keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_i64))
}

/// Posts an object (`payload` already has its placeholders filled in).
pub async fn write(
    client: &Client,
    kind: Kind,
    payload: &Value,
    options: &ObjectOptions,
    secrets: &[String],
) -> Result<Written> {
    let Some(path) = v2_path(kind) else {
        let key = payload
            .get("licenseKey")
            .or_else(|| payload.get("licensekey"))
            .cloned()
            .unwrap_or(Value::Null);
        let body = serde_json::json!({ "licenseKey": key });
        let req = Request::post("/admin/license", "/admin/license", &body).admin().secrets(secrets);
        let resp = client.send_ok(&req).await?;
        return Ok(Written { id: id_field(&resp, &["id"]), names: Vec::new() });
    };
    let mut req = Request::post(path, path, payload).secrets(secrets);
    req.query = v2_params(kind, options, false);
    let resp = client.send_ok(&req).await?;
    Ok(match kind {
        Kind::DataSource => {
            let mut names = strings(&resp, "creating");
            names.extend(strings(&resp, "updating"));
            names.extend(strings(&resp, "noChange"));
            names.sort();
            names.dedup();
            Written { id: None, names }
        }
        Kind::Policy => Written { id: id_field(&resp, &["policyId", "id"]), names: Vec::new() },
        Kind::Project => Written { id: id_field(&resp, &["projectId", "id"]), names: Vec::new() },
        Kind::Purpose => Written { id: id_field(&resp, &["purposeId", "id"]), names: Vec::new() },
        Kind::License => Written::default(),
    })
}

/// Asks the server what a post would do (`dryRun=true`). A rejection (4xx other than 401/403) is
/// an answer, not an error.
pub async fn dry_run(
    client: &Client,
    kind: Kind,
    payload: &Value,
    options: &ObjectOptions,
    secrets: &[String],
) -> Result<Option<DryRun>> {
    let Some(path) = v2_path(kind) else { return Ok(None) };
    let mut req = Request::post(path, path, payload).secrets(secrets);
    req.query = v2_params(kind, options, true);
    let resp = match client.send_ok(&req).await {
        Ok(r) => r,
        Err(Error::Status { status, message, .. }) if (400..500).contains(&status) => {
            return Ok(Some(DryRun::Rejected { status, message }));
        }
        Err(e) => return Err(e),
    };
    let flag = |k: &str| resp.get(k).and_then(Value::as_bool).unwrap_or(false);
    Ok(Some(match kind {
        Kind::DataSource => DryRun::Data {
            creating: strings(&resp, "creating"),
            updating: strings(&resp, "updating"),
            deleting: strings(&resp, "deleting"),
            no_change: strings(&resp, "noChange"),
            detection_running: flag("detectionRunning"),
            tags_updated: flag("tagsUpdated"),
        },
        _ => DryRun::Object {
            creating: flag("creating"),
            updating: flag("updating"),
            data_sources_added: resp
                .get("numberOfDataSourcesAdded")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            data_sources_removed: resp
                .get("numberOfDataSourcesRemoved")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        },
    }))
}

/// Deletes an object. Returns `false` when it was already gone (404). Policies, purposes and
/// licenses are deleted by id; data sources and projects by key.
pub async fn delete(client: &Client, kind: Kind, key: &str, id: Option<i64>) -> Result<bool> {
    let need_id =
        || Error::Config(format!("cannot delete {kind} `{key}`: its Immuta id is unknown"));
    let req = match kind {
        Kind::DataSource => Request::delete(
            format!("/api/v2/data/{}", client::encode_segment(key)),
            "/api/v2/data/{key}",
        ),
        Kind::Project => Request::delete(
            format!("/api/v2/project/{}", client::encode_segment(key)),
            "/api/v2/project/{key}",
        ),
        Kind::Policy => Request::delete(
            format!("/policy/global/{}", id.ok_or_else(need_id)?),
            "/policy/global/{id}",
        ),
        Kind::Purpose => Request::delete(
            format!("/governance/purpose/{}", id.ok_or_else(need_id)?),
            "/governance/purpose/{id}",
        ),
        Kind::License => Request::delete(
            format!("/admin/license/{}", id.ok_or_else(need_id)?),
            "/admin/license/{id}",
        )
        .admin(),
    };
    let resp = client.send(&req).await?;
    Ok(resp.status != reqwest::StatusCode::NOT_FOUND)
}

/// Whether a data-source connection key exists (`DELETE /api/v2/data/{key}?dryRun=true`,
/// which answers 404 for an unknown key and changes nothing).
pub async fn data_key_exists(client: &Client, key: &str) -> Result<bool> {
    let req = Request::delete(
        format!("/api/v2/data/{}", client::encode_segment(key)),
        "/api/v2/data/{key}",
    )
    .query("dryRun", "true");
    Ok(client.send(&req).await?.status != reqwest::StatusCode::NOT_FOUND)
}

fn decode_err(path: &str, message: impl Into<String>) -> Error {
    Error::Decode { path: path.to_owned(), message: message.into() }
}

fn item_id(path: &str, v: &Value) -> Result<i64> {
    v.get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| decode_err(path, "a listed item has no numeric `id`"))
}

fn bool_field(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// How license listings are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Licenses {
    /// Not at all.
    Skip,
    /// When permitted; a 403 leaves them unknown.
    IfPermitted,
    /// Always; a failure fails the read (the specs manage license keys).
    Required,
}

/// Reads every V1 inventory. Any failure fails the whole read: a listing error must never be
/// mistaken for an empty tenant.
pub async fn inventory(client: &Client, licenses: Licenses) -> Result<Inventory> {
    const PAGE: usize = 200;
    let (data_sources, policies, projects, purposes) = tokio::try_join!(
        client.list("/dataSource", "/dataSource", PAGE, false),
        client.list("/policy/global", "/policy/global", PAGE, false),
        client.list("/project", "/project", PAGE, false),
        client.list("/governance/purpose", "/governance/purpose", PAGE, false),
    )?;
    let mut inv = Inventory::default();
    for d in &data_sources {
        inv.data_sources.push(LiveDataSource {
            id: item_id("/dataSource", d)?,
            name: str_field(d, "name")
                .ok_or_else(|| decode_err("/dataSource", "a data source has no `name`"))?,
            deleted: bool_field(d, "deleted"),
        });
    }
    for p in policies.iter().filter(|p| !bool_field(p, "deleted")) {
        inv.policies.push(LivePolicy {
            id: item_id("/policy/global", p)?,
            policy_key: str_field(p, "policyKey"),
            name: str_field(p, "name").unwrap_or_default(),
            system_generated: bool_field(p, "systemGenerated"),
        });
    }
    for p in projects.iter().filter(|p| !bool_field(p, "deleted")) {
        inv.projects.push(LiveProject {
            id: item_id("/project", p)?,
            project_key: str_field(p, "projectKey"),
            name: str_field(p, "name").unwrap_or_default(),
            is_schema: p.get("type").and_then(Value::as_str) == Some("schema"),
        });
    }
    inv.purposes = decode_purposes(&purposes)?;
    if licenses != Licenses::Skip {
        match read_licenses(client).await {
            Ok((list, status)) => {
                inv.licenses = Some(list);
                inv.license_status = status;
            }
            Err(Error::Forbidden { .. }) if licenses == Licenses::IfPermitted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(inv)
}

fn decode_purposes(listed: &[Value]) -> Result<Vec<LivePurpose>> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = listed.iter().collect();
    while let Some(p) = stack.pop() {
        if !bool_field(p, "deleted") {
            out.push(LivePurpose {
                id: item_id("/governance/purpose", p)?,
                name: str_field(p, "name")
                    .ok_or_else(|| decode_err("/governance/purpose", "a purpose has no `name`"))?,
                system_generated: bool_field(p, "systemGenerated"),
            });
        }
        // Some versions nest subpurposes as objects; others list them flat and name them here.
        stack.extend(
            p.get("subpurposes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|s| s.is_object()),
        );
    }
    out.sort_by_key(|p| p.id);
    out.dedup_by_key(|p| p.id);
    Ok(out)
}

async fn read_licenses(client: &Client) -> Result<(Vec<LiveLicense>, Option<LicenseStatus>)> {
    let list = client.send_ok(&Request::get("/admin/license", "/admin/license").admin()).await?;
    let items = match &list {
        Value::Array(a) => a.clone(),
        other => other.get("licenses").and_then(Value::as_array).cloned().unwrap_or_default(),
    };
    let mut out = Vec::new();
    for l in items.iter().filter(|l| !bool_field(l, "deleted")) {
        out.push(LiveLicense {
            id: item_id("/admin/license", l)?,
            seats: l.get("seats").and_then(Value::as_i64),
            expires: str_field(l, "expires"),
        });
    }
    let status = client
        .send_ok(
            &Request::get("/admin/license/licenseStatus", "/admin/license/licenseStatus").admin(),
        )
        .await?;
    let status = match (
        status.get("activeUserCount").and_then(Value::as_i64),
        status.get("licenseSeats").and_then(Value::as_i64),
    ) {
        (Some(active_users), Some(seats)) => Some(LicenseStatus { active_users, seats }),
        _ => None,
    };
    Ok((out, status))
}

/// One dry run to ask.
#[derive(Debug, Clone)]
pub struct DryRunRequest {
    /// The object.
    pub id: ObjectId,
    /// Its payload, placeholders filled in.
    pub payload: Value,
    /// Its options (query parameters).
    pub options: ObjectOptions,
    /// Secret values in the payload (for redaction).
    pub secrets: Vec<String>,
}

/// Reads what a plan needs: the inventories, the existence of connection keys, and the dry
/// runs, with at most `parallelism` requests at a time. Fails closed.
///
/// `probe_keys` are the connection keys whose existence the listings cannot tell (the caller
/// decides which: see `pipeline::observe`).
pub async fn observe(
    client: &Client,
    dry_runs: Vec<DryRunRequest>,
    probe_keys: Vec<String>,
    licenses: Licenses,
    parallelism: usize,
) -> Result<Observed> {
    let parallelism = parallelism.max(1);
    let probe_keys: std::collections::BTreeSet<String> = probe_keys.into_iter().collect();
    let inventory_fut = inventory(client, licenses);
    let probes_fut = stream::iter(probe_keys)
        .map(|key| async move { data_key_exists(client, &key).await.map(|exists| (key, exists)) })
        .buffer_unordered(parallelism)
        .try_collect::<Vec<_>>();
    let dry_fut = stream::iter(dry_runs)
        .map(|r| async move {
            dry_run(client, r.id.kind, &r.payload, &r.options, &r.secrets).await.map(|d| (r.id, d))
        })
        .buffer_unordered(parallelism)
        .try_collect::<Vec<_>>();
    let (mut inventory, probes, answers) = tokio::try_join!(inventory_fut, probes_fut, dry_fut)?;
    inventory.data_keys = probes.into_iter().collect();
    let dry_runs = answers.into_iter().filter_map(|(id, d)| d.map(|d| (id, d))).collect();
    Ok(Observed { inventory, dry_runs, tags: Default::default() })
}
