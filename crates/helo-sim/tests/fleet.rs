//! Many devices on consecutive ports, and the `helo-sim` binary.

// Helpers outside `#[test]` functions panic on broken answers, like the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use common::{value, Http};
use helo_sim::{SimConfig, SimError, SimFleet};

/// A base port with `n` free ports after it (best effort: ports may be taken meanwhile).
fn free_base(n: u16) -> u16 {
    for _ in 0..50 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base.checked_add(n).is_some()
            && (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
    panic!("no run of {n} free ports");
}

#[tokio::test]
async fn fleet_serves_devices_on_consecutive_ports() {
    let mut fleet = None;
    let mut base = 0;
    for _ in 0..5 {
        base = free_base(3);
        let addr: SocketAddr = ([127, 0, 0, 1], base).into();
        if let Ok(f) = SimFleet::start(addr, 3, |i| SimConfig {
            sys_name: format!("enc-{i}"),
            ..SimConfig::fast()
        })
        .await
        {
            fleet = Some(f);
            break;
        }
    }
    let fleet = fleet.expect("fleet started");
    assert_eq!(fleet.len(), 3);
    let http = Http::new();
    for (i, dev) in fleet.devices().iter().enumerate() {
        assert_eq!(dev.addr().port(), base + i as u16);
        assert_eq!(dev.url(), format!("http://127.0.0.1:{}", base + i as u16));
        assert_eq!(
            value(&http, dev, "eParamID_SysName").await,
            format!("enc-{i}")
        );
    }
    fleet.devices()[1].fail_stream_now();
    assert_eq!(fleet.devices()[0].snapshot().stream_state, 1);
    assert_eq!(fleet.devices()[1].snapshot().stream_state, 3);
    fleet.shutdown().await;
}

#[tokio::test]
async fn port_zero_gives_each_device_its_own_port_and_overflow_is_an_error() {
    let fleet = SimFleet::start("127.0.0.1:0".parse().unwrap(), 4, |_| SimConfig::fast())
        .await
        .unwrap();
    let mut ports: Vec<u16> = fleet.devices().iter().map(|d| d.addr().port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 4);
    fleet.shutdown().await;

    let err = SimFleet::start("127.0.0.1:65535".parse().unwrap(), 2, |_| SimConfig::fast())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SimError::InvalidConfig(_) | SimError::Bind { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn control_endpoint_sums_requests_and_injects_faults_into_device_k() {
    let mut fleet = SimFleet::start("127.0.0.1:0".parse().unwrap(), 3, |_| SimConfig::fast())
        .await
        .unwrap();
    let control = fleet
        .serve_control("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = Http::new();
    let devs = fleet.devices();
    // 1 + 2 + 3 reads on the three devices.
    for (i, dev) in devs.iter().enumerate() {
        for _ in 0..=i {
            value(&http, dev, "eParamID_SysName").await;
        }
    }
    assert_eq!(fleet.request_counts().get, 6);
    assert_eq!(fleet.request_counts().total, 6);
    let reply = http.get(&format!("http://{control}/sim/fleet")).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["devices"], 3);
    assert_eq!(body["requests"]["get"], 6);
    assert_eq!(body["requests"]["total"], 6);

    let reply = http
        .post(
            &format!("http://{control}/sim/fleet/devices/2/faults"),
            r#"{"fail_stream": true, "latency_ms": 5}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(devs[1].snapshot().stream_state, 3); // eRRSFailingInIdle
    assert_eq!(devs[1].faults().latency_ms, 5);
    assert_eq!(devs[0].snapshot().stream_state, 1);
    assert_eq!(devs[2].faults().latency_ms, 0);

    for bad in ["0", "4", "x"] {
        let reply = http
            .post(
                &format!("http://{control}/sim/fleet/devices/{bad}/faults"),
                "{}",
            )
            .await;
        assert_eq!(reply.status, 404, "device {bad}");
    }
    let reply = http
        .post(
            &format!("http://{control}/sim/fleet/devices/1/faults"),
            r#"{"no_such_fault": 1}"#,
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        http.get(&format!("http://{control}/nope")).await.status,
        404
    );
    fleet.shutdown().await;
    // The port is free again; a parallel test may bind it at once (ephemeral ports are
    // reused), so "closed" means: nothing there, or nothing that is this fleet.
    if tokio::net::TcpStream::connect(control).await.is_ok() {
        let reply = http.get(&format!("http://{control}/sim/fleet")).await;
        assert_ne!(
            reply.status, 200,
            "the fleet control endpoint still answers"
        );
    }
}

/// Kills the child even when an assertion fails first.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_one_url_per_encoder_and_serves_them() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_helo-sim"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--encoders",
                "2",
                "--sys-name",
                "cli",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut urls = Vec::new();
    for i in 1..=2 {
        let line = lines.next().unwrap().unwrap();
        let (name, url) = line.split_once(' ').unwrap();
        assert_eq!(name, format!("encoder-{i}"));
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        urls.push(url.to_owned());
    }
    let http = Http::new();
    for (i, url) in urls.iter().enumerate() {
        let reply = http
            .get(&format!("{url}/config?action=get&paramid=eParamID_SysName"))
            .await;
        assert_eq!(reply.json()["value"], format!("cli-{}", i + 1));
    }
    drop(child);
}

#[tokio::test]
async fn binary_serves_the_fleet_control_endpoint() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_helo-sim"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--encoders",
                "2",
                "--control",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut urls = Vec::new();
    for _ in 0..2 {
        let line = lines.next().unwrap().unwrap();
        urls.push(line.split_once(' ').unwrap().1.to_owned());
    }
    let line = lines.next().unwrap().unwrap();
    let control = line.strip_prefix("control ").unwrap().to_owned();
    let http = Http::new();
    http.get(&format!(
        "{}/config?action=get&paramid=eParamID_SysName",
        urls[1]
    ))
    .await;
    let body = http.get(&format!("{control}/sim/fleet")).await.json();
    assert_eq!(body["devices"], 2);
    assert_eq!(body["requests"]["total"], 1);
    drop(child);
}

#[test]
fn binary_exits_2_on_bad_arguments_and_bind_failures() {
    let bin = env!("CARGO_BIN_EXE_helo-sim");
    let status = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(status(&["--listen", "not-an-address"]), Some(2));
    assert_eq!(status(&["--encoders", "0"]), Some(2));
    assert_eq!(status(&["--stream-fail-chance", "1.5"]), Some(2));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_eq!(status(&["--listen", &addr]), Some(2));
    assert_eq!(
        status(&["--listen", "127.0.0.1:0", "--control", &addr]),
        Some(2)
    );
}
