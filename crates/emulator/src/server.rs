//! The HTTP server: routes, the front door every Immuta-path request passes (latency, faults,
//! request log), [`serve`], and the in-process [`Emulator`] with its [`EmulatorHandle`].

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::faults::{ConnectionKill, KillableListener, Outcome};
use super::http::ApiError;
use super::lies;
use super::reqlog::{RequestRecord, logged_body, logged_query};
use super::state::{EmulatorState, lock};
use super::variants::{CLOCK_SKEW, Clock};
use super::{
    EmulatorConfig, Error, auth, control, data, datasource, license, misbehave, policy, project,
    purpose,
};

/// Largest request body accepted (bytes).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long [`EmulatorHandle::shutdown`] waits for open requests before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Every route of the emulator.
pub(crate) fn router(state: EmulatorState) -> Router {
    let controls = Router::new()
        .route("/reset", post(control::reset))
        .route("/catalog", get(control::get_catalog).put(control::put_catalog))
        .route(
            "/objects/{kind}/{key}",
            axum::routing::patch(control::patch_object).delete(control::delete_object),
        )
        .route("/requests", get(control::requests).delete(control::clear_requests))
        .route(
            "/faults",
            get(control::faults).post(control::add_fault).delete(control::clear_faults),
        )
        .route("/latency", put(control::latency))
        .route("/settings", get(control::get_settings).put(control::put_settings))
        .route("/users", put(control::put_users))
        .route("/expire-tokens", post(control::expire_tokens))
        .route("/variants", get(control::get_variants).put(control::put_variants))
        .route("/state", get(control::dump))
        .route("/misbehaviours", get(misbehave::list).post(misbehave::add).delete(misbehave::clear))
        .route("/lies", put(lies::put_lies).delete(lies::clear_lies))
        .layer(middleware::from_fn(lies::guard));
    Router::new()
        .route("/api/v2/data", post(data::post))
        .route("/api/v2/data/{connection_key}", delete(data::delete))
        .route("/api/v2/policy", post(policy::post))
        .route("/api/v2/project", post(project::post))
        .route("/api/v2/project/{project_key}", delete(project::delete_by_key))
        .route("/api/v2/purpose", post(purpose::post))
        .route("/dataSource", get(datasource::list))
        .route("/dataSource/{id}", get(datasource::get).delete(datasource::delete))
        .route("/project", get(project::list))
        .route("/project/{id}", get(project::get).delete(project::delete_by_id))
        .route("/project/{id}/dataSources", get(project::data_sources))
        .route("/project/{id}/members/{subscription_id}/acknowledge", post(project::acknowledge))
        .route("/governance/purpose", get(purpose::list))
        .route("/governance/purpose/{id}", get(purpose::get).delete(purpose::delete))
        .route("/policy/global", get(policy::list))
        .route("/policy/global/{id}", get(policy::get).delete(policy::delete))
        .route("/tag", get(datasource::tags))
        .route("/bim/apikey/authenticate", post(auth::authenticate))
        .route("/bim/rpc/user/current", get(auth::current))
        .route("/data/connection/{connection_key}", get(data::connection))
        .route("/admin/license", get(license::list).post(license::post))
        .route("/admin/license/licenseStatus", get(license::status))
        .route("/admin/license/usage", get(license::usage))
        .route("/admin/license/{id}", delete(license::delete))
        .nest("/_emulator", controls)
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), lies::lie))
        .layer(middleware::from_fn_with_state(state.clone(), misbehave::layer))
        .layer(middleware::from_fn_with_state(state.clone(), front_door))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

fn is_control(path: &str) -> bool {
    path == "/_emulator" || path.starts_with("/_emulator/")
}

/// Applies latency and faults to every request outside `/_emulator/`, then logs it (body with
/// secrets masked). Bodies never reach `tracing`.
async fn front_door(State(state): State<EmulatorState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if is_control(&path) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let secrets = state.secrets();
    let query = request.uri().query().map(|query| logged_query(secrets, query));
    let (latency, fault) = {
        let mut faults = lock(&state.inner.faults);
        (faults.latency, faults.take(&method, &path))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (parts, body) = request.into_parts();
    let (response, status, body) = match axum::body::to_bytes(body, MAX_BODY).await {
        Err(_) => {
            let error = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body could not be read (limit {MAX_BODY} bytes)"),
            );
            (error.into_response(), StatusCode::PAYLOAD_TOO_LARGE.as_u16(), serde_json::Value::Null)
        }
        Ok(bytes) => {
            let logged = logged_body(secrets, &parts.headers, &bytes);
            let kill = parts.extensions.get::<ConnectInfo<ConnectionKill>>().map(|c| c.0.clone());
            let request = Request::from_parts(parts, Body::from(bytes));
            let (outcome, after) = match fault {
                None => (Outcome::Pass, std::time::Duration::ZERO),
                Some(fault) => {
                    if !fault.delay.is_zero() {
                        tokio::time::sleep(fault.delay).await;
                    }
                    (fault.outcome, fault.after)
                }
            };
            match (outcome, kill) {
                (Outcome::Pass, _) => {
                    let response = next.run(request).await;
                    let status = response.status().as_u16();
                    if !after.is_zero() {
                        // Logged now: a client that gives up while the answer is held closes
                        // the connection, and this future is dropped with it.
                        lock(&state.inner.requests).push(RequestRecord {
                            method: method.to_string(),
                            path: path.clone(),
                            query: query.clone(),
                            body: logged,
                            status,
                        });
                        tokio::time::sleep(after).await;
                        return response;
                    }
                    (response, status, logged)
                }
                (Outcome::Fail(error), _) => {
                    let status = error.status.as_u16();
                    (error.into_response(), status, logged)
                }
                (Outcome::Drop, Some(kill)) => {
                    // hyper fails to write this answer and closes the socket.
                    kill.kill();
                    (StatusCode::INTERNAL_SERVER_ERROR.into_response(), 0, logged)
                }
                (Outcome::Drop, None) => {
                    let error = ApiError::internal("this server cannot drop connections");
                    (error.into_response(), 500, logged)
                }
            }
        }
    };
    let mut response = response;
    if state.variants().clock == Clock::Skewed {
        let ahead = std::time::SystemTime::now() + CLOCK_SKEW;
        if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(ahead)) {
            response.headers_mut().insert(header::DATE, value);
        }
    }
    tracing::debug!(%method, path, status, "emulator request");
    lock(&state.inner.requests).push(RequestRecord {
        method: method.to_string(),
        path,
        query,
        body,
        status,
    });
    response
}

/// Serves the emulator on `listener` until `shutdown` completes, then drains open connections
/// (mini-redis style: the caller binds the socket and decides what "shutdown" means).
pub async fn serve(
    listener: TcpListener,
    state: EmulatorState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let app = router(state).into_make_service_with_connect_info::<ConnectionKill>();
    axum::serve(KillableListener(listener), app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)
}

/// Binds `addr`, answering the listener and the address actually bound (port 0 picks one).
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let bind_error = |source| Error::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Starts emulators in-process (for tests, benchmarks and the embedded sandbox).
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Starts an emulator with `config`; it serves until the handle is shut down or dropped.
    pub async fn start_with(config: EmulatorConfig) -> Result<EmulatorHandle, Error> {
        let state = EmulatorState::new(&config)?;
        let (listener, addr) = bind(config.listen).await?;
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            stop.cancelled().await;
        }));
        Ok(EmulatorHandle { addr, cancel, task: Some(task), state })
    }
}

/// A running in-process emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<Result<(), Error>>>,
    state: EmulatorState,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (for embedding; tests use the HTTP controls instead).
    pub fn state(&self) -> &EmulatorState {
        &self.state
    }

    /// Stops accepting, waits for open requests (at most a few seconds) and writes the data file.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::error!(error = %e, "emulator server failed"),
                Ok(Err(e)) => tracing::error!(error = %e, "emulator server task failed"),
                Err(_) => {
                    tracing::warn!("emulator requests still open after the grace period; cut off");
                    task.abort();
                }
            }
        }
        if let Err(e) = self.state.flush().await {
            tracing::error!(error = %e, "emulator data file not written at shutdown");
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
