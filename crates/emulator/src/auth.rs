//! API keys, bearer tokens and permission checks (`Authorization: <key>`, `Bearer <key>`, or a
//! token from `POST /bim/apikey/authenticate`), and `GET /bim/rpc/user/current`.
//!
//! Under the `tokens-only` and `tokens-only-500` auth variants, an API key is taken by the
//! token exchange only; elsewhere it is refused like a missing credential, with 401 or (as
//! fh-immuta-utils met it) 500.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::http::{ApiError, ApiResult, Call, ok};
use super::state::{EmulatorState, lock};
use super::variants::Auth as AuthVariant;
use super::{ADMIN_KEY, ApiKey, Permission};

/// Who is calling: the user behind the API key and what it may do.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The user name the key acts as (`apikey-user-<8 hex digits of the key's SHA-256>`).
    pub(crate) user: String,
    pub(crate) permissions: BTreeSet<Permission>,
}

struct KeyEntry {
    key: String,
    caller: Caller,
}

struct Token {
    key_index: usize,
    expires: Instant,
}

/// Keys (fixed at start) and the tokens exchanged for them (in memory only).
pub(crate) struct Auth {
    keys: Vec<KeyEntry>,
    tokens: HashMap<String, Token>,
    ttl: Duration,
}

impl Auth {
    /// Keys from the configuration; with none, [`ADMIN_KEY`] with every permission.
    pub(crate) fn new(keys: &[ApiKey], ttl: Duration) -> Auth {
        let defaults;
        let keys = if keys.is_empty() {
            defaults = [ApiKey { key: ADMIN_KEY.to_owned(), permissions: Permission::all() }];
            &defaults[..]
        } else {
            keys
        };
        let keys = keys
            .iter()
            .map(|k| KeyEntry {
                key: k.key.clone(),
                caller: Caller { user: user_for_key(&k.key), permissions: k.permissions.clone() },
            })
            .collect();
        Auth { keys, tokens: HashMap::new(), ttl }
    }

    fn key_index(&self, credential: &str) -> Option<usize> {
        // Compare against every key in constant time per key.
        let mut found = None;
        for (i, entry) in self.keys.iter().enumerate() {
            if bool::from(entry.key.as_bytes().ct_eq(credential.as_bytes())) {
                found = Some(i);
            }
        }
        found
    }

    fn caller(&self, credential: &str, keys_taken: bool) -> Result<Caller, ApiError> {
        if let Some(i) = self.key_index(credential) {
            if keys_taken {
                return Ok(self.keys[i].caller.clone());
            }
            return Err(ApiError::unauthorized(
                "API keys are not taken here: exchange the key for a token with POST \
                 /bim/apikey/authenticate",
            ));
        }
        match self.tokens.get(credential) {
            Some(token) if Instant::now() >= token.expires => Err(ApiError::unauthorized(
                "the token has expired: authenticate again with POST /bim/apikey/authenticate",
            )),
            Some(token) => Ok(self.keys[token.key_index].caller.clone()),
            None => Err(ApiError::unauthorized("invalid API key or token")),
        }
    }

    fn issue_token(&mut self, key_index: usize) -> String {
        let now = Instant::now();
        // Forget tokens that expired more than a TTL ago; recent ones still answer "expired".
        let ttl = self.ttl;
        self.tokens.retain(|_, t| now < t.expires + ttl);
        let token = hex::encode(rand::random::<[u8; 32]>());
        self.tokens.insert(token.clone(), Token { key_index, expires: now + self.ttl });
        token
    }

    /// Makes every token issued so far expired.
    pub(crate) fn expire_tokens(&mut self) {
        let now = Instant::now();
        for token in self.tokens.values_mut() {
            token.expires = now;
        }
    }
}

/// The user name an API key acts as: stable, and not revealing the key.
fn user_for_key(key: &str) -> String {
    let digest = super::secrets::digest(key.as_bytes());
    format!("apikey-user-{}", &digest["sha256:".len().."sha256:".len() + 8])
}

/// The credential in an `Authorization` header, with or without the `Bearer` scheme.
fn credential(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let credential = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    };
    (!credential.is_empty()).then_some(credential)
}

/// Authenticates a request and checks that its key holds `needed` (if any); `action` names the
/// call in the 403 message.
pub(crate) fn authorize(
    state: &EmulatorState,
    headers: &HeaderMap,
    needed: Option<Permission>,
    action: &str,
) -> Result<Caller, ApiError> {
    let variant = state.variants().auth;
    let refused = |e: ApiError| match variant {
        // A tenant that answers a credential it does not take with a server error.
        AuthVariant::TokensOnly500 => {
            ApiError::internal(format!("An internal server error occurred ({})", e.message))
        }
        AuthVariant::Key | AuthVariant::TokensOnly => e,
    };
    let credential = credential(headers).ok_or_else(|| {
        refused(ApiError::unauthorized(
            "missing credentials: send an Authorization header with an API key",
        ))
    })?;
    let caller =
        lock(&state.inner.auth).caller(credential, variant == AuthVariant::Key).map_err(refused)?;
    if let Some(permission) = needed
        && !caller.permissions.contains(&permission)
    {
        return Err(ApiError::forbidden(format!(
            "this API key lacks the {permission} permission required for {action}"
        )));
    }
    Ok(caller)
}

/// `GET /bim/rpc/user/current`: who the key acts as and what it may do (Swagger's `Model46`,
/// Swagger:10985-11062); any valid credential.
pub(crate) async fn current(call: Call) -> ApiResult {
    let caller = call.authorize(None, "GET /bim/rpc/user/current")?;
    let permissions: Vec<&str> = caller.permissions.iter().map(|p| p.as_str()).collect();
    ok(json!({
        "id": 1,
        "iamid": "bim",
        "userid": caller.user,
        "profile": {"name": caller.user},
        "permissions": permissions,
        "groupPermissions": [],
        "projectId": Value::Null,
        "authorizations": {},
        "systemGenerated": false,
        "disabled": false,
    }))
}

/// `POST /bim/apikey/authenticate`: exchanges an API key (JSON `{"apikey"}` or the
/// `Authorization` header) for a bearer token.
pub(crate) async fn authenticate(call: Call) -> ApiResult {
    let from_body = if call.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let value: Value = serde_json::from_slice(&call.body).map_err(|_| {
            ApiError::bad_request("the request body must be JSON: {\"apikey\": ...}")
        })?;
        match value.get("apikey") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::bad_request("apikey must be a string")),
        }
    };
    let key =
        from_body.or_else(|| credential(&call.headers).map(str::to_owned)).ok_or_else(|| {
            ApiError::unauthorized("apikey is required (in the body or the Authorization header)")
        })?;
    let mut auth = lock(&call.state.inner.auth);
    let index = auth.key_index(&key).ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
    let token = auth.issue_token(index);
    drop(auth);
    ok(json!({ "token": token }))
}
