//! Typed helpers over any service that speaks [`HeloRequest`], so they work the same
//! on a bare [`HeloConnection`](crate::HeloConnection) and through a tower stack.

use std::{fmt::Display, future::Future};

use tower::{Service, ServiceExt};

use crate::{
    config::DeviceName,
    error::HeloError,
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
    /// `/json?action=connect&configid=0` if the device rejects the first.
    fn connect_events(
        &self,
    ) -> impl Future<Output = Result<EventSubscription, Self::Error>> + Send {
        let svc = self.clone();
        async move {
            let first = svc
                .clone()
                .oneshot(HeloRequest::Connect { legacy: false })
                .await;
            let resp = match first {
                Ok(resp) => resp,
                Err(_) => svc.oneshot(HeloRequest::Connect { legacy: true }).await?,
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

fn mismatch(request: &str, got: &HeloResponse) -> HeloError {
    HeloError::Protocol {
        device: DeviceName::from("?"),
        request: request.to_string(),
        detail: format!("a middleware answered with a {} response", got.kind()),
    }
}
