//! An in-memory emulator of the documented Immuta API: a sandbox tenant for tests, benchmarks and
//! demos.
//!
//! It serves the V2 "policy as code" endpoints (`/api/v2/data|policy|project|purpose`, with
//! Immuta's full-replace semantics and `dryRun`), the V1 listings and deletes a reconciler needs,
//! the license admin endpoints, API-key auth with permissions, and test controls under
//! `/_emulator/` (reset, catalog, tampering, request log, fault injection). The facts it emulates
//! are in `reference/immuta-api.md`; everything it had to invent is listed under
//! [Assumptions](#assumptions), so we know what a real tenant may contradict.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), immuta_emulator::Error> {
//! use immuta_emulator::{ADMIN_KEY, Emulator, EmulatorConfig};
//! # const SECRET_FIELDS: &[&str] = &["password"];
//! # const RULE_TYPES: &[&str] = &["Masking"];
//! // The reconciler's own lists (`immuta_gitops::spec::secrets::SECRET_FIELDS` and
//! // `immuta_gitops::spec::model::RULE_TYPES`): the emulator keeps no copy of them.
//! let config = EmulatorConfig::new(SECRET_FIELDS, RULE_TYPES);
//! let tenant = Emulator::start_with(config).await?; // 127.0.0.1:0, key ADMIN_KEY
//! let url = format!("{}/api/v2/data", tenant.base_url());
//! // ... POST with `Authorization: Bearer {ADMIN_KEY}` ...
//! tenant.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! From the command line: `immuta-gitops emulator --listen 127.0.0.1:8080 [--data-file FILE]
//! [--api-key KEY[=PERM,PERM]]... [--k-anonymization] [--catalog FILE]
//! [--variant DIMENSION=VALUE]... [--creation-delay DURATION]` (`--variant list` prints every
//! variant with its source; the arguments, signal handling and messages are the reconciler's
//! `src/cli/emulator.rs`; this crate is the server).
//!
//! # Variants
//!
//! The emulator is a witness, not the judge: where Immuta's docs, its Swagger and the public
//! clients (Terraform provider, fh-immuta-utils, tap-immuta, immuta-mcp) show more than one
//! behaviour, it plays the most realistic one by default and every other on request
//! ([`EmulatorConfig::variants`], `--variant`, `PUT /_emulator/variants`). Every value, with
//! what it does and its source, is in `variants.rs` ([`Variants::dimensions`]); in short:
//!
//! | Dimension | Default | Other values |
//! |---|---|---|
//! | `envelope` | `documented` (`{hits, facets, count}`, `{purposes, count}`, bare array) | `hits-count`, `hits`, `projects`, `data-sources`, `results`, `data`, `array` |
//! | `paging` | `honoured` | `ignored-by-policies`, `ignored`, `capped` (50 a page) |
//! | `purposes` | `nested` (subpurposes as objects without ids) | `nested-ids`, `names`, `flat` |
//! | `creation` | `background` (`wait` honoured, data sources appear after the creation delay) | `synchronous` |
//! | `acknowledgement` | `required` (a project post is refused until its purposes are acknowledged) | `required-in-dry-runs`, `none` |
//! | `auth` | `key` (Bearer or raw key, tokens) | `tokens-only`, `tokens-only-500` |
//! | `license-key` | `either` | `lower` (`licensekey`), `camel` (`licenseKey`) |
//! | `licenses` | `documented` (ids, integers) | `swagger` (no ids, "Unlimited") |
//! | `registration` | `data-sources` | `connections` (`/api/v2/data` refused) |
//! | `clock` | `exact` | `skewed` (`Date` ten minutes ahead) |
//!
//! The crate does not depend on the reconciler. The two lists it shares with the spec loader
//! come in through [`EmulatorConfig`]: [`secret_fields`](EmulatorConfig::secret_fields) (what
//! is masked and digested) and [`rule_types`](EmulatorConfig::rule_types) (what a data policy
//! may use). The reconciler passes its own, so each stays one list.
//!
//! # Layout
//!
//! - `server`: routes, the front door (latency, faults, request log),
//!   [`bind`], [`serve`], [`Emulator`] and [`EmulatorHandle`].
//! - `state`: the shared state (one store lock) and the data file. `store`: the objects.
//! - `auth`: keys, tokens, permissions. `http`: the request as handlers read it (`Call`, with
//!   the V2 prologue), bodies, errors; `json`: field readers.
//! - `data` (V2 data, full replace), `datasource` (V1 data sources, tags), `policy`, `project`,
//!   `purpose`, `license`: one module per kind, V2 and V1 together, each with its views.
//! - `v1`: the listing, read and delete every V1 collection shares, parameterised by the kind
//!   and the listing's documented envelope (a bare array or `{<items>, count}`).
//! - `control`: the `/_emulator/` endpoints. `faults`: fault rules and the connection-dropping
//!   listener. `reqlog`: the request log. `secrets`: masking and digests. `catalog`, `naming`,
//!   `clock`: the simulated remote catalog, name templates, timestamps.
//!
//! # Auth
//!
//! `Authorization: <key>`, `Authorization: Bearer <key>`, or a token from
//! `POST /bim/apikey/authenticate` (`{"apikey": "<key>"}` or the key in the `Authorization`
//! header; answers `{"token"}`), sent the same two ways. Missing, unknown or expired credentials:
//! 401. A key without the permission a call needs: 403 naming the permission.
//!
//! | Call | Permission |
//! |---|---|
//! | `POST /api/v2/data`, `DELETE /api/v2/data/{key}`, `DELETE /dataSource/{id}` | `CREATE_DATA_SOURCE` |
//! | `POST /api/v2/policy`, `POST /api/v2/purpose`, `DELETE /policy/global/{id}`, `DELETE /governance/purpose/{id}` | `GOVERNANCE` |
//! | `POST /api/v2/project`, `DELETE /api/v2/project/{key}`, `DELETE /project/{id}` | `CREATE_PROJECT` |
//! | `/admin/license*` | `APPLICATION_ADMIN` |
//! | V1 `GET` listings and details | any valid key |
//!
//! # Endpoints
//!
//! V2: `POST /api/v2/data` (query `dryRun`, `wait`), `DELETE /api/v2/data/{connectionKey}`
//! (`dryRun`), `POST /api/v2/policy` (`dryRun`, `reCertify`), `POST /api/v2/project` (`dryRun`,
//! `deleteDataSourcesOnWorkspaceDelete`), `DELETE /api/v2/project/{projectKey}` (`dryRun`),
//! `POST /api/v2/purpose` (`dryRun`, `reAcknowledgeRequired`). Bodies are JSON, or YAML when
//! `Content-Type` is `application/yaml`, `text/yaml` or `application/x-yaml`.
//!
//! V1: `GET /dataSource` (`{hits, facets, count}`; `size` default 100, `offset`,
//! `searchText`), `GET|DELETE /dataSource/{id}`, `GET /project` (`{hits, facets, count}`; `size`
//! default 10), `GET|DELETE /project/{id}`, `GET /project/{id}/dataSources` (`{dataSources,
//! count}`), `POST /project/{id}/members/{subscriptionId}/acknowledge`, `GET
//! /governance/purpose` (`{purposes, count}`; `size` default 50, `noLimit`), `GET|DELETE
//! /governance/purpose/{id}` (`includeSubpurposes`), `GET /policy/global` (bare array),
//! `GET|DELETE /policy/global/{id}`, `GET /tag` (bare array; `searchText`, `limit`),
//! `GET /bim/rpc/user/current` (the key's user and permissions), `GET
//! /data/connection/{connectionKey}` (the `connections` variant only). Listings are ordered by
//! id; `size`/`offset` page every listing (unlimited by default where Immuta documents no
//! default); the `envelope` and `paging` variants change both.
//!
//! Licenses: `POST|GET /admin/license`, `GET /admin/license/licenseStatus`,
//! `GET /admin/license/usage` (`offset` 0, `size` 10), `DELETE /admin/license/{id}`.
//!
//! Errors are `{"statusCode", "error", "message"}` with a message naming the field, unknown
//! routes included (404, and 405 for a known path with the wrong method). A YAML parse error
//! reports only its first line (position and reason): the parser's snippet of the input could
//! hold a secret.
//!
//! # Test controls
//!
//! Under `/_emulator/`, never under Immuta's paths; no auth; not logged, not faulted.
//!
//! | Control | Effect |
//! |---|---|
//! | `POST /_emulator/reset` | Empty tenant (objects, ids, users, request log, faults, latency). Keys, catalog and settings stay unless the body says `{"catalog": true}` / `{"settings": true}`. |
//! | `GET`, `PUT /_emulator/catalog` | Read or replace the whole remote catalog; body shape as `--catalog` (JSON or YAML): `{"connections":[{"hostname","database","schemas":{"SCHEMA":{"TABLE":[{"name","dataType"}]}}}]}`. |
//! | `PATCH /_emulator/objects/{kind}/{key}` | JSON merge patch on a stored object, as a UI user would edit it. Kinds: `data` (connectionKey; patches the stored V2 payload), `datasource` (id; patches the record shown in `/_emulator/state`), `policy` (policyKey) and `project` (projectKey) (patch the stored V2 payload), `purpose` (full name; patches the purpose record). The natural key cannot be changed. Answers the patched object. |
//! | `DELETE /_emulator/objects/{kind}/{key}` | Deletes the object out of band, without checks (`data` takes its data sources and schema projects along, `purpose` its subpurposes). |
//! | `GET`, `DELETE /_emulator/requests` | The request log `[{method, path, query, body, status}]` (newest last, at most 10,000; secrets `"***"`; `status` 0 = dropped), or clear it. |
//! | `GET`, `POST`, `DELETE /_emulator/faults` | List, arm, or disarm fault rules: `{"method"?, "pathPrefix"?, "count"? (default 1), "status"?, "retryAfter"?, "delayMs"?, "afterMs"?, "drop"?}`. The next `count` matching requests are delayed, then answered with `status` (and `Retry-After`), or have their TCP connection closed without an answer (`drop`), or are served normally (delay only); `afterMs` serves them normally and then holds the answer (the work is done before a client that gives up can know it). The first matching rule wins. |
//! | `GET`, `POST`, `DELETE /_emulator/misbehaviours` | List, arm, or disarm answers no documented API gives: `{"kind", "method"?, "pathPrefix"?, "dryRun"?, "count"? (default 1), "cutAt"?}` with `kind` one of `echo` (a `400` quoting the request body as is, form-encoded and base64, and the query; cut at `cutAt` bytes), `echo-text` (the same as `text/plain`), `echo-auth` (a `403` quoting the `Authorization` header), `redirect` (`302` to a login page), `html` (`200 text/html`), `empty` (an empty `200`), `shape` (`200` JSON of another shape), `lose` (served, then the connection dropped without an answer). See `misbehave.rs`. |
//! | `PUT /_emulator/latency` | `{"ms": N}`: every request is delayed N ms (0 = off). |
//! | `GET`, `PUT /_emulator/settings` | `{"kAnonymization": bool}`. |
//! | `PUT /_emulator/users` | Replace the users license usage counts: `[{userType: dataConsumer\|policyOwner, name, email?, iamid? ("bim"), userid? (email), active? (true)}]`. |
//! | `POST /_emulator/expire-tokens` | Every bearer token issued so far is expired (401 from now on). |
//! | `GET`, `PUT /_emulator/variants` | `{variants, label, creationDelayMs}`; a `PUT` body `{"variants"?: {...}, "creationDelayMs"?}` replaces every dimension (those left out are the defaults) and the creation delay. Kept across `reset`. |
//! | `GET /_emulator/state` | The whole store as JSON, secrets as `sha256:` digests. |
//!
//! # Persistence and secrets
//!
//! With a data file, the store is loaded at start (a missing file is an empty tenant; a corrupt one
//! is an error naming the file) and written atomically (temporary file in the same directory,
//! synced, renamed) after every successful mutation, before the answer is sent. Stored payloads
//! never hold a secret in clear: values of every field in
//! [`EmulatorConfig::secret_fields`] (the reconciler passes every field its spec loader treats as
//! secret, `immuta_gitops::spec::secrets::SECRET_FIELDS`: `password`, `clientSecret`, `token`,
//! `privateKey`, `privateKeyPassword`, `privateKeyPassphrase`, `passphrase`, `secretKey`,
//! `secretAccessKey`, `apiKey`, `apikey`, `licenseKey`, `licensekey`), and `content` under
//! `userFiles`, are stored as
//! `"sha256:<hex>"` (so identical re-posts still compare equal), license keys as digests only.
//! The request log masks the same fields (and the `Authorization` header is never recorded);
//! `tracing` sees method, path and status only, never bodies.
//!
//! # Assumptions
//!
//! Behaviour the Immuta docs do not pin down, chosen here; a real tenant may differ.
//!
//! **Auth**
//! - A key is accepted with or without `Bearer`; so is a token. Tokens live in memory only (a
//!   restart invalidates them) and expire after `token_ttl` (default 1 h).
//! - Without configured keys, [`ADMIN_KEY`] holds every permission; once keys are configured,
//!   only those are accepted. `--api-key KEY=` gives a key with no permission at all.
//! - Each key acts as a user named `apikey-user-<first 8 hex digits of SHA-256(key)>` (the
//!   "caller" that stays owner when `owners: []`).
//! - `POST /_emulator/reset` keeps issued tokens (they belong to the keys, not the tenant).
//! - Every valid key sees every object in V1 listings (Immuta restricts `GET /dataSource` to
//!   owners, subscribers and `GOVERNANCE`; the emulator has no subscriptions).
//!
//! **Data sources (`POST /api/v2/data`)**
//! - Required: `connectionKey`, `connection.handler`, `connection.hostname` (BigQuery needs
//!   `sid` instead, the GCP project, and Athena `region`: the docs' special cases; the catalog
//!   and the connection string then use that). `database` defaults to `""`; `port` must be a
//!   number (or numeric string). A table source names its table `tableName` (the attribute
//!   docs) or `table` (Immuta's own complex example), not both.
//! - The remote catalog is keyed by hostname (case-insensitive) and database (exact). Table and
//!   schema names match the catalog exactly (no case folding).
//! - `sources` absent or holding `{all: true}`: every table of every catalog schema (only
//!   `connection.schema` when given), `detectionRunning: true`. Explicit entries next to
//!   `{all: true}` refine the tables `all` selects (tags, naming...) or add query sources. With
//!   no catalog entry for the host+database the catalog is "open": explicit tables are accepted
//!   as they are and `all` yields no tables.
//! - Two entries for one table: 400 "duplicate tables are specified in the payload"; two sources
//!   with one name, or a name already used under another `connectionKey`: 400.
//! - Names: `nameTemplate.dataSourceFormat` (default `<schema> <tablename>`), `tableFormat`
//!   (default `<tablename>`, the SQL table name), `schemaFormat` (default `<schema>`),
//!   `schemaProjectNameFormat` (default `<schema>`). Placeholder case sets value case:
//!   `<tablename>` lower-case, `<TABLENAME>` upper-case, `<Tablename>` capitalised (first letter
//!   upper, rest lower); literal text is kept. A source's `naming.datasource|table|schema`
//!   overrides the formats. Query sources need `naming.datasource`; their remote table defaults
//!   to that name and their remote schema to `""`.
//! - A desired source matches an existing data source of the same key by (schema, table), or by
//!   name for query sources. Reported names are data-source names; `creating`/`updating`/
//!   `noChange` follow payload order (catalog tables first, sorted), `deleting` id order.
//! - A data source is under `noChange` only when its stored record equals what the payload asks
//!   for and the connection-wide payload (everything but `sources`, `owners` and
//!   `options.hardDelete`) is unchanged; otherwise `updating`. So a credential change (e.g.
//!   `password`, compared by digest) updates every data source in place, ids kept.
//! - "New connection information" means a change to `handler`, `hostname` (any case), `port`,
//!   `database` or `httpPath`: every data source of the key (disabled ones included) is deleted
//!   (`deleting`) and recreated with new ids (`creating`).
//! - Dropped tables: disabled (`deleted: true`, under `deleting`), or removed for good with
//!   `options.hardDelete: true` (already disabled ones too). A disabled table listed again is
//!   re-enabled, same id, under `updating`.
//! - Owners: per source `owners` override the top-level ones. Absent: a new data source gets the
//!   caller, an existing one keeps its owners. `[]`: only the caller. A list: exactly that list.
//!   Recreated data sources count as new.
//! - `description`, `documentation`, tags and columns are replaced on every post (absent =
//!   none). Columns come from the source's `columns`, else from the catalog, else none;
//!   `columnDescriptions` and `tags.columns` naming a column not in a known column list: 400.
//! - `tagsUpdated` is true when a created data source carries a tag or an updated one's tag set
//!   (table, `tableTags`, column tags) changed.
//! - `wait`: see "Query parameters" below.
//! - Schema projects: one per (connectionKey, remote schema) holding data sources (disabled ones
//!   included), named by `schemaProjectNameFormat`, `projectKey: null`, renamed when the format
//!   changes, removed when empty. Names are not checked for uniqueness. `DELETE /project/{id}` on
//!   a schema project deletes its data sources for good.
//! - `DELETE /api/v2/data/{key}` removes every data source of the key for good (no disable step)
//!   and answers `deleting` with their names; 404 when the key has no payload and no sources.
//! - `DELETE /dataSource/{id}` answers `{"hardDelete": false, "id", "name", "deleted": true}`
//!   then `{"hardDelete": true, "id", "name"}`.
//!
//! **Policies, projects, purposes**
//! - Identical re-post = the canonical stored payload (keys sorted, secrets digested) equals the
//!   new one: `creating` and `updating` both false. Ids are per kind, start at 1, never reused
//!   (until `reset`), and stay stable across updates. On a dry-run create the id is `null`.
//! - Validation errors are 400; a K-Anonymization masking rule on a tenant without it is 422;
//!   deleting a purpose (or removing a subpurpose by re-posting) that a project uses is 409.
//! - Policies: subscription `actions.type` must be `anyone|approval|entitlements|manual`;
//!   `circumstanceOperator` `all|any`. V1 `GET /policy/global` items carry the stored V2
//!   vocabulary in `actions`/`circumstances` (a real tenant answers V1 shapes there).
//! - Projects: `datasources` must name active data sources (not disabled, not still being
//!   created) and `purposes` existing purposes (400 listing the unknown ones). Added/removed
//!   counts compare data-source name sets. `creatingWorkspace`/`deletingWorkspace` report
//!   `workspace` appearing/disappearing. The acknowledgement step is in `project.rs`: the owner
//!   is the key that created the project, its membership one `subscriptionId`, and
//!   "acknowledging" covers every purpose the project uses or has staged. V1 details show
//!   `purposes` as `{id, name}` and `tags` as `{name, source}` objects (real tenants do: TF@d6d4eaa,
//!   TF@e227eab). `DELETE /api/v2/project/{key}` answers `{dryRun, projectKey, projectId,
//!   deleted}`.
//! - Purposes: subpurposes are stored flat under their full dotted name, each must start with its
//!   parent's name plus "."; a name used outside the hierarchy, or posting a subpurpose as a
//!   root, is 400. How V1 reads show them is the `purposes` variant; `acknowledgement` is
//!   inherited from the nearest ancestor, else a fixed default text.
//! - `GET /bim/rpc/user/current` answers `id` 1, `iamid` `bim`, `userid` the key's user,
//!   `permissions` the key's, `groupPermissions` `[]`, `projectId` `null`.
//! - `GET /tag` lists tags currently on data sources (disabled ones included) or projects, with
//!   ids stable from first use; policy circumstance tags do not create tags.
//! - V1 data-source items follow the documented example (no `connectionKey`; `connectionString`
//!   is `<username>@<hostname>:<port>/<database>`, parts omitted when absent; `status`
//!   `passed`); the detail adds `sqlTableName`, `remoteDatabase`, `query`, `documentation`,
//!   `owners`, `tags` and `columns` (each with its `tags`).
//!
//! **Query parameters with no emulated effect**
//!
//! Immuta documents an effect for each of these, but on something the emulator does not model,
//! so nothing a client can read changes. Each is validated and otherwise ignored: booleans are
//! `true`/`false`/`1`/`0` (empty = `true`), `wait` any number; anything else is 400 naming the
//! parameter. The answer is the same with or without them.
//! - `reCertify` (`POST /api/v2/policy`): someone must re-certify the policy on the impacted data
//!   sources. There is no certification workflow, and no documented read shows its state.
//! - `deleteDataSourcesOnWorkspaceDelete` (`POST /api/v2/project`): removing a workspace deletes
//!   the data and data sources *of the workspace*. The emulator has no workspace data (derived
//!   data sources cannot be created), so nothing is deleted; the data sources the project lists
//!   in `datasources` are registered data, not workspace data, and are kept.
//!
//! Two parameters have an effect. `wait` (`POST /api/v2/data`: "the number of seconds to wait
//! for data sources to be created before returning. Anything less than 0 will wait
//! indefinitely", default 0): under the `background` creation variant (the default) data
//! sources the post creates exist only after [`EmulatorConfig::creation_delay`] (they are not
//! listed, not readable by id, and a project cannot name them until then; updated and disabled
//! ones change at once), and the answer, which names them under `creating` at once, is held up
//! to `wait` seconds, or until they exist when `wait` is below 0. No source shows what a post
//! answers while creation runs; this is the emulator's choice. A dry run, or a post of the same
//! connection, counts them as existing already. Under `synchronous` every data source exists
//! before the answer, whatever `wait`. And `reAcknowledgeRequired` (`POST /api/v2/purpose`). Every
//! project using a purpose whose statement the post changes (its own, or an ancestor's it
//! inherits) must acknowledge it again: its `acknowledgeRequired` turns `true`, and its next
//! post asks for the acknowledgement. Without the flag, a new statement asks nobody.
//!
//! **Licenses**
//! - Test key format: `IMMUTA-TEST;seats=N;expires=YYYY-MM-DD[;features=A,B][;softSeats=N]
//!   [;hardSeats=true|false][;hardExpiration=true|false]`; anything else is 400. The `uuid` is
//!   derived from the key's digest (same key, same uuid). Re-posting a key answers the existing
//!   license. No answer ever carries the key (the docs' POST example echoes it).
//! - `licenseSeats` sums the seats of unexpired licenses; `activeUserCount` counts active users;
//!   `canAddUser` is `activeUserCount < licenseSeats`; `hardSeats` (an integer, as the docs
//!   type it: "the number of licensed seats available") sums the seats of unexpired licenses
//!   whose key says `hardSeats=true`. `expires` is midnight UTC of the key's date; `expired`
//!   compares dates.
//! - Usage: activity is tracked for data consumers only (`activeCount`, `inactiveCount` =
//!   total - active); policy owners have a `totalCount`. `DELETE /admin/license/{id}` answers
//!   the license with `updatedAt` the deletion time and `hardDelete: false` (it can be added
//!   again).
//!
//! **Persistence**
//! - The data file holds the whole store, catalog and settings included; a non-empty configured
//!   catalog replaces the stored one at start, and `--k-anonymization` switches the setting on.

#![deny(clippy::all)]

mod auth;
mod catalog;
mod clock;
mod control;
mod data;
mod datasource;
mod faults;
mod http;
mod json;
mod license;
mod lies;
mod misbehave;
mod naming;
mod policy;
mod project;
mod purpose;
mod reqlog;
mod secrets;
mod server;
mod state;
mod store;
mod v1;
mod variants;

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use catalog::{Catalog, CatalogColumn, CatalogConnection};
pub use license::TEST_KEY_PREFIX;
pub use server::{Emulator, EmulatorHandle, bind, serve};
pub use state::EmulatorState;
pub use variants::{
    Acknowledgement, Auth, Clock, Creation, Dimension, Envelope, LicenseKey, Licenses, Paging,
    Purposes, Registration, Variants,
};

/// The key accepted, with every permission, when no keys are configured.
pub const ADMIN_KEY: &str = "emulator-admin-key";

/// An Immuta permission the emulator checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Permission {
    /// `POST|DELETE /api/v2/data`, `DELETE /dataSource/{id}`.
    CreateDataSource,
    /// Policies and purposes.
    Governance,
    /// Projects.
    CreateProject,
    /// `/admin/license*`.
    ApplicationAdmin,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 4] = [
        Permission::CreateDataSource,
        Permission::Governance,
        Permission::CreateProject,
        Permission::ApplicationAdmin,
    ];

    /// Every permission, as a set.
    pub fn all() -> BTreeSet<Permission> {
        Permission::ALL.into_iter().collect()
    }

    /// The wire name, e.g. `CREATE_DATA_SOURCE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::CreateDataSource => "CREATE_DATA_SOURCE",
            Permission::Governance => "GOVERNANCE",
            Permission::CreateProject => "CREATE_PROJECT",
            Permission::ApplicationAdmin => "APPLICATION_ADMIN",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = Error;

    /// Parses a wire name, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownPermission(s.trim().to_owned()))
    }
}

/// An API key and what it may do. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The secret key.
    pub key: String,
    /// Its permissions.
    pub permissions: BTreeSet<Permission>,
}

impl ApiKey {
    /// A key with every permission.
    pub fn admin(key: impl Into<String>) -> ApiKey {
        ApiKey { key: key.into(), permissions: Permission::all() }
    }

    /// A key with the given permissions.
    pub fn with(
        key: impl Into<String>,
        permissions: impl IntoIterator<Item = Permission>,
    ) -> ApiKey {
        ApiKey { key: key.into(), permissions: permissions.into_iter().collect() }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &"***")
            .field("permissions", &self.permissions)
            .finish()
    }
}

impl FromStr for ApiKey {
    type Err = Error;

    /// `KEY` (every permission) or `KEY=PERM,PERM` (only those; `KEY=` for none).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, permissions) = match s.split_once('=') {
            None => (s, Permission::all()),
            Some((key, list)) => (
                key,
                list.split(',')
                    .filter(|p| !p.trim().is_empty())
                    .map(Permission::from_str)
                    .collect::<Result<BTreeSet<_>, _>>()?,
            ),
        };
        if key.trim().is_empty() {
            return Err(Error::InvalidApiKey("the key is empty".to_owned()));
        }
        Ok(ApiKey { key: key.to_owned(), permissions })
    }
}

/// How to run an emulator: [`EmulatorConfig::new`] with the reconciler's lists, then the fields
/// to change.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to bind; default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// Where to persist the tenant; `None` keeps it in memory only.
    pub data_file: Option<PathBuf>,
    /// Accepted keys; empty means [`ADMIN_KEY`] with every permission.
    pub api_keys: Vec<ApiKey>,
    /// Whether K-Anonymization masking is activated from the start.
    pub k_anonymization: bool,
    /// Lifetime of tokens from `POST /bim/apikey/authenticate`; default 1 h.
    pub token_ttl: Duration,
    /// The initial remote catalog.
    pub catalog: Catalog,
    /// Object keys whose values are secret wherever they appear: masked (`"***"`) in the
    /// request log, stored as `"sha256:<hex>"`. The reconciler passes every field its spec
    /// loader treats as secret (`immuta_gitops::spec::secrets::SECRET_FIELDS`), so a field
    /// added there is never logged or stored in clear here.
    pub secret_fields: &'static [&'static str],
    /// The data-policy rule types `POST /api/v2/policy` accepts (both documented spellings of
    /// "by"). The reconciler passes the list its spec loader accepts
    /// (`immuta_gitops::spec::model::RULE_TYPES`), so the two cannot drift apart.
    pub rule_types: &'static [&'static str],
    /// How the tenant behaves where the sources show more than one way (see [`Variants`]);
    /// the default is the most realistic tenant.
    pub variants: Variants,
    /// How long a data source takes to appear after `POST /api/v2/data` creates it in the
    /// background (the `background` creation variant); default 100 ms.
    pub creation_delay: Duration,
}

impl EmulatorConfig {
    /// An in-memory tenant on `127.0.0.1:0` (a free port) accepting [`ADMIN_KEY`], with an
    /// empty catalog, K-Anonymization off and 1 h tokens; `secret_fields` and `rule_types` as
    /// in [`EmulatorConfig::secret_fields`] and [`EmulatorConfig::rule_types`]. There is no
    /// `Default`: an emulator without the secret fields would store secrets in clear.
    pub fn new(
        secret_fields: &'static [&'static str],
        rule_types: &'static [&'static str],
    ) -> EmulatorConfig {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_file: None,
            api_keys: Vec::new(),
            k_anonymization: false,
            token_ttl: Duration::from_secs(3600),
            catalog: Catalog::default(),
            secret_fields,
            rule_types,
            variants: Variants::default(),
            creation_delay: DEFAULT_CREATION_DELAY,
        }
    }
}

/// [`EmulatorConfig::creation_delay`] by default.
pub const DEFAULT_CREATION_DELAY: Duration = Duration::from_millis(100);

/// What can go wrong starting or running the emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the emulator server failed")]
    Serve(#[source] std::io::Error),
    /// The data file exists but could not be read.
    #[error("cannot read the emulator data file {}", path.display())]
    ReadDataFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The data file is not an emulator store.
    #[error("the emulator data file {} is corrupt: {message}", path.display())]
    CorruptDataFile { path: PathBuf, message: String },
    /// The data file could not be written.
    #[error("cannot write the emulator data file {}", path.display())]
    WriteDataFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The catalog file could not be read.
    #[error("cannot read the catalog file {}", path.display())]
    ReadCatalog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The catalog file is not a catalog.
    #[error("the catalog file {} is not valid: {message}", path.display())]
    InvalidCatalog { path: PathBuf, message: String },
    /// An `--api-key` value is malformed (the message never contains the key).
    #[error("invalid API key: {0}")]
    InvalidApiKey(String),
    /// A `--variant` setting is malformed.
    #[error("invalid variant: {0}")]
    InvalidVariant(String),
    /// A permission name is unknown.
    #[error(
        "unknown permission {0:?} (expected CREATE_DATA_SOURCE, GOVERNANCE, CREATE_PROJECT or \
         APPLICATION_ADMIN)"
    )]
    UnknownPermission(String),
}
