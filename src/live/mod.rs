//! The Immuta tenant: a REST client ([`client`]), the retry classifier ([`retry`]), tolerant
//! V1 listings ([`listing`]), the endpoints this tool uses (this file), [`observe`], which
//! reads what a plan needs, and [`metadata`], the table tags the access impact asks for.
//!
//! Wire formats of the Immuta API live here and only here: V2 responses and V1 listings are
//! decoded into the plain [`crate::plan::observed`] types the planner reads.
//!
//! Decoding is as tolerant as the sources are varied, and fails closed only where a value the
//! plan needs is missing:
//! - Listed items are read for the few fields the plan uses (`Row`); every other field is
//!   skipped. Ids are numbers or numbers in strings.
//! - Purposes come flat (every subpurpose a row of its own, Immuta's Swagger `Model21`) or
//!   nested, with subpurposes as names (Swagger: `subpurposes: [string]`), as objects without
//!   an id (Terraform's `PurposeResponse.Subpurposes []Purpose{name, description,
//!   acknowledgement}`), or as objects with one. A subpurpose name without its parent's prefix
//!   is taken as the short name and qualified. Only root purposes need an id (they are deleted
//!   by id; a subpurpose goes with its root).
//! - Project `type` is read in any case (`schema`, `Schema`: the Swagger enum is capitalised).
//! - Licenses may come without an `id` (Swagger `Model39` has none); `licenseSeats` may be
//!   `"Unlimited"` (Swagger `x-alternatives`), which reads as no seat limit.

mod acknowledge;
pub mod client;
pub mod doctor;
mod license;
pub mod listing;
pub mod metadata;
pub mod retry;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::Value;

pub use self::client::{Client, ClientConfig, Deadline, Observer, Request};
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
    /// A write was sent but got no answer (a timeout, a dropped connection): it may have taken
    /// effect, so it was not sent again blindly.
    #[error("{method} {path} got no answer ({message}); it may have taken effect on the tenant")]
    NoAnswer {
        /// Method.
        method: String,
        /// Path.
        path: String,
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
    /// A write answered by something other than the tenant's own words: a JSON answer of the
    /// documented shape. The write is not counted as done.
    #[error(
        "{method} {path} is not confirmed: the answer is {answer}, not the Immuta API's (a login \
         page, an SSO gateway or a proxy may have answered); the next plan shows what the tenant has"
    )]
    Unconfirmed {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// What came instead.
        answer: &'static str,
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

    /// Whether a write that failed this way may still have taken effect: it got no answer, or a
    /// gateway gave up on it (`502`, `504`).
    pub fn may_have_taken_effect(&self) -> bool {
        matches!(self, Error::NoAnswer { .. })
            || matches!(self, Error::Status { status: 502 | 504, .. })
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
    keys.iter().find_map(|k| int(v.get(*k)))
}

/// How long a write may take: a data-source post asking Immuta to `wait` N seconds gets N
/// seconds more than the client's timeout, and no limit for a negative `wait` (Immuta then
/// holds the answer until the data sources exist; only cancellation ends it).
pub fn write_deadline(client: &Client, kind: Kind, options: &ObjectOptions) -> Deadline {
    match (kind, options.wait) {
        (Kind::DataSource, Some(wait)) if wait < 0 => Deadline::Unbounded,
        (Kind::DataSource, Some(wait)) if wait > 0 => Deadline::Within(
            client.timeout().saturating_add(Duration::from_secs(wait.unsigned_abs())),
        ),
        _ => Deadline::Default,
    }
}

/// The fields one of which a post's answer of `kind` carries (`DataSourceResponse`,
/// `PolicyResponse`... in Terraform's client; the license answer is the license).
fn documented_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::DataSource => &["creating", "updating", "deleting", "noChange", "dryRun"],
        Kind::Policy => &["creating", "updating", "dryRun", "policyId"],
        Kind::Project => &["creating", "updating", "dryRun", "projectId"],
        Kind::Purpose => &["creating", "updating", "dryRun", "purposeId"],
        Kind::License => &["id", "licenseKey", "licensekey", "seats", "expires", "uuid"],
    }
}

/// Why an answer to a post of `kind` is not the tenant's word, if it is not.
fn unreadable(kind: Kind, resp: &Value) -> Option<&'static str> {
    match resp {
        Value::Object(m) if documented_fields(kind).iter().any(|k| m.contains_key(*k)) => None,
        Value::Object(_) | Value::Array(_) => Some("a JSON document of an unexpected shape"),
        Value::Null => Some("empty or not JSON (an HTML page?)"),
        _ => Some("a bare JSON value"),
    }
}

/// `resp` as the answer to a write of `kind` at `path`, or why it confirms nothing.
fn confirmed(kind: Kind, method: &str, path: &str, resp: &Value) -> Result<Written> {
    match unreadable(kind, resp) {
        None => Ok(written(kind, resp)),
        Some(answer) => {
            Err(Error::Unconfirmed { method: method.to_owned(), path: path.to_owned(), answer })
        }
    }
}

/// What a successful V2 post of `kind` answered.
fn written(kind: Kind, resp: &Value) -> Written {
    match kind {
        Kind::DataSource => {
            let mut names = strings(resp, "creating");
            names.extend(strings(resp, "updating"));
            names.extend(strings(resp, "noChange"));
            names.sort();
            names.dedup();
            Written { id: None, names }
        }
        Kind::Policy => Written { id: id_field(resp, &["policyId", "id"]), names: Vec::new() },
        Kind::Project => Written { id: id_field(resp, &["projectId", "id"]), names: Vec::new() },
        Kind::Purpose => Written { id: id_field(resp, &["purposeId", "id"]), names: Vec::new() },
        Kind::License => Written { id: id_field(resp, &["id"]), names: Vec::new() },
    }
}

/// Posts an object (`payload` already has its placeholders filled in).
///
/// A write is never sent twice blindly. When a V2 post got no answer (a timeout, a dropped
/// connection) or a gateway gave up on it (`502`, `504`), the tenant may have carried it out:
/// the dry run of the same payload tells. Nothing left to change: it took effect, and what the
/// dry run answers is what was written. Otherwise it is sent once more. A license post has no
/// dry run: it fails, saying it may have taken effect.
pub async fn write(
    client: &Client,
    kind: Kind,
    payload: &Value,
    options: &ObjectOptions,
    secrets: &[String],
) -> Result<Written> {
    if v2_path(kind).is_none() {
        return write_license(client, payload, secrets).await;
    }
    if kind == Kind::Project {
        return acknowledge::write_project(client, payload, options, secrets).await;
    }
    post_v2(client, kind, payload, options, secrets).await
}

/// One V2 post, checked with a dry run when it may have taken effect without an answer.
async fn post_v2(
    client: &Client,
    kind: Kind,
    payload: &Value,
    options: &ObjectOptions,
    secrets: &[String],
) -> Result<Written> {
    let Some(path) = v2_path(kind) else { return Err(Error::Config("no V2 endpoint".into())) };
    let mut req = Request::post(path, path, payload)
        .secrets(secrets)
        .write()
        .deadline(write_deadline(client, kind, options));
    req.query = v2_params(kind, options, false);
    let resp = match client.send_ok(&req).await {
        Ok(resp) => resp,
        Err(e) if e.may_have_taken_effect() => {
            if let Some(mut done) = took_effect(client, kind, payload, options, secrets).await? {
                tracing::warn!(endpoint = path, "{e}: the dry run shows it took effect");
                if done.id.is_none() {
                    done.id = listed_id(client, kind, payload).await?;
                }
                return Ok(done);
            }
            tracing::warn!(endpoint = path, "{e}: the dry run shows it did not; sending it again");
            client.send_ok(&req).await?
        }
        Err(e) => return Err(e),
    };
    confirmed(kind, "POST", path, &resp)
}

/// The id the listing shows for the object of `payload` (policies by `policyKey`, projects by
/// `projectKey`, purposes by `name`): a write whose answer was lost still gets its id recorded.
async fn listed_id(client: &Client, kind: Kind, payload: &Value) -> Result<Option<i64>> {
    let (path, key_field) = match kind {
        Kind::Policy => ("/policy/global", "policyKey"),
        Kind::Project => ("/project", "projectKey"),
        Kind::Purpose => ("/governance/purpose", "name"),
        Kind::DataSource | Kind::License => return Ok(None),
    };
    let Some(key) = payload.get(key_field).and_then(Value::as_str) else { return Ok(None) };
    let rows: Vec<Row> = client.list(path, path, &[], false).await?;
    let key_of = |r: &Row| match kind {
        Kind::Policy => text(r.policy_key.as_ref()),
        Kind::Project => text(r.project_key.as_ref()),
        _ => r.name(),
    };
    Ok(rows
        .iter()
        .filter(|r| !r.deleted() && key_of(r).as_deref() == Some(key))
        .find_map(|r| int(r.id.as_ref())))
}

/// One license post at a time: a post whose answer is lost (or carries no id) is recognised
/// as the one license the listing shows that it did not show before.
static LICENSE_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Posts a license key (as written: the docs show `licenseKey` in their table and `licensekey`
/// in their example body; the spec's own spelling is the one its author checked), and records
/// its id even when the answer is lost or has none: the listing before and after the post
/// tells which license is new.
async fn write_license(client: &Client, payload: &Value, secrets: &[String]) -> Result<Written> {
    const PATH: &str = "/admin/license";
    let _one_at_a_time = LICENSE_WRITES.lock().await;
    // Without the listing (no permission, an error) there is nothing to recover from.
    let before = license_ids(client).await.ok();
    let req = Request::post(PATH, PATH, payload).admin().secrets(secrets).write();
    match client.send_ok(&req).await {
        Ok(resp) => {
            let mut done = confirmed(Kind::License, "POST", PATH, &resp)?;
            if done.id.is_none()
                && let Some(before) = &before
            {
                done.id = new_license(client, before).await?;
            }
            Ok(done)
        }
        Err(e) if e.may_have_taken_effect() => {
            let Some(before) = &before else { return Err(e) };
            match new_license(client, before).await? {
                Some(id) => {
                    tracing::warn!(
                        endpoint = PATH,
                        id,
                        "{e}: the listing shows the new license; its id is recorded"
                    );
                    Ok(Written { id: Some(id), names: Vec::new() })
                }
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The ids of the tenant's licenses (`GET /admin/license`).
async fn license_ids(client: &Client) -> Result<std::collections::BTreeSet<i64>> {
    let list = client.send_ok(&Request::get("/admin/license", "/admin/license").admin()).await?;
    let (items, _) = client::envelope(&list).ok_or_else(|| {
        decode_err("/admin/license", "expected a list of licenses (or an object holding one)")
    })?;
    Ok(items
        .iter()
        .filter(|l| !bool_field(l, "deleted"))
        .filter_map(|l| int(l.get("id")))
        .collect())
}

/// The one license listed now that `before` did not list; `None` when there is none, an error
/// when there are several (which one is ours cannot be told).
async fn new_license(
    client: &Client,
    before: &std::collections::BTreeSet<i64>,
) -> Result<Option<i64>> {
    let after = license_ids(client).await?;
    let new: Vec<i64> = after.difference(before).copied().collect();
    match new.as_slice() {
        [] => Ok(None),
        [id] => Ok(Some(*id)),
        more => Err(decode_err(
            "/admin/license",
            format!(
                "{} licenses appeared during one post ({more:?}): which one it made cannot be told; \
                 record it by hand (`state` commands) or delete the extra ones",
                more.len()
            ),
        )),
    }
}

/// After a write that may have taken effect: whether the dry run of the same payload finds
/// nothing left to change, and then what was written.
async fn took_effect(
    client: &Client,
    kind: Kind,
    payload: &Value,
    options: &ObjectOptions,
    secrets: &[String],
) -> Result<Option<Written>> {
    let Some(path) = v2_path(kind) else { return Ok(None) };
    let mut req = Request::post(path, path, payload).secrets(secrets);
    req.query = v2_params(kind, options, true);
    let resp = match client.send_ok(&req).await {
        Ok(resp) => resp,
        Err(e) if e.is_rejection() => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Some(answer) = unreadable(kind, &resp) {
        return Err(Error::Unconfirmed { method: "POST".into(), path: path.to_owned(), answer });
    }
    let flag = |k: &str| flag(resp.get(k));
    let unchanged = match kind {
        Kind::DataSource => {
            ["creating", "updating", "deleting"].iter().all(|k| strings(&resp, k).is_empty())
                && !flag("tagsUpdated")
        }
        _ => !flag("creating") && !flag("updating"),
    };
    Ok(unchanged.then(|| written(kind, &resp)))
}

/// Above this many names, [`missing_data_sources`] reads the whole listing once rather than
/// asking for each name.
const LOOKUPS_PER_NAME: usize = 32;

/// Which of `names` the tenant does not list as enabled data sources yet: asking
/// `GET /dataSource?searchText=<name>` for each (an exact match of the name), at most
/// `parallelism` at a time, or, for many names, reading the listing once.
pub async fn missing_data_sources(
    client: &Client,
    names: &[String],
    parallelism: usize,
) -> Result<Vec<String>> {
    if names.len() > LOOKUPS_PER_NAME {
        let rows: Vec<Row> = client.list("/dataSource", "/dataSource", &[], false).await?;
        let listed: std::collections::HashSet<String> =
            rows.iter().filter(|r| !r.deleted()).filter_map(Row::name).collect();
        let mut missing: Vec<String> =
            names.iter().filter(|n| !listed.contains(*n)).cloned().collect();
        missing.sort();
        missing.dedup();
        return Ok(missing);
    }
    let looks: Vec<_> = names
        .iter()
        .map(|name| async move {
            let rows: Vec<Row> = client
                .list("/dataSource", "/dataSource", &[("searchText", name.clone())], false)
                .await?;
            let listed =
                rows.iter().any(|r| !r.deleted() && r.name().as_deref() == Some(name.as_str()));
            Ok::<_, Error>((name.clone(), listed))
        })
        .collect();
    let found: Vec<(String, bool)> =
        stream::iter(looks).buffer_unordered(parallelism.max(1)).try_collect().await?;
    let mut missing: Vec<String> =
        found.into_iter().filter(|(_, listed)| !listed).map(|(n, _)| n).collect();
    missing.sort();
    Ok(missing)
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
        // A project's owner must acknowledge its purposes: that says nothing about the payload,
        // and apply acknowledges them (see `acknowledge.rs`). The plan goes by the state and
        // the listings for it.
        Err(e) if kind == Kind::Project && acknowledge::asks_for_it(&e) => {
            tracing::info!(
                "the dry run of a project asks for its purposes to be acknowledged: {e}"
            );
            return Ok(None);
        }
        Err(Error::Status { status, message, .. }) if (400..500).contains(&status) => {
            return Ok(Some(DryRun::Rejected { status, message }));
        }
        Err(e) => return Err(e),
    };
    // An answer the tenant did not give in its own words (an HTML page, an empty body, another
    // shape) says nothing: "unknown", never "no change".
    if let Some(answer) = unreadable(kind, &resp) {
        tracing::warn!(endpoint = path, "the dry run's answer cannot be read: it is {answer}");
        return Ok(Some(DryRun::Unknown { reason: format!("its answer is {answer}") }));
    }
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
            deleting_workspace: flag("deletingWorkspace"),
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

/// An integer: a number, or a number in a string.
fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A flag: `true`, or `"true"`.
fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// A string (empty strings count as absent).
fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn bool_field(v: &Value, key: &str) -> bool {
    flag(v.get(key))
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    text(v.get(key))
}

/// One listed item, read for the fields the plan uses; every other field is skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    id: Option<Value>,
    name: Option<Value>,
    deleted: Option<Value>,
    policy_key: Option<Value>,
    project_key: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    system_generated: Option<Value>,
    subpurposes: Option<Value>,
}

impl listing::Listed for Row {
    fn identity(&self) -> Option<String> {
        int(self.id.as_ref())
            .map(|i| i.to_string())
            .or_else(|| text(self.name.as_ref()))
            .or_else(|| text(self.policy_key.as_ref()))
            .or_else(|| text(self.project_key.as_ref()))
    }
}

impl Row {
    fn id(&self, path: &str) -> Result<i64> {
        int(self.id.as_ref()).ok_or_else(|| decode_err(path, "a listed item has no numeric `id`"))
    }

    fn name(&self) -> Option<String> {
        text(self.name.as_ref())
    }

    fn deleted(&self) -> bool {
        flag(self.deleted.as_ref())
    }
}

/// How license listings are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Licenses {
    /// Not at all.
    Skip,
    /// When permitted; a 403 leaves them unknown.
    #[default]
    IfPermitted,
    /// Always; a failure fails the read (the specs manage license keys).
    Required,
}

/// Reads every V1 inventory. Any failure fails the whole read: a listing error must never be
/// mistaken for an empty tenant.
pub async fn inventory(client: &Client, licenses: Licenses) -> Result<Inventory> {
    // Each page's rows become the plan's small records as they arrive.
    let data_source = |d: Row| {
        Ok(LiveDataSource {
            id: d.id("/dataSource")?,
            deleted: d.deleted(),
            name: d
                .name()
                .ok_or_else(|| decode_err("/dataSource", "a data source has no `name`"))?,
        })
    };
    let policy = |p: Row| {
        if p.deleted() {
            return Ok(None);
        }
        Ok(Some(LivePolicy {
            id: p.id("/policy/global")?,
            policy_key: text(p.policy_key.as_ref()),
            system_generated: flag(p.system_generated.as_ref()),
            name: p.name().unwrap_or_default(),
        }))
    };
    let project = |p: Row| {
        if p.deleted() {
            return Ok(None);
        }
        let is_schema = p
            .kind
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("schema"));
        Ok(Some(LiveProject {
            id: p.id("/project")?,
            project_key: text(p.project_key.as_ref()),
            name: p.name().unwrap_or_default(),
            is_schema,
        }))
    };
    let (data_sources, policies, projects, purposes) = tokio::try_join!(
        client.list_mapped("/dataSource", "/dataSource", &[], false, data_source),
        client.list_mapped("/policy/global", "/policy/global", &[], false, policy),
        client.list_mapped("/project", "/project", &[], false, project),
        client.list::<Row>("/governance/purpose", "/governance/purpose", &[], false),
    )?;
    let mut inv = Inventory {
        data_sources,
        policies: policies.into_iter().flatten().collect(),
        projects: projects.into_iter().flatten().collect(),
        ..Inventory::default()
    };
    inv.purposes = decode_purposes(purposes)?;
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

/// The purposes of a listing, flat or nested (see the module docs), by name.
fn decode_purposes(rows: Vec<Row>) -> Result<Vec<LivePurpose>> {
    let mut by_name: BTreeMap<String, LivePurpose> = BTreeMap::new();
    for row in rows.into_iter().filter(|r| !r.deleted()) {
        let name = row
            .name()
            .ok_or_else(|| decode_err("/governance/purpose", "a purpose has no `name`"))?;
        let system_generated = flag(row.system_generated.as_ref());
        if let Some(subpurposes) = &row.subpurposes {
            nested_purposes(&name, subpurposes, system_generated, &mut by_name);
        }
        add_purpose(&mut by_name, LivePurpose { id: int(row.id.as_ref()), name, system_generated });
    }
    Ok(by_name.into_values().collect())
}

/// Records a purpose; a name seen twice keeps the id one of them had.
fn add_purpose(by_name: &mut BTreeMap<String, LivePurpose>, purpose: LivePurpose) {
    match by_name.get_mut(&purpose.name) {
        Some(known) => known.id = known.id.or(purpose.id),
        None => {
            by_name.insert(purpose.name.clone(), purpose);
        }
    }
}

/// The subpurposes listed under `parent`: names, or objects with or without an id, nested.
fn nested_purposes(
    parent: &str,
    listed: &Value,
    system_generated: bool,
    by_name: &mut BTreeMap<String, LivePurpose>,
) {
    let qualified = |name: &str| {
        if name.starts_with(parent) && name[parent.len()..].starts_with('.') {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        }
    };
    for sub in listed.as_array().into_iter().flatten() {
        match sub {
            Value::String(name) if !name.is_empty() => add_purpose(
                by_name,
                LivePurpose { id: None, name: qualified(name), system_generated },
            ),
            Value::Object(m) if !flag(m.get("deleted")) => {
                let Some(name) = text(m.get("name")) else { continue };
                let name = qualified(&name);
                if let Some(children) = m.get("subpurposes") {
                    nested_purposes(&name, children, system_generated, by_name);
                }
                add_purpose(by_name, LivePurpose { id: int(m.get("id")), name, system_generated });
            }
            _ => {}
        }
    }
}

/// The tenant's licenses and its seat status (APPLICATION_ADMIN): what `inventory` reads for
/// licenses, also read on its own after an apply that changed a license, so that the license
/// metrics are fresh.
pub async fn read_licenses(client: &Client) -> Result<(Vec<LiveLicense>, Option<LicenseStatus>)> {
    let list = client.send_ok(&Request::get("/admin/license", "/admin/license").admin()).await?;
    let (items, _) = client::envelope(&list).ok_or_else(|| {
        decode_err("/admin/license", "expected a list of licenses (or an object holding one)")
    })?;
    let mut out = Vec::new();
    for l in items.iter().filter(|l| !bool_field(l, "deleted")) {
        out.push(LiveLicense {
            id: int(l.get("id")),
            seats: int(l.get("seats")),
            expires: str_field(l, "expires"),
        });
    }
    let status = client
        .send_ok(
            &Request::get("/admin/license/licenseStatus", "/admin/license/licenseStatus").admin(),
        )
        .await?;
    // `licenseSeats` may be "Unlimited" (Swagger x-alternatives): no seat limit to warn about.
    let status = match (int(status.get("activeUserCount")), int(status.get("licenseSeats"))) {
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

/// What [`observe`] reads.
#[derive(Debug, Clone, Default)]
pub struct Reads {
    /// The dry runs to ask.
    pub dry_runs: Vec<DryRunRequest>,
    /// Connection keys whose existence the listings cannot tell (the caller decides which:
    /// see `pipeline::observe`), probed with `DELETE /api/v2/data/{key}?dryRun=true`.
    pub probe_keys: Vec<String>,
    /// Managed connection keys with the data-source names recorded for them: a key none of
    /// whose names is listed is probed too, since Immuta may still be creating them (the
    /// listing shows a data source only once it exists; the key exists from the post on).
    pub recorded: Vec<(String, Vec<String>)>,
    /// How license listings are read.
    pub licenses: Licenses,
    /// Managed objects whose spec is gone, with their Immuta ids: each one its listing does not
    /// show is read by id ([`Inventory::read_by_id`]), since only that read can tell "deleted"
    /// from "left out of a listing".
    pub deleting: Vec<(ObjectId, i64)>,
}

/// Reads what a plan needs: the inventories, the existence of connection keys, and the dry
/// runs, with at most `parallelism` requests at a time. Fails closed.
pub async fn observe(client: &Client, reads: Reads, parallelism: usize) -> Result<Observed> {
    observe_with(client, reads, parallelism, &|| {}).await
}

/// As [`observe`], calling `answered` as each dry run is answered (progress displays).
pub async fn observe_with(
    client: &Client,
    reads: Reads,
    parallelism: usize,
    answered: &(dyn Fn() + Sync),
) -> Result<Observed> {
    let parallelism = parallelism.max(1);
    let Reads { dry_runs, probe_keys, recorded, licenses, deleting } = reads;
    let probe_keys: std::collections::BTreeSet<String> = probe_keys.into_iter().collect();
    let probe = |keys: Vec<String>| {
        stream::iter(keys)
            .map(|key| async move {
                data_key_exists(client, &key).await.map(|exists| (key, exists))
            })
            .buffer_unordered(parallelism)
            .try_collect::<Vec<_>>()
    };
    let inventory_fut = inventory(client, licenses);
    let probes_fut = probe(probe_keys.iter().cloned().collect());
    let dry_fut = stream::iter(dry_runs)
        .map(|r| async move {
            let answer = dry_run(client, r.id.kind, &r.payload, &r.options, &r.secrets).await;
            answered();
            answer.map(|d| (r.id, d))
        })
        .buffer_unordered(parallelism)
        .try_collect::<Vec<_>>();
    let (mut inventory, probes, answers) = tokio::try_join!(inventory_fut, probes_fut, dry_fut)?;
    inventory.data_keys = probes.into_iter().collect();
    // Managed connections none of whose data sources is listed: deleted outside, or still
    // being created? The key tells.
    let listed: std::collections::HashSet<&str> =
        inventory.data_sources.iter().filter(|d| !d.deleted).map(|d| d.name.as_str()).collect();
    let unlisted: Vec<String> = recorded
        .into_iter()
        .filter(|(key, names)| {
            !names.is_empty()
                && !probe_keys.contains(key)
                && names.iter().all(|n| !listed.contains(n.as_str()))
        })
        .map(|(key, _)| key)
        .collect();
    if !unlisted.is_empty() {
        let found = probe(unlisted).await?;
        inventory.data_keys.extend(found);
    }
    let unlisted: Vec<(ObjectId, i64)> =
        deleting.into_iter().filter(|(id, _)| !listed_in(&inventory, id)).collect();
    let mut read_by_id: Vec<(ObjectId, bool)> = stream::iter(unlisted)
        .map(|(id, live_id)| async move { exists_by_id(client, &id, live_id).await })
        .buffer_unordered(parallelism)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    read_by_id.sort();
    inventory.read_by_id = read_by_id;
    let dry_runs = answers.into_iter().filter_map(|(id, d)| d.map(|d| (id, d))).collect();
    Ok(Observed { inventory, dry_runs, tags: Default::default() })
}

/// Whether the listing of `id`'s kind shows it (kinds read otherwise count as shown).
fn listed_in(inventory: &Inventory, id: &ObjectId) -> bool {
    match id.kind {
        Kind::Policy => inventory.policies.iter().any(|p| p.policy_key.as_deref() == Some(&id.key)),
        Kind::Project => inventory
            .projects
            .iter()
            .any(|p| !p.is_schema && p.project_key.as_deref() == Some(&id.key)),
        Kind::Purpose => inventory.purposes.iter().any(|p| p.name == id.key),
        Kind::DataSource | Kind::License => true,
    }
}

/// Reads one object by its id: `Some(true)` when the tenant has it, `Some(false)` on a 404,
/// `None` for kinds without such a read. Any other failure fails the read (fail closed).
async fn exists_by_id(
    client: &Client,
    id: &ObjectId,
    live_id: i64,
) -> Result<Option<(ObjectId, bool)>> {
    let req = match id.kind {
        Kind::Policy => Request::get(format!("/policy/global/{live_id}"), "/policy/global/{id}"),
        Kind::Project => Request::get(format!("/project/{live_id}"), "/project/{id}"),
        Kind::Purpose => {
            Request::get(format!("/governance/purpose/{live_id}"), "/governance/purpose/{id}")
        }
        Kind::DataSource | Kind::License => return Ok(None),
    };
    let resp = client.send(&req).await?;
    Ok(Some((id.clone(), resp.status != reqwest::StatusCode::NOT_FOUND)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn purposes(listing: Value) -> Vec<(String, Option<i64>)> {
        let page: listing::Page<Row> =
            listing::parse("/governance/purpose", listing.to_string().as_bytes()).unwrap();
        decode_purposes(page.items).unwrap().into_iter().map(|p| (p.name, p.id)).collect()
    }

    fn named(items: &[(&str, Option<i64>)]) -> Vec<(String, Option<i64>)> {
        items.iter().map(|(n, i)| ((*n).to_owned(), *i)).collect()
    }

    #[test]
    fn purposes_are_read_flat_or_nested_with_or_without_ids() {
        // Flat: every purpose a row, children named by their full names.
        let flat = json!({"purposes": [
            {"id": 1, "name": "R", "subpurposes": ["R.A"]},
            {"id": 2, "name": "R.A", "parent": "R", "subpurposes": []},
        ], "count": 2});
        assert_eq!(purposes(flat), named(&[("R", Some(1)), ("R.A", Some(2))]));
        // Nested objects without ids (Terraform's PurposeResponse), two levels deep.
        let nested = json!({"purposes": [{"id": "7", "name": "R", "subpurposes": [
            {"name": "R.A", "description": "", "acknowledgement": "ok",
             "subpurposes": [{"name": "R.A.X"}]},
        ]}]});
        assert_eq!(purposes(nested), named(&[("R", Some(7)), ("R.A", None), ("R.A.X", None)]));
        // Nested names, short or full; nested objects with ids; deleted ones left out.
        let names = json!([{"id": 1, "name": "R", "subpurposes": ["A", "R.B", {"id": 5, "name": "C"},
            {"name": "R.D", "deleted": true}]}, {"id": 9, "name": "Old", "deleted": true}]);
        assert_eq!(
            purposes(names),
            named(&[("R", Some(1)), ("R.A", None), ("R.B", None), ("R.C", Some(5))])
        );
        // A purpose without a name is unreadable.
        let page: listing::Page<Row> = listing::parse("/p", br#"[{"id": 1}]"#).unwrap();
        assert!(decode_purposes(page.items).is_err());
    }

    #[test]
    fn only_answers_of_the_documented_shape_confirm_a_write() {
        let policy = json!({"dryRun": false, "creating": true, "updating": false, "policyId": 4});
        assert_eq!(confirmed(Kind::Policy, "POST", "/p", &policy).unwrap().id, Some(4));
        let data = json!({"dryRun": false, "creating": ["a"], "noChange": []});
        assert_eq!(confirmed(Kind::DataSource, "POST", "/d", &data).unwrap().names, vec!["a"]);
        assert!(confirmed(Kind::License, "POST", "/l", &json!({"id": 1, "seats": 2})).is_ok());
        for (answer, what) in [
            (Value::Null, "empty or not JSON"),
            (json!({"status": "queued", "ok": true}), "unexpected shape"),
            (json!([1]), "unexpected shape"),
            (json!("ok"), "bare JSON value"),
        ] {
            for kind in
                [Kind::DataSource, Kind::Policy, Kind::Project, Kind::Purpose, Kind::License]
            {
                let e = confirmed(kind, "POST", "/x", &answer).unwrap_err();
                assert!(e.to_string().contains(what), "{kind:?} {answer}: {e}");
                assert!(e.to_string().contains("is not confirmed"), "{e}");
            }
        }
    }

    #[test]
    fn listed_rows_take_ids_as_numbers_or_strings_and_skip_other_fields() {
        let page: listing::Page<Row> = listing::parse(
            "/project",
            br#"{"hits": [{"id": "12", "name": "P", "type": "Schema", "tags": [{"name": "t"}],
                 "purposes": [{"id": 3, "name": "R"}], "deleted": "false"}], "facets": {}, "count": 1}"#,
        )
        .unwrap();
        let row = &page.items[0];
        assert_eq!(row.id("/project").unwrap(), 12);
        assert!(!row.deleted());
        assert_eq!(row.kind.as_ref().and_then(Value::as_str), Some("Schema"));
        assert!(Row::default().id("/x").unwrap_err().to_string().contains("no numeric `id`"));
    }
}
