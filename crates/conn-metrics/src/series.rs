//! The handles a per-encoder counter or gauge series is recorded through: one shared
//! atomic each.
//!
//! Why not prometheus' `IntCounter` and friends: each of those carries its own copy of
//! the family's description (name, help text, label names) and allocates it anew for
//! every series, about 260 bytes a series, which at 17 series an encoder was the largest
//! single cost of supervising one. Here the description lives once in the family
//! ([`Family`](crate::family::Family)), which also adds the labels when it is gathered,
//! so a series is its value and nothing else. The methods are prometheus' names, so a
//! caller reads the same either way.

use std::sync::{
    atomic::{AtomicI64, AtomicU64, Ordering},
    Arc,
};

use prometheus::{
    core::{Atomic, AtomicF64, Metric},
    proto,
};

/// A monotonic counter series (`…_total`). Clones record into the same series.
#[derive(Debug, Clone, Default)]
pub struct IntCounter(Arc<AtomicU64>);

impl IntCounter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `v`.
    pub fn inc_by(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An integer gauge series. Clones record into the same series.
#[derive(Debug, Clone, Default)]
pub struct IntGauge(Arc<AtomicI64>);

impl IntGauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds `v` (which may be negative).
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A floating-point gauge series. Clones record into the same series.
#[derive(Debug, Clone)]
pub struct Gauge(Arc<AtomicF64>);

impl Default for Gauge {
    fn default() -> Self {
        Self(Arc::new(AtomicF64::new(0.0)))
    }
}

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.set(v);
    }

    /// Adds `v` (which may be negative).
    pub fn add(&self, v: f64) {
        self.0.inc_by(v);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

fn counter_metric(v: f64) -> proto::Metric {
    let mut m = proto::Metric::default();
    let mut c = proto::Counter::default();
    c.set_value(v);
    m.set_counter(c);
    m
}

fn gauge_metric(v: f64) -> proto::Metric {
    let mut m = proto::Metric::default();
    let mut g = proto::Gauge::default();
    g.set_value(v);
    m.set_gauge(g);
    m
}

// `Metric` is how a family turns a series into its exposition; the labels are the
// family's to add. Counts above 2^53 lose precision as prometheus' own do.
impl Metric for IntCounter {
    fn metric(&self) -> proto::Metric {
        counter_metric(self.get() as f64)
    }
}

impl Metric for IntGauge {
    fn metric(&self) -> proto::Metric {
        gauge_metric(self.get() as f64)
    }
}

impl Metric for Gauge {
    fn metric(&self) -> proto::Metric {
        gauge_metric(self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_value() {
        let c = IntCounter::default();
        let d = c.clone();
        c.inc();
        d.inc_by(4);
        assert_eq!(c.get(), 5);

        let g = IntGauge::default();
        g.set(3);
        g.clone().dec();
        g.add(-4);
        g.inc();
        assert_eq!(g.get(), -1);

        let f = Gauge::default();
        f.set(95.5);
        f.clone().add(-0.5);
        assert_eq!(f.get(), 95.0);
    }

    #[test]
    fn exposition_values_are_counter_and_gauge() {
        let c = IntCounter::default();
        c.inc_by(7);
        assert_eq!(c.metric().get_counter().get_value(), 7.0);
        let g = IntGauge::default();
        g.set(-2);
        assert_eq!(g.metric().get_gauge().get_value(), -2.0);
        let f = Gauge::default();
        f.set(1.25);
        assert_eq!(f.metric().get_gauge().get_value(), 1.25);
    }

    #[test]
    fn a_series_is_one_pointer() {
        assert_eq!(size_of::<IntCounter>(), size_of::<usize>());
        assert_eq!(size_of::<Gauge>(), size_of::<usize>());
    }
}
