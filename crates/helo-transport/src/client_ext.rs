//! Typed helpers over any service that speaks [`HeloRequest`], so they work the same
//! on a bare [`HeloConnection`](crate::HeloConnection) and through a tower stack.

use std::{fmt::Display, future::Future};

use tower::{Service, ServiceExt};

use crate::{
    config::DeviceName,
    error::{BoxError, HeloError},
    events::{ConfigEvent, EventSubscription},
    names,
    param::{Descriptor, ParamValue},
    replicator::{RecordState, ReplicatorCommand, StreamState},
    request::{HeloRequest, HeloResponse},
};

/// Typed requests for anything that is a `Service<HeloRequest>`.
///
/// Each call clones the service and drives it with `oneshot`, the usual tower way of
/// calling a cloneable service from `&self`.
pub trait HeloClientExt:
    Service<HeloRequest, Response = HeloResponse> + Clone + Send + 'static
where
    Self::Error: From<HeloError> + Send,
    Self::Future: Send,
{
    /// Sends any request.
    fn send(
        &self,
        req: HeloRequest,
    ) -> impl Future<Output = Result<HeloResponse, Self::Error>> + Send {
        self.clone().oneshot(req)
    }

    /// Reads a parameter.
    fn get_param(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<ParamValue, Self::Error>> + Send {
        let req = HeloRequest::get(name);
        let svc = self.clone();
        async move {
            let label = req.to_string();
            match svc.oneshot(req).await? {
                HeloResponse::Param(p) => Ok(p),
                other => Err(mismatch(&label, &other).into()),
            }
        }
    }

    /// Reads an integer parameter.
    fn get_int(&self, name: &str) -> impl Future<Output = Result<i64, Self::Error>> + Send {
        let fut = self.get_param(name);
        async move { Ok(fut.await?.as_i64()?) }
    }

    /// Sets a parameter; the value is percent-encoded on the wire. Answers the echoed
    /// parameter when the device sends one.
    fn set_param(
        &self,
        name: &str,
        value: impl Display,
    ) -> impl Future<Output = Result<Option<ParamValue>, Self::Error>> + Send {
        let req = HeloRequest::set(name, value.to_string());
        let svc = self.clone();
        async move {
            let label = req.to_string();
            match svc.oneshot(req).await? {
                HeloResponse::Set(p) => Ok(p),
                other => Err(mismatch(&label, &other).into()),
            }
        }
    }

    /// Reads a parameter's descriptor.
    fn descriptor(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Descriptor, Self::Error>> + Send {
        let req = HeloRequest::GetDescriptor {
            name: name.to_string(),
        };
        let svc = self.clone();
        async move {
            let label = req.to_string();
            match svc.oneshot(req).await? {
                HeloResponse::Descriptor(d) => Ok(*d),
                other => Err(mismatch(&label, &other).into()),
            }
        }
    }

    /// Logs in now (connections log in by themselves; this tests a password).
    fn login(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let svc = self.clone();
        async move {
            match svc.oneshot(HeloRequest::Login).await? {
                HeloResponse::LoggedIn => Ok(()),
                other => Err(mismatch("login", &other).into()),
            }
        }
    }

    /// Opens an event connection: `/config?action=connect`, then the older
    /// `/json?action=connect&configid=0` only if the device *refused* the first (it
    /// answered `400`, "not supported", or another HTTP status).
    ///
    /// Any other error (a timeout, a broken connection, an answer of the wrong
    /// shape) is the answer: it may have left the connection unusable, and a second
    /// request on it would only report "connection is closed" in its place. When both
    /// paths are refused, the first refusal is the answer.
    fn connect_events(&self) -> impl Future<Output = Result<EventSubscription, Self::Error>> + Send
    where
        Self::Error: HeloServiceError,
    {
        let svc = self.clone();
        async move {
            let resp = match svc
                .clone()
                .oneshot(HeloRequest::Connect { legacy: false })
                .await
            {
                Ok(resp) => resp,
                Err(first) if first.helo_error().is_some_and(is_refusal) => {
                    match svc.oneshot(HeloRequest::Connect { legacy: true }).await {
                        Ok(resp) => resp,
                        Err(_) => return Err(first),
                    }
                }
                Err(first) => return Err(first),
            };
            match resp {
                HeloResponse::Connected(s) => Ok(s),
                other => Err(mismatch("connect", &other).into()),
            }
        }
    }

    /// Long-polls an event connection; an empty list after the device's hold time.
    fn wait_for_events(
        &self,
        connection_id: &str,
    ) -> impl Future<Output = Result<Vec<ConfigEvent>, Self::Error>> + Send {
        let req = HeloRequest::WaitForEvents {
            connection_id: connection_id.to_string(),
        };
        let svc = self.clone();
        async move {
            let label = req.to_string();
            match svc.oneshot(req).await? {
                HeloResponse::Events(e) => Ok(e),
                other => Err(mismatch(&label, &other).into()),
            }
        }
    }

    /// Sends a replicator command.
    fn replicator_command(
        &self,
        cmd: ReplicatorCommand,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let fut = self.set_param(names::REPLICATOR_COMMAND, cmd.value());
        async move { fut.await.map(drop) }
    }

    /// Starts recording.
    fn start_recording(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.replicator_command(ReplicatorCommand::Record)
    }

    /// Stops recording.
    fn stop_recording(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.replicator_command(ReplicatorCommand::StopRecording)
    }

    /// Starts streaming.
    fn start_streaming(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.replicator_command(ReplicatorCommand::Stream)
    }

    /// Stops streaming.
    fn stop_streaming(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.replicator_command(ReplicatorCommand::StopStreaming)
    }

    /// Reads the stream state.
    fn stream_state(&self) -> impl Future<Output = Result<StreamState, Self::Error>> + Send {
        let fut = self.get_int(names::STREAM_STATE);
        async move { fut.await.map(StreamState::from_value) }
    }

    /// Reads the record state.
    fn record_state(&self) -> impl Future<Output = Result<RecordState, Self::Error>> + Send {
        let fut = self.get_int(names::RECORD_STATE);
        async move { fut.await.map(RecordState::from_value) }
    }

    /// Reads the device temperature (treated as °C).
    fn temperature(&self) -> impl Future<Output = Result<f64, Self::Error>> + Send {
        let fut = self.get_param(names::TEMPERATURE);
        async move { Ok(fut.await?.as_f64()?) }
    }

    /// Reads the percent of recording media still free.
    fn media_available(&self) -> impl Future<Output = Result<i64, Self::Error>> + Send {
        self.get_int(names::MEDIA_AVAILABLE)
    }
}

impl<S> HeloClientExt for S
where
    S: Service<HeloRequest, Response = HeloResponse> + Clone + Send + 'static,
    S::Error: From<HeloError> + Send,
    S::Future: Send,
{
}

/// The error type of a `Service<HeloRequest>` as far as a helper needs to look into
/// it: implemented for [`HeloError`] (a bare connection) and [`BoxError`] (a tower
/// stack), which are the two in use.
pub trait HeloServiceError: From<HeloError> {
    /// The [`HeloError`] this error is, or wraps.
    fn helo_error(&self) -> Option<&HeloError>;
}

impl HeloServiceError for HeloError {
    fn helo_error(&self) -> Option<&HeloError> {
        Some(self)
    }
}

impl HeloServiceError for BoxError {
    fn helo_error(&self) -> Option<&HeloError> {
        HeloError::find(self.as_ref())
    }
}

/// The device answered, refusing the request: another path may work.
fn is_refusal(e: &HeloError) -> bool {
    e.is_rejected() || e.is_unsupported() || matches!(e, HeloError::Status { .. })
}

fn mismatch(request: &str, got: &HeloResponse) -> HeloError {
    HeloError::Protocol {
        device: DeviceName::from("?"),
        request: request.to_string(),
        detail: format!("a middleware answered with a {} response", got.kind()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tower::{service_fn, util::BoxCloneService, ServiceExt as _};

    use super::*;

    fn dev() -> DeviceName {
        DeviceName::from("enc-1")
    }

    fn refused(req: &HeloRequest) -> HeloError {
        HeloError::Rejected {
            device: dev(),
            request: req.to_string(),
            message: "unknown action".into(),
        }
    }

    fn shape(req: &HeloRequest) -> HeloError {
        HeloError::Protocol {
            device: dev(),
            request: req.to_string(),
            detail: "unexpected JSON shape: missing field `connectionid`".into(),
        }
    }

    type Answer = fn(&HeloRequest) -> Result<HeloResponse, HeloError>;

    /// A device answering the new and the legacy connect as scripted, recording what
    /// it was asked.
    fn device(
        new: Answer,
        legacy: Answer,
    ) -> (
        impl Service<HeloRequest, Response = HeloResponse, Error = HeloError, Future = impl Send>
            + Clone
            + Send
            + 'static,
        Arc<Mutex<Vec<HeloRequest>>>,
    ) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let svc = service_fn(move |req: HeloRequest| {
            log.lock().unwrap().push(req.clone());
            let answer = match req {
                HeloRequest::Connect { legacy: false } => new(&req),
                _ => legacy(&req),
            };
            async move { answer }
        });
        (svc, seen)
    }

    fn subscribed(_: &HeloRequest) -> Result<HeloResponse, HeloError> {
        Ok(HeloResponse::Connected(EventSubscription {
            connection_id: "7".into(),
            initial: vec![],
        }))
    }

    #[tokio::test]
    async fn a_broken_answer_is_reported_and_never_followed_by_the_legacy_path() {
        let (svc, seen) = device(|r| Err(shape(r)), subscribed);
        let err = svc.connect_events().await.unwrap_err();
        assert!(err.is_protocol(), "{err}");
        assert!(err.to_string().contains("unexpected JSON shape"), "{err}");
        assert_eq!(
            *seen.lock().unwrap(),
            [HeloRequest::Connect { legacy: false }]
        );

        let (svc, seen) = device(
            |r| {
                Err(HeloError::Timeout {
                    device: dev(),
                    request: r.to_string(),
                    phase: crate::TimeoutPhase::Response,
                    after: std::time::Duration::from_secs(3),
                })
            },
            subscribed,
        );
        assert!(svc.connect_events().await.unwrap_err().is_timeout());
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_refusal_falls_back_to_the_legacy_path() {
        let (svc, seen) = device(|r| Err(refused(r)), subscribed);
        assert_eq!(svc.connect_events().await.unwrap().connection_id, "7");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                HeloRequest::Connect { legacy: false },
                HeloRequest::Connect { legacy: true }
            ]
        );
    }

    #[tokio::test]
    async fn when_both_paths_fail_the_first_refusal_is_the_answer() {
        let (svc, _) = device(|r| Err(refused(r)), |r| Err(shape(r)));
        let err = svc.connect_events().await.unwrap_err();
        assert!(err.is_rejected(), "{err}");
        assert_eq!(err.request(), "connect");
    }

    #[tokio::test]
    async fn a_boxed_stack_is_looked_into_the_same_way() {
        let (svc, seen) = device(|r| Err(shape(r)), subscribed);
        let stack: BoxCloneService<HeloRequest, HeloResponse, BoxError> =
            BoxCloneService::new(svc.map_err(BoxError::from));
        let err = stack.connect_events().await.unwrap_err();
        assert!(HeloError::find(err.as_ref()).is_some_and(HeloError::is_protocol));
        assert_eq!(seen.lock().unwrap().len(), 1);

        let (svc, _) = device(|r| Err(refused(r)), subscribed);
        let stack: BoxCloneService<HeloRequest, HeloResponse, BoxError> =
            BoxCloneService::new(svc.map_err(BoxError::from));
        assert_eq!(stack.connect_events().await.unwrap().connection_id, "7");
    }
}
