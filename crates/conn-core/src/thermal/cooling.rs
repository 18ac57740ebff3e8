//! The gradual cooling curve (pure) and the procedure that walks it.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use super::{state::ConnThermal, ThermalShared};
use crate::{
    error::CoreError,
    reasons::{CoolingOutcome, RetireReason},
};

/// Allowed load % after `step` of `steps` equal steps down from `start` to zero.
pub(crate) fn step_load(start: f64, step: u32, steps: u32) -> f64 {
    let steps = steps.max(1);
    let left = steps.saturating_sub(step.min(steps));
    start * f64::from(left) / f64::from(steps)
}

/// When step `step` of `steps` happens, after the cooling started.
pub(crate) fn step_at(period: Duration, step: u32, steps: u32) -> Duration {
    period.mul_f64(f64::from(step) / f64::from(steps.max(1)))
}

/// Walks the curve, then retires the connection (or puts it back on a slow start
/// when it is its encoder's last usable one), and reports the outcome. A failed
/// procedure force-resets the connection.
pub(crate) async fn run(shared: Arc<ThermalShared>, conn: Arc<ConnThermal>, started: Instant) {
    let result = walk(&shared, &conn, started).await;
    let took = Instant::now().saturating_duration_since(started);
    let outcome = match result {
        Ok(()) => {
            tracing::debug!(encoder_id = %conn.encoder, connection_id = %conn.conn, ?took, "cooling completed");
            CoolingOutcome::Completed
        }
        Err(e) => {
            tracing::warn!(encoder_id = %conn.encoder, connection_id = %conn.conn, error = %e, "cooling failed; resetting the connection");
            shared.pool.force_reset(&conn.encoder, conn.conn);
            shared.forget(&conn.encoder, conn.conn);
            CoolingOutcome::Failed
        }
    };
    shared
        .observer
        .cooling_finished(&conn.encoder, conn.conn, took, outcome);
}

async fn walk(
    shared: &ThermalShared,
    conn: &ConnThermal,
    started: Instant,
) -> Result<(), CoreError> {
    let cfg = &shared.config;
    let (encoder, id) = (&conn.encoder, conn.conn);
    let steps = cfg.gradual_cooldown.max(1);
    let start = conn.cooling_start_load().unwrap_or(100.0);
    let gone = || CoreError::UnknownConnection {
        encoder: encoder.clone(),
        conn: id,
    };
    for step in 1..=steps {
        tokio::time::sleep_until(started + step_at(cfg.cooling_period, step, steps)).await;
        if conn.is_removed() {
            return Err(gone());
        }
        let mut allowed = step_load(start, step, steps);
        // One device is one endpoint: its last usable connection keeps a floor.
        if shared.pool.usable_count(encoder) == 0 {
            allowed = allowed.max(cfg.min_allowed_load);
        }
        conn.set_cooling_cap(Instant::now(), allowed, step);
        shared.observer.cooling_step(encoder, id, step, allowed);
    }
    if shared.pool.usable_count(encoder) > 0 {
        conn.reset_stats();
        shared.pool.retire(encoder, id, RetireReason::Cooled)?;
        shared.forget(encoder, id);
    } else {
        shared.pool.end_cooling(encoder, id)?;
        conn.finish_cooling(Instant::now());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: (f64, u32, u32), expected: f64) {
        let (start, step, steps) = input;
        let got = step_load(start, step, steps);
        assert!(
            (got - expected).abs() < 1e-9,
            "{input:?}: got {got}, want {expected}"
        );
    }

    #[test]
    fn curve_goes_down_in_equal_steps() {
        check((100.0, 0, 5), 100.0);
        check((100.0, 1, 5), 80.0);
        check((100.0, 2, 5), 60.0);
        check((100.0, 3, 5), 40.0);
        check((100.0, 4, 5), 20.0);
        check((100.0, 5, 5), 0.0);
        check((100.0, 9, 5), 0.0);
        check((50.0, 1, 2), 25.0);
        check((100.0, 1, 1), 0.0);
        check((100.0, 1, 0), 0.0);
    }

    #[test]
    fn steps_are_spread_over_the_period() {
        let p = Duration::from_secs(60);
        assert_eq!(step_at(p, 1, 5), Duration::from_secs(12));
        assert_eq!(step_at(p, 5, 5), Duration::from_secs(60));
        assert_eq!(step_at(p, 1, 0), Duration::from_secs(60));
    }
}
