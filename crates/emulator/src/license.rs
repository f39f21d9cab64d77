//! License keys (`/admin/license*`, all needing `APPLICATION_ADMIN`), with a test key format.
//!
//! Test key format (real keys are opaque signed blobs; this one is readable on purpose):
//!
//! ```text
//! IMMUTA-TEST;seats=20;expires=2027-01-31[;features=FPE,KANON][;softSeats=5]
//!            [;hardSeats=true|false][;hardExpiration=true|false]
//! ```
//!
//! Fields may come in any order; `seats` and `expires` are required; anything else is rejected.
//! `hardSeats=true` makes the license enforce its seats (they count in `licenseStatus.hardSeats`).
//!
//! The `license-key` variant decides which field `POST /admin/license` reads the key from (the
//! docs' table says `licenseKey`, their example body `licensekey`); the `licenses` variant
//! whether answers look as the docs show them (ids, integers, `inactiveCount`, `hardDelete`) or
//! as the Swagger declares them (no ids, "Unlimited" seats).

use axum::extract::Path;
use serde_json::{Map, Value, json};

use super::Permission;
use super::clock::{midnight_iso, now_iso, parse_date, today};
use super::http::{ApiError, ApiResult, Call, ok};
use super::secrets::digest;
use super::store::{License, Store, next_id};
use super::v1::{self, Envelope, Kind};
use super::variants::{LicenseKey, Licenses};

/// What every license call needs.
const ADMIN: Permission = Permission::ApplicationAdmin;

/// The license collection.
const KIND: Kind = Kind { noun: "license", path: "/admin/license", delete: ADMIN };

/// Prefix every test license key starts with.
pub const TEST_KEY_PREFIX: &str = "IMMUTA-TEST";

const FORMAT_HINT: &str = "expected IMMUTA-TEST;seats=N;expires=YYYY-MM-DD[;features=A,B]\
                           [;softSeats=N][;hardSeats=true|false][;hardExpiration=true|false]";

/// The content of a test license key.
#[derive(Debug, PartialEq, Eq)]
struct KeyContent {
    seats: u64,
    soft_seats: u64,
    expires: i64,
    features: Vec<String>,
    hard_seats: bool,
    hard_expiration: bool,
}

/// Parses a test key; errors name the offending field, never the key itself.
fn parse_key(key: &str) -> Result<KeyContent, String> {
    let mut parts = key.trim().split(';');
    if parts.next() != Some(TEST_KEY_PREFIX) {
        return Err(format!("it does not start with {TEST_KEY_PREFIX}"));
    }
    let (mut seats, mut expires) = (None, None);
    let mut content = KeyContent {
        seats: 0,
        soft_seats: 0,
        expires: 0,
        features: Vec::new(),
        hard_seats: false,
        hard_expiration: false,
    };
    let flag = |field: &str, v: &str| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{field} must be true or false")),
    };
    for part in parts.filter(|p| !p.is_empty()) {
        let (field, value) =
            part.split_once('=').ok_or_else(|| "every field must be name=value".to_owned())?;
        match field {
            "seats" => {
                seats = Some(value.parse().map_err(|_| "seats must be a whole number")?);
            }
            "softSeats" => {
                content.soft_seats =
                    value.parse().map_err(|_| "softSeats must be a whole number")?;
            }
            "expires" => {
                expires = Some(parse_date(value).ok_or("expires must be a date YYYY-MM-DD")?);
            }
            "features" => {
                content.features = value
                    .split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "hardSeats" => content.hard_seats = flag(field, value)?,
            "hardExpiration" => content.hard_expiration = flag(field, value)?,
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    content.seats = seats.ok_or("seats is missing")?;
    content.expires = expires.ok_or("expires is missing")?;
    Ok(content)
}

/// A UUID derived from the key digest, so the same key always gets the same uuid.
fn uuid_from(digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    let h = |r: std::ops::Range<usize>| hex.get(r).unwrap_or("0");
    format!("{}-{}-4{}-a{}-{}", h(0..8), h(8..12), h(13..16), h(17..20), h(20..32))
}

fn view(license: &License, deleted: bool, shapes: Licenses) -> Value {
    let features: Map<String, Value> =
        license.features.iter().map(|f| (f.clone(), json!({"enabled": true}))).collect();
    let mut view = json!({
        "id": license.id,
        "uuid": license.uuid,
        "seats": license.seats,
        "softSeats": license.soft_seats,
        "expires": midnight_iso(license.expires),
        "expired": license.expires < today(),
        "deleted": deleted,
        "invalidated": false,
        "features": features,
        "handlers": {},
        "hardExpiration": license.hard_expiration,
        "renewalToken": Value::Null,
        "notice": Value::Null,
        "noticeOnExpire": Value::Null,
        "classifyUsername": Value::Null,
        "classifyToken": Value::Null,
        "createdAt": license.created_at,
        "updatedAt": license.updated_at,
    });
    if let (Licenses::Swagger, Value::Object(m)) = (shapes, &mut view) {
        m.remove("id");
    }
    view
}

/// `POST /admin/license`: adds a key (`licenseKey` or `licensekey`); the same key again answers
/// the existing license.
pub(crate) async fn post(call: Call) -> ApiResult {
    call.authorize(Some(ADMIN), "POST /admin/license")?;
    let variants = call.state.variants();
    let payload = call.object_body()?;
    let fields: &[&str] = match variants.license_key {
        LicenseKey::Either => &["licenseKey", "licensekey"],
        LicenseKey::Lower => &["licensekey"],
        LicenseKey::Camel => &["licenseKey"],
    };
    let key = fields
        .iter()
        .find_map(|k| payload.get(*k).filter(|v| !v.is_null()))
        .ok_or_else(|| ApiError::bad_request(format!("{} is required", fields[0])))?
        .as_str()
        .ok_or_else(|| ApiError::bad_request("licenseKey must be a string"))?;
    let content = parse_key(key).map_err(|reason| {
        ApiError::bad_request(format!(
            "licenseKey is not a valid license key: {reason} ({FORMAT_HINT})"
        ))
    })?;
    let key_digest = digest(key.trim().as_bytes());
    let response = call
        .state
        .mutate(true, |store| {
            if let Some(existing) = store.licenses.values().find(|l| l.key_digest == key_digest) {
                return Ok(view(existing, false, variants.licenses));
            }
            let now = now_iso();
            let id = next_id(&mut store.ids.license);
            let license = License {
                id,
                uuid: uuid_from(&key_digest),
                key_digest,
                seats: content.seats,
                soft_seats: content.soft_seats,
                expires: content.expires,
                features: content.features,
                hard_seats: content.hard_seats,
                hard_expiration: content.hard_expiration,
                created_at: now.clone(),
                updated_at: now,
            };
            let answer = view(&license, false, variants.licenses);
            store.licenses.insert(id, license);
            Ok(answer)
        })
        .await?;
    ok(response)
}

/// `GET /admin/license`: every license, never with its key.
pub(crate) async fn list(call: Call) -> ApiResult {
    call.authorize(Some(ADMIN), "GET /admin/license")?;
    let shapes = call.state.variants().licenses;
    let items: Vec<Value> =
        call.state.read(|store| store.licenses.values().map(|l| view(l, false, shapes)).collect());
    let count = items.len();
    ok(Envelope::Array.wrap(items, count))
}

/// Seats of unexpired licenses, summed, and those of them the licenses enforce.
fn seats(store: &Store) -> (u64, u64) {
    let now = today();
    let live = store.licenses.values().filter(|l| l.expires >= now);
    live.fold((0, 0), |(seats, hard), l| {
        (seats + l.seats, hard + if l.hard_seats { l.seats } else { 0 })
    })
}

/// `GET /admin/license/licenseStatus`: integers as the docs show them ("hardSeats integer:
/// the number of licensed seats available"), or "Unlimited" under the `swagger` variant.
pub(crate) async fn status(call: Call) -> ApiResult {
    call.authorize(Some(ADMIN), "GET /admin/license/licenseStatus")?;
    let shapes = call.state.variants().licenses;
    let answer = call.state.read(|store| {
        let active = store.users.iter().filter(|u| u.active).count() as u64;
        let (seats, hard) = seats(store);
        let features: std::collections::BTreeSet<&str> =
            store.licenses.values().flat_map(|l| l.features.iter().map(String::as_str)).collect();
        match shapes {
            Licenses::Documented => json!({
                "activeUserCount": active,
                "licenseSeats": seats,
                "canAddUser": active < seats,
                "hardSeats": hard,
            }),
            Licenses::Swagger => json!({
                "activeUserCount": active,
                "activeLicenseCount": store.licenses.len(),
                "licenseSeats": "Unlimited",
                "hardSeats": "Unlimited",
                "canAddUser": true,
                "activeFeatures": features,
            }),
        }
    });
    ok(answer)
}

/// `GET /admin/license/usage?offset&size` (defaults 0 and 10).
pub(crate) async fn usage(call: Call) -> ApiResult {
    call.authorize(Some(ADMIN), "GET /admin/license/usage")?;
    let listing = call.listing("size", 10)?;
    let answer = call.state.read(|store| {
        // Activity is tracked for data consumers only (the latest docs); inactive = total -
        // active.
        let consumers = store.users.iter().filter(|u| u.user_type == "dataConsumer");
        let total = consumers.clone().count();
        let active = consumers.filter(|u| u.active).count();
        let owners = store.users.iter().filter(|u| u.user_type == "policyOwner").count();
        let users: Vec<Value> = store
            .users
            .iter()
            .map(|u| {
                let mut v = json!(u);
                if u.user_type != "dataConsumer"
                    && let Value::Object(m) = &mut v
                {
                    m.remove("active");
                }
                v
            })
            .collect();
        json!({
            "users": listing.page(users).0,
            "summary": {
                "dataConsumers": {
                    "totalCount": total,
                    "activeCount": active,
                    "inactiveCount": total - active,
                },
                "policyOwners": {"totalCount": owners},
            },
        })
    });
    ok(answer)
}

/// `DELETE /admin/license/{id}`: answers the deleted license, `updatedAt` the time of the
/// deletion and (as the docs show) `hardDelete: false`: it can be added again.
pub(crate) async fn delete(Path(id): Path<String>, call: Call) -> ApiResult {
    let shapes = call.state.variants().licenses;
    v1::delete(&call, &KIND, &id, |store, id| {
        Ok(store.licenses.remove(&id).map(|mut l| {
            l.updated_at = now_iso();
            let mut answer = view(&l, true, shapes);
            if shapes == Licenses::Documented {
                answer["hardDelete"] = json!(false);
            }
            answer
        }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_keys_parse_in_any_order() {
        let k = parse_key("IMMUTA-TEST;expires=2027-01-31;features=FPE,KANON;seats=20").unwrap();
        assert_eq!(k.seats, 20);
        assert_eq!(k.features, ["FPE", "KANON"]);
        assert_eq!(midnight_iso(k.expires), "2027-01-31T00:00:00.000Z");
    }

    #[test]
    fn malformed_keys_name_the_problem() {
        assert!(parse_key("licensekey0123").unwrap_err().contains("IMMUTA-TEST"));
        assert!(parse_key("IMMUTA-TEST;seats=x;expires=2027-01-31").unwrap_err().contains("seats"));
        assert!(parse_key("IMMUTA-TEST;seats=2").unwrap_err().contains("expires"));
        assert!(
            parse_key("IMMUTA-TEST;seats=2;expires=2027-02-30").unwrap_err().contains("expires")
        );
        assert!(parse_key("IMMUTA-TEST;seats=2;expires=2027-01-01;x=1").unwrap_err().contains("x"));
    }
}
