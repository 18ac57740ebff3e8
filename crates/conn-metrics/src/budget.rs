//! The request-budget family: requests a device's budget refused.

use std::fmt;

use prometheus::Registry;

use crate::series::IntCounter;

use crate::{
    error::MetricsError,
    family::{self, EncoderSeries, Family},
    registry::HeloMetrics,
};

pub(crate) struct BudgetFamilies {
    refused: Family<IntCounter, 0>,
}

impl BudgetFamilies {
    pub(crate) fn register(registry: &Registry) -> Result<Self, MetricsError> {
        Ok(Self {
            refused: family::counter(
                registry,
                "helo_request_budget_refused_total",
                "Requests not sent because the encoder's request budget was used up: something on this side asks the device more than it should.",
                [],
            )?,
        })
    }

    pub(crate) fn all(&self) -> [&dyn EncoderSeries; 1] {
        [&self.refused]
    }
}

/// The request budget: `helo_request_budget_refused_total{encoder_id}`.
///
/// The count lives in the encoder's `helo_transport::Device`
/// (`Device::budget_refused`), where every source of requests meets; the owner of
/// the device copies it here with [`record_refused_total`](Self::record_refused_total).
#[derive(Clone, Debug)]
pub struct BudgetMetrics {
    metrics: HeloMetrics,
}

impl BudgetMetrics {
    pub(crate) fn new(metrics: HeloMetrics) -> Self {
        Self { metrics }
    }

    /// The metrics this handle belongs to.
    pub fn metrics(&self) -> &HeloMetrics {
        &self.metrics
    }

    /// `helo_request_budget_refused_total{encoder_id}`, created at 0 if it is not
    /// there yet (so an alert on its increase sees the encoder from the start).
    pub fn refused(&self, encoder: impl fmt::Display) -> IntCounter {
        self.metrics
            .inner()
            .budget
            .refused
            .get(&encoder.to_string(), [])
    }

    /// Brings the counter up to `total`, the device's own count of refusals (a total
    /// below the counter, from a device built anew, adds nothing). Creates the series
    /// at 0 when it is new.
    pub fn record_refused_total(&self, encoder: impl fmt::Display, total: u64) {
        let counter = self.refused(encoder);
        let delta = total.saturating_sub(counter.get());
        if delta > 0 {
            counter.inc_by(delta);
        }
    }
}
