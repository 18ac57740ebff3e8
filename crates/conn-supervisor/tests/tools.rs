//! The one-shot device tools (`stream`, `record`, `events`): their timing rules as
//! library functions on tokio's paused clock against scripted fake devices, and the
//! process behaviour (output, exit codes, signals) through the real binary against
//! helo-sim and a raw TCP fake on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::VecDeque,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use conn_supervisor::{
    cli::StartStop,
    tools::{self, Engine, EventsOptions, ToolError, Transition, WaitOptions},
};
use helo_sim::{SimConfig, SimDevice};
use helo_transport::{
    AuthFailure, ConfigEvent, DeviceName, EventSubscription, HeloConnection, HeloError,
    HeloRequest, HeloResponse, ParamValue,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    process::Command,
    time::Instant,
};

const BIN: &str = env!("CARGO_BIN_EXE_conn-supervisor");
const MS: Duration = Duration::from_millis(1);

// === fakes on the paused clock ===

fn dev() -> DeviceName {
    DeviceName::from("fake-1")
}

fn refused() -> HeloError {
    HeloError::Connect {
        device: dev(),
        request: "connect".into(),
        source: "connection refused".into(),
    }
}

fn event(n: i64) -> ConfigEvent {
    ConfigEvent {
        param_id: "eParamID_Temperature".into(),
        param_type: Some("integer".into()),
        int_value: Some(n),
        str_value: Some(n.to_string()),
        last_config_update: None,
    }
}

/// A replicator whose state changes `plan` (offset from the command, new state) after
/// each `set`. Reads and commands answer at once.
#[derive(Clone)]
struct FakeReplicator(Arc<Mutex<Replica>>);

struct Replica {
    state: i64,
    plan: Vec<(Duration, i64)>,
    scheduled: Vec<(Instant, i64)>,
    gets: usize,
    commands: Vec<String>,
}

impl FakeReplicator {
    fn new(state: i64, plan: Vec<(Duration, i64)>) -> Self {
        Self(Arc::new(Mutex::new(Replica {
            state,
            plan,
            scheduled: Vec::new(),
            gets: 0,
            commands: Vec::new(),
        })))
    }

    fn service(
        &self,
    ) -> impl tower::Service<
        HeloRequest,
        Response = HeloResponse,
        Error = HeloError,
        Future = impl Send + 'static,
    > + Clone
           + Send
           + 'static {
        let me = self.clone();
        tower::service_fn(move |req: HeloRequest| {
            let me = me.clone();
            async move { me.answer(req) }
        })
    }

    fn answer(&self, req: HeloRequest) -> Result<HeloResponse, HeloError> {
        let now = Instant::now();
        let mut r = self.0.lock().unwrap();
        match req {
            HeloRequest::GetParam { name } => {
                r.gets += 1;
                let due: Vec<i64> = r
                    .scheduled
                    .iter()
                    .filter(|(t, _)| *t <= now)
                    .map(|(_, s)| *s)
                    .collect();
                if let Some(s) = due.last() {
                    r.state = *s;
                }
                r.scheduled.retain(|(t, _)| *t > now);
                Ok(HeloResponse::Param(ParamValue {
                    device: dev(),
                    name,
                    paramid: None,
                    value: r.state.to_string(),
                    value_name: None,
                }))
            }
            HeloRequest::SetParam { name, value } => {
                r.commands.push(format!("{name}={value}"));
                let plan = r.plan.clone();
                r.scheduled
                    .extend(plan.into_iter().map(|(d, s)| (now + d, s)));
                Ok(HeloResponse::Set(None))
            }
            other => panic!("unexpected request {other}"),
        }
    }

    fn gets(&self) -> usize {
        self.0.lock().unwrap().gets
    }
}

async fn change(
    fake: &FakeReplicator,
    engine: Engine,
    action: StartStop,
    opts: WaitOptions,
) -> Transition {
    tools::change_state(&fake.service(), engine, action, &opts)
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn stream_start_waits_until_the_device_shows_streaming() {
    let fake = FakeReplicator::new(1, vec![(800 * MS, 2)]);
    let t = change(
        &fake,
        Engine::Stream,
        StartStop::Start,
        WaitOptions::default(),
    )
    .await;
    assert_eq!(t.reached, Some(true));
    assert_eq!(t.state, 2);
    // Reads every 250 ms: 0, 250, 500, 750 still idle, 1000 streaming.
    assert_eq!(t.took, 1000 * MS);
    assert_eq!(
        serde_json::to_string(&t).unwrap(),
        r#"{"stream_state":"streaming","took_ms":1000,"reached":true}"#
    );
    assert!(t.check("fake-1").is_ok());
    assert_eq!(
        fake.0.lock().unwrap().commands,
        ["eParamID_ReplicatorCommand=3"]
    );
}

#[tokio::test(start_paused = true)]
async fn record_stop_waits_for_idle_and_says_record_state() {
    let fake = FakeReplicator::new(2, vec![(300 * MS, 1)]);
    let t = change(
        &fake,
        Engine::Record,
        StartStop::Stop,
        WaitOptions::default(),
    )
    .await;
    assert_eq!(
        serde_json::to_string(&t).unwrap(),
        r#"{"record_state":"idle","took_ms":500,"reached":true}"#
    );
    assert_eq!(
        fake.0.lock().unwrap().commands,
        ["eParamID_ReplicatorCommand=2"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_state_that_never_comes_fails_after_the_timeout_naming_the_state_seen() {
    let fake = FakeReplicator::new(1, vec![]);
    let started = Instant::now();
    let t = change(
        &fake,
        Engine::Stream,
        StartStop::Start,
        WaitOptions::default(),
    )
    .await;
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(t.reached, Some(false));
    assert_eq!(t.took, Duration::from_secs(10));
    let err = t.check("fake-1").unwrap_err();
    assert!(err.is_not_reached());
    assert_eq!(
        err.to_string(),
        "fake-1: stream state is idle, not streaming, after 10 s"
    );
    // One read before the command, then reads at 0, 0.25 … 10 s: bounded, not a spin.
    assert_eq!(fake.gets(), 1 + 41);
}

#[tokio::test(start_paused = true)]
async fn a_new_failure_ends_the_wait_early() {
    let fake = FakeReplicator::new(1, vec![(300 * MS, 4)]);
    let t = change(
        &fake,
        Engine::Stream,
        StartStop::Start,
        WaitOptions::default(),
    )
    .await;
    assert_eq!((t.reached, t.failed, t.took), (Some(false), true, 500 * MS));
    assert_eq!(
        serde_json::to_string(&t).unwrap(),
        r#"{"stream_state":"failing_in_stream","took_ms":500,"reached":false}"#
    );
    assert_eq!(
        t.check("fake-1").unwrap_err().to_string(),
        "fake-1: stream state is failing_in_stream, not streaming, after 0.5 s \
         (the device reports a failure)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_from_before_the_command_does_not_end_the_wait() {
    // Recovering a failed stream: Stop is sent while FailingInStream; the state still
    // shows it until the device gets round to the stop.
    let fake = FakeReplicator::new(4, vec![(1200 * MS, 1)]);
    let t = change(
        &fake,
        Engine::Stream,
        StartStop::Stop,
        WaitOptions::default(),
    )
    .await;
    assert_eq!((t.reached, t.state, t.took), (Some(true), 1, 1250 * MS));

    // A start the device ignores (it does while FailingInStream) waits the full time.
    let fake = FakeReplicator::new(4, vec![]);
    let opts = WaitOptions {
        timeout: Duration::from_secs(2),
        ..WaitOptions::default()
    };
    let t = change(&fake, Engine::Stream, StartStop::Start, opts).await;
    assert_eq!(
        (t.reached, t.failed, t.took),
        (Some(false), false, 2000 * MS)
    );
    assert_eq!(
        t.check("fake-1").unwrap_err().to_string(),
        "fake-1: stream state is failing_in_stream, not streaming, after 2 s"
    );
}

#[tokio::test(start_paused = true)]
async fn no_wait_reads_once_right_after_the_command() {
    let fake = FakeReplicator::new(1, vec![(800 * MS, 2)]);
    let opts = WaitOptions {
        wait: false,
        ..WaitOptions::default()
    };
    let t = change(&fake, Engine::Stream, StartStop::Start, opts).await;
    assert_eq!(
        serde_json::to_string(&t).unwrap(),
        r#"{"stream_state":"idle","took_ms":0,"reached":null}"#
    );
    assert!(t.check("fake-1").is_ok());
    assert_eq!(fake.gets(), 1);
}

/// A device with an event API. `waits` scripts each long poll in order: how long the
/// device holds it, then what it answers; once the script runs out every poll answers
/// `[]` at once. `down` makes connects fail (and polls on open connections fail) from
/// `.0` to `.1`, offsets from the start.
#[derive(Clone)]
struct FakeEvents(Arc<Mutex<Events>>);

struct Events {
    epoch: Instant,
    waits: VecDeque<(Duration, Result<Vec<ConfigEvent>, HeloError>)>,
    down: Option<(Duration, Duration)>,
    /// The connector fails with this (e.g. a login error while connecting).
    connector_error: Option<fn() -> HeloError>,
    /// `/config?action=connect` answers this error.
    connect_error: Option<fn() -> HeloError>,
    /// `/json?action=connect` answers this error.
    legacy_connect_error: Option<fn() -> HeloError>,
    connects: usize,
    requests: Vec<String>,
    poll_starts: Vec<Duration>,
}

impl FakeEvents {
    fn new(waits: Vec<(Duration, Result<Vec<ConfigEvent>, HeloError>)>) -> Self {
        Self(Arc::new(Mutex::new(Events {
            epoch: Instant::now(),
            waits: waits.into(),
            down: None,
            connector_error: None,
            connect_error: None,
            legacy_connect_error: None,
            connects: 0,
            requests: Vec::new(),
            poll_starts: Vec::new(),
        })))
    }

    fn is_down(&self) -> bool {
        let e = self.0.lock().unwrap();
        let now = e.epoch.elapsed();
        e.down.is_some_and(|(from, to)| now >= from && now < to)
    }

    /// The connector `follow_events` calls for each new connection.
    async fn connect(
        self,
    ) -> Result<
        impl tower::Service<
                HeloRequest,
                Response = HeloResponse,
                Error = HeloError,
                Future = impl Send + 'static,
            > + Clone
            + Send
            + 'static,
        HeloError,
    > {
        self.0.lock().unwrap().connects += 1;
        if self.is_down() {
            return Err(refused());
        }
        if let Some(e) = self.0.lock().unwrap().connector_error {
            return Err(e());
        }
        let me = self.clone();
        Ok(tower::service_fn(move |req: HeloRequest| {
            let me = me.clone();
            async move { me.answer(req).await }
        }))
    }

    async fn answer(&self, req: HeloRequest) -> Result<HeloResponse, HeloError> {
        self.0.lock().unwrap().requests.push(req.to_string());
        if self.is_down() {
            return Err(refused());
        }
        match req {
            HeloRequest::Connect { legacy } => {
                let e = self.0.lock().unwrap();
                let failure = if legacy {
                    e.legacy_connect_error
                } else {
                    e.connect_error
                };
                match failure {
                    Some(f) => Err(f()),
                    None => Ok(HeloResponse::Connected(EventSubscription {
                        connection_id: "7".into(),
                        initial: vec![],
                    })),
                }
            }
            HeloRequest::WaitForEvents { .. } => {
                let (at, down, next) = {
                    let mut e = self.0.lock().unwrap();
                    let at = e.epoch.elapsed();
                    e.poll_starts.push(at);
                    (at, e.down, e.waits.pop_front())
                };
                let (hold, answer) = next.unwrap_or((Duration::ZERO, Ok(vec![])));
                // Past any sane count, a flooded device slows down; without this a
                // client with no floor would spin without the clock ever moving and the
                // test would hang instead of failing.
                let hold = if self.poll_starts().len() > 1_000 {
                    hold.max(Duration::from_secs(1))
                } else {
                    hold
                };
                // A device going down drops the polls it holds.
                let hold = match down {
                    Some((from, _)) if from > at && from < at + hold => from - at,
                    _ => hold,
                };
                tokio::time::sleep(hold).await;
                if self.is_down() {
                    return Err(refused());
                }
                answer.map(HeloResponse::Events)
            }
            other => panic!("unexpected request {other}"),
        }
    }

    fn poll_starts(&self) -> Vec<Duration> {
        self.0.lock().unwrap().poll_starts.clone()
    }
}

type Printed = Arc<Mutex<Vec<(Duration, i64)>>>;

/// Runs `follow_events` against `fake` for at most `limit`; answers its error (`None`
/// when still running at the limit) and the events printed with their times.
async fn follow(
    fake: &FakeEvents,
    opts: EventsOptions,
    limit: Duration,
) -> (Option<ToolError>, Vec<(Duration, i64)>) {
    let epoch = fake.0.lock().unwrap().epoch;
    let printed: Printed = Arc::default();
    let sink = {
        let printed = printed.clone();
        move |e: &ConfigEvent| {
            printed
                .lock()
                .unwrap()
                .push((epoch.elapsed(), e.int_value.unwrap()));
            Ok(())
        }
    };
    let run = tools::follow_events("fake-1", || fake.clone().connect(), &opts, sink);
    let outcome = tokio::time::timeout(limit, run).await.ok();
    let printed = printed.lock().unwrap().clone();
    (outcome, printed)
}

#[tokio::test(start_paused = true)]
async fn polls_that_return_at_once_are_spaced_by_the_floor() {
    let fake = FakeEvents::new(vec![]);
    let (ended, _) = follow(&fake, EventsOptions::default(), Duration::from_secs(10)).await;
    assert!(ended.is_none(), "{ended:?}");
    let starts = fake.poll_starts();
    // 0, 0.25, … 9.75 s: four a second, not thousands.
    assert!((40..=41).contains(&starts.len()), "{}", starts.len());
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= 250 * MS, "{pair:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn held_polls_are_not_delayed_and_events_print_when_they_arrive() {
    let fake = FakeEvents::new(vec![
        (Duration::ZERO, Ok(vec![event(1)])),
        (2000 * MS, Ok(vec![event(2)])),
        (1000 * MS, Ok(vec![event(3), event(4)])),
        (50 * MS, Ok(vec![event(5)])),
        (Duration::from_secs(100), Ok(vec![])),
    ]);
    let (_, printed) = follow(&fake, EventsOptions::default(), Duration::from_secs(10)).await;
    assert_eq!(
        printed,
        vec![
            (Duration::ZERO, 1),
            // The second poll waits for the floor (the first returned at once) …
            (2250 * MS, 2),
            // … the third does not: the second started long enough ago.
            (3250 * MS, 3),
            (3250 * MS, 4),
            (3300 * MS, 5),
        ]
    );
    assert_eq!(
        fake.poll_starts(),
        vec![Duration::ZERO, 250 * MS, 2250 * MS, 3250 * MS, 3500 * MS]
    );
}

#[tokio::test(start_paused = true)]
async fn a_device_that_never_answers_gives_up_after_the_tries_with_backoff() {
    let fake = FakeEvents::new(vec![]);
    fake.0.lock().unwrap().down = Some((Duration::ZERO, Duration::MAX));
    let started = Instant::now();
    let (ended, _) = follow(&fake, EventsOptions::default(), Duration::from_secs(60)).await;
    let err = ended.expect("gives up");
    assert!(err.is_unreachable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("fake-1") && text.contains("5 tries"),
        "{text}"
    );
    assert!(text.contains("connection refused"), "{text}");
    assert_eq!(fake.0.lock().unwrap().connects, 5);
    // Four pauses, each at most 0.25, 0.5, 1, 2 s.
    assert!(started.elapsed() <= 3750 * MS, "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_ends_at_once() {
    let fake = FakeEvents::new(vec![]);
    fake.0.lock().unwrap().connector_error = Some(|| HeloError::Auth {
        device: dev(),
        request: "login".into(),
        failure: AuthFailure::WrongPassword {
            message: "Login Failed - Passwords did not match".into(),
        },
    });
    let started = Instant::now();
    let (ended, _) = follow(&fake, EventsOptions::default(), Duration::from_secs(60)).await;
    let err = ended.expect("ends");
    assert!(err.is_login(), "{err}");
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(fake.0.lock().unwrap().connects, 1);
}

#[tokio::test(start_paused = true)]
async fn a_busy_device_gets_the_time_its_retry_after_asks_for() {
    let fake = FakeEvents::new(vec![]);
    fake.0.lock().unwrap().connector_error = Some(|| HeloError::Unavailable {
        device: dev(),
        request: "connect".into(),
        retry_after: Some(Duration::from_secs(5)),
    });
    let opts = EventsOptions {
        connect_tries: 2,
        ..EventsOptions::default()
    };
    let started = Instant::now();
    let (ended, _) = follow(&fake, opts, Duration::from_secs(60)).await;
    assert!(ended.expect("gives up").is_unreachable());
    // One pause between the two tries: the 5 s asked for, not the 0–250 ms backoff.
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_rebooting_device_is_followed_again() {
    let mut waits: Vec<_> = (1..=3).map(|n| (1000 * MS, Ok(vec![event(n)]))).collect();
    // A held poll that the reboot cuts short, then one more event after it.
    waits.push((Duration::from_secs(50), Ok(vec![])));
    waits.push((1000 * MS, Ok(vec![event(4)])));
    let fake = FakeEvents::new(waits);
    // Down for a minute from 3.5 s.
    fake.0.lock().unwrap().down = Some((3500 * MS, Duration::from_secs(64)));
    let (ended, printed) = follow(&fake, EventsOptions::default(), Duration::from_secs(200)).await;
    assert!(ended.is_none(), "still following: {ended:?}");
    let values: Vec<i64> = printed.iter().map(|(_, v)| *v).collect();
    assert_eq!(values, [1, 2, 3, 4]);
    // Back within the longest backoff (10 s) of the device's return, plus the hold.
    let (at, _) = printed[3];
    assert!(
        at > Duration::from_secs(64) && at <= Duration::from_secs(75),
        "{at:?}"
    );
    // Retries during the minute were bounded by the backoff, not a spin.
    let connects = fake.0.lock().unwrap().connects;
    assert!((3..=30).contains(&connects), "{connects}");
}

#[tokio::test(start_paused = true)]
async fn an_outage_longer_than_max_outage_gives_up() {
    let fake = FakeEvents::new(vec![(1000 * MS, Ok(vec![event(1)]))]);
    fake.0.lock().unwrap().down = Some((2000 * MS, Duration::MAX));
    let opts = EventsOptions {
        max_outage: Duration::from_secs(60),
        ..EventsOptions::default()
    };
    let (ended, printed) = follow(&fake, opts, Duration::from_secs(600)).await;
    assert_eq!(printed.len(), 1);
    let err = ended.expect("gives up");
    assert!(matches!(err, ToolError::OutageTooLong { .. }), "{err}");
    assert!(err.to_string().contains("fake-1"), "{err}");
    // Lost at about 2 s; gives up on the first failed try at least 60 s later, and no
    // later than one backoff (10 s) after that.
    let starts = fake.0.lock().unwrap().epoch.elapsed();
    assert!(
        starts >= Duration::from_secs(62) && starts <= Duration::from_secs(73),
        "{starts:?}"
    );
}

fn shape_error() -> HeloError {
    HeloError::Protocol {
        device: dev(),
        request: "connect".into(),
        detail: "unexpected JSON shape: missing field `connectionid`".into(),
    }
}

fn closed_error() -> HeloError {
    HeloError::Connect {
        device: dev(),
        request: "connect (legacy /json)".into(),
        source: "connection is closed".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_malformed_connect_answer_is_the_error_shown_and_no_fallback_is_tried() {
    let fake = FakeEvents::new(vec![]);
    {
        let mut e = fake.0.lock().unwrap();
        e.connect_error = Some(shape_error);
        // What a fallback on the connection the first answer broke would see.
        e.legacy_connect_error = Some(closed_error);
    }
    let opts = EventsOptions {
        connect_tries: 2,
        ..EventsOptions::default()
    };
    let (ended, _) = follow(&fake, opts, Duration::from_secs(60)).await;
    let text = ended.expect("gives up").to_string();
    assert!(text.contains("unexpected JSON shape"), "{text}");
    assert!(!text.contains("connection is closed"), "{text}");
    let requests = fake.0.lock().unwrap().requests.clone();
    assert_eq!(requests, ["connect", "connect"], "no legacy fallback");
}

#[tokio::test(start_paused = true)]
async fn a_refused_connect_falls_back_to_the_legacy_path() {
    let fake = FakeEvents::new(vec![(100 * MS, Ok(vec![event(9)]))]);
    fake.0.lock().unwrap().connect_error = Some(|| HeloError::Rejected {
        device: dev(),
        request: "connect".into(),
        message: "unknown action".into(),
    });
    let (ended, printed) = follow(&fake, EventsOptions::default(), Duration::from_secs(1)).await;
    assert!(ended.is_none(), "{ended:?}");
    assert_eq!(printed, [(100 * MS, 9)]);
    let requests = fake.0.lock().unwrap().requests.clone();
    assert_eq!(
        requests[..3],
        [
            "connect",
            "connect (legacy /json)",
            "wait_for_config_events 7"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn when_both_connect_paths_are_refused_the_first_refusal_is_shown() {
    let fake = FakeEvents::new(vec![]);
    {
        let mut e = fake.0.lock().unwrap();
        e.connect_error = Some(|| HeloError::Rejected {
            device: dev(),
            request: "connect".into(),
            message: "events are off".into(),
        });
        e.legacy_connect_error = Some(|| HeloError::Status {
            device: dev(),
            request: "connect (legacy /json)".into(),
            status: 404,
        });
    }
    let opts = EventsOptions {
        connect_tries: 1,
        ..EventsOptions::default()
    };
    let (ended, _) = follow(&fake, opts, Duration::from_secs(60)).await;
    let text = ended.expect("gives up").to_string();
    assert!(text.contains("events are off"), "{text}");
}

// === against helo-sim and the real binary ===

async fn sim(config: SimConfig) -> SimDevice {
    SimDevice::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

/// Runs the binary to completion (20 s at most); answers exit code, stdout, stderr.
async fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the command finished in time")
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn json_line(out: &str) -> serde_json::Value {
    let mut lines = out.lines();
    let line = lines.next().expect("one line");
    assert_eq!(lines.next(), None, "exactly one line: {out}");
    serde_json::from_str(line).unwrap()
}

fn fast_transitions(ms: u64) -> SimConfig {
    SimConfig {
        transition_delay: Duration::from_millis(ms),
        ..SimConfig::fast()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_record_print_the_state_they_reached() {
    let device = sim(fast_transitions(300)).await;
    let url = device.url();

    let (code, out, err) = run(&["stream", "start", &url], &[]).await;
    assert_eq!(code, 0, "{err}");
    let line = json_line(&out);
    assert_eq!(line["stream_state"], "streaming", "{out}");
    assert_eq!(line["reached"], true);
    // Not the state from before the command: the device took its 300 ms.
    assert!(line["took_ms"].as_u64().unwrap() >= 300, "{out}");

    let (code, out, err) = run(&["stream", "stop", &url], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_line(&out)["stream_state"], "idle", "{out}");

    let (code, out, err) = run(&["record", "start", &url], &[]).await;
    assert_eq!(code, 0, "{err}");
    let line = json_line(&out);
    assert_eq!(line["record_state"], "recording", "{out}");
    assert!(line.get("stream_state").is_none(), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_destination_refuses_exits_1_naming_the_failure() {
    let device = sim(fast_transitions(100)).await;
    device
        .update_faults(|f| f.stream_start_fails = true)
        .unwrap();
    let url = device.url();
    let (code, out, err) = run(&["stream", "start", &url], &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    let line = json_line(&out);
    assert_eq!(line["stream_state"], "failing_in_stream", "{out}");
    assert_eq!(line["reached"], false);
    // The failure ended the wait early, well before the 10 s timeout.
    assert!(line["took_ms"].as_u64().unwrap() < 5_000, "{out}");
    assert!(
        err.contains(&url) && err.contains("stream state is failing_in_stream, not streaming"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_that_does_not_come_in_time_exits_1() {
    let device = sim(fast_transitions(5_000)).await;
    let url = device.url();
    let (code, out, err) = run(&["record", "start", &url, "--timeout", "400ms"], &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    let line = json_line(&out);
    assert_eq!(
        (&line["record_state"], &line["reached"]),
        (&"idle".into(), &false.into())
    );
    assert!(
        err.contains("record state is idle, not recording, after 0.4 s"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_prints_the_state_right_after_the_command() {
    let device = sim(fast_transitions(5_000)).await;
    let url = device.url();
    let (code, out, err) = run(&["stream", "start", &url, "--no-wait"], &[]).await;
    assert_eq!(code, 0, "{err}");
    let line = json_line(&out);
    assert_eq!(line["stream_state"], "idle", "{out}");
    assert!(line["reached"].is_null(), "{out}");
    assert!(line["took_ms"].as_u64().unwrap() < 5_000, "{out}");
    // The command was sent all the same.
    assert_eq!(device.request_counts().set, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_holds_against_a_device_that_answers_at_once() {
    let device = sim(SimConfig {
        event_hold: Duration::ZERO,
        ..SimConfig::fast()
    })
    .await;
    let dev = tools::device(&device.url(), None).unwrap();
    let printed = Arc::new(Mutex::new(0usize));
    let sink = {
        let printed = printed.clone();
        move |_: &ConfigEvent| {
            *printed.lock().unwrap() += 1;
            Ok(())
        }
    };
    let opts = EventsOptions::default();
    let follow = tools::follow_events(
        dev.name().as_str(),
        || HeloConnection::connect(&dev),
        &opts,
        sink,
    );
    let ended = tokio::time::timeout(Duration::from_secs(2), follow).await;
    assert!(ended.is_err(), "still following: {ended:?}");
    let waits = device.request_counts().wait_for_config_events;
    // At most one poll per 250 ms (the old loop made thousands a second).
    assert!((2..=10).contains(&waits), "{waits} polls in 2 s");
    assert!(
        *printed.lock().unwrap() > 0,
        "the initial values were printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_on_a_closed_port_exits_1_naming_the_device() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (code, out, err) = run(&["events", &url], &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!(
            "cannot follow events of {url}: gave up after 5 tries"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_a_wrong_password_exits_1_at_once() {
    let device = sim(SimConfig::fast().with_password("right")).await;
    let url = device.url();
    let (code, out, err) = run(
        &["events", &url, "--password-env", "HELO_TEST_PW"],
        &[("HELO_TEST_PW", "wrong")],
    )
    .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("wrong password"), "{err}");
    assert_eq!(device.request_counts().login, 1, "no retries");
}

async fn signal_and_wait(child: &mut tokio::process::Child, signal: &str) -> i32 {
    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args([signal, &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exited in time")
        .unwrap();
    status.code().unwrap_or(-1)
}

async fn spawn_events(url: &str, extra: &[&str]) -> tokio::process::Child {
    Command::new(BIN)
        .arg("events")
        .arg(url)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn first_line(child: &mut tokio::process::Child) -> String {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a first line in time")
        .unwrap()
        .unwrap_or_default();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_exits_0_on_sigterm_and_on_sigint() {
    let device = sim(SimConfig::fast()).await;
    let url = device.url();
    for signal in ["-TERM", "-INT"] {
        let mut child = spawn_events(&url, &[]).await;
        let first = first_line(&mut child).await;
        let event: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert!(event["param_id"].is_string(), "{first}");
        assert_eq!(signal_and_wait(&mut child, signal).await, 0, "{signal}");
    }
    // Also while it is still trying to reach a device for the first time.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut child = spawn_events(&closed, &["--connect-tries", "100"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(signal_and_wait(&mut child, "-TERM").await, 0);
}

/// A device that speaks HTTP/1.1 keep-alive but answers with whatever `answer` says
/// for each path: `(status, body)`. Logs the paths it was asked for.
async fn raw_device(answer: fn(&str) -> (u16, &'static str)) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end);
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    log.lock().unwrap().push(path.clone());
                    let (status, body) = answer(&path);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_answered_with_the_wrong_shape_shows_that_error() {
    let (url, seen) = raw_device(|path| {
        if path.contains("action=connect") {
            (200, r#"{"connectionid":1}"#)
        } else {
            (200, r#"{"events":"not an array"}"#)
        }
    })
    .await;
    let (code, out, err) = run(&["events", &url, "--connect-tries", "2"], &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("unexpected JSON shape"), "{err}");
    assert!(!err.contains("connection is closed"), "{err}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|p| p.contains("wait_for")).count(),
        2,
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_answered_with_the_wrong_shape_shows_that_error() {
    // Every answer is an object without the fields asked for. Before, the fallback to
    // the legacy path ran on the connection that answer had broken and the error shown
    // was "connection is closed".
    let (url, seen) = raw_device(|_| (200, r#"{"unexpected":true}"#)).await;
    let (code, out, err) = run(&["events", &url, "--connect-tries", "2"], &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("connect: protocol error: unexpected JSON shape"),
        "{err}"
    );
    assert!(!err.contains("connection is closed"), "{err}");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|p| p.starts_with("/config?action=connect")),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_text_on_stderr_is_escaped() {
    let (url, _) = raw_device(|_| (400, "{\"error\":\"no\\u001b[2J\\r\\nFAKE LOG LINE\"}")).await;
    let (code, _, err) = run(&["stream", "start", &url], &[]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(r"no\u{1b}[2J\r\nFAKE LOG LINE"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
}
