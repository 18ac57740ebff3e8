//! The admin HTTP API (axum): metrics, liveness, readiness, encoder state, manual
//! cooling. Bound to loopback unless configured otherwise.

use std::future::Future;

use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use conn_metrics::HeloMetrics;
use tokio::net::TcpListener;

use crate::fleet::{Fleet, FleetError};

const INDEX: &str = "conn-supervisor admin\n\n\
GET  /metrics                       Prometheus metrics\n\
GET  /healthz                       process alive\n\
GET  /readyz                        configuration loaded, loops running (in a cluster: and acting)\n\
GET  /api/encoders                  every encoder: health, temperatures, pool, cooling\n\
GET  /api/encoders/{id}             one encoder\n\
POST /api/encoders/{id}/cooldown    cool its connections now (reason \"manual\")\n\
POST /api/encoders/{id}/hold        pause reconciliation (maintenance)\n\
DELETE /api/encoders/{id}/hold      resume it\n\
GET  /api/cluster                   in a cluster: members, etcd, who owns which encoder\n";

/// The admin routes over `fleet`.
pub fn router(fleet: Fleet) -> Router {
    Router::new()
        .route("/", get(|| async { INDEX }))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/encoders", get(encoders))
        .route("/api/encoders/{id}", get(encoder))
        .route("/api/encoders/{id}/cooldown", post(cooldown))
        .route("/api/encoders/{id}/hold", post(hold).delete(release))
        .route("/api/cluster", get(cluster))
        .with_state(fleet)
}

/// Serves the admin API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    fleet: Fleet,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(fleet))
        .with_graceful_shutdown(shutdown)
        .await
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
