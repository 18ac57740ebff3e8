//! One sample of the supervisor: its process (`/proc`), its `/metrics`, its
//! `/api/encoders`, and the requests the devices saw.

// Wall-clock timing of HTTP requests from a plain thread: no tokio clock here.
#![allow(clippy::disallowed_types)]

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use serde_json::Value as Json;

use super::{fleet::Fleet, schedule::Role};
use crate::bench::{http, procfs, prom};

const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// `/healthz` answers at once in a live process; longer than this is a failure.
const HEALTHZ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest device text kept from a reason (they are already bounded and escaped by
/// the supervisor; this keeps the report readable).
const REASON_CHARS: usize = 160;

/// What was seen at one moment. A `None` is a read that failed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    /// Seconds since the fault phase started.
    pub(crate) t_s: f64,
    pub(crate) rss_kib: Option<u64>,
    pub(crate) fds: Option<usize>,
    pub(crate) threads: Option<usize>,
    /// The supervisor's CPU time so far, seconds.
    pub(crate) cpu_s: Option<f64>,
    pub(crate) healthz: bool,
    /// Series in `/metrics` (lines that are not comments).
    pub(crate) series: Option<usize>,
    /// The most series of any one encoder (by its `encoder_id` label).
    pub(crate) series_max_per_encoder: Option<usize>,
    /// Distinct `encoder_id` values in the series.
    pub(crate) series_encoders: Option<usize>,
    /// Distinct values of every other label ([`SeriesCount::label_values`]).
    pub(crate) label_values: Option<usize>,
    /// Series by metric name.
    pub(crate) series_by_metric: Option<BTreeMap<String, usize>>,
    pub(crate) scrape_ms: Option<f64>,
    pub(crate) metrics_bytes: Option<usize>,
    /// Connections warmed so far (`helo_warmup_success_total`): every new connection
    /// gets a new id, so per-connection state that outlives its connection grows with
    /// this.
    pub(crate) connections_opened: Option<f64>,
    pub(crate) fleet: Option<FleetStatus>,
    /// Protocol requests the devices answered so far (helo-sim's fleet total).
    pub(crate) device_requests: Option<f64>,
    /// Faults started so far.
    pub(crate) faults: usize,
    /// The machine's 1-minute load average: on a shared machine, what else ran.
    pub(crate) load1: Option<f64>,
}

/// The fleet as `/api/encoders` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FleetStatus {
    /// Encoders by their `status`.
    pub(crate) by_status: BTreeMap<String, usize>,
    /// Encoders expected to stream that the supervisor sees streaming.
    pub(crate) streaming: usize,
    pub(crate) expect_streaming: usize,
    pub(crate) recording: usize,
    pub(crate) expect_recording: usize,
    /// Encoders (k) whose expected stream or recording the supervisor sees inactive.
    pub(crate) off_air: Vec<usize>,
}

impl FleetStatus {
    pub(crate) fn count(&self, status: &str) -> usize {
        self.by_status.get(status).copied().unwrap_or(0)
    }

    /// Counts `encoders` against what each is expected to do.
    pub(crate) fn of(encoders: &[EncoderState]) -> Self {
        let mut out = Self::default();
        for e in encoders {
            *out.by_status.entry(e.status.clone()).or_default() += 1;
            let role = e.role();
            let streaming = e.stream.as_deref() == Some("streaming");
            let recording = e.record.as_deref() == Some("recording");
            if role.streaming {
                out.expect_streaming += 1;
                out.streaming += usize::from(streaming);
            }
            if role.recording {
                out.expect_recording += 1;
                out.recording += usize::from(recording);
            }
            if (role.streaming && !streaming) || (role.recording && !recording) {
                out.off_air.push(e.k);
            }
        }
        out.off_air.sort_unstable();
        out
    }
}

/// What the supervisor says of one encoder: the stable fields of `/api/encoders`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncoderState {
    pub(crate) id: String,
    /// 1-based, from the id the soak gave it.
    pub(crate) k: usize,
    pub(crate) status: String,
    /// `code: message`, worst first.
    pub(crate) reasons: Vec<String>,
    pub(crate) stream: Option<String>,
    pub(crate) stream_phase: Option<String>,
    pub(crate) record: Option<String>,
    pub(crate) record_phase: Option<String>,
    pub(crate) checks: u64,
}

impl EncoderState {
    pub(crate) fn role(&self) -> Role {
        Role::of(self.k)
    }
}

/// The soak's name for encoder `k` (1-based).
pub(crate) fn encoder_id(k: usize) -> String {
    format!("enc-{k:05}")
}

fn k_of(id: &str) -> Option<usize> {
    id.strip_prefix("enc-")?.parse().ok()
}

/// Parses the body of `GET /api/encoders` (a JSON array of encoder views).
pub(crate) fn parse_encoders(body: &str) -> Result<Vec<EncoderState>, String> {
    let json: Json =
        serde_json::from_str(body).map_err(|e| format!("/api/encoders is not JSON: {e}"))?;
    let list = json
        .as_array()
        .ok_or("/api/encoders did not answer an array")?;
    let text = |v: &Json| v.as_str().map(str::to_string);
    list.iter()
        .map(|e| {
            let id = text(&e["id"]).ok_or("an encoder without an id")?;
            let k = k_of(&id).ok_or_else(|| format!("unknown encoder id {id:?}"))?;
            let reasons = e["reasons"]
                .as_array()
                .map(|rs| {
                    rs.iter()
                        .map(|r| {
                            let line = format!(
                                "{}: {}",
                                r["code"].as_str().unwrap_or("?"),
                                r["message"].as_str().unwrap_or("")
                            );
                            line.chars().take(REASON_CHARS).collect()
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(EncoderState {
                status: text(&e["status"]).unwrap_or_else(|| "?".into()),
                reasons,
                stream: text(&e["stream"]["state"]),
                stream_phase: text(&e["stream"]["phase"]),
                record: text(&e["record"]["state"]),
                record_phase: text(&e["record"]["phase"]),
                checks: e["checks"]["count"].as_u64().unwrap_or(0),
                id,
                k,
            })
        })
        .collect()
}

/// What the series of one `/metrics` text are made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SeriesCount {
    /// Lines that are not comments.
    pub(crate) total: usize,
    /// The most of any one encoder (by its `encoder_id` label).
    pub(crate) max_per_encoder: usize,
    /// Distinct `encoder_id` values.
    pub(crate) encoders: usize,
    /// Distinct (metric, label, value) triples of every label but `encoder_id`: the
    /// vocabulary the series are drawn from. Series are at most encoders × the label
    /// sets this vocabulary allows, so while it and the encoders stay bounded, so do
    /// the series; a label fed from something unbounded (a connection id, device text)
    /// makes it grow.
    pub(crate) label_values: usize,
    /// Series by metric name (a histogram's lines under their own names).
    pub(crate) by_metric: BTreeMap<String, usize>,
}

/// Counts the series of a `/metrics` text.
pub(crate) fn count_series(text: &str) -> SeriesCount {
    let mut per_encoder: BTreeMap<&str, usize> = BTreeMap::new();
    let mut values: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
    let mut count = SeriesCount::default();
    for (name, labels, _) in prom::samples(text) {
        count.total += 1;
        *count.by_metric.entry(name.to_string()).or_default() += 1;
        for (key, value) in label_pairs(labels) {
            if key == "encoder_id" {
                *per_encoder.entry(value).or_default() += 1;
            } else {
                values.insert((name, key, value));
            }
        }
    }
    count.max_per_encoder = per_encoder.values().copied().max().unwrap_or(0);
    count.encoders = per_encoder.len();
    count.label_values = values.len();
    count
}

/// The `key="value"` pairs of a label text (values as written, escapes kept).
fn label_pairs(labels: &str) -> Vec<(&str, &str)> {
    let mut pairs = Vec::new();
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        // The value ends at the first quote that is not escaped.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        pairs.push((key.trim_start_matches(',').trim(), &after[..end]));
        rest = &after[end + 1..];
    }
    pairs
}

/// The first field of `/proc/loadavg`.
fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `GET /api/encoders`, parsed.
pub(crate) fn encoders(admin: &str) -> Result<Vec<EncoderState>, String> {
    let r = http::get(admin, "/api/encoders", HTTP_TIMEOUT)?;
    if r.status != 200 {
        return Err(format!("/api/encoders answered {}", r.status));
    }
    parse_encoders(&r.body)
}

/// helo-sim's total of protocol requests over every device.
pub(crate) fn device_requests(control: &str) -> Result<f64, String> {
    let r = http::get(control, "/sim/fleet", HTTP_TIMEOUT)?;
    let json: Json = serde_json::from_str(&r.body).map_err(|e| format!("/sim/fleet: {e}"))?;
    json["requests"]["total"]
        .as_f64()
        .ok_or_else(|| "/sim/fleet: no requests.total".to_string())
}

/// Takes one sample: the process first (a scrape allocates), then the HTTP surfaces.
/// Failed reads are left `None` and reported on stderr; only a dead process is an error
/// to the caller.
pub(crate) fn take(fleet: &Fleet, t_s: f64, ticks: f64, faults: usize) -> Sample {
    let pid = fleet.supervisor_pid();
    let warn = |what: &str, e: String| eprintln!("   sample at {t_s:.0} s: {what}: {e}");
    let mut s = Sample {
        t_s,
        faults,
        load1: load1(),
        rss_kib: procfs::rss_bytes(pid)
            .map(|b| b / 1024)
            .map_err(|e| warn("rss", e))
            .ok(),
        fds: Some(procfs::fds(pid)).filter(|&n| n > 0),
        threads: procfs::threads(pid).map_err(|e| warn("threads", e)).ok(),
        cpu_s: procfs::cpu_time(pid, ticks)
            .map(|d| d.as_secs_f64())
            .map_err(|e| warn("cpu", e))
            .ok(),
        ..Sample::default()
    };
    s.healthz = http::get(&fleet.admin, "/healthz", HEALTHZ_TIMEOUT)
        .map_err(|e| warn("/healthz", e))
        .is_ok_and(|r| r.status == 200);
    let started = Instant::now();
    match http::get(&fleet.admin, "/metrics", HTTP_TIMEOUT) {
        Ok(r) if r.status == 200 => {
            s.scrape_ms = Some(started.elapsed().as_secs_f64() * 1e3);
            s.metrics_bytes = Some(r.body.len());
            let count = count_series(&r.body);
            s.series = Some(count.total);
            s.series_max_per_encoder = Some(count.max_per_encoder);
            s.series_encoders = Some(count.encoders);
            s.label_values = Some(count.label_values);
            s.series_by_metric = Some(count.by_metric);
            s.connections_opened = Some(prom::sum(&r.body, "helo_warmup_success_total"));
        }
        Ok(r) => warn("/metrics", format!("answered {}", r.status)),
        Err(e) => warn("/metrics", e),
    }
    s.fleet = encoders(&fleet.admin)
        .map(|list| FleetStatus::of(&list))
        .map_err(|e| warn("/api/encoders", e))
        .ok();
    s.device_requests = device_requests(&fleet.control)
        .map_err(|e| warn("/sim/fleet", e))
        .ok();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENCODERS: &str = r#"[
      {"id":"enc-00001","status":"healthy","reasons":[],
       "stream":{"desired":"streaming","state":"streaming","phase":"settled"},
       "record":{"desired":"observe","state":"idle","phase":"settled"},
       "checks":{"count":12}},
      {"id":"enc-00010","status":"critical",
       "reasons":[{"code":"stream_failing","message":"the stream is failing\u0007"}],
       "stream":{"state":"failing_in_stream","phase":"gave_up"},
       "record":{"state":"recording","phase":"settled"},
       "checks":{"count":3}},
      {"id":"enc-00005","status":"unknown","reasons":[],
       "stream":{"state":null},"record":{},"checks":{}}
    ]"#;

    #[test]
    fn reads_the_stable_fields_of_the_admin_api() {
        let list = parse_encoders(ENCODERS).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].k, 1);
        assert_eq!(list[0].stream.as_deref(), Some("streaming"));
        assert_eq!(list[0].checks, 12);
        assert_eq!(
            list[1].reasons,
            vec!["stream_failing: the stream is failing\u{7}".to_string()]
        );
        assert_eq!(list[1].stream_phase.as_deref(), Some("gave_up"));
        assert_eq!(list[2].stream, None);
        assert_eq!(list[2].checks, 0);

        let f = FleetStatus::of(&list);
        assert_eq!(f.count("healthy"), 1);
        assert_eq!(f.count("critical"), 1);
        assert_eq!(f.count("degraded"), 0);
        // Encoder 1 and 10 should stream (one does), 10 should record (it does); 5 is
        // only observed.
        assert_eq!((f.streaming, f.expect_streaming), (1, 2));
        assert_eq!((f.recording, f.expect_recording), (1, 1));
        assert_eq!(f.off_air, vec![10]);
    }

    #[test]
    fn a_bad_answer_is_an_error_not_a_panic() {
        for (body, needle) in [
            ("not json", "not JSON"),
            (r#"{"encoders":[]}"#, "array"),
            (r#"[{"status":"healthy"}]"#, "without an id"),
            (r#"[{"id":"studio-a"}]"#, "unknown encoder id"),
        ] {
            let err = parse_encoders(body).unwrap_err();
            assert!(err.contains(needle), "{body}: {err}");
        }
        assert_eq!(parse_encoders("[]").unwrap(), vec![]);
    }

    #[test]
    fn counts_series_and_the_busiest_encoder() {
        let text = "# HELP a b\n# TYPE a gauge\n\
                    a{encoder_id=\"enc-00001\"} 1\n\
                    a{encoder_id=\"enc-00001\",x=\"y\"} 2\n\
                    a{encoder_id=\"enc-00002\"} 3\n\
                    process_open_fds 12\n";
        let c = count_series(text);
        assert_eq!((c.total, c.max_per_encoder, c.encoders), (4, 2, 2));
        // `x="y"` of `a`; `encoder_id` is not vocabulary.
        assert_eq!(c.label_values, 1);
        assert_eq!(c.by_metric["a"], 3);
        assert_eq!(c.by_metric["process_open_fds"], 1);
        assert_eq!(count_series(""), SeriesCount::default());
    }

    #[test]
    fn label_values_are_read_with_escapes_and_commas() {
        assert_eq!(
            label_pairs(r#"encoder_id="a,b",reason="say \"hi\", then go",le="+Inf""#),
            vec![
                ("encoder_id", "a,b"),
                ("reason", r#"say \"hi\", then go"#),
                ("le", "+Inf")
            ]
        );
        // The same outcome on two encoders is one value; a new connection id is a new
        // one.
        let text = "r{encoder_id=\"a\",outcome=\"timeout\"} 1\n\
                    r{encoder_id=\"b\",outcome=\"timeout\"} 1\n\
                    c{encoder_id=\"a\",connection_id=\"17\"} 1\n\
                    c{encoder_id=\"a\",connection_id=\"18\"} 1\n";
        let c = count_series(text);
        assert_eq!((c.total, c.label_values, c.encoders), (4, 3, 2));
    }

    #[test]
    fn reads_the_load_average() {
        assert!(load1().is_some_and(|l| l >= 0.0));
    }
}
