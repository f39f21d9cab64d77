//! `doctor`: a read-only check of a tenant before the first apply, and its report.
//!
//! What it asks, in order, and nothing else (every request is a `GET`, but for one token
//! exchange, `POST /bim/apikey/authenticate`, which hands out a session token and changes
//! nothing on the tenant):
//!
//! 1. **reachable**: `GET /bim/rpc/user/current` with `Bearer <key>`; a transport failure ends
//!    the check there.
//! 2. **clock**: the `Date` header of that answer against this machine's clock (more than five
//!    minutes apart is a warning: `Retry-After` dates, license expiry warnings).
//! 3. **auth**: which forms of the key the tenant takes: `Bearer <key>` (Terraform, immuta-mcp),
//!    the raw key (tap-immuta, the docs' API-key method), the token exchange and
//!    `Bearer <token>` (fh-immuta-utils); and whether it refuses with 500 rather than 401.
//! 4. **permissions**: `permissions` and `groupPermissions` of `GET /bim/rpc/user/current`
//!    (Immuta's Swagger `Model46`) against what the specs' kinds need (`CREATE_DATA_SOURCE`,
//!    `GOVERNANCE`, `CREATE_PROJECT`); a project-scoped key (`projectId`) is a warning.
//! 5. **license admin**: `GET /admin/license/licenseStatus` with the license-admin key.
//! 6. **listings**: the first page of each listing a plan reads (`size=1`; the purposes with a
//!    page of 50, to see how subpurposes come): its envelope, its count, whether `size` is
//!    honoured, the subpurpose shape.
//! 7. **connections**: `GET /data/connection/{key}` for the specs' connection keys: a key
//!    registered as a connection cannot be edited with `POST /api/v2/data` ("no substitute").
//!
//! A problem blocks apply (exit 1); a warning does not. Every problem and warning says how to
//! fix it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;

use super::client::{self, ProbeAuth, Role};
use super::listing::{Ask, Page};
use super::{Client, Error, Request};
use crate::spec::Kind;

/// How far apart the clocks may be before it is worth a warning.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(300);

/// Connection keys probed at most.
const MAX_CONNECTION_PROBES: usize = 20;

/// What the specs expect of the tenant.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// The kinds the specs hold; `None` when no spec tree was given (every kind may come, and
    /// a missing permission is a warning).
    pub kinds: Option<BTreeSet<Kind>>,
    /// The specs' connection keys.
    pub connection_keys: Vec<String>,
}

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fine.
    Ok,
    /// Worth knowing; does not block apply.
    Warning,
    /// Blocks apply.
    Problem,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Problem => "problem",
        }
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked (`reachable`, `auth`, `listing /project`...).
    pub check: String,
    /// How it went.
    pub status: Status,
    /// What was found.
    pub summary: String,
    /// How to fix it (problems and warnings).
    pub fix: Option<String>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The format of the JSON report.
    pub format_version: u32,
    /// The tenant URL.
    pub tenant: String,
    /// Whether nothing blocks apply.
    pub ok: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether something blocks apply.
    pub fn blocks(&self) -> bool {
        !self.ok
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut out = format!("immuta-gitops doctor: {}\n", self.tenant);
        let width = self.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for c in &self.checks {
            out.push_str(&format!(
                "  {:<7}  {:<width$}  {}\n",
                c.status.as_str(),
                c.check,
                crate::spec::text::shown_up_to(&c.summary, 1000)
            ));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("  {:<7}  {:<width$}  fix: {fix}\n", "", ""));
            }
        }
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        let (problems, warnings) = (count(Status::Problem), count(Status::Warning));
        out.push_str(&if problems > 0 {
            format!(
                "{problems} problem(s) block apply; {warnings} warning(s). Fix the problems, then run \
                 doctor again.\n"
            )
        } else {
            format!("Nothing blocks apply; {warnings} warning(s).\n")
        });
        out
    }

    /// The report as JSON (`format_version` 1).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

fn check(check: impl Into<String>, status: Status, summary: String, fix: Option<&str>) -> Check {
    Check { check: check.into(), status, summary, fix: fix.map(str::to_owned) }
}

/// Checks the tenant of `client` (see the module docs). Never writes.
pub async fn doctor(client: &Client, expect: &Expectations) -> Report {
    let mut checks = Vec::new();
    if reach(client, &mut checks).await {
        permissions(client, expect, &mut checks).await;
        license_admin(client, expect, &mut checks).await;
        listings(client, &mut checks).await;
        connections(client, expect, &mut checks).await;
    }
    let ok = checks.iter().all(|c| c.status != Status::Problem);
    Report { format_version: 1, tenant: client.base_url().to_owned(), ok, checks }
}

const WHOAMI: &str = "/bim/rpc/user/current";

/// Whether a status means the tenant took the credential (a missing route or a missing
/// permission say nothing against it).
fn taken(status: u16) -> bool {
    (200..300).contains(&status) || status == 403 || status == 404
}

/// Reachability, the clock and the auth forms; false when the tenant cannot be reached.
async fn reach(client: &Client, checks: &mut Vec<Check>) -> bool {
    let started = Instant::now();
    let whoami = Request::get(WHOAMI, WHOAMI);
    let bearer = match client.probe(&whoami, ProbeAuth::BearerKey).await {
        Ok(answer) => answer,
        Err(e) => {
            checks.push(check(
                "reachable",
                Status::Problem,
                e.to_string(),
                Some(
                    "check --url (or IMMUTA_URL), the network and any proxy (HTTPS_PROXY), and that \
                     the tenant is up",
                ),
            ));
            return false;
        }
    };
    checks.push(check(
        "reachable",
        Status::Ok,
        format!("answered {} in {} ms", bearer.status.as_u16(), started.elapsed().as_millis()),
        None,
    ));
    checks.push(clock(bearer.date));

    let raw = client.probe(&whoami, ProbeAuth::RawKey).await.ok();
    let exchanged = client.probe_exchange(Role::Governance).await;
    let token_status = match &exchanged {
        Ok(token) => {
            client.probe(&whoami, ProbeAuth::Bearer(token)).await.ok().map(|a| a.status.as_u16())
        }
        Err(_) => None,
    };
    let mut taken_as = Vec::new();
    let mut refused = Vec::new();
    let bearer_status = bearer.status.as_u16();
    if taken(bearer_status) {
        taken_as.push("`Bearer <key>`".to_owned());
    } else {
        refused.push(format!("`Bearer <key>` ({bearer_status})"));
    }
    match raw.map(|a| a.status.as_u16()) {
        Some(s) if taken(s) => taken_as.push("the raw key".to_owned()),
        Some(s) => refused.push(format!("the raw key ({s})")),
        None => refused.push("the raw key (no answer)".to_owned()),
    }
    match (&exchanged, token_status) {
        (Ok(_), Some(s)) if taken(s) => taken_as.push("an exchanged token".to_owned()),
        (Ok(_), s) => refused.push(format!(
            "an exchanged token ({})",
            s.map_or_else(|| "no answer".to_owned(), |s| s.to_string())
        )),
        (Err(e), _) => refused.push(format!("the token exchange ({e})")),
    }
    let fix = "check IMMUTA_API_KEY (or --api-key-file): the key may be mistyped, expired or \
               revoked; create one in Immuta under your profile's API keys";
    let mut summary = if taken_as.is_empty() {
        format!("the tenant takes the API key in no form: {}", refused.join(", "))
    } else {
        let mut s = format!("the API key is taken as {}", taken_as.join(", "));
        if !refused.is_empty() {
            s.push_str(&format!("; refused as {}", refused.join(", ")));
        }
        s
    };
    if bearer_status == 500 {
        summary.push_str(
            ". The tenant answers 500, not 401, to a credential it does not take: the client \
             exchanges the key before its first request",
        );
    }
    let status = if taken_as.is_empty() { Status::Problem } else { Status::Ok };
    checks.push(check("auth", status, summary, (status == Status::Problem).then_some(fix)));
    status == Status::Ok
}

/// The tenant's clock against ours.
fn clock(date: Option<SystemTime>) -> Check {
    let Some(date) = date else {
        return check(
            "clock",
            Status::Warning,
            "the tenant sent no `Date` header: its clock cannot be compared".into(),
            Some("nothing to do unless the tenant's times look wrong"),
        );
    };
    let now = SystemTime::now();
    let (skew, ahead) = match date.duration_since(now) {
        Ok(d) => (d, true),
        Err(e) => (e.duration(), false),
    };
    let shown = humantime::format_duration(Duration::from_secs(skew.as_secs()));
    if skew > CLOCK_TOLERANCE {
        check(
            "clock",
            Status::Warning,
            format!(
                "the tenant's clock is {shown} {} this machine's (more than {} apart)",
                if ahead { "ahead of" } else { "behind" },
                humantime::format_duration(CLOCK_TOLERANCE)
            ),
            Some(
                "synchronise the clocks (NTP): license expiry warnings and `Retry-After` dates \
                 compare them",
            ),
        )
    } else {
        check("clock", Status::Ok, format!("within {shown} of this machine's"), None)
    }
}

/// The permission each kind needs.
fn needed(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::DataSource => Some("CREATE_DATA_SOURCE"),
        Kind::Policy | Kind::Purpose => Some("GOVERNANCE"),
        Kind::Project => Some("CREATE_PROJECT"),
        Kind::License => None,
    }
}

/// The strings of an array field.
fn strings(v: &Value, key: &str) -> BTreeSet<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

async fn permissions(client: &Client, expect: &Expectations, checks: &mut Vec<Check>) {
    let me = match client.whoami(false).await {
        Ok(me) => me,
        Err(e) => {
            checks.push(check(
                "permissions",
                Status::Warning,
                format!("the tenant does not say what the key may do ({e})"),
                Some("the listings below show what it may read; a write it may not do fails at apply"),
            ));
            return;
        }
    };
    let mut held = strings(&me, "permissions");
    held.extend(strings(&me, "groupPermissions"));
    let kinds: BTreeSet<Kind> = expect
        .kinds
        .clone()
        .unwrap_or_else(|| [Kind::DataSource, Kind::Policy, Kind::Project].into());
    let mut missing: Vec<String> = Vec::new();
    for kind in &kinds {
        if let Some(p) = needed(*kind)
            && !held.contains(p)
            && !missing.iter().any(|m| m.starts_with(p))
        {
            missing.push(format!("{p} ({kind})"));
        }
    }
    let listed: Vec<&str> = held.iter().map(String::as_str).collect();
    if missing.is_empty() {
        checks.push(check(
            "permissions",
            Status::Ok,
            format!(
                "the key holds {}",
                if listed.is_empty() { "no permission".into() } else { listed.join(", ") }
            ),
            None,
        ));
    } else {
        let status = if expect.kinds.is_some() { Status::Problem } else { Status::Warning };
        let for_what = if expect.kinds.is_some() {
            "for the specs' objects"
        } else {
            "for objects of these kinds"
        };
        checks.push(check(
            "permissions",
            status,
            format!("the key lacks {} {for_what} (it holds: {})", missing.join(", "), listed.join(", ")),
            Some("grant the permissions to the key's user in Immuta (People > user > Permissions), or use a key of a user who has them"),
        ));
    }
    if let Some(project) = me.get("projectId").filter(|p| !p.is_null()) {
        checks.push(check(
            "key scope",
            Status::Warning,
            format!("the API key belongs to project {project}: it acts within that project only"),
            Some("create the key from your profile, not from a project, so it can manage the whole tenant"),
        ));
    }
}

async fn license_admin(client: &Client, expect: &Expectations, checks: &mut Vec<Check>) {
    let req = Request::get("/admin/license/licenseStatus", "/admin/license/licenseStatus").admin();
    let which = if client.has_admin_key() { "the license-admin key" } else { "the API key" };
    let manages = expect.kinds.as_ref().is_some_and(|k| k.contains(&Kind::License));
    let (status, summary) = match client.send_ok(&req).await {
        Ok(_) => (Status::Ok, format!("{which} may read the license status (APPLICATION_ADMIN)")),
        Err(Error::Forbidden { .. }) => (
            if manages { Status::Problem } else { Status::Warning },
            format!(
                "{which} lacks APPLICATION_ADMIN: {}",
                if manages {
                    "the specs manage license keys"
                } else {
                    "plans cannot warn about license expiry or seats, and `license status` fails"
                }
            ),
        ),
        Err(e) => (Status::Warning, format!("the license status cannot be read: {e}")),
    };
    let fix = (status != Status::Ok).then_some(
        "give the key APPLICATION_ADMIN, or set IMMUTA_ADMIN_API_KEY (--admin-api-key-file) to a key \
         that has it (tenants may keep GOVERNANCE and APPLICATION_ADMIN apart)",
    );
    checks.push(check("license admin", status, summary, fix));
}

/// How a purpose listing shows subpurposes.
fn subpurpose_shape(items: &[Value]) -> &'static str {
    if items.iter().any(|p| p.get("parent").is_some_and(|v| !v.is_null())) {
        return "every purpose a row (flat)";
    }
    let first = items
        .iter()
        .filter_map(|p| p.get("subpurposes").and_then(Value::as_array))
        .find_map(|s| s.first());
    match first {
        None => "no subpurposes listed yet",
        Some(Value::String(_)) => "subpurposes nested as names",
        Some(o) if o.get("id").is_some_and(|i| !i.is_null()) => "subpurposes nested with ids",
        Some(_) => "subpurposes nested without ids",
    }
}

async fn listings(client: &Client, checks: &mut Vec<Check>) {
    for path in ["/dataSource", "/project", "/governance/purpose", "/policy/global"] {
        let size = if path == "/governance/purpose" { 50 } else { 1 };
        let page: Result<Page<Value>, Error> =
            client.page(path, path, &[], Ask::Page { offset: 0, size }, false).await;
        let name = format!("listing {path}");
        match page {
            Ok(page) => {
                let mut summary = format!("{}", page.shape);
                if let Some(count) = page.count {
                    summary.push_str(&format!(", {count} in all"));
                }
                if page.items.len() > size {
                    summary.push_str(&format!(
                        "; it ignores `size` ({} items for size={size}): read at once",
                        page.items.len()
                    ));
                }
                if path == "/governance/purpose" {
                    summary.push_str(&format!("; {}", subpurpose_shape(&page.items)));
                }
                checks.push(check(name, Status::Ok, summary, None));
            }
            Err(e @ Error::Forbidden { .. }) => checks.push(check(
                name,
                Status::Problem,
                format!("{e}"),
                Some("every plan reads this listing and stops when it cannot: give the key the permission named"),
            )),
            Err(e) => checks.push(check(
                name,
                Status::Problem,
                format!("{e}"),
                Some("every plan reads this listing and stops when it cannot; report the answer's shape to the immuta-gitops maintainers"),
            )),
        }
    }
}

async fn connections(client: &Client, expect: &Expectations, checks: &mut Vec<Check>) {
    if expect.connection_keys.is_empty() {
        let why = if expect.kinds.is_some() {
            "the specs have no data source"
        } else {
            "no spec tree given"
        };
        checks.push(check("connections", Status::Ok, format!("not checked: {why}"), None));
        return;
    }
    let keys: Vec<&String> = expect.connection_keys.iter().take(MAX_CONNECTION_PROBES).collect();
    let mut registered = Vec::new();
    for key in &keys {
        let req = Request::get(
            format!("/data/connection/{}", client::encode_segment(key)),
            "/data/connection/{connectionKey}",
        );
        if let Ok(answer) = client.send(&req).await
            && answer.status.is_success()
        {
            registered.push(format!("`{key}`"));
        }
    }
    if registered.is_empty() {
        checks.push(check(
            "connections",
            Status::Ok,
            format!(
                "none of the specs' {} connection key(s) checked is a registered connection: V2 \
                 data sources",
                keys.len()
            ),
            None,
        ));
    } else {
        checks.push(check(
            "connections",
            Status::Problem,
            format!(
                "the tenant registers connections: {} cannot be changed with POST /api/v2/data, which \
                 is deprecated with connections (\"no substitute\")",
                registered.join(", ")
            ),
            Some(
                "manage these with Immuta's connections (UI or /data/connection API) and remove their \
                 data-source specs, or keep them out of this tree",
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn subpurposes_are_named_by_their_shape() {
        assert_eq!(
            subpurpose_shape(&[json!({"name": "R", "parent": "X"})]),
            "every purpose a row (flat)"
        );
        assert_eq!(
            subpurpose_shape(&[json!({"name": "R", "subpurposes": ["R.A"]})]),
            "subpurposes nested as names"
        );
        assert_eq!(
            subpurpose_shape(&[json!({"name": "R", "subpurposes": [{"name": "R.A"}]})]),
            "subpurposes nested without ids"
        );
        assert_eq!(
            subpurpose_shape(&[json!({"subpurposes": [{"name": "R.A", "id": 3}]})]),
            "subpurposes nested with ids"
        );
        assert_eq!(
            subpurpose_shape(&[json!({"name": "R", "subpurposes": []})]),
            "no subpurposes listed yet"
        );
    }

    #[test]
    fn the_clock_is_compared_within_five_minutes() {
        let now = SystemTime::now();
        assert_eq!(clock(Some(now)).status, Status::Ok);
        let ahead = clock(Some(now + Duration::from_secs(600)));
        assert_eq!(ahead.status, Status::Warning);
        assert!(ahead.summary.contains("ahead of"), "{}", ahead.summary);
        assert!(clock(Some(now - Duration::from_secs(900))).summary.contains("behind"));
        assert_eq!(clock(None).status, Status::Warning);
    }

    #[test]
    fn a_report_blocks_on_a_problem_and_shows_every_fix() {
        let report = Report {
            format_version: 1,
            tenant: "https://t".into(),
            ok: false,
            checks: vec![
                check("reachable", Status::Ok, "answered 200 in 3 ms".into(), None),
                check(
                    "permissions",
                    Status::Problem,
                    "the key lacks GOVERNANCE".into(),
                    Some("grant it"),
                ),
            ],
        };
        assert!(report.blocks());
        let text = report.text();
        assert!(text.contains("  problem  permissions  the key lacks GOVERNANCE\n"), "{text}");
        assert!(text.contains("fix: grant it"), "{text}");
        assert!(text.contains("1 problem(s) block apply"), "{text}");
        let json: Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["checks"][1]["status"], "problem");
        assert_eq!(json["ok"], false);
    }
}
