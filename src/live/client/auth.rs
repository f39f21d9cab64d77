//! Credentials: which form of the API key the tenant takes (settled once, before the first
//! request), the token exchange, and the unretried probes `doctor` sends.

use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Mutex;

use super::{AttemptError, Client, Exchanged, RawResponse, Request, transport_message};
use crate::live::{Error, Result};

/// The form a probe sends the credential in (`Client::probe`).
#[derive(Debug, Clone, Copy)]
pub enum ProbeAuth<'a> {
    /// No `Authorization` header.
    None,
    /// `Authorization: Bearer <key>`.
    BearerKey,
    /// `Authorization: <key>`.
    RawKey,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a SecretString),
}

/// Which credential a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The governance key.
    Governance,
    /// The license-admin key (falls back to the governance key).
    Admin,
}

pub(super) struct Credential {
    pub(super) api_key: SecretString,
    pub(super) token: Mutex<Option<SecretString>>,
    /// Whether the form the tenant takes this credential in is known (see `settle`).
    pub(super) settled: AtomicBool,
    /// Held by the request that settles it; the others wait.
    pub(super) settling: Mutex<()>,
}

/// Where the credential is tried before its first request.
const WHOAMI: &str = "/bim/rpc/user/current";

/// The token exchange.
const EXCHANGE_PATH: &str = "/bim/apikey/authenticate";

impl Client {
    pub(super) fn credential(&self, role: Role) -> &Credential {
        match role {
            Role::Admin => self.inner.admin.as_ref().unwrap_or(&self.inner.governance),
            Role::Governance => &self.inner.governance,
        }
    }

    /// `Bearer <token>` once a token is held, else `Bearer <key>`.
    pub(super) async fn authorization(&self, credential: &Credential) -> String {
        match credential.token.lock().await.as_ref() {
            Some(token) => format!("Bearer {}", token.expose_secret()),
            None => format!("Bearer {}", credential.api_key.expose_secret()),
        }
    }

    /// Settles, once, which form of `credential` the tenant takes (see the module docs): one
    /// `GET /bim/rpc/user/current` with the key; a `401` or `500` is answered by the exchange.
    /// Only a key refused with `401` whose exchange fails too fails the request (with the
    /// exchange's error; the next request tries again): anything else (a `500` that was a
    /// server error, an unreachable tenant) is left to the request itself and its retries.
    pub(super) async fn settle(
        &self,
        credential: &Credential,
    ) -> std::result::Result<(), AttemptError> {
        if credential.settled.load(Ordering::Acquire) {
            return Ok(());
        }
        let _settling = credential.settling.lock().await;
        if credential.settled.load(Ordering::Acquire) {
            return Ok(());
        }
        let probe = Request::get(WHOAMI, WHOAMI);
        let auth = self.authorization(credential).await;
        let status = self.observed(&probe, Some(&auth)).await.ok().map(|a| a.status.as_u16());
        if matches!(status, Some(401 | 500)) {
            let exchanged = self.exchange(credential).await;
            if status == Some(401) {
                exchanged?;
            }
        }
        credential.settled.store(true, Ordering::Release);
        Ok(())
    }

    /// What the tenant says about the user a credential acts as (`GET /bim/rpc/user/current`:
    /// `permissions`, `groupPermissions`, `projectId`...).
    pub async fn whoami(&self, admin: bool) -> Result<Value> {
        let mut req = Request::get(WHOAMI, WHOAMI);
        if admin {
            req = req.admin();
        }
        self.send_ok(&req).await
    }

    /// Exchanges the API key for a session token (`POST /bim/apikey/authenticate`), with the
    /// same classifier, retries and observer as every other request. A failure is final for
    /// the request that needed the token: the exchange has used its retries already.
    pub(super) async fn exchange(
        &self,
        credential: &Credential,
    ) -> std::result::Result<(), AttemptError> {
        let key = credential.api_key.expose_secret();
        let body = serde_json::json!({ "apikey": key });
        let secrets = [key.to_owned()];
        let req = Request::post(EXCHANGE_PATH, EXCHANGE_PATH, &body).secrets(&secrets);
        let token =
            self.retrying(&req, || self.exchange_once(&req)).await.map_err(AttemptError::Fatal)?;
        crate::redact::register(token.expose_secret());
        *credential.token.lock().await = Some(token);
        Ok(())
    }

    async fn exchange_once(
        &self,
        req: &Request<'_>,
    ) -> std::result::Result<SecretString, AttemptError> {
        let Exchanged { status, retry_after, body, .. } = self.observed(req, None).await?;
        let url = self.url(&req.path);
        if status.is_success() {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            return match value.get("token").and_then(Value::as_str) {
                Some(token) if !token.is_empty() => Ok(SecretString::from(token.to_owned())),
                _ => Err(AttemptError::Fatal(Error::Decode {
                    path: req.path.clone(),
                    message: "the token exchange answered no `token`".into(),
                })),
            };
        }
        if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
            return Err(AttemptError::Fatal(Error::Unauthorized {
                url,
                message: format!(
                    "the API key was refused ({status}); check IMMUTA_API_KEY (or --api-key-file) and that \
                     the key is not expired or revoked"
                ),
            }));
        }
        // 429 and 5xx: the tenant is busy or failing, not refusing the key.
        Err(self.failed(req, status, retry_after.as_deref(), &body))
    }

    /// One request exactly as asked, for `doctor`: the credential in the form `auth` says, no
    /// retry, no exchange, every status returned. A transport failure is an error.
    pub async fn probe(&self, req: &Request<'_>, auth: ProbeAuth<'_>) -> Result<RawResponse> {
        let credential = self.credential(req.role);
        let header = match auth {
            ProbeAuth::None => None,
            ProbeAuth::BearerKey => Some(format!("Bearer {}", credential.api_key.expose_secret())),
            ProbeAuth::RawKey => Some(credential.api_key.expose_secret().to_owned()),
            ProbeAuth::Bearer(token) => Some(format!("Bearer {}", token.expose_secret())),
        };
        match self.once(req, header.as_deref()).await {
            Ok(answer) => {
                Ok(RawResponse { status: answer.status, date: answer.date, body: answer.body })
            }
            Err(e) => {
                Err(Error::Transport { url: self.url(&req.path), message: transport_message(&e) })
            }
        }
    }

    /// One token exchange for the credential of `role`, for `doctor`: the token, or why not.
    /// The token is not kept.
    pub async fn probe_exchange(&self, role: Role) -> Result<SecretString> {
        let credential = self.credential(role);
        let key = credential.api_key.expose_secret();
        let body = serde_json::json!({ "apikey": key });
        let secrets = [key.to_owned()];
        let req = Request::post(EXCHANGE_PATH, EXCHANGE_PATH, &body).secrets(&secrets);
        self.exchange_once(&req).await.map_err(AttemptError::into_error)
    }
}
