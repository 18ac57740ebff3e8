//! The fault schedule: which fault, on which encoder, when — a pure function of the
//! seed, so a soak that found something can be run again with the same faults.

use std::time::Duration;

/// What an encoder is expected to do, as the supervisor's configuration says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Role {
    pub(crate) streaming: bool,
    pub(crate) recording: bool,
}

impl Role {
    /// Encoder `k` (1-based): most stream, every tenth streams and records, and every
    /// tenth (offset by five) is only observed.
    pub(crate) fn of(k: usize) -> Self {
        match k % 10 {
            0 => Self {
                streaming: true,
                recording: true,
            },
            5 => Self {
                streaming: false,
                recording: false,
            },
            _ => Self {
                streaming: true,
                recording: false,
            },
        }
    }
}

/// The faults a soak injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// The device reboots: unreachable for its downtime, then back with everything idle.
    Reboot,
    /// Every login session ends; the next request must log in again.
    ExpireSessions,
    /// Requests are read and never answered, for a while.
    Hang,
    /// Connections are reset as soon as a request arrives, for a while.
    Refuse,
    /// The device stops listening for a while (connections refused).
    Unreachable,
    /// The running stream fails (`eRRSFailingInStream`).
    StreamFailure,
    /// The running stream fails and every start fails too, for a while.
    StreamStartFails,
    /// The running recording fails.
    RecordFailure,
    /// The device reports an overheating temperature until it is cooled down.
    Overheat,
    /// The link error counter jumps.
    LinkErrors,
}

impl Kind {
    /// Every kind with its weight in the draw.
    pub(crate) const ALL: [(Kind, u32); 10] = [
        (Kind::Reboot, 2),
        (Kind::ExpireSessions, 2),
        (Kind::Hang, 2),
        (Kind::Refuse, 2),
        (Kind::Unreachable, 1),
        (Kind::StreamFailure, 3),
        (Kind::StreamStartFails, 1),
        (Kind::RecordFailure, 2),
        (Kind::Overheat, 2),
        (Kind::LinkErrors, 1),
    ];

    /// A stable name for logs and the report.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Reboot => "reboot",
            Kind::ExpireSessions => "expire_sessions",
            Kind::Hang => "hang",
            Kind::Refuse => "refuse",
            Kind::Unreachable => "unreachable",
            Kind::StreamFailure => "stream_failure",
            Kind::StreamStartFails => "stream_start_fails",
            Kind::RecordFailure => "record_failure",
            Kind::Overheat => "overheat",
            Kind::LinkErrors => "link_errors",
        }
    }

    /// What the fault does, and how the soak injects it, for the report.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Kind::Reboot => "`reboot`: 5 s down, back with stream and recording idle",
            Kind::ExpireSessions => "`expire_sessions`: every login ends",
            Kind::Hang => "`hang` for 5–30 s: requests never answered",
            Kind::Refuse => "`refuse` for 5–30 s: connections reset",
            Kind::Unreachable => "`unreachable_ms` 3–20 s: nothing listens",
            Kind::StreamFailure => "`fail_stream`: the stream fails",
            Kind::StreamStartFails => {
                "`fail_stream` + `stream_start_fails` for 5–25 s: restarts fail too"
            }
            Kind::RecordFailure => "`fail_record`: the recording fails",
            Kind::Overheat => "`overheat_c` 86–95 °C for 10–60 s, then `cool_down`",
            Kind::LinkErrors => "`link_errors` +1–50",
        }
    }

    /// Whether encoder with `role` can show this fault.
    fn fits(self, role: Role) -> bool {
        match self {
            Kind::StreamFailure | Kind::StreamStartFails => role.streaming,
            Kind::RecordFailure => role.recording,
            _ => true,
        }
    }

    /// The range of how long the fault lasts (seconds), for those the soak ends itself.
    fn lasts(self) -> Option<(f64, f64)> {
        match self {
            Kind::Hang | Kind::Refuse => Some((5.0, 30.0)),
            Kind::StreamStartFails => Some((5.0, 25.0)),
            Kind::Overheat => Some((10.0, 60.0)),
            _ => None,
        }
    }
}

/// Whether an event starts a fault or ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Start,
    End,
}

impl Step {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Step::Start => "start",
            Step::End => "end",
        }
    }
}

/// One thing to do to one encoder at one time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// From the start of the fault phase.
    pub(crate) at: Duration,
    /// 1-based, as `helo-sim` numbers its encoders.
    pub(crate) encoder: usize,
    pub(crate) kind: Kind,
    pub(crate) step: Step,
    /// The body of `POST /sim/fleet/devices/{encoder}/faults`.
    pub(crate) patch: String,
}

/// Random faults over `span`, on average one every `every`, on encoders with `roles`
/// (`roles[0]` is encoder 1). An encoder shows one fault at a time: while a fault
/// lasts (and a few seconds after a reboot or an outage) it is not picked again, so
/// each recovery can be told apart. Every fault the soak must end ends within `span`.
pub(crate) fn schedule(seed: u64, span: Duration, every: Duration, roles: &[Role]) -> Vec<Event> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let span_s = span.as_secs_f64();
    let every_s = every.as_secs_f64();
    let total_weight: u32 = Kind::ALL.iter().map(|(_, w)| w).sum();
    let mut busy_until = vec![0.0_f64; roles.len()];
    let mut out = Vec::new();
    let mut t = 0.0;
    if roles.is_empty() || every_s <= 0.0 {
        return out;
    }
    loop {
        // Uniform in [0.5, 1.5) × every: a mean of `every`, never two at once.
        t += every_s * (0.5 + rng.f64());
        if t >= span_s {
            break;
        }
        let mut draw = rng.u32(0..total_weight);
        let kind = Kind::ALL
            .iter()
            .find(|(_, w)| {
                let hit = draw < *w;
                draw = draw.saturating_sub(*w);
                hit
            })
            .map_or(Kind::Reboot, |(k, _)| *k);
        // A few tries for a free encoder that fits; a busy fleet skips this draw.
        let Some(i) = (0..32)
            .map(|_| rng.usize(0..roles.len()))
            .find(|&i| kind.fits(roles[i]) && busy_until[i] <= t)
        else {
            continue;
        };
        let at = Duration::from_secs_f64(t);
        let encoder = i + 1;
        let (start, end, quiet) = match kind {
            Kind::Reboot => (r#"{"reboot":true}"#.to_string(), None, 15.0),
            Kind::ExpireSessions => (r#"{"expire_sessions":true}"#.to_string(), None, 0.0),
            Kind::Hang => (
                r#"{"hang":true}"#.to_string(),
                Some(r#"{"hang":false}"#.to_string()),
                0.0,
            ),
            Kind::Refuse => (
                r#"{"refuse":true}"#.to_string(),
                Some(r#"{"refuse":false}"#.to_string()),
                0.0,
            ),
            Kind::Unreachable => {
                let ms = rng.u64(3_000..=20_000);
                (
                    format!(r#"{{"unreachable_ms":{ms}}}"#),
                    None,
                    ms as f64 / 1e3,
                )
            }
            Kind::StreamFailure => (r#"{"fail_stream":true}"#.to_string(), None, 0.0),
            Kind::StreamStartFails => (
                r#"{"stream_start_fails":true,"fail_stream":true}"#.to_string(),
                Some(r#"{"stream_start_fails":false}"#.to_string()),
                0.0,
            ),
            Kind::RecordFailure => (r#"{"fail_record":true}"#.to_string(), None, 0.0),
            Kind::Overheat => (
                format!(r#"{{"overheat_c":{}}}"#, rng.u32(86..=95)),
                Some(r#"{"cool_down":true}"#.to_string()),
                0.0,
            ),
            Kind::LinkErrors => (
                format!(r#"{{"link_errors":{}}}"#, rng.u32(1..=50)),
                None,
                0.0,
            ),
        };
        out.push(Event {
            at,
            encoder,
            kind,
            step: Step::Start,
            patch: start,
        });
        busy_until[i] = t + quiet;
        if let (Some(end), Some((lo, hi))) = (end, kind.lasts()) {
            let until = (t + lo + (hi - lo) * rng.f64()).min(span_s);
            out.push(Event {
                at: Duration::from_secs_f64(until),
                encoder,
                kind,
                step: Step::End,
                patch: end,
            });
            busy_until[i] = until;
        }
    }
    // Stable: a fault that ends at the end of the span stays after its start.
    out.sort_by_key(|e| e.at);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn roles(n: usize) -> Vec<Role> {
        (1..=n).map(Role::of).collect()
    }

    const HOUR: Duration = Duration::from_secs(3_600);
    const EVERY: Duration = Duration::from_secs(3);

    #[test]
    fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
        let a = schedule(7, HOUR, EVERY, &roles(1_000));
        let b = schedule(7, HOUR, EVERY, &roles(1_000));
        let c = schedule(8, HOUR, EVERY, &roles(1_000));
        assert_eq!(a, b);
        assert_ne!(a, c);
        // One start about every 3 s over an hour.
        let starts = a.iter().filter(|e| e.step == Step::Start).count();
        assert!((1_000..=1_400).contains(&starts), "{starts} faults");
    }

    #[test]
    fn every_kind_is_drawn_and_only_on_encoders_that_fit() {
        let r = roles(200);
        let events = schedule(3, HOUR, EVERY, &r);
        let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
        for e in &events {
            let role = r[e.encoder - 1];
            assert!(e.kind.fits(role), "{e:?} on {role:?}");
            if e.step == Step::Start {
                *by_kind.entry(e.kind).or_default() += 1;
            }
        }
        for (kind, _) in Kind::ALL {
            assert!(by_kind.get(&kind).copied().unwrap_or(0) > 10, "{by_kind:?}");
        }
        assert_eq!(Role::of(10), Role::of(20));
        assert!(!Role::of(5).streaming && Role::of(10).recording && !Role::of(1).recording);
    }

    #[test]
    fn bounded_faults_end_within_the_span_and_never_overlap_on_an_encoder() {
        let span = Duration::from_secs(300);
        let events = schedule(11, span, Duration::from_millis(500), &roles(20));
        assert!(events.windows(2).all(|w| w[0].at <= w[1].at), "sorted");
        assert!(events.iter().all(|e| e.at <= span));
        // Per encoder: starts and ends alternate, each bounded fault ends.
        let mut open: BTreeMap<usize, Kind> = BTreeMap::new();
        for e in &events {
            match e.step {
                Step::Start => {
                    assert!(!open.contains_key(&e.encoder), "{e:?} while {open:?} lasts");
                    if e.kind.lasts().is_some() {
                        open.insert(e.encoder, e.kind);
                    }
                }
                Step::End => assert_eq!(open.remove(&e.encoder), Some(e.kind), "{e:?}"),
            }
        }
        assert!(open.is_empty(), "never ended: {open:?}");
    }

    #[test]
    fn patches_are_the_sim_fault_keys() {
        let events = schedule(5, HOUR, EVERY, &roles(100));
        let find = |kind: Kind, step: Step| {
            events
                .iter()
                .find(|e| e.kind == kind && e.step == step)
                .map(|e| e.patch.clone())
                .unwrap()
        };
        assert_eq!(find(Kind::Hang, Step::Start), r#"{"hang":true}"#);
        assert_eq!(find(Kind::Hang, Step::End), r#"{"hang":false}"#);
        assert_eq!(find(Kind::Overheat, Step::End), r#"{"cool_down":true}"#);
        assert!(find(Kind::Overheat, Step::Start).starts_with(r#"{"overheat_c":"#));
        assert!(find(Kind::Unreachable, Step::Start).starts_with(r#"{"unreachable_ms":"#));
        assert_eq!(find(Kind::Reboot, Step::Start), r#"{"reboot":true}"#);
    }

    #[test]
    fn nothing_to_fault_is_an_empty_schedule() {
        assert!(schedule(1, HOUR, EVERY, &[]).is_empty());
        assert!(schedule(1, Duration::ZERO, EVERY, &roles(10)).is_empty());
    }
}
