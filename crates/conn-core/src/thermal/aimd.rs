//! Allowed load as additive increase, multiplicative decrease: a fresh or penalised
//! connection climbs back linearly, and every timeout or connection error halves
//! (by default) what it may carry.

use std::time::Duration;

use tokio::time::Instant;

/// An allowed load in percent that climbs by itself over time.
#[derive(Debug, Clone)]
pub(crate) struct Aimd {
    value: f64,
    at: Instant,
    floor: f64,
    /// Percentage points per second; `None` climbs at once.
    rate: Option<f64>,
}

impl Aimd {
    /// Starts at `start` %, never falls below `floor` %, and climbs from `floor` to
    /// 100 % in `ramp_up` (zero: at once).
    pub(crate) fn new(now: Instant, start: f64, floor: f64, ramp_up: Duration) -> Self {
        let rate = (!ramp_up.is_zero()).then(|| (100.0 - floor).max(0.0) / ramp_up.as_secs_f64());
        Self {
            value: start.clamp(floor, 100.0),
            at: now,
            floor,
            rate,
        }
    }

    /// The allowed load at `now`.
    pub(crate) fn current(&self, now: Instant) -> f64 {
        match self.rate {
            None => 100.0,
            Some(rate) => {
                let dt = now.saturating_duration_since(self.at).as_secs_f64();
                (self.value + rate * dt).min(100.0)
            }
        }
    }

    /// Multiplies the allowed load by `factor`, down to the floor.
    pub(crate) fn cut(&mut self, now: Instant, factor: f64) {
        self.value = (self.current(now) * factor).max(self.floor);
        self.at = now;
    }

    /// Starts over at `start` %.
    pub(crate) fn restart(&mut self, now: Instant, start: f64) {
        self.value = start.clamp(self.floor, 100.0);
        self.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climbs_linearly_and_cuts_multiplicatively() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // Floor 25, 30 s from floor to full: 2.5 points per second.
        let mut a = Aimd::new(t0, 50.0, 25.0, s(30));
        let check = |a: &Aimd, at: u64, want: f64| {
            let got = a.current(t0 + s(at));
            assert!(
                (got - want).abs() < 1e-9,
                "at {at}s: got {got}, want {want}"
            );
        };
        check(&a, 0, 50.0);
        check(&a, 10, 75.0);
        check(&a, 20, 100.0);
        check(&a, 40, 100.0);
        a.cut(t0 + s(40), 0.5);
        check(&a, 40, 50.0);
        a.cut(t0 + s(40), 0.5);
        check(&a, 40, 25.0);
        // Never below the floor.
        a.cut(t0 + s(40), 0.5);
        check(&a, 40, 25.0);
        // A penalty decays predictably: floor to full in exactly ramp_up.
        check(&a, 70, 100.0);
        a.restart(t0 + s(70), 50.0);
        check(&a, 70, 50.0);
    }

    #[test]
    fn zero_ramp_is_always_full() {
        let t0 = Instant::now();
        let mut a = Aimd::new(t0, 50.0, 25.0, Duration::ZERO);
        assert_eq!(a.current(t0), 100.0);
        a.cut(t0, 0.5);
        assert_eq!(a.current(t0), 100.0);
    }
}
