//! Passive health: records every real request's outcome and latency.

mod future;
mod layer;

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use helo_transport::{BoxError, ConnectionId, HeloRequest, RequestClock};
use tower::Service;

use crate::{
    passive::{ConnWindow, PassiveStats},
    status::EncoderId,
};

pub use self::{future::ResponseFuture, layer::HealthLayer};

/// Records the outcome ([`helo_transport::Outcome`]) and latency of every request
/// through it into its connection's window of [`PassiveStats`], so `response_time`
/// and `error_rate` follow live traffic and not only probes. The window is resolved
/// when the service is built; a request reads the clock twice (to time itself) and
/// locks only its own connection's window.
///
/// Long polls (`wait_for_config_events`) are passed through unrecorded: they are held
/// for up to a minute by design and end in an error when their id expires, so they
/// would only distort latency and error rate.
#[derive(Debug, Clone)]
pub struct Health<S> {
    inner: S,
    window: Arc<ConnWindow>,
}

impl<S> Health<S> {
    /// Wraps `inner`, the stack of connection `conn` to `encoder`, recording into
    /// `passive`.
    pub fn new(inner: S, encoder: EncoderId, conn: ConnectionId, passive: PassiveStats) -> Self {
        Self::from_window(inner, passive.handle(&encoder, conn))
    }

    pub(super) fn from_window(inner: S, window: Arc<ConnWindow>) -> Self {
        Self { inner, window }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<HeloRequest> for Health<S>
where
    S: Service<HeloRequest>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Not being ready is back-pressure, not a request outcome: nothing to record.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HeloRequest) -> Self::Future {
        // The instant the metrics layer outside called the request at, when there is
        // one (no second clock read); see `RequestClock`.
        let record = (!req.is_long_poll()).then(|| future::Recorder {
            window: self.window.clone(),
            started: RequestClock::called_at(),
        });
        ResponseFuture::new(self.inner.call(req), record)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use helo_transport::{ErrorClass, HeloError, HeloResponse};
    use tower::{Layer, ServiceExt};
    use tower_test::{assert_request_eq, mock};

    use super::*;

    fn enc() -> EncoderId {
        EncoderId::from("enc-1")
    }

    fn set_ok() -> HeloResponse {
        HeloResponse::Set(None)
    }

    #[tokio::test(start_paused = true)]
    async fn work_the_thermal_layer_sheds_is_not_held_against_the_device() {
        use std::sync::Arc;

        use conn_core::{
            ConnectionThermalManager, MockPoolControl, NoopObserver, PoolConfig, ThermalConfig,
        };

        use helo_transport::Outcome;

        let mut pool = MockPoolControl::new();
        pool.expect_owns().returning(|_, _| true);
        let thermal = ConnectionThermalManager::with_pool(
            Arc::new(pool),
            &PoolConfig::default(),
            ThermalConfig {
                connection_capacity: 1,
                min_allowed_load: 100.0,
                ramp_start: 100.0,
                ..ThermalConfig::default()
            },
            Arc::new(NoopObserver),
        );
        let passive = PassiveStats::default();
        let conn = ConnectionId::from_raw(3);
        let (inner, mut handle) = mock::pair::<HeloRequest, HeloResponse>();
        let svc = tower::ServiceBuilder::new()
            .layer(HealthLayer::new(enc(), conn, passive.clone()))
            .layer(thermal.layer(&enc(), conn))
            .service(inner);
        handle.allow(2);
        // One request holds the connection's only slot; the next is shed at once.
        let first = tokio::spawn(svc.clone().oneshot(HeloRequest::set("eParamID_X", "1")));
        let (_, send) = handle.next_request().await.unwrap();
        let shed = svc
            .clone()
            .oneshot(HeloRequest::set("eParamID_X", "2"))
            .await
            .unwrap_err();
        assert!(shed.is::<conn_core::Overloaded>(), "{shed}");
        assert_eq!(Outcome::of(shed.as_ref()), Outcome::Shed);
        send.send_response(set_ok());
        first.await.unwrap().unwrap();
        let window = passive.connection(&enc(), conn);
        assert_eq!((window.requests, window.errors), (1, 0), "{window:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn records_latency_and_outcome_of_every_request() {
        let passive = PassiveStats::default();
        let conn = ConnectionId::from_raw(9);
        let (svc, mut handle) = mock::pair::<HeloRequest, HeloResponse>();
        let mut svc = HealthLayer::new(enc(), conn, passive.clone()).layer(svc);

        handle.allow(3);
        let call = svc
            .ready()
            .await
            .unwrap()
            .call(HeloRequest::set("eParamID_X", "1"));
        let answer = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req, HeloRequest::set("eParamID_X", "1"));
            tokio::time::sleep(Duration::from_millis(40)).await;
            send.send_response(set_ok());
            handle
        });
        call.await.unwrap();
        let mut handle = answer.await.unwrap();

        let failing = svc
            .ready()
            .await
            .unwrap()
            .call(HeloRequest::get("eParamID_Temperature"));
        let (_, send) = handle.next_request().await.unwrap();
        send.send_error(HeloError::UnsupportedParam {
            device: enc(),
            request: "get eParamID_Temperature".into(),
            param: "eParamID_Temperature".into(),
        });
        let err = failing.await.unwrap_err();
        assert!(err.is::<HeloError>());

        let broken = svc
            .ready()
            .await
            .unwrap()
            .call(HeloRequest::get("eParamID_X"));
        assert_request_eq!(handle, HeloRequest::get("eParamID_X")).send_error(HeloError::Connect {
            device: enc(),
            request: "get eParamID_X".into(),
            source: "reset".into(),
        });
        assert!(broken.await.is_err());

        let s = passive.connection(&enc(), conn);
        assert_eq!(s.requests, 3);
        assert_eq!(s.errors, 1, "unsupported is an answer, not an error");
        assert_eq!(s.max_latency, Some(Duration::from_millis(40)));
        assert_eq!(s.last_error, Some(ErrorClass::Connection));
        assert_eq!(passive.encoder(&enc()).requests, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn long_polls_are_not_recorded() {
        let passive = PassiveStats::default();
        let conn = ConnectionId::from_raw(1);
        let (svc, mut handle) = mock::pair::<HeloRequest, HeloResponse>();
        let mut svc = Health::new(svc, enc(), conn, passive.clone());
        handle.allow(1);
        let req = HeloRequest::WaitForEvents {
            connection_id: "17".into(),
        };
        let fut = svc.ready().await.unwrap().call(req.clone());
        assert_request_eq!(handle, req).send_error(HeloError::Rejected {
            device: enc(),
            request: "wait".into(),
            message: "expired".into(),
        });
        assert!(fut.await.is_err());
        assert_eq!(passive.connection(&enc(), conn).requests, 0);
    }
}
