//! The fleet-wide control endpoint (`helo-sim --control ADDR`): request totals over
//! every device and faults for device k, so a benchmark of 5 000 encoders asks one
//! port instead of 5 000.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::debug;

use crate::body::SimBody;
use crate::control::apply_json;
use crate::device::DeviceInner;
use crate::protocol::read_body;
use crate::reply::Reply;
use crate::RequestCounts;

/// Request totals over `devices`.
pub(crate) fn totals(devices: &[Arc<DeviceInner>]) -> RequestCounts {
    devices.iter().map(|d| d.counters.snapshot()).sum()
}

/// Serves the fleet endpoint until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, devices: Arc<[Arc<DeviceInner>]>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let devices = Arc::clone(&devices);
                    conns.spawn(async move {
                        let service = service_fn(move |req| handle(Arc::clone(&devices), req));
                        let conn = http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
                        if let Err(e) = conn.await {
                            debug!(error = %e, "fleet control connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    debug!(error = %e, "fleet control accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn handle(
    devices: Arc<[Arc<DeviceInner>]>,
    req: Request<Incoming>,
) -> Result<Response<SimBody>, Infallible> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(reply) => return Ok(reply.into_response()),
    };
    let reply = match (method, path.as_str()) {
        (Method::GET, "/sim/fleet") => Reply::json(
            StatusCode::OK,
            &json!({ "devices": devices.len(), "requests": totals(&devices) }),
        ),
        (Method::POST, p) => match device_of(p, &devices) {
            Some(Ok(dev)) => apply_json(dev, &body),
            Some(Err(reply)) => reply,
            None => not_found(),
        },
        _ => not_found(),
    };
    Ok(reply.into_response())
}

/// `/sim/fleet/devices/{k}/faults` (k 1-based, as `helo-sim` prints `encoder-k`).
fn device_of<'a>(
    path: &str,
    devices: &'a [Arc<DeviceInner>],
) -> Option<Result<&'a DeviceInner, Reply>> {
    let k = path
        .strip_prefix("/sim/fleet/devices/")?
        .strip_suffix("/faults")?;
    let found = k
        .parse::<usize>()
        .ok()
        .and_then(|k| k.checked_sub(1))
        .and_then(|i| devices.get(i));
    Some(found.map(|d| &**d).ok_or_else(|| {
        Reply::error(
            StatusCode::NOT_FOUND,
            &format!("no device {k:?}: devices are 1 to {}", devices.len()),
        )
    }))
}

fn not_found() -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        "unknown fleet control request (GET /sim/fleet, POST /sim/fleet/devices/{k}/faults)",
    )
}
