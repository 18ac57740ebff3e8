//! A scripted in-memory device for tests on tokio's paused clock (no sockets).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use helo_transport::{
    names, ConfigEvent, DeviceName, EventSubscription, HeloError, HeloRequest, HeloResponse,
    ParamValue,
};
use tokio::sync::Notify;
use tower::{service_fn, Service};

#[derive(Debug)]
pub(crate) struct FakeState {
    pub(crate) params: HashMap<String, String>,
    pub(crate) events_supported: bool,
    pub(crate) queue: VecDeque<ConfigEvent>,
    pub(crate) subscription: Option<u64>,
    next_id: u64,
    pub(crate) expire_next_wait: bool,
    pub(crate) hang: bool,
    pub(crate) latency: Duration,
    pub(crate) hold: Duration,
    pub(crate) gets: u64,
    pub(crate) connects: u64,
    pub(crate) waits: u64,
}

#[derive(Debug)]
pub(crate) struct FakeDevice {
    pub(crate) name: DeviceName,
    state: Mutex<FakeState>,
    notify: Notify,
}

impl FakeDevice {
    pub(crate) fn new() -> Arc<Self> {
        let params = [
            (names::SYSTEM_STATE, "4"),
            (names::STREAM_STATE, "1"),
            (names::RECORD_STATE, "1"),
            (names::TEMPERATURE, "45"),
            (names::MEDIA_AVAILABLE, "90"),
            (names::LINK_ERRORS, "0"),
            (names::AUTO_RECOVER_STREAMING, "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Arc::new(Self {
            name: DeviceName::from("fake-1"),
            state: Mutex::new(FakeState {
                params,
                events_supported: true,
                queue: VecDeque::new(),
                subscription: None,
                next_id: 1,
                expire_next_wait: false,
                hang: false,
                latency: Duration::from_millis(5),
                hold: Duration::from_secs(50),
                gets: 0,
                connects: 0,
                waits: 0,
            }),
            notify: Notify::new(),
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    pub(crate) fn gets(&self) -> u64 {
        self.state().gets
    }

    pub(crate) fn connects(&self) -> u64 {
        self.state().connects
    }

    /// Changes a parameter as the device would, with an event.
    pub(crate) fn set(&self, name: &str, value: i64) {
        let mut s = self.state();
        s.params.insert(name.to_string(), value.to_string());
        if s.subscription.is_some() {
            s.queue.push_back(ConfigEvent {
                param_id: name.to_string(),
                param_type: Some("integer".into()),
                int_value: Some(value),
                str_value: Some(value.to_string()),
                last_config_update: None,
            });
        }
        drop(s);
        self.notify.notify_one();
    }

    /// Drops a parameter, as a model that lacks it.
    pub(crate) fn remove(&self, name: &str) {
        self.state().params.remove(name);
    }

    pub(crate) fn service(
        self: &Arc<Self>,
    ) -> impl Service<
        HeloRequest,
        Response = HeloResponse,
        Error = HeloError,
        Future = impl Send + 'static,
    > + Clone
           + Send
           + 'static {
        let dev = self.clone();
        service_fn(move |req: HeloRequest| {
            let dev = dev.clone();
            async move { dev.handle(req).await }
        })
    }

    fn rejected(&self, req: &HeloRequest, message: &str) -> HeloError {
        HeloError::Rejected {
            device: self.name.clone(),
            request: req.to_string(),
            message: message.into(),
        }
    }

    async fn handle(&self, req: HeloRequest) -> Result<HeloResponse, HeloError> {
        let (hang, latency) = {
            let s = self.state();
            (s.hang, s.latency)
        };
        if hang {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(latency).await;
        match &req {
            HeloRequest::GetParam { name } => {
                let mut s = self.state();
                s.gets += 1;
                match s.params.get(name) {
                    Some(v) => Ok(HeloResponse::Param(ParamValue {
                        device: self.name.clone(),
                        name: name.clone(),
                        paramid: None,
                        value: v.clone(),
                        value_name: None,
                    })),
                    None => Err(HeloError::UnsupportedParam {
                        device: self.name.clone(),
                        request: req.to_string(),
                        param: name.clone(),
                    }),
                }
            }
            HeloRequest::Connect { .. } => {
                let mut s = self.state();
                s.connects += 1;
                if !s.events_supported {
                    return Err(self.rejected(&req, "unknown action"));
                }
                let id = s.next_id;
                s.next_id += 1;
                s.subscription = Some(id);
                s.queue.clear();
                Ok(HeloResponse::Connected(EventSubscription {
                    connection_id: id.to_string(),
                    initial: vec![],
                }))
            }
            HeloRequest::WaitForEvents { connection_id } => {
                let hold = {
                    let mut s = self.state();
                    s.waits += 1;
                    let current = s.subscription.map(|id| id.to_string());
                    if s.expire_next_wait || current.as_deref() != Some(connection_id) {
                        s.expire_next_wait = false;
                        s.subscription = None;
                        return Err(self.rejected(&req, "connection id expired"));
                    }
                    s.hold
                };
                let deadline = tokio::time::Instant::now() + hold;
                loop {
                    {
                        let mut s = self.state();
                        if s.expire_next_wait {
                            s.expire_next_wait = false;
                            s.subscription = None;
                            return Err(self.rejected(&req, "connection id expired"));
                        }
                        if !s.queue.is_empty() {
                            return Ok(HeloResponse::Events(s.queue.drain(..).collect()));
                        }
                    }
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep_until(deadline) => return Ok(HeloResponse::Events(vec![])),
                    }
                }
            }
            _ => Err(self.rejected(&req, "not scripted")),
        }
    }

    /// Makes the waiting long poll (or the next one) fail as expired.
    pub(crate) fn expire(&self) {
        self.state().expire_next_wait = true;
        self.notify.notify_one();
    }
}
