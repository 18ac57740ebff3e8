//! Temperature and media models, linear in time so their values are computed from the
//! clock when read: 5 000 idle devices cost no timers.

use std::time::Duration;

use tokio::time::Instant;

use crate::ThermalConfig;

/// Temperature moving linearly toward a target.
#[derive(Debug, Clone)]
pub(crate) struct Thermal {
    anchor: Instant,
    temp: f64,
    target: f64,
    /// Set by an overheat while active: the device stays this hot until it goes idle.
    hold: Option<f64>,
    cfg: ThermalConfig,
}

impl Thermal {
    pub(crate) fn new(cfg: ThermalConfig, now: Instant) -> Self {
        Thermal {
            anchor: now,
            temp: cfg.baseline_c,
            target: cfg.baseline_c,
            hold: None,
            cfg,
        }
    }

    pub(crate) fn at(&self, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(self.anchor).as_secs_f64();
        if self.temp < self.target {
            (self.temp + self.cfg.heat_per_sec * dt).min(self.target)
        } else {
            (self.temp - self.cfg.cool_per_sec * dt).max(self.target)
        }
    }

    /// The reported (whole-degree) temperature.
    pub(crate) fn reported(&self, now: Instant) -> i64 {
        self.at(now).round() as i64
    }

    fn reanchor(&mut self, now: Instant) {
        self.temp = self.at(now);
        self.anchor = now;
    }

    /// Called at every change of activity (streaming or recording vs. idle).
    pub(crate) fn set_active(&mut self, now: Instant, active: bool) {
        self.reanchor(now);
        if !active {
            self.hold = None;
        }
        self.target = if active {
            self.hold
                .map_or(self.cfg.active_max_c, |h| h.max(self.cfg.active_max_c))
        } else {
            self.cfg.baseline_c
        };
    }

    /// Jumps to `temp_c`; an active device stays there until it goes idle.
    pub(crate) fn overheat(&mut self, now: Instant, temp_c: f64, active: bool) {
        self.temp = temp_c;
        self.anchor = now;
        self.hold = active.then_some(temp_c);
        self.set_active(now, active);
    }

    /// Forgets an overheat and returns to the temperature normal for the activity.
    pub(crate) fn cool_down(&mut self, now: Instant, active: bool) {
        self.hold = None;
        self.temp = if active {
            self.cfg.active_max_c
        } else {
            self.cfg.baseline_c
        };
        self.anchor = now;
        self.set_active(now, active);
    }

    /// When the reported value will next change, if it is moving.
    pub(crate) fn next_change(&self, now: Instant) -> Option<Instant> {
        let cur = self.at(now);
        let (boundary, rate) = if self.target > cur {
            (cur.round() + 0.5, self.cfg.heat_per_sec)
        } else if self.target < cur {
            (cur.round() - 0.5, self.cfg.cool_per_sec)
        } else {
            return None;
        };
        let reachable = if self.target > cur {
            boundary <= self.target
        } else {
            boundary >= self.target
        };
        if !reachable || rate <= 0.0 {
            return None;
        }
        secs_later(now, (boundary - cur).abs() / rate)
    }
}

/// Free space on the medium, draining linearly while recording.
#[derive(Debug, Clone)]
pub(crate) struct Media {
    anchor: Instant,
    percent: f64,
    draining: bool,
    rate: f64,
}

impl Media {
    pub(crate) fn new(percent: f64, rate: f64, now: Instant) -> Self {
        Media {
            anchor: now,
            percent,
            draining: false,
            rate,
        }
    }

    pub(crate) fn at(&self, now: Instant) -> f64 {
        if !self.draining {
            return self.percent;
        }
        let dt = now.saturating_duration_since(self.anchor).as_secs_f64();
        (self.percent - self.rate * dt).max(0.0)
    }

    /// Whole percent still free, rounded up so 0 means really full.
    pub(crate) fn reported(&self, now: Instant) -> i64 {
        self.at(now).ceil() as i64
    }

    pub(crate) fn set(&mut self, now: Instant, percent: f64) {
        self.percent = percent.clamp(0.0, 100.0);
        self.anchor = now;
    }

    pub(crate) fn set_draining(&mut self, now: Instant, draining: bool) {
        self.percent = self.at(now);
        self.anchor = now;
        self.draining = draining;
    }

    /// When a running recording fills the medium.
    pub(crate) fn full_at(&self) -> Option<Instant> {
        if !self.draining || self.rate <= 0.0 {
            return None;
        }
        secs_later(self.anchor, self.percent / self.rate)
    }

    /// When the reported value will next change.
    pub(crate) fn next_change(&self, now: Instant) -> Option<Instant> {
        if !self.draining || self.rate <= 0.0 {
            return None;
        }
        let cur = self.at(now);
        let next = cur.ceil() - 1.0;
        if next < 0.0 {
            return None;
        }
        secs_later(now, (cur - next) / self.rate)
    }
}

/// `now + secs` (plus a millisecond so the rounded value has really moved), or `None` when
/// that is not representable.
fn secs_later(now: Instant, secs: f64) -> Option<Instant> {
    let d = Duration::try_from_secs_f64(secs).ok()?;
    now.checked_add(d)?.checked_add(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ThermalConfig {
        ThermalConfig {
            baseline_c: 40.0,
            active_max_c: 50.0,
            heat_per_sec: 1.0,
            cool_per_sec: 0.5,
        }
    }

    #[test]
    fn heats_while_active_capped_then_cools_to_baseline() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = Thermal::new(cfg(), t0);
        assert_eq!(t.reported(t0 + s(100)), 40);
        t.set_active(t0, true);
        assert_eq!(t.reported(t0 + s(3)), 43);
        assert_eq!(t.reported(t0 + s(100)), 50);
        t.set_active(t0 + s(100), false);
        assert_eq!(t.reported(t0 + s(104)), 48);
        assert_eq!(t.reported(t0 + s(1000)), 40);
        assert_eq!(t.next_change(t0 + s(1000)), None);
    }

    #[test]
    fn overheat_holds_while_active_and_cools_when_idle() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = Thermal::new(cfg(), t0);
        t.set_active(t0, true);
        t.overheat(t0, 90.0, true);
        assert_eq!(t.reported(t0 + s(60)), 90);
        t.set_active(t0 + s(60), false);
        assert_eq!(t.reported(t0 + s(70)), 85);
        t.cool_down(t0 + s(70), false);
        assert_eq!(t.reported(t0 + s(70)), 40);
    }

    #[test]
    fn next_change_is_when_the_rounded_value_moves() {
        let t0 = Instant::now();
        let mut t = Thermal::new(cfg(), t0);
        t.set_active(t0, true);
        let next = t.next_change(t0).unwrap();
        assert_eq!(t.reported(next - Duration::from_millis(2)), 40);
        assert_eq!(t.reported(next), 41);
    }

    #[test]
    fn media_drains_only_while_recording_and_reports_full_time() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut m = Media::new(10.0, 1.0, t0);
        assert_eq!(m.reported(t0 + s(5)), 10);
        assert_eq!(m.full_at(), None);
        m.set_draining(t0, true);
        assert_eq!(m.reported(t0 + s(4)), 6);
        assert_eq!(m.full_at(), Some(t0 + s(10) + Duration::from_millis(1)));
        m.set_draining(t0 + s(4), false);
        assert_eq!(m.reported(t0 + s(100)), 6);
    }
}
