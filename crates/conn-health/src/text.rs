//! Text for people: device text made safe, durations in words.

use std::time::Duration;

/// Device (or device-derived) text, bounded and escaped by helo-transport's one rule.
pub(crate) fn bounded(text: &str) -> String {
    helo_transport::device_text(text).into_owned()
}

/// `42 s`, `3 min 5 s`, `2 h 10 min`: rounded to what an operator reads.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 if s % 60 == 0 => format!("{} min", s / 60),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_an_operator_says_them() {
        let cases = [
            (0, "0 s"),
            (42, "42 s"),
            (60, "1 min"),
            (185, "3 min 5 s"),
            (7800, "2 h 10 min"),
        ];
        for (secs, text) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), text);
        }
        assert_eq!(human_duration(Duration::from_millis(9600)), "10 s");
    }
}
