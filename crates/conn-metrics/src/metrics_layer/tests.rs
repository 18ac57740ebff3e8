use std::time::Duration;

use helo_transport::{
    ConnectionId, DeviceName, HeloError, HeloRequest, HeloResponse, Outcome, Overloaded,
    TimeoutPhase,
};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_test::mock;

use super::*;

fn dev() -> DeviceName {
    DeviceName::from("enc-1")
}

fn count(metrics: &HeloMetrics, op: &str, outcome: Outcome) -> u64 {
    metrics
        .requests()
        .requests_total("enc-1", op, outcome)
        .get()
}

fn duration(metrics: &HeloMetrics, op: &str) -> (u64, f64) {
    let h = metrics.requests().request_duration("enc-1", op);
    (h.get_sample_count(), h.get_sample_sum())
}

#[tokio::test(start_paused = true)]
async fn ok_is_counted_and_timed() {
    let metrics = HeloMetrics::new().unwrap();
    let (mock, mut handle) = mock::pair::<HeloRequest, HeloResponse>();
    let mut svc = MetricsLayer::new(&metrics, "enc-1").layer(mock);

    let fut = svc
        .ready()
        .await
        .unwrap()
        .call(HeloRequest::get("eParamID_Temperature"));
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req, HeloRequest::get("eParamID_Temperature"));
    tokio::time::advance(Duration::from_millis(250)).await;
    send.send_response(HeloResponse::LoggedIn);
    assert_eq!(fut.await.unwrap(), HeloResponse::LoggedIn);

    assert_eq!(count(&metrics, "get_param", Outcome::Success), 1);
    assert_eq!(count(&metrics, "get_param", Outcome::Other), 0);
    let (n, sum) = duration(&metrics, "get_param");
    assert_eq!(n, 1);
    assert!((sum - 0.25).abs() < 1e-3, "{sum}");
    assert_eq!(duration(&metrics, "set_param").0, 0);
}

#[tokio::test(start_paused = true)]
async fn errors_count_under_their_class() {
    let metrics = HeloMetrics::new().unwrap();
    let (mock, mut handle) = mock::pair::<HeloRequest, HeloResponse>();
    let mut svc = MetricsLayer::new(&metrics, "enc-1").layer(mock);

    let errors: Vec<(HeloError, Outcome)> = vec![
        (
            HeloError::Rejected {
                device: dev(),
                request: "set eParamID_X".into(),
                message: "read only".into(),
            },
            Outcome::Rejected,
        ),
        (
            HeloError::UnsupportedParam {
                device: dev(),
                request: "set eParamID_X".into(),
                param: "eParamID_X".into(),
            },
            Outcome::Unsupported,
        ),
        (
            HeloError::Connect {
                device: dev(),
                request: "set eParamID_X".into(),
                source: "refused".into(),
            },
            Outcome::Connection,
        ),
        (
            HeloError::Timeout {
                device: dev(),
                request: "set eParamID_X".into(),
                phase: TimeoutPhase::Response,
                after: Duration::from_secs(3),
            },
            Outcome::Timeout,
        ),
    ];
    for (err, outcome) in errors {
        let fut = svc
            .ready()
            .await
            .unwrap()
            .call(HeloRequest::set("eParamID_X", "1"));
        let (_, send) = handle.next_request().await.unwrap();
        tokio::time::advance(Duration::from_millis(10)).await;
        send.send_error(err);
        let err = fut.await.unwrap_err();
        assert!(
            err.is::<HeloError>(),
            "the error passes through unchanged: {err}"
        );
        assert_eq!(count(&metrics, "set_param", outcome), 1, "{outcome}");
    }
    assert_eq!(count(&metrics, "set_param", Outcome::Success), 0);
    let (n, sum) = duration(&metrics, "set_param");
    assert_eq!(n, 4);
    assert!((sum - 0.04).abs() < 1e-3, "{sum}");
}

#[tokio::test(start_paused = true)]
async fn shed_work_is_labelled_shed_not_other() {
    let metrics = HeloMetrics::new().unwrap();
    let shed = |req: HeloRequest| async move {
        Err::<HeloResponse, _>(Overloaded::connection(
            dev(),
            ConnectionId::from_raw(3),
            req,
            4,
            50.0,
        ))
    };
    let svc = MetricsLayer::new(&metrics, "enc-1").layer(tower::service_fn(shed));
    let err = svc
        .oneshot(HeloRequest::get("eParamID_X"))
        .await
        .unwrap_err();
    assert!(err.is::<Overloaded>(), "{err}");
    assert_eq!(count(&metrics, "get_param", Outcome::Shed), 1);
    assert_eq!(count(&metrics, "get_param", Outcome::Other), 0);
    assert!(metrics.gather_text().contains(
        r#"helo_requests_total{encoder_id="enc-1",operation="get_param",outcome="shed"} 1"#
    ));
}

#[tokio::test(start_paused = true)]
async fn an_inner_timeout_layer_counts_as_timeout() {
    let metrics = HeloMetrics::new().unwrap();
    let (mock, mut handle) = mock::pair::<HeloRequest, HeloResponse>();
    let mut svc = ServiceBuilder::new()
        .layer(MetricsLayer::new(&metrics, "enc-1"))
        .timeout(Duration::from_secs(2))
        .service(mock);

    let fut = svc.ready().await.unwrap().call(HeloRequest::Login);
    let (_req, _send) = handle.next_request().await.unwrap();
    let err = fut.await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");

    assert_eq!(count(&metrics, "login", Outcome::Timeout), 1);
    let (n, sum) = duration(&metrics, "login");
    assert_eq!(n, 1);
    assert!((sum - 2.0).abs() < 1e-3, "{sum}");
}

#[tokio::test(start_paused = true)]
async fn readiness_errors_pass_through_uncounted() {
    let metrics = HeloMetrics::new().unwrap();
    let (mock, mut handle) = mock::pair::<HeloRequest, HeloResponse>();
    let mut svc = MetricsLayer::new(&metrics, "enc-1").layer(mock);
    handle.send_error("closed");
    let err = svc.ready().await.unwrap_err();
    assert_eq!(err.to_string(), "closed");
    for op in OPERATIONS {
        for outcome in Outcome::ALL {
            assert_eq!(count(&metrics, op, outcome), 0);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn layer_clones_share_series_and_only_used_series_exist() {
    let metrics = HeloMetrics::new().unwrap();
    let layer = MetricsLayer::new(&metrics, "enc-1");
    // Nothing happened yet, so nothing is exported: a large fleet's scrape only
    // carries the series its traffic really has.
    assert!(!metrics.gather_text().contains("helo_requests_total"));

    let ok = |_req: HeloRequest| async { Ok::<_, HeloError>(HeloResponse::LoggedIn) };
    let a = layer.layer(tower::service_fn(ok));
    let b = layer.clone().layer(tower::service_fn(ok));
    a.oneshot(HeloRequest::Connect { legacy: false })
        .await
        .unwrap();
    b.oneshot(HeloRequest::WaitForEvents {
        connection_id: "17".into(),
    })
    .await
    .unwrap();
    assert_eq!(count(&metrics, "connect_events", Outcome::Success), 1);
    assert_eq!(count(&metrics, "wait_events", Outcome::Success), 1);
    let text = metrics.gather_text();
    let counters = text
        .lines()
        .filter(|l| l.starts_with("helo_requests_total{"))
        .count();
    assert_eq!(counters, 2, "only the two used series: {text}");
    assert!(!text.contains(r#"operation="get_param""#), "{text}");
}

#[test]
fn every_operation_of_the_transport_has_a_cached_slot() {
    let requests = [
        HeloRequest::get("x"),
        HeloRequest::set("x", "1"),
        HeloRequest::GetDescriptor { name: "x".into() },
        HeloRequest::Login,
        HeloRequest::Connect { legacy: true },
        HeloRequest::WaitForEvents {
            connection_id: "1".into(),
        },
    ];
    for req in requests {
        assert!(OPERATIONS.contains(&req.operation()), "{}", req.operation());
    }
}

#[test]
fn an_unknown_operation_is_still_recorded() {
    let metrics = HeloMetrics::new().unwrap();
    let handles = Handles::new(&metrics, "enc-1");
    handles.record("reboot", Outcome::Success, Duration::from_millis(5));
    assert_eq!(count(&metrics, "reboot", Outcome::Success), 1);
    assert_eq!(duration(&metrics, "reboot").0, 1);
}

#[test]
fn metrics_wrapper_accessors() {
    let metrics = HeloMetrics::new().unwrap();
    let mut svc = Metrics::new(7_u8, &metrics, "enc-1");
    assert_eq!(*svc.get_ref(), 7);
    *svc.get_mut() = 8;
    assert_eq!(svc.into_inner(), 8);
}
