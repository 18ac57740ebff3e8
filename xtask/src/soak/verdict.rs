//! The verdict on what was sampled: does memory grow after warm-up, do descriptors,
//! threads or series keep growing. Pure functions over the samples.

use std::fmt::Write as _;

use super::sample::Sample;

/// Fewest post-warm-up samples a trend is judged on.
const MIN_POINTS: usize = 6;
/// The default RSS bound: this fraction of the post-warm-up median, per hour.
pub(crate) const RSS_GROWTH_PER_HOUR: f64 = 0.10;

/// One line of the verdict.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

impl Check {
    pub(crate) fn new(name: &'static str, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok,
            detail: detail.into(),
        }
    }
}

/// A least-squares line through some points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fit {
    /// Units of y per unit of x.
    pub(crate) slope: f64,
    /// The standard error of the slope.
    pub(crate) stderr: f64,
}

/// The least-squares line through `(x, y)` points; `None` under three points or when
/// every x is the same.
pub(crate) fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let residual: f64 = points
        .iter()
        .map(|p| (p.1 - (intercept + slope * p.0)).powi(2))
        .sum();
    let stderr = (residual / (nf - 2.0) / sxx).sqrt();
    Some(Fit { slope, stderr })
}

/// The largest value of the second quarter and of the last quarter of `values`;
/// `None` under eight values. A bounded quantity, past its warm-up, reaches in the
/// last quarter no more than it reached in the second.
pub(crate) fn quarters(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len();
    if n < 8 {
        return None;
    }
    let max = |s: &[f64]| s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((max(&values[n / 4..n / 2]), max(&values[n - n / 4..])))
}

/// The middle value.
fn median(values: &[f64]) -> Option<f64> {
    crate::bench::fleet::median(values)
}

/// How much a bounded quantity may still rise between the second and the last
/// quarter: `rel` of its second-quarter peak, at least `abs`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Margin {
    pub(crate) rel: f64,
    pub(crate) abs: f64,
}

/// The samples the growth verdict looks at: after warm-up, up to the end of the fault
/// phase (the quiet settle after it would hide growth).
pub(crate) fn window(samples: &[Sample], warmup_s: f64, end_s: f64) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|s| s.t_s >= warmup_s && s.t_s <= end_s)
        .collect()
}

/// RSS: the slope after warm-up against `bound_kib_per_hour` (default: 10 % of the
/// post-warm-up median per hour).
pub(crate) fn rss(window: &[&Sample], bound_kib_per_hour: Option<f64>) -> Check {
    let name = "RSS growth after warm-up";
    let points: Vec<(f64, f64)> = window
        .iter()
        .filter_map(|s| Some((s.t_s, s.rss_kib? as f64)))
        .collect();
    if points.len() < MIN_POINTS {
        return Check::new(
            name,
            false,
            format!(
                "{} samples after warm-up, {MIN_POINTS} needed to judge",
                points.len()
            ),
        );
    }
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let med = median(&ys).unwrap_or(0.0);
    let (bound, how) = match bound_kib_per_hour {
        Some(b) => (b, "given".to_string()),
        None => (
            med * RSS_GROWTH_PER_HOUR,
            format!(
                "{:.0} % of {:.1} MiB",
                RSS_GROWTH_PER_HOUR * 100.0,
                med / 1024.0
            ),
        ),
    };
    let Some(f) = fit(&points) else {
        return Check::new(name, false, "no trend could be fitted");
    };
    let per_hour = f.slope * 3_600.0;
    Check::new(
        name,
        per_hour <= bound,
        format!(
            "{per_hour:+.0} KiB/h (± {:.0}) over {} samples, bound {bound:.0} KiB/h ({how}); \
             {:.1} → {:.1} MiB",
            f.stderr * 3_600.0,
            points.len(),
            ys.first().copied().unwrap_or(0.0) / 1024.0,
            ys.last().copied().unwrap_or(0.0) / 1024.0,
        ),
    )
}

/// A quantity that must stay bounded: its last-quarter peak against its second-quarter
/// peak plus `margin`.
pub(crate) fn bounded(
    name: &'static str,
    window: &[&Sample],
    value: impl Fn(&Sample) -> Option<f64>,
    margin: Margin,
) -> Check {
    let values: Vec<f64> = window.iter().filter_map(|s| value(s)).collect();
    let Some((second, last)) = quarters(&values) else {
        return Check::new(
            name,
            false,
            format!("{} samples after warm-up, 8 needed to judge", values.len()),
        );
    };
    let allowed = (second * margin.rel).max(margin.abs);
    let points: Vec<(f64, f64)> = window
        .iter()
        .filter_map(|s| Some((s.t_s, value(s)?)))
        .collect();
    let trend = fit(&points).map_or(String::new(), |f| {
        format!("; trend {:+.1}/h", f.slope * 3_600.0)
    });
    Check::new(
        name,
        last <= second + allowed,
        format!(
            "peak {second:.0} in the 2nd quarter, {last:.0} in the last (allowed +{allowed:.0}){trend}"
        ),
    )
}

/// Metric series: bounded when the encoders in them are at most the fleet and the
/// vocabulary of every other label reaches no new heights (within `margin`).
///
/// The count of series itself is no test of that: each encoder's series of a closed
/// vocabulary (request outcomes by operation, recovery actions, check results) appear
/// the first time something happens to that encoder, so a fleet under random faults
/// fills its bounded set for hours, and a last-quarter peak above the second-quarter
/// one says nothing about a bound. A leak is a label fed from something without one (a
/// connection id, device text), and that shows as new label values.
pub(crate) fn series(window: &[&Sample], fleet: usize, margin: Margin) -> Vec<Check> {
    let encoders = window
        .iter()
        .filter_map(|s| s.series_encoders)
        .max()
        .unwrap_or(0);
    let mut checks = vec![
        Check::new(
            "encoders in the series at most the fleet",
            encoders <= fleet && window.len() >= MIN_POINTS,
            format!("at most {encoders} encoder ids in one scrape, for {fleet} encoders"),
        ),
        bounded(
            "metric label values bounded",
            window,
            |s| s.label_values.map(|v| v as f64),
            margin,
        ),
    ];
    // The series themselves, for the record: they may rise while the bounded set
    // fills, and the detail says by how much.
    let values: Vec<f64> = window
        .iter()
        .filter_map(|s| s.series.map(|v| v as f64))
        .collect();
    if let (Some((second, last)), Some(last_sample)) = (quarters(&values), window.last()) {
        if let Some(c) = checks.last_mut() {
            let _ = write!(
                c.detail,
                "; series (not judged, see above): peak {second:.0} in the 2nd quarter, {last:.0} in the last ({:+.1} %), at most {} of one encoder at the end",
                (last / second.max(1.0) - 1.0) * 100.0,
                last_sample.series_max_per_encoder.unwrap_or(0),
            );
        }
    }
    checks
}

/// Every growth check over the post-warm-up window, for a fleet of `fleet` encoders.
pub(crate) fn growth(
    samples: &[Sample],
    warmup_s: f64,
    end_s: f64,
    rss_bound_kib_per_hour: Option<f64>,
    fleet: usize,
) -> Vec<Check> {
    let w = window(samples, warmup_s, end_s);
    let mut checks = vec![
        rss(&w, rss_bound_kib_per_hour),
        bounded(
            "open descriptors bounded",
            &w,
            |s| s.fds.map(|v| v as f64),
            Margin {
                rel: 0.03,
                abs: 32.0,
            },
        ),
        bounded(
            "threads bounded",
            &w,
            |s| s.threads.map(|v| v as f64),
            Margin {
                rel: 0.25,
                abs: 8.0,
            },
        ),
    ];
    checks.extend(series(
        &w,
        fleet,
        Margin {
            rel: 0.02,
            abs: 4.0,
        },
    ));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    /// Samples every 10 s for `minutes`, with RSS, fds, threads and series from `f(t)`;
    /// every series is of its own label value (as in a leak), of 100 encoders.
    fn run(minutes: usize, f: impl Fn(f64) -> (u64, usize, usize, usize)) -> Vec<Sample> {
        (0..=minutes * 6)
            .map(|i| {
                let t = i as f64 * 10.0;
                let (rss, fds, threads, series) = f(t);
                Sample {
                    t_s: t,
                    rss_kib: Some(rss),
                    fds: Some(fds),
                    threads: Some(threads),
                    series: Some(series),
                    label_values: Some(series),
                    series_encoders: Some(100),
                    ..Sample::default()
                }
            })
            .collect()
    }

    #[test]
    fn fit_finds_the_slope_of_a_line_and_its_noise() {
        let line: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
        let f = fit(&line).unwrap();
        assert!(close(f.slope, 2.0), "{f:?}");
        assert!(f.stderr < 1e-9, "{f:?}");
        let noisy: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64, if i % 2 == 0 { 1.0 } else { -1.0 }))
            .collect();
        let f = fit(&noisy).unwrap();
        assert!(f.slope.abs() < 0.2 && f.stderr > 0.05, "{f:?}");
        assert_eq!(fit(&[(0.0, 1.0), (1.0, 2.0)]), None);
        assert_eq!(fit(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]), None);
    }

    #[test]
    fn quarters_compare_peaks() {
        let flat = [5.0, 9.0, 5.0, 9.0, 5.0, 9.0, 5.0, 9.0];
        assert_eq!(quarters(&flat), Some((9.0, 9.0)));
        let rising: Vec<f64> = (0..16).map(f64::from).collect();
        assert_eq!(quarters(&rising), Some((7.0, 15.0)));
        assert_eq!(quarters(&[1.0; 7]), None);
    }

    #[test]
    fn a_flat_run_after_a_warm_up_climb_passes() {
        // Climbs 20 MiB in the first 5 minutes, then flat with ±1 MiB of noise; fds,
        // threads and series wobble but stay bounded.
        let s = run(60, |t| {
            let warm = (t / 300.0).min(1.0) * 20_480.0;
            let noise = if (t as u64 / 10).is_multiple_of(3) {
                1_024.0
            } else {
                -512.0
            };
            (
                (80_000.0 + warm + noise) as u64,
                3_000 + (t as usize / 10) % 40,
                10 + (t as usize / 10) % 3,
                30_000,
            )
        });
        let checks = growth(&s, 600.0, 3_600.0, None, 100);
        assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
    }

    #[test]
    fn a_steady_leak_fails_the_rss_check() {
        // 80 MiB growing 12 MiB an hour: above 10 % of ~90 MiB.
        let s = run(60, |t| {
            (
                (81_920.0 + t * 12_288.0 / 3_600.0) as u64,
                3_000,
                10,
                30_000,
            )
        });
        let checks = growth(&s, 600.0, 3_600.0, None, 100);
        let rss = &checks[0];
        assert!(!rss.ok, "{rss:?}");
        assert!(rss.detail.contains("+12288 KiB/h"), "{}", rss.detail);
        // The same leak under a given, looser bound passes.
        assert!(growth(&s, 600.0, 3_600.0, Some(20_000.0), 100)[0].ok);
        // The warm-up is left out: a climb of 40 MiB that stops at 10 minutes is no
        // leak, though a line through the whole hour would call it one.
        let s = run(60, |t| {
            ((81_920.0 + t.min(600.0) * 70.0) as u64, 3_000, 10, 30_000)
        });
        assert!(growth(&s, 600.0, 3_600.0, None, 100)[0].ok);
        assert!(!growth(&s, 0.0, 3_600.0, None, 100)[0].ok);
    }

    #[test]
    fn descriptors_and_series_that_keep_growing_fail() {
        // One descriptor leaked per minute, one series per second.
        let s = run(60, |t| {
            (81_920, 3_000 + (t / 60.0) as usize, 10, 30_000 + t as usize)
        });
        let checks = growth(&s, 600.0, 3_600.0, None, 100);
        let by = |name: &str| checks.iter().find(|c| c.name == name).unwrap();
        assert!(by("RSS growth after warm-up").ok);
        assert!(by("threads bounded").ok);
        // 3 000 fds: +90 allowed; 1/min, 25 between the quarters, is too few to see.
        assert!(by("open descriptors bounded").ok);
        let series = by("metric label values bounded");
        assert!(!series.ok, "{series:?}");
        assert!(
            series.detail.contains("trend +3600.0/h"),
            "{}",
            series.detail
        );
        assert!(by("encoders in the series at most the fleet").ok);
        // Many more descriptors per minute (10) are seen.
        let s = run(60, |t| (81_920, 3_000 + (t / 6.0) as usize, 10, 30_000));
        let checks = growth(&s, 600.0, 3_600.0, None, 100);
        assert!(!checks[1].ok, "{:?}", checks[1]);
    }

    #[test]
    fn series_that_fill_a_bounded_set_pass_and_new_label_values_or_encoders_fail() {
        // 1 000 encoders whose series of a closed vocabulary (60 label values) appear
        // as faults reach them: +3 % between the quarters, no new value.
        let mut s = run(60, |t| (81_920, 3_000, 10, 23_000 + (t / 5.0) as usize));
        for x in &mut s {
            x.label_values = Some(60);
            x.series_encoders = Some(1_000);
        }
        let checks = growth(&s, 600.0, 3_600.0, None, 1_000);
        assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
        let values = &checks[4];
        assert!(values.detail.contains("series (not judged"), "{values:?}");
        // A connection id as a label: one new value a minute is a leak.
        for x in &mut s {
            x.label_values = Some(60 + (x.t_s / 60.0) as usize);
        }
        let checks = growth(&s, 600.0, 3_600.0, None, 1_000);
        assert!(!checks[4].ok, "{:?}", checks[4]);
        // Encoder ids that are not the fleet's (say, a departed encoder kept).
        for x in &mut s {
            x.label_values = Some(60);
            x.series_encoders = Some(1_001);
        }
        let checks = growth(&s, 600.0, 3_600.0, None, 1_000);
        assert!(!checks[3].ok, "{:?}", checks[3]);
        assert!(checks[4].ok, "{:?}", checks[4]);
    }

    #[test]
    fn too_few_samples_is_not_a_pass() {
        let s = run(1, |_| (1_000, 10, 2, 100));
        let checks = growth(&s, 30.0, 60.0, None, 100);
        assert!(checks.iter().all(|c| !c.ok), "{checks:#?}");
        assert!(checks[0].detail.contains("needed to judge"));
    }

    #[test]
    fn the_settle_after_the_fault_phase_is_left_out() {
        // Growth only after the fault phase ends at 30 min is not judged here (the
        // settle ends with the final check instead).
        let s = run(40, |t| {
            let after = (t - 1_800.0).max(0.0);
            ((81_920.0 + after * 100.0) as u64, 3_000, 10, 30_000)
        });
        assert!(growth(&s, 300.0, 1_800.0, None, 100)[0].ok);
        assert!(!growth(&s, 300.0, 2_400.0, None, 100)[0].ok);
    }
}
