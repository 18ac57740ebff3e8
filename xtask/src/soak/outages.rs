//! Off-air spells: from the samples, each time an encoder's expected stream or
//! recording was seen inactive until it was seen active again, and the fault that
//! most likely caused it. Sample-granular: a spell seen in one sample only lasted
//! between a moment and two sample periods.

use std::collections::BTreeMap;

use super::{
    report::FaultRecord,
    sample::Sample,
    schedule::{Kind, Step},
};

/// One spell off air.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outage {
    /// The encoder (1-based).
    pub(crate) k: usize,
    /// The first sample that saw it off air.
    pub(crate) from_s: f64,
    /// The first sample that saw it back; `None` if it never was.
    pub(crate) to_s: Option<f64>,
    /// The last fault started on it at or before `from_s`, and when.
    pub(crate) cause: Option<(Kind, f64)>,
}

impl Outage {
    /// Seconds between the first sample off air and the first back (or `end_s`).
    pub(crate) fn seen_off_s(&self, end_s: f64) -> f64 {
        self.to_s.unwrap_or(end_s) - self.from_s
    }

    /// The cause's name, or `start-up` for a spell seen before any fault on it.
    pub(crate) fn cause_name(&self) -> &'static str {
        self.cause.map_or("start-up", |(kind, _)| kind.as_str())
    }
}

/// Every spell off air in `samples` (those whose fleet read failed are skipped), with
/// its cause from `faults`.
pub(crate) fn outages(samples: &[Sample], faults: &[FaultRecord]) -> Vec<Outage> {
    let mut open: BTreeMap<usize, Outage> = BTreeMap::new();
    let mut done = Vec::new();
    for s in samples {
        let Some(fleet) = &s.fleet else {
            continue;
        };
        for &k in &fleet.off_air {
            open.entry(k).or_insert_with(|| Outage {
                k,
                from_s: s.t_s,
                to_s: None,
                cause: cause(faults, k, s.t_s),
            });
        }
        let back: Vec<usize> = open
            .keys()
            .copied()
            .filter(|k| fleet.off_air.binary_search(k).is_err())
            .collect();
        for k in back {
            if let Some(mut o) = open.remove(&k) {
                o.to_s = Some(s.t_s);
                done.push(o);
            }
        }
    }
    done.extend(open.into_values());
    done.sort_by(|a, b| a.from_s.total_cmp(&b.from_s).then(a.k.cmp(&b.k)));
    done
}

fn cause(faults: &[FaultRecord], k: usize, at: f64) -> Option<(Kind, f64)> {
    faults
        .iter()
        .filter(|f| f.event.encoder == k && f.event.step == Step::Start && f.t_s <= at)
        .max_by(|a, b| a.t_s.total_cmp(&b.t_s))
        .map(|f| (f.event.kind, f.t_s))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::soak::{sample::FleetStatus, schedule::Event};

    fn sample(t_s: f64, off_air: &[usize]) -> Sample {
        Sample {
            t_s,
            fleet: Some(FleetStatus {
                off_air: off_air.to_vec(),
                ..FleetStatus::default()
            }),
            ..Sample::default()
        }
    }

    fn fault(t_s: f64, k: usize, kind: Kind, step: Step) -> FaultRecord {
        FaultRecord {
            t_s,
            event: Event {
                at: Duration::from_secs_f64(t_s),
                encoder: k,
                kind,
                step,
                patch: String::new(),
            },
            error: None,
        }
    }

    #[test]
    fn spells_open_and_close_with_their_cause() {
        let samples = [
            sample(0.0, &[1, 2]),
            sample(10.0, &[]),
            sample(20.0, &[3]),
            Sample {
                t_s: 25.0,
                ..Sample::default()
            },
            sample(30.0, &[3, 4]),
            sample(40.0, &[4]),
        ];
        let faults = [
            fault(12.0, 3, Kind::Hang, Step::Start),
            fault(15.0, 3, Kind::Reboot, Step::Start),
            fault(19.0, 3, Kind::Hang, Step::End),
            fault(29.0, 4, Kind::StreamFailure, Step::Start),
            fault(35.0, 4, Kind::Reboot, Step::Start),
        ];
        let got = outages(&samples, &faults);
        assert_eq!(
            got,
            vec![
                Outage {
                    k: 1,
                    from_s: 0.0,
                    to_s: Some(10.0),
                    cause: None
                },
                Outage {
                    k: 2,
                    from_s: 0.0,
                    to_s: Some(10.0),
                    cause: None
                },
                Outage {
                    k: 3,
                    from_s: 20.0,
                    to_s: Some(40.0),
                    cause: Some((Kind::Reboot, 15.0))
                },
                Outage {
                    k: 4,
                    from_s: 30.0,
                    to_s: None,
                    cause: Some((Kind::StreamFailure, 29.0))
                },
            ]
        );
        assert_eq!(got[0].cause_name(), "start-up");
        assert_eq!(got[2].seen_off_s(50.0), 20.0);
        assert_eq!(got[3].seen_off_s(50.0), 20.0, "still off at the end");
    }
}
