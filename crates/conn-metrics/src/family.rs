//! One metric family keyed by `encoder_id` first, with exact per-encoder removal.
//!
//! Why not prometheus' own `MetricVec`: it finds a series by hashing the label values
//! concatenated *without a separator*, so `{encoder_id="enc-1",connection_id="23"}`
//! and `{encoder_id="enc-12",connection_id="3"}` are the same series to it (and
//! removing one removes the other). Encoder names and connection numbers make such
//! pairs common, so this collector keys series by the label values themselves:
//! encoder first (so an encoder's series are found, and removed, in one step), then
//! the family's other labels, compared value by value.
//!
//! Label arity is part of the type (`R` labels after `encoder_id`), so a wrong label
//! count cannot compile, and no label value is ever rejected.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use prometheus::{
    core::{Collector, Desc, Metric},
    proto::{LabelPair, MetricFamily, MetricType},
    Histogram, HistogramOpts, Registry,
};

use smallvec::SmallVec;

use crate::{
    error::MetricsError,
    series::{Gauge, IntCounter, IntGauge},
};

/// The label every per-encoder family carries first.
pub(crate) const ENCODER_ID: &str = "encoder_id";

/// Whether a family's series are kept per encoder (labelled `encoder_id` first) or
/// once for the whole fleet (no `encoder_id`; every encoder records into the same
/// series, so an encoder leaving removes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Encoder,
    Fleet,
}

/// The key fleet-wide series are kept under (no encoder id is empty: ids are
/// validated to 1–64 characters, and fleet-wide families never look encoders up).
const FLEET: &str = "";

/// What [`HeloMetrics`](crate::HeloMetrics) needs to clean up after an encoder.
pub(crate) trait EncoderSeries: Send + Sync {
    /// The family's name.
    fn name(&self) -> &'static str;
    /// Drops every series of `encoder`; returns how many there were.
    fn remove_encoder(&self, encoder: &str) -> usize;
}

/// An encoder's series of one family. Most families have one series an encoder (no
/// labels but `encoder_id`), held inline: a list of its own for each of them was a
/// fifth of what an encoder's series cost.
type Series<M, const R: usize> = SmallVec<[([Box<str>; R], M); 1]>;
type Make<M> = Box<dyn Fn() -> prometheus::Result<M> + Send + Sync>;

/// A family of `M` series labelled `encoder_id` plus `R` more labels.
pub(crate) struct Family<M, const R: usize> {
    core: Arc<Core<M, R>>,
}

struct Core<M, const R: usize> {
    name: &'static str,
    scope: Scope,
    help: &'static str,
    labels: [&'static str; R],
    kind: MetricType,
    desc: Desc,
    make: Make<M>,
    /// Handed out if creating a series ever fails (it cannot: the same constructor
    /// succeeded at registration). Never exported.
    detached: M,
    /// encoder → (other label values, series). The inner lists are short (a pool's
    /// connections, operations × outcomes), so a scan beats hashing them.
    series: RwLock<HashMap<Box<str>, Series<M, R>>>,
}

impl<M, const R: usize> Clone for Family<M, R> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
        }
    }
}

impl<M: Metric + 'static, const R: usize> Family<M, R> {
    /// Creates the family and registers it with `registry`.
    pub(crate) fn register(
        registry: &Registry,
        name: &'static str,
        help: &'static str,
        kind: MetricType,
        (scope, labels): (Scope, [&'static str; R]),
        make: impl Fn() -> prometheus::Result<M> + Send + Sync + 'static,
    ) -> Result<Self, MetricsError> {
        let err = |source| MetricsError::Register {
            family: name,
            source,
        };
        let detached = make().map_err(err)?;
        let variable = (scope == Scope::Encoder)
            .then_some(ENCODER_ID)
            .into_iter()
            .chain(labels)
            .map(str::to_owned)
            .collect();
        let desc =
            Desc::new(name.to_owned(), help.to_owned(), variable, HashMap::new()).map_err(err)?;
        let family = Self {
            core: Arc::new(Core {
                name,
                scope,
                help,
                labels,
                kind,
                desc,
                make: Box::new(make),
                detached,
                series: RwLock::new(HashMap::new()),
            }),
        };
        registry.register(Box::new(family.clone())).map_err(err)?;
        Ok(family)
    }

    /// The series for `encoder` and the other label values, created on first use (a
    /// fleet-wide family answers the fleet's series, whatever `encoder` is).
    pub(crate) fn get(&self, encoder: &str, rest: [&str; R]) -> M {
        let encoder = match self.core.scope {
            Scope::Encoder => encoder,
            Scope::Fleet => FLEET,
        };
        if let Some(found) = self.read().get(encoder).and_then(|list| find(list, &rest)) {
            return found.clone();
        }
        let mut series = self.write();
        let list = series.entry(Box::from(encoder)).or_default();
        if let Some(found) = find(list, &rest) {
            return found.clone();
        }
        match (self.core.make)() {
            Ok(metric) => {
                list.push((rest.map(Box::from), metric.clone()));
                metric
            }
            Err(_) => self.core.detached.clone(),
        }
    }

    /// Drops the series of `encoder` whose other label values match `pred`.
    pub(crate) fn remove_if(&self, encoder: &str, pred: impl Fn(&[Box<str>; R]) -> bool) -> usize {
        let mut series = self.write();
        let Some(list) = series.get_mut(encoder) else {
            return 0;
        };
        let before = list.len();
        list.retain(|(values, _)| !pred(values));
        let removed = before - list.len();
        if list.is_empty() {
            series.remove(encoder);
        }
        removed
    }

    /// How many series the family holds, over all encoders.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.read().values().map(|list| list.len()).sum()
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<Box<str>, Series<M, R>>> {
        // Nothing panics while the lock is held, but a poisoned map is still whole.
        self.core
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Box<str>, Series<M, R>>> {
        self.core
            .series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn label_pairs(&self, encoder: &str, values: &[Box<str>; R]) -> Vec<LabelPair> {
        (self.core.scope == Scope::Encoder)
            .then_some((ENCODER_ID, encoder))
            .into_iter()
            .chain(
                self.core
                    .labels
                    .iter()
                    .copied()
                    .zip(values.iter().map(|v| &**v)),
            )
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name(name.to_owned());
                pair.set_value(value.to_owned());
                pair
            })
            .collect()
    }
}

/// A gauge family.
pub(crate) fn gauge<const R: usize>(
    registry: &Registry,
    name: &'static str,
    help: &'static str,
    labels: [&'static str; R],
) -> Result<Family<Gauge, R>, MetricsError> {
    Family::register(
        registry,
        name,
        help,
        MetricType::GAUGE,
        (Scope::Encoder, labels),
        || Ok(Gauge::default()),
    )
}

/// An integer gauge family.
pub(crate) fn int_gauge<const R: usize>(
    registry: &Registry,
    name: &'static str,
    help: &'static str,
    labels: [&'static str; R],
) -> Result<Family<IntGauge, R>, MetricsError> {
    Family::register(
        registry,
        name,
        help,
        MetricType::GAUGE,
        (Scope::Encoder, labels),
        || Ok(IntGauge::default()),
    )
}

/// A counter family (`name` ends in `_total`).
pub(crate) fn counter<const R: usize>(
    registry: &Registry,
    name: &'static str,
    help: &'static str,
    labels: [&'static str; R],
) -> Result<Family<IntCounter, R>, MetricsError> {
    Family::register(
        registry,
        name,
        help,
        MetricType::COUNTER,
        (Scope::Encoder, labels),
        || Ok(IntCounter::default()),
    )
}

/// A histogram family with fixed `buckets` (upper bounds in seconds), per encoder or
/// fleet-wide (`scope`).
pub(crate) fn histogram<const R: usize>(
    registry: &Registry,
    name: &'static str,
    help: &'static str,
    labels: (Scope, [&'static str; R]),
    buckets: &'static [f64],
) -> Result<Family<Histogram, R>, MetricsError> {
    Family::register(
        registry,
        name,
        help,
        MetricType::HISTOGRAM,
        labels,
        move || Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())),
    )
}

/// A value for a gauge documented as 0–100, or `None` when it is not a number.
pub(crate) fn percent(value: f64) -> Option<f64> {
    value.is_finite().then(|| value.clamp(0.0, 100.0))
}

fn find<'a, M, const R: usize>(list: &'a Series<M, R>, rest: &[&str; R]) -> Option<&'a M> {
    list.iter()
        .find(|(values, _)| values.iter().zip(rest).all(|(a, b)| **a == **b))
        .map(|(_, metric)| metric)
}

impl<M: Metric + 'static, const R: usize> Collector for Family<M, R> {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.core.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let series = self.read();
        let metrics: Vec<_> = series
            .iter()
            .flat_map(|(encoder, list)| {
                list.iter().map(move |(values, metric)| {
                    let mut m = metric.metric();
                    m.set_label(self.label_pairs(encoder, values));
                    m
                })
            })
            .collect();
        if metrics.is_empty() {
            return Vec::new();
        }
        let mut family = MetricFamily::default();
        family.set_name(self.core.name.to_owned());
        family.set_help(self.core.help.to_owned());
        family.set_field_type(self.core.kind);
        family.set_metric(metrics);
        vec![family]
    }
}

impl<M: Metric + 'static, const R: usize> EncoderSeries for Family<M, R> {
    fn name(&self) -> &'static str {
        self.core.name
    }

    fn remove_encoder(&self, encoder: &str) -> usize {
        if self.core.scope == Scope::Fleet {
            return 0;
        }
        self.write().remove(encoder).map_or(0, |list| list.len())
    }
}

impl<M, const R: usize> fmt::Debug for Family<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.core.name)
            .field("labels", &self.core.labels)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{Encoder, TextEncoder};

    use super::*;

    fn things(registry: &Registry) -> Family<IntCounter, 1> {
        counter(registry, "test_things_total", "Things.", ["connection_id"]).unwrap()
    }

    fn text(registry: &Registry) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn values_that_concatenate_alike_stay_distinct() {
        let registry = Registry::new();
        let family = things(&registry);
        family.get("enc-1", ["23"]).inc_by(10);
        family.get("enc-12", ["3"]).inc_by(20);
        let text = text(&registry);
        assert!(
            text.contains(r#"test_things_total{encoder_id="enc-1",connection_id="23"} 10"#),
            "{text}"
        );
        assert!(
            text.contains(r#"test_things_total{encoder_id="enc-12",connection_id="3"} 20"#),
            "{text}"
        );

        assert_eq!(family.remove_encoder("enc-12"), 1);
        assert_eq!(family.get("enc-1", ["23"]).get(), 10);
        assert_eq!(family.len(), 1);
    }

    #[test]
    fn the_same_labels_give_the_same_series() {
        let family = things(&Registry::new());
        family.get("enc", ["1"]).inc();
        family.get("enc", ["1"]).inc();
        assert_eq!(family.get("enc", ["1"]).get(), 2);
        assert_eq!(family.len(), 1);
    }

    #[test]
    fn remove_if_drops_only_matching_series_and_empty_encoders() {
        let family = things(&Registry::new());
        family.get("enc", ["1"]).inc();
        family.get("enc", ["2"]).inc();
        assert_eq!(family.remove_if("enc", |v| &*v[0] == "1"), 1);
        assert_eq!(family.len(), 1);
        assert_eq!(family.remove_if("enc", |v| &*v[0] == "2"), 1);
        assert_eq!(family.remove_if("enc", |_| true), 0);
        assert!(family.read().is_empty());
    }

    #[test]
    fn a_second_family_of_the_same_name_is_refused() {
        let registry = Registry::new();
        let _first = things(&registry);
        let err =
            counter(&registry, "test_things_total", "Things.", ["connection_id"]).unwrap_err();
        assert!(err.is_register());
        assert_eq!(err.family(), "test_things_total");
    }

    #[test]
    fn bad_histogram_buckets_are_an_error_not_a_panic() {
        let err = histogram(
            &Registry::new(),
            "test_wait_seconds",
            "Waits.",
            (Scope::Encoder, []),
            &[2.0, 1.0],
        )
        .unwrap_err();
        assert!(err.is_register());
    }

    #[test]
    fn percent_clamps_and_rejects_non_numbers() {
        assert_eq!(percent(95.5), Some(95.5));
        assert_eq!(percent(140.0), Some(100.0));
        assert_eq!(percent(-3.0), Some(0.0));
        assert_eq!(percent(f64::NAN), None);
        assert_eq!(percent(f64::INFINITY), None);
    }

    #[test]
    fn an_empty_family_is_not_exported() {
        let registry = Registry::new();
        let family = things(&registry);
        assert_eq!(text(&registry), "");
        family.get("enc", ["1"]);
        assert!(text(&registry).contains("# HELP test_things_total Things."));
    }
}
