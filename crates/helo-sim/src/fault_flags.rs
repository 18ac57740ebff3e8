//! The fault flags of the `helo-sim` binary (not part of the library): one flag per
//! [`Faults`] field, named as its JSON key with dashes.

use helo_sim::Faults;

/// Faults active from the start (see `helo_sim::Faults` for the order they apply in).
#[derive(Debug, clap::Args)]
pub(crate) struct FaultArgs {
    /// Extra delay before every answer, ms.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Read requests, never answer.
    #[arg(long)]
    hang: bool,
    /// Reset connections as soon as a request arrives.
    #[arg(long)]
    refuse: bool,
    /// Send half an answer, then reset.
    #[arg(long)]
    reset: bool,
    /// Answer 500.
    #[arg(long)]
    error_500: bool,
    /// Answer 503 with Retry-After: --retry-after-s.
    #[arg(long)]
    unavailable_503: bool,
    /// Retry-After seconds for --unavailable-503.
    #[arg(long, default_value_t = 1)]
    retry_after_s: u64,
    /// Answer 200 with invalid JSON.
    #[arg(long)]
    malformed_json: bool,
    /// Announce more Content-Length than sent, then close.
    #[arg(long)]
    truncated_json: bool,
    /// Answer 200 with a JSON body of this many bytes.
    #[arg(long, default_value_t = 0)]
    oversized_body_bytes: u64,
    /// Every stream start fails (eRRSFailingInStream).
    #[arg(long)]
    stream_start_fails: bool,
    /// Fraction (0-1) of requests the faults apply to.
    #[arg(long, default_value_t = 1.0)]
    fault_probability: f64,

    /// JSON error answers (400, 500, 503) carry an "error" text of this many bytes
    /// (at most 16 MiB).
    #[arg(long, default_value_t = 0)]
    error_text_bytes: u64,
    /// JSON error answers carry this "error" text verbatim.
    #[arg(long, allow_hyphen_values = true)]
    error_text: Option<String>,
    /// Every get answer's value and value_name is this text.
    #[arg(long, allow_hyphen_values = true)]
    hostile_values: Option<String>,
    /// The connect answer's connectionid is this JSON string.
    #[arg(long, allow_hyphen_values = true)]
    event_connection_id: Option<String>,
    /// wait_for_config_events answers [] at once, without holding.
    #[arg(long)]
    instant_events: bool,
    /// wait_for_config_events answers this JSON at once, e.g. '{"unexpected":true}'.
    #[arg(long, value_parser = json_value)]
    event_shape: Option<serde_json::Value>,
    /// wait_for_config_events answers a chunked JSON array that never ends.
    #[arg(long)]
    endless_event_array: bool,
    /// Answer random bytes that are not HTTP, then close.
    #[arg(long)]
    garbage_response: bool,
    /// Answer the bare body without a status line (HTTP/0.9), then close.
    #[arg(long)]
    http09: bool,
    /// Announce Content-Length: 99999999999999, send the short body, then close.
    #[arg(long)]
    huge_content_length: bool,
    /// Announce the chunk size ffffffffffffffff, send the short body, then close.
    #[arg(long)]
    absurd_chunks: bool,
    /// Answer 200 with a chunked body that never ends (100 KiB/s).
    #[arg(long)]
    endless_body: bool,
    /// Answer 200 with [[[...]]] nested this deep (at most 10 000 000).
    #[arg(long, default_value_t = 0)]
    deep_json_depth: u32,
    /// Send answers one byte every --slowloris-interval-ms.
    #[arg(long)]
    slowloris_response: bool,
    /// Pause between two bytes of --slowloris-response, ms (1-60000).
    #[arg(long, default_value_t = 200)]
    slowloris_interval_ms: u64,
    /// Answer 302 to the very URL asked.
    #[arg(long)]
    redirect_loop: bool,
    /// Send this many "100 Continue" interim answers first (at most 1 000 000).
    #[arg(long, default_value_t = 0)]
    informational_flood: u32,
    /// A successful login answers without Set-Cookie.
    #[arg(long)]
    login_without_cookie: bool,
}

fn json_value(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

impl FaultArgs {
    pub(crate) fn faults(&self) -> Faults {
        Faults {
            latency_ms: self.latency_ms,
            hang: self.hang,
            refuse: self.refuse,
            reset: self.reset,
            error_500: self.error_500,
            unavailable_503: self.unavailable_503,
            retry_after_s: self.retry_after_s,
            malformed_json: self.malformed_json,
            truncated_json: self.truncated_json,
            oversized_body_bytes: self.oversized_body_bytes,
            stream_start_fails: self.stream_start_fails,
            probability: self.fault_probability,
            error_text_bytes: self.error_text_bytes,
            error_text: self.error_text.clone(),
            hostile_values: self.hostile_values.clone(),
            event_connection_id: self.event_connection_id.clone(),
            instant_events: self.instant_events,
            event_shape: self.event_shape.clone(),
            endless_event_array: self.endless_event_array,
            garbage_response: self.garbage_response,
            http09: self.http09,
            huge_content_length: self.huge_content_length,
            absurd_chunks: self.absurd_chunks,
            endless_body: self.endless_body,
            deep_json_depth: self.deep_json_depth,
            slowloris_response: self.slowloris_response,
            slowloris_interval_ms: self.slowloris_interval_ms,
            redirect_loop: self.redirect_loop,
            informational_flood: self.informational_flood,
            login_without_cookie: self.login_without_cookie,
        }
    }
}
