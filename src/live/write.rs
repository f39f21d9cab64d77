//! Writes: V2 posts and license posts, confirmed only by an answer of the documented shape,
//! never sent twice blindly (a lost answer is settled by a dry run), dry runs and deletes.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use super::read::{Row, bool_field, decode_err, flag, int, text};
use super::{Client, Deadline, Error, Request, Result, acknowledge, client};
use crate::plan::observed::DryRun;
use crate::spec::{Kind, ObjectOptions};

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
pub(super) fn confirmed(kind: Kind, method: &str, path: &str, resp: &Value) -> Result<Written> {
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
pub(super) async fn post_v2(
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

/// The dry run of a V2 post of `kind` (none for licenses), with its endpoint.
fn dry_run_request<'a>(
    kind: Kind,
    payload: &'a Value,
    options: &ObjectOptions,
    secrets: &'a [String],
) -> Option<(&'static str, Request<'a>)> {
    let path = v2_path(kind)?;
    let mut req = Request::post(path, path, payload).secrets(secrets);
    req.query = v2_params(kind, options, true);
    Some((path, req))
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
    let Some((path, req)) = dry_run_request(kind, payload, options, secrets) else {
        return Ok(None);
    };
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
    let Some((path, req)) = dry_run_request(kind, payload, options, secrets) else {
        return Ok(None);
    };
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
}
