//! Table tags of managed data sources as the tenant reports them, for the access impact:
//! `GET /dataSource/{id}`, whose detail carries `tags` (documented among the detail's fields:
//! <https://documentation.immuta.com/saas/developer-guides/api-intro/immuta-v1-api/data-sources>;
//! Immuta's own Singer tap reads it as a list of names, `tap_immuta/schemas/data_source.py`).
//!
//! Tags applied outside Git (identification, an external catalog, lineage, by hand) are only
//! visible this way, so a plan against a tenant can see that a policy matching such a tag
//! reaches a data source the specs alone would not. Column tags have no documented read
//! (`GET /dictionary/{id}` appears only in client code), so they are not read.
//!
//! The answer is decoded tolerantly (names as strings, or objects with a `name` and an optional
//! `deleted`); a data source that is gone (404) has no tags; any other failure fails the read,
//! like every listing (a failed read is never taken for "no tags"). At most [`MAX_TAG_READS`]
//! data sources are read for one plan; the impact counts the ones it wanted and did not get.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use super::{Client, Error, Request, Result, client};

pub use crate::plan::impact::MAX_TAG_READS;

/// The table tags of each data source in `wanted` (name and id), read with at most
/// `parallelism` requests in flight. A data source the tenant no longer has has none.
pub async fn table_tags(
    client: &Client,
    wanted: &[(String, i64)],
    parallelism: usize,
) -> Result<BTreeMap<String, Vec<String>>> {
    let answers = stream::iter(wanted)
        .map(|(name, id)| async move {
            Ok::<_, Error>((name.clone(), one(client, *id).await?.unwrap_or_default()))
        })
        .buffer_unordered(parallelism.max(1))
        .try_collect::<Vec<(String, Vec<String>)>>()
        .await?;
    Ok(answers.into_iter().collect())
}

/// The table tags of data source `id`, `None` when the tenant no longer has it.
async fn one(client: &Client, id: i64) -> Result<Option<Vec<String>>> {
    let path = format!("/dataSource/{}", client::encode_segment(&id.to_string()));
    let resp = client.send(&Request::get(path.clone(), "/dataSource/{id}")).await?;
    if resp.status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    decode(&path, &resp.body).map(Some)
}

/// The `tags` of a data-source detail: names, or objects with a `name` (those marked
/// `deleted: true` left out). A detail without `tags` has none.
fn decode(path: &str, detail: &Value) -> Result<Vec<String>> {
    let Some(tags) = detail.get("tags") else { return Ok(Vec::new()) };
    let Some(items) = tags.as_array() else {
        return Err(Error::Decode {
            path: path.to_owned(),
            message: "`tags` is not a list".to_owned(),
        });
    };
    let mut out: Vec<String> = items
        .iter()
        .filter_map(|t| match t {
            Value::String(s) => Some(s.clone()),
            Value::Object(m) if m.get("deleted").and_then(Value::as_bool) != Some(true) => {
                m.get("name").and_then(Value::as_str).map(str::to_owned)
            }
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tags_decode_as_names_or_objects() {
        let detail = json!({"tags": ["B", {"name": "A", "source": "curated"},
                                     {"name": "Gone", "deleted": true}, 3]});
        assert_eq!(decode("/dataSource/1", &detail).unwrap(), ["A", "B"]);
        assert!(decode("/dataSource/1", &json!({})).unwrap().is_empty());
        assert!(decode("/dataSource/1", &json!({"tags": "A"})).is_err());
    }
}
