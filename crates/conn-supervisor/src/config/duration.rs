//! Durations as people write them in a config file: `30s`, `500ms`, `2m`, `1h`, or a
//! bare number of seconds.

use std::time::Duration;

/// Parses `30s`, `500ms`, `2m`, `1h`, `1.5s` or `30` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try \"30s\", \"500ms\", \"2m\")"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use ms, s, m or h)"
            ))
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > 7.0 * 86_400.0 {
        return Err(format!("{text:?} is out of range (at most 7 days)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, want: Result<u64, &str>) {
        match (parse_duration(text), want) {
            (Ok(d), Ok(ms)) => assert_eq!(d.as_millis() as u64, ms, "{text}"),
            (Err(e), Err(frag)) => assert!(e.contains(frag), "{text}: {e}"),
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn durations() {
        check("30s", Ok(30_000));
        check("500ms", Ok(500));
        check("2m", Ok(120_000));
        check("1h", Ok(3_600_000));
        check("1.5s", Ok(1_500));
        check("45", Ok(45_000));
        check("5 s", Ok(5_000));
        check("5d", Err("unknown unit"));
        check("abc", Err("not a duration"));
        check("9999h", Err("out of range"));
    }
}
