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
// trait method forwards to the handle's own method. The handles take label values;
// these implementations label a connection with its slot
// (`HeloMetrics::connection_slot`), never with its id, which changes whenever the
// pool replaces it.

impl PoolObserver for ConnectionWarmupMetrics {
    fn warmup_attempt(&self, encoder: &EncoderId) {
        self.warmup_attempt(encoder);
    }
    fn warmup_success(&self, encoder: &EncoderId, conn: ConnectionId, took: Duration) {
        let slot = self.metrics().assign_slot(encoder.as_str(), conn);
        self.warmup_success(encoder, slot, took);
    }
    fn warmup_failure(&self, encoder: &EncoderId, error: &HeloError) {
        self.warmup_failure(encoder, error);
    }
    fn warm_connections(&self, encoder: &EncoderId, count: usize) {
        self.warm_connections(encoder, count);
    }
    fn connection_retired(&self, encoder: &EncoderId, conn: ConnectionId, _reason: RetireReason) {
        self.metrics().release_connection(encoder.as_str(), conn);
    }
    fn encoder_removed(&self, encoder: &EncoderId) {
        self.encoder_removed(encoder);
    }
}

impl ThermalObserver for ConnectionThermalMetrics {
    fn temperature(&self, encoder: &EncoderId, conn: ConnectionId, value: f64) {
        // A connection the pool has not announced (or has retired) has no series.
        if let Some(slot) = self.metrics().connection_slot(encoder, conn) {
            self.temperature(encoder, slot, value);
        }
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
        // Only the series: the slot is the pool's until it retires the connection.
        if let Some(slot) = self.metrics().connection_slot(encoder, conn) {
            self.connection_removed(encoder, slot);
        }
    }
}

impl HealthObserver for ConnectionHealthMetrics {
    fn health_checked(&self, status: &HealthStatus, took: Duration) {
        let encoder = status.encoder();
        match self.metrics().connection_slot(encoder, status.connection()) {
            Some(slot) => self.health_checked(
                encoder,
                slot,
                status.health_score(),
                status.result_label(),
                took,
            ),
            // Not a pooled connection (or retired meanwhile): the check still counts.
            None => self.check_done(encoder, status.result_label(), took),
        }
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
            [r#"helo_connection_temperature{encoder_id="studio-a",connection_id="0"} 42"#]
        );
        assert_eq!(
            series(&text, "helo_cooling_events_total{"),
            [r#"helo_cooling_events_total{encoder_id="studio-a",reason="high_load"} 1"#]
        );
        // Durations are fleet-wide by default: no encoder label.
        assert!(
            text.contains("helo_cooling_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("helo_health_check_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("helo_warmup_duration_seconds_count 1"),
            "{text}"
        );
        assert_eq!(
            series(&text, "helo_device_temperature_celsius{"),
            [r#"helo_device_temperature_celsius{encoder_id="studio-a"} 55"#]
        );
        assert_eq!(
            series(&text, "helo_connection_health{"),
            [r#"helo_connection_health{encoder_id="studio-a",connection_id="0"} 100"#]
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
        let text = m.gather_text();
        assert!(!text.contains("studio-a"), "{text}");
        // The fleet's durations outlive the encoder.
        assert!(
            text.contains("helo_health_check_duration_seconds_count 1"),
            "{text}"
        );
    }

    #[test]
    fn per_encoder_histograms_are_an_option() {
        let m = HeloMetrics::with_options(
            crate::MetricsOptions::default().per_encoder_histograms(true),
        )
        .unwrap();
        let enc = EncoderId::from("studio-a");
        let pool: &dyn PoolObserver = &m;
        let health: &dyn HealthObserver = &m;
        pool.warmup_success(&enc, ConnectionId::from_raw(1), Duration::from_millis(30));
        m.health()
            .check_done(&enc, "success", Duration::from_millis(4));
        let text = m.gather_text();
        assert!(
            text.contains(r#"helo_health_check_duration_seconds_count{encoder_id="studio-a"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"helo_warmup_duration_seconds_count{encoder_id="studio-a"} 1"#),
            "{text}"
        );
        health.encoder_removed(&enc);
        assert_eq!(m.gather_text(), "");
    }

    /// The series of one encoder in a scrape.
    fn series_of(text: &str, enc: &str) -> usize {
        let label = format!("encoder_id=\"{enc}\"");
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains(&label))
            .count()
    }

    #[test]
    fn an_encoder_that_used_every_operation_keeps_few_series() {
        // An encoder that went through everything a day can bring: warm-ups, checks of
        // every result, cooling, and requests of every operation with several outcomes.
        let m = HeloMetrics::new().unwrap();
        let enc = EncoderId::from("studio-a");
        serve(&m, &enc, &[ConnectionId::from_raw(1)], 100.0);
        let thermal: &dyn ThermalObserver = &m;
        thermal.load(&enc, 10.0);
        let conn = ConnectionId::from_raw(1);
        thermal.cooling_started(&enc, conn, CoolingReason::HighLoad);
        thermal.cooling_finished(
            &enc,
            conn,
            Duration::from_secs(60),
            CoolingOutcome::Completed,
        );
        let requests = m.requests();
        for op in crate::metrics_layer::OPERATIONS {
            requests.record(
                &enc,
                op,
                helo_transport::Outcome::Success,
                Duration::from_millis(3),
            );
        }
        let per_encoder = series_of(&m.gather_text(), "studio-a");
        // Warm-up attempts and successes, the warm gauge, the connection's health
        // and temperature, the load, one check result, one cooling reason (8) and six
        // request counters: 14. Per-encoder histograms would add 15 (checks) + 16
        // (warm-ups) + 14 (cooling) + 6 × 18 (requests) = 153 more.
        assert_eq!(per_encoder, 14, "{}", m.gather_text());
    }

    /// Every series as `name{labels}`, values left out.
    fn series_set(text: &str) -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_string()))
            .collect()
    }

    /// One round of an encoder's life on `conns`: warmed, checked, heated.
    fn serve(m: &HeloMetrics, enc: &EncoderId, conns: &[ConnectionId], score: f64) {
        let pool: &dyn PoolObserver = m;
        let thermal: &dyn ThermalObserver = m;
        let health: &dyn HealthObserver = m;
        for (i, &conn) in conns.iter().enumerate() {
            pool.warmup_attempt(enc);
            pool.warmup_success(enc, conn, Duration::from_millis(20));
            thermal.temperature(enc, conn, 10.0 * i as f64 + score / 10.0);
            let checks = vec![CheckResult::new(
                CheckKind::BasicConnectivity,
                CheckOutcome::Ok,
                score,
                "ok",
            )];
            let status = HealthStatus::new(enc.clone(), conn, checks, &Scoring::default());
            health.health_checked(&status, Duration::from_millis(4));
        }
        pool.warm_connections(enc, conns.len());
    }

    #[test]
    fn replacing_every_connection_leaves_the_series_unchanged() {
        let m = HeloMetrics::new().unwrap();
        let enc = EncoderId::from("studio-a");
        let pool: &dyn PoolObserver = &m;
        let thermal: &dyn ThermalObserver = &m;
        let ids = |from: u64| -> Vec<ConnectionId> {
            (from..from + 3).map(ConnectionId::from_raw).collect()
        };
        let first = ids(1);
        serve(&m, &enc, &first, 100.0);
        let before = series_set(&m.gather_text());
        assert!(
            before.contains(r#"helo_connection_health{encoder_id="studio-a",connection_id="2"}"#),
            "{before:?}"
        );

        // A day of churn: every connection replaced, 100 times over, in changing
        // order, each successor with a fresh id.
        let mut live = first;
        for round in 0..100u64 {
            let next = ids(1_000 + 10 * round);
            for (k, old) in live.iter().enumerate() {
                // Half the rounds the thermal model forgets the connection first.
                if round % 2 == 0 {
                    thermal.connection_removed(&enc, *old);
                }
                pool.connection_retired(&enc, *old, RetireReason::Expired);
                // Replaced one at a time: the successor is warmed before the next
                // connection goes.
                serve(&m, &enc, &next[k..=k], 90.0);
            }
            live = next;
        }
        let after = series_set(&m.gather_text());
        assert_eq!(after, before);
        for conn in &live {
            let slot = m.connection_slot(&enc, *conn).unwrap();
            assert!(slot < 3, "{slot}");
        }
        // The values are the successors' own.
        assert!(m
            .gather_text()
            .contains(r#"helo_connection_health{encoder_id="studio-a",connection_id="0"} 90"#),);
    }
}
