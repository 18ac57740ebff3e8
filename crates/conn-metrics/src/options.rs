//! [`MetricsOptions`]: how much detail the families keep per encoder.

/// How much detail the families keep per encoder.
///
/// The default keeps a fleet's series bounded at about 20 per encoder: the duration
/// histograms (`helo_request_duration_seconds`, `helo_health_check_duration_seconds`,
/// `helo_warmup_duration_seconds`, `helo_cooling_duration_seconds`) are kept once for
/// the whole fleet, without `encoder_id`. Each bucket is a series, so per encoder they
/// are 15 to 18 series each (per operation, for requests): about 70 of an encoder's 90
/// series, on a fleet of thousands.
///
/// ```
/// use conn_metrics::{HeloMetrics, MetricsOptions};
///
/// # fn main() -> Result<(), conn_metrics::MetricsError> {
/// let detailed = MetricsOptions::default().per_encoder_histograms(true);
/// let fleet = HeloMetrics::with_options(detailed)?;
/// fleet.health().check_done("studio-a", "success", std::time::Duration::from_millis(3));
/// assert!(fleet
///     .gather_text()
///     .contains(r#"helo_health_check_duration_seconds_count{encoder_id="studio-a"} 1"#));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsOptions {
    /// Keep the duration histograms per encoder (`encoder_id` label) instead of once
    /// for the fleet. Default: `false`.
    pub per_encoder_histograms: bool,
}

impl MetricsOptions {
    /// Sets [`per_encoder_histograms`](Self::per_encoder_histograms).
    #[must_use]
    pub fn per_encoder_histograms(mut self, on: bool) -> Self {
        self.per_encoder_histograms = on;
        self
    }
}
