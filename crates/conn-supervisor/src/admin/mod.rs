//! The admin HTTP API (axum): the fleet page, metrics, liveness, readiness, encoder
//! state and its live updates, manual cooling, hold. Bound to loopback unless
//! configured otherwise; then a bearer token guards it (`auth`), optionally over TLS
//! (`tls`), and the server bounds its connections and requests (`serve`).

mod auth;
mod events;
mod idle;
mod origin;
mod page;
mod serve;
mod slots;
mod tls;

use std::{fmt, future::Future, sync::Arc};

use axum::{
    extract::{FromRef, Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use conn_metrics::HeloMetrics;
use tokio::{
    net::TcpListener,
    sync::{watch, Semaphore},
};
use tokio_rustls::TlsAcceptor;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

use crate::{
    config::{AdminToken, FleetConfig, TlsFiles},
    fleet::{Fleet, FleetError},
};

pub use self::serve::AdminLimits;
use self::{auth::TokenRule, events::EventsConfig};

/// How the admin server runs: who may use it, over what, within which limits.
/// The default is the loopback case: no token, plain HTTP, default limits.
#[derive(Clone, Default)]
pub struct AdminOptions {
    token: Option<TokenRule>,
    tls: Option<TlsAcceptor>,
    limits: AdminLimits,
}

impl AdminOptions {
    /// The options of `config`'s admin settings; loads the TLS files, so a file that
    /// cannot be used is an error naming its key and path.
    pub fn from_config(config: &FleetConfig) -> Result<Self, FleetError> {
        let admin = &config.admin;
        let mut options = Self::default().with_limits(AdminLimits {
            max_connections: admin.max_connections,
            ..AdminLimits::default()
        });
        if let Some(token) = &admin.token {
            options = options.with_token(token.clone(), admin.auth_reads);
        }
        match &admin.tls {
            Some(files) => options.with_tls(files),
            None => Ok(options),
        }
    }

    /// Requests must carry `token`: every action, and with `reads` every read but
    /// `/healthz` and `/readyz`.
    pub fn with_token(mut self, token: AdminToken, reads: bool) -> Self {
        self.token = Some(TokenRule { token, reads });
        self
    }

    /// Serves HTTPS with these PEM files.
    pub fn with_tls(mut self, files: &TlsFiles) -> Result<Self, FleetError> {
        self.tls = Some(tls::acceptor(files)?);
        Ok(self)
    }

    /// These limits instead of the defaults.
    pub fn with_limits(mut self, limits: AdminLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether the server speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The limits in force.
    pub fn limits(&self) -> &AdminLimits {
        &self.limits
    }
}

impl fmt::Debug for AdminOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("auth_reads", &self.token.as_ref().is_some_and(|t| t.reads))
            .field("tls", &self.tls.is_some())
            .field("limits", &self.limits)
            .finish()
    }
}

const INDEX: &str = "conn-supervisor admin\n\n\
GET  /                              the fleet page (in a browser)\n\
GET  /metrics                       Prometheus metrics\n\
GET  /healthz                       process alive\n\
GET  /readyz                        configuration loaded, loops running (in a cluster: and acting)\n\
GET  /api/encoders                  every encoder: health, temperatures, pool, cooling\n\
GET  /api/encoders/{id}             one encoder\n\
GET  /api/events                    the same, live (server-sent events)\n\
POST /api/encoders/{id}/cooldown    cool its connections now (reason \"manual\")\n\
POST /api/encoders/{id}/hold        pause reconciliation (maintenance)\n\
DELETE /api/encoders/{id}/hold      resume it\n\
GET  /api/cluster                   in a cluster: members, etcd, who owns which encoder\n";

/// What the handlers share.
#[derive(Clone)]
struct AdminState {
    fleet: Fleet,
    events: EventsConfig,
    /// Turns `true` when the server shuts down: event streams end, so that open pages
    /// do not hold up a graceful shutdown.
    closing: watch::Receiver<bool>,
    /// Open event streams, at most [`MAX_EVENT_STREAMS`].
    streams: Arc<Semaphore>,
}

/// Event streams open at once: a handful of pages is the use; each costs a view
/// comparison per second, so their number is bounded too.
const MAX_EVENT_STREAMS: usize = 64;

impl FromRef<AdminState> for Fleet {
    fn from_ref(state: &AdminState) -> Self {
        state.fleet.clone()
    }
}

/// The admin routes over `fleet`. Its event streams end only when their clients
/// leave; [`serve`] also ends them when it shuts down.
pub fn router(fleet: Fleet) -> Router {
    // A dropped sender means "never closing" to the streams.
    let (_, never) = watch::channel(false);
    routes(
        fleet,
        EventsConfig::default(),
        never,
        &AdminOptions::default(),
    )
}

fn routes(
    fleet: Fleet,
    events: EventsConfig,
    closing: watch::Receiver<bool>,
    options: &AdminOptions,
) -> Router {
    let limits = &options.limits;
    let app = Router::new()
        .route("/", get(page::index))
        .route("/assets/{name}", get(page::asset))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/encoders", get(encoders))
        .route("/api/encoders/{id}", get(encoder))
        .route("/api/encoders/{id}/cooldown", post(cooldown))
        .route("/api/encoders/{id}/hold", post(hold).delete(release))
        .route("/api/cluster", get(cluster))
        // Bounds the time to each answer's head; the event stream, added after, is
        // left out: it is an answer without end, not a slow one.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .route("/api/events", get(live))
        .layer(axum::middleware::from_fn(origin::same_origin_actions));
    let app = match &options.token {
        Some(rule) => app.layer(axum::middleware::from_fn_with_state(
            Arc::new(rule.clone()),
            auth::require_token,
        )),
        None => app,
    };
    app.layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .with_state(AdminState {
            fleet,
            events,
            closing,
            streams: Arc::new(Semaphore::new(MAX_EVENT_STREAMS)),
        })
}

/// Serves the admin API on `listener` until `shutdown` completes: no token, plain
/// HTTP, default limits (the loopback case).
pub async fn serve(
    listener: TcpListener,
    fleet: Fleet,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, fleet, AdminOptions::default(), shutdown).await
}

/// Serves the admin API on `listener` with `options` until `shutdown` completes;
/// then open event streams end and the answers under way are finished.
pub async fn serve_with(
    listener: TcpListener,
    fleet: Fleet,
    options: AdminOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (closing, closed) = watch::channel(false);
    let app = routes(fleet, EventsConfig::default(), closed, &options);
    serve::run(
        listener,
        app,
        options.limits,
        options.tls,
        closing,
        shutdown,
    )
    .await
}

async fn live(State(state): State<AdminState>) -> Response {
    let Ok(permit) = state.streams.try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "error": format!("too many event streams (at most {MAX_EVENT_STREAMS})")
            })),
        )
            .into_response();
    };
    events::sse(state.fleet, state.events, state.closing, permit).into_response()
}

async fn metrics(State(fleet): State<Fleet>) -> Response {
    // Encoding a large fleet takes a while (seconds at 5 000 encoders); off the
    // runtime's workers, so supervision loops keep their schedule meanwhile.
    let metrics = fleet.metrics().clone();
    match tokio::task::spawn_blocking(move || metrics.gather_text()).await {
        Ok(text) => ([(header::CONTENT_TYPE, HeloMetrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics encoding failed: {e}\n"),
        )
            .into_response(),
    }
}

async fn readyz(State(fleet): State<Fleet>) -> Response {
    match fleet.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn encoders(State(fleet): State<Fleet>) -> Response {
    Json(fleet.views()).into_response()
}

async fn encoder(State(fleet): State<Fleet>, Path(id): Path<String>) -> Response {
    match fleet.view(&id) {
        Some(view) => Json(view).into_response(),
        None => not_found(&id),
    }
}

async fn cooldown(State(fleet): State<Fleet>, Path(id): Path<String>) -> Response {
    match fleet.cooldown(&id) {
        Ok(cooling) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "encoder": id, "reason": "manual", "cooling": cooling })),
        )
            .into_response(),
        Err(e) => refused(&id, &e),
    }
}

async fn hold(State(fleet): State<Fleet>, Path(id): Path<String>) -> Response {
    set_hold(&fleet, id, true)
}

async fn release(State(fleet): State<Fleet>, Path(id): Path<String>) -> Response {
    set_hold(&fleet, id, false)
}

fn set_hold(fleet: &Fleet, id: String, held: bool) -> Response {
    match fleet.hold(&id, held) {
        Ok(held) => (
            StatusCode::OK,
            Json(serde_json::json!({ "encoder": id, "held": held })),
        )
            .into_response(),
        Err(e) => refused(&id, &e),
    }
}

async fn cluster(State(fleet): State<Fleet>) -> Response {
    match fleet.cluster_status() {
        Some(status) => Json(status).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": "this supervisor runs alone (no [cluster])" })),
        )
            .into_response(),
    }
}

/// An operator's command not carried out: unknown encoder (404), or in a cluster one
/// this node may not act on (409, with the owner's name).
fn refused(id: &str, e: &FleetError) -> Response {
    match e.not_acting() {
        Some(why) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({
                "error": e.to_string(),
                "encoder": id,
                "reason": why.reason(),
                "owner": why.owner(),
            })),
        )
            .into_response(),
        None => not_found(id),
    }
}

fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": format!("no encoder {id:?}") })),
    )
        .into_response()
}
