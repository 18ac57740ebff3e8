//! Just enough of the Prometheus text format for the fleet measurements.

/// One sample: metric name, its label text (without braces), value.
pub(crate) fn samples(text: &str) -> impl Iterator<Item = (&str, &str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let value = value.parse::<f64>().ok()?;
            match series.split_once('{') {
                Some((name, labels)) => Some((name, labels.trim_end_matches('}'), value)),
                None => Some((series, "", value)),
            }
        })
}

/// The sum of every series of `name`.
pub(crate) fn sum(text: &str, name: &str) -> f64 {
    samples(text)
        .filter(|(n, _, _)| *n == name)
        .map(|(_, _, v)| v)
        .sum()
}

/// The value of label `key` in a label text.
pub(crate) fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}

/// Values of `name` whose `encoder_id` is `encoder`.
pub(crate) fn of_encoder(text: &str, name: &str, encoder: &str) -> Vec<f64> {
    samples(text)
        .filter(|(n, labels, _)| *n == name && label(labels, "encoder_id") == Some(encoder))
        .map(|(_, _, v)| v)
        .collect()
}

/// A histogram's cumulative buckets `(le, count)`, sorted by `le` (`+Inf` last).
pub(crate) fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let bucket = format!("{name}_bucket");
    let mut out: Vec<(f64, f64)> = samples(text)
        .filter(|(n, _, _)| *n == bucket)
        .filter_map(|(_, labels, v)| {
            let le = label(labels, "le")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, v))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// `after - before`, bucket by bucket.
pub(crate) fn bucket_delta(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(le, n)| {
            let was = before
                .iter()
                .find(|(l, _)| *l == le)
                .map_or(0.0, |(_, v)| *v);
            (le, n - was)
        })
        .collect()
}

/// The `q` quantile as Prometheus' `histogram_quantile` estimates it (linear within
/// the bucket); `None` without observations.
pub(crate) fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev.0);
            }
            let in_bucket = count - prev.1;
            let frac = if in_bucket > 0.0 {
                (rank - prev.1) / in_bucket
            } else {
                1.0
            };
            return Some(prev.0 + (le - prev.0) * frac);
        }
        prev = (le, count);
    }
    Some(prev.0)
}

/// Observations above `bound` (which must be a bucket bound).
pub(crate) fn above(buckets: &[(f64, f64)], bound: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    let within = buckets
        .iter()
        .find(|(le, _)| *le >= bound)
        .map_or(total, |b| b.1);
    total - within
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP x y
helo_health_checks_total{encoder_id="enc-1",result="healthy"} 3
helo_health_checks_total{encoder_id="enc-10",result="unhealthy"} 2
helo_connection_health{encoder_id="enc-1",connection_id="7"} 55.5
lat_bucket{le="0.1"} 90
lat_bucket{le="1"} 99
lat_bucket{le="+Inf"} 100
lat_count 100
"#;

    #[test]
    fn sums_filters_and_estimates_quantiles() {
        assert_eq!(sum(TEXT, "helo_health_checks_total"), 5.0);
        assert_eq!(
            of_encoder(TEXT, "helo_connection_health", "enc-1"),
            vec![55.5]
        );
        assert!(of_encoder(TEXT, "helo_connection_health", "enc-10").is_empty());
        let b = buckets(TEXT, "lat");
        assert_eq!(b.len(), 3);
        let p50 = quantile(&b, 0.5).unwrap();
        assert!((p50 - 0.1 * 50.0 / 90.0).abs() < 1e-12, "{p50}");
        let p99 = quantile(&b, 0.99).unwrap();
        assert!((p99 - 1.0).abs() < 1e-9, "{p99}");
        assert_eq!(quantile(&b, 1.0), Some(1.0));
        assert_eq!(above(&b, 1.0), 1.0);
        assert_eq!(above(&b, 0.1), 10.0);
        let d = bucket_delta(&[(0.1, 50.0), (1.0, 50.0), (f64::INFINITY, 50.0)], &b);
        assert_eq!(d, vec![(0.1, 40.0), (1.0, 49.0), (f64::INFINITY, 50.0)]);
        assert_eq!(quantile(&[(1.0, 0.0), (f64::INFINITY, 0.0)], 0.99), None);
    }
}
