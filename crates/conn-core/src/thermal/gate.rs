//! What the thermal layer touches on a request: atomics only.
//!
//! The manager publishes each connection's allowed load here; the layer admits or
//! sheds against it and counts outcomes, which the manager folds into its window on
//! its own tick. No lock, no clock on the request path.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use helo_transport::Outcome;

/// Per-encoder counters shared by all its connections' layers.
#[derive(Debug)]
pub(crate) struct EncoderThermal {
    pub(crate) in_flight: AtomicUsize,
    pub(crate) max_in_flight: usize,
}

impl EncoderThermal {
    pub(crate) fn new(max_in_flight: usize) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            max_in_flight: max_in_flight.max(1),
        }
    }

    pub(crate) fn load(&self) -> f64 {
        let n = self.in_flight.load(Ordering::Acquire);
        (n as f64 * 100.0 / self.max_in_flight as f64).min(100.0)
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Refusal {
    /// The encoder's in-flight cap: `in_flight` of `cap`.
    Encoder { in_flight: usize, cap: usize },
    /// The connection's allowed load (`allowed` %): `in_flight` already.
    Connection { in_flight: usize, allowed: f64 },
}

/// Outcome counts since the connection's gate was made; only ever grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Totals {
    /// Requests that ended (answered or failed; not cancelled, not shed).
    pub(crate) requests: u64,
    /// Of those, errors ([`Outcome::is_error`]).
    pub(crate) errors: u64,
    /// Of those, signs of overload ([`Outcome::cuts_load`]).
    pub(crate) cuts: u64,
}

impl Totals {
    /// What happened since `earlier`.
    pub(crate) fn since(self, earlier: Totals) -> Totals {
        Totals {
            requests: self.requests.wrapping_sub(earlier.requests),
            errors: self.errors.wrapping_sub(earlier.errors),
            cuts: self.cuts.wrapping_sub(earlier.cuts),
        }
    }
}

/// One connection's admission state.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    in_flight: AtomicUsize,
    /// Requests the connection may hold at once, as last published.
    slots: AtomicUsize,
    /// The allowed load (f64 bits, percent) behind `slots`, for refusals' messages.
    allowed_bits: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    cuts: AtomicU64,
}

impl Gate {
    /// Publishes a new allowed load: `slots` requests at once (`allowed` %).
    pub(crate) fn publish(&self, allowed: f64, slots: usize) {
        self.allowed_bits
            .store(allowed.to_bits(), Ordering::Relaxed);
        self.slots.store(slots, Ordering::Release);
    }

    pub(crate) fn allowed(&self) -> f64 {
        f64::from_bits(self.allowed_bits.load(Ordering::Relaxed))
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Takes a slot on the encoder, then on the connection, or neither.
    pub(crate) fn try_acquire(&self, enc: &EncoderThermal) -> Result<(), Refusal> {
        let cap = enc.max_in_flight;
        enc.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .map_err(|in_flight| Refusal::Encoder { in_flight, cap })?;
        let slots = self.slots.load(Ordering::Acquire);
        let took = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < slots).then_some(n + 1)
            });
        if let Err(in_flight) = took {
            enc.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Connection {
                in_flight,
                allowed: self.allowed(),
            });
        }
        Ok(())
    }

    /// Gives back an admitted request's slots and counts how it ended; `None` when it
    /// was cancelled (not an outcome). Shed work (by a layer further in) says nothing
    /// about the connection and is not counted.
    pub(crate) fn release(&self, enc: &EncoderThermal, outcome: Option<Outcome>) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        enc.in_flight.fetch_sub(1, Ordering::AcqRel);
        let Some(outcome) = outcome.filter(|o| !o.is_shed()) else {
            return;
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        if outcome.is_error() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if outcome.cuts_load() {
            self.cuts.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn totals(&self) -> Totals {
        Totals {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            cuts: self.cuts.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_published_slots_and_the_encoder_cap() {
        let enc = EncoderThermal::new(3);
        let gate = Gate::default();
        assert_eq!(
            gate.try_acquire(&enc),
            Err(Refusal::Connection {
                in_flight: 0,
                allowed: 0.0
            }),
            "nothing published: nothing admitted"
        );
        assert_eq!(
            enc.in_flight.load(Ordering::Relaxed),
            0,
            "encoder slot given back"
        );
        gate.publish(50.0, 2);
        assert_eq!(gate.try_acquire(&enc), Ok(()));
        assert_eq!(gate.try_acquire(&enc), Ok(()));
        assert_eq!(
            gate.try_acquire(&enc),
            Err(Refusal::Connection {
                in_flight: 2,
                allowed: 50.0
            })
        );
        let other = Gate::default();
        other.publish(100.0, 4);
        assert_eq!(other.try_acquire(&enc), Ok(()));
        assert_eq!(
            other.try_acquire(&enc),
            Err(Refusal::Encoder {
                in_flight: 3,
                cap: 3
            })
        );
        gate.release(&enc, Some(Outcome::Success));
        assert_eq!(other.try_acquire(&enc), Ok(()));
    }

    #[test]
    fn outcomes_are_counted_by_kind() {
        let enc = EncoderThermal::new(16);
        let gate = Gate::default();
        gate.publish(100.0, 16);
        let outcomes = [
            Some(Outcome::Success),
            Some(Outcome::Unsupported),
            Some(Outcome::Rejected),
            Some(Outcome::Protocol),
            Some(Outcome::Timeout),
            Some(Outcome::Shed),
            None,
        ];
        for o in outcomes {
            gate.try_acquire(&enc).unwrap();
            gate.release(&enc, o);
        }
        assert_eq!(
            gate.totals(),
            Totals {
                requests: 5,
                errors: 2,
                cuts: 1
            }
        );
        assert_eq!((gate.in_flight(), enc.load()), (0, 0.0));
    }
}
