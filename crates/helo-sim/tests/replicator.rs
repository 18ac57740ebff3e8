//! Record and stream state machines, presets, reboot, and the library back doors.

mod common;

use std::time::Duration;

use common::{eventually, get_request, get_url, raw, set_url, start, value, End, Http};
use helo_sim::{Faults, SimConfig, SimDevice};

const CMD: &str = "eParamID_ReplicatorCommand";
const STREAM: &str = "eParamID_ReplicatorStreamState";
const RECORD: &str = "eParamID_ReplicatorRecordState";

async fn command(http: &Http, dev: &SimDevice, cmd: &str) {
    let reply = http.get(&set_url(dev, CMD, cmd)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["value"], cmd);
}

async fn becomes(http: &Http, dev: &SimDevice, param: &str, expected: &str) -> bool {
    eventually(Duration::from_secs(2), async || {
        value(http, dev, param).await == expected
    })
    .await
}

#[tokio::test]
async fn stream_and_record_follow_commands_after_the_transition_delay() {
    let dev = start(SimConfig {
        transition_delay: Duration::from_millis(150),
        media_drain_per_sec: 20.0,
        ..SimConfig::fast()
    })
    .await;
    let http = Http::new();
    command(&http, &dev, "3").await;
    assert_eq!(
        value(&http, &dev, STREAM).await,
        "1",
        "not before the delay"
    );
    assert!(becomes(&http, &dev, STREAM, "2").await);
    let reply = http.get(&get_url(&dev, STREAM)).await.json();
    assert_eq!(reply["value_name"], "eRRSStreaming");
    // Its running time is DD:HH:MM:SS (the paused-clock test checks it counts).
    let duration = value(&http, &dev, "eParamID_StreamingDuration").await;
    let fields: Vec<&str> = duration.split(':').collect();
    assert_eq!(fields.len(), 4, "{duration}");
    assert!(
        fields
            .iter()
            .all(|f| f.len() == 2 && f.parse::<u8>().is_ok()),
        "{duration}"
    );
    command(&http, &dev, "4").await;
    assert!(becomes(&http, &dev, STREAM, "1").await);

    command(&http, &dev, "1").await;
    assert!(becomes(&http, &dev, RECORD, "2").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let media: i64 = value(&http, &dev, "eParamID_CurrentMediaAvailable")
        .await
        .parse()
        .unwrap();
    assert!(media < 100, "media shrinks while recording: {media}");
    command(&http, &dev, "2").await;
    assert!(becomes(&http, &dev, RECORD, "1").await);
    let reply = http.get(&get_url(&dev, RECORD)).await.json();
    assert_eq!(reply["value_name"], "eRRSIdle");
}

#[tokio::test]
async fn a_failed_stream_is_recovered_by_stop_then_start() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    command(&http, &dev, "3").await;
    assert!(becomes(&http, &dev, STREAM, "2").await);
    assert!(dev.fail_stream_now());
    assert_eq!(value(&http, &dev, STREAM).await, "4");
    command(&http, &dev, "3").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        value(&http, &dev, STREAM).await,
        "4",
        "start alone does not recover"
    );
    command(&http, &dev, "4").await;
    command(&http, &dev, "3").await;
    assert!(becomes(&http, &dev, STREAM, "2").await);
}

#[tokio::test]
async fn refused_destination_scheduled_failure_and_auto_recovery() {
    let dev = start(SimConfig {
        stream_fail_after: Some(Duration::from_millis(200)),
        ..SimConfig::fast()
    })
    .await;
    let http = Http::new();
    dev.update_faults(|f| f.stream_start_fails = true).unwrap();
    command(&http, &dev, "3").await;
    assert!(becomes(&http, &dev, STREAM, "4").await);

    dev.clear_faults();
    command(&http, &dev, "4").await;
    command(&http, &dev, "3").await;
    assert!(becomes(&http, &dev, STREAM, "2").await);
    // The schedule fails it 200 ms later; with auto-recovery on, it comes back by itself.
    http.get(&set_url(&dev, "eParamID_AutoRecoverStreaming", "1"))
        .await;
    assert!(becomes(&http, &dev, STREAM, "4").await);
    assert!(becomes(&http, &dev, STREAM, "2").await);
}

#[tokio::test]
async fn data_lan_mode_refuses_record_and_stream() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    http.get(&set_url(&dev, "eParamID_MediaState", "1")).await;
    let reply = http.get(&set_url(&dev, CMD, "3")).await;
    assert_eq!(reply.status, 400);
    assert!(reply.error().contains("Data-LAN"), "{reply:?}");
    assert_eq!(http.get(&set_url(&dev, CMD, "1")).await.status, 400);
    http.get(&set_url(&dev, "eParamID_MediaState", "0")).await;
    command(&http, &dev, "3").await;
    assert!(becomes(&http, &dev, STREAM, "2").await);
}

#[tokio::test]
async fn shutdown_command_shuts_both_replicators() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    command(&http, &dev, "5").await;
    assert!(becomes(&http, &dev, STREAM, "5").await);
    assert_eq!(value(&http, &dev, RECORD).await, "5");
}

#[tokio::test]
async fn preset_recall_reports_recalling_then_complete_or_empty() {
    let mut cfg = SimConfig {
        recall_delay: Duration::from_millis(150),
        ..SimConfig::fast()
    };
    cfg.empty_presets.insert(4);
    let dev = start(cfg).await;
    let http = Http::new();
    let result = "eParamID_RegisterRecallResult";
    assert_eq!(value(&http, &dev, result).await, "0");
    http.get(&set_url(&dev, "eParamID_RegisterRecall", "3"))
        .await;
    let reply = http.get(&get_url(&dev, result)).await.json();
    assert_eq!(
        (reply["value"].as_str(), reply["value_name"].as_str()),
        (Some("1"), Some("Recalling..."))
    );
    assert!(becomes(&http, &dev, result, "2").await);
    http.get(&set_url(&dev, "eParamID_RegisterRecall", "4"))
        .await;
    assert!(becomes(&http, &dev, result, "4").await);
    assert_eq!(
        http.get(&get_url(&dev, result)).await.json()["value_name"],
        "Preset Empty"
    );
    assert_eq!(
        http.get(&set_url(&dev, "eParamID_RegisterRecall", "21"))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn reboot_refuses_connections_then_comes_back_with_defaults() {
    let dev = start(SimConfig {
        reboot_downtime: Duration::from_millis(400),
        ..SimConfig::fast()
    })
    .await;
    let http = Http::new();
    http.get(&set_url(&dev, "eParamID_SysName", "renamed"))
        .await;
    let reply = http.get(&set_url(&dev, "eParamID_Reboot", "1")).await;
    assert_eq!(reply.status, 200);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let refused = tokio::net::TcpStream::connect(dev.addr()).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(
        eventually(Duration::from_secs(2), async || {
            tokio::net::TcpStream::connect(dev.addr()).await.is_ok()
        })
        .await
    );
    let fresh = Http::new();
    assert_eq!(value(&fresh, &dev, "eParamID_SysName").await, "HELO");
    assert_eq!(value(&fresh, &dev, "eParamID_Reboot").await, "0");
}

#[tokio::test]
async fn reboot_can_answer_503_with_retry_after_instead() {
    let dev = start(SimConfig {
        reboot_downtime: Duration::from_millis(600),
        reboot_answers_503: true,
        ..SimConfig::fast()
    })
    .await;
    let http = Http::new();
    http.get(&set_url(&dev, "eParamID_StreamingProfileSel", "5"))
        .await;
    dev.reboot();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let reply = http.get(&get_url(&dev, STREAM)).await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.header("retry-after"),
        Some("1"),
        "whole seconds, rounded up"
    );
    let url = get_url(&dev, "eParamID_StreamingProfileSel");
    assert!(
        eventually(Duration::from_secs(3), async || {
            let reply = http.get(&url).await;
            reply.status == 200 && reply.json()["value"] == "0"
        })
        .await
    );
}

#[tokio::test]
async fn library_back_doors_show_over_http() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    dev.set_param("eParamID_SystemState", "10").unwrap();
    let reply = http
        .get(&get_url(&dev, "eParamID_SystemState"))
        .await
        .json();
    assert_eq!(
        (reply["value"].as_str(), reply["value_name"].as_str()),
        (Some("10"), Some("FatalError"))
    );
    dev.overheat(92);
    assert_eq!(value(&http, &dev, "eParamID_Temperature").await, "92");
    assert_eq!(dev.snapshot().temperature_c, 92);
    dev.cool_down();
    assert_eq!(value(&http, &dev, "eParamID_Temperature").await, "40");
    dev.bump_link_errors(3);
    assert_eq!(value(&http, &dev, "eParamID_LinkErrors").await, "3");
    dev.set_param(STREAM, "4").unwrap();
    assert_eq!(value(&http, &dev, STREAM).await, "4");
    assert!(dev
        .set_param("eParamID_StreamingDuration", "00:00:00:05")
        .is_err());
    assert!(dev
        .set_param("eParamID_Nope", "1")
        .unwrap_err()
        .is_unknown_param());
    assert!(dev
        .set_faults(Faults {
            probability: 3.0,
            ..Faults::default()
        })
        .is_err());
}

#[tokio::test]
async fn shutdown_closes_the_listener_and_live_connections() {
    let dev = start(SimConfig {
        event_hold: Duration::from_secs(30),
        ..SimConfig::fast()
    })
    .await;
    let addr = dev.addr();
    let http = Http::new();
    let id = http
        .get(&format!("{}/config?action=connect", dev.url()))
        .await
        .json()["connectionid"]
        .as_u64()
        .unwrap();
    let path = format!("/config?action=wait_for_config_events&connectionid={id}");
    let held = tokio::spawn(async move {
        raw(addr, get_request(&path).as_bytes(), Duration::from_secs(5)).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    dev.shutdown().await;
    let r = held.await.unwrap();
    assert_ne!(r.end, End::Timeout, "the held connection is closed");
    assert!(r.bytes.is_empty());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// No socket traffic here, so the paused clock can fast-forward: the lazily computed
/// temperature, media and duration must follow it exactly.
#[tokio::test(start_paused = true)]
async fn lazy_dynamics_follow_the_paused_clock() {
    let dev = start(SimConfig {
        transition_delay: Duration::from_millis(500),
        media_drain_per_sec: 0.1,
        ..SimConfig::default()
    })
    .await;
    dev.set_param(CMD, "1").unwrap();
    tokio::time::sleep(Duration::from_millis(499)).await;
    assert_eq!(dev.snapshot().record_state, 1);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(dev.snapshot().record_state, 2);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let snap = dev.snapshot();
    // 60 s at 0.2 °C/s from 40 °C, and 6 % of the medium used.
    assert_eq!((snap.temperature_c, snap.media_available), (52, 94));
    assert_eq!(snap.params["eParamID_RecordingDuration"], "00:00:01:00");
    // Full at 1000 s; it then fails, goes inactive and cools (at 0.1 °C/s) from 65 °C.
    tokio::time::sleep(Duration::from_secs(950)).await;
    let snap = dev.snapshot();
    assert_eq!((snap.record_state, snap.media_available), (4, 0));
    assert_eq!(snap.temperature_c, 64);
    dev.set_param(CMD, "2").unwrap();
    tokio::time::sleep(Duration::from_secs(300)).await;
    let snap = dev.snapshot();
    assert_eq!((snap.record_state, snap.temperature_c), (1, 40));
    assert_eq!(snap.params["eParamID_RecordingDuration"], "00:00:00:00");
}
