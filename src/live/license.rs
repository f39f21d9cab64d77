//! License usage (`GET /admin/license/usage`, APPLICATION_ADMIN): how many data consumers and
//! policy owners the tenant counts, and how many of them are active. `license status` shows it;
//! like every Immuta answer, it is decoded here and nowhere else.

use serde_json::Value;

use super::{Client, Request, Result};

/// Users of one type, as the usage summary counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserCount {
    /// Users of this type (`totalCount`; 0 when the tenant does not say).
    pub total: i64,
    /// Those of them who are active (`activeCount`), when the tenant tracks it: the docs track
    /// activity for data consumers only.
    pub active: Option<i64>,
    /// Those who are not (`inactiveCount`, else `totalCount - activeCount`).
    pub inactive: Option<i64>,
}

/// The tenant's license usage.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseUsage {
    /// Data consumers (`summary.dataConsumers`).
    pub data_consumers: UserCount,
    /// Policy owners (`summary.policyOwners`).
    pub policy_owners: UserCount,
    /// The `summary` object as the tenant returned it (`null` when absent), for reports that
    /// pass it through unchanged (`license status --format json`).
    pub summary: Value,
}

impl LicenseUsage {
    /// Decodes the answer of `GET /admin/license/usage`. A missing total reads as 0 and missing
    /// activity as unknown: the summary is informational, and an older tenant may leave some
    /// out.
    pub fn from_answer(answer: &Value) -> Self {
        let summary = answer.get("summary").cloned().unwrap_or(Value::Null);
        let count = |kind: &str| {
            let field = |f: &str| summary.get(kind).and_then(|v| v.get(f)).and_then(Value::as_i64);
            let total = field("totalCount").unwrap_or(0);
            let active = field("activeCount");
            let inactive = field("inactiveCount").or_else(|| active.map(|a| total - a));
            UserCount { total, active, inactive }
        };
        LicenseUsage {
            data_consumers: count("dataConsumers"),
            policy_owners: count("policyOwners"),
            summary,
        }
    }
}

/// Reads the tenant's license usage (the summary of the first page of users: the users
/// themselves are not needed).
pub async fn license_usage(client: &Client) -> Result<LicenseUsage> {
    let answer = client
        .send_ok(
            &Request::get("/admin/license/usage", "/admin/license/usage")
                .query("offset", 0)
                .query("size", 10)
                .admin(),
        )
        .await?;
    Ok(LicenseUsage::from_answer(&answer))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_usage_summary_is_decoded_and_missing_counts_read_as_zero() {
        let answer = json!({
            "users": [{"name": "a@example.com"}],
            "summary": {
                "dataConsumers": {"totalCount": 9, "activeCount": 8, "inactiveCount": 1},
                "policyOwners": {"totalCount": 1},
            },
        });
        let usage = LicenseUsage::from_answer(&answer);
        assert_eq!(
            usage.data_consumers,
            UserCount { total: 9, active: Some(8), inactive: Some(1) }
        );
        assert_eq!(usage.policy_owners, UserCount { total: 1, active: None, inactive: None });
        let derived = LicenseUsage::from_answer(
            &json!({"summary": {"dataConsumers": {"totalCount": 5, "activeCount": 2}}}),
        );
        assert_eq!(derived.data_consumers.inactive, Some(3));
        assert_eq!(usage.summary, answer["summary"]);

        let empty = LicenseUsage::from_answer(&json!({}));
        assert_eq!(empty.data_consumers, UserCount::default());
        assert_eq!(empty.summary, Value::Null);
    }
}
