//! The observer traits of `conn-core` and `conn-health`, implemented by the metric
//! handles, so those crates report into Prometheus without depending on it.

use std::time::Duration;

use conn_core::{
    CoolingOutcome, CoolingReason, EncoderId, PoolObserver, RetireReason, ThermalObserver,
};
use conn_health::{DeviceState, HealthObserver, HealthStatus};
use helo_transport::{ConnectionId, HeloError};

use crate::{
    ConnectionHealthMetrics, ConnectionThermalMetrics, ConnectionWarmupMetrics, HeloMetrics,
};

// Inherent methods of the same name take precedence inside these bodies, so each
// trait method forwards to the handle's own method.

impl PoolObserver for ConnectionWarmupMetrics {
    fn warmup_attempt(&self, encoder: &EncoderId) {
        self.warmup_attempt(encoder);
    }
    fn warmup_success(&self, encoder: &EncoderId, conn: ConnectionId, took: Duration) {
        self.warmup_success(encoder, conn, took);
    }
    fn warmup_failure(&self, encoder: &EncoderId, error: &HeloError) {
        self.warmup_failure(encoder, error);
    }
    fn warm_connections(&self, encoder: &EncoderId, count: usize) {
        self.warm_connections(encoder, count);
    }
    fn connection_retired(&self, encoder: &EncoderId, conn: ConnectionId, _reason: RetireReason) {
        self.connection_retired(encoder, conn);
    }
    fn encoder_removed(&self, encoder: &EncoderId) {
        self.encoder_removed(encoder);
    }
}

impl ThermalObserver for ConnectionThermalMetrics {
    fn temperature(&self, encoder: &EncoderId, conn: ConnectionId, value: f64) {
        self.temperature(encoder, conn, value);
    }
    fn load(&self, encoder: &EncoderId, percent: f64) {
        self.load(encoder, percent);
    }
    fn cooling_started(&self, encoder: &EncoderId, conn: ConnectionId, reason: CoolingReason) {
        self.cooling_started(encoder, conn, reason.as_str());
    }
    fn cooling_step(&self, encoder: &EncoderId, conn: ConnectionId, step: u32, allowed_load: f64) {
        self.cooling_step(encoder, conn, step, allowed_load);
    }
    fn cooling_finished(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        took: Duration,
        _outcome: CoolingOutcome,
    ) {
        self.cooling_finished(encoder, conn, took);
    }
    fn device_temperature(&self, encoder: &EncoderId, celsius: f64) {
        self.device_temperature(encoder, celsius);
    }
    fn device_overheated(&self, encoder: &EncoderId, celsius: f64) {
        self.device_overheated(encoder, celsius);
    }
    fn connection_removed(&self, encoder: &EncoderId, conn: ConnectionId) {
        self.connection_removed(encoder, conn);
    }
}

impl HealthObserver for ConnectionHealthMetrics {
    fn health_checked(&self, status: &HealthStatus, took: Duration) {
        self.health_checked(
            status.encoder(),
            status.connection(),
            status.health_score(),
            status.result_label(),
            took,
        );
    }
    fn device_state(&self, encoder: &EncoderId, state: &DeviceState) {
        self.device_state(
            encoder,
            state.stream_state.value(),
            state.record_state.value(),
            state.temperature.value(),
        );
    }
    fn encoder_removed(&self, encoder: &EncoderId) {
        self.encoder_removed(encoder);
    }
}

// The whole registry observes everything, so `ConnectionThermalManager::new(warmup,
// Arc::new(metrics))` reads as in the seed.

impl PoolObserver for HeloMetrics {
    fn warmup_attempt(&self, encoder: &EncoderId) {
        PoolObserver::warmup_attempt(&self.warmup(), encoder);
    }
    fn warmup_success(&self, encoder: &EncoderId, conn: ConnectionId, took: Duration) {
        PoolObserver::warmup_success(&self.warmup(), encoder, conn, took);
    }
    fn warmup_failure(&self, encoder: &EncoderId, error: &HeloError) {
        PoolObserver::warmup_failure(&self.warmup(), encoder, error);
    }
    fn warm_connections(&self, encoder: &EncoderId, count: usize) {
        PoolObserver::warm_connections(&self.warmup(), encoder, count);
    }
    fn connection_retired(&self, encoder: &EncoderId, conn: ConnectionId, reason: RetireReason) {
        PoolObserver::connection_retired(&self.warmup(), encoder, conn, reason);
    }
    fn encoder_removed(&self, encoder: &EncoderId) {
        self.remove_encoder(encoder);
    }
}

impl ThermalObserver for HeloMetrics {
    fn temperature(&self, encoder: &EncoderId, conn: ConnectionId, value: f64) {
        ThermalObserver::temperature(&self.thermal(), encoder, conn, value);
    }
    fn load(&self, encoder: &EncoderId, percent: f64) {
        ThermalObserver::load(&self.thermal(), encoder, percent);
    }
    fn cooling_started(&self, encoder: &EncoderId, conn: ConnectionId, reason: CoolingReason) {
        ThermalObserver::cooling_started(&self.thermal(), encoder, conn, reason);
    }
    fn cooling_finished(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        took: Duration,
        outcome: CoolingOutcome,
    ) {
        ThermalObserver::cooling_finished(&self.thermal(), encoder, conn, took, outcome);
    }
    fn device_temperature(&self, encoder: &EncoderId, celsius: f64) {
        ThermalObserver::device_temperature(&self.thermal(), encoder, celsius);
    }
    fn device_overheated(&self, encoder: &EncoderId, celsius: f64) {
        ThermalObserver::device_overheated(&self.thermal(), encoder, celsius);
    }
    fn connection_removed(&self, encoder: &EncoderId, conn: ConnectionId) {
        ThermalObserver::connection_removed(&self.thermal(), encoder, conn);
    }
}

impl HealthObserver for HeloMetrics {
    fn health_checked(&self, status: &HealthStatus, took: Duration) {
        HealthObserver::health_checked(&self.health(), status, took);
    }
    fn device_state(&self, encoder: &EncoderId, state: &DeviceState) {
        HealthObserver::device_state(&self.health(), encoder, state);
    }
    fn encoder_removed(&self, encoder: &EncoderId) {
        self.remove_encoder(encoder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conn_health::{CheckKind, CheckOutcome, CheckResult, Scoring};

    fn series(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_core_and_health_observers_land_in_their_families() {
        let m = HeloMetrics::new().unwrap();
        let enc = EncoderId::from("studio-a");
        let conn = ConnectionId::from_raw(41);
        let pool: &dyn PoolObserver = &m;
        let thermal: &dyn ThermalObserver = &m;
        let health: &dyn HealthObserver = &m;

        pool.warmup_attempt(&enc);
        pool.warmup_success(&enc, conn, Duration::from_millis(30));
        pool.warm_connections(&enc, 3);
        thermal.temperature(&enc, conn, 42.0);
        thermal.load(&enc, 25.0);
        thermal.cooling_started(&enc, conn, CoolingReason::HighLoad);
        thermal.cooling_finished(
            &enc,
            conn,
            Duration::from_secs(60),
            CoolingOutcome::Completed,
        );
        thermal.device_temperature(&enc, 55.0);
        let checks = vec![CheckResult::new(
            CheckKind::BasicConnectivity,
            CheckOutcome::Ok,
            100.0,
            "ok",
        )];
        let status = HealthStatus::new(enc.clone(), conn, checks, &Scoring::default());
        health.health_checked(&status, Duration::from_millis(4));

        let text = m.gather_text();
        assert_eq!(
            series(&text, "helo_warmup_attempts_total{"),
            [r#"helo_warmup_attempts_total{encoder_id="studio-a"} 1"#]
        );
        assert_eq!(
            series(&text, "helo_warmup_success_total{"),
            [r#"helo_warmup_success_total{encoder_id="studio-a"} 1"#]
        );
        assert_eq!(
            series(&text, "helo_warm_connections{"),
            [r#"helo_warm_connections{encoder_id="studio-a"} 3"#]
        );
        assert_eq!(
            series(&text, "helo_connection_temperature{"),
            [r#"helo_connection_temperature{encoder_id="studio-a",connection_id="41"} 42"#]
        );
        assert_eq!(
            series(&text, "helo_cooling_events_total{"),
            [r#"helo_cooling_events_total{encoder_id="studio-a",reason="high_load"} 1"#]
        );
        assert!(
            text.contains(r#"helo_cooling_duration_seconds_count{encoder_id="studio-a"} 1"#),
            "{text}"
        );
        assert_eq!(
            series(&text, "helo_device_temperature_celsius{"),
            [r#"helo_device_temperature_celsius{encoder_id="studio-a"} 55"#]
        );
        assert_eq!(
            series(&text, "helo_connection_health{"),
            [r#"helo_connection_health{encoder_id="studio-a",connection_id="41"} 100"#]
        );
        assert_eq!(
            series(&text, "helo_health_checks_total{"),
            [r#"helo_health_checks_total{encoder_id="studio-a",result="success"} 1"#]
        );

        // Retiring the connection drops its series; removing the encoder drops the rest.
        pool.connection_retired(&enc, conn, RetireReason::Cooled);
        let text = m.gather_text();
        assert!(
            series(&text, "helo_connection_temperature{").is_empty(),
            "{text}"
        );
        assert!(
            series(&text, "helo_connection_health{").is_empty(),
            "{text}"
        );
        health.encoder_removed(&enc);
        assert!(!m.gather_text().contains("studio-a"));
    }
}
