//! How a request ended: one classification for every layer (thermal, health,
//! metrics), and the three caller-facing classes derived from it.

use std::{error::Error as StdError, fmt, io};

use crate::{error::HeloError, overload::Overloaded};

/// How one request ended, as every layer counts it.
///
/// [`Outcome::of`] is the one place that reads an error: the thermal layer heats a
/// connection only on [`is_error`](Self::is_error) and cuts its load only on
/// [`cuts_load`](Self::cuts_load), passive health counts
/// [`is_error`](Self::is_error) against the device, and the `outcome` label of
/// `helo_requests_total` is [`as_str`](Self::as_str). An answer the device gave
/// (even "unsupported" or "rejected") is never heat, and work we shed ourselves is
/// never held against the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// `ok`: the device answered as asked.
    Success,
    /// `unsupported`: the device answered that it lacks the parameter (firmware differs
    /// between models); an answer, not a fault.
    Unsupported,
    /// `rejected`: the device answered `400` (bad value, read-only parameter, expired
    /// event id); the caller's mistake, not the device's.
    Rejected,
    /// `shed`: refused on this side before it reached the device: by a load-shedding
    /// layer, or because the device's request budget was used up
    /// ([`HeloError::BudgetExhausted`]).
    Shed,
    /// `queue_timeout`: waited too long for its turn on the connection; never sent.
    QueueTimeout,
    /// `timeout`: the device did not answer in its turn.
    Timeout,
    /// `connection`: the device could not be reached, or the connection broke.
    Connection,
    /// `unavailable`: the device answered `503` (rebooting or busy).
    Unavailable,
    /// `auth`: logging in failed.
    Auth,
    /// `protocol`: the answer broke the protocol (malformed, too large, unexpected
    /// HTTP status).
    Protocol,
    /// `other`: an error nothing here recognises.
    Other,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Self; 11] = [
        Self::Success,
        Self::Unsupported,
        Self::Rejected,
        Self::Shed,
        Self::QueueTimeout,
        Self::Timeout,
        Self::Connection,
        Self::Unavailable,
        Self::Auth,
        Self::Protocol,
        Self::Other,
    ];

    /// The outcome of a request that failed with `err`, any error a tower stack
    /// around a connection gives.
    ///
    /// Walks the `source()` chain, outermost first: a [`HeloError`] gives its own
    /// outcome (a used-up request budget is [`Shed`](Self::Shed)); an [`Overloaded`] (ours) or tower's `load_shed` `Overloaded` is
    /// [`Shed`](Self::Shed); tower's or tokio's `Elapsed` is
    /// [`Timeout`](Self::Timeout); an `io::Error` is a timeout or a connection error
    /// by its kind; anything else is [`Other`](Self::Other).
    pub fn of(err: &(dyn StdError + 'static)) -> Self {
        let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(h) = e.downcast_ref::<HeloError>() {
                return h.outcome();
            }
            if e.is::<Overloaded>() || e.is::<tower::load_shed::error::Overloaded>() {
                return Self::Shed;
            }
            if e.is::<tower::timeout::error::Elapsed>() || e.is::<tokio::time::error::Elapsed>() {
                return Self::Timeout;
            }
            if let Some(io) = e.downcast_ref::<io::Error>() {
                return if io.kind() == io::ErrorKind::TimedOut {
                    Self::Timeout
                } else {
                    Self::Connection
                };
            }
            cur = e.source();
        }
        Self::Other
    }

    /// The label value: `ok`, `unsupported`, `rejected`, `shed`, `queue_timeout`,
    /// `timeout`, `connection`, `unavailable`, `auth`, `protocol` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "ok",
            Self::Unsupported => "unsupported",
            Self::Rejected => "rejected",
            Self::Shed => "shed",
            Self::QueueTimeout => "queue_timeout",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Unavailable => "unavailable",
            Self::Auth => "auth",
            Self::Protocol => "protocol",
            Self::Other => "other",
        }
    }

    /// Position in [`ALL`](Self::ALL), for arrays of per-outcome handles.
    pub fn index(self) -> usize {
        match self {
            Self::Success => 0,
            Self::Unsupported => 1,
            Self::Rejected => 2,
            Self::Shed => 3,
            Self::QueueTimeout => 4,
            Self::Timeout => 5,
            Self::Connection => 6,
            Self::Unavailable => 7,
            Self::Auth => 8,
            Self::Protocol => 9,
            Self::Other => 10,
        }
    }

    /// The device answered as asked.
    pub fn is_success(self) -> bool {
        self == Self::Success
    }

    /// The device answered as the protocol says, even if the answer was "unsupported"
    /// or "rejected": the connection and the device work.
    pub fn is_answer(self) -> bool {
        matches!(self, Self::Success | Self::Unsupported | Self::Rejected)
    }

    /// Refused by us before it reached the device: says nothing about the device.
    pub fn is_shed(self) -> bool {
        self == Self::Shed
    }

    /// Counts against the connection and the device (error rate, heat): neither an
    /// answer nor shed.
    pub fn is_error(self) -> bool {
        !self.is_answer() && !self.is_shed()
    }

    /// A sign that the connection carries more than the device turns over in time:
    /// a timeout (in the device's turn or in the queue), a broken connection, or a
    /// busy device (`503`). Load-management cuts the connection's allowed load on it.
    pub fn cuts_load(self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::QueueTimeout | Self::Connection | Self::Unavailable
        )
    }

    /// The caller-facing class of a failed request; `None` for [`Success`](Self::Success).
    pub fn error_class(self) -> Option<ErrorClass> {
        match self {
            Self::Success => None,
            Self::Timeout | Self::QueueTimeout => Some(ErrorClass::Timeout),
            Self::Connection | Self::Unavailable => Some(ErrorClass::Connection),
            _ => Some(ErrorClass::Other),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of an error, as callers handle them: the same three branches as the
/// original Python monitor's `except ConnectionError / TimeoutError / Exception` chain.
/// Derived from [`Outcome`] ([`Outcome::error_class`]); kept for the health status,
/// which reports one of these three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The device could not be reached, the connection broke, or the device is
    /// unavailable (`503`).
    Connection,
    /// The device did not answer in time, or the request timed out waiting its turn.
    Timeout,
    /// Anything else: the device answered, but not with what was asked for.
    Other,
}

impl ErrorClass {
    /// Classifies any error that may come out of a tower stack around a connection:
    /// `Outcome::of(err)`'s class.
    pub fn of(err: &(dyn StdError + 'static)) -> Self {
        Outcome::of(err).error_class().unwrap_or(Self::Other)
    }

    /// A short lowercase label (`connection`, `timeout`, `other`), for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        config::DeviceName,
        connection::ConnectionId,
        error::{AuthFailure, BoxError, TimeoutPhase},
    };

    fn dev() -> DeviceName {
        DeviceName::from("enc-1")
    }

    fn req() -> String {
        "get eParamID_X".into()
    }

    /// One of every `HeloError` variant, with the outcome it must have.
    fn every_variant() -> Vec<(HeloError, Outcome)> {
        vec![
            (
                HeloError::Connect {
                    device: dev(),
                    request: req(),
                    source: "refused".into(),
                },
                Outcome::Connection,
            ),
            (
                HeloError::Timeout {
                    device: dev(),
                    request: req(),
                    phase: TimeoutPhase::Response,
                    after: Duration::from_secs(2),
                },
                Outcome::Timeout,
            ),
            (
                HeloError::QueueTimeout {
                    device: dev(),
                    request: req(),
                    waited: Duration::from_secs(1),
                },
                Outcome::QueueTimeout,
            ),
            (
                HeloError::Auth {
                    device: dev(),
                    request: req(),
                    failure: AuthFailure::SessionExpired,
                },
                Outcome::Auth,
            ),
            (
                HeloError::Rejected {
                    device: dev(),
                    request: req(),
                    message: "read only".into(),
                },
                Outcome::Rejected,
            ),
            (
                HeloError::UnsupportedParam {
                    device: dev(),
                    request: req(),
                    param: "eParamID_X".into(),
                },
                Outcome::Unsupported,
            ),
            (
                HeloError::Unavailable {
                    device: dev(),
                    request: req(),
                    retry_after: None,
                },
                Outcome::Unavailable,
            ),
            (
                HeloError::Status {
                    device: dev(),
                    request: req(),
                    status: 500,
                },
                Outcome::Protocol,
            ),
            (
                HeloError::Protocol {
                    device: dev(),
                    request: req(),
                    detail: "not json".into(),
                },
                Outcome::Protocol,
            ),
            (
                HeloError::BodyTooLarge {
                    device: dev(),
                    request: req(),
                    limit: 64,
                },
                Outcome::Protocol,
            ),
            (
                HeloError::BudgetExhausted {
                    device: dev(),
                    request: req(),
                    per_minute: 600,
                    retry_in: Duration::from_millis(100),
                },
                Outcome::Shed,
            ),
            (
                HeloError::InvalidConfig {
                    device: dev(),
                    detail: "zero timeout".into(),
                },
                Outcome::Other,
            ),
        ]
    }

    #[derive(Debug)]
    struct Wrapped(BoxError);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn every_helo_error_has_its_outcome_bare_boxed_and_wrapped() {
        for (err, want) in every_variant() {
            assert_eq!(err.outcome(), want, "{err}");
            let boxed: BoxError = Box::new(err);
            assert_eq!(Outcome::of(boxed.as_ref()), want, "boxed {boxed}");
            let wrapped = Wrapped(boxed);
            assert_eq!(Outcome::of(&wrapped), want, "wrapped");
        }
    }

    #[test]
    fn boxed_tower_and_shed_errors_are_classified_by_downcast() {
        let check = |err: BoxError, want: Outcome| {
            assert_eq!(Outcome::of(err.as_ref()), want, "{err}");
        };
        check(
            Box::new(tower::timeout::error::Elapsed::new()),
            Outcome::Timeout,
        );
        check(
            Box::new(tower::load_shed::error::Overloaded::new()),
            Outcome::Shed,
        );
        check(
            Box::new(Overloaded::not_ready(
                dev(),
                ConnectionId::from_raw(1),
                "get eParamID_X",
            )),
            Outcome::Shed,
        );
        check(
            Box::new(Wrapped(Box::new(Overloaded::connection(
                dev(),
                ConnectionId::from_raw(1),
                "get eParamID_X",
                4,
                50.0,
            )))),
            Outcome::Shed,
        );
        check(
            Box::new(io::Error::from(io::ErrorKind::TimedOut)),
            Outcome::Timeout,
        );
        check(
            Box::new(io::Error::from(io::ErrorKind::ConnectionReset)),
            Outcome::Connection,
        );
        check("something else".into(), Outcome::Other);
    }

    #[tokio::test]
    async fn tokio_elapsed_is_a_timeout() {
        let elapsed = tokio::time::timeout(Duration::ZERO, std::future::pending::<()>())
            .await
            .unwrap_err();
        assert_eq!(Outcome::of(&elapsed), Outcome::Timeout);
    }

    #[test]
    fn answers_shed_and_errors_partition_the_outcomes() {
        for o in Outcome::ALL {
            let kinds = [o.is_answer(), o.is_shed(), o.is_error()];
            assert_eq!(kinds.iter().filter(|k| **k).count(), 1, "{o}");
            assert!(!o.cuts_load() || o.is_error(), "{o}: only errors cut load");
        }
        let answers: Vec<_> = Outcome::ALL.into_iter().filter(|o| o.is_answer()).collect();
        assert_eq!(
            answers,
            [Outcome::Success, Outcome::Unsupported, Outcome::Rejected]
        );
        let cuts: Vec<_> = Outcome::ALL.into_iter().filter(|o| o.cuts_load()).collect();
        assert_eq!(
            cuts,
            [
                Outcome::QueueTimeout,
                Outcome::Timeout,
                Outcome::Connection,
                Outcome::Unavailable
            ]
        );
    }

    #[test]
    fn labels_and_indexes_follow_all() {
        for (i, o) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(o.index(), i);
            assert_eq!(o.to_string(), o.as_str());
        }
        let mut labels: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Outcome::ALL.len());
        assert_eq!(Outcome::Shed.as_str(), "shed");
    }

    #[test]
    fn error_classes_derive_from_outcomes() {
        let cases = [
            (Outcome::Success, None),
            (Outcome::Timeout, Some(ErrorClass::Timeout)),
            (Outcome::QueueTimeout, Some(ErrorClass::Timeout)),
            (Outcome::Connection, Some(ErrorClass::Connection)),
            (Outcome::Unavailable, Some(ErrorClass::Connection)),
            (Outcome::Unsupported, Some(ErrorClass::Other)),
            (Outcome::Rejected, Some(ErrorClass::Other)),
            (Outcome::Shed, Some(ErrorClass::Other)),
            (Outcome::Protocol, Some(ErrorClass::Other)),
        ];
        for (o, class) in cases {
            assert_eq!(o.error_class(), class, "{o}");
        }
        for (err, want) in every_variant() {
            assert_eq!(Some(err.class()), want.error_class(), "{err}");
            let boxed: BoxError = Box::new(err);
            assert_eq!(Some(ErrorClass::of(boxed.as_ref())), want.error_class());
        }
        let other: BoxError = "something".into();
        assert_eq!(ErrorClass::of(other.as_ref()), ErrorClass::Other);
        assert_eq!(ErrorClass::Timeout.as_str(), "timeout");
    }
}
