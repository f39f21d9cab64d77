//! Project acknowledgement, as the Terraform provider does it
//! (`immuta/terraform-provider-immuta@a382f91:immuta/resource_project.go:160-211,343-400`).
//!
//! A project's owner must acknowledge the purposes the project uses. Until then a
//! `POST /api/v2/project` naming them is refused with a 400 whose message contains "You must
//! first acknowledge" (Terraform matches exactly that substring; it is matched here in any
//! case). The provider then finds the project by name (`GET /project?searchText=<name>&
//! nameOnly=true`; a refused create has created the project without its purposes), reads its
//! `subscriptionId` (`GET /project/{id}`), acknowledges (`POST /project/{id}/members/
//! {subscriptionId}/acknowledge` with `{}`; Immuta's Swagger:8258-8290 declares the route,
//! body `{text?}` and answer `{acknowledgeRequired, purposes}`) and posts again. Here too, on
//! create and on update; the project is matched by `projectKey` when the listing shows keys,
//! else by exact name.
//!
//! After every successful post naming purposes, Terraform reads the project and acknowledges
//! again. Here the read decides: the acknowledgement is posted only when the project says
//! `acknowledgeRequired: true`, or does not say (then as Terraform does), so an unchanged
//! acknowledgement costs one read and no write. A project naming no purpose needs none.

use serde_json::{Value, json};

use super::read::{Row, flag, int, text};
use super::write::{Written, post_v2};
use super::{Client, Error, Request, Result};
use crate::spec::{Kind, ObjectOptions};

/// Whether the tenant refused a project post until its purposes are acknowledged.
pub(super) fn asks_for_it(e: &Error) -> bool {
    match e {
        Error::Status { status, message, .. } if (400..500).contains(status) => {
            message.to_ascii_lowercase().contains("must first acknowledge")
        }
        _ => false,
    }
}

/// Posts a project, acknowledging its purposes when the tenant asks (see the module docs).
pub(super) async fn write_project(
    client: &Client,
    payload: &Value,
    options: &ObjectOptions,
    secrets: &[String],
) -> Result<Written> {
    let written = match post_v2(client, Kind::Project, payload, options, secrets).await {
        Ok(written) => written,
        Err(e) if asks_for_it(&e) => {
            let id = find(client, payload).await?.ok_or_else(|| Error::Decode {
                path: "/project".into(),
                message: format!(
                    "the tenant asks the owner of project {} to acknowledge its purposes first, \
                     but no project by that name is listed ({e})",
                    label(payload)
                ),
            })?;
            let detail = detail(client, id).await?;
            acknowledge(client, id, &detail).await?;
            post_v2(client, Kind::Project, payload, options, secrets).await?
        }
        Err(e) => return Err(e),
    };
    let names_purposes =
        payload.get("purposes").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
    if names_purposes {
        let id = match written.id {
            Some(id) => Some(id),
            None => find(client, payload).await?,
        };
        if let Some(id) = id {
            let detail = detail(client, id).await?;
            // Terraform acknowledges after every post; a project that says it needs nothing
            // is spared the write.
            if detail.get("acknowledgeRequired").is_none_or(|v| flag(Some(v))) {
                acknowledge(client, id, &detail).await?;
            }
        }
    }
    Ok(written)
}

/// `projectKey`, else `name`, for messages.
fn label(payload: &Value) -> String {
    let key = text(payload.get("projectKey")).or_else(|| text(payload.get("name")));
    format!("`{}`", key.unwrap_or_default())
}

/// The id of the project `payload` posts: `GET /project?searchText=<name>&nameOnly=true`,
/// matched by `projectKey` when the listing shows keys, else by exact name.
async fn find(client: &Client, payload: &Value) -> Result<Option<i64>> {
    let Some(name) = text(payload.get("name")) else { return Ok(None) };
    let key = text(payload.get("projectKey"));
    let query = [("searchText", name.clone()), ("nameOnly", "true".to_owned())];
    let rows: Vec<Row> = client.list("/project", "/project", &query, false).await?;
    let by_key = rows.iter().find(|r| key.is_some() && text(r.project_key.as_ref()) == key);
    let by_name = || rows.iter().find(|r| r.name().as_deref() == Some(name.as_str()));
    Ok(by_key.or_else(by_name).and_then(|r| int(r.id.as_ref())))
}

/// `GET /project/{id}`.
async fn detail(client: &Client, id: i64) -> Result<Value> {
    client.send_ok(&Request::get(format!("/project/{id}"), "/project/{id}")).await
}

/// `POST /project/{id}/members/{subscriptionId}/acknowledge` with `{}`.
async fn acknowledge(client: &Client, id: i64, detail: &Value) -> Result<()> {
    let subscription = int(detail.get("subscriptionId")).ok_or_else(|| Error::Decode {
        path: format!("/project/{id}"),
        message: "the project has no `subscriptionId` to acknowledge its purposes with".into(),
    })?;
    let body = json!({});
    let req = Request::post(
        format!("/project/{id}/members/{subscription}/acknowledge"),
        "/project/{id}/members/{subscriptionId}/acknowledge",
        &body,
    );
    client.send_ok(&req).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acknowledgement_error_is_known_by_its_words_in_any_case() {
        let refused = |status, message: &str| Error::Status {
            method: "POST".into(),
            path: "/api/v2/project".into(),
            status,
            message: message.into(),
        };
        assert!(asks_for_it(&refused(400, "You must first acknowledge the purposes \"R\"")));
        assert!(asks_for_it(&refused(400, "you MUST FIRST ACKNOWLEDGE")));
        assert!(!asks_for_it(&refused(400, "unknown purpose(s) \"R\"")));
        assert!(!asks_for_it(&refused(500, "You must first acknowledge")));
        assert_eq!(label(&json!({"projectKey": "k", "name": "N"})), "`k`");
    }
}
